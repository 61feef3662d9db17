//! The README's first command, `examples/awsvpc-task.sh`, run end to end with the plugins of this
//! build (BIN points at them, so the test does not rebuild in release mode): it must pass every
//! check of every section (the branch-ENI part inside user-mode-linux on a kernel without 802.1Q:
//! nothing skipped), and leave nothing behind — no namespace of the run, no process carrying its
//! marker (`AWSVPC_DEMO_RUN=<tag>` in the environment, the tag in the command line; the guest's
//! processes included), no scratch directory, no fixture record. The same guarantee holds when the
//! run is interrupted as a terminal's Ctrl-C does (SIGINT to its process group), and bad input
//! (no root, no user-mode-linux to be had) gets a clear message and leaves nothing either.
//!
//! The demo prints how long it took; the guide forbids timed assertions, so nothing here asserts
//! a duration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use test_support::*;

fn script() -> PathBuf {
    repo_root().join("examples").join("awsvpc-task.sh")
}

/// The demo with this build's plugins, in a process group of its own (as a shell's job).
fn demo() -> Command {
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
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .env("BIN", bin_dir())
        .env_remove("KEEP")
        .env_remove("VERBOSE")
        .process_group(0);
    cmd
}

/// The run's tag (`awsvpc<pid>`) and scratch directory, from its first line.
fn tag_and_work(stdout: &str) -> (String, PathBuf) {
    let first = stdout
        .lines()
        .find(|l| l.starts_with("awsvpc-task: run "))
        .unwrap_or_else(|| panic!("no 'awsvpc-task: run' line:\n{stdout}"));
    let tag = first["awsvpc-task: run ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        tag.starts_with("awsvpc") && tag[6..].bytes().all(|b| b.is_ascii_digit()),
        "{first}"
    );
    let work = first
        .split("files in ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no scratch directory in: {first}"));
    (tag, PathBuf::from(work))
}

/// The processes that carry the run's marker in their environment or its tag in their
/// command line (the tag followed by anything but a digit), as "pid: command line".
fn marked_processes(tag: &str) -> Vec<String> {
    let marker = format!("AWSVPC_DEMO_RUN={tag}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let in_env = environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes());
        let in_cmd = cmdline.match_indices(tag).any(|(i, _)| {
            !cmdline[i + tag.len()..]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit())
        });
        if in_env || in_cmd {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Nothing of the run `tag` is left: namespaces, processes, scratch files, fixture records.
fn assert_nothing_left(tag: &str, work: Option<&Path>) {
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let prefix = format!("{tag}-");
    let left: Vec<String> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(String::from)
        .collect();
    assert!(left.is_empty(), "namespaces of {tag} left: {left:?}");
    let procs = marked_processes(tag);
    assert!(procs.is_empty(), "processes of {tag} left: {procs:#?}");
    if let Some(work) = work {
        assert!(!work.exists(), "scratch directory {} left", work.display());
    }
    let tmp = std::env::temp_dir();
    let scratch: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{tag}.")))
        .collect();
    assert!(
        scratch.is_empty(),
        "scratch files of {tag} in {}: {scratch:?}",
        tmp.display()
    );
    for record in [format!("{tag}.json"), format!("{tag}-ext.json")] {
        let p = Path::new("/run/netns-fixtures").join(&record);
        assert!(!p.exists(), "fixture record {} left", p.display());
    }
}

#[test]
fn the_one_command_networks_all_four_tasks_and_leaves_nothing() {
    let out = demo()
        .stdin(Stdio::null())
        .output()
        .expect("run examples/awsvpc-task.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    assert!(
        !stdout.to_ascii_uppercase().contains("SKIP"),
        "something was skipped:\n{stdout}"
    );
    let (tag, work) = tag_and_work(&stdout);

    // every section ran, in order
    let headers = [
        "== 1. awsvpc task on a task ENI",
        "== 2. awsvpc tasks on branch ENIs (ENI trunking)",
        "== 3. IPv6-only awsvpc task",
        "== 4. external instance (ECS Anywhere-style) task in bridge mode",
        "== 5. teardown in each caller's order, then nothing left",
        "== summary",
    ];
    let mut at = 0;
    for h in headers {
        let i = stdout[at..]
            .find(h)
            .unwrap_or_else(|| panic!("no section {h:?} (in order):\n{stdout}"));
        at += i + h.len();
    }
    // the branch-ENI part ran, here or in the guest, and said where
    assert!(
        stdout.contains("this kernel has no 802.1Q: this part runs inside a user-mode-linux guest")
            || stdout.contains("this kernel has 802.1Q: the branch tasks run here"),
        "{stdout}"
    );
    // the checks of each section (a selection; each is one line)
    for check in [
        // 1
        "ADD vpc-eni eth0: 10.0.1.17/24 2001:db8:1::17/64",
        "task reaches its IPv4 gateway 10.0.1.1 over the ENI",
        "task reaches its IPv6 gateway 2001:db8:1::1 over the ENI",
        "jumbo frames: 8,000-byte ping with DF set reaches the gateway",
        "task fetches credentials from 169.254.170.2 over ecs-eth0",
        "instance metadata 169.254.169.254 is unreachable (blackholed)",
        "instance metadata fd00:ec2::254 is unreachable (blackholed)",
        "two processes in the task talk over localhost",
        // 2
        "ADD vpc-branch-eni eth0 (task A): 10.0.2.17/24",
        "task A: eth0 is an 802.1Q link, VLAN 102 on the trunk eth1",
        "task A reaches its gateway 10.0.2.1 over VLAN 102 (tagged frames)",
        "the VPC side learned task A's MAC on its VLAN 102 link only",
        "task A: instance metadata blocked",
        "task B: eth0 is VLAN 103 on the trunk",
        "VLAN isolation: task A (10.0.2.17) answers on VLAN 102, not on VLAN 103",
        "VLAN isolation: task B (10.0.3.17) answers on VLAN 103, not on VLAN 102",
        "task B cannot reach task A",
        "DEL ecs-ipam ecs-eth0 (task A: release by MAC)",
        "no 802.1Q link left in the instance or the tasks",
        "no lease left in the ecs-ipam store (CHECK of",
        // 3
        "ADD vpc-eni eth0: 2001:db8:6::17/64",
        "with only 2001:db8:6::17/64, no IPv4 address",
        "IPv6 default route via 2001:db8:6::1 on eth0, no IPv4 default route",
        "instance metadata blocked: fd00:ec2::254 and 169.254.169.254 blackholed",
        "task fetches credentials from 169.254.170.2 over ecs-eth0, IPv4 link-local on the bridge",
        "tasks 1 and 3 share ecs-bridge but cannot reach each other",
        // 4
        "ADD conflist bridge-portmap (bridge + ipam, portmap) as eth0: 10.89.0.2/24",
        "task reaches 198.51.100.1 outside the instance through NAT (the outside saw 198.51.100.2)",
        "a client outside reaches the task through the host port 198.51.100.2:8080",
        "outbound NAT: our bridge's nftables masquerade rule for the task",
        "published port: portmap's iptables DNAT 8080 -> 10.89.0.2:80 on the instance",
        // 5
        "DEL conflist bridge-portmap (portmap, bridge + ipam)",
        "DEL ecs-bridge ecs-eth0 (task 1, \"ipam\": {})",
        "DEL ecs-ipam ecs-eth0 (task 1: release by ENI MAC)",
        "the ENIs are back on the instance: eth1",
        "no lease left in the ecs-ipam store, Amazon's BoltDB file",
        "no lease left in the host-local store of bridge-portmap",
        "no nftables or iptables rule of the tasks left",
        "no namespace awsvpc",
        "processes the run started are gone",
        "no process carries the run's marker or tag",
        "the machine's own namespace holds no link, address, route or rule of the run",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("  [ ok ] ") && l.contains(check)),
            "missing check: {check}\n{stdout}"
        );
    }
    // the summary table: one row per task, each with all of its checks passed
    let summary = &stdout[stdout.find("== summary").unwrap()..];
    for row in ["  1 ", "  2 ", "  3 ", "  4 ", "  5 "] {
        let line = summary
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no summary row {row:?}:\n{summary}"));
        let (passed, total) = line.rsplit(' ').next().unwrap().split_once('/').unwrap();
        assert!(
            passed == total && passed.parse::<u32>().unwrap() > 0,
            "{line}"
        );
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("awsvpc-task: all "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let n: usize = line["awsvpc-task: all ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 80, "{line}");
    assert_nothing_left(&tag, Some(&work));
}

/// Starts the demo, reads its stdout until a line contains `pattern`, then sends SIGINT to its
/// process group (what a terminal's Ctrl-C does). Returns stdout, stderr and the exit code.
fn interrupt_at(pattern: &str, keep: bool) -> (String, String, Option<i32>) {
    let mut cmd = demo();
    if keep {
        cmd.env("KEEP", "1");
    }
    let mut child: Child = cmd
        .stdin(Stdio::piped()) // held open: KEEP waits on it
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run examples/awsvpc-task.sh");
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    let mut seen = false;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        stdout.push_str(&line);
        if line.contains(pattern) {
            seen = true;
            break;
        }
        line.clear();
    }
    assert!(
        seen,
        "the demo ended before printing {pattern:?}:\n{stdout}"
    );
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    reader.read_to_string(&mut stdout).unwrap();
    let code = child.wait().unwrap().code();
    drop(child.stdin.take());
    (stdout, stderr.join().unwrap(), code)
}

#[test]
fn ctrl_c_during_the_guest_and_at_the_pause_leaves_nothing() {
    // while the branch-ENI part starts (in the user-mode-linux guest here), and with every task
    // up, paused by KEEP=1 before the teardown
    for (pattern, keep) in [
        ("== 2. awsvpc tasks on branch ENIs", false),
        ("Press Enter to tear down", true),
    ] {
        let (stdout, stderr, code) = interrupt_at(pattern, keep);
        assert_eq!(
            code,
            Some(130),
            "interrupted at {pattern:?}:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let (tag, work) = tag_and_work(&stdout);
        assert!(
            stderr.contains("awsvpc-task: interrupted, cleaning up")
                && stderr.contains(&format!(
                    "awsvpc-task: interrupted; cleaned up: no namespace {tag}-*, no process of the run"
                )),
            "interrupted at {pattern:?}: stderr:\n{stderr}"
        );
        assert!(!stdout.contains("awsvpc-task: all "), "{stdout}");
        assert_nothing_left(&tag, Some(&work));
    }
}

/// The tag of a run that never printed it: bash runs the script itself, so `$$` is the child's PID.
fn run_without_output(mut cmd: Command) -> (String, Option<i32>, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("awsvpc{}", child.id());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (tag, out.status.code(), text)
}

#[test]
fn without_root_it_says_so_and_does_nothing() {
    // a copy of the script anyone can read (the checkout may not be); it stops before using
    // anything else
    let dir = std::env::temp_dir().join(format!("awsvpc-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("awsvpc-task.sh");
    std::fs::copy(script(), &copy).unwrap();
    for p in [&dir, &copy] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
        .arg(&copy);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "awsvpc-task: must run as root: it creates network namespaces, veths and bridges \
         (all inside namespaces of its own)."
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn without_user_mode_linux_to_be_had_it_says_so_and_leaves_nothing() {
    // 802.1Q on this kernel? Then the demo needs no guest and this case cannot happen.
    let probe = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link add dq0 type veth peer name dq1 && ip link add link dq0 name dq0.9 type vlan id 9",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    if probe.success() {
        eprintln!("this kernel has 802.1Q: the demo never needs user-mode-linux here");
        return;
    }
    // user-mode-linux "missing", and an apt-get that fails as on a machine without an archive
    let fake = std::env::temp_dir().join(format!("awsvpc-demo-noapt-{}", std::process::id()));
    std::fs::create_dir_all(&fake).unwrap();
    let apt = fake.join("apt-get");
    std::fs::write(
        &apt,
        "#!/bin/sh\necho 'E: no archive reachable' >&2\nexit 100\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = demo();
    cmd.env("UML_KERNEL", "/nonexistent/linux.uml")
        .env("PATH", path);
    let (tag, code, text) = run_without_output(cmd);
    std::fs::remove_dir_all(&fake).unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "awsvpc-task: this kernel has no 802.1Q VLANs, so the branch-ENI part runs inside \
             user-mode-linux, and /nonexistent/linux.uml is missing and could not be installed"
        ),
        "{text}"
    );
    assert!(!text.contains("[ ok ]"), "it went on: {text}");
    assert_nothing_left(&tag, None);
}
