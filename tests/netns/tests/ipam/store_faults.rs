//! A damaged host-local store: corrupt, empty and foreign files, FIFOs, a read-only and a full
//! file system. Every case ends in a clean success or a clear CNI error, and leaves nothing
//! behind once DEL has run.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use test_support::ipam::*;
use test_support::*;

#[test]
fn corrupt_empty_and_foreign_files_in_the_store() {
    let ns = TestNs::new("hdf");
    let netns = ns.path().display().to_string();
    let data = TempDir::new("corrupt");
    let net = data.path().join("corrupt");
    let sentinel = data.path().join("sentinel");
    fs::write(&sentinel, "untouched").unwrap();
    fs::create_dir_all(net.join(".owners")).unwrap();
    fs::write(net.join("10.91.0.2"), "").unwrap(); // empty lease file
    fs::write(net.join("10.91.0.3"), b"\xff\xfe\x00garbage").unwrap(); // not UTF-8
    fs::write(net.join("10.91.0.4"), "x".repeat(100_000)).unwrap(); // oversized
    fs::create_dir(net.join("10.91.0.5")).unwrap(); // a directory
    std::os::unix::fs::symlink(&sentinel, net.join("10.91.0.6")).unwrap(); // a symlink out
    fs::write(net.join("notes.txt"), "left by an admin").unwrap(); // foreign names
    fs::write(net.join("010.91.0.7"), "ctr\r\neth0").unwrap();
    fs::write(net.join("last_reserved_ip.0"), "not an address\n\n").unwrap();
    fs::write(net.join(".owners/.complete"), "some other format").unwrap();
    fs::write(
        net.join(".owners/b00"),
        "+ garbage\n- 10.91.0.9\n\u{0}\u{1}",
    )
    .unwrap();
    fs::write(net.join(".tmp-1-1"), "c\r\neth0").unwrap(); // a crash leftover
    let conf = host_local("1.1.0", "corrupt", &data.display(), json!({}));

    let add = ipam("ADD", "ctr", &netns, &conf);
    assert_ok(&add, "ADD over a corrupt store");
    // every planted lease name counts as taken, whatever its content or type
    assert_eq!(add.json()["ips"][0]["address"], json!("10.91.0.7/24"));
    let check = ipam(
        "CHECK",
        "ctr",
        &netns,
        &with_prev_result(&conf, &add.json()),
    );
    assert_ok(&check, "CHECK");
    let status = ipam("STATUS", "", "", &conf);
    assert_ok(&status, "STATUS");
    for round in 0..2 {
        assert_ok(&ipam("DEL", "ctr", &netns, &conf), &format!("DEL #{round}"));
    }
    assert!(leases_of(&net, "ctr").is_empty());
    // the index was rebuilt (the leftover temp file went with it)
    assert_eq!(
        fs::read_to_string(net.join(".owners/.complete")).unwrap(),
        "ipam-store owner index v3, 256 buckets\n"
    );
    assert!(listing(&net).temps.is_empty());
    // GC releases what belongs to nobody and names, without touching, what it cannot read
    let gc = ipam("GC", "", "", &conf);
    assert_cni_error(&gc, 100, "GC of network corrupt finished with errors", "GC");
    let msg = gc.json()["msg"].as_str().unwrap().to_string();
    for needle in [
        "10.91.0.3",
        "10.91.0.4",
        "10.91.0.5",
        "10.91.0.6",
        "notes.txt",
    ] {
        assert!(msg.contains(needle), "GC message lacks {needle}: {msg}");
    }
    let l = listing(&net);
    assert!(
        !l.leases.contains_key("10.91.0.2"),
        "empty lease kept: {l:?}"
    );
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert!(
        fs::symlink_metadata(net.join("10.91.0.6"))
            .unwrap()
            .is_symlink()
    );
    assert!(lock_is_free(&net));
}

#[test]
fn fifos_in_the_store_never_block_the_plugin() {
    // Regression of a fuzz finding (fuzz/regressions/ipam_store/fifo-lock): a FIFO named
    // `lock` made every ADD and DEL block forever in open(2).
    let ns = TestNs::new("hdq");
    let netns = ns.path().display().to_string();
    let bucket = format!(".owners/{}", ipam_store::__fuzz::bucket_name("ctr"));
    for (name, add_fails) in [
        ("lock", true),
        ("last_reserved_ip.0", true),
        (bucket.as_str(), true),
        ("10.91.0.2", false),
    ] {
        let data = TempDir::new("fifo");
        let net = data.path().join("fifo");
        let conf = host_local(
            "1.0.0",
            "fifo",
            &data.display(),
            json!({"lockTimeoutMs": 500}),
        );
        fs::create_dir_all(net.join(".owners")).unwrap();
        // a complete index, so that the bucket is used as it is rather than rebuilt
        fs::write(
            net.join(".owners/.complete"),
            "ipam-store owner index v3, 256 buckets\n",
        )
        .unwrap();
        let fifo = net.join(name);
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // ... whose names log vouches for the directory as it is now (stamp = its mtime)
        let m = fs::metadata(&net).unwrap();
        fs::write(
            net.join(".owners/names"),
            format!("= {} {} 0 0\n", m.mtime(), m.mtime_nsec()),
        )
        .unwrap();
        let env = cni_env("ADD", "ctr", &netns, "eth0");
        let out = netns_fixtures::run_plugin_with_timeout(
            &bin("ipam"),
            None,
            &as_env(&env),
            conf.to_string().as_bytes(),
            Duration::from_secs(10),
        );
        if add_fails {
            assert_cni_error(&out, 100, name, &format!("ADD with a FIFO as {name}"));
            assert!(leases_of(&net, "ctr").is_empty(), "{name}");
        } else {
            assert_ok(&out, name);
            assert_ne!(out.json()["ips"][0]["address"], json!("10.91.0.2/24"));
        }
        // DEL answers too; once the FIFO is gone it succeeds and leaves nothing
        let del = ipam("DEL", "ctr", &netns, &conf);
        assert!(
            !del.timed_out && (del.status == 0 || name == "lock"),
            "{del:?}"
        );
        fs::remove_file(&fifo).unwrap();
        assert_ok(&ipam("DEL", "ctr", &netns, &conf), name);
        let l = listing(&net);
        assert!(
            leases_of(&net, "ctr").is_empty() && l.temps.is_empty(),
            "{name}: {l:?}"
        );
    }
}

#[test]
fn read_only_store_gives_a_clear_error_and_recovers() {
    let ns = TestNs::new("hdr");
    let netns = ns.path().display().to_string();
    let scratch = TempDir::new("ro");
    let mnt = Tmpfs::mount(&scratch.path().join("mnt"), "1m");
    let data = scratch.path().join("mnt/data");
    let conf = host_local("1.0.0", "ro", data.to_str().unwrap(), json!({}));
    let net = data.join("ro");
    assert_ok(&ipam("ADD", "held", &netns, &conf), "ADD before");
    mnt.remount(true);
    let add = ipam("ADD", "new", &netns, &conf);
    assert_cni_error(
        &add,
        100,
        "Read-only file system",
        "ADD on a read-only store",
    );
    let del = ipam("DEL", "held", &netns, &conf);
    assert_cni_error(
        &del,
        100,
        "Read-only file system",
        "DEL on a read-only store",
    );
    // a store that does not exist yet cannot be created there either
    let other = host_local("1.0.0", "other", data.to_str().unwrap(), json!({}));
    let add = ipam("ADD", "new", &netns, &other);
    assert_cni_error(&add, 100, "Read-only file system", "ADD of a new network");
    mnt.remount(false);
    assert_eq!(leases_of(&net, "held").len(), 1, "the lease survived");
    assert_ok(&ipam("DEL", "held", &netns, &conf), "DEL after");
    assert_ok(&ipam("DEL", "new", &netns, &conf), "DEL of the failed ADD");
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
}

#[test]
fn full_store_gives_a_clear_error_and_leaves_nothing_behind() {
    let ns = TestNs::new("hdn");
    let netns = ns.path().display().to_string();
    let scratch = TempDir::new("full");
    let mnt = scratch.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "64k");
    let data = mnt.join("data");
    let conf = host_local("1.0.0", "full", data.to_str().unwrap(), json!({}));
    let net = data.join("full");
    assert_ok(&ipam("ADD", "held", &netns, &conf), "ADD before");
    // fill the file system up to the last block
    let filler = mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    drop(f);
    for cid in ["new-1", "new-2", "new-3"] {
        let add = ipam("ADD", cid, &netns, &conf);
        assert_cni_error(&add, 100, "No space left on device", "ADD on a full store");
        let l = listing(&net);
        assert!(leases_of(&net, cid).is_empty(), "{l:?}");
        assert!(l.temps.is_empty(), "a failed ADD left temp files: {l:?}");
    }
    // DEL frees space and works on a full file system
    assert_ok(&ipam("DEL", "held", &netns, &conf), "DEL on a full store");
    fs::remove_file(&filler).unwrap();
    assert_ok(&ipam("ADD", "new-1", &netns, &conf), "ADD after");
    for cid in ["new-1", "new-2", "held"] {
        assert_ok(&ipam("DEL", cid, &netns, &conf), "DEL after");
    }
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
}
