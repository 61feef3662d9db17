//! Parallel ADD/DEL cycles with several fake ENIs on one simulated host: no ENI in the wrong
//! namespace, none lost.

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::*;

#[test]
fn parallel_add_del_cycles_with_several_fake_enis() {
    // 8 ENIs on one simulated host, 8 task namespaces, each thread moves its own ENI in and
    // out 5 times concurrently with the others: no ENI ends up in the wrong namespace, none is
    // lost, every operation succeeds, none is starved (see assert_no_operation_starved).
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
    // one uncontended operation, now: ENI 0 in and out of its task 3 times (median of 6)
    let solo = json!({"cniVersion": "1.0.0", "name": "eni-net", "type": "eni",
        "eniMACAddress": enis[0].0, "eniIPAddresses": ["10.1.0.5/24"],
        "gatewayIPAddresses": ["10.1.0.1"]});
    let netns0 = ctrs[0].path().display().to_string();
    let single = median(
        (0..3)
            .flat_map(|_| {
                ["ADD", "DEL"].map(|verb| {
                    let t = Instant::now();
                    let out = call(
                        &bin("eni"),
                        Some(&sim.host),
                        &cni_env(verb, "c0", &netns0, "eth0"),
                        &solo,
                    );
                    assert_eq!(out.status, 0, "uncontended {verb}: {out:?}");
                    t.elapsed()
                })
            })
            .collect(),
    );
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
    assert_no_operation_starved(
        slowest,
        single,
        (ENIS * CYCLES * 2) as u32,
        Duration::from_secs(10),
        "parallel ENI cycles",
    );
    eprintln!(
        "{} operations on {ENIS} ENIs, slowest {slowest:?}, one uncontended {single:?}",
        ENIS * CYCLES * 2
    );
}
