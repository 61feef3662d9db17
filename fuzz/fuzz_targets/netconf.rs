//! libFuzzer entry of the `netconf` target; the body is [`task_cni_fuzz::netconf`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::netconf(data));
