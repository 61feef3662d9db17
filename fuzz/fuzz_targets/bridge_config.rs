//! libFuzzer entry of the `bridge_config` target; the body is [`task_cni_fuzz::bridge_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::bridge_config(data));
