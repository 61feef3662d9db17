//! libFuzzer entry of the `ipam_config` target; the body is [`task_cni_fuzz::ipam_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::ipam_config(data));
