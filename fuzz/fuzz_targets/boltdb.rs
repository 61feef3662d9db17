//! libFuzzer entry of the `boltdb` target; the body is [`task_cni_fuzz::boltdb`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| task_cni_fuzz::boltdb(data));
