#![no_main]
cni_spec::main!(branch_eni::BranchEni);
