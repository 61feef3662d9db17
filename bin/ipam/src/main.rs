#![no_main]
cni_spec::main!(ipam_plugin::Ipam);
