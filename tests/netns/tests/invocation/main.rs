//! How a plugin treats its invocation, whatever the plugin (`ipam` and `loopback` here):
//! CNI_NETNS must be another network namespace, a namespace deleted between ADD and DEL, and
//! hostile stdin (bounded, always answered).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::ipam::*;
use test_support::*;

#[test]
fn netns_deleted_between_add_and_del() {
    let host = TestNs::new("hdh");
    let data = TempDir::new("gone");
    let conf = host_local("1.0.0", "gone", &data.display(), json!({}));
    let lo_conf = json!({"cniVersion": "1.0.0", "name": "gone", "type": "loopback"});
    let net = data.path().join("gone");
    for v in VERSIONS {
        let ctr = TestNs::new("hdc");
        let netns = ctr.path().display().to_string();
        let mut conf = conf.clone();
        conf["cniVersion"] = json!(v);
        let mut lo_conf = lo_conf.clone();
        lo_conf["cniVersion"] = json!(v);
        let add = ipam("ADD", "gone-1", &netns, &conf);
        assert_ok(&add, v);
        let lo = call(
            &bin("loopback"),
            Some(&host),
            &cni_env("ADD", "gone-1", &netns, "lo"),
            &lo_conf,
        );
        assert_ok(&lo, v);
        assert_eq!(leases_of(&net, "gone-1").len(), 1);
        let path = ctr.path().to_path_buf();
        drop(ctr);
        assert!(!path.exists(), "the namespace is gone");
        for round in 0..2 {
            let del = call(
                &bin("loopback"),
                Some(&host),
                &cni_env("DEL", "gone-1", &netns, "lo"),
                &with_prev_result(&lo_conf, &lo.json()),
            );
            assert_ok(&del, &format!("{v} loopback DEL #{round}"));
            assert_eq!(del.stdout, "");
            let del = ipam(
                "DEL",
                "gone-1",
                &netns,
                &with_prev_result(&conf, &add.json()),
            );
            assert_ok(&del, &format!("{v} ipam DEL #{round}"));
            assert_eq!(del.stdout, "");
        }
        let l = listing(&net);
        assert!(l.leases.is_empty() && l.temps.is_empty(), "{v}: {l:?}");
        assert!(lock_is_free(&net));
    }
}

#[test]
fn cni_netns_must_be_another_network_namespace() {
    let host = TestNs::new("hdx");
    let ctr = TestNs::new("hdy");
    let data = TempDir::new("netns");
    let regular = data.path().join("regular");
    fs::write(&regular, "not a namespace").unwrap();
    let fifo = data.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let ipam_conf = host_local("1.0.0", "netns", &data.display(), json!({}));
    let lo_conf = json!({"cniVersion": "1.0.0", "name": "netns", "type": "loopback"});
    let host_path = host.path().display().to_string();
    let bad: Vec<(String, u64, &str)> = vec![
        (regular.display().to_string(), 4, "not a network namespace"),
        ("/dev/null".into(), 4, "not a network namespace"),
        (data.display(), 4, "not a network namespace"),
        ("/proc/self/ns/uts".into(), 4, "not a network namespace"),
        // found by this test: a FIFO made open(2) block forever
        (fifo.display().to_string(), 4, "not a network namespace"),
        (
            "/run/netns/does-not-exist-hardening".into(),
            4,
            "cannot open",
        ),
        // the plugin runs in `host`: both names of its own namespace are refused
        ("/proc/self/ns/net".into(), 8, "own network namespace"),
        (host_path.clone(), 8, "own network namespace"),
    ];
    for (plugin, conf) in [("ipam", &ipam_conf), ("loopback", &lo_conf)] {
        for (path, code, needle) in &bad {
            if plugin == "ipam" && *code != 8 {
                // an IPAM plugin never enters CNI_NETNS and, like host-local, does not look at
                // it (issue 11): any path but our own namespace is fine, and none blocks
                for verb in ["ADD", "CHECK", "DEL"] {
                    let conf = if verb == "CHECK" {
                        with_prev_result(conf, &json!({"cniVersion": "1.0.0"}))
                    } else {
                        conf.clone()
                    };
                    let out = netns_fixtures::run_plugin_with_timeout(
                        &bin(plugin),
                        Some(&host),
                        &as_env(&cni_env(verb, "ctr", path, "eth0")),
                        conf.to_string().as_bytes(),
                        Duration::from_secs(10),
                    );
                    assert_ok(&out, &format!("ipam {verb} {path}"));
                }
                assert!(leases_of(&data.path().join("netns"), "ctr").is_empty());
                continue;
            }
            for verb in ["ADD", "CHECK"] {
                let conf = with_prev_result(conf, &json!({"cniVersion": "1.0.0"}));
                let out = netns_fixtures::run_plugin_with_timeout(
                    &bin(plugin),
                    Some(&host),
                    &as_env(&cni_env(verb, "ctr", path, "eth0")),
                    conf.to_string().as_bytes(),
                    Duration::from_secs(10),
                );
                assert_cni_error(&out, *code, needle, &format!("{plugin} {verb} {path}"));
            }
            // DEL: a path that is not a namespace counts as gone, our own is refused
            let out = netns_fixtures::run_plugin_with_timeout(
                &bin(plugin),
                Some(&host),
                &as_env(&cni_env("DEL", "ctr", path, "eth0")),
                conf.to_string().as_bytes(),
                Duration::from_secs(10),
            );
            if *code == 8 {
                assert_cni_error(&out, 8, needle, &format!("{plugin} DEL {path}"));
            } else {
                assert_ok(&out, &format!("{plugin} DEL {path}"));
            }
        }
        // and the real container namespace works
        let ctr_path = ctr.path().display().to_string();
        let out = call(
            &bin(plugin),
            Some(&host),
            &cni_env("ADD", "ctr", &ctr_path, "eth0"),
            conf,
        );
        assert_ok(&out, plugin);
        let out = call(
            &bin(plugin),
            Some(&host),
            &cni_env("DEL", "ctr", &ctr_path, "eth0"),
            conf,
        );
        assert_ok(&out, plugin);
    }
    assert!(leases_of(&data.path().join("netns"), "ctr").is_empty());
}

#[test]
fn hostile_stdin_is_bounded_and_answered() {
    let ns = TestNs::new("hdi");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("stdin");
    let env = cni_env("ADD", "ctr", &netns, "eth0");
    let conf = host_local("1.0.0", "stdin", &data.display(), json!({}));
    let mut big = conf.clone();
    big["padding"] = json!("x".repeat(5 << 20));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, u64, &str)> = vec![
        (
            "5 MiB config",
            big.to_string().into_bytes(),
            5,
            "larger than 4194304 bytes",
        ),
        (
            "100000 nested arrays",
            deep.into_bytes(),
            6,
            "recursion limit",
        ),
        (
            "not UTF-8",
            b"{\"cniVersion\":\"1.0.0\xff\"}".to_vec(),
            6,
            "decode",
        ),
        ("empty", Vec::new(), 6, "decode"),
        (
            "truncated",
            br#"{"cniVersion":"1.0.0","name":"x""#.to_vec(),
            6,
            "decode",
        ),
        ("an array", b"[1,2]".to_vec(), 6, "JSON object"),
        ("NUL bytes", vec![0u8; 1000], 6, "decode"),
    ];
    for plugin in ["ipam", "loopback"] {
        for (what, input, code, needle) in &cases {
            let t = Instant::now();
            let out = run_plugin(&bin(plugin), None, &as_env(&env), input);
            assert_cni_error(&out, *code, needle, &format!("{plugin}: {what}"));
            assert!(t.elapsed() < Duration::from_secs(10), "{plugin} {what}");
        }
        // an endless stdin (/dev/zero) is cut at the bound
        let t = Instant::now();
        let out = Command::new(bin(plugin))
            .env_clear()
            .envs(env.clone())
            .stdin(fs::File::open("/dev/zero").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{plugin} /dev/zero");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["code"], json!(5), "{v}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    assert!(listing(&data.path().join("stdin")).leases.is_empty());
}
