//! `kill -9` at random points of eni ADD and DEL: the ENI always comes back to the host with
//! DEL.

use test_support::*;

use crate::harness::*;

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
    // kills are spread over the time an uninterrupted run takes now (KillSpan)
    let (mut add_span, mut del_span) = (KillSpan::new(), KillSpan::new());
    for _ in 0..3 {
        assert_eq!(add_span.timed(|| run("ADD")).status, 0, "timing ADD");
        assert_eq!(del_span.timed(|| run("DEL")).status, 0, "timing DEL");
    }
    let mut rng = Rng::seeded("eni kill -9");
    let (mut killed_add, mut killed_del) = (0, 0);
    for i in 0..60 {
        let mut child = start(&sim, "ADD", &netns);
        std::thread::sleep(add_span.delay(&mut rng));
        killed_add += usize::from(child.try_wait().unwrap().is_none());
        let _ = child.kill();
        child.wait().unwrap();
        if i % 2 == 0 {
            let mut child = start(&sim, "DEL", &netns);
            std::thread::sleep(del_span.delay(&mut rng));
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
        let add = add_span.timed(|| run("ADD"));
        assert_eq!(add.status, 0, "run {i}: ADD after the crash: {add:?}");
        assert_eq!(with_mac(&ctr), ["eth0"]);
        assert_eq!(del_span.timed(|| run("DEL")).status, 0);
    }
    eprintln!(
        "eni kill -9 (ADD {:?}, DEL {:?} at the end): 60 ADD runs ({killed_add} killed \
         while running), 30 DEL runs ({killed_del} killed while running), the ENI back in the \
         host after every DEL",
        add_span.span(),
        del_span.span()
    );
    assert!(killed_add >= 15, "only {killed_add} ADDs killed mid-run");
}
