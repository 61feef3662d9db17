//! `kill -9` during bridge ADD and DEL: DEL afterwards succeeds, and no veth, address lease or
//! temp file is left behind.

use std::time::{Duration, Instant};

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
    let mut rng = Rng::seeded("bridge kill -9");
    let mut rand = |max: Duration| rng.duration_below(max);
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
        let (l, _) = leases(&data.display(), "hbk");
        assert!(l.is_empty(), "run {i}: stranded lease {l:?}");
        let add = run("ADD", &cid);
        assert_eq!(add.status, 0, "run {i}: ADD after the crash: {add:?}");
        assert_eq!(run("DEL", &cid).status, 0);
    }
    let (l, t) = leases(&data.display(), "hbk");
    assert!(l.is_empty(), "{l:?}");
    eprintln!(
        "bridge kill -9 (ADD {add_span:?}, DEL {del_span:?}): 100 ADD runs ({killed_add} killed \
         while running), 50 DEL runs ({killed_del} killed while running), {} temp files before \
         GC, 0 stranded veths or leases",
        t.len()
    );
    assert!(killed_add >= 25, "only {killed_add} ADDs killed mid-run");
}
