//! A failing bridge ADD rolls back: with its IPAM plugin missing from CNI_PATH, nothing is left
//! behind (no veth, no lease) and a later ADD succeeds.

use serde_json::json;
use test_support::*;

use crate::harness::*;

#[test]
fn ipam_plugin_missing_from_cni_path() {
    let sim = SimHost::new("hbm");
    let ctr = TestNs::new("hbmc");
    let data = TempDir::new("missing");
    let bridge = format!("br{}", netns_fixtures::unique_suffix());
    let c = conf(&bridge, "hbm", &data.display(), "missing-ipam");
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
    let extra = TempDir::new("path");
    std::os::unix::fs::symlink(bin("ipam"), extra.0.join("missing-ipam")).unwrap();
    let path2 = format!("{}:{path}", extra.display());
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
    let (l, t) = leases(&data.display(), "hbm");
    assert!(l.is_empty() && t.is_empty(), "{l:?} {t:?}");
}
