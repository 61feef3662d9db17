//! Tests of the fixtures themselves (run as root).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use netns_fixtures::{
    EniSpec, SimHost, TestNs, TrunkSpec, run_plugin, run_plugin_with_timeout, sweep_stale,
    unique_suffix, veth_pair,
};

fn netns_listed(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// A throwaway executable script, removed on drop.
struct Script(PathBuf);

impl Script {
    fn new(body: &str) -> Script {
        let path = std::env::temp_dir().join(format!("nsfix-{}.sh", unique_suffix()));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Script(path)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn namespace_exists_then_is_gone_after_drop() {
    let ns = TestNs::new("nsfix");
    let name = ns.name().to_string();
    let path = ns.path().to_path_buf();
    assert!(
        name.starts_with(&format!("nsfix-{}-", std::process::id())),
        "{name}"
    );
    assert_eq!(path, Path::new("/run/netns").join(&name));
    assert!(path.exists());
    assert!(netns_listed(&name));
    // a fresh namespace: only lo, and it is down
    let links = ns.ip_json(&["link", "show"]);
    let links = links.as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["ifname"], "lo");
    assert_eq!(links[0]["operstate"], "DOWN");
    drop(ns);
    assert!(!path.exists());
    assert!(!netns_listed(&name));
}

#[test]
fn namespace_is_gone_after_a_panic() {
    let mut seen = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let ns = TestNs::new("nsfix");
        seen = Some(ns.path().to_path_buf());
        assert!(ns.path().exists());
        panic!("simulated test failure");
    }));
    assert!(result.is_err());
    let path = seen.unwrap();
    assert!(!path.exists(), "{} survived the panic", path.display());
}

#[test]
fn stale_namespaces_of_dead_processes_are_swept() {
    let prefix = format!("nsfixst{}", unique_suffix());
    // a pid that is surely gone: a child we already reaped
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("{prefix}-{dead}-old");
    let live = format!("{prefix}-{}-live", std::process::id());
    for name in [&stale, &live] {
        assert!(
            Command::new("ip")
                .args(["netns", "add", name])
                .status()
                .unwrap()
                .success()
        );
    }
    sweep_stale(&prefix);
    let stale_gone = !Path::new("/run/netns").join(&stale).exists();
    let live_kept = Path::new("/run/netns").join(&live).exists();
    for name in [&stale, &live] {
        if Path::new("/run/netns").join(name).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
    assert!(stale_gone, "{stale} was not swept");
    assert!(live_kept, "{live} of a live process was swept");
}

#[test]
fn exec_spawn_and_sysctl_run_inside_the_namespace() {
    let ns = TestNs::new("nsfix");
    let ns_ino = std::fs::metadata(ns.path()).unwrap().ino();
    let out = ns.exec(Command::new("readlink").arg("/proc/self/ns/net"));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{ns_ino}]")
    );

    // spawn with a piped stdin
    let mut child = ns.spawn(
        Command::new("sh")
            .args(["-c", "read x; echo got-$x; readlink /proc/self/ns/net"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("got-hello\nnet:[{ns_ino}]\n")
    );

    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host_fwd.trim() == "1" { "0" } else { "1" };
    ns.sysctl("net.ipv4.ip_forward", want);
    assert_eq!(ns.sysctl_get("net/ipv4/ip_forward"), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn veth_pair_connects_two_namespaces() {
    let a = TestNs::new("nsfix");
    let b = TestNs::new("nsfix");
    let (an, bn) = (
        format!("va{}", unique_suffix()),
        format!("vb{}", unique_suffix()),
    );
    veth_pair(&a, &an, &b, &bn);
    a.ip_ok(&["addr", "add", "192.0.2.1/24", "dev", &an]);
    b.ip_ok(&["addr", "add", "192.0.2.2/24", "dev", &bn]);
    let link = a.link(&an).unwrap();
    assert_eq!(link["linkinfo"]["info_kind"], "veth");
    assert!(b.link(&bn).is_some());
    assert!(a.link(&bn).is_none());
    let out = a.exec(Command::new("ping").args(["-c1", "-W2", "192.0.2.2"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn fake_eni_is_reachable_from_the_host_namespace() {
    let sim = SimHost::new("nsfix");
    let eni = sim.add_fake_eni(
        "02:0a:0b:0c:0d:0e",
        Some("10.77.0.1/24"),
        Some("2001:db8:77::1/64"),
        9001,
    );
    assert!(
        eni.name.starts_with("eni") && eni.name.len() <= 15,
        "{}",
        eni.name
    );
    assert_eq!(eni.mac, "02:0a:0b:0c:0d:0e");
    assert_eq!(eni.gw_v4, Some("10.77.0.1".parse().unwrap()));
    assert_eq!(eni.gw_v6, Some("2001:db8:77::1".parse().unwrap()));

    let host_side = sim.host.link(&eni.name).unwrap();
    assert_eq!(host_side["address"], "02:0a:0b:0c:0d:0e");
    assert_eq!(host_side["mtu"], 9001);
    assert_eq!(host_side["ifindex"], eni.index);
    assert!(
        host_side["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP")
    );
    let peer = sim.subnet.link(&eni.peer_name).unwrap();
    assert_eq!(peer["mtu"], 9001);
    let addrs = sim.subnet.ip_json(&["addr", "show", "dev", &eni.peer_name]);
    let locals: Vec<String> = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    assert!(locals.contains(&"10.77.0.1/24".to_string()), "{locals:?}");
    assert!(
        locals.contains(&"2001:db8:77::1/64".to_string()),
        "{locals:?}"
    );
    // the ENI does not exist in the real host
    assert!(!Path::new("/sys/class/net").join(&eni.name).exists());

    sim.host
        .ip_ok(&["addr", "add", "10.77.0.10/24", "dev", &eni.name]);
    sim.host.ip_ok(&[
        "addr",
        "add",
        "2001:db8:77::10/64",
        "dev",
        &eni.name,
        "nodad",
    ]);
    let ping4 = sim
        .host
        .exec(Command::new("ping").args(["-c1", "-W2", "10.77.0.1"]));
    assert!(
        ping4.status.success(),
        "{}",
        String::from_utf8_lossy(&ping4.stdout)
    );
    let ping6 = sim
        .host
        .exec(Command::new("ping").args(["-6", "-c1", "-W2", "2001:db8:77::1"]));
    assert!(
        ping6.status.success(),
        "{}",
        String::from_utf8_lossy(&ping6.stdout)
    );
}

#[test]
fn primary_interface_carries_the_default_routes() {
    let sim = SimHost::new("nsfix");
    let prim = sim.add_primary_with_default_route();
    let v4 = sim.host.ip_json(&["route", "show", "default"]);
    assert_eq!(v4[0]["dev"], prim.name.as_str());
    assert_eq!(v4[0]["gateway"], "198.51.100.1");
    let v6 = sim.host.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(v6[0]["dev"], prim.name.as_str());
    assert_eq!(v6[0]["gateway"], "2001:db8:ffff::1");
    let ping = sim
        .host
        .exec(Command::new("ping").args(["-c1", "-W2", "198.51.100.1"]));
    assert!(ping.status.success());
    assert_eq!(prim.index, sim.host.ifindex(&prim.name));
}

#[test]
fn run_plugin_uses_a_clean_env_stdin_and_the_host_namespace() {
    let sim = SimHost::new("nsfix");
    let script =
        Script::new("cat; echo; env | sort; readlink /proc/self/ns/net; echo oops >&2; exit 3");
    let out = sim.run_plugin(
        &script.0,
        &[("CNI_COMMAND", "ADD"), ("CNI_NETNS", "/run/netns/x")],
        b"{\"cniVersion\":\"1.0.0\"}",
    );
    assert_eq!(out.status, 3);
    assert!(!out.timed_out);
    assert_eq!(out.stderr, "oops\n");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "{\"cniVersion\":\"1.0.0\"}");
    let env: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .copied()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    assert_eq!(
        env,
        vec![
            "CNI_COMMAND=ADD",
            "CNI_NETNS=/run/netns/x",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
    let ino = std::fs::metadata(sim.host.path()).unwrap().ino();
    assert_eq!(lines[lines.len() - 1], format!("net:[{ino}]"));

    // without a namespace it runs where we are
    let out = run_plugin(&script.0, None, &[("PATH", "/bin")], b"");
    let own = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    assert!(out.stdout.contains("PATH=/bin\n"));
    assert!(
        out.stdout.ends_with(&format!("{}\n", own.display())),
        "{}",
        out.stdout
    );
}

#[test]
fn run_plugin_kills_a_hung_plugin() {
    let script = Script::new("exec sleep 20");
    let start = std::time::Instant::now();
    let out = run_plugin_with_timeout(&script.0, None, &[], b"", Duration::from_millis(300));
    assert!(out.timed_out);
    assert_eq!(out.status, 128 + 9);
    assert!(out.stderr.contains("killed after"));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn named_namespaces_are_kept_adopted_and_opened() {
    let name = format!("nsfixn-{}", unique_suffix());
    let ns = TestNs::with_name(&name);
    assert_eq!(ns.path(), Path::new("/run/netns").join(&name));
    assert_eq!(ns.keep(), name);
    assert!(netns_listed(&name), "kept after drop");
    // open: a handle that leaves the namespace alone
    drop(TestNs::open(&name).unwrap());
    assert!(netns_listed(&name));
    // adopt: a handle that deletes it
    drop(TestNs::adopt(&name).unwrap());
    assert!(!netns_listed(&name));
    assert!(TestNs::adopt(&name).is_none());
    assert!(TestNs::open("../etc").is_none());
    // a name that exists is refused
    let taken = TestNs::with_name(&name);
    let again = catch_unwind(AssertUnwindSafe(|| TestNs::with_name(&name)));
    assert!(again.is_err());
    assert!(netns_listed(&name), "the refused attempt deleted nothing");
    drop(taken);
    assert!(!netns_listed(&name));
}

#[test]
fn fake_eni_and_trunk_by_spec() {
    let sim = SimHost::new("nsfix");
    let eni = sim.add_fake_eni_with(&EniSpec {
        name: Some("eth1".into()),
        peer_name: Some("vpc0".into()),
        gw_v4_cidr: Some("10.0.1.1/24".into()),
        ..EniSpec::default()
    });
    assert_eq!(
        (eni.name.as_str(), eni.peer_name.as_str()),
        ("eth1", "vpc0")
    );
    assert_eq!(eni.mtu, 1500);
    assert_eq!(sim.host.link("eth1").unwrap()["address"], eni.mac.as_str());
    assert_eq!(sim.subnet.link("vpc0").unwrap()["link_index"], eni.index);
    let trunk = sim.add_fake_trunk(&TrunkSpec {
        mac: Some("0a:00:00:00:00:aa".into()),
        mtu: Some(9001),
        ..TrunkSpec::default()
    });
    assert!(trunk.name.starts_with("trk") && trunk.peer_name.starts_with("trp"));
    let link = sim.host.link(&trunk.name).unwrap();
    assert_eq!(link["address"], "0a:00:00:00:00:aa");
    assert_eq!(link["mtu"], 9001);
    assert!(link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    assert_eq!(sim.subnet.link(&trunk.peer_name).unwrap()["mtu"], 9001);
    assert!(trunk.vlans.is_empty());
}

/// Runs the `netns-fixture` CLI with a private state directory; `down`s the fixture and
/// removes the directory on drop (also when an assertion failed).
struct Cli {
    state: PathBuf,
    name: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(test_support::bin("netns-fixture"))
            .args(args)
            .env("NETNS_FIXTURE_STATE_DIR", &self.state)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.run(&["down", &self.name.clone()]);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// `netns-fixture`, the CLI the benchmarks and examples use: `up` makes the named topology and
/// prints it, `spawn` starts a process in it, `down` kills that process and deletes everything.
#[test]
fn cli_up_spawn_down() {
    let cli = Cli {
        state: std::env::temp_dir().join(format!("nsfix-state-{}", unique_suffix())),
        name: format!("nsfixcli{}", unique_suffix()),
    };
    let name = cli.name.clone();
    let run = |args: &[&str]| cli.run(args);
    let (code, out, err) = run(&[
        "up",
        &name,
        "--ns",
        "task",
        "--eni",
        "name=eth1,peer=vpc0,mac=0a:1b:2c:3d:4e:5f,mtu=9001,gw4=10.0.1.1/24",
        "--primary",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let vars: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(vars["FIXTURE_NAME"], name);
    assert_eq!(vars["HOST_NS"], format!("{name}-host"));
    assert_eq!(vars["SUBNET_NS"], format!("{name}-subnet"));
    assert_eq!(vars["TASK_NS"], format!("{name}-task"));
    assert_eq!(vars["ENI_NAME"], "eth1");
    assert_eq!(vars["ENI_MAC"], "0a:1b:2c:3d:4e:5f");
    assert_eq!(vars["ENI_GW4"], "10.0.1.1");
    assert_eq!(vars["PRIMARY_GW4"], "198.51.100.1");
    for ns in ["host", "subnet", "task"] {
        assert!(netns_listed(&format!("{name}-{ns}")), "{ns}");
    }
    let host = TestNs::open(&format!("{name}-host")).unwrap();
    assert_eq!(host.link("eth1").unwrap()["mtu"], 9001);
    // the same name twice is refused, and nothing is touched
    let (code, _, err) = run(&["up", &name]);
    assert_eq!(code, Some(1), "{err}");
    assert!(netns_listed(&format!("{name}-host")));
    // a bad element is a usage error
    assert_eq!(run(&["add", &name, "--eni", "colour=red"]).0, Some(2));

    let (code, pid, err) = run(&["spawn", &name, "task", "--", "sleep", "300"]);
    assert_eq!(code, Some(0), "{err}");
    let pid = pid.trim().to_string();
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let task_ns = std::fs::metadata(format!("/run/netns/{name}-task"))
        .unwrap()
        .ino();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ns_of(&pid) != Some(PathBuf::from(format!("net:[{task_ns}]"))) {
        assert!(std::time::Instant::now() < deadline, "{:?}", ns_of(&pid));
        std::thread::sleep(Duration::from_millis(20));
    }

    let (code, _, err) = run(&["down", &name]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("3 namespaces deleted, 1 processes stopped"),
        "{err}"
    );
    for ns in ["host", "subnet", "task"] {
        assert!(!netns_listed(&format!("{name}-{ns}")), "{ns}");
    }
    let state_of = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state_of.is_empty() || state_of.contains(") Z "),
        "{state_of}"
    );
    // down again: nothing to do
    assert_eq!(run(&["down", &name]).0, Some(0));
}
