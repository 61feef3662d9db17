//! libFuzzer entry of the `ipam_store_parse` target; the body is [`task_cni_fuzz::ipam_store_parse`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::ipam_store_parse(data));
