//! libFuzzer entry of the `result` target; the body is [`task_cni_fuzz::result`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::result(data));
