//! `kill -9` during bridge ADD and DEL: DEL afterwards succeeds, and no veth, address lease or
//! temp file is left behind.
//!
//! 100 runs kill at a random delay within the time an uninterrupted run takes (whatever point
//! that is on this machine at that moment); 50 more kill at a point reached for certain: the
//! test holds the IPAM store's lock, and kills the plugin once it has the lock file open,
//! i.e. in the middle of its work (ADD: after the veth pair, before the lease; DEL: after the
//! veth, before the release). So the kills that land mid-operation do not depend on timing.

use std::time::Duration;

use test_support::ipam::HeldLock;
use test_support::*;

use crate::harness::*;

#[test]
fn kill_9_during_bridge_add_or_del_strands_nothing() {
    let sim = SimHost::new("hbk");
    let ctr = TestNs::new("hbkc");
    let data = TempDir::new("kill");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbk", &data.display(), "ipam");
    let path = bin_dir().display().to_string();
    let run = |verb: &str, cid: &str| {
        call(
            &bin("bridge"),
            Some(&sim.host),
            &env(verb, cid, ctr.path(), &path),
            &c,
        )
    };
    // kills are spread over the time an uninterrupted ADD or DEL takes now (KillSpan)
    let (mut add_span, mut del_span) = (KillSpan::new(), KillSpan::new());
    for _ in 0..3 {
        assert_eq!(add_span.timed(|| run("ADD", "t")).status, 0, "timing ADD");
        assert_eq!(del_span.timed(|| run("DEL", "t")).status, 0, "timing DEL");
    }
    let mut rng = Rng::seeded("bridge kill -9");
    let net = data.path().join("hbk");
    let lock_file = net.join("lock");
    // the pinned runs: the plugin waits for the lock (held by us) far longer than we need
    let mut c_wait = c.clone();
    c_wait["ipam"]["lockTimeoutMs"] = serde_json::json!(600_000);
    // Kills the plugin started for `verb`: after `delay` (random runs; reports whether it was
    // still running) or, `pinned`, once it waits for the store lock (always mid-operation).
    let kill = |verb: &str, cid: &str, delay: Duration, pinned: bool| -> bool {
        let held = pinned.then(|| HeldLock::take(&net));
        let conf = if pinned { &c_wait } else { &c };
        let mut child = start(&sim.host, &env(verb, cid, ctr.path(), &path), conf);
        if pinned {
            wait_until_open(&mut child, &lock_file, &format!("{verb} {cid}"));
        } else {
            std::thread::sleep(delay);
        }
        let running = child.try_wait().unwrap().is_none();
        assert!(
            running || !pinned,
            "{verb} {cid}: exited while waiting for our lock"
        );
        let _ = child.kill();
        child.wait().unwrap();
        drop(held);
        running
    };
    let (mut killed_add, mut killed_del) = (0, 0);
    let (mut pinned_add, mut pinned_del) = (0, 0);
    for i in 0..150 {
        let cid = format!("k{i}");
        let pinned = i >= 100;
        killed_add += usize::from(kill("ADD", &cid, add_span.delay(&mut rng), pinned));
        pinned_add += usize::from(pinned);
        if i % 2 == 0 {
            killed_del += usize::from(kill("DEL", &cid, del_span.delay(&mut rng), pinned));
            pinned_del += usize::from(pinned);
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
        let (l, _) = leases(&data.display(), "hbk");
        assert!(l.is_empty(), "run {i}: stranded lease {l:?}");
        let add = add_span.timed(|| run("ADD", &cid));
        assert_eq!(add.status, 0, "run {i}: ADD after the crash: {add:?}");
        assert_eq!(del_span.timed(|| run("DEL", &cid)).status, 0);
    }
    let (l, t) = leases(&data.display(), "hbk");
    assert!(l.is_empty(), "{l:?}");
    eprintln!(
        "bridge kill -9 (ADD {:?}, DEL {:?} at the end): 150 ADD runs ({killed_add} killed \
         while running, {pinned_add} of them waiting for the store lock), 75 DEL runs \
         ({killed_del} killed while running, {pinned_del} waiting for the lock), {} temp files \
         before GC, 0 stranded veths or leases",
        add_span.span(),
        del_span.span(),
        t.len()
    );
    assert!(killed_add >= 25, "only {killed_add} ADDs killed mid-run");
}
