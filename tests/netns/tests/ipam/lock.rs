//! The store lock of `ipam`: a lock held by another process is answered with "try again"
//! (code 11) within the configured bound; out-of-range bounds are config errors.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::ipam::*;
use test_support::*;

#[test]
fn ipam_lock_held_by_another_process_answers_try_again_within_the_bound() {
    let ns = TestNs::new("hdl");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("lock");
    let net = data.path().join("locked");
    let quick = host_local(
        "1.0.0",
        "locked",
        &data.display(),
        json!({"lockTimeoutMs": 300}),
    );
    let default_bound = host_local("1.0.0", "locked", &data.display(), json!({}));
    assert_ok(&ipam("ADD", "before", &netns, &quick), "first ADD");
    // another process takes the lock and keeps it
    // -o: flock keeps the lock itself, its `sleep` child does not inherit it
    let mut holder = Command::new("flock")
        .args(["-x", "-o"])
        .arg(net.join("lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while lock_is_free(&net) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for (verb, conf, bound) in [
        ("ADD", &quick, Duration::from_millis(300)),
        ("DEL", &quick, Duration::from_millis(300)),
        ("ADD", &default_bound, Duration::from_secs(5)),
    ] {
        let t = Instant::now();
        let out = ipam(verb, "during", &netns, conf);
        let took = t.elapsed();
        assert_cni_error(&out, 11, "timed out", verb);
        assert!(
            took >= bound && took < bound + Duration::from_secs(2),
            "{verb}: answered after {took:?} with a bound of {bound:?}"
        );
    }
    // the ecs dialect takes its bound from IPAM_DB_CONNECTION_TIMEOUT, as Go ecs-ipam does
    let ecs = json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22"}});
    // (bolt's lock: flock on the store file itself)
    let ecs_lock = data.path().join("eni-ipam.db");
    fs::write(&ecs_lock, "").unwrap();
    let mut ecs_holder = Command::new("flock")
        .args(["-x", "-o"])
        .arg(&ecs_lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
    env.push(("IPAM_DB_PATH".into(), ecs_lock.display().to_string()));
    env.push(("IPAM_DB_CONNECTION_TIMEOUT".into(), "400ms".into()));
    let t = Instant::now();
    let out = call(&bin("ipam"), None, &env, &ecs);
    assert_cni_error(&out, 11, "timed out", "ecs ADD");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(
        fs::metadata(&ecs_lock).unwrap().len(),
        0,
        "written while locked"
    );
    for h in [&mut holder, &mut ecs_holder] {
        h.kill().unwrap();
        h.wait().unwrap();
    }
    // once the holder is gone everything works and nothing is left behind
    assert_ok(&ipam("ADD", "during", &netns, &quick), "ADD after");
    for cid in ["during", "before"] {
        assert_ok(&ipam("DEL", cid, &netns, &quick), "DEL after");
    }
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
    assert!(lock_is_free(&net));
}

#[test]
fn lock_bounds_out_of_range_are_config_errors_not_panics() {
    // Regression (found in review): a duration past Duration's range panicked the plugin.
    let ns = TestNs::new("hdb");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("bound");
    let ecs = json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22"}});
    for bad in [
        "99999999999999999999s",
        "1000000000000000000m",
        "-5s",
        "5",
        "soon",
    ] {
        let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
        env.push(("IPAM_DB_PATH".into(), data.display()));
        env.push(("IPAM_DB_CONNECTION_TIMEOUT".into(), bad.into()));
        let out = call(&bin("ipam"), None, &env, &ecs);
        assert_cni_error(&out, 7, "IPAM_DB_CONNECTION_TIMEOUT", bad);
    }
    // the largest lockTimeoutMs is a valid (if patient) bound
    let conf = host_local(
        "1.0.0",
        "bound",
        &data.display(),
        json!({"lockTimeoutMs": u64::MAX}),
    );
    assert_ok(&ipam("ADD", "c", &netns, &conf), "lockTimeoutMs u64::MAX");
    assert_ok(&ipam("DEL", "c", &netns, &conf), "DEL");
    let conf = host_local(
        "1.0.0",
        "bound",
        &data.display(),
        json!({"lockTimeoutMs": -1}),
    );
    assert_cni_error(
        &ipam("ADD", "c", &netns, &conf),
        7,
        "lockTimeoutMs",
        "negative",
    );
}
