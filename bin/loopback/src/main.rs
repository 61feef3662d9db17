#![no_main]
cni_spec::main!(loopback::Loopback);
