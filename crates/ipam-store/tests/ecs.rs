//! The ecs-ipam store (`EcsStore`) on its own: Amazon's walk, our idempotent ADD, release,
//! the gateway marker, tolerant reads, one transaction per operation, and the import of an
//! earlier release's directory store from injected locations. No root needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use boltdb::{Access, Db};
use ipam_store::{EcsStore, Error, RangeSet, RangeSpec, validate_sets};

const T: Duration = Duration::from_secs(5);

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "ecs-store-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sets(subnets: &[&str]) -> Vec<RangeSet> {
    let raw: Vec<Vec<RangeSpec>> = subnets
        .iter()
        .map(|s| {
            vec![RangeSpec {
                subnet: s.to_string(),
                ..Default::default()
            }]
        })
        .collect();
    validate_sets(&raw, "ranges").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn add(s: &EcsStore, id: &str, sets: &[RangeSet]) -> Vec<String> {
    s.allocate(id, sets, &[])
        .unwrap()
        .iter()
        .map(|l| l.address.to_string())
        .collect()
}

fn raw(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    Db::open(path, Access::Read, T)
        .unwrap()
        .bucket(b"IPAM")
        .unwrap()
        .map(|b| b.entries)
        .unwrap_or_default()
}

fn put_raw(path: &Path, k: &str, v: &[u8]) {
    let mut db = Db::open(path, Access::Write, T).unwrap();
    let mut e = db
        .bucket(b"IPAM")
        .unwrap()
        .map(|b| b.entries)
        .unwrap_or_default();
    e.insert(k.as_bytes().to_vec(), v.to_vec());
    db.put_bucket(b"IPAM", &e).unwrap();
}

#[test]
fn amazons_walk_with_our_idempotent_add_and_release() {
    let t = Tmp::new("walk");
    let db = t.0.join("eni-ipam.db");
    let s = EcsStore::new(&db, T);
    let v4 = sets(&["10.1.0.0/29"]);
    assert_eq!(add(&s, "a", &v4), ["10.1.0.2"]);
    assert_eq!(add(&s, "b", &v4), ["10.1.0.3"]);
    assert_eq!(
        add(&s, "a", &v4),
        ["10.1.0.2"],
        "a repeated ADD returns the lease"
    );
    // values carry libkv's 8-byte little-endian index
    let r = raw(&db);
    assert_eq!(r[b"10.1.0.1".as_slice()][8..], *b"GateWay");
    assert_eq!(r[b"10.1.0.2".as_slice()][8..], *b"a");
    assert!(
        r.values()
            .all(|v| v.len() >= 8 && v[0] >= 1 && v[1..8] == [0; 7])
    );
    assert_eq!(s.release_by_id("a").unwrap(), [ip("10.1.0.2")]);
    assert_eq!(s.release_by_id("a").unwrap(), Vec::<IpAddr>::new());
    // after a release the walk continues after the released address (lastKnownIP)
    assert_eq!(add(&s, "c", &v4), ["10.1.0.4"]);
    assert_eq!(add(&s, "d", &v4), ["10.1.0.5"]);
    assert_eq!(add(&s, "e", &v4), ["10.1.0.6"]);
    // wraps around to the freed .2; then the /29 is full
    assert_eq!(add(&s, "f", &v4), ["10.1.0.2"]);
    assert!(matches!(
        s.allocate("g", &v4, &[]),
        Err(Error::Exhausted { .. })
    ));
    assert_eq!(s.free_counts(&v4).unwrap(), [0]);
    assert_eq!(s.find("f").unwrap(), [ip("10.1.0.2")]);
    // requested addresses: exact, refused when held by another id
    assert_eq!(
        s.release_addresses(&[ip("10.1.0.3")]).unwrap(),
        [ip("10.1.0.3")]
    );
    let l = s.allocate("h", &v4, &[ip("10.1.0.3")]).unwrap();
    assert_eq!(l[0].address, ip("10.1.0.3"));
    let e = s.allocate("i", &v4, &[ip("10.1.0.3")]).unwrap_err();
    assert!(e.to_string().contains("id \"h\""), "{e}");
}

#[test]
fn one_transaction_per_operation_and_nothing_written_when_a_family_fails() {
    let t = Tmp::new("tx");
    let db = t.0.join("eni-ipam.db");
    let s = EcsStore::new(&db, T);
    let both = sets(&["10.2.0.0/30", "fd02::/126"]);
    assert_eq!(add(&s, "a", &both), ["10.2.0.2", "fd02::2"]);
    let txid = || Db::open(&db, Access::Read, T).unwrap().txid();
    // bolt's initial transactions are 0 and 1; our dual-stack ADD is one more
    assert_eq!(txid(), 2);
    add(&s, "a", &both);
    assert_eq!(txid(), 2, "a repeated ADD writes nothing");
    // the IPv4 /30 is full: nothing of the IPv6 part is written either
    let before = std::fs::read(&db).unwrap();
    assert!(matches!(
        s.allocate("b", &both, &[]),
        Err(Error::Exhausted { set: 0, .. })
    ));
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(s.release_by_id("a").unwrap().len(), 2);
    assert_eq!(txid(), 3);
}

#[test]
fn the_gateway_marker_and_tolerant_reads() {
    let t = Tmp::new("gw");
    let db = t.0.join("eni-ipam.db");
    let s = EcsStore::new(&db, T);
    let v4 = sets(&["10.3.0.0/24"]);
    // the gateway key held by a task: refused, as Amazon refuses
    put_raw(&db, "10.3.0.1", b"\x05\0\0\0\0\0\0\0task-x");
    let e = s.allocate("a", &v4, &[]).unwrap_err();
    assert!(matches!(e, Error::GatewayTaken { .. }), "{e}");
    assert!(e.to_string().contains("id \"task-x\""), "{e}");
    // any index value reads; an empty value is absent (libkv); a short one holds its address
    put_raw(&db, "10.3.0.1", b"\xff\xff\xff\xff\xff\xff\xff\xffGateWay");
    put_raw(&db, "10.3.0.2", b"");
    put_raw(&db, "10.3.0.3", b"\x01\x02");
    put_raw(&db, "10.3.0.4", b"\x07\0\0\0\0\0\0\0");
    assert_eq!(add(&s, "a", &v4), ["10.3.0.2"]);
    assert_eq!(add(&s, "b", &v4), ["10.3.0.5"]);
    assert_eq!(
        s.find("").unwrap(),
        [ip("10.3.0.4")],
        "an empty id is an id"
    );
    // other keys of the bucket are kept
    put_raw(&db, "foreign", b"\x01\0\0\0\0\0\0\0kept");
    add(&s, "c", &v4);
    assert_eq!(raw(&db)[b"foreign".as_slice()], b"\x01\0\0\0\0\0\0\0kept");
    // release by address: whoever holds it, the gateway marker excepted
    let got = s
        .release_addresses(&[ip("10.3.0.3"), ip("10.3.0.1"), ip("10.3.0.200")])
        .unwrap();
    assert_eq!(got, [ip("10.3.0.3")]);
}

#[test]
fn find_and_status_create_nothing() {
    let t = Tmp::new("ro");
    let db = t.0.join("sub").join("eni-ipam.db");
    let s = EcsStore::new(&db, T);
    assert_eq!(s.find("x").unwrap(), Vec::<IpAddr>::new());
    assert_eq!(s.free_counts(&sets(&["10.4.0.0/30"])).unwrap(), [1]);
    assert!(!db.exists() && !db.parent().unwrap().exists());
    assert!(s.exhausted(&sets(&["10.4.0.0/30"])).unwrap().is_none());
}

fn plant(dir: &Path, leases: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (ip, id) in leases {
        std::fs::write(dir.join(ip), format!("{id}\r\necs-eth0")).unwrap();
    }
}

#[test]
fn an_injected_old_default_directory_is_imported_once_with_conflicts_logged() {
    let t = Tmp::new("mig");
    let db = t.0.join("data").join("eni-ipam.db");
    let old_default = t.0.join("var-lib-cni-networks");
    plant(
        &old_default.join("ecs-ipam"),
        &[
            ("10.5.0.7", "eni-old"),
            ("10.5.0.2", "eni-other"),
            ("fd05::9", "eni-old"),
        ],
    );
    std::fs::write(old_default.join("ecs-ipam/last_reserved_ip.0"), "10.5.0.7").unwrap();
    // the bolt store already holds 10.5.0.2 for somebody else
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    put_raw(&db, "10.5.0.2", b"\x01\0\0\0\0\0\0\0eni-bolt");
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = log.clone();
    let s = EcsStore::new(&db, T)
        .with_legacy_dir(&old_default)
        .with_log(Box::new(move |m| sink.borrow_mut().push(m.to_string())));
    let v4 = sets(&["10.5.0.0/24"]);
    // the walk continues after the imported last_reserved_ip
    assert_eq!(add(&s, "new", &v4), ["10.5.0.8"]);
    assert_eq!(s.find("eni-old").unwrap(), [ip("10.5.0.7"), ip("fd05::9")]);
    assert_eq!(s.find("eni-bolt").unwrap(), [ip("10.5.0.2")]);
    assert!(s.find("eni-other").unwrap().is_empty());
    let log = log.borrow().clone();
    assert!(
        log.iter().any(|m| m.starts_with("imported 2 lease(s)")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|m| m.contains("import conflict: 10.5.0.2")
            && m.contains("eni-other")
            && m.contains("eni-bolt")),
        "{log:?}"
    );
    assert!(!old_default.join("ecs-ipam").exists());
    assert!(old_default.join("ecs-ipam.imported/10.5.0.7").is_file());
    // never twice: a second old directory appearing later is imported under a new aside name
    assert_eq!(s.release_by_id("eni-old").unwrap().len(), 2);
    assert!(s.find("eni-old").unwrap().is_empty());
    plant(&old_default.join("ecs-ipam"), &[("10.5.0.50", "eni-late")]);
    assert_eq!(s.find("eni-late").unwrap(), [ip("10.5.0.50")]);
    assert!(old_default.join("ecs-ipam.imported.2/10.5.0.50").is_file());
    assert!(s.find("eni-old").unwrap().is_empty());
}
