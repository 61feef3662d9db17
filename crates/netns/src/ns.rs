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
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sched::{CloneFlags, CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
use nix::sys::stat::fstat;
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};
use nix::unistd::Pid;

use crate::{Error, InvalidArg};

/// The calling thread's own network namespace. Never `/proc/self/...`, which names the
/// namespace of the thread-group leader.
pub const THREAD_SELF_NETNS: &str = "/proc/thread-self/ns/net";

/// `ioctl(NS_GET_NSTYPE)` (linux/nsfs.h, `_IO(0xb7, 0x3)`): the CLONE_NEW* type of a namespace
/// fd.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;

/// Whether [`Netns::run`] and [`Netns::in_fresh`] pin the calling thread to its CPU while their
/// short-lived thread runs ([`set_cpu_pinning`]).
static PIN_CPU: AtomicBool = AtomicBool::new(false);

/// Opts the whole process in (or out) of CPU pinning around the short-lived threads of
/// [`Netns::run`] and [`Netns::in_fresh`]: while one runs, the calling thread is held on the CPU
/// it is on, so the new thread starts on the CPU its blocked parent frees instead of waiting
/// for a wake-up on another, busy one (on a loaded 2-CPU machine that wait dominated: 3.5 ms
/// p75 for spawn+join unpinned, 0.09 ms pinned). The caller's affinity is restored afterwards.
///
/// Off by default: a library must not change its caller's affinity unasked. A binary's entry
/// point that knows it is a short-lived, single-purpose process (a CNI plugin:
/// `cni_spec::main!`) turns it on.
pub fn set_cpu_pinning(on: bool) {
    PIN_CPU.store(on, Ordering::Relaxed);
}

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

    /// Runs `f` on a short-lived scoped thread that first enters this namespace; the thread
    /// exits afterwards, so no thread is ever left in the wrong namespace and the caller's
    /// thread never leaves its own. A panic in `f` is propagated to the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, Error> {
        on_short_thread(
            || format!("network namespace {}", self.path.display()),
            move || {
                self.enter()?;
                Ok(f())
            },
        )
    }

    /// Moves the calling thread into this namespace for the rest of its life: `setns(2)` on the
    /// caller, no thread. Only for a process that runs on that one thread and has nothing left
    /// to do in its own namespace (the `loopback` plugin: all its work is inside the container).
    /// It saves what [`Netns::run`] costs a short-lived process: a thread (its stack, a malloc
    /// arena, CPU pinning) and about 30 system calls. Anything else uses [`Netns::run`]: the
    /// main thread of a process that still has work to do in its own namespace never leaves it.
    pub fn enter(&self) -> Result<(), Error> {
        #[allow(clippy::disallowed_methods)] // the one place that enters a namespace
        nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::io(
                format!("enter network namespace {}", self.path.display()),
                e,
            )
        })
    }

    /// Runs `f` on a short-lived scoped thread in a fresh, empty network namespace (only `lo`,
    /// down), which disappears with the thread: a place to probe what the kernel supports
    /// without touching any real namespace. Needs CAP_SYS_ADMIN.
    pub fn in_fresh<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, Error> {
        on_short_thread(
            || "a fresh network namespace".to_string(),
            move || {
                #[allow(clippy::disallowed_methods)] // the one place that creates a namespace
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::io("create a fresh network namespace", e))?;
                Ok(f())
            },
        )
    }

    /// Makes `cmd` enter this namespace in the child, between fork and exec (this process and
    /// its threads stay where they are). The command holds its own duplicate of the fd, so it
    /// may outlive `self`.
    pub fn enter_before_exec(&self, cmd: &mut Command) -> Result<(), Error> {
        let fd = self.try_clone()?.fd;
        // SAFETY: the hook runs in the child between fork and exec and only calls setns(2),
        // which is async-signal-safe, on an fd the closure owns; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                #[allow(clippy::disallowed_methods)] // the one place that enters a namespace
                nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
            });
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

/// Runs `body` on a short-lived scoped thread and returns what it returns; `what` names the
/// namespace for the error when the thread cannot be spawned. A panic is propagated.
fn on_short_thread<T: Send>(
    what: impl FnOnce() -> String,
    body: impl FnOnce() -> Result<T, Error> + Send,
) -> Result<T, Error> {
    let _pin = CpuPin::if_enabled();
    heap_room_for_a_thread();
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .spawn_scoped(scope, body)
            .map_err(|e| Error::io(format!("spawn a thread for {}", what()), e))?;
        match thread.join() {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

/// Leaves room in the heap for a new thread's first allocation. glibc registers a thread's TLS
/// destructors (std registers one for every thread it starts) with a `calloc`, and aborts the
/// whole process when that fails, as it can under a tight RLIMIT_AS. A plugin process has one
/// malloc arena (`cni_spec::main!` sets M_ARENA_MAX to 1), so a block allocated and freed here,
/// larger than the per-thread cache keeps (1 KiB), is free in the arena the thread allocates
/// from; and if even this allocation fails, it fails here, where the allocator reports it as
/// a CNI error.
fn heap_room_for_a_thread() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(4096)));
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

/// Holds the calling thread on the CPU it runs on, when [`set_cpu_pinning`] asked for it, until
/// dropped; the previous affinity is then restored.
struct CpuPin(Option<CpuSet>);

impl CpuPin {
    fn if_enabled() -> CpuPin {
        if !PIN_CPU.load(Ordering::Relaxed) {
            return CpuPin(None);
        }
        let me = Pid::from_raw(0);
        let (Ok(saved), Ok(cpu)) = (sched_getaffinity(me), sched_getcpu()) else {
            return CpuPin(None);
        };
        let mut one = CpuSet::new();
        if one.set(cpu).is_err() || sched_setaffinity(me, &one).is_err() {
            return CpuPin(None);
        }
        CpuPin(Some(saved))
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = sched_setaffinity(Pid::from_raw(0), saved);
        }
    }
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

    /// The caller's own sysctls, read directly and through a thread that enters the caller's
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

    /// CPU pinning is opt-in: without it, running in a namespace leaves the caller's affinity
    /// alone; with it, the affinity is back as it was afterwards.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn cpu_pinning_is_opt_in_and_restored() {
        let me = Pid::from_raw(0);
        let before = sched_getaffinity(me).unwrap();
        let ns = Netns::current().unwrap();
        let count = |set: &CpuSet| {
            (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .count()
        };
        let inside = ns.run(|| sched_getaffinity(me).unwrap()).unwrap();
        assert_eq!(count(&inside), count(&before), "unasked, nothing is pinned");
        set_cpu_pinning(true);
        let pinned = ns.run(|| sched_getaffinity(me).unwrap());
        set_cpu_pinning(false);
        let after = sched_getaffinity(me).unwrap();
        assert_eq!(count(&after), count(&before), "affinity restored");
        if count(&before) > 1 {
            assert_eq!(
                count(&pinned.unwrap()),
                1,
                "opted in, the thread runs pinned"
            );
        }
    }
}
