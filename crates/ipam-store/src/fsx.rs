//! Directory-relative file operations that never follow symlinks.
//!
//! Every name passed here is a single path component chosen by the store (an IP text, `lock`,
//! `last_reserved_ip.N`, an escaped owner-index name, a temp name); all operations go through
//! the directory's fd (`openat`, `linkat`, `renameat`, `unlinkat`, `fstatat`) with `O_NOFOLLOW`
//! / `AT_SYMLINK_NOFOLLOW`, so a symlink planted in the store is never followed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, fstatat, futimens, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{UnlinkatFlags, fsync, linkat, unlinkat};

use crate::error::Error;

/// Prefix of temporary files (never a valid IP text).
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// An open directory of the store.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// One directory entry.
pub(crate) struct Entry {
    /// The name, or its raw bytes when it is not UTF-8.
    pub(crate) name: Result<String, Vec<u8>>,
    /// The inode number (`d_ino`, free with the listing).
    pub(crate) ino: u64,
}

/// A modification time as the file system stores it: seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mtime {
    pub(crate) sec: i64,
    pub(crate) nsec: i64,
}

fn file_mode() -> Mode {
    Mode::from_bits_truncate(0o600)
}

fn dir_mode() -> Mode {
    Mode::from_bits_truncate(0o700)
}

/// A fresh temp name `.tmp-<pid>-<n>`, unique within this process.
pub(crate) fn tmp_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Dir {
    /// Opens `name` under `parent` (an absolute or relative path that may itself contain
    /// symlinks), creating it with mode 0700 when missing; `name` itself must not be a symlink.
    pub(crate) fn open_under(parent: &Path, name: &str) -> Result<Dir, Error> {
        let pfd = nix::fcntl::open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open directory", parent.to_path_buf(), e.into()))?;
        let parent = Dir {
            fd: pfd,
            path: parent.to_path_buf(),
        };
        parent.subdir(name)
    }

    /// The directory's path (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Path of `name` in this directory (for messages).
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens (creating with 0700 when missing) the subdirectory `name`, without following a
    /// symlink. An existing directory keeps its mode.
    pub(crate) fn subdir(&self, name: &str) -> Result<Dir, Error> {
        let path = self.join(name);
        match mkdirat(self.fd.as_fd(), name, dir_mode()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::io("create directory", path, e.into())),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => Ok(Dir { fd, path }),
            Err(Errno::ELOOP) => Err(Error::Corrupt {
                path,
                reason: "is a symbolic link; the store never follows symlinks".into(),
            }),
            Err(Errno::ENOTDIR) => {
                let reason = match self.is_symlink(name) {
                    Ok(true) => "is a symbolic link; the store never follows symlinks",
                    _ => "is not a directory",
                };
                Err(Error::Corrupt {
                    path,
                    reason: reason.into(),
                })
            }
            Err(e) => Err(Error::io("open directory", path, e.into())),
        }
    }

    /// The directory's `(device, inode)`.
    pub(crate) fn identity(&self) -> io::Result<(u64, u64)> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())?;
        Ok((st.st_dev as u64, st.st_ino as u64))
    }

    fn is_symlink(&self, name: &str) -> io::Result<bool> {
        let st = fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    }

    /// Opens `name` read-only, creating it empty (0600) when missing; for the lock file. Only
    /// a regular file is accepted: O_NONBLOCK keeps a FIFO planted there from blocking the
    /// open forever (found by fuzzing, `fuzz/regressions/ipam_store/fifo-lock`).
    pub(crate) fn open_or_create(&self, name: &str) -> io::Result<OwnedFd> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK;
        let fd = openat(self.fd.as_fd(), name, flags, file_mode())?;
        let st = fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is not a regular file",
            ));
        }
        Ok(fd)
    }

    /// Reads `name` (at most `limit` bytes); `Ok(None)` when it does not exist.
    pub(crate) fn read_small(&self, name: &str, limit: usize) -> io::Result<Option<Vec<u8>>> {
        // O_NONBLOCK: a FIFO planted in the store must not block us.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        read_bounded(fd, limit, 128).map(Some)
    }

    /// Whether an entry `name` exists (any type; symlinks are not followed).
    pub(crate) fn exists(&self, name: &str) -> io::Result<bool> {
        match fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The inode of entry `name` (symlinks not followed); `Ok(None)` when it does not exist.
    pub(crate) fn ino_of(&self, name: &str) -> io::Result<Option<u64>> {
        match fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st.st_ino)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `name` (which must not exist) with mode 0600 and `content`; fsyncs it when
    /// `sync`.
    pub(crate) fn create_new(&self, name: &str, content: &[u8], sync: bool) -> io::Result<()> {
        self.create_file(name, content, sync).map(drop)
    }

    /// [`Dir::create_new`], returning the new file's inode number.
    pub(crate) fn create_new_ino(&self, name: &str, content: &[u8], sync: bool) -> io::Result<u64> {
        let f = self.create_file(name, content, sync)?;
        match fstat(f.as_fd()) {
            Ok(st) => Ok(st.st_ino),
            Err(e) => {
                let _ = self.unlink(name);
                Err(e.into())
            }
        }
    }

    fn create_file(&self, name: &str, content: &[u8], sync: bool) -> io::Result<File> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(self.fd.as_fd(), name, flags, file_mode())?;
        let mut f = File::from(fd);
        let written = f
            .write_all(content)
            .and_then(|()| if sync { f.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // A full file system fails the write after the create succeeded: never leave the
            // empty or partial file behind (found by tests/netns/tests/ipam/store_faults.rs, full store).
            let _ = self.unlink(name);
            return Err(e);
        }
        Ok(f)
    }

    /// Opens the regular file `name` read-only, with its `fstat`; `Ok(None)` when it does not
    /// exist. O_NONBLOCK: a FIFO planted in the store must not block us; anything but a
    /// regular file is refused.
    fn open_regular(&self, name: &str) -> io::Result<Option<(OwnedFd, libc::stat)>> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let st = fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is not a regular file",
            ));
        }
        Ok(Some((fd, st)))
    }

    /// The last `limit` bytes (or fewer) of the regular file `name`; `Ok(None)` when it does
    /// not exist.
    pub(crate) fn read_tail(&self, name: &str, limit: usize) -> io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        let Some((fd, st)) = self.open_regular(name)? else {
            return Ok(None);
        };
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let start = size.saturating_sub(limit as u64);
        let mut buf = vec![0u8; usize::try_from(size - start).unwrap_or(0)];
        let n = File::from(fd).read_at(&mut buf, start)?;
        buf.truncate(n);
        Ok(Some(buf))
    }

    /// The directory's own modification time (one `fstat`).
    pub(crate) fn mtime(&self) -> io::Result<Mtime> {
        let st = fstat(self.fd.as_fd())?;
        Ok(Mtime {
            sec: st.st_mtime,
            nsec: st.st_mtime_nsec,
        })
    }

    /// Sets the directory's modification time (`futimens`; the access time is left alone) and
    /// returns it as stored, which a file system with coarse timestamps truncates.
    pub(crate) fn set_mtime(&self, to: Mtime) -> io::Result<Mtime> {
        futimens(
            self.fd.as_fd(),
            &TimeSpec::UTIME_OMIT,
            &TimeSpec::new(to.sec, to.nsec),
        )?;
        self.mtime()
    }

    /// Appends `content` to `name` (created 0600 when missing) with one `write(2)`.
    pub(crate) fn append(&self, name: &str, content: &[u8], sync: bool) -> io::Result<()> {
        // O_NONBLOCK: a FIFO planted in the store fails (ENXIO) instead of blocking us.
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_APPEND
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK;
        let fd = openat(self.fd.as_fd(), name, flags, file_mode())?;
        let mut f = File::from(fd);
        f.write_all(content)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    /// Overwrites `name` in place (created 0600 when missing): `pwrite` at offset 0, then
    /// truncate to the new length. No new inode and no truncate-to-zero (which makes ext4
    /// flush on close); a crash in between can leave a stale tail, so use it only for hints
    /// such as `last_reserved_ip.N`. A symlink in the way is replaced, not followed.
    pub(crate) fn overwrite(&self, name: &str, content: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        // O_NONBLOCK: a FIFO planted in the store fails (ENXIO) instead of blocking us.
        let flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => {
                let f = File::from(fd);
                f.write_all_at(content, 0)?;
                f.set_len(content.len() as u64)
            }
            Err(Errno::ENOENT) => self.create_new(name, content, false),
            Err(Errno::ELOOP) => {
                self.unlink(name)?;
                self.create_new(name, content, false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Atomically replaces `name` with `content`: write a temp file, then `renameat` over
    /// `name` (replacing a symlink or hard link rather than writing through it).
    pub(crate) fn replace(&self, name: &str, content: &[u8], sync: bool) -> io::Result<()> {
        let tmp = tmp_name();
        let r = self.create_new(&tmp, content, sync).and_then(|()| {
            Ok(renameat(
                self.fd.as_fd(),
                tmp.as_str(),
                self.fd.as_fd(),
                name,
            )?)
        });
        if r.is_err() {
            let _ = self.unlink(&tmp);
        }
        r
    }

    /// Hard-links `from` to the new name `to`; `Ok(false)` when `to` already exists.
    pub(crate) fn link(&self, from: &str, to: &str) -> io::Result<bool> {
        match linkat(self.fd.as_fd(), from, self.fd.as_fd(), to, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the file `name`; `Ok(false)` when it did not exist.
    pub(crate) fn unlink(&self, name: &str) -> io::Result<bool> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Flushes the directory itself (new and removed names) to disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(fsync(self.fd.as_fd())?)
    }

    /// Reads the whole regular file `name` into a buffer sized by `fstat` (at most `limit`
    /// bytes); `Ok(None)` when it does not exist.
    pub(crate) fn read_all(&self, name: &str, limit: usize) -> io::Result<Option<Vec<u8>>> {
        let Some((fd, st)) = self.open_regular(name)? else {
            return Ok(None);
        };
        let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        if size > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ));
        }
        read_bounded(fd, limit, size + 1).map(Some)
    }

    /// The raw `getdents64` records of the whole directory in one buffer (see [`dirent_at`]):
    /// no allocation per entry, and usually one system call (the buffer is sized from the
    /// directory's size).
    pub(crate) fn read_dirents(&self) -> io::Result<Vec<u8>> {
        let fd = openat(
            self.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let size = usize::try_from(fstat(fd.as_fd())?.st_size).unwrap_or(0);
        // Zeroed: the kernel writes each name's terminating NUL but not the padding after
        // it, which [`dirent_at`] reads.
        let mut buf = vec![0u8; size.saturating_add(size / 2).max(32 * 1024)];
        let mut filled = 0;
        loop {
            if buf.len() - filled < 4096 {
                buf.resize(buf.len() * 2, 0);
            }
            let spare = &mut buf[filled..];
            // SAFETY: getdents64 writes at most `spare.len()` bytes into `spare`, which stays
            // borrowed for the call; `fd` is an open directory.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    spare.as_mut_ptr(),
                    spare.len(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                buf.truncate(filled);
                return Ok(buf);
            }
            filled += usize::try_from(n).unwrap_or(0).min(spare.len());
        }
    }

    /// All entries except `.` and `..` (one readdir pass).
    pub(crate) fn list(&self) -> io::Result<Vec<Entry>> {
        let mut d = nix::dir::Dir::openat(
            self.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e?;
            let bytes = e.file_name().to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = match std::str::from_utf8(bytes) {
                Ok(s) => Ok(s.to_string()),
                Err(_) => Err(bytes.to_vec()),
            };
            out.push(Entry { name, ino: e.ino() });
        }
        Ok(out)
    }
}

/// The entry of a [`Dir::read_dirents`] buffer at or after byte `at`, `.` and `..` left out:
/// `(name, inode, where the next record starts)`, the name borrowed from the buffer. `None` at
/// the end, or at a truncated or malformed record.
#[inline]
pub(crate) fn dirent_at(buf: &[u8], mut at: usize) -> Option<(&[u8], u64, usize)> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const NAME: usize = 19;
    loop {
        let rec = buf.get(at..at.checked_add(NAME)?)?;
        let ino = u64::from_ne_bytes(rec[..8].try_into().ok()?);
        let reclen = usize::from(u16::from_ne_bytes(rec[16..18].try_into().ok()?));
        if reclen <= NAME {
            return None;
        }
        let mut name = buf.get(at + NAME..at + reclen)?;
        at += reclen;
        // The name is NUL-terminated and padded with NULs to the record's end: strip them
        // from the back (at most 8 bytes; a name never holds a NUL).
        while let [rest @ .., 0] = name {
            name = rest;
        }
        if name != b"." && name != b".." {
            return Some((name, ino, at));
        }
    }
}

/// Reads `fd` to its end into a buffer of initial capacity `cap`; more than `limit` bytes is
/// an error (the file grew, or is not what it claims to be).
fn read_bounded(fd: OwnedFd, limit: usize, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(cap);
    let n = File::from(fd)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)?;
    if n > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Regression (fuzz/regressions/ipam_store/fifo-lock): a FIFO in the store made the lock
    /// open, an index append and the hint overwrite block forever.
    #[test]
    fn a_fifo_in_the_store_never_blocks() {
        let base = std::env::temp_dir().join(format!("ipam-fsx-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let dir = Dir::open_under(&base, "net").unwrap();
        for name in ["lock", "bucket", "hint"] {
            let c = std::ffi::CString::new(base.join("net").join(name).to_str().unwrap()).unwrap();
            // SAFETY: mkfifo reads a NUL-terminated path we own.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let t = Instant::now();
        std::thread::spawn(move || {
            let lock = dir.open_or_create("lock").map(drop);
            let append = dir.append("bucket", b"+ x\n", false);
            let overwrite = dir.overwrite("hint", b"10.0.0.2");
            let read = dir.read_small("bucket", 16).map(|b| b.map(|b| b.len()));
            let _ = tx.send((lock, append, overwrite, read));
        });
        let (lock, append, overwrite, read) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("an operation on a FIFO blocked");
        assert_eq!(lock.unwrap_err().to_string(), "is not a regular file");
        assert_eq!(append.unwrap_err().raw_os_error(), Some(libc::ENXIO));
        assert_eq!(overwrite.unwrap_err().raw_os_error(), Some(libc::ENXIO));
        assert_eq!(read.unwrap(), Some(0));
        assert!(t.elapsed() < Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&base);
    }
}
