//! `kill -9` at random points of `ipam` ADD and DEL: no stranded lease, no held lock, no lost
//! lease of another owner; GC removes what a crash left.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::ipam::*;
use test_support::*;

/// Starts `ipam` with `verb` for `cid` and its config on stdin.
fn start(verb: &str, cid: &str, netns: &str, conf: &Value) -> std::process::Child {
    let mut child = Command::new(bin("ipam"))
        .env_clear()
        .envs(cni_env(verb, cid, netns, "eth0"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf.to_string().as_bytes());
    child
}

/// Starts `ipam` with `verb` for `cid`, kills it with SIGKILL after `delay`, and reports
/// whether it was still running at that moment.
fn kill_during(verb: &str, cid: &str, netns: &str, conf: &Value, delay: Duration) -> bool {
    let mut child = start(verb, cid, netns, conf);
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    // SAFETY: SIGKILL to our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    running && std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL)
}

#[test]
fn kill_9_during_add_or_del_strands_nothing() {
    let ns = TestNs::new("hdk");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("crash");
    let net = data.path().join("crash");
    // a dual-stack config: two leases, two index lines, two last_reserved files per ADD
    let mut conf = host_local("1.0.0", "crash", &data.display(), json!({}));
    conf["ipam"]["ranges"] = json!([[{"subnet": "10.91.0.0/24"}], [{"subnet": "fd91::/120"}]]);
    assert_ok(&ipam("ADD", "survivor", &netns, &conf), "survivor ADD");
    let survivor = leases_of(&net, "survivor");
    assert_eq!(survivor.len(), 2);
    // kills are spread uniformly over the time an uninterrupted run takes now (KillSpan: the
    // median of the recent uninterrupted runs, five of each verb to start with)
    let (mut add_span, mut del_span) = (KillSpan::new(), KillSpan::new());
    for i in 0..5 {
        let cid = format!("timing{i}");
        assert_ok(
            &add_span.timed(|| ipam("ADD", &cid, &netns, &conf)),
            "timing ADD",
        );
        assert_ok(
            &del_span.timed(|| ipam("DEL", &cid, &netns, &conf)),
            "timing DEL",
        );
    }
    let mut rng = Rng::seeded("kill_9_during_add_or_del_strands_nothing");
    let (mut killed_add, mut killed_del) = (0, 0);
    let mut leftover_temps: HashSet<String> = HashSet::new();
    for run in 0..200 {
        let cid = format!("k{run}");
        let delay = add_span.delay(&mut rng);
        killed_add += usize::from(kill_during("ADD", &cid, &netns, &conf, delay));
        assert!(
            lock_is_free(&net),
            "run {run}: lock still held after kill -9"
        );
        leftover_temps.extend(listing(&net).temps);
        if run % 2 == 0 {
            // also kill the DEL that cleans up, at a random point, before the real one
            let add = add_span.timed(|| ipam("ADD", &cid, &netns, &conf));
            assert_ok(&add, "ADD after the kill");
            let delay = del_span.delay(&mut rng);
            killed_del += usize::from(kill_during("DEL", &cid, &netns, &conf, delay));
        }
        let del = del_span.timed(|| ipam("DEL", &cid, &netns, &conf));
        assert_ok(&del, &format!("run {run}: DEL after kill -9"));
        assert!(
            leases_of(&net, &cid).is_empty(),
            "run {run}: stranded lease"
        );
        // the next ADD succeeds and gets a fresh pair of addresses
        let next = add_span.timed(|| ipam("ADD", &format!("n{run}"), &netns, &conf));
        assert_ok(&next, &format!("run {run}: ADD after the crash"));
        assert_eq!(next.json()["ips"].as_array().unwrap().len(), 2);
        let del = del_span.timed(|| ipam("DEL", &format!("n{run}"), &netns, &conf));
        assert_ok(&del, "DEL");
        assert_eq!(
            leases_of(&net, "survivor"),
            survivor,
            "run {run}: lost lease"
        );
    }
    // GC (survivor valid) removes every crash leftover; the survivor stays
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "survivor", "ifname": "eth0"}]);
    assert_ok(&ipam("GC", "", "", &gc), "GC");
    let l = listing(&net);
    assert_eq!(l.leases.len(), 2, "{l:?}");
    assert!(l.temps.is_empty(), "{l:?}");
    assert_ok(&ipam("DEL", "survivor", &netns, &conf), "survivor DEL");
    assert!(listing(&net).leases.is_empty());
    eprintln!(
        "kill -9 (ADD runs {:?}, DEL {:?} at the end): 200 ADD runs ({killed_add} killed while running), 100 DEL runs \
         ({killed_del} killed while running), {} distinct temp files seen before GC, \
         0 stranded leases, 0 held locks, 0 lost leases",
        add_span.span(),
        del_span.span(),
        leftover_temps.len()
    );
    assert!(
        killed_add >= 50,
        "only {killed_add} of 200 ADDs were killed mid-run: the delays miss the operation"
    );
}
