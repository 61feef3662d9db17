//! Hardening (issue 5) of `bridge` + IPAM, black-box: an IPAM plugin missing from CNI_PATH,
//! `kill -9` at random points of ADD and DEL, and parallel ADD/DEL cycles. After each: DEL
//! succeeds and no veth, address lease or temp file is left behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use suite_tests::*;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!(
            "hardening-br-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn s(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn conf(bridge: &str, net: &str, data: &str, ipam_type: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": bridge,
        "ipam": {"type": ipam_type, "dataDir": data, "ranges": [[{"subnet": "10.93.0.0/24"}]]}})
}

fn env(verb: &str, cid: &str, netns: &Path, cni_path: &str) -> Vec<(String, String)> {
    let mut e = cni_env(verb, cid, &netns.display().to_string(), "eth0");
    e[4].1 = cni_path.to_string();
    e
}

/// The veth links of a namespace, by name.
fn veths(ns: &TestNs) -> Vec<String> {
    ns.ip_json(&["link", "show", "type", "veth"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

fn leases(data: &str, net: &str) -> (Vec<String>, Vec<String>) {
    let mut leases = Vec::new();
    let mut temps = Vec::new();
    for e in fs::read_dir(Path::new(data).join(net))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.parse::<std::net::IpAddr>().is_ok() {
            leases.push(n);
        } else if n.starts_with(".tmp-") {
            temps.push(n);
        }
    }
    (leases, temps)
}

#[test]
fn ipam_plugin_missing_from_cni_path() {
    let sim = SimHost::new("hbm");
    let ctr = TestNs::new("hbmc");
    let data = Scratch::new("missing");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbm", &data.s(), "missing-ipam");
    let path = bin_dir().display().to_string();
    let add = call(
        &bin("bridge"),
        Some(&sim.host),
        &env("ADD", "c1", ctr.path(), &path),
        &c,
    );
    assert!(!add.timed_out, "{add:?}");
    assert_eq!(add.status, 1, "{add:?}");
    assert_eq!(add.json()["code"], json!(7), "{add:?}");
    let msg = add.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("missing-ipam") && msg.contains(&path), "{msg}");
    // the veth made before IPAM was rolled back on both sides
    assert!(ctr.link("eth0").is_none(), "container eth0 left behind");
    assert!(veths(&sim.host).is_empty(), "{:?}", veths(&sim.host));
    // DEL answers (and names the missing plugin while it is missing) ...
    let del = call(
        &bin("bridge"),
        Some(&sim.host),
        &env("DEL", "c1", ctr.path(), &path),
        &c,
    );
    assert!(!del.timed_out, "{del:?}");
    eprintln!(
        "bridge DEL with its IPAM plugin missing: {} {}",
        del.status,
        del.stdout.trim()
    );
    if del.status != 0 {
        assert!(
            del.json()["msg"].as_str().unwrap().contains("missing-ipam"),
            "{del:?}"
        );
    }
    // ... and succeeds once the plugin is back on CNI_PATH (here: our ipam under that name)
    let extra = Scratch::new("path");
    std::os::unix::fs::symlink(bin("ipam"), extra.0.join("missing-ipam")).unwrap();
    let path2 = format!("{}:{path}", extra.s());
    let del = call(
        &bin("bridge"),
        Some(&sim.host),
        &env("DEL", "c1", ctr.path(), &path2),
        &c,
    );
    assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{del:?}");
    // and then ADD works through the delegate, and DEL cleans it all up
    let add = call(
        &bin("bridge"),
        Some(&sim.host),
        &env("ADD", "c1", ctr.path(), &path2),
        &c,
    );
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(add.json()["ips"][0]["address"], json!("10.93.0.2/24"));
    let del = call(
        &bin("bridge"),
        Some(&sim.host),
        &env("DEL", "c1", ctr.path(), &path2),
        &c,
    );
    assert_eq!(del.status, 0, "{del:?}");
    assert!(ctr.link("eth0").is_none());
    assert!(veths(&sim.host).is_empty());
    let (l, t) = leases(&data.s(), "hbm");
    assert!(l.is_empty() && t.is_empty(), "{l:?} {t:?}");
}

fn start(host: &TestNs, env: &[(String, String)], conf: &Value) -> std::process::Child {
    let mut cmd = Command::new(bin("bridge"));
    cmd.env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = host.spawn(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf.to_string().as_bytes());
    child
}

#[test]
fn kill_9_during_bridge_add_or_del_strands_nothing() {
    let sim = SimHost::new("hbk");
    let ctr = TestNs::new("hbkc");
    let data = Scratch::new("kill");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbk", &data.s(), "ipam");
    let path = bin_dir().display().to_string();
    let run = |verb: &str, cid: &str| {
        call(
            &bin("bridge"),
            Some(&sim.host),
            &env(verb, cid, ctr.path(), &path),
            &c,
        )
    };
    // how long an uninterrupted ADD and DEL take here (fastest of 3)
    let mut add_span = Duration::MAX;
    let mut del_span = Duration::MAX;
    for _ in 0..3 {
        for (verb, span) in [("ADD", &mut add_span), ("DEL", &mut del_span)] {
            let t = Instant::now();
            let st = start(&sim.host, &env(verb, "t", ctr.path(), &path), &c)
                .wait()
                .unwrap();
            *span = (*span).min(t.elapsed());
            assert!(st.success(), "{verb}");
        }
    }
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("bridge kill -9 seed {seed}");
    let mut rand = |max: Duration| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_micros(seed % (max.as_micros() as u64).max(1))
    };
    let (mut killed_add, mut killed_del) = (0, 0);
    for i in 0..100 {
        let cid = format!("k{i}");
        let mut child = start(&sim.host, &env("ADD", &cid, ctr.path(), &path), &c);
        std::thread::sleep(rand(add_span));
        killed_add += usize::from(child.try_wait().unwrap().is_none());
        let _ = child.kill();
        child.wait().unwrap();
        if i % 2 == 0 {
            let mut child = start(&sim.host, &env("DEL", &cid, ctr.path(), &path), &c);
            std::thread::sleep(rand(del_span));
            killed_del += usize::from(child.try_wait().unwrap().is_none());
            let _ = child.kill();
            child.wait().unwrap();
        }
        let del = run("DEL", &cid);
        assert_eq!(
            (del.status, del.stdout.as_str()),
            (0, ""),
            "run {i}: {del:?}"
        );
        assert!(ctr.link("eth0").is_none(), "run {i}: container veth left");
        assert!(
            veths(&sim.host).is_empty(),
            "run {i}: {:?}",
            veths(&sim.host)
        );
        let (l, _) = leases(&data.s(), "hbk");
        assert!(l.is_empty(), "run {i}: stranded lease {l:?}");
        let add = run("ADD", &cid);
        assert_eq!(add.status, 0, "run {i}: ADD after the crash: {add:?}");
        assert_eq!(run("DEL", &cid).status, 0);
    }
    let (l, t) = leases(&data.s(), "hbk");
    assert!(l.is_empty(), "{l:?}");
    eprintln!(
        "bridge kill -9 (ADD {add_span:?}, DEL {del_span:?}): 100 ADD runs ({killed_add} killed \
         while running), 50 DEL runs ({killed_del} killed while running), {} temp files before \
         GC, 0 stranded veths or leases",
        t.len()
    );
    assert!(killed_add >= 25, "only {killed_add} ADDs killed mid-run");
}

#[test]
fn hundred_parallel_bridge_add_del_cycles() {
    let sim = SimHost::new("hbp");
    let data = Scratch::new("par");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbp", &data.s(), "ipam");
    let path = bin_dir().display().to_string();
    let ctrs: Vec<TestNs> = (0..100).map(|_| TestNs::new("hbpc")).collect();
    let results: Vec<(String, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = ctrs
            .iter()
            .enumerate()
            .map(|(i, ctr)| {
                let (c, path, host) = (&c, &path, &sim.host);
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    let mut timed = |verb: &str, cid: &str| {
                        let t = Instant::now();
                        let out = call(
                            &bin("bridge"),
                            Some(host),
                            &env(verb, cid, ctr.path(), path),
                            c,
                        );
                        slowest = slowest.max(t.elapsed());
                        assert_eq!(out.status, 0, "{verb} {cid}: {out:?}");
                        out
                    };
                    timed("ADD", &format!("a{i}"));
                    timed("DEL", &format!("a{i}"));
                    let add = timed("ADD", &format!("b{i}"));
                    let ip = add.json()["ips"][0]["address"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    // the address is configured in this container, on eth0
                    let shown = ctr.ip_ok(&["-o", "-4", "addr", "show", "dev", "eth0"]);
                    assert!(
                        shown.contains(&ip),
                        "{ip} not on eth0 of {}: {shown}",
                        ctr.name()
                    );
                    (ip, slowest)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ips: HashSet<&String> = results.iter().map(|(ip, _)| ip).collect();
    assert_eq!(ips.len(), 100, "duplicate addresses");
    let (l, t) = leases(&data.s(), "hbp");
    assert_eq!(l.len(), 100, "{l:?}");
    assert!(t.is_empty(), "{t:?}");
    assert_eq!(veths(&sim.host).len(), 100);
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    eprintln!("bridge: 100 parallel cycles (300 operations), slowest {slowest:?}");
    std::thread::scope(|s| {
        for (i, ctr) in ctrs.iter().enumerate() {
            let (c, path, host) = (&c, &path, &sim.host);
            s.spawn(move || {
                let out = call(
                    &bin("bridge"),
                    Some(host),
                    &env("DEL", &format!("b{i}"), ctr.path(), path),
                    c,
                );
                assert_eq!(out.status, 0, "{out:?}");
            });
        }
    });
    assert!(veths(&sim.host).is_empty());
    assert!(leases(&data.s(), "hbp").0.is_empty());
}
