//! The plugins under containerd's CRI plugin, the path of most CNI calls in the world (a
//! Kubernetes node): Debian's containerd 1.6.20, driven through the CRI gRPC API (runtime.v1)
//! as kubelet drives it, by `tests/system/tests/containerd/cri.py` (Python, Debian's python3-grpcio, with the
//! message module that `scripts/build-cri-client.sh` generates from the `api.proto` of Debian's
//! containerd source package). The network is a conflist of our `bridge` (with our `ipam`, host-local's
//! default dataDir) and Debian's `portmap`; containerd adds its own loopback network, which runs our
//! `loopback`. Every plugin is a wrapper that logs `<plugin> <command> <container id>
//! [<CNI_NETNS>] <exit status>` and runs the real binary.
//!
//! The node: a network namespace of the test (the bridge, the veths and the NAT rules live there)
//! and a private mount namespace held by a holder process (`unshare --mount`), in which the
//! node's `/run` and `/var/lib` are directories of the test, so containerd's state, socket, shim
//! sockets, runc root, pod network namespaces (`/var/run/netns/cni-*`), libcni's result cache
//! (`/var/lib/cni/results`), the ipam leases (`/var/lib/cni/networks`) and containerd's root all
//! stay in the test's directory, and seen from the test at their real names. containerd runs
//! in both namespaces (`nsenter -t HOLDER -m -n`), is restarted the same way, and is stopped by
//! its PID; the holder, containerd's shims and the pods' processes (found by mount namespace and
//! by the per-test cgroup parent) are killed by PID at the end, even on failure.
//!
//! The sandbox image is built here: a static C program that waits for SIGTERM
//! (`tests/system/tests/containerd/pause.c`), packed by `cri.py make-image` as a docker archive and
//! imported with `ctr images import`: no registry. containerd's CRI config sets
//! `restrict_oom_score_adj` (root here lacks CAP_SYS_RESOURCE, and runc fails without it).
//!
//! Scenarios, in order, on one node: two pods (status, leases, addresses, pod-to-pod traffic, a
//! hostPort reached from a client namespace outside the node); a containerd restart with both
//! alive; StopPodSandbox and RemovePodSandbox, each twice (the later DELs come with
//! `CNI_NETNS=""`); twelve pods started and removed in parallel; a 1.1.0 conflist, whose
//! result containerd 1.6 (libcni 1.1) cannot parse: the failed RunPodSandbox leaves nothing.
//!
//! Needs the Debian packages containerd, runc, containernetworking-plugins, python3-grpcio,
//! python3-protobuf, protobuf-compiler, gcc and libc6-dev (tests/run-all.sh installs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use netns_fixtures::{unique_suffix, veth_pair};
use serde_json::{Value, json};
use test_support::*;

const PACKAGES_HINT: &str = "install Debian's containerd, runc, containernetworking-plugins, \
     python3-grpcio, python3-protobuf, protobuf-compiler, gcc and libc6-dev \
     (tests/run-all.sh does)";

/// Debian's python, where python3-grpcio and python3-protobuf are (not a pyenv on PATH).
const PYTHON: &str = "/usr/bin/python3";
/// Debian's reference portmap (containernetworking-plugins 1.1.1: CNI up to 1.0.0).
const PORTMAP: &str = "/usr/lib/cni/portmap";
const IMAGE: &str = "localhost/task-cni-pause:1";
const NET: &str = "k8s-pods";
const SUBNET_PREFIX: &str = "10.77.0.";
const GATEWAY: &str = "10.77.0.1";
/// The node's address on the link to the client namespace, and the client's.
const NODE_ADDR: &str = "192.0.2.1";
const CLIENT_ADDR: &str = "192.0.2.2";
const HOST_PORT: u16 = 8080;
const POD_PORT: u16 = 80;

fn on_path(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).is_file())
}

fn require_prerequisites() {
    let missing: Vec<&str> = [
        "containerd",
        "containerd-shim-runc-v2",
        "ctr",
        "runc",
        "nsenter",
        "unshare",
        "cc",
        "nft",
    ]
    .into_iter()
    .filter(|t| !on_path(t))
    .collect();
    assert!(missing.is_empty(), "missing {missing:?}: {PACKAGES_HINT}");
    assert!(Path::new(PORTMAP).is_file(), "{PORTMAP}: {PACKAGES_HINT}");
    let out = Command::new(PYTHON)
        .args(["-c", "import grpc, google.protobuf"])
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}: {PACKAGES_HINT}"));
    assert!(
        out.status.success(),
        "{PYTHON} cannot import grpc and protobuf: {}{PACKAGES_HINT}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory of the generated `api_pb2.py`: what `scripts/build-cri-client.sh` prints
/// (it generates it once, and is fast afterwards).
fn cri_client_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("scripts").join("build-cri-client.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = PathBuf::from(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim(),
        );
        assert!(
            dir.join("api_pb2.py").is_file(),
            "build-cri-client.sh printed {dir:?}, which has no api_pb2.py"
        );
        dir
    })
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check_output(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: sends a signal to one process, found by the caller as one the test started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls `f` for up to `secs` seconds (waiting for an asynchronous effect, not timing it).
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One plugin call, as the wrapper logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    plugin: String,
    command: String,
    id: String,
    netns: String,
    status: i32,
}

/// A pod's status as `cri.py status` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodStatus {
    state: String,
    ip: String,
    pid: i32,
    netns: String,
}

/// The node: its network namespace, its mount namespace (the holder), containerd, and the
/// test's directory; everything is stopped and removed on drop.
struct Node {
    dir: PathBuf,
    ns: TestNs,
    holder: Child,
    holder_mnt: String,
    containerd: Option<Child>,
    starts: u32,
    cgroup_parent: String,
}

impl Node {
    fn new() -> Node {
        let sfx = unique_suffix();
        let dir = std::env::temp_dir().join(format!("ctd-{}-{sfx}", std::process::id()));
        for d in ["run", "var-lib", "cni-bin", "net.d"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let ns = TestNs::new("ctdn");
        ns.ip_ok(&["link", "set", "lo", "up"]);
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(
                "mount --bind \"$1\" /run && mount --bind \"$2\" /var/lib && echo ready && \
                 exec sleep infinity",
            )
            .arg("sh")
            .arg(dir.join("run"))
            .arg(dir.join("var-lib"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut holder = ns.spawn(&mut cmd);
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let holder_mnt = fs::read_link(format!("/proc/{}/ns/mnt", holder.id()))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let node = Node {
            dir,
            ns,
            holder,
            holder_mnt,
            containerd: None,
            starts: 0,
            cgroup_parent: format!("task-cni-ctd-{}-{sfx}", std::process::id()),
        };
        assert_eq!(
            line.trim(),
            "ready",
            "the node's mount namespace was not made"
        );
        assert_ne!(
            node.holder_mnt,
            fs::read_link("/proc/self/ns/mnt")
                .unwrap()
                .display()
                .to_string(),
            "the holder shares the test's mount namespace"
        );
        node.write_plugins();
        node.write_config();
        node
    }

    fn calls_log(&self) -> PathBuf {
        self.dir.join("calls.log")
    }

    /// `bridge`, `loopback` and `portmap` wrappers that log each call with its exit status;
    /// `ipam` is a link (bridge delegates to it in-process or by exec).
    fn write_plugins(&self) {
        let d = self.dir.join("cni-bin");
        for (name, real) in [
            ("bridge", bin("bridge")),
            ("loopback", bin("loopback")),
            ("portmap", PathBuf::from(PORTMAP)),
        ] {
            let script = format!(
                "#!/bin/sh\n'{}' \"$@\"\nrc=$?\necho \"{name} $CNI_COMMAND $CNI_CONTAINERID [$CNI_NETNS] $rc\" >> '{}'\nexit $rc\n",
                real.display(),
                self.calls_log().display()
            );
            fs::write(d.join(name), script).unwrap();
            fs::set_permissions(d.join(name), fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(bin("ipam"), d.join("ipam")).unwrap();
    }

    /// containerd's config, as a node's: default root and state (inside the node's private
    /// `/var/lib` and `/run`), the CRI plugin with our CNI directories and the local image.
    fn write_config(&self) {
        let conf = format!(
            r#"version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "/run/runc-k8s"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{conf}"
    max_conf_num = 1
"#,
            bin = self.dir.join("cni-bin").display(),
            conf = self.dir.join("net.d").display(),
        );
        fs::write(self.dir.join("config.toml"), conf).unwrap();
    }

    /// Writes the one conflist (atomically: a rename, as an operator's tool would).
    fn write_conflist(&self, conflist: &Value) {
        let tmp = self.dir.join("net.d").join(".10-pods.conflist.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(conflist).unwrap()).unwrap();
        fs::rename(&tmp, self.dir.join("net.d").join("10-pods.conflist")).unwrap();
    }

    /// The cniVersion of our network as containerd has loaded it (its Status RPC, verbose).
    fn loaded_cni_version(&self) -> Option<String> {
        let v = self.cri(&["cni-config"]);
        v["Networks"]
            .as_array()?
            .iter()
            .find(|n| n["Config"]["Name"] == NET)
            .and_then(|n| n["Config"]["CNIVersion"].as_str().map(String::from))
    }

    /// The containerd socket, from the test's side.
    fn socket(&self) -> PathBuf {
        self.dir.join("run/containerd/containerd.sock")
    }

    fn start_containerd(&mut self) {
        assert!(self.containerd.is_none());
        self.starts += 1;
        let log =
            fs::File::create(self.dir.join(format!("containerd-{}.log", self.starts))).unwrap();
        let child = Command::new("nsenter")
            .args([
                "-t",
                &self.holder.id().to_string(),
                "-m",
                "-n",
                "--",
                "containerd",
            ])
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.containerd = Some(child);
        let sock = self.socket();
        eventually(60, "containerd's CRI service", || {
            if let Some(st) = self.containerd.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({st}): {}", self.containerd_log());
            }
            sock.exists() && self.cri_raw(&["version"]).status.success()
        });
    }

    /// Stops containerd by its PID (SIGTERM, as a service manager does) and waits for it.
    fn stop_containerd(&mut self) {
        let Some(mut c) = self.containerd.take() else {
            return;
        };
        kill(c.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                kill(c.id() as i32, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn containerd_log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("containerd-{}.log", self.starts)))
            .unwrap_or_default()
    }

    fn cri_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PYTHON);
        c.arg(repo_root().join("tests/system/tests/containerd/cri.py"))
            .arg("--gen")
            .arg(cri_client_dir())
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn cri_raw(&self, args: &[&str]) -> Output {
        self.cri_cmd(args).output().unwrap()
    }

    /// A CRI call that must succeed; its JSON.
    fn cri(&self, args: &[&str]) -> Value {
        let out = self.cri_raw(args);
        assert!(
            out.status.success(),
            "cri.py {args:?}: {}\n--- containerd log (tail):\n{}",
            output_text(&out),
            tail(&self.containerd_log(), 30)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn run_pod(&self, name: &str, ports: &[&str]) -> String {
        let cg = format!("/{}", self.cgroup_parent);
        let mut args = vec!["run", name, "--cgroup-parent", &cg];
        for p in ports {
            args.extend(["--port", p]);
        }
        let id = self.cri(&args)["id"].as_str().unwrap().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "sandbox id {id}"
        );
        id
    }

    fn status(&self, ids: &[&str]) -> Vec<PodStatus> {
        let mut args = vec!["status"];
        args.extend(ids);
        let v = self.cri(&args);
        v.as_array()
            .unwrap()
            .iter()
            .zip(ids)
            .map(|(s, id)| {
                assert_eq!(s["id"], *id);
                PodStatus {
                    state: s["state"].as_str().unwrap().to_string(),
                    ip: s["ip"].as_str().unwrap().to_string(),
                    pid: i32::try_from(s["pid"].as_i64().unwrap()).unwrap(),
                    netns: s["netns"].as_str().unwrap().to_string(),
                }
            })
            .collect()
    }

    /// StopPodSandbox or RemovePodSandbox on all `ids` at once; each must succeed.
    fn stop_or_remove(&self, verb: &str, ids: &[&str]) {
        let mut args = vec![verb];
        args.extend(ids);
        let v = self.cri(&args);
        assert!(
            v.as_array().unwrap().iter().all(|r| r["error"].is_null()),
            "{verb}: {v}"
        );
    }

    fn listed(&self) -> BTreeMap<String, String> {
        self.cri(&["list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The plugin calls logged so far (VERSION calls left out), and the log emptied.
    fn take_calls(&self) -> Vec<Call> {
        let text = fs::read_to_string(self.calls_log()).unwrap_or_default();
        fs::write(self.calls_log(), "").unwrap();
        text.lines()
            .map(|l| {
                let (head, rest) = l
                    .split_once(" [")
                    .unwrap_or_else(|| panic!("log line {l:?}"));
                let (netns, status) = rest.rsplit_once("] ").unwrap();
                let w: Vec<&str> = head.split(' ').collect();
                Call {
                    plugin: w[0].to_string(),
                    command: w[1].to_string(),
                    id: w.get(2).copied().unwrap_or_default().to_string(),
                    netns: netns.to_string(),
                    status: status.parse().unwrap(),
                }
            })
            .filter(|c| c.command != "VERSION")
            .collect()
    }

    /// The ipam leases in host-local's default dataDir of the node: address → (owner, ifname).
    fn leases(&self) -> BTreeMap<String, (String, String)> {
        let d = self.dir.join("var-lib/cni/networks").join(NET);
        let Ok(rd) = fs::read_dir(&d) else {
            return BTreeMap::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .map(|n| {
                let text = fs::read_to_string(d.join(&n)).unwrap();
                let (id, ifname) = text.split_once("\r\n").unwrap_or((text.as_str(), ""));
                (n, (id.to_string(), ifname.to_string()))
            })
            .collect()
    }

    /// The pod network namespaces containerd has (its `/var/run/netns`, from the test's side).
    fn netns_files(&self) -> BTreeSet<String> {
        fs::read_dir(self.dir.join("run/netns"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| format!("/var/run/netns/{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// libcni's cached results of the node (`/var/lib/cni/results`).
    fn cached_results(&self) -> BTreeSet<String> {
        fs::read_dir(self.dir.join("var-lib/cni/results"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The node's veths.
    fn veths(&self) -> BTreeSet<String> {
        self.ns
            .ip_json(&["-d", "link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["linkinfo"]["info_kind"] == "veth" && l["ifname"] != "nd0")
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// The node's NAT rules naming `id`: our bridge's (nftables) and portmap's (iptables-nft,
    /// whose comments only iptables-save shows).
    fn rules_naming(&self, id: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for tool in [
            &["nft", "list", "ruleset"][..],
            &["iptables-save", "-t", "nat"][..],
        ] {
            let out = check_output(
                Command::new("nsenter")
                    .arg(format!("--net={}", self.ns.path().display()))
                    .args(tool),
            );
            lines.extend(
                out.lines()
                    .filter(|l| l.contains(id))
                    .map(|l| l.trim().to_string()),
            );
        }
        lines
    }

    /// PIDs in the node's mount namespace (containerd, its shims) and in the pods' cgroups.
    fn node_pids(&self) -> BTreeSet<i32> {
        let mut pids = BTreeSet::new();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let same = fs::read_link(e.path().join("ns/mnt"))
                    .is_ok_and(|p| p.display().to_string() == self.holder_mnt);
                if same && pid != self.holder.id() as i32 {
                    pids.insert(pid);
                }
            }
        }
        for d in self.cgroup_dirs() {
            if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
                pids.extend(text.lines().filter_map(|l| l.parse::<i32>().ok()));
            }
        }
        pids
    }

    /// The pods' cgroup directories under the per-test parent, deepest first.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
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

    /// Runs `cmd` in the network namespace of the pod whose sandbox process is `pid`.
    fn in_pod(pid: i32, cmd: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid.to_string(), "-n", "--"])
            .args(cmd)
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_containerd();
        // containerd's shims and the pods' processes: by PID, then wait for them to go
        for _ in 0..3 {
            let pids = self.node_pids();
            if pids.is_empty() {
                break;
            }
            for &p in &pids {
                kill(p, libc::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while pids.iter().any(|&p| pid_alive(p)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for d in self.cgroup_dirs() {
                let _ = fs::remove_dir(d);
            }
            if self.cgroup_dirs().is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for d in self.cgroup_dirs() {
            eprintln!("containerd test: could not remove cgroup {}", d.display());
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "containerd test: could not remove {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The conflist: our bridge (gateway, NAT) with our ipam at its default dataDir, then portmap.
fn conflist(version: &str, with_portmap: bool) -> Value {
    let mut plugins = vec![json!({
        "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
        "ipam": {"type": "ipam", "ranges": [[{"subnet": format!("{SUBNET_PREFIX}0/24")}]],
                 "routes": [{"dst": "0.0.0.0/0"}]}
    })];
    if with_portmap {
        plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}}));
    }
    json!({"cniVersion": version, "name": NET, "plugins": plugins})
}

/// The calls of one pod's network setup or teardown: (plugin, command) in order, each with
/// container id `id`, CNI_NETNS `netns` and exit status 0.
fn assert_calls(calls: &[Call], id: &str, netns: &str, want: &[(&str, &str)], what: &str) {
    let mine: Vec<&Call> = calls.iter().filter(|c| c.id == id).collect();
    let got: Vec<(&str, &str)> = mine
        .iter()
        .map(|c| (c.plugin.as_str(), c.command.as_str()))
        .collect();
    // loopback (containerd's own lo network) and our network run concurrently: compare as sets
    // per command, and the commands in order
    let mut g = got.clone();
    let mut w = want.to_vec();
    g.sort();
    w.sort();
    assert_eq!(g, w, "{what}: calls {mine:#?}");
    for c in &mine {
        assert_eq!((c.netns.as_str(), c.status), (netns, 0), "{what}: {c:?}");
    }
}

fn pod_eth0(pid: i32) -> (Vec<String>, Vec<String>) {
    let addrs: Value = serde_json::from_str(&check_output(&mut Node::in_pod(
        pid,
        &["ip", "-j", "-4", "addr", "show", "dev", "eth0"],
    )))
    .unwrap();
    let addrs = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    let routes: Value = serde_json::from_str(&check_output(&mut Node::in_pod(
        pid,
        &["ip", "-j", "-4", "route", "show"],
    )))
    .unwrap();
    let routes = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["dst"].as_str().unwrap_or("-"),
                r["gateway"].as_str().unwrap_or("-")
            )
        })
        .collect();
    (addrs, routes)
}

fn ping(from_pid: i32, to: &str) {
    let out = Node::in_pod(from_pid, &["ping", "-c1", "-W3", to])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 received"),
        "ping {to} from the pod of pid {from_pid}: {}",
        output_text(&out)
    );
}

/// A TCP listener in the pod (Python, started and stopped by PID) that answers each
/// connection with `<pod> saw <peer address>`.
struct Listener(Child);

impl Listener {
    fn start(pid: i32, pod: &str) -> Listener {
        let script = format!(
            "import socket,sys\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', {POD_PORT})); s.listen(8); print('listening', flush=True)\n\
             while True:\n    c,a=s.accept(); c.sendall(('{pod} saw %s' % a[0]).encode()); c.close()\n"
        );
        let mut child = Node::in_pod(pid, &[PYTHON, "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let l = Listener(child);
        assert_eq!(
            line.trim(),
            "listening",
            "the listener in {pod} did not start"
        );
        l
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn containerd_cri_runs_pods_on_our_plugins() {
    require_prerequisites();
    let started = Instant::now();
    let mut phases: Vec<(&str, Duration)> = Vec::new();
    let mut phase_start = Instant::now();
    let mut phase = |name: &'static str, t: &mut Instant| {
        phases.push((name, t.elapsed()));
        *t = Instant::now();
    };
    cri_client_dir();

    let mut node = Node::new();
    node.write_conflist(&conflist("1.0.0", true));
    // the sandbox image: the static pause program, packed and imported
    let pause = node.dir.join("pause");
    check_output(
        Command::new("cc")
            .args(["-static", "-Os", "-s", "-o"])
            .arg(&pause)
            .arg(repo_root().join("tests/system/tests/containerd/pause.c")),
    );
    let tarball = node.dir.join("pause.tar");
    let mut mk = Command::new(PYTHON);
    mk.arg(repo_root().join("tests/system/tests/containerd/cri.py"))
        .arg("make-image")
        .arg(&pause)
        .arg(&tarball)
        .arg(IMAGE);
    check_output(&mut mk);
    node.start_containerd();
    let v = node.cri(&["version"]);
    assert_eq!(
        (v["runtime"].as_str(), v["api"].as_str()),
        (Some("containerd"), Some("v1")),
        "{v}"
    );
    assert!(v["version"].as_str().unwrap().starts_with("1.6."), "{v}");
    let imported = check_output(
        Command::new("ctr")
            .arg("--address")
            .arg(node.socket())
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&tarball),
    );
    assert!(imported.contains(IMAGE), "ctr import: {imported}");
    phase("containerd up, image imported", &mut phase_start);

    // --- two pods ----------------------------------------------------------------------------
    let id_a = node.run_pod("pod-a", &[&format!("{HOST_PORT}:{POD_PORT}")]);
    let id_b = node.run_pod("pod-b", &[]);
    let st = node.status(&[&id_a, &id_b]);
    let (a, b) = (st[0].clone(), st[1].clone());
    for (s, name) in [(&a, "pod-a"), (&b, "pod-b")] {
        assert_eq!(s.state, "SANDBOX_READY", "{name}: {s:?}");
        assert!(
            s.ip.starts_with(SUBNET_PREFIX) && s.ip != GATEWAY,
            "{name}: {s:?}"
        );
        assert!(s.pid > 0 && pid_alive(s.pid), "{name}: {s:?}");
        assert!(s.netns.starts_with("/var/run/netns/cni-"), "{name}: {s:?}");
    }
    assert_ne!(a.ip, b.ip);
    // PodSandboxStatus reports the addresses our ipam leased, to these sandboxes, on eth0
    assert_eq!(
        node.leases(),
        BTreeMap::from([
            (a.ip.clone(), (id_a.clone(), "eth0".to_string())),
            (b.ip.clone(), (id_b.clone(), "eth0".to_string())),
        ])
    );
    let calls = node.take_calls();
    assert_calls(
        &calls,
        &id_a,
        &a.netns,
        &[("bridge", "ADD"), ("portmap", "ADD"), ("loopback", "ADD")],
        "RunPodSandbox pod-a",
    );
    assert_calls(
        &calls,
        &id_b,
        &b.netns,
        &[("bridge", "ADD"), ("portmap", "ADD"), ("loopback", "ADD")],
        "RunPodSandbox pod-b",
    );
    assert_eq!(
        node.netns_files(),
        BTreeSet::from([a.netns.clone(), b.netns.clone()])
    );
    assert_eq!(node.veths().len(), 2, "{:?}", node.veths());
    for (s, name) in [(&a, "pod-a"), (&b, "pod-b")] {
        let (addrs, routes) = pod_eth0(s.pid);
        assert_eq!(addrs, [format!("{}/24", s.ip)], "{name}");
        assert!(
            routes.contains(&format!("default {GATEWAY}")),
            "{name}: {routes:?}"
        );
    }
    // NAT: our masquerade rule for each pod, portmap's DNAT for pod-a's hostPort
    assert_eq!(
        node.rules_naming(&id_b).len(),
        1,
        "{:?}",
        node.rules_naming(&id_b)
    );
    assert_eq!(
        node.rules_naming(&id_a).len(),
        2,
        "{:?}",
        node.rules_naming(&id_a)
    );
    phase("2 pods run", &mut phase_start);

    // --- pod-to-pod traffic, the hostPort from outside the node ------------------------------
    ping(a.pid, &b.ip);
    ping(b.pid, &a.ip);
    let client = TestNs::new("ctdc");
    veth_pair(&client, "cl0", &node.ns, "nd0");
    client.ip_ok(&["addr", "add", &format!("{CLIENT_ADDR}/24"), "dev", "cl0"]);
    node.ns
        .ip_ok(&["addr", "add", &format!("{NODE_ADDR}/24"), "dev", "nd0"]);
    let hostport_reply = |what: &str| {
        let script = format!(
            "import socket\ns=socket.create_connection(('{NODE_ADDR}', {HOST_PORT}), timeout=10)\n\
             print(s.recv(200).decode())"
        );
        let out = client.exec(
            Command::new(PYTHON)
                .args(["-c", &script])
                .stdin(Stdio::null()),
        );
        assert!(out.status.success(), "{what}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let listener = Listener::start(a.pid, "pod-a");
    assert_eq!(
        hostport_reply("hostPort"),
        format!("pod-a saw {CLIENT_ADDR}")
    );
    drop(listener);
    phase("traffic", &mut phase_start);

    // --- containerd restarts while the pods run ----------------------------------------------
    node.stop_containerd();
    assert!(
        pid_alive(a.pid) && pid_alive(b.pid),
        "the pods died with containerd"
    );
    ping(a.pid, &b.ip);
    node.start_containerd();
    assert_eq!(
        node.status(&[&id_a, &id_b]),
        [a.clone(), b.clone()],
        "status after the restart"
    );
    ping(b.pid, &a.ip);
    let listener = Listener::start(a.pid, "pod-a");
    assert_eq!(
        hostport_reply("hostPort after the restart"),
        format!("pod-a saw {CLIENT_ADDR}")
    );
    drop(listener);
    assert_eq!(node.take_calls(), [], "a restart calls no plugin");
    assert_eq!(node.leases().len(), 2);
    phase("containerd restart", &mut phase_start);

    // --- StopPodSandbox, RemovePodSandbox, each twice ----------------------------------------
    let full = [("bridge", "DEL"), ("portmap", "DEL"), ("loopback", "DEL")];
    node.stop_or_remove("stop", &[&id_b]);
    assert_calls(
        &node.take_calls(),
        &id_b,
        &b.netns,
        &full,
        "first StopPodSandbox",
    );
    eventually(10, "pod-b's sandbox process to end", || !pid_alive(b.pid));
    let stopped = &node.status(&[&id_b])[0];
    assert_eq!(
        (stopped.state.as_str(), stopped.ip.as_str()),
        ("SANDBOX_NOTREADY", ""),
        "{stopped:?}"
    );
    assert!(
        !node.leases().contains_key(&b.ip),
        "pod-b's lease kept: {:?}",
        node.leases()
    );
    assert_eq!(node.veths().len(), 1, "{:?}", node.veths());
    assert_eq!(node.rules_naming(&id_b), Vec::<String>::new());
    assert_eq!(node.netns_files(), BTreeSet::from([a.netns.clone()]));
    // the netns is gone now: containerd tears down again with CNI_NETNS="", which must succeed
    node.stop_or_remove("stop", &[&id_b]);
    assert_calls(
        &node.take_calls(),
        &id_b,
        "",
        &full,
        "second StopPodSandbox",
    );
    node.stop_or_remove("remove", &[&id_b]);
    assert_calls(&node.take_calls(), &id_b, "", &full, "RemovePodSandbox");
    node.stop_or_remove("remove", &[&id_b]);
    node.take_calls();
    assert!(!node.listed().contains_key(&id_b));
    let out = node.cri_raw(&["status", &id_b]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NOT_FOUND"),
        "{}",
        output_text(&out)
    );
    // pod-a: stopped and removed the same way; its hostPort rule goes with it
    node.stop_or_remove("stop", &[&id_a]);
    assert_calls(
        &node.take_calls(),
        &id_a,
        &a.netns,
        &full,
        "StopPodSandbox pod-a",
    );
    node.stop_or_remove("stop", &[&id_a]);
    node.stop_or_remove("remove", &[&id_a]);
    node.stop_or_remove("remove", &[&id_a]);
    let calls = node.take_calls();
    assert!(
        calls
            .iter()
            .all(|c| c.id == id_a && c.command == "DEL" && c.netns.is_empty() && c.status == 0),
        "{calls:#?}"
    );
    assert_eq!(node.listed(), BTreeMap::new());
    assert_eq!(node.leases(), BTreeMap::new());
    assert_eq!(node.veths(), BTreeSet::new());
    assert_eq!(node.netns_files(), BTreeSet::new());
    assert_eq!(node.cached_results(), BTreeSet::new());
    assert_eq!(node.rules_naming(&id_a), Vec::<String>::new());
    phase("stop/remove twice", &mut phase_start);

    // --- twelve pods in parallel -------------------------------------------------------------
    const N: usize = 12;
    let cg = format!("/{}", node.cgroup_parent);
    let many = node.cri(&["run-many", "many", &N.to_string(), "--cgroup-parent", &cg]);
    let ids: Vec<String> = many
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["error"].is_null(), "{r}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), N);
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let st = node.status(&id_refs);
    let ips: BTreeSet<&str> = st.iter().map(|s| s.ip.as_str()).collect();
    assert_eq!(ips.len(), N, "addresses not distinct: {st:?}");
    assert!(
        st.iter()
            .all(|s| s.state == "SANDBOX_READY" && s.ip.starts_with(SUBNET_PREFIX)),
        "{st:?}"
    );
    let want: BTreeMap<String, (String, String)> = st
        .iter()
        .zip(&ids)
        .map(|(s, id)| (s.ip.clone(), (id.clone(), "eth0".to_string())))
        .collect();
    assert_eq!(node.leases(), want);
    assert_eq!(node.veths().len(), N);
    let calls = node.take_calls();
    assert_eq!(calls.len(), 3 * N, "{calls:#?}");
    for (s, id) in st.iter().zip(&ids) {
        assert_calls(
            &calls,
            id,
            &s.netns,
            &[("bridge", "ADD"), ("portmap", "ADD"), ("loopback", "ADD")],
            "parallel RunPodSandbox",
        );
    }
    ping(st[0].pid, &st[N - 1].ip);
    node.stop_or_remove("stop", &id_refs);
    node.stop_or_remove("remove", &id_refs);
    let calls = node.take_calls();
    assert!(
        calls.iter().all(|c| c.command == "DEL" && c.status == 0),
        "{calls:#?}"
    );
    assert_eq!(node.listed(), BTreeMap::new());
    assert_eq!(node.leases(), BTreeMap::new());
    assert_eq!(node.veths(), BTreeSet::new());
    assert_eq!(node.netns_files(), BTreeSet::new());
    assert_eq!(node.cached_results(), BTreeSet::new());
    phase("12 pods in parallel", &mut phase_start);

    // --- a 1.1.0 conflist: containerd 1.6 cannot parse the result; nothing is left -----------
    // (our plugins only: Debian's portmap 1.1.1 refuses a 1.1.0 config, on DEL too)
    node.write_conflist(&conflist("1.1.0", false));
    eventually(30, "containerd loading the 1.1.0 conflist", || {
        node.loaded_cni_version().as_deref() == Some("1.1.0")
    });
    let cg = format!("/{}", node.cgroup_parent);
    let out = node.cri_raw(&["run", "pod-v110", "--cgroup-parent", &cg]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains(
                r#"plugin type="bridge" failed (add): unsupported CNI result version "1.1.0""#
            ),
        "RunPodSandbox with a 1.1.0 conflist: {}",
        output_text(&out)
    );
    let calls = node.take_calls();
    let bridge: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.plugin == "bridge")
        .map(|c| (c.command.as_str(), c.netns.as_str()))
        .collect();
    assert_eq!(bridge.len(), 2, "{calls:#?}");
    assert_eq!((bridge[0].0, bridge[1].0), ("ADD", "DEL"), "{calls:#?}");
    assert!(
        calls.iter().all(|c| c.status == 0
            && c.netns == bridge[0].1
            && c.netns.starts_with("/var/run/netns/cni-")),
        "{calls:#?}"
    );
    let id = calls[0].id.clone();
    assert_eq!(node.listed(), BTreeMap::new(), "the failed sandbox is kept");
    assert_eq!(node.leases(), BTreeMap::new());
    assert_eq!(node.veths(), BTreeSet::new());
    assert_eq!(node.netns_files(), BTreeSet::new());
    assert_eq!(node.cached_results(), BTreeSet::new());
    assert_eq!(node.rules_naming(&id), Vec::<String>::new());
    phase("1.1.0 conflist", &mut phase_start);

    // the node is back to its bridge alone, and no pod process is left
    node.stop_containerd();
    eventually(10, "no shim or pod process left", || {
        node.node_pids().is_empty()
    });
    drop(client);
    drop(node);
    for (name, d) in &phases {
        eprintln!("containerd test: {name}: {d:?}");
    }
    eprintln!("containerd test: whole test {:?}", started.elapsed());
}
