//! libFuzzer entry of the `branch_eni_config` target; the body is [`task_cni_fuzz::branch_eni_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::branch_eni_config(data));
