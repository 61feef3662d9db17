fn main() -> std::process::ExitCode {
    cni_spec::run(ipam_plugin::Ipam)
}
