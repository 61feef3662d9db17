//! libFuzzer entry of the `eni_config` target; the body is [`task_cni_fuzz::eni_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::eni_config(data));
