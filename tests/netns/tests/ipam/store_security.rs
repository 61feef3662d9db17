//! The store against hostile names and files: names that try to escape the data directory,
//! planted symlinks, and the permissions of what `ipam` writes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::json;
use test_support::ipam::*;
use test_support::*;

#[test]
fn names_that_try_to_escape_the_store_are_refused() {
    let ns = TestNs::new("hde");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("esc");
    let before = fs::read_dir(data.path()).unwrap().count();
    // network names: validated by the dispatcher before any file is touched
    for name in ["..", ".", "../x", "a/b", "/abs", "a\u{0}b", "", "-x", "x y"] {
        let conf = host_local("1.0.0", name, &data.display(), json!({}));
        let out = ipam("ADD", "ctr", &netns, &conf);
        assert_cni_error(&out, 7, "name", &format!("network name {name:?}"));
    }
    // container IDs and interface names: validated from the environment
    for cid in ["..", "../../etc", "a/b", "/x", ".hidden", "-x", "a b"] {
        let conf = host_local("1.0.0", "esc", &data.display(), json!({}));
        let out = ipam("ADD", cid, &netns, &conf);
        assert_cni_error(&out, 4, "CNI_CONTAINERID", &format!("container id {cid:?}"));
        let out = ipam("DEL", cid, &netns, &conf);
        assert_cni_error(
            &out,
            4,
            "CNI_CONTAINERID",
            &format!("DEL container id {cid:?}"),
        );
    }
    for ifname in [
        "..",
        ".",
        "../x",
        "a/b",
        "eth0:1",
        "x y",
        "1234567890123456",
    ] {
        let conf = host_local("1.0.0", "esc", &data.display(), json!({}));
        let out = call(
            &bin("ipam"),
            None,
            &cni_env("ADD", "ctr", &netns, ifname),
            &conf,
        );
        assert_cni_error(&out, 4, "CNI_IFNAME", &format!("ifname {ifname:?}"));
    }
    // dataDir: absolute, without `..`
    for dir in ["relative", "../x", "/tmp/../etc", "/a/./../b"] {
        let conf = host_local("1.0.0", "esc", dir, json!({}));
        let out = ipam("ADD", "ctr", &netns, &conf);
        assert_cni_error(&out, 7, "dataDir", &format!("dataDir {dir:?}"));
    }
    // ecs-ipam's `id` is an owner key written into the store file, never a path: any
    // printable id works; control characters are refused
    let db = data.path().join("eni-ipam.db");
    let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
    env.push(("IPAM_DB_PATH".into(), db.display().to_string()));
    for (id, ok) in [
        ("../../../../etc/passwd", true),
        ("/x/y", true),
        ("a\nb", false),
        ("a\r\nb", false),
        ("a\u{0}b", false),
    ] {
        let conf = json!({"cniVersion": "1.0.0", "name": "ecs", "type": "ecs-ipam",
            "ipam": {"type": "ecs-ipam", "id": id, "ipv4-subnet": "169.254.172.0/22"}});
        let out = call(&bin("ipam"), None, &env, &conf);
        let held = || ecs_leases(&db).values().filter(|v| *v == id).count();
        if ok {
            assert_ok(&out, id);
            assert_eq!(held(), 1, "{id}");
            let mut del = env.clone();
            del[0].1 = "DEL".into();
            assert_ok(&call(&bin("ipam"), None, &del, &conf), id);
            assert_eq!(held(), 0, "{id}");
        } else {
            assert_cni_error(&out, 7, "owner id", &format!("id {id:?}"));
        }
    }
    // nothing was created outside the data directory's own networks and the store file
    let names: Vec<String> = fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(before, 0);
    assert!(
        names.iter().all(|n| n == "esc" || n == "eni-ipam.db"),
        "{names:?}"
    );
}

#[test]
fn symlinks_planted_in_the_store_are_never_followed() {
    let ns = TestNs::new("hds");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("sym");
    let outside = data.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let sentinel = outside.join("sentinel");
    fs::write(&sentinel, "untouched").unwrap();
    let conf = |name: &str| host_local("1.0.0", name, &data.display(), json!({}));

    // the network directory itself is a symlink: refused, the target stays empty of ours
    std::os::unix::fs::symlink(&outside, data.path().join("linked")).unwrap();
    let out = ipam("ADD", "ctr", &netns, &conf("linked"));
    assert_cni_error(&out, 100, "symbolic link", "network directory symlink");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

    // `lock` and `.owners` as symlinks: refused with a clear error
    for (name, entry) in [("slock", "lock"), ("sowners", ".owners")] {
        let net = data.path().join(name);
        fs::create_dir(&net).unwrap();
        std::os::unix::fs::symlink(&sentinel, net.join(entry)).unwrap();
        let out = ipam("ADD", "ctr", &netns, &conf(name));
        assert_cni_error(&out, 100, entry, &format!("{entry} symlink"));
        let del = ipam("DEL", "ctr", &netns, &conf(name));
        assert_eq!(del.status, 1, "{del:?}");
        fs::remove_file(net.join(entry)).unwrap();
        assert_ok(&ipam("ADD", "ctr", &netns, &conf(name)), entry);
        assert_ok(&ipam("DEL", "ctr", &netns, &conf(name)), entry);
    }

    // a lease name and the round-robin hint as symlinks: not followed, not written through;
    // the hint is replaced by a file of our own
    let net = data.path().join("sleases");
    fs::create_dir_all(net.join(".owners")).unwrap();
    for entry in ["10.91.0.2", "last_reserved_ip.0"] {
        std::os::unix::fs::symlink(&sentinel, net.join(entry)).unwrap();
    }
    let add = ipam("ADD", "ctr", &netns, &conf("sleases"));
    assert_ok(&add, "ADD past symlinks");
    assert_eq!(add.json()["ips"][0]["address"], json!("10.91.0.3/24"));
    assert!(
        !fs::symlink_metadata(net.join("last_reserved_ip.0"))
            .unwrap()
            .is_symlink()
    );
    assert_ok(&ipam("DEL", "ctr", &netns, &conf("sleases")), "DEL");
    assert!(
        fs::symlink_metadata(net.join("10.91.0.2"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn store_files_are_0600_in_0700_directories() {
    let ns = TestNs::new("hdm");
    let netns = ns.path().display().to_string();
    let scratch = TempDir::new("mode");
    let data = scratch.path().join("not/yet/there");
    let conf = host_local("1.0.0", "modes", data.to_str().unwrap(), json!({}));
    assert_ok(&ipam("ADD", "ctr", &netns, &conf), "ADD");
    let net = data.join("modes");
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    for d in [data.clone(), net.clone(), net.join(".owners")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut files = 0;
    for dir in [net.clone(), net.join(".owners")] {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                files += 1;
                assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            }
        }
    }
    assert!(
        files >= 5,
        "lease, lock, last_reserved_ip.0, bucket, marker: {files}"
    );
    // an existing data directory keeps the mode its owner chose
    let shared = scratch.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    let conf2 = host_local("1.0.0", "modes", shared.to_str().unwrap(), json!({}));
    assert_ok(&ipam("ADD", "ctr", &netns, &conf2), "ADD");
    assert_eq!(mode(&shared), 0o755);
    assert_eq!(mode(&shared.join("modes")), 0o700);
    for c in [&conf, &conf2] {
        assert_ok(&ipam("DEL", "ctr", &netns, c), "DEL");
    }
}
