//! On-disk behaviour, mirroring host-local's allocator and plugin tests (cni-spec.md §6).

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use ipam_store::{Error, Holder, Owner, Range, RangeSet, Store, validate_sets};

fn addrs(leases: &[ipam_store::Lease]) -> Vec<String> {
    leases.iter().map(|l| l.network().to_string()).collect()
}

#[test]
fn dual_stack_multi_range_add_and_del_write_host_local_files() {
    for ifname in ["eth0", "eth1"] {
        let tmp = TempDir::new("dual");
        let data = tmp.path().join("networks");
        let store = Store::open(&data, "mynet", Duration::from_secs(5)).unwrap();
        let sets = validate_sets(
            &[
                vec![spec("10.1.2.0/24"), spec("10.2.2.0/24")],
                vec![spec("2001:db8:1::0/64")],
            ],
            "ranges",
        )
        .unwrap();
        let me = owner("dummy", ifname);
        let leases = store.allocate(&me, &sets, &[]).unwrap();
        assert_eq!(addrs(&leases), ["10.1.2.2/24", "2001:db8:1::2/64"]);
        assert_eq!(leases[0].gateway(), ip("10.1.2.1"));
        assert_eq!(leases[1].gateway(), ip("2001:db8:1::1"));
        assert_eq!((leases[0].set, leases[1].set), (0, 1));

        let dir = data.join("mynet");
        let want = format!("dummy\r\n{ifname}");
        assert_eq!(read(&dir, "10.1.2.2"), want);
        assert_eq!(read(&dir, "2001:db8:1::2"), want);
        assert_eq!(read(&dir, "last_reserved_ip.0"), "10.1.2.2");
        assert_eq!(read(&dir, "last_reserved_ip.1"), "2001:db8:1::2");
        assert_eq!(read(&dir, "lock"), "");
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("10.1.2.2")), 0o600);
        assert_eq!(mode(&dir.join(".owners")), 0o700);
        // No temp file is left behind.
        assert_eq!(
            names(&dir),
            [
                ".owners",
                "10.1.2.2",
                "2001:db8:1::2",
                "last_reserved_ip.0",
                "last_reserved_ip.1",
                "lock"
            ]
        );
        assert_eq!(
            read(&dir.join(".owners"), ".complete"),
            "ipam-store owner index v3, 256 buckets\n"
        );
        assert_eq!(buckets(&dir).len(), 1);
        let added = format!("\n+ 10.1.2.2 dummy {ifname}\n\n+ 2001:db8:1::2 dummy {ifname}\n");
        assert_eq!(read(&dir.join(".owners"), &buckets(&dir)[0]), added);
        assert_eq!(
            store.find(&me).unwrap(),
            [ip("10.1.2.2"), ip("2001:db8:1::2")]
        );

        let released = store.release_by_owner(&me).unwrap();
        assert_eq!(released, [ip("10.1.2.2"), ip("2001:db8:1::2")]);
        assert!(lease_names(&dir).is_empty());
        assert_eq!(
            read(&dir.join(".owners"), &buckets(&dir)[0]),
            format!("{added}\n- 10.1.2.2 dummy {ifname}\n- 2001:db8:1::2 dummy {ifname}\n")
        );
        assert!(index_live(&dir).is_empty());
        assert!(store.find(&me).unwrap().is_empty());
    }
}

#[test]
fn repeated_add_returns_the_same_lease_and_others_get_the_next() {
    let tmp = TempDir::new("retry");
    let store = open(&tmp, "net");
    let sets = sets(&["10.1.2.0/24", "fd00::/64"]);
    let a = owner("A", "eth0");
    let first = store.allocate(&a, &sets, &[]).unwrap();
    let again = store.allocate(&a, &sets, &[]).unwrap();
    assert_eq!(first, again);
    assert_eq!(addrs(&again), ["10.1.2.2/24", "fd00::2/64"]);
    // The retry did not move the round-robin cursor.
    let dir = store.dir().to_path_buf();
    assert_eq!(read(&dir, "last_reserved_ip.0"), "10.1.2.2");
    let b = store.allocate(&owner("B", "eth0"), &sets, &[]).unwrap();
    assert_eq!(addrs(&b), ["10.1.2.3/24", "fd00::3/64"]);
    // Same id, another interface: another owner.
    let a1 = store.allocate(&owner("A", "eth1"), &sets, &[]).unwrap();
    assert_eq!(addrs(&a1), ["10.1.2.4/24", "fd00::4/64"]);
    assert_eq!(lease_names(&dir).len(), 6);
}

#[test]
fn legacy_id_only_files_are_released_after_new_style_ones() {
    let tmp = TempDir::new("legacy");
    let dir = tmp.path().join("net");
    write_file(&dir, "10.1.2.2", "dummy");
    write_file(&dir, "10.1.2.3", "dummy\r\neth0");
    write_file(&dir, "10.1.2.4", "other\r\neth0");
    let store = open(&tmp, "net");
    let me = owner("dummy", "eth0");
    // New-style lease first, like host-local; the legacy file only when none is left.
    assert_eq!(store.find(&me).unwrap(), [ip("10.1.2.3")]);
    assert_eq!(store.release_by_owner(&me).unwrap(), [ip("10.1.2.3")]);
    assert_eq!(lease_names(&dir), ["10.1.2.2", "10.1.2.4"]);
    assert_eq!(store.find(&me).unwrap(), [ip("10.1.2.2")]);
    // Legacy files match the id with any ifname.
    assert_eq!(
        store.release_by_owner(&owner("dummy", "eth7")).unwrap(),
        [ip("10.1.2.2")]
    );
    assert_eq!(lease_names(&dir), ["10.1.2.4"]);
    assert_eq!(read(&dir, "10.1.2.4"), "other\r\neth0");
}

#[test]
fn releasing_an_unknown_owner_succeeds() {
    let tmp = TempDir::new("unknown");
    let store = open(&tmp, "net");
    assert_eq!(
        store.release_by_owner(&owner("nobody", "eth0")).unwrap(),
        Vec::<IpAddr>::new()
    );
    assert!(store.find(&owner("nobody", "eth0")).unwrap().is_empty());
}

#[test]
fn whitespace_around_the_id_is_trimmed() {
    let tmp = TempDir::new("trim");
    let store = open(&tmp, "net");
    let sets = sets(&["10.1.2.0/24"]);
    let spaced = Owner::new("  dummy\n ", "eth0").unwrap();
    store.allocate(&spaced, &sets, &[]).unwrap();
    assert_eq!(read(store.dir(), "10.1.2.2"), "dummy\r\neth0");
    assert_eq!(
        store.release_by_owner(&owner("dummy", "eth0")).unwrap(),
        [ip("10.1.2.2")]
    );
    // A foreign file with surrounding whitespace is matched too (host-local trims content).
    let tmp = TempDir::new("trim2");
    write_file(&tmp.path().join("net"), "10.1.2.9", "  dummy\r\neth0\n");
    let store = open(&tmp, "net");
    assert_eq!(
        store.find(&owner("dummy", "eth0")).unwrap(),
        [ip("10.1.2.9")]
    );
    assert_eq!(
        store.allocate(&owner("dummy", "eth0"), &sets, &[]).unwrap()[0].address,
        ip("10.1.2.9")
    );
}

#[test]
fn round_robin_table() {
    struct Case {
        set: &'static [&'static str],
        taken: &'static [&'static str],
        last: Option<&'static str>,
        want: &'static str,
    }
    let cases = [
        Case {
            set: &["10.0.0.0/29"],
            taken: &[],
            last: None,
            want: "10.0.0.2",
        },
        Case {
            set: &["2001:db8:1::0/64"],
            taken: &[],
            last: None,
            want: "2001:db8:1::2",
        },
        Case {
            set: &["10.0.0.0/30"],
            taken: &[],
            last: None,
            want: "10.0.0.2",
        },
        Case {
            set: &["10.0.0.0/29"],
            taken: &["10.0.0.2"],
            last: None,
            want: "10.0.0.3",
        },
        // Next after the last reserved one.
        Case {
            set: &["10.0.0.0/29"],
            taken: &[],
            last: Some("10.0.0.5"),
            want: "10.0.0.6",
        },
        Case {
            set: &["10.0.0.0/29"],
            taken: &["10.0.0.4", "10.0.0.5"],
            last: Some("10.0.0.3"),
            want: "10.0.0.6",
        },
        // Round robin to the beginning.
        Case {
            set: &["10.0.0.0/29"],
            taken: &["10.0.0.6"],
            last: Some("10.0.0.5"),
            want: "10.0.0.2",
        },
        // Last reserved out of range: start from the beginning.
        Case {
            set: &["10.0.0.0/29"],
            taken: &["10.0.0.2"],
            last: Some("10.0.0.128"),
            want: "10.0.0.3",
        },
        // Full except the last reserved one: wrap around and take it.
        Case {
            set: &["10.0.0.0/29"],
            taken: &["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
            last: Some("10.0.0.3"),
            want: "10.0.0.3",
        },
        // Several ranges in one set.
        Case {
            set: &["10.0.0.0/30", "10.0.1.0/30"],
            taken: &[],
            last: None,
            want: "10.0.0.2",
        },
        Case {
            set: &["10.0.0.0/30", "10.0.1.0/30"],
            taken: &[],
            last: Some("10.0.0.2"),
            want: "10.0.1.2",
        },
        Case {
            set: &["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"],
            taken: &[],
            last: Some("10.0.2.2"),
            want: "10.0.0.2",
        },
    ];
    for (n, c) in cases.iter().enumerate() {
        let tmp = TempDir::new("rr");
        let dir = tmp.path().join("net");
        std::fs::create_dir_all(&dir).unwrap();
        for t in c.taken {
            write_file(&dir, t, "id");
        }
        if let Some(l) = c.last {
            write_file(&dir, "last_reserved_ip.0", l);
        }
        let store = open(&tmp, "net");
        let got = store
            .allocate(&owner("ID", "eth0"), &one_set(c.set), &[])
            .unwrap();
        assert_eq!(got[0].address, ip(c.want), "case {n}");
        assert_eq!(read(&dir, "last_reserved_ip.0"), c.want, "case {n}");
    }
}

#[test]
fn never_allocates_the_broadcast_address() {
    let tmp = TempDir::new("bcast");
    let store = open(&tmp, "net");
    let sets = sets(&["192.168.1.0/29"]);
    for i in 2..7 {
        let got = store
            .allocate(&owner(&format!("ID{i}"), "eth0"), &sets, &[])
            .unwrap();
        assert_eq!(got[0].network().to_string(), format!("192.168.1.{i}/29"));
    }
    let e = store
        .allocate(&owner("ID8", "eth0"), &sets, &[])
        .unwrap_err();
    assert!(matches!(e, Error::Exhausted { set: 0, .. }));
    assert_eq!(
        e.to_string(),
        "no IP addresses available in range set: 192.168.1.1-192.168.1.6"
    );
    assert!(!store.dir().join("192.168.1.7").exists());
}

#[test]
fn allocates_round_robin_after_a_release() {
    let tmp = TempDir::new("rr2");
    let store = open(&tmp, "net");
    let sets = sets(&["192.168.1.0/29"]);
    let me = owner("ID", "eth0");
    assert_eq!(
        addrs(&store.allocate(&me, &sets, &[]).unwrap()),
        ["192.168.1.2/29"]
    );
    store.release_by_owner(&me).unwrap();
    assert_eq!(
        addrs(&store.allocate(&me, &sets, &[]).unwrap()),
        ["192.168.1.3/29"]
    );
}

#[test]
fn out_of_addresses_errors_name_the_set() {
    let cases: [(&[&str], &[&str], &str); 3] = [
        (&["10.0.0.0/30"], &["10.0.0.2"], "10.0.0.1-10.0.0.2"),
        (
            &["10.0.0.0/29"],
            &["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
            "10.0.0.1-10.0.0.6",
        ),
        (
            &["10.0.0.0/30", "10.0.1.0/30"],
            &["10.0.0.2", "10.0.1.2"],
            "10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2",
        ),
    ];
    for (set, taken, text) in cases {
        let tmp = TempDir::new("full");
        let dir = tmp.path().join("net");
        for t in taken {
            write_file(&dir, t, "id");
        }
        let store = open(&tmp, "net");
        let e = store
            .allocate(&owner("ID", "eth0"), &one_set(set), &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no IP addresses available in range set: {text}")
        );
        assert_eq!(
            store.exhausted(&one_set(set)).unwrap().unwrap(),
            format!("no IP addresses available in range set 0: {text}")
        );
    }
}

#[test]
fn last_reserved_at_the_end_of_a_range_moves_to_the_next_range() {
    let tmp = TempDir::new("nextrange");
    let store = open(&tmp, "net");
    let sets = validate_sets(
        &[vec![
            spec_range("10.0.0.0/29", "10.0.0.1", "10.0.0.3"),
            spec_range("10.0.1.0/29", "10.0.1.4", "10.0.1.6"),
        ]],
        "ranges",
    )
    .unwrap();
    let a = store
        .allocate(&owner("A", "eth0"), &sets, &[ip("10.0.0.3")])
        .unwrap();
    assert_eq!(a[0].address, ip("10.0.0.3"));
    assert_eq!(read(store.dir(), "last_reserved_ip.0"), "10.0.0.3");
    let b = store.allocate(&owner("B", "eth0"), &sets, &[]).unwrap();
    assert_eq!(b[0].network().to_string(), "10.0.1.4/29");
    assert_eq!(b[0].gateway(), ip("10.0.1.1"));
}

#[test]
fn requested_addresses_are_reserved_exactly_or_refused() {
    let tmp = TempDir::new("req");
    let store = open(&tmp, "net");
    let set29 = sets(&["192.168.1.0/29"]);
    let a = owner("A", "eth0");
    let got = store.allocate(&a, &set29, &[ip("192.168.1.5")]).unwrap();
    assert_eq!(got[0].address, ip("192.168.1.5"));
    assert_eq!(read(store.dir(), "last_reserved_ip.0"), "192.168.1.5");
    // Retry: the same lease.
    assert_eq!(
        store.allocate(&a, &set29, &[ip("192.168.1.5")]).unwrap(),
        got
    );
    // Without a request the retry returns it as well.
    assert_eq!(store.allocate(&a, &set29, &[]).unwrap(), got);

    let e = store
        .allocate(&owner("B", "eth0"), &set29, &[ip("192.168.1.5")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6: leased to id \"A\" ifname \"eth0\""
    );
    let e = store
        .allocate(&a, &set29, &[ip("192.168.1.4")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "id \"A\" ifname \"eth0\" already holds 192.168.1.5 in range set 0 (192.168.1.1-192.168.1.6) but requested 192.168.1.4"
    );
    let e = store
        .allocate(&owner("B", "eth0"), &set29, &[ip("192.168.1.1")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested IP address 192.168.1.1 is the gateway of range 192.168.1.1-192.168.1.6"
    );

    // After rangeEnd / before rangeStart.
    let narrow = validate_sets(
        &[vec![spec_range(
            "192.168.1.0/29",
            "192.168.1.3",
            "192.168.1.4",
        )]],
        "ranges",
    )
    .unwrap();
    for req in ["192.168.1.5", "192.168.1.2"] {
        let e = store
            .allocate(&owner("C", "eth0"), &narrow, &[ip(req)])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("requested IP address {req} is outside every range: 192.168.1.3-192.168.1.4")
        );
    }
    // Network and broadcast addresses, even inside an explicit window.
    let wide = validate_sets(
        &[vec![spec_range(
            "192.168.2.0/29",
            "192.168.2.0",
            "192.168.2.7",
        )]],
        "ranges",
    )
    .unwrap();
    let e = store
        .allocate(&owner("C", "eth0"), &wide, &[ip("192.168.2.7")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested IP address 192.168.2.7 is the broadcast address of subnet 192.168.2.0/29"
    );
    let e = store
        .allocate(&owner("C", "eth0"), &wide, &[ip("192.168.2.0")])
        .unwrap_err();
    assert!(matches!(
        e,
        Error::RequestedReserved {
            kind: "network",
            ..
        }
    ));
    // Two requests in one set.
    let e = store
        .allocate(
            &owner("C", "eth0"),
            &set29,
            &[ip("192.168.1.2"), ip("192.168.1.3")],
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::RequestedTwiceInSet { set: 0, .. }),
        "{e}"
    );
    // Nothing was written by the refused calls.
    assert_eq!(lease_names(store.dir()), ["192.168.1.5"]);

    // One request per family, the v4 one in the second range of its set.
    let dual = validate_sets(
        &[
            vec![spec("10.0.0.0/24"), spec("10.0.1.0/24")],
            vec![spec("fd00::/64")],
        ],
        "ranges",
    )
    .unwrap();
    let got = store
        .allocate(
            &owner("D", "eth0"),
            &dual,
            &[ip("fd00::99"), ip("10.0.1.77")],
        )
        .unwrap();
    assert_eq!(addrs(&got), ["10.0.1.77/24", "fd00::99/64"]);
    assert_eq!(got[0].gateway(), ip("10.0.1.1"));
}

#[test]
fn a_failed_set_releases_only_what_the_call_created() {
    let tmp = TempDir::new("rollback");
    let dir = tmp.path().join("net");
    write_file(&dir, "10.0.1.2", "other\r\neth0");
    let store = open(&tmp, "net");
    let both = sets(&["10.0.0.0/30", "10.0.1.0/30"]);
    let a = owner("A", "eth0");
    let e = store.allocate(&a, &both, &[]).unwrap_err();
    assert!(matches!(e, Error::Exhausted { set: 1, .. }), "{e}");
    assert_eq!(lease_names(&dir), ["10.0.1.2"]);
    // The rollback recorded the lease of set 0 dead after unlinking it.
    let a_lines: Vec<String> = index_lines(&dir)
        .into_iter()
        .filter(|l| l.ends_with(" A eth0"))
        .collect();
    assert_eq!(a_lines, ["+ 10.0.0.2 A eth0", "- 10.0.0.2 A eth0"]);
    assert_eq!(index_live(&dir), ["10.0.1.2 other eth0".to_string()].into());
    assert!(store.find(&a).unwrap().is_empty());

    // A lease held before the call survives the rollback.
    let first = sets(&["10.0.0.0/30"]);
    store.allocate(&a, &first, &[]).unwrap();
    store.allocate(&a, &both, &[]).unwrap_err();
    assert_eq!(store.find(&a).unwrap(), [ip("10.0.0.2")]);
    assert_eq!(
        index_live(&dir),
        [
            "10.0.0.2 A eth0".to_string(),
            "10.0.1.2 other eth0".to_string()
        ]
        .into()
    );
}

#[test]
fn five_thousand_existing_leases_give_the_same_results() {
    let sets = sets(&["10.0.0.0/16"]);
    let mut results = Vec::new();
    for existing in [0usize, 5000] {
        let tmp = TempDir::new("5k");
        let dir = tmp.path().join("net");
        std::fs::create_dir_all(&dir).unwrap();
        // Host-local-format leases 10.0.0.2 .. written directly, before the store is opened.
        let mut last = None;
        for (n, cand) in sets[0].ranges()[0]
            .subnet()
            .iter()
            .skip(2)
            .take(existing)
            .enumerate()
        {
            write_file(&dir, &cand.to_string(), &format!("c{n}\r\neth0"));
            last = Some(cand);
        }
        // Same cursor in both stores.
        write_file(&dir, "last_reserved_ip.0", "10.0.19.139");
        let store = open(&tmp, "net");
        let me = owner("me", "eth0");
        let a = store.allocate(&me, &sets, &[]).unwrap();
        let b = store
            .allocate(&owner("you", "eth0"), &sets, &[ip("10.0.200.1")])
            .unwrap();
        let rel = store.release_by_owner(&me).unwrap();
        let again = store.allocate(&me, &sets, &[]).unwrap();
        results.push((addrs(&a), addrs(&b), rel, addrs(&again)));
        assert_eq!(lease_names(&dir).len(), existing + 2);
        if existing > 0 {
            assert_eq!(last, Some(ip("10.0.19.137")));
            // The index covers the foreign leases: c0's lease is found and released by owner.
            assert_eq!(store.find(&owner("c0", "eth0")).unwrap(), [ip("10.0.0.2")]);
            assert_eq!(
                store.release_by_owner(&owner("c4999", "eth0")).unwrap(),
                [ip("10.0.19.137")]
            );
            // After the index is built, DEL reads only the owner's own entries: a lease that
            // a foreign writer re-assigned behind our back is not seen by DEL...
            write_file(&dir, "10.0.0.9", "probe\r\neth0");
            assert!(
                store
                    .release_by_owner(&owner("probe", "eth0"))
                    .unwrap()
                    .is_empty()
            );
            // ...until GC, which scans everything and rebuilds the index.
            let mut valid: HashSet<Owner> =
                (0..5000).map(|n| owner(&format!("c{n}"), "eth0")).collect();
            valid.insert(me.clone());
            valid.insert(owner("you", "eth0"));
            valid.insert(owner("probe", "eth0"));
            let report = store.gc(&valid).unwrap();
            assert!(report.released.is_empty(), "{report:?}");
            assert_eq!(report.kept, 4999 - 1 + 1 + 2);
            assert_eq!(
                store.release_by_owner(&owner("probe", "eth0")).unwrap(),
                [ip("10.0.0.9")]
            );
        }
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(
        results[0],
        (
            vec!["10.0.19.140/16".to_string()],
            vec!["10.0.200.1/16".to_string()],
            vec![ip("10.0.19.140")],
            // Round-robin continues after the requested address (host-local records it too).
            vec!["10.0.200.2/16".to_string()],
        )
    );
}

#[test]
fn gc_releases_invalid_leases_and_reports_what_it_skips() {
    let tmp = TempDir::new("gc");
    let dir = tmp.path().join("net");
    let store = open(&tmp, "net");
    let sets = sets(&["10.0.0.0/24"]);
    let keep = owner("keep", "eth0");
    let drop = owner("drop", "eth0");
    store.allocate(&keep, &sets, &[]).unwrap(); // .2
    store.allocate(&drop, &sets, &[]).unwrap(); // .3
    write_file(&dir, "10.0.0.20", "legacy-keep");
    write_file(&dir, "10.0.0.21", "legacy-drop");
    write_file(&dir, "10.0.0.22", "");
    write_file(&dir, "junk", "x");
    std::fs::create_dir(dir.join("10.0.0.30")).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, "keep\r\neth0").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("10.0.0.31")).unwrap();
    std::fs::write(dir.join("10.0.0.32"), b"\xff\xfe").unwrap();
    write_file(&dir, ".tmp-99999-0", "ghost\r\neth0");
    let before_last = read(&dir, "last_reserved_ip.0");

    let valid: HashSet<Owner> = [keep.clone(), owner("legacy-keep", "eth3")].into();
    let report = store.gc(&valid).unwrap();
    let mut released: Vec<(IpAddr, Holder)> = report.released.clone();
    released.sort_by_key(|(ip, _)| *ip);
    assert_eq!(
        released,
        [
            (ip("10.0.0.3"), Holder::Owner(drop.clone())),
            (ip("10.0.0.21"), Holder::Legacy("legacy-drop".into())),
            (ip("10.0.0.22"), Holder::Legacy(String::new())),
        ]
    );
    assert_eq!(report.kept, 2);
    assert_eq!(report.temp_removed, 1);
    let mut errors = report.errors.clone();
    errors.sort();
    let d = dir.display();
    assert_eq!(
        errors,
        [
            format!("{d}/10.0.0.30: is a directory; skipped"),
            format!("{d}/10.0.0.31: is a symbolic link (not followed); skipped"),
            format!("{d}/10.0.0.32: content is not UTF-8; skipped"),
            format!("{d}/junk: not a lease (name is not an IP address); skipped"),
        ]
    );
    assert_eq!(
        lease_names(&dir),
        [
            "10.0.0.2",
            "10.0.0.20",
            "10.0.0.30",
            "10.0.0.31",
            "10.0.0.32"
        ]
    );
    assert_eq!(read(&dir, "last_reserved_ip.0"), before_last);
    assert!(dir.join("lock").exists() && dir.join("junk").exists());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\r\neth0");
    // The rebuilt index serves DEL for the kept legacy lease and the kept owner.
    assert_eq!(
        index_live(&dir),
        [
            "10.0.0.2 keep eth0".to_string(),
            "10.0.0.20 legacy-keep %".to_string()
        ]
        .into()
    );
    // A rebuilt index holds only live `+` lines.
    assert!(index_lines(&dir).iter().all(|l| l.starts_with("+ ")));
    assert_eq!(
        store
            .release_by_owner(&owner("legacy-keep", "eth0"))
            .unwrap(),
        [ip("10.0.0.20")]
    );
    assert_eq!(store.find(&keep).unwrap(), [ip("10.0.0.2")]);
    // An empty valid set releases every readable lease.
    let report = store.gc(&HashSet::new()).unwrap();
    assert_eq!(report.released.len(), 1);
    assert_eq!(lease_names(&dir), ["10.0.0.30", "10.0.0.31", "10.0.0.32"]);
}

#[test]
fn symlinks_in_the_store_are_never_followed() {
    let tmp = TempDir::new("symlink");
    let target = tmp.path().join("target");
    std::fs::write(&target, "precious").unwrap();
    let dir = tmp.path().join("net");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("10.0.0.2")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("last_reserved_ip.0")).unwrap();
    let store = open(&tmp, "net");
    let sets = sets(&["10.0.0.0/24"]);
    // The symlinked name counts as taken; the cursor file is replaced, not written through.
    let got = store.allocate(&owner("A", "eth0"), &sets, &[]).unwrap();
    assert_eq!(got[0].address, ip("10.0.0.3"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    assert!(
        !std::fs::symlink_metadata(dir.join("last_reserved_ip.0"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let e = store
        .allocate(&owner("B", "eth0"), &sets, &[ip("10.0.0.2")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested IP address 10.0.0.2 is not available in range set 10.0.0.1-10.0.0.254: leased to an unreadable lease file (is a symbolic link (not followed))"
    );

    // A symlinked network directory or lock file is refused.
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, tmp.path().join("linked")).unwrap();
    let e = Store::open(tmp.path(), "linked", Duration::from_secs(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}/linked is a symbolic link; the store never follows symlinks",
            tmp.path().display()
        )
    );
    let ldir = tmp.path().join("locknet");
    std::fs::create_dir(&ldir).unwrap();
    std::os::unix::fs::symlink(&target, ldir.join("lock")).unwrap();
    let store = open(&tmp, "locknet");
    let e = store.find(&owner("A", "eth0")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("open lock {}/lock: ", ldir.display())),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
}

#[test]
fn names_that_would_escape_are_rejected() {
    let tmp = TempDir::new("names");
    for (net, reason) in [
        ("", "is empty"),
        (".", "would escape the data directory"),
        ("..", "would escape the data directory"),
        ("a/b", "contains '/'"),
        ("../x", "contains '/'"),
        ("a\0b", "contains NUL"),
    ] {
        let e = Store::open(tmp.path(), net, Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid network name {net:?}: {reason}")
        );
    }
    for (dir, reason) in [
        ("", "is empty"),
        ("relative/dir", "is not an absolute path"),
        ("/tmp/../etc", "contains '..'"),
    ] {
        let e = Store::open(Path::new(dir), "net", Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.to_string(), format!("invalid dataDir {dir:?}: {reason}"));
    }
    // An owner built by hand is validated by every operation.
    let store = open(&tmp, "net");
    let bad = Owner {
        id: "x\r\ny".into(),
        ifname: "eth0".into(),
    };
    assert!(matches!(
        store.release_by_owner(&bad),
        Err(Error::InvalidName {
            what: "owner id",
            ..
        })
    ));
    // Owner index names stay inside `.owners`, whatever the id.
    let sets = sets(&["10.0.0.0/24"]);
    let odd = owner("../../etc/passwd", "eth0");
    let long = owner(&"x".repeat(1000), "eth0");
    store.allocate(&odd, &sets, &[]).unwrap();
    store.allocate(&long, &sets, &[]).unwrap();
    // Only `.complete`, `names` and bucket files `b00`..`bff` exist in `.owners`; ids are
    // escaped.
    let idx = names(&store.dir().join(".owners"));
    assert!(
        idx.iter().all(|n| n == ".complete"
            || n == "names"
            || (n.len() == 3 && n.starts_with('b') && u8::from_str_radix(&n[1..], 16).is_ok())),
        "{idx:?}"
    );
    assert_eq!(idx.len(), buckets(store.dir()).len() + 2, "{idx:?}");
    assert!(index_live(store.dir()).contains("10.0.0.2 ..%2F..%2Fetc%2Fpasswd eth0"));
    assert_eq!(names(tmp.path()), ["net"]);
    assert_eq!(store.find(&odd).unwrap(), [ip("10.0.0.2")]);
    assert_eq!(store.release_by_owner(&long).unwrap(), [ip("10.0.0.3")]);
}

#[test]
fn existing_directory_modes_are_left_alone() {
    let tmp = TempDir::new("modes");
    let dir = tmp.path().join("net");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = open(&tmp, "net");
    store
        .allocate(&owner("A", "eth0"), &sets(&["10.0.0.0/24"]), &[])
        .unwrap();
    assert_eq!(mode(&dir), 0o755);
    assert_eq!(mode(&dir.join("10.0.0.2")), 0o600);
    assert_eq!(mode(&dir.join("last_reserved_ip.0")), 0o600);
}

#[test]
fn a_held_lock_turns_into_a_timeout_error() {
    use nix::fcntl::{Flock, FlockArg};
    let tmp = TempDir::new("lock");
    let store = Store::open(tmp.path(), "net", Duration::from_millis(300)).unwrap();
    let f = std::fs::File::create(store.dir().join("lock")).unwrap();
    let held = Flock::lock(OwnedFd::from(f), FlockArg::LockExclusiveNonblock).unwrap();
    let began = Instant::now();
    let e = store
        .allocate(&owner("A", "eth0"), &sets(&["10.0.0.0/24"]), &[])
        .unwrap_err();
    let took = began.elapsed();
    match &e {
        Error::LockTimeout { path, waited } => {
            assert_eq!(path, &store.dir().join("lock"));
            assert!(*waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("expected LockTimeout, got {other}"),
    }
    // No upper bound on `took`: a loaded machine can stretch any wait. The call returned
    // while the lock is still held (it is released only below), which a wait without bound
    // never does, and the error says the configured bound (300 ms) is the one that expired.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(e.to_string().starts_with("timed out after 3"), "{e}");
    assert!(e.to_string().ends_with(&format!(
        "ms waiting for the lock {}/lock",
        store.dir().display()
    )));
    assert!(lease_names(store.dir()).is_empty());
    drop(held);
    assert_eq!(
        store
            .allocate(&owner("A", "eth0"), &sets(&["10.0.0.0/24"]), &[])
            .unwrap()[0]
            .address,
        ip("10.0.0.2")
    );
}

#[test]
fn stale_index_lines_and_crash_leftovers_are_ignored() {
    let tmp = TempDir::new("stale");
    let store = open(&tmp, "net");
    let sets = sets(&["10.0.0.0/24"]);
    let a = owner("A", "eth0");
    store.allocate(&owner("B", "eth0"), &sets, &[]).unwrap(); // .2
    let owners = store.dir().join(".owners");
    // Find A's bucket: the one holding no line yet after a throwaway allocation of A.
    let before = buckets(store.dir());
    store.allocate(&a, &sets, &[ip("10.0.0.100")]).unwrap();
    store.release_by_owner(&a).unwrap();
    let bucket = buckets(store.dir())
        .into_iter()
        .find(|b| read(&owners, b).contains(" A eth0"))
        .unwrap();
    assert!(before.len() <= buckets(store.dir()).len());
    // A crash after the intent but before the link, a line whose IP was reused by B, and a
    // line cut short.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(owners.join(&bucket))
        .unwrap();
    std::io::Write::write_all(&mut f, b"+ 10.0.0.77 A eth0\n+ 10.0.0.2 A eth0\n+ 10.0.0.").unwrap();
    drop(f);
    write_file(store.dir(), ".tmp-424242-7", "A\r\neth0");
    assert!(store.find(&a).unwrap().is_empty());
    // The stale entries were marked dead when seen.
    assert!(
        !index_live(store.dir())
            .iter()
            .any(|e| e.ends_with(" A eth0"))
    );
    let got = store.allocate(&a, &sets, &[]).unwrap();
    assert_eq!(got[0].address, ip("10.0.0.101"));
    assert!(index_live(store.dir()).contains("10.0.0.101 A eth0"));
    assert_eq!(store.release_by_owner(&a).unwrap(), [ip("10.0.0.101")]);
    assert_eq!(read(store.dir(), "10.0.0.2"), "B\r\neth0");
    assert!(store.dir().join(".tmp-424242-7").exists());
    assert_eq!(
        store.gc(&[owner("B", "eth0")].into()).unwrap().temp_removed,
        1
    );
    assert!(!store.dir().join(".tmp-424242-7").exists());
}

#[test]
fn release_by_address_updates_the_owner_index() {
    let tmp = TempDir::new("byaddr");
    let store = open(&tmp, "net");
    let sets = sets(&["169.254.172.0/22", "fd00:ec2::/64"]);
    let mac = owner("0a:1b:2c:3d:4e:5f", "eth0");
    let got = store.allocate(&mac, &sets, &[ip("169.254.172.5")]).unwrap();
    assert_eq!(addrs(&got), ["169.254.172.5/22", "fd00:ec2::2/64"]);
    assert_eq!(got[0].gateway(), ip("169.254.172.1"));
    let other = store
        .allocate(&owner("0a:1b:2c:3d:4e:60", "eth0"), &sets, &[])
        .unwrap();
    assert_eq!(other[0].address, ip("169.254.172.6"));
    let rel = store
        .release_addresses(&[ip("169.254.172.5"), ip("169.254.172.99")])
        .unwrap();
    assert_eq!(
        rel,
        [(ip("169.254.172.5"), Some(Holder::Owner(mac.clone())))]
    );
    assert_eq!(store.find(&mac).unwrap(), [ip("fd00:ec2::2")]);
    let live = index_live(store.dir());
    assert!(
        live.contains("fd00:ec2::2 0a%3A1b%3A2c%3A3d%3A4e%3A5f eth0"),
        "{live:?}"
    );
    assert!(
        !live.contains("169.254.172.5 0a%3A1b%3A2c%3A3d%3A4e%3A5f eth0"),
        "{live:?}"
    );
    assert_eq!(store.release_by_owner(&mac).unwrap(), [ip("fd00:ec2::2")]);
}

#[test]
fn free_counts_and_exhaustion_for_status() {
    let tmp = TempDir::new("status");
    let store = open(&tmp, "net");
    let sets = sets(&["192.168.1.0/29", "fd00::/126"]);
    assert_eq!(store.free_counts(&sets).unwrap(), [5, 2]);
    assert_eq!(store.exhausted(&sets).unwrap(), None);
    store.allocate(&owner("A", "eth0"), &sets, &[]).unwrap();
    assert_eq!(store.free_counts(&sets).unwrap(), [4, 1]);
    store.allocate(&owner("B", "eth0"), &sets, &[]).unwrap();
    assert_eq!(store.free_counts(&sets).unwrap(), [3, 0]);
    assert_eq!(
        store.exhausted(&sets).unwrap().unwrap(),
        "no IP addresses available in range set 1: fd00::1-fd00::3"
    );
    let e = store.allocate(&owner("C", "eth0"), &sets, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no IP addresses available in range set: fd00::1-fd00::3"
    );
    // The failed call rolled back its v4 lease.
    assert_eq!(store.free_counts(&sets).unwrap(), [3, 0]);
}

#[test]
fn typed_ranges_for_a_single_subnet_dialect() {
    // ecs-ipam: one subnet per family with its own key names in errors.
    let labels = ipam_store::FieldLabels {
        subnet: "ipv4-subnet".into(),
        range_start: "ipv4-subnet".into(),
        range_end: "ipv4-subnet".into(),
        gateway: "ipv4-gateway".into(),
    };
    // a gateway outside the subnet is host-local's rule (accepted; the dialect decides)
    let r = ipam_store::RangeSpec {
        subnet: "169.254.172.0/22".into(),
        gateway: Some("169.254.180.1".into()),
        ..Default::default()
    }
    .validate(&labels)
    .unwrap();
    assert!(!r.gateway_in_subnet());
    let e = ipam_store::RangeSpec {
        subnet: "169.254.172.0/22".into(),
        gateway: Some("fd00::1".into()),
        ..Default::default()
    }
    .validate(&labels)
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ipv4-gateway fd00::1 is an IPv6 address but subnet 169.254.172.0/22 is IPv4"
    );
    let r = Range::new(
        "169.254.172.0/22".parse().unwrap(),
        None,
        None,
        Some(ip("169.254.172.1")),
    )
    .unwrap();
    let set = RangeSet::new(vec![r]).unwrap();
    assert_eq!(set.capacity(), 1021);
}
