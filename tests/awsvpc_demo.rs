//! The README's first command, examples/awsvpc-task.sh, run end to end with the plugins of this
//! build (BIN points at them, so the test does not rebuild in release mode): every check it
//! prints must pass and it must leave no namespace behind.

use std::process::Command;

use suite_tests::*;

#[test]
fn the_simulated_awsvpc_task_passes_every_check() {
    for p in [
        "eni",
        "bridge",
        "ipam",
        "loopback",
        "branch-eni",
        "netns-fixture",
    ] {
        bin(p);
    }
    let out = Command::new("bash")
        .arg(repo_root().join("examples").join("awsvpc-task.sh"))
        .env("BIN", bin_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run examples/awsvpc-task.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("awsvpc-task: all "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let n: usize = line
        .trim_start_matches("awsvpc-task: all ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 20, "{line}");
    for check in [
        "task reaches its IPv4 gateway 10.0.1.1 over the ENI",
        "task reaches its IPv6 gateway 2001:db8:1::1 over the ENI",
        "jumbo frames: 8,000-byte ping with DF set reaches the gateway",
        "task fetches credentials from 169.254.170.2 over ecs-eth0",
        "instance metadata 169.254.169.254 is unreachable (blackholed)",
        "two processes in the task talk over localhost",
        "ENI is back on the instance as eth1 with MTU 9001",
        "no lease left in the IPAM store",
    ] {
        assert!(
            stdout.contains(&format!("[ ok ] {check}")),
            "missing check: {check}\n{stdout}"
        );
    }
    // the branch-ENI part runs or says plainly that it is skipped
    assert!(
        stdout.contains("branch task reaches its gateway over VLAN 102")
            || stdout.contains("SKIPPED: this kernel has no 802.1Q VLAN support"),
        "{stdout}"
    );
    // its namespaces (awsvpc<pid>-host, -vpc, -task) are gone
    let tag = stdout
        .split("(namespaces ")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .unwrap_or_else(|| panic!("no namespace names printed:\n{stdout}"))
        .to_string();
    assert!(tag.starts_with("awsvpc"), "{tag}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !left.contains(&format!("{tag}-")),
        "namespaces left: {left}"
    );
}
