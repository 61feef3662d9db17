#![no_main]
cni_spec::main!(bridge::Bridge);
