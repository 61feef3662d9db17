//! Network namespaces held by file descriptor: open and validate, identify, run a closure
//! inside one or inside a fresh one, per-namespace sysctls.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sched::CloneFlags;
use nix::sys::stat::fstat;
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

use crate::{Error, InvalidArg};

/// The calling thread's own network namespace. Never `/proc/self/...`, which names the
/// namespace of the thread-group leader.
pub const THREAD_SELF_NETNS: &str = "/proc/thread-self/ns/net";

/// `ioctl(NS_GET_NSTYPE)` (linux/nsfs.h, `_IO(0xb7, 0x3)`): the CLONE_NEW* type of a namespace
/// fd.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// The identity of a network namespace: the device and inode of its nsfs file. Two paths name
/// the same namespace exactly when their ids are equal. Displays as the kernel names it,
/// `net:[4026531840]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NsId {
    dev: u64,
    ino: u64,
}

impl NsId {
    /// The id of the calling thread's network namespace.
    pub fn current() -> Result<NsId, Error> {
        let m = std::fs::metadata(THREAD_SELF_NETNS).map_err(|e| {
            Error::io(
                format!("stat our own network namespace {THREAD_SELF_NETNS}"),
                e,
            )
        })?;
        Ok(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The namespace's inode number (what `ip netns identify` and `/proc/*/ns/net` show).
    pub fn inode(self) -> u64 {
        self.ino
    }
}

impl fmt::Display for NsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

/// A network namespace, held open by a file descriptor (which keeps it alive), plus the path it
/// was opened from (used in messages).
///
/// The only way to get one is [`Netns::open`] (or [`Netns::current`], [`Netns::try_clone`]), so
/// a `Netns` always is a network namespace.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// Opens a network namespace file, e.g. `/run/netns/x` or `/proc/<pid>/ns/net`, and checks
    /// that it is one: a file on nsfs whose namespace type (`NS_GET_NSTYPE`) is
    /// `CLONE_NEWNET`.
    ///
    /// The open never blocks (`O_NONBLOCK`: a FIFO given as a namespace path would otherwise
    /// block forever) and never acquires a controlling terminal (`O_NOCTTY`); neither flag
    /// matters to an nsfs file. Namespace files lived on procfs before Linux 3.19, but
    /// `NS_GET_NSTYPE` (4.11) only exists on nsfs, so nsfs is required.
    ///
    /// A missing path gives [`Error::NotFound`]; anything else that is not a network namespace
    /// gives [`Error::NotANetns`].
    pub fn open(path: &Path) -> Result<Netns, Error> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Error::NotFound {
                        path: path.to_path_buf(),
                    }
                } else {
                    Error::io(format!("open network namespace {}", path.display()), e)
                }
            })?;
        check_is_netns(&file, path)?;
        Ok(Netns {
            fd: file.into(),
            path: path.to_path_buf(),
        })
    }

    /// The calling thread's network namespace (`/proc/thread-self/ns/net`).
    pub fn current() -> Result<Netns, Error> {
        Netns::open(Path::new(THREAD_SELF_NETNS))
    }

    /// A second handle on the same namespace (a duplicate of the fd).
    pub fn try_clone(&self) -> Result<Netns, Error> {
        let fd = self.fd.try_clone().map_err(|e| {
            Error::io(
                format!(
                    "duplicate the fd of network namespace {}",
                    self.path.display()
                ),
                e,
            )
        })?;
        Ok(Netns {
            fd,
            path: self.path.clone(),
        })
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace fd, e.g. for moving a link there or a peer's `IFLA_NET_NS_FD`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The namespace's identity (nsfs device and inode).
    pub fn id(&self) -> Result<NsId, Error> {
        let st = fstat(&self.fd)
            .map_err(|e| Error::io(format!("stat network namespace {}", self.path.display()), e))?;
        Ok(NsId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Whether both handles refer to the same namespace.
    pub fn same_as(&self, other: &Netns) -> Result<bool, Error> {
        Ok(self.id()? == other.id()?)
    }

    /// Whether this is the calling thread's own namespace (a plugin must refuse to configure
    /// "the container" when CNI_NETNS is its own namespace).
    pub fn is_current(&self) -> Result<bool, Error> {
        Ok(self.id()? == NsId::current()?)
    }

    /// Runs `f` inside this namespace, on the calling thread: `setns(2)` into it, `f`, and
    /// `setns(2)` back to the thread's own namespace (held by an fd opened first). No thread is
    /// spawned, so a short-lived process pays four system calls instead of a thread's thirty,
    /// and neither a pids limit nor RLIMIT_AS can refuse it a thread. Only the calling thread
    /// moves (network namespaces are per thread); sockets opened inside stay bound to this
    /// namespace. If `f` panics, unwinding takes the thread back. If the way back itself fails
    /// (it needs nothing the way in did not), the error says so and the thread is left here.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Error> {
        let home = Home::open()?;
        self.enter()?;
        home.back_after(f)
    }

    /// Moves the calling thread into this namespace for the rest of its life: `setns(2)` on the
    /// caller, no way back. Only for a process that has nothing left to do in its own
    /// namespace (the `loopback` plugin: all its work is inside the container); it saves the
    /// two system calls [`Netns::run`] spends on the way back. Anything else uses
    /// [`Netns::run`].
    pub fn enter(&self) -> Result<(), Error> {
        setns_net(self.fd.as_fd()).map_err(|e| {
            Error::io(
                format!("enter network namespace {}", self.path.display()),
                e,
            )
        })
    }

    /// Runs `f` on the calling thread in a fresh, empty network namespace (only `lo`, down),
    /// then returns the thread to its own namespace as [`Netns::run`] does; the fresh one
    /// disappears with the last socket opened in it. A place to probe what the kernel supports
    /// without touching any real namespace. Needs CAP_SYS_ADMIN.
    pub fn in_fresh<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
        let home = Home::open()?;
        #[allow(clippy::disallowed_methods)] // the one place that creates a namespace
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::io("create a fresh network namespace", e))?;
        home.back_after(f)
    }

    /// Makes `cmd` enter this namespace in the child, between fork and exec (this process and
    /// its threads stay where they are). The command holds its own duplicate of the fd, so it
    /// may outlive `self`.
    pub fn enter_before_exec(&self, cmd: &mut Command) -> Result<(), Error> {
        let fd = self.try_clone()?.fd;
        // SAFETY: the hook runs in the child between fork and exec and only calls setns(2),
        // which is async-signal-safe, on an fd the closure owns; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || setns_net(fd.as_fd()).map_err(io::Error::from));
        }
        Ok(())
    }

    /// Reads a sysctl inside this namespace. `key` is a path below `/proc/sys`
    /// (`net/ipv6/conf/eth0/accept_dad`) or dotted (`net.ipv6.conf.eth0.accept_dad`; an interface
    /// name containing dots needs the slash form). Only `net/...` keys are accepted, since other
    /// sysctls are not per network namespace. The value is returned without its trailing newline.
    pub fn sysctl_get(&self, key: &str) -> Result<String, Error> {
        let path = sysctl_path(key)?;
        self.run(|| read_sysctl(&path))?.map_err(|e| {
            Error::io(
                format!("read sysctl {key} in netns {}", self.path.display()),
                e,
            )
        })
    }

    /// Writes a sysctl inside this namespace (see [`Netns::sysctl_get`] for `key`).
    pub fn sysctl_set(&self, key: &str, value: &str) -> Result<(), Error> {
        let path = sysctl_path(key)?;
        self.run(|| std::fs::write(&path, value.as_bytes()))?
            .map_err(|e| {
                Error::io(
                    format!(
                        "write sysctl {key}={value} in netns {}",
                        self.path.display()
                    ),
                    e,
                )
            })
    }
}

/// Reads a sysctl of the calling thread's own network namespace, without entering anything
/// (`/proc/sys/net` shows the namespace of the thread that opens it); `key` as for
/// [`Netns::sysctl_get`].
pub fn sysctl_get(key: &str) -> Result<String, Error> {
    let path = sysctl_path(key)?;
    read_sysctl(&path)
        .map_err(|e| Error::io(format!("read sysctl {key} in our own network namespace"), e))
}

/// Writes a sysctl of the calling thread's own network namespace (see [`sysctl_get`]).
pub fn sysctl_set(key: &str, value: &str) -> Result<(), Error> {
    let path = sysctl_path(key)?;
    std::fs::write(&path, value.as_bytes()).map_err(|e| {
        Error::io(
            format!("write sysctl {key}={value} in our own network namespace"),
            e,
        )
    })
}

fn read_sysctl(path: &Path) -> io::Result<String> {
    let value = std::fs::read_to_string(path)?;
    Ok(value.trim_end_matches('\n').to_string())
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The checks of [`Netns::open`] on an opened file.
fn check_is_netns(file: &File, path: &Path) -> Result<(), Error> {
    let not = |reason: String| Error::NotANetns {
        path: path.to_path_buf(),
        reason,
    };
    let fs = fstatfs(file)
        .map_err(|e| Error::io(format!("statfs network namespace {}", path.display()), e))?;
    let magic = fs.filesystem_type();
    if magic != NSFS_MAGIC {
        return Err(not(format!(
            "it is on a filesystem with magic {:#x}, not nsfs",
            magic.0
        )));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor, which is valid.
    let nstype = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if nstype < 0 {
        let e = io::Error::last_os_error();
        return Err(not(format!("not a namespace file ({e})")));
    }
    if nstype != libc::CLONE_NEWNET {
        return Err(not(format!(
            "namespace type {nstype:#x} is not CLONE_NEWNET"
        )));
    }
    Ok(())
}

/// The calling thread's own network namespace, held open while [`Netns::run`] or
/// [`Netns::in_fresh`] takes the thread elsewhere: [`Home::back_after`] returns it there, and
/// so does dropping an armed `Home` (unwinding out of the closure).
struct Home {
    fd: OwnedFd,
    armed: bool,
}

impl Home {
    fn open() -> Result<Home, Error> {
        let file = File::open(THREAD_SELF_NETNS)
            .map_err(|e| Error::io("open our own network namespace", e))?;
        Ok(Home {
            fd: file.into(),
            armed: true,
        })
    }

    /// Runs `f` where the thread now is, then takes it home.
    fn back_after<T>(mut self, f: impl FnOnce() -> T) -> Result<T, Error> {
        let out = f();
        self.armed = false;
        self.enter().map_err(|e| {
            Error::io(
                "return to our own network namespace (this thread is left in another one)",
                e,
            )
        })?;
        Ok(out)
    }

    fn enter(&self) -> nix::Result<()> {
        setns_net(self.fd.as_fd())
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.enter();
        }
    }
}

/// `setns(fd, CLONE_NEWNET)` on the calling thread: the one place that enters a network
/// namespace (async-signal-safe: [`Netns::enter_before_exec`] calls it between fork and exec).
fn setns_net(fd: BorrowedFd<'_>) -> nix::Result<()> {
    #[allow(clippy::disallowed_methods)] // the one place that enters a namespace
    nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)
}

/// Maps a sysctl key to its `/proc/sys` path, refusing anything outside `net/`.
fn sysctl_path(key: &str) -> Result<PathBuf, Error> {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let parts: Vec<&str> = rel.split('/').collect();
    let bad_part = parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..");
    if bad_part || parts.len() < 2 || parts.first() != Some(&"net") {
        return Err(InvalidArg::new(
            "sysctl key",
            key,
            "expected net/<...> or net.<...> without empty, . or .. components",
        )
        .into());
    }
    Ok(Path::new("/proc/sys").join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/arp_notify").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/arp_notify")
        );
        for bad in [
            "kernel.hostname",
            "net/../kernel/x",
            "/net/ipv4/ip_forward",
            "net",
            "",
        ] {
            let err = sysctl_path(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid(InvalidArg {
                        field: "sysctl key",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn open_errors() {
        let err = Netns::open(Path::new("/run/netns/definitely-not-here-h1")).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        assert!(err.is_not_found());
        assert!(err.to_string().contains("definitely-not-here-h1"), "{err}");
        for path in ["/etc/hostname", "/dev/null", "/proc/self/status", "/"] {
            let err = Netns::open(Path::new(path)).unwrap_err();
            assert!(matches!(err, Error::NotANetns { .. }), "{path}: {err}");
            assert!(err.to_string().contains("not a network namespace"), "{err}");
        }
        // a namespace file, but of another type
        let err = Netns::open(Path::new("/proc/thread-self/ns/uts")).unwrap_err();
        assert!(
            matches!(&err, Error::NotANetns { reason, .. } if reason.contains("CLONE_NEWNET")),
            "{err}"
        );
    }

    /// Regression (tests/netns/tests/invocation): a FIFO as a namespace path blocked open(2) forever.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("netns-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("netns");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let probe = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Netns::open(&probe).map(drop));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("Netns::open blocked on a FIFO");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(got, Err(Error::NotANetns { .. })), "{got:?}");
    }

    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn current_is_current() {
        let ns = Netns::current().unwrap();
        assert!(ns.is_current().unwrap());
        assert_eq!(ns.path(), Path::new(THREAD_SELF_NETNS));
        let id = ns.id().unwrap();
        assert_eq!(id, NsId::current().unwrap());
        let link = std::fs::read_link(THREAD_SELF_NETNS).unwrap();
        assert_eq!(id.to_string(), link.display().to_string());
        // run() on the current namespace sees the same namespace
        let inner = ns.run(|| ns.is_current().unwrap());
        assert!(inner.unwrap());
        let twin = ns.try_clone().unwrap();
        assert!(twin.same_as(&ns).unwrap());
        assert_eq!(twin.path(), ns.path());
    }

    /// The caller's own sysctls, read directly and through run() into the caller's own
    /// namespace, agree; a missing one is "not found"; keys outside `net/` are refused.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn own_sysctls() {
        let direct = sysctl_get("net.ipv4.ip_forward").unwrap();
        assert!(direct == "0" || direct == "1", "{direct:?}");
        let entered = Netns::current().unwrap().sysctl_get("net/ipv4/ip_forward");
        assert_eq!(entered.unwrap(), direct);
        let e = sysctl_get("net.ipv4.conf.nosuchdev0.forwarding").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("nosuchdev0"), "{e}");
        let e = sysctl_set("kernel.hostname", "x").unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
    }

    /// run() takes the thread into the namespace and back; a panic inside takes it back too;
    /// in_fresh() is somewhere else, and afterwards the thread is home.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn run_and_in_fresh_come_back() {
        let home = NsId::current().unwrap();
        let fresh = Netns::in_fresh(|| NsId::current().unwrap()).unwrap();
        assert_ne!(fresh, home);
        assert_eq!(NsId::current().unwrap(), home);
        let other = Netns::in_fresh(|| Netns::current().unwrap()).unwrap();
        assert_eq!(
            other.run(|| NsId::current().unwrap()).unwrap(),
            other.id().unwrap()
        );
        assert_eq!(NsId::current().unwrap(), home);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            other.run(|| panic!("inside")).unwrap();
        }));
        assert!(caught.is_err());
        assert_eq!(NsId::current().unwrap(), home, "unwinding brought it back");
        // nested: the inner run returns to the outer namespace, not to the thread's home
        let inner_then_outer = other
            .run(|| {
                let inner = Netns::current().unwrap();
                let seen = other.run(|| NsId::current().unwrap()).unwrap();
                (seen, inner.is_current().unwrap())
            })
            .unwrap();
        assert_eq!(inner_then_outer, (other.id().unwrap(), true));
        assert_eq!(NsId::current().unwrap(), home);
    }
}
