//! libFuzzer entry of the `cni_args` target; the body is [`task_cni_fuzz::cni_args`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::cni_args(data));
