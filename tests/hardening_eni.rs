//! Hardening (issue 5) of `eni`, black-box in a simulated host: `kill -9` at random points of
//! ADD and DEL (the ENI always comes back to the host with DEL), and the documented limit of
//! the metadata block (a task with CAP_NET_ADMIN can remove a blackhole route).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use suite_tests::*;

const MAC: &str = "0a:1b:2c:3d:4e:5f";

fn conf() -> Value {
    json!({"cniVersion": "1.0.0", "name": "eni-net", "type": "eni", "eniMACAddress": MAC,
           "eniIPAddresses": ["10.0.1.5/24"], "gatewayIPAddresses": ["10.0.1.1"],
           "blockInstanceMetadata": true})
}

/// The names of the links of `ns` that carry the ENI's MAC.
fn with_mac(ns: &TestNs) -> Vec<String> {
    ns.ip_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["address"].as_str() == Some(MAC))
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

fn start(sim: &SimHost, verb: &str, netns: &str) -> std::process::Child {
    let mut cmd = Command::new(bin("eni"));
    cmd.env_clear()
        .envs(cni_env(verb, "ctr-1", netns, "eth0"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = sim.host.spawn(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf().to_string().as_bytes());
    child
}

#[test]
fn kill_9_during_eni_add_or_del_always_gives_the_eni_back() {
    let sim = SimHost::new("hek");
    let _eni = sim.add_fake_eni(MAC, Some("10.0.1.1/24"), None, 1500);
    let ctr = TestNs::new("hekc");
    let netns = ctr.path().display().to_string();
    let run = |verb: &str| {
        call(
            &bin("eni"),
            Some(&sim.host),
            &cni_env(verb, "ctr-1", &netns, "eth0"),
            &conf(),
        )
    };
    let mut add_span = Duration::MAX;
    let mut del_span = Duration::MAX;
    for _ in 0..3 {
        for (verb, span) in [("ADD", &mut add_span), ("DEL", &mut del_span)] {
            let t = Instant::now();
            assert!(
                start(&sim, verb, &netns).wait().unwrap().success(),
                "{verb}"
            );
            *span = (*span).min(t.elapsed());
        }
    }
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("eni kill -9 seed {seed}");
    let mut rand = |max: Duration| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_micros(seed % (max.as_micros() as u64).max(1))
    };
    let (mut killed_add, mut killed_del) = (0, 0);
    for i in 0..60 {
        let mut child = start(&sim, "ADD", &netns);
        std::thread::sleep(rand(add_span));
        killed_add += usize::from(child.try_wait().unwrap().is_none());
        let _ = child.kill();
        child.wait().unwrap();
        if i % 2 == 0 {
            let mut child = start(&sim, "DEL", &netns);
            std::thread::sleep(rand(del_span));
            killed_del += usize::from(child.try_wait().unwrap().is_none());
            let _ = child.kill();
            child.wait().unwrap();
        }
        let del = run("DEL");
        assert_eq!(
            (del.status, del.stdout.as_str()),
            (0, ""),
            "run {i}: {del:?}"
        );
        assert!(with_mac(&ctr).is_empty(), "run {i}: ENI left in the task");
        assert_eq!(with_mac(&sim.host).len(), 1, "run {i}: ENI not back");
        let add = run("ADD");
        assert_eq!(add.status, 0, "run {i}: ADD after the crash: {add:?}");
        assert_eq!(with_mac(&ctr), ["eth0"]);
        assert_eq!(run("DEL").status, 0);
    }
    eprintln!(
        "eni kill -9 (ADD {add_span:?}, DEL {del_span:?}): 60 ADD runs ({killed_add} killed \
         while running), 30 DEL runs ({killed_del} killed while running), the ENI back in the \
         host after every DEL"
    );
    assert!(killed_add >= 15, "only {killed_add} ADDs killed mid-run");
}

#[test]
fn the_metadata_block_is_a_route_that_cap_net_admin_can_remove() {
    // Documented in docs/reliability.md: blockInstanceMetadata installs blackhole routes in
    // the task's namespace; a process there with CAP_NET_ADMIN can delete them.
    let sim = SimHost::new("hem");
    let _eni = sim.add_fake_eni(MAC, Some("10.0.1.1/24"), None, 1500);
    let ctr = TestNs::new("hemc");
    let netns = ctr.path().display().to_string();
    let env = cni_env("ADD", "ctr-1", &netns, "eth0");
    let add = call(&bin("eni"), Some(&sim.host), &env, &conf());
    assert_eq!(add.status, 0, "{add:?}");
    let blackholes = |ns: &TestNs| -> Vec<String> {
        ns.ip_json(&["-4", "route", "show", "type", "blackhole"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(blackholes(&ctr), ["169.254.169.254"]);
    // root in the task namespace (what a task with CAP_NET_ADMIN is) removes it
    ctr.ip_ok(&["route", "del", "blackhole", "169.254.169.254"]);
    assert!(blackholes(&ctr).is_empty());
    // CHECK notices; DEL still cleans up
    let mut check_env = env.clone();
    check_env[0].1 = "CHECK".into();
    let check = call(
        &bin("eni"),
        Some(&sim.host),
        &check_env,
        &with_prev_result(&conf(), &add.json()),
    );
    assert_eq!(
        check.status, 1,
        "CHECK must report the missing blackhole: {check:?}"
    );
    let mut del_env = env.clone();
    del_env[0].1 = "DEL".into();
    assert_eq!(
        call(&bin("eni"), Some(&sim.host), &del_env, &conf()).status,
        0
    );
    assert_eq!(with_mac(&sim.host).len(), 1);
}

#[test]
fn parallel_add_del_cycles_with_several_fake_enis() {
    // 8 ENIs on one simulated host, 8 task namespaces, each thread moves its own ENI in and
    // out 5 times concurrently with the others: no ENI ends up in the wrong namespace, none is
    // lost, every operation succeeds well within the bound.
    const ENIS: usize = 8;
    const CYCLES: usize = 5;
    let sim = SimHost::new("hep");
    let enis: Vec<_> = (0..ENIS)
        .map(|i| {
            let mac = format!("0a:00:00:00:10:{i:02x}");
            let eni = sim.add_fake_eni(&mac, Some(&format!("10.1.{i}.1/24")), None, 1500);
            (mac, eni)
        })
        .collect();
    let ctrs: Vec<TestNs> = (0..ENIS).map(|_| TestNs::new("hepc")).collect();
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for (i, ((mac, _), ctr)) in enis.iter().zip(&ctrs).enumerate() {
            let (sim, slowest) = (&sim, &slowest);
            s.spawn(move || {
                let netns = ctr.path().display().to_string();
                let conf = json!({"cniVersion": "1.0.0", "name": "eni-net", "type": "eni",
                    "eniMACAddress": mac, "eniIPAddresses": [format!("10.1.{i}.5/24")],
                    "gatewayIPAddresses": [format!("10.1.{i}.1")]});
                for cycle in 0..CYCLES {
                    for verb in ["ADD", "DEL"] {
                        let t = Instant::now();
                        let out = call(
                            &bin("eni"),
                            Some(&sim.host),
                            &cni_env(verb, &format!("c{i}"), &netns, "eth0"),
                            &conf,
                        );
                        let took = t.elapsed();
                        assert_eq!(out.status, 0, "ENI {i} cycle {cycle} {verb}: {out:?}");
                        let mut m = slowest.lock().unwrap();
                        *m = (*m).max(took);
                        if verb == "ADD" {
                            let link = ctr.link("eth0").expect("eth0 after ADD");
                            assert_eq!(
                                link["address"].as_str(),
                                Some(mac.as_str()),
                                "ENI {i}: wrong ENI in its task"
                            );
                        } else {
                            assert!(ctr.link("eth0").is_none(), "ENI {i}: eth0 left after DEL");
                        }
                    }
                }
            });
        }
    });
    for (mac, eni) in &enis {
        let link = sim
            .host
            .link(&eni.name)
            .unwrap_or_else(|| panic!("ENI {mac} lost"));
        assert_eq!(link["address"].as_str(), Some(mac.as_str()));
    }
    for ctr in &ctrs {
        let links = ctr.ip_json(&["link", "show"]);
        assert_eq!(links.as_array().unwrap().len(), 1, "only lo left: {links}");
    }
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < Duration::from_secs(10),
        "slowest operation {slowest:?}"
    );
    eprintln!(
        "{} operations on {ENIS} ENIs, slowest {slowest:?}",
        ENIS * CYCLES * 2
    );
}
