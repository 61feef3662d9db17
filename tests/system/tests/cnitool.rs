//! The plugins driven by a real client: `cnitool` (the CNI project's own client, libcni 1.1.2),
//! built from Debian's source package by `scripts/build-cnitool.sh` (`cargo xtask cnitool`).
//!
//! - bridge + ipam, loopback and eni conflists: `cnitool add`, `check`, `del` twice, with the
//!   kernel state and the printed result asserted after each step. cnitool runs inside a
//!   simulated host's "host" namespace (the plugins it executes inherit it), with NETCONFPATH
//!   and CNI_PATH pointing at per-test directories.
//! - GC and STATUS of a 1.1.0 list: libcni 1.1.2 knows neither (and refuses 1.1.0 results), so
//!   [`Libcni`] invokes the binaries exactly as libcni 1.1 does.
//! - Every JSON file under `examples/`: parsed, and run through its plugin's ADD and DEL in a
//!   scratch simulated host (conflists and the ECS agent's per-plugin configs through cnitool,
//!   which wraps a single `.json` config into a list as libcni does for the agent).
//! - branch-eni needs 802.1Q, which this kernel lacks: the `vm_*` tests are `#[ignore]`d here and
//!   run inside user-mode-linux by [`branch_eni_through_cnitool_inside_user_mode_linux`].
//!
//! cnitool's result cache is hard-coded to `/var/lib/cni/results` (machine-global): every test
//! uses its own network names and namespaces (so its own cache files, whose names are derived
//! from both) and removes its cache files when it ends, even on failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use netns_fixtures::{DEFAULT_PATH, unique_suffix};
use serde_json::{Value, json};
use test_support::*;

/// libcni's result cache (`libcni.CacheDir` + `/results`), fixed in cnitool.
const CACHE_DIR: &str = "/var/lib/cni/results";

/// Debian's reference `portmap` (containernetworking-plugins), chained after our bridge by
/// `examples/conflists/30-bridge-portmap.conflist`.
const REFERENCE_PORTMAP: &str = "/usr/lib/cni/portmap";

/// Our plugins under their own names and under the names the ECS agent executes.
const PLUGIN_NAMES: [(&str, &str); 10] = [
    ("bridge", "bridge"),
    ("ipam", "ipam"),
    ("loopback", "loopback"),
    ("eni", "eni"),
    ("branch-eni", "branch-eni"),
    ("ecs-eni", "eni"),
    ("vpc-eni", "eni"),
    ("vpc-branch-eni", "branch-eni"),
    ("ecs-ipam", "ipam"),
    ("ecs-bridge", "bridge"),
];

fn repo() -> PathBuf {
    repo_root()
}

fn examples_dir() -> PathBuf {
    repo().join("examples")
}

/// The cnitool binary: `$CNITOOL` if set (the user-mode-linux guest, which cannot run apt, gets
/// the host's), else what `scripts/build-cnitool.sh` prints (it builds cnitool once and
/// is fast afterwards). Run once per test binary.
fn cnitool() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("CNITOOL") {
            return PathBuf::from(p);
        }
        let script = repo().join("scripts").join("build-cnitool.sh");
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
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(
            path.is_file(),
            "build-cnitool.sh printed {path:?}, which is not a file"
        );
        path
    })
}

/// cnitool's container ID for a netns path: `cnitool-` + the first 20 hex digits of the
/// SHA-512 of the absolute path.
fn container_id(netns: &Path) -> String {
    let mut child = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(netns.as_os_str().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("cnitool-{}", &String::from_utf8_lossy(&out.stdout)[..20])
}

/// A per-test directory (NETCONFPATH dirs, CNI_PATH dir, IPAM stores) plus the cnitool cache
/// files the test may create; all removed on drop.
struct Scratch {
    dir: PathBuf,
    cache_files: RefCell<Vec<PathBuf>>,
    netconfs: RefCell<u32>,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "cnitool-test-{tag}-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            cache_files: RefCell::new(Vec::new()),
            netconfs: RefCell::new(0),
        }
    }

    fn sub(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A fresh NETCONFPATH directory holding exactly `files` (name, JSON).
    fn netconf(&self, files: &[(&str, &Value)]) -> PathBuf {
        let n = {
            let mut n = self.netconfs.borrow_mut();
            *n += 1;
            *n
        };
        let d = self.sub(&format!("net.d-{n}"));
        for (name, conf) in files {
            fs::write(d.join(name), serde_json::to_vec_pretty(conf).unwrap()).unwrap();
        }
        d
    }

    /// A CNI_PATH directory: symlinks to the built plugins under their own names and the ECS
    /// names (those not built are left out; a test needing one asserts it with `bin`), and to
    /// Debian's reference `portmap`, which an example conflist chains after our bridge.
    fn plugin_dir(&self) -> PathBuf {
        let d = self.sub("cni-bin");
        let ours = PLUGIN_NAMES
            .iter()
            .map(|(name, target)| (*name, bin_dir().join(target)));
        let reference = std::iter::once(("portmap", PathBuf::from(REFERENCE_PORTMAP)));
        for (name, t) in ours.chain(reference) {
            if t.is_file() && !d.join(name).exists() {
                std::os::unix::fs::symlink(&t, d.join(name)).unwrap();
            }
        }
        d
    }

    /// cnitool's cache file for (network, netns, ifname); removed when the test ends.
    fn cache_file(&self, net: &str, netns: &Path, ifname: &str) -> PathBuf {
        let p = Path::new(CACHE_DIR).join(format!("{net}-{}-{ifname}", container_id(netns)));
        self.cache_files.borrow_mut().push(p.clone());
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in self.cache_files.borrow().iter() {
            let _ = fs::remove_file(f);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs cnitool inside `host` with a clean environment: PATH, NETCONFPATH, CNI_PATH, CNI_IFNAME
/// and `env`.
struct Cnitool<'a> {
    host: &'a TestNs,
    cni_path: PathBuf,
    env: Vec<(String, String)>,
}

impl<'a> Cnitool<'a> {
    fn new(host: &'a TestNs, scratch: &Scratch) -> Cnitool<'a> {
        Cnitool {
            host,
            cni_path: scratch.plugin_dir(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn run(&self, netconf: &Path, verb: &str, net: &str, netns: &Path, ifname: &str) -> Output {
        let mut cmd = Command::new(cnitool());
        cmd.env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("NETCONFPATH", netconf)
            .env("CNI_PATH", &self.cni_path)
            .env("CNI_IFNAME", ifname)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args([verb, net])
            .arg(netns)
            .stdin(Stdio::null());
        self.host.exec(&mut cmd)
    }

    /// `cnitool add`; asserts success and returns the printed result.
    fn add(&self, netconf: &Path, net: &str, netns: &Path, ifname: &str) -> Value {
        let out = self.run(netconf, "add", net, netns, ifname);
        ok(&out, &format!("cnitool add {net} ({ifname})"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cnitool add printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `cnitool check` or `del`; asserts success and an empty stdout.
    fn quiet(&self, netconf: &Path, verb: &str, net: &str, netns: &Path, ifname: &str) {
        let out = self.run(netconf, verb, net, netns, ifname);
        ok(&out, &format!("cnitool {verb} {net} ({ifname})"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "cnitool {verb} printed something"
        );
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Kernel state.

/// [`test_support::link_names`] as a sorted list.
fn link_list(ns: &TestNs) -> Vec<String> {
    link_names(ns).into_iter().collect()
}

fn dev_is_up(ns: &TestNs, dev: &str) -> bool {
    let link = ns
        .link(dev)
        .unwrap_or_else(|| panic!("no {dev} in {}", ns.name()));
    is_up(&link)
}

fn mac(ns: &TestNs, dev: &str) -> String {
    ns.link(dev).unwrap()["address"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ping(ns: &TestNs, dst: &str) -> bool {
    ns.exec(
        Command::new("ping")
            .args(["-c1", "-W3", dst])
            .stdout(Stdio::null()),
    )
    .status
    .success()
}

/// `nft list ruleset` inside `ns` (empty when nft is not installed).
fn nft_ruleset(ns: &TestNs) -> String {
    let out = ns.exec(Command::new("nft").args(["list", "ruleset"]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The leased addresses of one IPAM store directory (host-local layout).
fn leases(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    v.sort();
    v
}

fn cache_json(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cnitool cache file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn v(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

// ---------------------------------------------------------------------------------------------
// bridge + ipam, loopback, eni through cnitool.

#[test]
fn bridge_and_ipam_through_cnitool_in_three_versions() {
    let sim = SimHost::new("ctb");
    let s = Scratch::new("bridge");
    let tool = Cnitool::new(&sim.host, &s);
    let data = s.sub("ipam");
    let bridge = format!("br{}", unique_suffix());
    for ver in ["0.3.1", "0.4.0", "1.0.0"] {
        let net = format!("ctb{}-{}", ver.replace('.', ""), unique_suffix());
        let list = json!({"cniVersion": ver, "name": net, "plugins": [
            {"type": "bridge", "bridge": bridge, "isDefaultGateway": true,
             "ipam": {"type": "ipam", "dataDir": data, "ranges": [[{"subnet": "10.66.0.0/24"}]]}}]});
        let netconf = s.netconf(&[("10-net.conflist", &list)]);
        let ctr = TestNs::new("ctbc");
        let netns = ctr.path();
        let cache = s.cache_file(&net, netns, "eth0");

        let res = tool.add(&netconf, &net, netns, "eth0");
        let veth = res["interfaces"][1]["name"].as_str().unwrap().to_string();
        let mut ip = json!({"interface": 2, "address": "10.66.0.2/24", "gateway": "10.66.0.1"});
        if has_ip_version(ver) {
            ip["version"] = json!("4");
        }
        assert_eq!(
            res,
            json!({"cniVersion": ver,
                   "interfaces": [{"name": bridge, "mac": mac(&sim.host, &bridge)},
                                  {"name": veth, "mac": mac(&sim.host, &veth)},
                                  {"name": "eth0", "mac": mac(&ctr, "eth0"),
                                   "sandbox": netns.display().to_string()}],
                   "ips": [ip],
                   "routes": [{"dst": "0.0.0.0/0", "gw": "10.66.0.1"}],
                   "dns": {}}),
            "{ver}"
        );
        // kernel: the bridge with the gateway, the host end enslaved, the container configured
        assert_eq!(global_addrs(&sim.host, &bridge), v("10.66.0.1/24"));
        assert_eq!(sim.host.link(&veth).unwrap()["master"], json!(bridge));
        assert_eq!(global_addrs(&ctr, "eth0"), v("10.66.0.2/24"));
        assert!(dev_is_up(&ctr, "eth0"));
        assert!(
            main_routes(&ctr, "-4").contains(&"default 10.66.0.1 eth0 -".to_string()),
            "{ver}: {:?}",
            main_routes(&ctr, "-4")
        );
        assert!(ping(&ctr, "10.66.0.1"), "{ver}: gateway unreachable");
        // the lease belongs to cnitool's container ID, and libcni cached the result
        let cid = container_id(netns);
        assert_eq!(
            fs::read_to_string(data.join(&net).join("10.66.0.2")).unwrap(),
            format!("{cid}\r\neth0")
        );
        let cached = cache_json(&cache);
        assert_eq!(
            (
                &cached["kind"],
                &cached["containerId"],
                &cached["ifName"],
                &cached["networkName"]
            ),
            (
                &json!("cniCacheV1"),
                &json!(cid),
                &json!("eth0"),
                &json!(net)
            )
        );
        assert_eq!(cached["result"], res, "{ver}: cached result");

        if allows_check(ver) {
            tool.quiet(&netconf, "check", &net, netns, "eth0");
        } else {
            let out = tool.run(&netconf, "check", &net, netns, "eth0");
            assert_eq!(out.status.code(), Some(1), "{ver}: CHECK must be refused");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("does not support the CHECK command"), "{err}");
        }
        for round in 0..2 {
            tool.quiet(&netconf, "del", &net, netns, "eth0");
            assert_eq!(link_list(&ctr), v("lo"), "{ver} DEL #{round}");
            assert!(sim.host.link(&veth).is_none(), "{ver} DEL #{round}: {veth}");
            assert!(leases(&data.join(&net)).is_empty(), "{ver} DEL #{round}");
            assert!(!cache.exists(), "{ver} DEL #{round}: cache file left");
        }
        // the bridge stays, as the reference bridge's does
        assert_eq!(global_addrs(&sim.host, &bridge), v("10.66.0.1/24"));
        if allows_check(ver) {
            let out = tool.run(&netconf, "check", &net, netns, "eth0");
            assert_eq!(out.status.code(), Some(1), "{ver}: CHECK after DEL");
        }
    }
}

#[test]
fn loopback_through_cnitool() {
    let host = TestNs::new("ctlh");
    let ctr = TestNs::new("ctlc");
    let s = Scratch::new("lo");
    let tool = Cnitool::new(&host, &s);
    let net = format!("ctl-{}", unique_suffix());
    let netconf = s.netconf(&[(
        "99-lo.conflist",
        &json!({"cniVersion": "1.0.0", "name": net, "plugins": [{"type": "loopback"}]}),
    )]);
    let cache = s.cache_file(&net, ctr.path(), "eth0");
    assert!(!dev_is_up(&ctr, "lo"));

    let res = tool.add(&netconf, &net, ctr.path(), "eth0");
    assert_eq!(
        res,
        json!({"cniVersion": "1.0.0",
               "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00",
                               "sandbox": ctr.path().display().to_string()}],
               "ips": [{"interface": 0, "address": "127.0.0.1/8"},
                       {"interface": 0, "address": "::1/128"}],
               "dns": {}})
    );
    assert!(dev_is_up(&ctr, "lo"));
    let lo = ctr.ip_ok(&["-o", "addr", "show", "dev", "lo"]);
    assert!(lo.contains("127.0.0.1/8") && lo.contains("::1/128"), "{lo}");
    assert_eq!(cache_json(&cache)["result"], res);
    tool.quiet(&netconf, "check", &net, ctr.path(), "eth0");
    for round in 0..2 {
        tool.quiet(&netconf, "del", &net, ctr.path(), "eth0");
        assert!(!dev_is_up(&ctr, "lo"), "DEL #{round}: lo still up");
        assert!(!cache.exists(), "DEL #{round}: cache file left");
    }

    // cnitool's libcni (1.1.2) knows results up to 1.0.0: a 1.1.0 list fails after the plugin
    // ran (which is why GC and STATUS are tested through `Libcni`)
    let net11 = format!("ctl11-{}", unique_suffix());
    let netconf = s.netconf(&[(
        "99-lo.conflist",
        &json!({"cniVersion": "1.1.0", "name": net11, "plugins": [{"type": "loopback"}]}),
    )]);
    let cache = s.cache_file(&net11, ctr.path(), "eth0");
    let out = tool.run(&netconf, "add", &net11, ctr.path(), "eth0");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "plugin type=\"loopback\" failed (add): unsupported CNI result version \"1.1.0\""
        ),
        "{err}"
    );
    assert!(dev_is_up(&ctr, "lo") && !cache.exists());
}

const ENI_MAC: &str = "0a:1b:2c:3d:4e:5f";

#[test]
fn eni_and_loopback_through_cnitool() {
    let sim = SimHost::new("ctn");
    let eni = sim.add_fake_eni(ENI_MAC, Some("10.0.1.1/24"), Some("2001:db8:1::1/64"), 1500);
    let s = Scratch::new("eni");
    let tool = Cnitool::new(&sim.host, &s);
    let net = format!("ctn-{}", unique_suffix());
    let list = json!({"cniVersion": "1.0.0", "name": net, "plugins": [
        {"type": "eni", "eniMACAddress": ENI_MAC,
         "eniIPAddresses": ["10.0.1.17/24", "2001:db8:1::17/64"],
         "gatewayIPAddresses": ["10.0.1.1", "2001:db8:1::1"], "blockInstanceMetadata": true},
        {"type": "loopback"}]});
    let netconf = s.netconf(&[("20-eni.conflist", &list)]);
    let ctr = TestNs::new("ctnc");
    let netns = ctr.path();
    let cache = s.cache_file(&net, netns, "eth0");

    let res = tool.add(&netconf, &net, netns, "eth0");
    assert_eq!(
        res,
        json!({"cniVersion": "1.0.0",
               "interfaces": [{"name": "eth0", "mac": ENI_MAC,
                               "sandbox": netns.display().to_string()}],
               "ips": [{"interface": 0, "address": "10.0.1.17/24", "gateway": "10.0.1.1"},
                       {"interface": 0, "address": "2001:db8:1::17/64",
                        "gateway": "2001:db8:1::1"}],
               "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.1.1"},
                          {"dst": "::/0", "gw": "2001:db8:1::1"}],
               "dns": {}})
    );
    // the ENI left the host and is the container's eth0, configured; lo is up (2nd plugin)
    assert!(sim.host.link(&eni.name).is_none());
    assert_eq!(link_list(&ctr), ["eth0", "lo"].map(String::from));
    assert_eq!(mac(&ctr, "eth0"), ENI_MAC);
    assert!(dev_is_up(&ctr, "eth0") && dev_is_up(&ctr, "lo"));
    assert_eq!(
        global_addrs(&ctr, "eth0"),
        ["10.0.1.17/24", "2001:db8:1::17/64"].map(String::from)
    );
    let r4 = main_routes(&ctr, "-4");
    assert!(r4.contains(&"default 10.0.1.1 eth0 -".into()), "{r4:?}");
    assert!(
        r4.contains(&"169.254.169.254 - - blackhole".into()),
        "{r4:?}"
    );
    let r6 = main_routes(&ctr, "-6");
    assert!(
        r6.contains(&"default 2001:db8:1::1 eth0 -".into()),
        "{r6:?}"
    );
    assert!(ping(&ctr, "10.0.1.1"), "IPv4 gateway unreachable");
    assert!(ping(&ctr, "2001:db8:1::1"), "IPv6 gateway unreachable");
    assert_eq!(cache_json(&cache)["result"], res);

    tool.quiet(&netconf, "check", &net, netns, "eth0");
    for round in 0..2 {
        tool.quiet(&netconf, "del", &net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        assert!(!dev_is_up(&ctr, "lo"), "DEL #{round}: lo still up");
        let back = sim
            .host
            .link(&eni.name)
            .unwrap_or_else(|| panic!("DEL #{round}: the ENI is not back in the host"));
        assert_eq!(back["address"], json!(ENI_MAC));
        assert_eq!(back["mtu"], json!(1500));
        assert!(!cache.exists(), "DEL #{round}: cache file left");
    }
    let out = tool.run(&netconf, "check", &net, netns, "eth0");
    assert_eq!(out.status.code(), Some(1), "CHECK after DEL must fail");
}

// ---------------------------------------------------------------------------------------------
// GC and STATUS of a 1.1.0 list, invoked the way libcni 1.1 invokes them.

/// A plugin call of a list that failed: the plugin's index in the list and its output.
#[derive(Debug)]
struct Failed(usize, PluginOutput);

/// Drives a conflist's plugins the way libcni 1.1 (`AddNetworkList`, `DelNetworkList`,
/// `GCNetworkList`, `GetStatusNetworkList`) does, for what cnitool 1.1.2 cannot do:
///
/// - every plugin's config is the list entry with the list's `name` and `cniVersion` injected;
/// - the binary is the first `<type>` found on CNI_PATH; the environment is the six CNI
///   variables (empty where the verb has none) plus `env`;
/// - ADD: in order, each with the previous result as `prevResult`; stops at the first failure.
///   DEL: in reverse, with the ADD result as `prevResult`;
/// - GC (lists ≥ 1.1.0 only): each plugin in order with `cni.dev/valid-attachments` and the
///   legacy `cni.dev/attachments` (both only when the runtime passes a list), continuing past
///   failures. libcni first DELs the attachments in its own result cache that are not valid;
///   this runtime has no cache, like one that lost it, which is what GC is for;
/// - STATUS (lists ≥ 1.1.0 only): each plugin in order, stopping at the first failure.
struct Libcni<'a> {
    host: &'a TestNs,
    list: Value,
    cni_path: PathBuf,
    env: Vec<(String, String)>,
}

impl Libcni<'_> {
    /// The same runtime with another list.
    fn with_list(&self, list: Value) -> Libcni<'_> {
        Libcni {
            host: self.host,
            list,
            cni_path: self.cni_path.clone(),
            env: self.env.clone(),
        }
    }

    fn plugins(&self) -> usize {
        self.list["plugins"].as_array().unwrap().len()
    }

    fn conf(&self, i: usize, inject: &[(&str, Value)]) -> Value {
        let mut c = self.list["plugins"][i].clone();
        c["name"] = self.list["name"].clone();
        c["cniVersion"] = self.list["cniVersion"].clone();
        for (k, val) in inject {
            c[*k] = val.clone();
        }
        c
    }

    fn exec(
        &self,
        command: &str,
        cid: &str,
        netns: &str,
        ifname: &str,
        conf: &Value,
    ) -> PluginOutput {
        let ty = conf["type"].as_str().unwrap();
        let exe = self.cni_path.join(ty);
        assert!(
            exe.exists(),
            "plugin {ty} not on CNI_PATH {}",
            self.cni_path.display()
        );
        let mut env = vec![
            ("CNI_COMMAND".to_string(), command.to_string()),
            ("CNI_CONTAINERID".into(), cid.into()),
            ("CNI_NETNS".into(), netns.into()),
            ("CNI_ARGS".into(), String::new()),
            ("CNI_IFNAME".into(), ifname.into()),
            ("CNI_PATH".into(), self.cni_path.display().to_string()),
        ];
        env.extend(self.env.iter().cloned());
        call(&exe, Some(self.host), &env, conf)
    }

    fn at_least_1_1(&self) -> bool {
        self.list["cniVersion"] == json!("1.1.0")
    }

    fn add(&self, cid: &str, netns: &Path, ifname: &str) -> Result<Value, Failed> {
        let netns = netns.display().to_string();
        let mut prev: Option<Value> = None;
        for i in 0..self.plugins() {
            let inject: Vec<(&str, Value)> =
                prev.iter().map(|p| ("prevResult", p.clone())).collect();
            let out = self.exec("ADD", cid, &netns, ifname, &self.conf(i, &inject));
            if out.status != 0 {
                return Err(Failed(i, out));
            }
            prev = Some(out.json());
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    fn del(
        &self,
        cid: &str,
        netns: &Path,
        ifname: &str,
        prev: Option<&Value>,
    ) -> Result<(), Failed> {
        let netns = netns.display().to_string();
        let inject: Vec<(&str, Value)> =
            prev.iter().map(|p| ("prevResult", (*p).clone())).collect();
        for i in (0..self.plugins()).rev() {
            let conf = self.conf(i, &inject);
            let out = self.exec("DEL", cid, &netns, ifname, &conf);
            if out.status != 0 {
                return Err(Failed(i, out));
            }
        }
        Ok(())
    }

    /// GC with `valid` attachments (`None`: the key is absent, as `cnitool gc` sends it).
    /// Returns every failure.
    fn gc(&self, valid: Option<&[(&str, &str)]>) -> Vec<Failed> {
        if !self.at_least_1_1() {
            return Vec::new();
        }
        let mut inject = Vec::new();
        if let Some(valid) = valid {
            let list: Vec<Value> = valid
                .iter()
                .map(|(cid, ifname)| json!({"containerID": cid, "ifname": ifname}))
                .collect();
            inject.push(("cni.dev/valid-attachments", json!(list)));
            inject.push(("cni.dev/attachments", json!(list)));
        }
        (0..self.plugins())
            .filter_map(|i| {
                let out = self.exec("GC", "", "", "", &self.conf(i, &inject));
                (out.status != 0 || !out.stdout.is_empty()).then_some(Failed(i, out))
            })
            .collect()
    }

    fn status(&self) -> Result<(), Failed> {
        if !self.at_least_1_1() {
            return Ok(());
        }
        for i in 0..self.plugins() {
            let out = self.exec("STATUS", "", "", "", &self.conf(i, &[]));
            if out.status != 0 || !out.stdout.is_empty() {
                return Err(Failed(i, out));
            }
        }
        Ok(())
    }
}

#[test]
fn gc_and_status_of_a_1_1_0_list_as_libcni_1_1_calls_them() {
    let sim = SimHost::new("ctg");
    let s = Scratch::new("gc");
    let data = s.sub("ipam");
    let net = format!("ctg-{}", unique_suffix());
    let bridge = format!("br{}", unique_suffix());
    // one allocatable address: a second container finds the range exhausted
    let list = json!({"cniVersion": "1.1.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": bridge, "isDefaultGateway": true,
         "ipam": {"type": "ipam", "dataDir": data,
                  "ranges": [[{"subnet": "10.67.0.0/24", "rangeStart": "10.67.0.10",
                               "rangeEnd": "10.67.0.10"}]]}},
        {"type": "loopback"}]});
    let cni = Libcni {
        host: &sim.host,
        list,
        cni_path: s.plugin_dir(),
        env: Vec::new(),
    };
    let store = data.join(&net);
    let (ctr_a, ctr_b) = (TestNs::new("ctgc"), TestNs::new("ctgc"));

    assert!(cni.status().is_ok(), "STATUS of a fresh list");
    let res_a = cni.add("ctr-a", ctr_a.path(), "eth0").unwrap();
    assert_eq!(res_a["ips"][0]["address"], json!("10.67.0.10/24"));
    assert_eq!(res_a["interfaces"][2]["name"], json!("eth0"));
    assert!(dev_is_up(&ctr_a, "lo"), "the second plugin ran");
    assert_eq!(leases(&store), v("10.67.0.10"));

    // STATUS with the range exhausted: the bridge (first plugin) answers 50 (its IPAM's
    // answer), and libcni stops there
    let Failed(i, out) = cni.status().unwrap_err();
    assert_eq!(
        (i, out.status, out.json()["code"].clone()),
        (0, 1, json!(50)),
        "{out:?}"
    );
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.ends_with(&format!(
            "network {net}: no IP addresses available in range set 0: 10.67.0.10-10.67.0.10"
        )),
        "the message names the network and the range: {msg}"
    );
    // ADD agrees
    let Failed(i, out) = cni.add("ctr-b", ctr_b.path(), "eth0").unwrap_err();
    assert_eq!((i, out.status), (0, 1), "{out:?}");

    // GC keeps what a valid attachment covers, under either key
    let failures = cni.gc(Some(&[("ctr-a", "eth0")]));
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(leases(&store), v("10.67.0.10"));
    let mut legacy = cni.with_list(cni.list.clone());
    legacy.list["plugins"][0]["cni.dev/attachments"] =
        json!([{"containerID": "ctr-a", "ifname": "eth0"}]);
    assert!(legacy.gc(None).is_empty());
    assert_eq!(leases(&store), v("10.67.0.10"));
    // ... but an attachment of the same container on another ifname does not cover eth0
    assert!(cni.gc(Some(&[("ctr-a", "eth1")])).is_empty());
    assert!(
        leases(&store).is_empty(),
        "GC kept a lease no attachment covers"
    );
    assert!(cni.status().is_ok(), "the range has room again");

    // an empty list of valid attachments releases the lease of a container that was added
    let res_b = cni.add("ctr-b", ctr_b.path(), "eth0").unwrap();
    assert_eq!(leases(&store), v("10.67.0.10"));
    assert!(cni.gc(Some(&[])).is_empty());
    assert!(leases(&store).is_empty());
    // ... and so does GC without the key at all (what `cnitool gc` sends after its DELs)
    cni.del("ctr-b", ctr_b.path(), "eth0", Some(&res_b))
        .unwrap();
    let res_b = cni.add("ctr-b", ctr_b.path(), "eth0").unwrap();
    assert_eq!(leases(&store), v("10.67.0.10"));
    assert!(cni.gc(None).is_empty());
    assert!(leases(&store).is_empty());

    // DEL after GC succeeds and removes the interfaces (GC never touches them)
    cni.del("ctr-a", ctr_a.path(), "eth0", Some(&res_a))
        .unwrap();
    cni.del("ctr-b", ctr_b.path(), "eth0", Some(&res_b))
        .unwrap();
    for ctr in [&ctr_a, &ctr_b] {
        assert_eq!(link_list(ctr), v("lo"));
        assert!(!dev_is_up(ctr, "lo"));
    }
    assert!(
        sim.host
            .ip_json(&["link", "show", "master", &bridge])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(cni.status().is_ok());

    // libcni sends neither verb to lists older than 1.1.0
    let mut old = cni.with_list(cni.list.clone());
    old.list["cniVersion"] = json!("1.0.0");
    old.list["plugins"][0]["type"] = json!("no-such-plugin");
    assert!(old.status().is_ok() && old.gc(Some(&[])).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The examples.

/// The ECS agent's per-plugin configs tested on this host (one flow, in the agent's order).
const ECS_FILES: [&str; 6] = [
    "ecs-agent/vpc-eni.json",
    "ecs-agent/vpc-eni-ipv6-only.json",
    "ecs-agent/ecs-eni.json",
    "ecs-agent/ecs-bridge.json",
    "ecs-agent/ecs-bridge-del.json",
    "ecs-agent/ecs-ipam-release.json",
];

/// Examples that need 802.1Q: run inside user-mode-linux.
const VM_FILES: [&str; 1] = ["ecs-agent/vpc-branch-eni.json"];

fn read_example(rel: &str) -> Value {
    let p = examples_dir().join(rel);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

/// Every `*.json`, `*.conflist` and `*.conf` under examples/, relative, sorted.
fn example_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("json" | "conflist" | "conf")
            ) {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&examples_dir(), &examples_dir(), &mut out);
    out.sort();
    out
}

#[test]
fn every_example_file_is_a_cni_config_and_is_tested() {
    let files = example_files();
    let conflists: Vec<&String> = files.iter().filter(|f| f.ends_with(".conflist")).collect();
    assert!(conflists.len() >= 3, "{files:?}");
    let mut covered: BTreeSet<String> = conflists.iter().map(|f| f.to_string()).collect();
    covered.extend(ECS_FILES.iter().chain(&VM_FILES).map(|f| f.to_string()));
    let found: BTreeSet<String> = files.iter().cloned().collect();
    assert_eq!(
        found, covered,
        "every example config must be run by a test in tests/cnitool.rs"
    );
    for f in &files {
        let c = read_example(f);
        assert!(
            c["cniVersion"].is_string() && c["name"].is_string(),
            "{f}: {c}"
        );
        if f.ends_with(".conflist") {
            let plugins = c["plugins"]
                .as_array()
                .unwrap_or_else(|| panic!("{f}: no plugins"));
            assert!(
                !plugins.is_empty() && plugins.iter().all(|p| p["type"].is_string()),
                "{f}"
            );
        } else {
            assert!(c["type"].is_string(), "{f}: no type");
        }
    }
}

/// The address (with prefix) of `addrs` in the family of `gw`, as the gateway's CIDR.
fn gateway_cidr(gw: &str, addrs: &[String]) -> String {
    let v6 = gw.contains(':');
    let addr = addrs
        .iter()
        .find(|a| a.contains(':') == v6)
        .unwrap_or_else(|| panic!("no address of the family of gateway {gw} in {addrs:?}"));
    format!("{gw}/{}", addr.split('/').nth(1).unwrap())
}

fn strings(c: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .find_map(|k| c[*k].as_array())
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Gives the scratch host what an eni config needs: a fake ENI with its MAC whose subnet side
/// answers as its gateways (an IPv6 address without a gateway gets one too, standing in for
/// the router advertisements). Returns the ENI's host-side name.
fn fake_eni_for(sim: &SimHost, conf: &Value) -> String {
    let mac = ["eniMACAddress", "mac"]
        .iter()
        .find_map(|k| conf[*k].as_str())
        .unwrap();
    let addrs = strings(conf, &["eniIPAddresses", "ip-addresses"]);
    let gws = strings(conf, &["gatewayIPAddresses", "gateway-ip-addresses"]);
    let gw4 = gws
        .iter()
        .find(|g| !g.contains(':'))
        .map(|g| gateway_cidr(g, &addrs));
    let gw6 = gws
        .iter()
        .find(|g| g.contains(':'))
        .map(|g| gateway_cidr(g, &addrs))
        .or_else(|| {
            addrs.iter().find(|a| a.contains(':')).map(|a| {
                let (net, len) = a.split_once('/').unwrap();
                let base: std::net::Ipv6Addr = net.parse().unwrap();
                let mut seg = base.segments();
                seg[7] = 0xfffe;
                format!("{}/{len}", std::net::Ipv6Addr::from(seg))
            })
        });
    sim.add_fake_eni(mac, gw4.as_deref(), gw6.as_deref(), 1500)
        .name
}

fn is_eni(ty: &str) -> bool {
    matches!(ty, "eni" | "ecs-eni" | "vpc-eni")
}

/// Asserts that every address of `res` assigned to an interface in `ctr` is on it.
fn assert_result_in_kernel(what: &str, res: &Value, ctr: &TestNs) {
    let ifaces = res["interfaces"].as_array().unwrap();
    let sandbox = json!(ctr.path().display().to_string());
    let mut checked = 0;
    for ip in res["ips"].as_array().unwrap() {
        let iface = &ifaces[ip["interface"].as_u64().unwrap() as usize];
        if iface["sandbox"] != sandbox {
            continue;
        }
        let dev = iface["name"].as_str().unwrap();
        let addr = ip["address"].as_str().unwrap().to_string();
        if dev != "lo" {
            assert!(dev_is_up(ctr, dev), "{what}: {dev} down");
            assert!(
                global_addrs(ctr, dev).contains(&addr),
                "{what}: {addr} not on {dev}"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "{what}: no address in the container: {res}");
}

#[test]
fn example_conflists_run_through_cnitool() {
    for f in example_files().iter().filter(|f| f.ends_with(".conflist")) {
        let mut list = read_example(f);
        let sim = SimHost::new("ctx");
        let s = Scratch::new("ex");
        let tool = Cnitool::new(&sim.host, &s);
        // the test's own network name (the cache is machine-global) and IPAM store
        let net = format!("ctx-{}", unique_suffix());
        list["name"] = json!(net);
        let data = s.sub("ipam");
        let mut enis = Vec::new();
        for p in list["plugins"].as_array_mut().unwrap() {
            if is_eni(p["type"].as_str().unwrap()) {
                enis.push(fake_eni_for(&sim, p));
            }
            if p["ipam"]["type"] == json!("ipam") || p["ipam"]["type"] == json!("host-local") {
                p["ipam"]["dataDir"] = json!(data);
            }
        }
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        let netconf = s.netconf(&[(name, &list)]);
        let ctr = TestNs::new("ctxc");
        let netns = ctr.path();
        let cache = s.cache_file(&net, netns, "eth0");
        let ver = list["cniVersion"].as_str().unwrap().to_string();
        assert_ne!(ver, "1.1.0", "{f}: cnitool 1.1.2 cannot run 1.1.0 lists");
        // a plugin taking port mappings (portmap) gets one, as a runtime passes a published port
        let ports = list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["capabilities"]["portMappings"] == json!(true));
        let tool = if ports {
            let caps = json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]});
            tool.with_env("CAP_ARGS", &caps.to_string())
        } else {
            tool
        };
        let dnat_rules = || {
            let out = sim
                .host
                .exec(Command::new("iptables-save").args(["-t", "nat"]));
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("--dport 8080 -j DNAT"))
                .count()
        };

        let res = tool.add(&netconf, &net, netns, "eth0");
        assert_eq!(res["cniVersion"], json!(ver), "{f}");
        assert_result_in_kernel(f, &res, &ctr);
        let has_loopback = list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == json!("loopback"));
        assert_eq!(dev_is_up(&ctr, "lo"), has_loopback, "{f}: lo");
        for e in &enis {
            assert!(sim.host.link(e).is_none(), "{f}: ENI {e} still in the host");
        }
        // ipMasq: a masquerade rule for this container, in the simulated host's nftables
        let masq = list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["ipMasq"] == json!(true));
        let cid = container_id(netns);
        let masq_rules = || {
            nft_ruleset(&sim.host)
                .lines()
                .filter(|l| l.contains("masquerade") && l.contains(&cid))
                .count()
        };
        if masq {
            assert!(masq_rules() > 0, "{f}: no masquerade rule for {cid}");
        }
        if ports {
            assert_eq!(dnat_rules(), 1, "{f}: no DNAT rule for host port 8080");
        }
        // Debian's portmap (1.1.1) fails every CHECK: it looks for its IPv4 rules in the IPv6
        // chain ("could not check ipv6 dnat"), so a list with it is not checked
        if allows_check(&ver) && !ports {
            tool.quiet(&netconf, "check", &net, netns, "eth0");
        }
        for round in 0..2 {
            tool.quiet(&netconf, "del", &net, netns, "eth0");
            assert_eq!(link_list(&ctr), v("lo"), "{f} DEL #{round}");
            assert!(!dev_is_up(&ctr, "lo"), "{f} DEL #{round}: lo up");
            assert_eq!(masq_rules(), 0, "{f} DEL #{round}: masquerade rule left");
            assert_eq!(dnat_rules(), 0, "{f} DEL #{round}: DNAT rule left");
            for e in &enis {
                assert!(
                    sim.host.link(e).is_some(),
                    "{f} DEL #{round}: ENI {e} not back"
                );
            }
            assert!(
                leases(&data.join(&net)).is_empty(),
                "{f} DEL #{round}: lease left"
            );
            assert!(!cache.exists(), "{f} DEL #{round}: cache file left");
        }
    }
}

/// One per-plugin config of the agent in its own NETCONFPATH (libcni wraps a `.json` config
/// into a one-plugin list, as the agent's `AddNetwork`/`DelNetwork` use it).
fn agent_conf(s: &Scratch, rel: &str) -> (PathBuf, Value) {
    let c = read_example(rel);
    let name = Path::new(rel).file_name().unwrap().to_str().unwrap();
    (s.netconf(&[(name, &c)]), c)
}

#[test]
fn ecs_agent_examples_run_as_the_agent_calls_them() {
    // vpc-eni as eth0, then ecs-bridge + ecs-ipam as ecs-eth0, in one task namespace
    let sim = SimHost::new("cta");
    let s = Scratch::new("ecs");
    let db = s.sub("ipam-db").join("eni-ipam.db");
    let tool = Cnitool::new(&sim.host, &s).with_env("IPAM_DB_PATH", db.to_str().unwrap());
    let ctr = TestNs::new("ctac");
    let netns = ctr.path();
    let (eni_nc, eni_conf) = agent_conf(&s, "ecs-agent/vpc-eni.json");
    let eni = fake_eni_for(&sim, &eni_conf);
    let net = eni_conf["name"].as_str().unwrap().to_string();
    let caches = [
        s.cache_file(&net, netns, "eth0"),
        s.cache_file(&net, netns, "ecs-eth0"),
    ];
    let res = tool.add(&eni_nc, &net, netns, "eth0");
    assert_eq!(
        res,
        json!({"cniVersion": "0.3.0",
               "interfaces": [{"name": "eth0", "mac": ENI_MAC,
                               "sandbox": netns.display().to_string()}],
               "ips": [{"version": "4", "interface": 0, "address": "10.0.1.17/24",
                        "gateway": "10.0.1.1"}],
               "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.1.1"}],
               "dns": {}})
    );
    assert!(sim.host.link(&eni).is_none());
    assert_eq!(global_addrs(&ctr, "eth0"), v("10.0.1.17/24"));
    let r4 = main_routes(&ctr, "-4");
    assert!(r4.contains(&"default 10.0.1.1 eth0 -".into()), "{r4:?}");
    assert!(
        r4.contains(&"169.254.169.254 - - blackhole".into()),
        "{r4:?}"
    );
    assert!(ping(&ctr, "10.0.1.1"));

    let (br_nc, br_conf) = agent_conf(&s, "ecs-agent/ecs-bridge.json");
    assert_eq!(br_conf["name"], json!(net));
    let res = tool.add(&br_nc, &net, netns, "ecs-eth0");
    assert_eq!(res["cniVersion"], json!("0.3.0"));
    assert_eq!(res["interfaces"][0]["name"], json!("ecs-bridge"));
    assert_eq!(res["interfaces"][2]["name"], json!("ecs-eth0"));
    assert_eq!(
        res["ips"],
        json!([{"version": "4", "interface": 2, "address": "169.254.172.2/22",
                "gateway": "169.254.172.1"}])
    );
    assert_eq!(global_addrs(&sim.host, "ecs-bridge"), v("169.254.172.1/22"));
    assert_eq!(global_addrs(&ctr, "ecs-eth0"), v("169.254.172.2/22"));
    let r4 = main_routes(&ctr, "-4");
    assert!(
        r4.contains(&"169.254.170.2 169.254.172.1 ecs-eth0 -".into()),
        "{r4:?}"
    );
    assert!(ping(&ctr, "169.254.172.1"), "the bridge is unreachable");
    let held = || ecs_leases(&db).get("169.254.172.2").cloned();
    assert_eq!(held().as_deref(), Some(ENI_MAC));

    // task stop: DEL in reverse with the bridge config without IPAM (the lease stays), ...
    let (brdel_nc, _) = agent_conf(&s, "ecs-agent/ecs-bridge-del.json");
    for round in 0..2 {
        tool.quiet(&brdel_nc, "del", &net, netns, "ecs-eth0");
        assert!(ctr.link("ecs-eth0").is_none(), "DEL #{round}");
        assert!(
            held().is_some(),
            "DEL #{round}: the agent's bridge DEL must not release"
        );
        tool.quiet(&eni_nc, "del", &net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        assert!(
            sim.host.link(&eni).is_some(),
            "DEL #{round}: the ENI is not back"
        );
    }
    for c in &caches {
        assert!(!c.exists(), "{} left", c.display());
    }
    // ... and later the separate release call to ecs-ipam (retried: still success)
    let (rel_nc, rel_conf) = agent_conf(&s, "ecs-agent/ecs-ipam-release.json");
    let rel_net = rel_conf["name"].as_str().unwrap().to_string();
    let _ = s.cache_file(&rel_net, netns, "ecs-eth0");
    for round in 0..2 {
        tool.quiet(&rel_nc, "del", &rel_net, netns, "ecs-eth0");
        assert!(held().is_none(), "release #{round}: lease left");
    }
    assert!(ecs_leases(&db).is_empty());

    // ecs-eni (the managed-instance dialect): dual-stack, MTU 9001
    let sim = SimHost::new("ctf");
    let ctr = TestNs::new("ctfc");
    let netns = ctr.path();
    let tool = Cnitool::new(&sim.host, &s);
    let (nc, conf) = agent_conf(&s, "ecs-agent/ecs-eni.json");
    let eni = fake_eni_for(&sim, &conf);
    let cache = s.cache_file(&net, netns, "eth0");
    let res = tool.add(&nc, &net, netns, "eth0");
    assert_eq!(res["interfaces"][0]["name"], json!("eth0"));
    assert_eq!(res["interfaces"][0]["mac"], json!(ENI_MAC));
    assert_eq!(
        global_addrs(&ctr, "eth0"),
        ["10.0.1.17/24", "2001:db8:1::17/64"].map(String::from)
    );
    assert_eq!(ctr.link("eth0").unwrap()["mtu"], json!(9001));
    assert!(main_routes(&ctr, "-4").contains(&"default 10.0.1.1 eth0 -".into()));
    assert!(ping(&ctr, "10.0.1.1"));
    for round in 0..2 {
        tool.quiet(&nc, "del", &net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        let back = sim.host.link(&eni).unwrap();
        assert_eq!(back["mtu"], json!(1500), "DEL #{round}: MTU restored");
    }
    assert!(!cache.exists());
}

#[test]
fn ecs_agent_ipv6_only_example_as_the_agent_calls_it() {
    // vpc-eni for an IPv6-only task ENI: its only address and its IPv6 gateway
    let sim = SimHost::new("ct6");
    let s = Scratch::new("ecs6");
    let tool = Cnitool::new(&sim.host, &s);
    let ctr = TestNs::new("ct6c");
    let netns = ctr.path();
    let (nc, conf) = agent_conf(&s, "ecs-agent/vpc-eni-ipv6-only.json");
    let eni = fake_eni_for(&sim, &conf);
    let mac = conf["eniMACAddress"].as_str().unwrap();
    let addrs = strings(&conf, &["eniIPAddresses"]);
    let gw = strings(&conf, &["gatewayIPAddresses"])[0].clone();
    assert!(
        addrs.iter().chain([&gw]).all(|a| a.contains(':')),
        "not IPv6 only: {conf}"
    );
    let net = conf["name"].as_str().unwrap();
    let cache = s.cache_file(net, netns, "eth0");
    let res = tool.add(&nc, net, netns, "eth0");
    assert_eq!(
        res,
        json!({"cniVersion": "0.3.0",
               "interfaces": [{"name": "eth0", "mac": mac, "sandbox": netns.display().to_string()}],
               "ips": [{"version": "6", "interface": 0, "address": addrs[0], "gateway": gw}],
               "routes": [{"dst": "::/0", "gw": gw}],
               "dns": {}})
    );
    assert_eq!(global_addrs(&ctr, "eth0"), addrs);
    assert!(
        main_routes(&ctr, "-4")
            .iter()
            .all(|r| !r.starts_with("default"))
    );
    let r6 = main_routes(&ctr, "-6");
    assert!(r6.contains(&format!("default {gw} eth0 -")), "{r6:?}");
    assert!(
        r6.iter()
            .any(|r| r.starts_with("fd00:ec2::254 ") && r.ends_with(" blackhole")),
        "{r6:?}"
    );
    assert!(
        main_routes(&ctr, "-4").contains(&"169.254.169.254 - - blackhole".into()),
        "the IPv4 IMDS address is blocked too"
    );
    assert!(ping(&ctr, &gw), "the IPv6 gateway is unreachable");
    for round in 0..2 {
        tool.quiet(&nc, "del", net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        assert!(
            sim.host.link(&eni).is_some(),
            "DEL #{round}: the ENI is not back"
        );
        assert!(!cache.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// branch-eni through cnitool, inside user-mode-linux.

fn in_guest() {
    assert_eq!(
        std::env::var("IN_UML").as_deref(),
        Ok("1"),
        "this test needs 802.1Q and runs inside user-mode-linux: \
         cargo test --test cnitool branch_eni_through_cnitool_inside_user_mode_linux"
    );
}

/// A simulated host with a trunk (veth, MAC `mac`) whose subnet-side peer carries VLAN `vlan`
/// with the gateway `gw_cidr`. Returns the host and the trunk's name.
fn trunk_with_vlan(prefix: &str, mac: &str, vlan: &str, gw_cidr: &str) -> (SimHost, String) {
    let sim = SimHost::new(prefix);
    let sfx = unique_suffix();
    let (trunk, peer, sub) = (format!("trk{sfx}"), format!("trp{sfx}"), format!("v{vlan}"));
    sim.host.ip_ok(&[
        "link",
        "add",
        &trunk,
        "address",
        mac,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
        "netns",
        sim.subnet.name(),
    ]);
    let s = &sim.subnet;
    s.ip_ok(&["link", "set", &peer, "up"]);
    s.ip_ok(&[
        "link", "add", "link", &peer, "name", &sub, "type", "vlan", "id", vlan,
    ]);
    s.ip_ok(&["addr", "add", gw_cidr, "dev", &sub]);
    s.ip_ok(&["link", "set", &sub, "up"]);
    (sim, trunk)
}

fn assert_vlan_branch(ctr: &TestNs, vlan: u64, mac: &str, addr: &str) {
    let l = ctr.link("eth0").expect("eth0 in the container");
    assert_eq!(l["linkinfo"]["info_kind"], json!("vlan"), "{l}");
    assert_eq!(l["linkinfo"]["info_data"]["id"], json!(vlan));
    assert_eq!(l["address"], json!(mac));
    assert!(flags(&l).iter().any(|f| f == "UP"));
    assert_eq!(global_addrs(ctr, "eth0"), v(addr));
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (branch_eni_through_cnitool_inside_user_mode_linux)"]
fn vm_branch_eni_conflist_add_check_del_twice() {
    in_guest();
    let (sim, trunk) = trunk_with_vlan("ctv", "0a:00:00:00:0f:01", "101", "10.101.0.1/24");
    let s = Scratch::new("vm");
    let tool = Cnitool::new(&sim.host, &s);
    let net = format!("ctv-{}", unique_suffix());
    let list = json!({"cniVersion": "1.0.0", "name": net, "plugins": [
        {"type": "branch-eni", "trunkName": trunk, "branchVlanID": "101",
         "branchMACAddress": "0a:00:00:00:01:01", "ipAddresses": ["10.101.0.5/24"],
         "gatewayIPAddresses": ["10.101.0.1"], "interfaceType": "vlan"},
        {"type": "loopback"}]});
    let netconf = s.netconf(&[("30-branch.conflist", &list)]);
    let ctr = TestNs::new("ctvc");
    let netns = ctr.path();
    let cache = s.cache_file(&net, netns, "eth0");

    let res = tool.add(&netconf, &net, netns, "eth0");
    assert_eq!(
        res,
        json!({"cniVersion": "1.0.0",
               "interfaces": [{"name": "eth0", "mac": "0a:00:00:00:01:01",
                               "sandbox": netns.display().to_string()}],
               "ips": [{"interface": 0, "address": "10.101.0.5/24", "gateway": "10.101.0.1"}],
               "routes": [{"dst": "0.0.0.0/0", "gw": "10.101.0.1"}],
               "dns": {}})
    );
    assert_vlan_branch(&ctr, 101, "0a:00:00:00:01:01", "10.101.0.5/24");
    assert!(dev_is_up(&ctr, "lo"));
    assert!(main_routes(&ctr, "-4").contains(&"default 10.101.0.1 eth0 -".into()));
    assert!(
        ping(&ctr, "10.101.0.1"),
        "the VLAN 101 gateway is unreachable"
    );
    tool.quiet(&netconf, "check", &net, netns, "eth0");
    for round in 0..2 {
        tool.quiet(&netconf, "del", &net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        assert!(!cache.exists(), "DEL #{round}: cache file left");
        let host_links = link_list(&sim.host);
        assert_eq!(
            host_links,
            ["lo".to_string(), trunk.clone()],
            "DEL #{round}"
        );
    }
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (branch_eni_through_cnitool_inside_user_mode_linux)"]
fn vm_vpc_branch_eni_example_as_the_agent_calls_it() {
    in_guest();
    let s = Scratch::new("vmx");
    let (nc, conf) = agent_conf(&s, VM_FILES[0]);
    let vlan = conf["branchVlanID"].as_str().unwrap();
    let addrs = strings(&conf, &["ipAddresses"]);
    let gw = strings(&conf, &["gatewayIPAddresses"])[0].clone();
    let branch_mac = conf["branchMACAddress"].as_str().unwrap();
    let (sim, trunk) = trunk_with_vlan(
        "ctw",
        conf["trunkMACAddress"].as_str().unwrap(),
        vlan,
        &gateway_cidr(&gw, &addrs),
    );
    let tool = Cnitool::new(&sim.host, &s);
    let ctr = TestNs::new("ctwc");
    let netns = ctr.path();
    let net = conf["name"].as_str().unwrap();
    let cache = s.cache_file(net, netns, "eth0");
    let res = tool.add(&nc, net, netns, "eth0");
    assert_eq!(res["cniVersion"], json!("0.3.0"));
    assert_eq!(
        res["interfaces"],
        json!([{"name": "eth0", "mac": branch_mac, "sandbox": netns.display().to_string()}])
    );
    assert_vlan_branch(&ctr, vlan.parse().unwrap(), branch_mac, &addrs[0]);
    assert!(ping(&ctr, &gw), "the branch's gateway is unreachable");
    for round in 0..2 {
        tool.quiet(&nc, "del", net, netns, "eth0");
        assert_eq!(link_list(&ctr), v("lo"), "DEL #{round}");
        assert_eq!(link_list(&sim.host), ["lo".to_string(), trunk.clone()]);
        assert!(!cache.exists());
    }
}

#[test]
fn branch_eni_through_cnitool_inside_user_mode_linux() {
    bin("branch-eni"); // fails early with a hint when it is not built
    let tool = cnitool(); // built on the host: the guest cannot run apt
    run_ignored_tests_in_uml("vm_", 2, &[("CNITOOL", tool.as_os_str())]);
}
