//! The user-mode-linux runner (`netns-fixtures/uml-run.sh`) gives tests a kernel with what the host
//! lacks: 802.1Q VLANs on a dummy trunk, tap devices with an owner, passthru macvtap. These tests boot it
//! and assert, from the captured output, on the kernel state inside the guest and on the runner's
//! contract (exit code, stdout/stderr, read-only root, read-write CWD, reachable target dir).
//!
//! Needs `/usr/bin/linux.uml` (Debian package `user-mode-linux`, or `$UML_KERNEL`), kmod and cc. Without
//! linux.uml the tests fail, unless `SKIP_UML=1`, in which case they print that they skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use test_support::repo_root;

/// The UML binary: `$UML_KERNEL` (the runner honours it too), else Debian's.
fn uml_kernel() -> String {
    std::env::var("UML_KERNEL").unwrap_or_else(|_| "/usr/bin/linux.uml".to_string())
}

fn runner() -> PathBuf {
    repo_root().join("netns-fixtures").join("uml-run.sh")
}

/// `false` when the test must stop because UML is missing and `SKIP_UML=1`; panics when it is missing
/// otherwise.
fn uml_available(test: &str) -> bool {
    let kernel = uml_kernel();
    if Path::new(&kernel).exists() {
        return true;
    }
    if std::env::var("SKIP_UML").as_deref() == Ok("1") {
        // Straight to fd 2, not eprintln!: libtest would swallow the notice of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {kernel} is missing and SKIP_UML=1"
        );
        return false;
    }
    panic!(
        "{kernel} is missing: install user-mode-linux (apt-get install -y user-mode-linux), \
         or set SKIP_UML=1 to skip the user-mode-linux tests"
    );
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{:08x}", std::process::id(), nanos)
}

fn uml_run(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(runner())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start bash {}: {e}", runner().display()));
    eprintln!(
        "--- uml-run exit: {:?}\n--- stdout:\n{}--- stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The lines between `=== NAME` and the next `===` marker.
fn section<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("=== {name}");
    let mut lines = stdout.lines().skip_while(|l| *l != start);
    assert_eq!(
        lines.next(),
        Some(start.as_str()),
        "no section {start:?} in output"
    );
    lines.take_while(|l| !l.starts_with("=== ")).collect()
}

#[test]
fn vlan_tap_and_macvtap_inside_uml() {
    if !uml_available("vlan_tap_and_macvtap_inside_uml") {
        return;
    }
    let ns = unique("umlvlan");
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let probe = unique(".uml-rw-probe");
    // Interface names are fixed: the guest is private to this test.
    let script = format!(
        r#"set -e
ip link add trunk0 type dummy
ip link set trunk0 up
ip link add link trunk0 name trunk0.101 type vlan id 101
ip netns add {ns}
ip link set trunk0.101 netns {ns}
ip -n {ns} link set trunk0.101 up
echo "=== vlan link"
ip -n {ns} -d link show trunk0.101
echo "=== vlan in root netns"
ip link show trunk0.101 2>/dev/null && echo present || echo absent
echo "=== vlan config"
ip netns exec {ns} cat /proc/net/vlan/config
ip netns del {ns}
echo "=== tap link"
ip tuntap add dev tap9 mode tap user 4242 group 4343
ip -d link show tap9
echo "=== tap owner"
cat /sys/class/net/tap9/owner /sys/class/net/tap9/group
echo "=== macvtap link"
ip link add tp0 type veth peer name tp1
ip link add link tp0 name mvt0 type macvtap mode passthru
ip -d link show mvt0
echo "=== macvtap char device"
test -c /dev/tap$(cat /sys/class/net/mvt0/ifindex) && echo present || echo absent
echo "=== runner contract"
touch /usr/uml-run-probe 2>/dev/null && echo root-writable || echo root-read-only
echo x > {probe} && rm {probe} && echo cwd-writable
test -x {exe} && echo test-binary-visible || echo test-binary-missing
echo "=== end"
"#
    );
    let out = uml_run(&["sh", "-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "guest script failed");

    let vlan = section(&stdout, "vlan link");
    assert!(
        vlan[0].contains(": trunk0.101@"),
        "VLAN link not shown in netns {ns}: {vlan:?}"
    );
    assert!(
        vlan.iter()
            .any(|l| l.trim_start().starts_with("vlan protocol 802.1Q id 101 ")),
        "ip -d link in {ns} does not show 'vlan protocol 802.1Q id 101': {vlan:?}"
    );
    assert_eq!(section(&stdout, "vlan in root netns"), ["absent"]);
    let config = section(&stdout, "vlan config");
    let rows: Vec<Vec<&str>> = config
        .iter()
        .filter(|l| l.contains('|') && !l.starts_with("VLAN Dev name"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows,
        [["trunk0.101", "101", "trunk0"]],
        "/proc/net/vlan/config in {ns}: {config:?}"
    );

    let tap = section(&stdout, "tap link");
    assert!(tap[0].contains(": tap9: "), "tap link: {tap:?}");
    assert!(
        tap.iter()
            .any(|l| l.trim_start().starts_with("tun type tap ")
                && l.contains(" persist on ")
                && l.contains(" user 4242 group 4343 ")),
        "tap9 is not a persistent tap owned by 4242:4343: {tap:?}"
    );
    assert_eq!(section(&stdout, "tap owner"), ["4242", "4343"]);

    let mvt = section(&stdout, "macvtap link");
    assert!(mvt[0].contains(": mvt0@tp0: "), "macvtap link: {mvt:?}");
    assert!(
        mvt.iter()
            .any(|l| l.trim_start().starts_with("macvtap mode passthru ")),
        "mvt0 is not a passthru macvtap: {mvt:?}"
    );
    assert_eq!(section(&stdout, "macvtap char device"), ["present"]);

    assert_eq!(
        section(&stdout, "runner contract"),
        ["root-read-only", "cwd-writable", "test-binary-visible"]
    );
    assert!(
        !Path::new("/usr/uml-run-probe").exists(),
        "the guest wrote to the host's /usr"
    );
    assert!(
        !Path::new(&probe).exists(),
        "probe file {probe} left in the CWD"
    );
}

#[test]
fn runner_propagates_exit_code_and_streams() {
    if !uml_available("runner_propagates_exit_code_and_streams") {
        return;
    }
    let out = uml_run(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-stdout\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().next(),
        Some("to-stderr"),
        "stderr: {stderr:?}"
    );
}
