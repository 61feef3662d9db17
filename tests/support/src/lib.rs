//! Shared helpers for the black-box tests (namespace tier `tests/netns`, system tier
//! `tests/system`): where the built plugins are, the spec versions we advertise, and small
//! builders for CNI environments and configs; per plugin, what more than one test binary of
//! that plugin needs ([`bridge`], [`branch_eni`]).

use std::path::PathBuf;

pub mod branch_eni;
pub mod bridge;
pub mod ipam;

mod assert;
mod fs;
mod links;
mod rand;

pub use assert::*;
pub use fs::*;
pub use links::*;
pub use rand::*;

use serde_json::Value;

pub use netns_fixtures::{PluginOutput, SimHost, TestNs, run_plugin};

/// Every version the plugins advertise (kept in step with `cni_spec::SpecVersion::ALL`; the
/// VERSION test of each plugin checks that the two agree).
pub const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Versions below 1.0.0 print `ips[].version`.
pub fn has_ip_version(v: &str) -> bool {
    v.starts_with("0.")
}

/// CHECK exists from 0.4.0 on.
pub fn allows_check(v: &str) -> bool {
    v != "0.3.0" && v != "0.3.1"
}

/// GC and STATUS exist from 1.1.0 on.
pub fn allows_gc_status(v: &str) -> bool {
    v == "1.1.0"
}

/// The directory holding the plugin binaries: `$CNI_SUITE_BIN_DIR`, or the cargo target
/// directory this test binary was built in (`target/<profile>/deps/../`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CNI_SUITE_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The path of a built plugin; panics with a hint when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first (`cargo build --workspace --bins`)",
        p.display()
    );
    p
}

/// The CNI_* variables of one call (CNI_PATH points at our binaries).
pub fn cni_env(
    command: &str,
    container_id: &str,
    netns: &str,
    ifname: &str,
) -> Vec<(String, String)> {
    vec![
        ("CNI_COMMAND".into(), command.into()),
        ("CNI_CONTAINERID".into(), container_id.into()),
        ("CNI_NETNS".into(), netns.into()),
        ("CNI_IFNAME".into(), ifname.into()),
        ("CNI_PATH".into(), bin_dir().display().to_string()),
    ]
}

/// Borrowed view of [`cni_env`] for [`run_plugin`].
pub fn as_env(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect()
}

/// `conf` with `prevResult` set (as libcni does for CHECK and DEL).
pub fn with_prev_result(conf: &Value, result: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = result.clone();
    c
}

/// Runs `bin` with `env` and the JSON `conf` on stdin, optionally inside `host`.
pub fn call(
    bin: &std::path::Path,
    host: Option<&TestNs>,
    env: &[(String, String)],
    conf: &Value,
) -> PluginOutput {
    run_plugin(bin, host, &as_env(env), conf.to_string().as_bytes())
}

/// The repository root (this crate lives in tests/support/).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support/ has a grandparent")
        .to_path_buf()
}

/// Runs this test binary's ignored tests whose names start with `prefix` inside user-mode-linux
/// (one guest boot for all of them, `IN_UML=1`, our plugins' directory passed through) and
/// asserts that every one of them passed. `min_tests` guards against an empty filter.
/// Returns early, saying so on stderr, only when the UML kernel is missing and `SKIP_UML=1`.
pub fn run_ignored_tests_in_uml(prefix: &str, min_tests: usize, env: &[(&str, &std::ffi::OsStr)]) {
    use std::io::Write;
    use std::process::Command;
    let kernel = std::env::var("UML_KERNEL").unwrap_or_else(|_| "/usr/bin/linux.uml".into());
    if !std::path::Path::new(&kernel).exists() && std::env::var("SKIP_UML").as_deref() == Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the guest tests {prefix}*: {kernel} is missing and SKIP_UML=1"
        );
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let list = Command::new(&exe)
        .args(["--list", "--ignored", "--format", "terse"])
        .output()
        .expect("list the ignored tests");
    assert!(list.status.success(), "{list:?}");
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect();
    assert!(
        names.len() >= min_tests,
        "unexpected guest test list: {names:?}"
    );
    let started = std::time::Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("netns-fixtures").join("uml-run.sh"))
        .arg(&exe)
        .args(["--ignored", "--test-threads=1", prefix])
        .env("IN_UML", "1")
        .env("CNI_SUITE_BIN_DIR", bin_dir())
        .env("UML_TIMEOUT", "900");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run uml-run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "--- guest run: exit {:?} after {:?}\n--- stdout:\n{stdout}--- stderr:\n{}",
        out.status.code(),
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "the guest tests failed");
    for n in &names {
        assert!(
            stdout.contains(&format!("test {n} ... ok")),
            "{n} did not pass in the guest"
        );
    }
    let summary = format!("test result: ok. {} passed; 0 failed", names.len());
    assert!(
        stdout.contains(&summary),
        "no '{summary}' in the guest output"
    );
}

/// The leases of an ecs-ipam BoltDB store (our reader): address key (`a.b.c.d`, `6` + IPv6)
/// → owner id, without the gateway markers and `lastKnownIP*`; empty when the file is missing.
pub fn ecs_leases(db: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    ipam_store::EcsStore::new(db, std::time::Duration::from_secs(10))
        .dump()
        .unwrap_or_else(|e| panic!("read {}: {e}", db.display()))
        .into_iter()
        .filter(|(k, v)| !k.starts_with("last") && v != "GateWay" && v != "GateWayV6")
        .collect()
}

/// Global addresses of `dev` in `ns` as `addr/prefix`; asserts none is still tentative (DAD).
pub fn global_addrs(ns: &TestNs, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| {
            assert!(a.get("tentative").is_none(), "tentative address: {a}");
            format!(
                "{}/{}",
                a["local"].as_str().unwrap_or_default(),
                a["prefixlen"]
            )
        })
        .collect()
}

/// Routes of one family (`-4`/`-6`) in the main table of `ns`, as "dst gateway dev type"
/// (`-` for an absent field).
pub fn main_routes(ns: &TestNs, fam: &str) -> Vec<String> {
    ns.ip_json(&[fam, "route", "show"])
        .as_array()
        .expect("route list")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            format!("{} {} {} {}", s("dst"), s("gateway"), s("dev"), s("type"))
        })
        .collect()
}

/// The agent- and runtime-facing basics of a plugin binary: VERSION lists every advertised
/// version, no CNI_COMMAND prints the one-line "about" on stderr only, and `--capabilities`
/// prints `capabilities`.
pub fn assert_version_about_and_capabilities(plugin: &str, capabilities: &[&str]) {
    let p = bin(plugin);
    // asked in any version, VERSION answers in the newest (as Go's skel does) with all of them
    for v in VERSIONS {
        let out = run_plugin(
            &p,
            None,
            &[("CNI_COMMAND", "VERSION")],
            format!("{{\"cniVersion\":\"{v}\"}}").as_bytes(),
        );
        assert_eq!(out.status, 0, "{plugin} VERSION {v}: {out:?}");
        assert_eq!(
            out.json(),
            serde_json::json!({"cniVersion": "1.1.0", "supportedVersions": VERSIONS}),
            "{plugin} VERSION {v}"
        );
    }
    // `--version` (the ECS agent's JSON) and the about line name the same version
    let out = std::process::Command::new(&p)
        .arg("--version")
        .output()
        .expect("run --version");
    let v: Value = serde_json::from_slice(&out.stdout).expect("--version prints JSON");
    let version = v["version"].as_str().expect("--version has a version");
    assert!(
        v["gitShortHash"].is_string() && v["dirty"].is_boolean(),
        "{plugin} --version: {v}"
    );
    let out = run_plugin(&p, None, &[], b"");
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{plugin} about");
    assert!(
        out.stderr
            .starts_with(&format!("CNI {plugin} plugin {version} ("))
            && out.stderr.lines().count() == 1,
        "{plugin} about: {}",
        out.stderr
    );
    let out = std::process::Command::new(&p)
        .arg("--capabilities")
        .output()
        .expect("run --capabilities");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("--capabilities prints JSON"),
        serde_json::json!({ "capabilities": capabilities }),
        "{plugin} --capabilities"
    );
}

/// libcni decodes `cniVersion` before anything else: a non-string one, in any spelling Go's
/// `encoding/json` matches, is a decode error (code 6) naming the key as written, reported in
/// the newest version, for every verb that reads a config. Runs `plugin` in a simulated host.
pub fn assert_non_string_cni_version_is_a_decode_error(plugin: &str) {
    let p = bin(plugin);
    let sim = SimHost::new("cv");
    let ctr = TestNs::new("cvc");
    let netns = ctr.path().display().to_string();
    for (key, value, shown) in [
        ("cniVersion", serde_json::json!(1), "1"),
        ("CNIVersion", serde_json::json!(1.0), "1.0"),
        ("cniversion", serde_json::json!(true), "true"),
        ("CNIVERSION", serde_json::json!(["1.0.0"]), "[\"1.0.0\"]"),
        (
            "cniVersion",
            serde_json::json!({"v": "1.0.0"}),
            "{\"v\":\"1.0.0\"}",
        ),
    ] {
        let mut conf = serde_json::json!({"name": "n", "type": plugin});
        conf[key] = value;
        for verb in ["ADD", "DEL", "CHECK"] {
            let out = call(
                &p,
                Some(&sim.host),
                &cni_env(verb, "c1", &netns, "eth0"),
                &conf,
            );
            assert_eq!(out.status, 1, "{plugin} {verb} {conf}: {out:?}");
            let msg = format!(
                "failed to decode network config: key \"{key}\": expected a string, got {shown}"
            );
            assert_eq!(
                out.json(),
                serde_json::json!({"cniVersion": "1.1.0", "code": 6, "msg": msg}),
                "{plugin} {verb} {conf}"
            );
        }
    }
    assert_eq!(
        ctr.ip_json(&["link", "show"]).as_array().map(Vec::len),
        Some(1),
        "{plugin}: a refused config touched the container namespace"
    );
}
