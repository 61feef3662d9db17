//! 100 `ipam` processes in parallel on one store: no address handed out twice, none lost.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::ipam::*;
use test_support::*;

#[test]
fn hundred_parallel_add_del_cycles_never_duplicate_or_lose_a_lease() {
    let ns = TestNs::new("hdp");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("par");
    let net = data.path().join("par");
    let solo = host_local("1.0.0", "par", &data.display(), json!({}));
    // one uncontended operation on this store, now (median of 10 ADDs and DELs)
    let single = median(
        (0..5)
            .flat_map(|k| {
                ["ADD", "DEL"].map(|verb| {
                    let t = Instant::now();
                    assert_ok(&ipam(verb, &format!("solo{k}"), &netns, &solo), verb);
                    t.elapsed()
                })
            })
            .collect(),
    );
    // What an operation may wait: under 100 processes on 2 CPUs an operation costs about twice
    // an uncontended one (`contended`), so the whole run one operation at a time takes up to
    // 500 x `contended`; the starvation check below allows twice that (or 5 s, the default lock
    // bound). The plugins' lock bound is twice that again, so that an operation that waits too
    // long fails that check, which says how long it waited, and never answers "try again" first
    // (at the default 5 s it did, on a loaded machine, with the run well within its time).
    let (contended, floor) = (single * 2, Duration::from_secs(5));
    let bound = starvation_limit(contended, 500, floor) * 2;
    let bound_ms = u64::try_from(bound.as_millis()).unwrap();
    let conf = host_local(
        "1.0.0",
        "par",
        &data.display(),
        json!({ "lockTimeoutMs": bound_ms }),
    );
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (conf, netns, net) = (conf.clone(), netns.clone(), net.clone());
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut timed = |verb: &str, cid: &str| {
                    let t = Instant::now();
                    let out = ipam(verb, cid, &netns, &conf);
                    slowest = slowest.max(t.elapsed());
                    assert_ok(&out, &format!("{verb} {cid}"));
                    out
                };
                let first = format!("a{i}");
                let add = timed("ADD", &first);
                let ip = add.json()["ips"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let ip = ip.split('/').next().unwrap().to_string();
                // the lease is ours on disk, and a repeated ADD returns it
                assert_eq!(
                    fs::read_to_string(net.join(&ip)).unwrap(),
                    format!("{first}\r\neth0")
                );
                let again = timed("ADD", &first);
                assert_eq!(again.json()["ips"], add.json()["ips"]);
                timed("DEL", &first);
                let second = format!("b{i}");
                let add = timed("ADD", &second);
                let kept = add.json()["ips"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (kept, slowest)
            })
        })
        .collect();
    let mut kept = Vec::new();
    let mut slowest = Duration::ZERO;
    for h in handles {
        let (ip, s) = h.join().unwrap();
        kept.push(ip);
        slowest = slowest.max(s);
    }
    let unique: HashSet<&String> = kept.iter().collect();
    assert_eq!(unique.len(), 100, "duplicate addresses: {kept:?}");
    let l = listing(&net);
    assert_eq!(l.leases.len(), 100, "one lease per live container: {l:?}");
    for (i, ip) in kept.iter().enumerate() {
        let ip = ip.split('/').next().unwrap();
        assert_eq!(l.leases[ip], format!("b{i}\r\neth0"), "lease of b{i}");
    }
    assert!(l.temps.is_empty(), "{l:?}");
    // every operation succeeded (none waited past the lock bound: that is "try again"), and
    // none was starved: slower than twice the whole test run one contended operation at a time
    assert_no_operation_starved(slowest, contended, 500, floor, "100 parallel cycles");
    eprintln!(
        "100 parallel cycles (500 operations): slowest operation {slowest:?}, one uncontended \
         operation {single:?}"
    );
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (conf, netns) = (conf.clone(), netns.clone());
            std::thread::spawn(move || ipam("DEL", &format!("b{i}"), &netns, &conf))
        })
        .collect();
    for h in handles {
        assert_ok(&h.join().unwrap(), "parallel DEL");
    }
    assert!(listing(&net).leases.is_empty());
}
