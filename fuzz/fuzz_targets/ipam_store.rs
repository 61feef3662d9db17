//! libFuzzer entry of the `ipam_store` target; the body is [`task_cni_fuzz::ipam_store`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::ipam_store(data));
