//! The `ipam` plugin's host-local store as the tests see it: config and call helpers, what a
//! network directory holds (leases, temp files, others), whether the lock is free, and a
//! tmpfs of a chosen size for full and read-only stores.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::*;

/// A tmpfs of `size` mounted on a directory of our own; unmounted (lazily) on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={size},mode=0700").as_str()),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", dir.display()));
        Tmpfs(dir.to_path_buf())
    }

    pub fn remount(&self, read_only: bool) {
        let mut flags = nix::mount::MsFlags::MS_REMOUNT
            | nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV;
        if read_only {
            flags |= nix::mount::MsFlags::MS_RDONLY;
        }
        nix::mount::mount(None::<&str>, &self.0, None::<&str>, flags, None::<&str>)
            .unwrap_or_else(|e| panic!("remount {} (ro={read_only}): {e}", self.0.display()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

pub fn host_local(v: &str, name: &str, data: &str, extra: Value) -> Value {
    let mut ipam = json!({
        "type": "ipam",
        "ranges": [[{"subnet": "10.91.0.0/24"}]],
        "dataDir": data,
    });
    for (k, val) in extra.as_object().unwrap() {
        ipam[k] = val.clone();
    }
    json!({"cniVersion": v, "name": name, "type": "bridge", "ipam": ipam})
}

pub fn ipam(verb: &str, cid: &str, netns: &str, conf: &Value) -> PluginOutput {
    call(&bin("ipam"), None, &cni_env(verb, cid, netns, "eth0"), conf)
}

/// What a network directory holds: lease files (address -> content), temp files, others.
#[derive(Debug, Default)]
pub struct Listing {
    pub leases: BTreeMap<String, String>,
    pub temps: Vec<String>,
    pub other: Vec<String>,
}

pub fn listing(net: &Path) -> Listing {
    let mut l = Listing::default();
    let Ok(rd) = fs::read_dir(net) else {
        return l;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<std::net::IpAddr>().is_ok() {
            let content = fs::read(e.path())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("<{e}>"));
            l.leases.insert(name, content);
        } else if name.starts_with(".tmp-") {
            l.temps.push(name);
        } else {
            l.other.push(name);
        }
    }
    l
}

/// The addresses whose lease file names `id` as its owner.
pub fn leases_of(net: &Path, id: &str) -> Vec<String> {
    listing(net)
        .leases
        .into_iter()
        .filter(|(_, c)| c.split("\r\n").next() == Some(id))
        .map(|(a, _)| a)
        .collect()
}

/// Whether nobody holds the store lock (we can take it without waiting).
pub fn lock_is_free(net: &Path) -> bool {
    let f = fs::File::open(net.join("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; closing it releases the lock.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The store lock of a network directory (`<dataDir>/<network>/lock`), held by the test as
/// another plugin process would hold it, until dropped. A plugin that reaches its IPAM step
/// meanwhile waits (for its configured bound) with the lock file open: see
/// [`crate::wait_until_open`].
pub struct HeldLock {
    _file: fs::File,
}

impl HeldLock {
    pub fn take(net: &Path) -> HeldLock {
        let path = net.join("lock");
        let f = fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // SAFETY: flock on a descriptor we own; closing it (on drop) releases the lock.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        HeldLock { _file: f }
    }
}
