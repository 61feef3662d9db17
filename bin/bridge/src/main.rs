fn main() -> std::process::ExitCode {
    cni_spec::run(bridge::Bridge)
}
