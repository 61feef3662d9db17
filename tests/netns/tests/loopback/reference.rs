//! Our `loopback` against Debian's Go reference plugin (`/usr/lib/cni/loopback`, package
//! containernetworking-plugins 1.1.1, CNI up to 1.0.0) on the same inputs: results and error
//! codes must agree for every version both support.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_support::*;

const SHARED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

fn reference() -> PathBuf {
    let p = PathBuf::from("/usr/lib/cni/loopback");
    assert!(
        p.is_file(),
        "{} is missing: install Debian's containernetworking-plugins (tests/run-all.sh does)",
        p.display()
    );
    p
}

/// Replaces the namespace path so that two runs in two namespaces compare equal, and drops
/// `ips[].version`: the spec requires it below 1.0.0 and we print it (asserted in
/// tests/loopback.rs), but Debian's Go plugins (libcni 1.1.2) leave it out.
fn normalise(mut v: Value, netns: &str) -> Value {
    if let Some(ips) = v["ips"].as_array_mut() {
        for ip in ips {
            if let Some(o) = ip.as_object_mut() {
                o.remove("version");
            }
        }
    }
    if let Some(ifs) = v["interfaces"].as_array_mut() {
        for i in ifs {
            if i["sandbox"] == json!(netns) {
                i["sandbox"] = json!("<netns>");
            }
        }
    }
    v
}

fn run(
    bin: &Path,
    host: &TestNs,
    verb: &str,
    netns: &str,
    ifname: &str,
    conf: &Value,
) -> PluginOutput {
    call(
        bin,
        Some(host),
        &cni_env(verb, "cmp-1", netns, ifname),
        conf,
    )
}

#[test]
fn same_results_as_the_reference_plugin() {
    let host = SimHost::new("lrh");
    let (ours, go) = (bin("loopback"), reference());
    for v in SHARED_VERSIONS {
        let conf = json!({"cniVersion": v, "name": "cmp", "type": "loopback"});
        let (a, b) = (TestNs::new("lra"), TestNs::new("lrb"));
        let (pa, pb) = (
            a.path().display().to_string(),
            b.path().display().to_string(),
        );
        let mine = run(&ours, &host.host, "ADD", &pa, "eth0", &conf);
        let theirs = run(&go, &host.host, "ADD", &pb, "eth0", &conf);
        assert_eq!(
            (mine.status, theirs.status),
            (0, 0),
            "{v}: {mine:?} {theirs:?}"
        );
        assert_eq!(
            normalise(mine.json(), &pa),
            normalise(theirs.json(), &pb),
            "{v} ADD"
        );
        assert_eq!(
            a.link("lo").unwrap()["flags"],
            b.link("lo").unwrap()["flags"],
            "{v} lo flags"
        );
        if allows_check(v) {
            let ca = run(
                &ours,
                &host.host,
                "CHECK",
                &pa,
                "eth0",
                &with_prev_result(&conf, &mine.json()),
            );
            let cb = run(
                &go,
                &host.host,
                "CHECK",
                &pb,
                "eth0",
                &with_prev_result(&conf, &theirs.json()),
            );
            assert_eq!((ca.status, cb.status), (0, 0), "{v} CHECK: {ca:?} {cb:?}");
        }
        let da = run(&ours, &host.host, "DEL", &pa, "eth0", &conf);
        let db = run(&go, &host.host, "DEL", &pb, "eth0", &conf);
        assert_eq!(
            (da.status, da.stdout.as_str()),
            (db.status, db.stdout.as_str()),
            "{v} DEL"
        );
        assert_eq!(
            a.link("lo").unwrap()["flags"],
            b.link("lo").unwrap()["flags"],
            "{v} lo flags after DEL"
        );
    }
}

/// libcni reads the common keys with Go's `encoding/json`: any case, and of two spellings of
/// one key the later wins even when the earlier is the exact one. Ours agrees (cni_spec::gojson).
#[test]
fn go_spellings_of_the_common_keys_as_the_reference_plugin() {
    let host = SimHost::new("lrg");
    let (ours, go) = (bin("loopback"), reference());
    for v in SHARED_VERSIONS {
        for conf in [
            json!({"CNIVersion": v, "name": "cmp", "type": "loopback"}),
            json!({"cniversion": v, "NAME": "cmp", "Type": "loopback", "dns": null}),
            json!({"cniVersion": "9.9.9", "CNIVERSION": v, "name": "cmp", "type": "loopback"}),
        ] {
            let (a, b) = (TestNs::new("lrga"), TestNs::new("lrgb"));
            let (pa, pb) = (
                a.path().display().to_string(),
                b.path().display().to_string(),
            );
            let mine = run(&ours, &host.host, "ADD", &pa, "eth0", &conf);
            let theirs = run(&go, &host.host, "ADD", &pb, "eth0", &conf);
            assert_eq!(
                (mine.status, theirs.status),
                (0, 0),
                "{conf}: {mine:?} {theirs:?}"
            );
            assert_eq!(mine.json()["cniVersion"], json!(v), "{conf}");
            assert_eq!(
                normalise(mine.json(), &pa),
                normalise(theirs.json(), &pb),
                "{conf}"
            );
            assert_eq!(
                a.link("lo").unwrap()["flags"],
                b.link("lo").unwrap()["flags"],
                "{conf}: lo flags"
            );
        }
    }
}

#[test]
fn same_error_codes_as_the_reference_plugin() {
    let host = SimHost::new("lre");
    let ns = TestNs::new("lre");
    let netns = ns.path().display().to_string();
    let (ours, go) = (bin("loopback"), reference());
    type Case<'a> = (&'a str, Vec<(String, String)>, String);
    let cases: Vec<Case> = vec![
        (
            "invalid JSON",
            cni_env("ADD", "c", &netns, "eth0"),
            "{\"cniVersion\":".into(),
        ),
        (
            "CHECK in 0.3.1",
            cni_env("CHECK", "c", &netns, "eth0"),
            json!({"cniVersion": "0.3.1", "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "ifname with a slash",
            cni_env("ADD", "c", &netns, "a/b"),
            json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "ifname too long",
            cni_env("ADD", "c", &netns, "abcdefghijklmnop"),
            json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "bad container id",
            cni_env("ADD", "-c", &netns, "eth0"),
            json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "missing env",
            vec![("CNI_COMMAND".into(), "ADD".into())],
            json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "bad network name",
            cni_env("ADD", "c", &netns, "eth0"),
            json!({"cniVersion": "1.0.0", "name": "a b", "type": "loopback"}).to_string(),
        ),
        (
            "cniVersion a number",
            cni_env("ADD", "c", &netns, "eth0"),
            json!({"cniVersion": 1, "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "CNIVersion a boolean",
            cni_env("ADD", "c", &netns, "eth0"),
            json!({"CNIVersion": true, "name": "n", "type": "loopback"}).to_string(),
        ),
        (
            "unknown verb",
            cni_env("FROB", "c", &netns, "eth0"),
            json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback"}).to_string(),
        ),
    ];
    for (what, env, stdin) in cases {
        let mine = run_plugin(&ours, Some(&host.host), &as_env(&env), stdin.as_bytes());
        let theirs = run_plugin(&go, Some(&host.host), &as_env(&env), stdin.as_bytes());
        assert_eq!(mine.status, 1, "{what}: {mine:?}");
        assert_eq!(theirs.status, 1, "{what}: {theirs:?}");
        assert_eq!(
            mine.json()["code"],
            theirs.json()["code"],
            "{what}: ours {mine:?} go {theirs:?}"
        );
    }
}
