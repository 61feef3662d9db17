//! Test fixtures: throwaway named network namespaces, a simulated host with fake ENIs, and a
//! runner for plugin binaries.
//!
//! Every namespace is named `<prefix>-<pid>-<random>` (so `ip -n NAME` works and
//! `CNI_NETNS=/run/netns/NAME`), deleted when its [`TestNs`] is dropped (also while unwinding
//! from a failed assertion), and swept by later runs if the creating process died without
//! dropping it. Nothing here touches the machine's own interfaces: plugins run inside a
//! [`SimHost`]'s "host" namespace.
//!
//! Fixtures panic on setup failures: they are for tests only.
//!
//! The same topology is available to shell scripts (benchmarks, examples) through the
//! `netns-fixture` binary of this crate (`src/bin/netns-fixture.rs`, wrapped by
//! `cargo xtask fixture`): it builds a named [`SimHost`] with namespaces, fake ENIs, trunks
//! and a fake primary that outlive the command ([`TestNs::keep`]), prints what it made, and
//! tears it down by name.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netns::{Netns, random_u64};

/// Where `ip netns add` puts its namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// How long [`run_plugin`] lets a plugin run before killing it.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// PATH given to plugins when the caller passes none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn base36(mut n: u64, min_len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.len() < min_len {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

/// A short suffix for interface and namespace names: 4 characters fixed per process (from the
/// pid, the time and a random key) plus a per-process counter in base 36, e.g. `k3x90`,
/// `k3x91`... Unique within the process, 5–7 characters for the first million calls, so
/// `veth` + suffix stays within the 15-byte interface name limit.
pub fn unique_suffix() -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = BASE.get_or_init(|| base36(random_u64() % 36u64.pow(4), 4));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{base}{}", base36(u64::from(n), 1))
}

fn run_ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip(8)")
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn ip_checked(args: &[&str]) -> Output {
    check(run_ip(args), &format!("ip {}", args.join(" ")))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Deletes `/run/netns/<prefix>-<pid>-*` namespaces whose creating process is gone (left by a
/// test run that was killed). Called by [`TestNs::new`]. Namespaces of live processes, and
/// names not of that shape, are left alone.
pub fn sweep_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return;
    };
    let head = format!("{prefix}-");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&head) else {
            continue;
        };
        let Some((pid, random)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if pid <= 0 || random.is_empty() || random.contains('-') || pid_alive(pid) {
            continue;
        }
        let out = run_ip(&["netns", "del", &name]);
        if !out.status.success() {
            eprintln!(
                "netns-fixtures: cannot sweep stale netns {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// Makes a spawned command enter the namespace at `path` before it executes
/// ([`Netns::enter_before_exec`]).
pub fn enter_before_exec(cmd: &mut Command, path: &Path) {
    Netns::open(path)
        .and_then(|ns| ns.enter_before_exec(cmd))
        .unwrap_or_else(|e| panic!("enter {} before exec: {e}", path.display()));
}

/// A named network namespace that is deleted on drop (unless [`TestNs::keep`] gave it away).
#[derive(Debug)]
pub struct TestNs {
    name: String,
    path: PathBuf,
    delete_on_drop: bool,
}

/// Whether `name` is usable as a namespace name under `/run/netns` (and in `ip -n`).
fn valid_netns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl TestNs {
    /// Creates `<prefix>-<pid>-<random>` with `ip netns add` (after sweeping stale namespaces of
    /// this prefix). `lo` stays down, as in any new namespace.
    pub fn new(prefix: &str) -> TestNs {
        assert!(
            !prefix.is_empty() && !prefix.contains(['/', ' ']),
            "bad netns prefix {prefix:?}"
        );
        sweep_stale(prefix);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            base36(random_u64(), 1)
        );
        ip_checked(&["netns", "add", &name]);
        let path = Path::new(NETNS_RUN_DIR).join(&name);
        TestNs {
            name,
            path,
            delete_on_drop: true,
        }
    }

    /// Creates the namespace `name` exactly (no sweeping, no suffix); panics if it exists or
    /// the name is not `[A-Za-z0-9._-]+`. Deleted on drop unless [`TestNs::keep`] is called:
    /// for fixtures that outlive the process that made them (the `netns-fixture` CLI).
    pub fn with_name(name: &str) -> TestNs {
        assert!(valid_netns_name(name), "bad netns name {name:?}");
        ip_checked(&["netns", "add", name]);
        TestNs {
            name: name.to_string(),
            path: Path::new(NETNS_RUN_DIR).join(name),
            delete_on_drop: true,
        }
    }

    /// The existing namespace `name`, deleted when the value is dropped; `None` if there is no
    /// such namespace (or the name is not a valid one).
    pub fn adopt(name: &str) -> Option<TestNs> {
        if !valid_netns_name(name) {
            return None;
        }
        let path = Path::new(NETNS_RUN_DIR).join(name);
        path.exists().then(|| TestNs {
            name: name.to_string(),
            path,
            delete_on_drop: true,
        })
    }

    /// The existing namespace `name`, left alone when the value is dropped; `None` if there is
    /// no such namespace (or the name is not a valid one).
    pub fn open(name: &str) -> Option<TestNs> {
        let mut ns = TestNs::adopt(name)?;
        ns.delete_on_drop = false;
        Some(ns)
    }

    /// Gives the namespace away: it is no longer deleted when this value is dropped. Returns
    /// its name (delete it later with [`TestNs::adopt`] or `ip netns del`).
    pub fn keep(mut self) -> String {
        self.delete_on_drop = false;
        self.name.clone()
    }

    /// The namespace name (for `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, e.g. for `CNI_NETNS`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `ip -n NAME args...` and returns its output, whatever the status.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all)
    }

    /// Runs `ip -n NAME args...` and panics (with ip's stderr) unless it succeeds; returns stdout.
    pub fn ip_ok(&self, args: &[&str]) -> String {
        let out = check(
            self.ip(args),
            &format!("ip -n {} {}", self.name, args.join(" ")),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `ip -j -n NAME args...` and parses its JSON (an empty output gives `[]`).
    pub fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.ip_ok(&all);
        if out.trim().is_empty() {
            return serde_json::Value::Array(Vec::new());
        }
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!(
                "ip -j -n {} {}: bad JSON ({e}): {out}",
                self.name,
                args.join(" ")
            )
        })
    }

    /// `ip -j -d link show dev NAME` (the one object), or `None` if there is no such link.
    pub fn link(&self, ifname: &str) -> Option<serde_json::Value> {
        let out = self.ip(&["-j", "-d", "link", "show", "dev", ifname]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.first().cloned()
    }

    /// The ifindex of `ifname`; panics if it does not exist.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let link = self
            .link(ifname)
            .unwrap_or_else(|| panic!("no link {ifname} in netns {}", self.name));
        link["ifindex"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or_else(|| panic!("no ifindex in {link}"))
    }

    /// Runs `cmd` inside the namespace (setns between fork and exec; the mount namespace and
    /// `/sys` stay the caller's) and waits for it; stdout and stderr are captured.
    pub fn exec(&self, cmd: &mut Command) -> Output {
        enter_before_exec(cmd, &self.path);
        cmd.output()
            .unwrap_or_else(|e| panic!("run {cmd:?} in netns {}: {e}", self.name))
    }

    /// Spawns `cmd` inside the namespace (configure its stdio first, e.g. a piped stdin).
    pub fn spawn(&self, cmd: &mut Command) -> Child {
        enter_before_exec(cmd, &self.path);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?} in netns {}: {e}", self.name))
    }

    /// The namespace, opened ([`Netns::open`]).
    pub fn netns(&self) -> Netns {
        Netns::open(&self.path).unwrap_or_else(|e| panic!("open netns {}: {e}", self.name))
    }

    /// Runs `f` inside the namespace, on the calling thread, which comes back ([`Netns::run`]).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        self.netns()
            .run(f)
            .unwrap_or_else(|e| panic!("enter netns {}: {e}", self.name))
    }

    /// Writes a sysctl (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`) inside the namespace.
    pub fn sysctl(&self, key: &str, val: &str) {
        self.netns()
            .sysctl_set(key, val)
            .unwrap_or_else(|e| panic!("sysctl {key}={val} in netns {}: {e}", self.name));
    }

    /// Reads a sysctl inside the namespace (without the trailing newline).
    pub fn sysctl_get(&self, key: &str) -> String {
        self.netns()
            .sysctl_get(key)
            .unwrap_or_else(|e| panic!("read sysctl {key} in netns {}: {e}", self.name))
            .trim_end()
            .to_string()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if !self.delete_on_drop {
            return;
        }
        for attempt in 0..3 {
            if run_ip(&["netns", "del", &self.name]).status.success() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20 * (attempt + 1)));
        }
        eprintln!("netns-fixtures: could not delete netns {}", self.name);
    }
}

/// The `flags` of a link object of `ip -j link` (`UP`, `LOWER_UP`, ...).
pub fn flags(link: &serde_json::Value) -> Vec<String> {
    link["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

/// Creates a veth pair `a_name` (in `a`) / `b_name` (in `b`) and brings both ends up.
pub fn veth_pair(a: &TestNs, a_name: &str, b: &TestNs, b_name: &str) {
    a.ip_ok(&[
        "link",
        "add",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ]);
    a.ip_ok(&["link", "set", a_name, "up"]);
    b.ip_ok(&["link", "set", b_name, "up"]);
}

fn ip_of(cidr: &str) -> IpAddr {
    cidr.split('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad CIDR {cidr:?}"))
}

/// A fake ENI in a [`SimHost`]: a veth end in the host namespace with the ENI's MAC, whose
/// peer sits in the subnet namespace and carries the gateway addresses.
#[derive(Debug, Clone)]
pub struct FakeEni {
    /// Host-side name, `eni<suffix>` unless chosen.
    pub name: String,
    /// Host-side ifindex at creation.
    pub index: u32,
    /// The ENI MAC (lowercase, colon form).
    pub mac: String,
    /// MTU of both ends.
    pub mtu: u32,
    /// Subnet-side (gateway) name, `sub<suffix>` unless chosen.
    pub peer_name: String,
    /// IPv4 gateway address, if configured.
    pub gw_v4: Option<IpAddr>,
    /// IPv6 gateway address, if configured.
    pub gw_v6: Option<IpAddr>,
}

/// What [`SimHost::add_fake_eni_with`] builds; every field is optional (`Default` gives
/// generated names, a kernel-chosen MAC, MTU 1500 and no gateway addresses).
#[derive(Debug, Clone, Default)]
pub struct EniSpec {
    /// Host-side name (default `eni<suffix>`).
    pub name: Option<String>,
    /// Subnet-side name (default `sub<suffix>`).
    pub peer_name: Option<String>,
    /// The ENI MAC (default: chosen by the kernel).
    pub mac: Option<String>,
    /// MTU of both ends (default 1500).
    pub mtu: Option<u32>,
    /// IPv4 gateway address with prefix on the subnet side, e.g. `10.0.1.1/24`.
    pub gw_v4_cidr: Option<String>,
    /// IPv6 gateway address with prefix on the subnet side (added without DAD).
    pub gw_v6_cidr: Option<String>,
}

/// A fake trunk ENI in a [`SimHost`]: a veth end in the host namespace whose peer sits in
/// the subnet namespace, optionally with 802.1Q sub-interfaces there answering as the
/// gateways of branch ENIs.
#[derive(Debug, Clone)]
pub struct FakeTrunk {
    /// Host-side name, `trk<suffix>` unless chosen.
    pub name: String,
    /// Host-side ifindex at creation.
    pub index: u32,
    /// Its MAC (lowercase, colon form).
    pub mac: String,
    /// MTU of both ends.
    pub mtu: u32,
    /// Subnet-side name, `trp<suffix>` unless chosen.
    pub peer_name: String,
    /// The VLANs on the subnet side: (VLAN id, link name `<peer>.<id>`, gateway address).
    pub vlans: Vec<(u16, String, IpAddr)>,
}

/// What [`SimHost::add_fake_trunk`] builds (`Default`: generated names, kernel-chosen MAC,
/// MTU 1500, no VLANs).
#[derive(Debug, Clone, Default)]
pub struct TrunkSpec {
    /// Host-side name (default `trk<suffix>`).
    pub name: Option<String>,
    /// Subnet-side name (default `trp<suffix>`).
    pub peer_name: Option<String>,
    /// The trunk's MAC (default: chosen by the kernel).
    pub mac: Option<String>,
    /// MTU of both ends (default 1500).
    pub mtu: Option<u32>,
    /// VLANs to create on the subnet side (needs 802.1Q): (id, gateway CIDR), e.g.
    /// `(102, "10.0.2.1/24")`; each becomes `<peer>.<id>`, up, with that address.
    pub vlans: Vec<(u16, String)>,
}

/// The fake primary interface of a [`SimHost`], carrying its default routes.
#[derive(Debug, Clone)]
pub struct FakePrimary {
    /// Host-side name, `prim<suffix>`.
    pub name: String,
    /// Host-side ifindex.
    pub index: u32,
    /// Its MAC (lowercase, colon form).
    pub mac: String,
    /// Host address, `198.51.100.2/24`.
    pub addr_v4: String,
    /// Default IPv4 gateway, `198.51.100.1`.
    pub gw_v4: IpAddr,
    /// Host address, `2001:db8:ffff::2/64`.
    pub addr_v6: String,
    /// Default IPv6 gateway, `2001:db8:ffff::1`.
    pub gw_v6: IpAddr,
}

/// A simulated EC2 host: a "host" namespace in which plugin binaries run, and a "subnet"
/// namespace acting as the VPC router behind its fake ENIs.
///
/// Plugins are entered into the host namespace with `setns` only (no new mount namespace), so
/// `/proc/net` is right but `/sys/class/net` still shows the machine's links: plugins must use
/// netlink, not sysfs, to inspect interfaces.
#[derive(Debug)]
pub struct SimHost {
    /// Where plugins run (`lo` up).
    pub host: TestNs,
    /// The VPC side of every fake ENI (`lo` up).
    pub subnet: TestNs,
}

impl SimHost {
    /// Creates `<prefix>h-...` (host) and `<prefix>s-...` (subnet), both with `lo` up.
    pub fn new(prefix: &str) -> SimHost {
        SimHost::from_namespaces(
            TestNs::new(&format!("{prefix}h")),
            TestNs::new(&format!("{prefix}s")),
        )
    }

    /// Creates the namespaces `host` and `subnet` by these exact names ([`TestNs::with_name`]),
    /// both with `lo` up.
    pub fn with_names(host: &str, subnet: &str) -> SimHost {
        let host = TestNs::with_name(host);
        SimHost::from_namespaces(host, TestNs::with_name(subnet))
    }

    fn from_namespaces(host: TestNs, subnet: TestNs) -> SimHost {
        host.ip_ok(&["link", "set", "lo", "up"]);
        subnet.ip_ok(&["link", "set", "lo", "up"]);
        SimHost { host, subnet }
    }

    /// Adds a fake ENI with MAC `mac` and MTU `mtu` on both ends, both up; the subnet side gets
    /// `gw_v4_cidr` (e.g. `10.0.1.1/24`) and `gw_v6_cidr` (nodad) as gateway addresses.
    pub fn add_fake_eni(
        &self,
        mac: &str,
        gw_v4_cidr: Option<&str>,
        gw_v6_cidr: Option<&str>,
        mtu: u32,
    ) -> FakeEni {
        self.add_fake_eni_with(&EniSpec {
            mac: Some(mac.to_string()),
            mtu: Some(mtu),
            gw_v4_cidr: gw_v4_cidr.map(str::to_string),
            gw_v6_cidr: gw_v6_cidr.map(str::to_string),
            ..EniSpec::default()
        })
    }

    /// Adds a fake ENI as `spec` describes: a veth pair, host end in the host namespace, peer in
    /// the subnet namespace with the gateway addresses (IPv6 without DAD), both ends up.
    pub fn add_fake_eni_with(&self, spec: &EniSpec) -> FakeEni {
        let suffix = unique_suffix();
        let name = spec.name.clone().unwrap_or_else(|| format!("eni{suffix}"));
        let peer_name = spec
            .peer_name
            .clone()
            .unwrap_or_else(|| format!("sub{suffix}"));
        let mtu = spec.mtu.unwrap_or(1500);
        self.add_veth_to_subnet(&name, &peer_name, spec.mac.as_deref(), mtu);
        if let Some(cidr) = &spec.gw_v4_cidr {
            self.subnet.ip_ok(&["addr", "add", cidr, "dev", &peer_name]);
        }
        if let Some(cidr) = &spec.gw_v6_cidr {
            self.subnet
                .ip_ok(&["addr", "add", cidr, "dev", &peer_name, "nodad"]);
        }
        self.subnet.ip_ok(&["link", "set", &peer_name, "up"]);
        self.host.ip_ok(&["link", "set", &name, "up"]);
        let link = self.host.link(&name).expect("fake ENI just created");
        FakeEni {
            index: self.host.ifindex(&name),
            mac: link["address"].as_str().unwrap_or_default().to_string(),
            name,
            mtu,
            peer_name,
            gw_v4: spec.gw_v4_cidr.as_deref().map(ip_of),
            gw_v6: spec.gw_v6_cidr.as_deref().map(ip_of),
        }
    }

    /// Adds a fake trunk as `spec` describes: a veth pair, host end in the host namespace, peer
    /// (with its VLAN sub-interfaces and their gateway addresses) in the subnet namespace, all
    /// up. Creating a VLAN needs 802.1Q in the kernel (see the user-mode-linux runner).
    pub fn add_fake_trunk(&self, spec: &TrunkSpec) -> FakeTrunk {
        let suffix = unique_suffix();
        let name = spec.name.clone().unwrap_or_else(|| format!("trk{suffix}"));
        let peer_name = spec
            .peer_name
            .clone()
            .unwrap_or_else(|| format!("trp{suffix}"));
        let mtu = spec.mtu.unwrap_or(1500);
        self.add_veth_to_subnet(&name, &peer_name, spec.mac.as_deref(), mtu);
        self.host.ip_ok(&["link", "set", &name, "up"]);
        self.subnet.ip_ok(&["link", "set", &peer_name, "up"]);
        let mut vlans = Vec::new();
        for (id, cidr) in &spec.vlans {
            let vlan = format!("{peer_name}.{id}");
            assert!(vlan.len() <= 15, "VLAN link name {vlan} is over 15 bytes");
            let id_s = id.to_string();
            self.subnet.ip_ok(&[
                "link", "add", "link", &peer_name, "name", &vlan, "type", "vlan", "id", &id_s,
            ]);
            self.subnet.ip_ok(&["addr", "add", cidr, "dev", &vlan]);
            self.subnet.ip_ok(&["link", "set", &vlan, "up"]);
            vlans.push((*id, vlan, ip_of(cidr)));
        }
        let link = self.host.link(&name).expect("fake trunk just created");
        FakeTrunk {
            index: self.host.ifindex(&name),
            mac: link["address"].as_str().unwrap_or_default().to_string(),
            name,
            mtu,
            peer_name,
            vlans,
        }
    }

    /// `ip link add NAME [address MAC] mtu MTU type veth peer name PEER mtu MTU netns SUBNET`
    /// in the host namespace.
    fn add_veth_to_subnet(&self, name: &str, peer: &str, mac: Option<&str>, mtu: u32) {
        let mtu = mtu.to_string();
        let mut args = vec!["link", "add", name];
        if let Some(mac) = mac {
            args.extend(["address", mac]);
        }
        args.extend([
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "mtu",
            &mtu,
            "netns",
            self.subnet.name(),
        ]);
        self.host.ip_ok(&args);
    }

    /// Adds `prim<suffix>` to the host namespace with `198.51.100.2/24` and
    /// `2001:db8:ffff::2/64` (nodad) and the default routes via `.1` / `::1`, which live on its
    /// peer in the subnet namespace. A plugin must refuse to move this interface.
    pub fn add_primary_with_default_route(&self) -> FakePrimary {
        let suffix = unique_suffix();
        let name = format!("prim{suffix}");
        let peer = format!("psub{suffix}");
        self.host.ip_ok(&[
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            self.subnet.name(),
        ]);
        self.subnet
            .ip_ok(&["addr", "add", "198.51.100.1/24", "dev", &peer]);
        self.subnet
            .ip_ok(&["addr", "add", "2001:db8:ffff::1/64", "dev", &peer, "nodad"]);
        self.subnet.ip_ok(&["link", "set", &peer, "up"]);
        self.host
            .ip_ok(&["addr", "add", "198.51.100.2/24", "dev", &name]);
        self.host
            .ip_ok(&["addr", "add", "2001:db8:ffff::2/64", "dev", &name, "nodad"]);
        self.host.ip_ok(&["link", "set", &name, "up"]);
        self.host.ip_ok(&[
            "route",
            "add",
            "default",
            "via",
            "198.51.100.1",
            "dev",
            &name,
        ]);
        self.host.ip_ok(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:ffff::1",
            "dev",
            &name,
        ]);
        let link = self.host.link(&name).expect("primary just created");
        FakePrimary {
            index: self.host.ifindex(&name),
            mac: link["address"].as_str().unwrap_or_default().to_string(),
            name,
            addr_v4: "198.51.100.2/24".into(),
            gw_v4: ip_of("198.51.100.1"),
            addr_v6: "2001:db8:ffff::2/64".into(),
            gw_v6: ip_of("2001:db8:ffff::1"),
        }
    }

    /// [`run_plugin`] inside the host namespace.
    pub fn run_plugin(&self, bin: &Path, env: &[(&str, &str)], stdin: &[u8]) -> PluginOutput {
        run_plugin(bin, Some(&self.host), env, stdin)
    }
}

/// What a plugin run produced.
#[derive(Debug, Clone)]
pub struct PluginOutput {
    /// Exit code; 128 + signal number if it was killed by a signal.
    pub status: i32,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// It was killed after the timeout.
    pub timed_out: bool,
}

impl PluginOutput {
    /// stdout parsed as JSON; panics with both streams if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "plugin stdout is not JSON ({e}), status {}\nstdout: {}\nstderr: {}",
                self.status, self.stdout, self.stderr
            )
        })
    }
}

/// Runs a plugin binary with a clean environment (exactly the given variables, plus a default
/// `PATH` unless one is given), `stdin` on its standard input, inside `host` if given, and
/// kills it after 30 s ([`PLUGIN_TIMEOUT`]).
pub fn run_plugin(
    bin: &Path,
    host: Option<&TestNs>,
    env: &[(&str, &str)],
    stdin: &[u8],
) -> PluginOutput {
    run_plugin_with_timeout(bin, host, env, stdin, PLUGIN_TIMEOUT)
}

/// [`run_plugin`] with a custom timeout.
pub fn run_plugin_with_timeout(
    bin: &Path,
    host: Option<&TestNs>,
    env: &[(&str, &str)],
    stdin: &[u8],
    timeout: Duration,
) -> PluginOutput {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !env.iter().any(|(k, _)| *k == "PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(ns) = host {
        enter_before_exec(&mut cmd, ns.path());
    }
    // A binary or script written just before may still be open for writing in a child another
    // thread forked meanwhile (ETXTBSY until that child execs): retry briefly.
    let mut attempts = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(child) => break child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("spawn plugin {}: {e}", bin.display()),
        }
    };
    let mut child_in = child.stdin.take().expect("piped stdin");
    let mut child_out = child.stdout.take().expect("piped stdout");
    let mut child_err = child.stderr.take().expect("piped stderr");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // a plugin may exit without reading stdin: EPIPE is fine
        let _ = child_in.write_all(&input);
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = child_out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = child_err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for plugin") {
            Some(status) => break status,
            None if start.elapsed() >= timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed plugin");
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(format!("\nrun_plugin: killed after {timeout:?}\n").as_bytes());
    }
    PluginOutput {
        status: status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_short_and_unique() {
        let all: Vec<String> = (0..2000).map(|_| unique_suffix()).collect();
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        for s in &all {
            assert!((5..=7).contains(&s.len()), "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            );
            assert!(format!("psub{s}").len() <= 15);
        }
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0, 1), "0");
        assert_eq!(base36(35, 1), "z");
        assert_eq!(base36(36, 1), "10");
        assert_eq!(base36(1, 4), "0001");
    }
}
