//! 100 bridge ADD/DEL cycles in parallel on one bridge: distinct addresses, each on its own
//! container's eth0, nothing left after DEL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use test_support::*;

use crate::harness::*;

#[test]
fn hundred_parallel_bridge_add_del_cycles() {
    let sim = SimHost::new("hbp");
    let data = TempDir::new("par");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbp", &data.display(), "ipam");
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
    let (l, t) = leases(&data.display(), "hbp");
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
    assert!(leases(&data.display(), "hbp").0.is_empty());
}
