//! libFuzzer entry of the `dispatch` target; the body is [`task_cni_fuzz::dispatch`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::dispatch(data));
