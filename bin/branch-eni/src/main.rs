fn main() -> std::process::ExitCode {
    cni_spec::run(branch_eni::BranchEni)
}
