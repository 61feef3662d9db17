fn main() -> std::process::ExitCode {
    cni_spec::run(eni::Eni)
}
