#![no_main]
cni_spec::main!(eni::Eni);
