//! Black-box tests of the `loopback` binary, in throwaway namespaces, for every advertised
//! version and every verb.

mod reference;

use serde_json::{Value, json};
use test_support::*;

fn conf(v: &str) -> Value {
    json!({"cniVersion": v, "name": "lo-net", "type": "loopback"})
}

fn lo_flags(ns: &TestNs) -> Vec<String> {
    let link = ns.link("lo").expect("lo exists");
    link["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect()
}

fn expected_add(v: &str, netns: &str) -> Value {
    let ip = |addr: &str, fam: &str| {
        if has_ip_version(v) {
            json!({"version": fam, "interface": 0, "address": addr})
        } else {
            json!({"interface": 0, "address": addr})
        }
    };
    let mut want = json!({
        "cniVersion": v,
        "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": netns}],
        "ips": [ip("127.0.0.1/8", "4"), ip("::1/128", "6")],
    });
    if v != "1.1.0" {
        want["dns"] = json!({});
    }
    want
}

#[test]
fn every_verb_in_every_version() {
    let host = SimHost::new("lbv");
    let lo = bin("loopback");
    for v in VERSIONS {
        let ctr = TestNs::new("lbc");
        let netns = ctr.path().display().to_string();
        assert!(
            !lo_flags(&ctr).contains(&"UP".to_string()),
            "lo starts down"
        );

        let add = call(
            &lo,
            Some(&host.host),
            &cni_env("ADD", "ctr-1", &netns, "eth0"),
            &conf(v),
        );
        assert_eq!(add.status, 0, "{v} ADD: {add:?}");
        assert_eq!(add.json(), expected_add(v, &netns), "{v}");
        assert_eq!(add.stderr, "");
        assert!(
            lo_flags(&ctr).contains(&"UP".to_string()),
            "{v}: lo is up after ADD"
        );
        let addrs = ctr.ip_ok(&["-o", "addr", "show", "dev", "lo"]);
        assert!(
            addrs.contains("127.0.0.1/8") && addrs.contains("::1/128"),
            "{addrs}"
        );

        let with_prev = with_prev_result(&conf(v), &add.json());
        let check = call(
            &lo,
            Some(&host.host),
            &cni_env("CHECK", "ctr-1", &netns, "eth0"),
            &with_prev,
        );
        if allows_check(v) {
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v} CHECK: {check:?}"
            );
        } else {
            assert_eq!(check.status, 1, "{v} CHECK must be refused: {check:?}");
            assert_eq!(check.json()["code"], json!(1), "{v} CHECK must be refused");
        }

        for verb in ["STATUS", "GC"] {
            let out = call(&lo, Some(&host.host), &cni_env(verb, "", "", ""), &conf(v));
            if allows_gc_status(v) {
                assert_eq!(
                    (out.status, out.stdout.as_str()),
                    (0, ""),
                    "{v} {verb}: {out:?}"
                );
            } else {
                assert_eq!(out.status, 1, "{v} {verb}");
                assert_eq!(out.json()["code"], json!(1), "{v} {verb}");
            }
        }
        if allows_gc_status(v) {
            // GC naming this attachment as valid leaves it alone
            let mut gc = conf(v);
            gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr-1", "ifname": "eth0"}]);
            let out = call(&lo, Some(&host.host), &cni_env("GC", "", "", ""), &gc);
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, ""),
                "{v} GC: {out:?}"
            );
            assert!(
                lo_flags(&ctr).contains(&"UP".to_string()),
                "{v}: lo is up after GC"
            );
        }

        let del_conf = if allows_check(v) {
            with_prev.clone()
        } else {
            conf(v)
        };
        for round in 0..2 {
            let del = call(
                &lo,
                Some(&host.host),
                &cni_env("DEL", "ctr-1", &netns, "eth0"),
                &del_conf,
            );
            assert_eq!(
                (del.status, del.stdout.as_str()),
                (0, ""),
                "{v} DEL #{round}: {del:?}"
            );
            assert!(
                !lo_flags(&ctr).contains(&"UP".to_string()),
                "{v}: lo is down after DEL"
            );
        }

        if allows_check(v) {
            let check = call(
                &lo,
                Some(&host.host),
                &cni_env("CHECK", "ctr-1", &netns, "eth0"),
                &with_prev,
            );
            assert_eq!(check.status, 1, "{v}: CHECK after DEL must fail");
            assert!(
                check.json()["msg"].as_str().unwrap().contains("is down"),
                "{check:?}"
            );
        }
    }
}

/// The common keys as Go programs may write them (libcni reads them with Go's
/// `encoding/json`: any case, `null` for unset): `CNIVersion` sets the version of the result,
/// in every version and every verb.
#[test]
fn common_keys_in_go_spellings_every_version() {
    let host = SimHost::new("lbg");
    let lo = bin("loopback");
    for v in VERSIONS {
        let ctr = TestNs::new("lbgc");
        let netns = ctr.path().display().to_string();
        let conf = json!({"CNIVersion": v, "Name": "lo-net", "TYPE": "loopback", "ipam": null,
            "dns": null, "args": null, "runtimeConfig": null, "prevResult": null});
        let run = |verb: &str, conf: &Value| {
            call(
                &lo,
                Some(&host.host),
                &cni_env(verb, "ctr-g", &netns, "eth0"),
                conf,
            )
        };
        let add = run("ADD", &conf);
        assert_eq!(add.status, 0, "{v} ADD: {add:?}");
        assert_eq!(add.json(), expected_add(v, &netns), "{v}");
        assert!(lo_flags(&ctr).contains(&"UP".to_string()), "{v}: lo up");
        let mut with_prev = conf.clone();
        with_prev["PrevResult"] = add.json();
        if allows_check(v) {
            let check = run("CHECK", &with_prev);
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v} CHECK: {check:?}"
            );
        }
        if allows_gc_status(v) {
            for verb in ["STATUS", "GC"] {
                let out = call(&lo, Some(&host.host), &cni_env(verb, "", "", ""), &conf);
                assert_eq!(
                    (out.status, out.stdout.as_str()),
                    (0, ""),
                    "{v} {verb}: {out:?}"
                );
            }
        }
        let del = run("DEL", &with_prev);
        assert_eq!(
            (del.status, del.stdout.as_str()),
            (0, ""),
            "{v} DEL: {del:?}"
        );
        assert!(!lo_flags(&ctr).contains(&"UP".to_string()), "{v}: lo down");
    }
}

#[test]
fn prev_result_is_passed_through_when_chained() {
    let host = SimHost::new("lbp");
    let ctr = TestNs::new("lbp");
    let netns = ctr.path().display().to_string();
    let prev = json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "mac": "0a:58:0a:01:00:05", "mtu": 9001, "sandbox": netns}],
        "ips": [{"interface": 0, "address": "10.1.0.5/24", "gateway": "10.1.0.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "priority": 5}],
    });
    for v in ["1.0.0", "1.1.0"] {
        let out = call(
            &bin("loopback"),
            Some(&host.host),
            &cni_env("ADD", "ctr-2", &netns, "lo"),
            &with_prev_result(&conf(v), &prev),
        );
        assert_eq!(out.status, 0, "{out:?}");
        let mut want = prev.clone();
        want["cniVersion"] = json!(v);
        if v == "1.0.0" {
            want["interfaces"][0].as_object_mut().unwrap().remove("mtu");
            want["routes"][0]
                .as_object_mut()
                .unwrap()
                .remove("priority");
            want["dns"] = json!({});
        }
        assert_eq!(out.json(), want, "{v}");
    }
    assert!(lo_flags(&ctr).contains(&"UP".to_string()));
}

#[test]
fn del_succeeds_when_the_namespace_is_gone_or_not_given() {
    let host = SimHost::new("lbd");
    let ctr = TestNs::new("lbd");
    let netns = ctr.path().display().to_string();
    drop(ctr);
    let lo = bin("loopback");
    for ns in [netns.as_str(), ""] {
        let out = call(
            &lo,
            Some(&host.host),
            &cni_env("DEL", "ctr-3", ns, "eth0"),
            &conf("1.1.0"),
        );
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, ""),
            "netns {ns:?}: {out:?}"
        );
    }
}

#[test]
fn refuses_a_loopback_with_a_foreign_address() {
    let host = SimHost::new("lbf");
    let ctr = TestNs::new("lbf");
    ctr.ip_ok(&["addr", "add", "192.0.2.9/32", "dev", "lo"]);
    let out = call(
        &bin("loopback"),
        Some(&host.host),
        &cni_env("ADD", "ctr-4", &ctr.path().display().to_string(), "eth0"),
        &conf("1.0.0"),
    );
    assert_eq!(out.status, 1);
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("192.0.2.9/32") && msg.contains(ctr.name()),
        "{msg}"
    );
}

#[test]
fn bad_input_gives_clear_errors_and_no_partial_stdout() {
    let host = SimHost::new("lbb");
    let ctr = TestNs::new("lbb");
    let netns = ctr.path().display().to_string();
    let lo = bin("loopback");
    let raw = |env: &[(String, String)], stdin: &str| {
        run_plugin(&lo, Some(&host.host), &as_env(env), stdin.as_bytes())
    };
    // invalid JSON
    let out = raw(&cni_env("ADD", "c", &netns, "eth0"), "{\"cniVersion\":");
    assert_eq!((out.status, out.json()["code"].clone()), (1, json!(6)));
    // wrong type for a key: names the key
    let out = raw(
        &cni_env("ADD", "c", &netns, "eth0"),
        r#"{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"x"}}"#,
    );
    assert_eq!(out.json()["code"], json!(7));
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .contains("dns.nameservers"),
        "{out:?}"
    );
    // unsupported version lists the supported ones
    let out = raw(
        &cni_env("ADD", "c", &netns, "eth0"),
        r#"{"cniVersion":"0.2.0","name":"n"}"#,
    );
    assert_eq!(out.json()["code"], json!(1));
    assert_eq!(
        out.json()["details"],
        json!(
            r#"config is "0.2.0", plugin supports ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]"#
        )
    );
    // missing env: every missing name at once
    let out = raw(
        &[("CNI_COMMAND".into(), "ADD".into())],
        &conf("1.0.0").to_string(),
    );
    assert_eq!(out.json()["code"], json!(4));
    assert_eq!(
        out.json()["msg"],
        json!("required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing")
    );
    // a netns path that is not a namespace, and the plugin's own namespace (whose lo we take
    // down first, so that touching it would show)
    host.host.ip_ok(&["link", "set", "lo", "down"]);
    for (path, code) in [
        ("/etc/hostname", 4),
        ("/proc/self/ns/net", 8),
        ("/run/netns/never-there-lb", 4),
    ] {
        let out = raw(
            &cni_env("ADD", "c", path, "eth0"),
            &conf("1.0.0").to_string(),
        );
        assert_eq!(out.status, 1, "{path}");
        assert_eq!(out.json()["code"], json!(code), "{path}: {out:?}");
        assert!(
            out.json()["msg"].as_str().unwrap().contains(path),
            "{out:?}"
        );
    }
    // the host's (here: the simulated host's) lo was not touched by the refused call
    assert!(!lo_flags(&host.host).contains(&"UP".to_string()));
    // bad ifname / container id
    let out = raw(
        &cni_env("ADD", "c", &netns, "a/b"),
        &conf("1.0.0").to_string(),
    );
    assert_eq!(out.json()["code"], json!(4));
    let out = raw(
        &cni_env("ADD", "-c", &netns, "eth0"),
        &conf("1.0.0").to_string(),
    );
    assert_eq!(out.json()["code"], json!(4));
}

#[test]
fn non_string_cni_version_is_a_decode_error() {
    assert_non_string_cni_version_is_a_decode_error("loopback");
}

#[test]
fn version_and_about() {
    assert_version_about_and_capabilities("loopback", &[]);
}

#[test]
fn logs_go_to_the_log_file_never_to_stdout() {
    let host = SimHost::new("lbg");
    let ctr = TestNs::new("lbg");
    let netns = ctr.path().display().to_string();
    let log = std::env::temp_dir().join(format!(
        "lb-log-{}-{}",
        std::process::id(),
        netns_fixtures::unique_suffix()
    ));
    for (file_var, level_var) in [
        ("CNI_LOG_FILE", "CNI_LOG_LEVEL"),
        ("ECS_CNI_LOG_FILE", "ECS_CNI_LOGLEVEL"),
        ("VPC_CNI_LOG_FILE", "VPC_CNI_LOG_LEVEL"),
    ] {
        let mut env = cni_env("ADD", "ctr-log", &netns, "eth0");
        env.push((file_var.into(), log.display().to_string()));
        env.push((level_var.into(), "debug".into()));
        let out = call(&bin("loopback"), Some(&host.host), &env, &conf("1.1.0"));
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(out.json(), expected_add("1.1.0", &netns));
        assert_eq!(out.stderr, "");
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(
            text.contains("ADD container \"ctr-log\" ifname \"eth0\" starting"),
            "{file_var}: {text}"
        );
        assert!(text.contains("done in"), "{file_var}: {text}");
    }
    // without a file, debug logs go to stderr, and stdout still carries only the result
    let mut env = cni_env("ADD", "ctr-log", &netns, "eth0");
    env.push(("CNI_LOG_LEVEL".into(), "debug".into()));
    let out = call(&bin("loopback"), Some(&host.host), &env, &conf("1.1.0"));
    assert_eq!(out.json(), expected_add("1.1.0", &netns));
    assert!(out.stderr.contains("loopback["), "{}", out.stderr);
}
