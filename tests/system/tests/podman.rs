//! The plugins under a real container runtime: Debian's podman 4.3.1 with its CNI backend,
//! `cni_plugin_dirs` pointing at our binaries and a hand-written conflist of our `bridge` (with
//! our `ipam`) and `loopback`, cniVersion 0.4.0 as podman's own conflists have.
//!
//! Everything podman keeps lives under a per-test directory (storage, run root, tmp dir and file
//! locks, volumes, network configs); the container's cgroups under a per-test cgroup parent,
//! removed at the end. The "host" side (the bridge) is a created namespace, never the
//! machine's. The container's root is a busybox-static rootfs given with `--rootfs` (`podman
//! import` would also work, but it writes a blob-info cache to the machine-global
//! `/var/lib/containers/cache` whatever `--root` says). The one machine-wide trace is runc's state
//! root `/run/runc`, which runc creates (empty after the container is deleted) on first use, and
//! which podman 4.3 does not let a caller move for every runc call.
//!
//! The three workarounds this machine needs (reference/test-environment.md §3):
//! 1. podman is started with `nsenter --net=` (not `ip netns exec`, which remounts /sys and
//!    hides the cgroup hierarchy);
//! 2. `default_ulimits` nofile/nproc 1024 (root lacks CAP_SYS_RESOURCE to keep the hard limits);
//! 3. `runtime = "runc"` (crun refuses this cgroup v1/v2 hybrid).
//!
//! Needs the Debian packages podman, runc, catatonit and busybox-static (tests/run-all.sh
//! installs them); fails with a message naming what is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use netns_fixtures::unique_suffix;
use serde_json::json;
use test_support::*;

const PACKAGES_HINT: &str = "install Debian's podman, runc, catatonit and busybox-static: \
     apt-get install -y --no-install-recommends podman runc catatonit busybox-static \
     (tests/run-all.sh does)";

/// Where podman 4 (CNI backend) keeps libcni's result cache.
const CACHE_DIR: &str = "/var/lib/cni/results";

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
}

/// Fails with a clear message unless podman, runc, nsenter and a static busybox are here.
fn require_prerequisites() {
    let missing: Vec<&str> = ["podman", "runc", "conmon", "nsenter"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}: {PACKAGES_HINT}");
    let busybox =
        fs::read("/bin/busybox").unwrap_or_else(|e| panic!("/bin/busybox: {e}: {PACKAGES_HINT}"));
    // the rootfs has no libraries: a dynamically linked busybox (package `busybox`) cannot run
    assert!(
        !has_interpreter(&busybox),
        "/bin/busybox is dynamically linked: {PACKAGES_HINT}"
    );
}

/// Whether an ELF64 little-endian file has a PT_INTERP program header (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    assert!(elf.starts_with(b"\x7fELF\x02\x01"), "not an ELF64 LE file");
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

/// One podman world: its directory, config and cgroup parent; on drop every container is
/// removed, the cgroups and the directory go.
struct Podman {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Podman {
    fn new(plugin_dir: &Path) -> Podman {
        let sfx = unique_suffix();
        let dir = std::env::temp_dir().join(format!("podman-test-{}-{sfx}", std::process::id()));
        for d in ["net.d", "rootfs/bin", "tmp", "volumes"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
network_config_dir = "{dir}/net.d"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "{dir}/tmp"
lock_type = "file"
volume_path = "{dir}/volumes"
"#,
            plugins = plugin_dir.display(),
            dir = dir.display()
        );
        fs::write(dir.join("containers.conf"), conf).unwrap();
        // the container's root: busybox-static and the applets the test runs
        let rootfs = dir.join("rootfs");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "ping", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        Podman {
            dir,
            cgroup_parent: format!("podman-test-{}-{sfx}", std::process::id()),
        }
    }

    /// `podman` with this world's storage, run root, config and the CNI backend.
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "overlay", "--network-backend", "cni"])
            .stdin(Stdio::null());
        c
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The cgroup directories under our parent, deepest first.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        walk(&e.path(), out);
                    }
                }
            }
            out.push(d.to_path_buf());
        }
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let p = h.path().join(&self.cgroup_parent);
                if p.is_dir() {
                    walk(&p, &mut out);
                }
            }
        }
        out
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "--all", "--force"]).output();
        // conmon may take a moment to leave its cgroup
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let dirs = self.cgroup_dirs();
            for d in &dirs {
                let _ = fs::remove_dir(d);
            }
            if self.cgroup_dirs().is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for d in self.cgroup_dirs() {
            eprintln!("podman test: could not remove cgroup {}", d.display());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A directory of plugins for `cni_plugin_dirs`: `bridge` and `loopback` are wrappers that log
/// `<name> <command> <container id> <netns>` to `log` and exec the built binary; `ipam` is a
/// link (bridge runs it in-process; it is here for delegation).
fn plugin_dir(dir: &Path, log: &Path) -> PathBuf {
    let d = dir.join("cni-plugins");
    fs::create_dir_all(&d).unwrap();
    for p in ["bridge", "loopback"] {
        let script = format!(
            "#!/bin/sh\necho \"{p} $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            bin(p).display()
        );
        let path = d.join(p);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::symlink(bin("ipam"), d.join("ipam")).unwrap();
    d
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `f` for up to 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leases(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect()
}

#[test]
fn podman_runs_a_container_on_our_bridge_and_ipam() {
    require_prerequisites();
    let started = Instant::now();
    let host = TestNs::new("pdh");
    host.ip_ok(&["link", "set", "lo", "up"]);
    let work = std::env::temp_dir().join(format!(
        "podman-plugins-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    fs::create_dir_all(&work).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _work_guard = RmDir(work.clone());
    let log = work.join("calls.log");
    let pod = Podman::new(&plugin_dir(&work, &log));

    let sfx = unique_suffix();
    let (net, bridge, name) = (
        format!("pdn-{sfx}"),
        format!("br{sfx}"),
        format!("pdc-{sfx}"),
    );
    let data = pod.dir.join("ipam");
    let conflist = json!({"cniVersion": "0.4.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": bridge, "isDefaultGateway": true,
         "ipam": {"type": "ipam", "dataDir": data, "ranges": [[{"subnet": "10.94.0.0/24"}]]}},
        {"type": "loopback"}]});
    fs::write(
        pod.dir.join("net.d").join(format!("{net}.conflist")),
        serde_json::to_vec_pretty(&conflist).unwrap(),
    )
    .unwrap();

    // podman sees the hand-written network
    let out = pod
        .cmd()
        .args(["network", "ls", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman network ls: {}",
        output_text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == net),
        "podman does not list {net}: {}",
        output_text(&out)
    );

    let script = "ip -o -4 addr show dev eth0; ip -o -4 addr show dev lo; ip -4 route; \
                  ping -c1 -W3 10.94.0.1";
    let mut run = Command::new("timeout");
    let podman_run = pod.cmd();
    run.args(["-k", "5", "120", "nsenter"])
        .arg(format!("--net={}", host.path().display()))
        .arg(podman_run.get_program())
        .args(podman_run.get_args())
        .envs(podman_run.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .args(["run", "--rm", "--name", &name, "--network", &net])
        .arg(format!("--cgroup-parent=/{}", pod.cgroup_parent))
        .arg("--rootfs")
        .arg(pod.rootfs())
        .args(["/bin/sh", "-c", script])
        .stdin(Stdio::null());
    let run_started = Instant::now();
    let out = run.output().unwrap();
    let run_time = run_started.elapsed();
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "podman run failed (if the error names cgroups, setrlimit or crun, see the workarounds \
         in reference/test-environment.md §3):\n{text}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);

    // the container got the range's first address, lo was brought up, the default route goes
    // via the bridge, and the gateway answered
    let eth0: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(": eth0 ") && l.contains(" inet "))
        .collect();
    assert_eq!(eth0.len(), 1, "{text}");
    assert!(eth0[0].contains("inet 10.94.0.2/24 "), "{text}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(": lo ") && l.contains(" inet 127.0.0.1/8 ")),
        "{text}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.trim() == "default via 10.94.0.1 dev eth0"),
        "{text}"
    );
    assert!(
        stdout.contains("1 packets transmitted, 1 packets received"),
        "the container did not reach its gateway:\n{text}"
    );

    // podman called our plugins: ADD in order, DEL in reverse, in its own netns
    eventually("podman's DEL calls", || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("bridge DEL"))
    });
    let calls: Vec<Vec<String>> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(String::from).collect())
        .filter(|w: &Vec<String>| w.len() >= 2 && w[1] != "VERSION")
        .collect();
    let seq: Vec<String> = calls.iter().map(|w| format!("{} {}", w[0], w[1])).collect();
    assert_eq!(
        seq,
        ["bridge ADD", "loopback ADD", "loopback DEL", "bridge DEL"],
        "{calls:?}"
    );
    let (cid, netns) = (calls[0][2].clone(), calls[0][3].clone());
    assert!(
        cid.len() == 64 && cid.bytes().all(|b| b.is_ascii_hexdigit()),
        "container ID {cid}"
    );
    assert!(netns.starts_with("/run/netns/netns-"), "{netns}");
    assert!(calls.iter().all(|w| w[2] == cid), "{calls:?}");

    // the container is gone, and with it its namespace, veth, lease and cached result
    let out = pod
        .cmd()
        .args(["ps", "--all", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "container left"
    );
    assert!(!Path::new(&netns).exists(), "{netns} left");
    let mut links: Vec<String> = host
        .ip_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    links.sort();
    let mut want = vec![bridge.clone(), "lo".to_string()];
    want.sort();
    assert_eq!(links, want, "the host side keeps only the bridge");
    let store = data.join(&net);
    assert!(
        leases(&store).is_empty(),
        "lease left in {}",
        store.display()
    );
    assert_eq!(
        fs::read_to_string(store.join("last_reserved_ip.0")).unwrap(),
        "10.94.0.2",
        "ipam leased the container's address"
    );
    let cache = Path::new(CACHE_DIR).join(format!("{net}-{cid}-eth0"));
    assert!(!cache.exists(), "{} left", cache.display());

    drop(pod);
    eprintln!(
        "podman run --rm: {run_time:?}; whole test: {:?}",
        started.elapsed()
    );
}
