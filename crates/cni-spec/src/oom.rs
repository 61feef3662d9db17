//! Allocation failure as a CNI error, not a crash.
//!
//! Rust's default reaction to a failed allocation is to print "memory allocation of N bytes
//! failed" on stderr and abort (SIGABRT): the runtime then sees a killed plugin and an empty
//! stdout. Every plugin binary's allocator ([`main!`](crate::main) installs it) is the
//! system allocator wrapped so that a failed allocation instead writes one CNI error object,
//! code 11 ("try again later": the node is short of memory, or the runtime's RLIMIT_AS is too
//! small), on stdout and ends the process with status 1, without allocating: the object is
//! assembled in a fixed buffer on the stack and written with `write(2)`, the process ends with
//! `_exit(2)`.
//!
//! The error is reported in the config's `cniVersion` once the dispatcher has read it
//! ([`set_reported_version`]), in the latest version before that. Nothing is rolled back: undoing
//! an ADD needs memory too. What an ADD changed before memory ran out stays until the runtime's
//! DEL (which a runtime sends after a failed ADD, and which never fails because something is
//! already gone).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::SpecVersion;

/// The system allocator, with allocation failure turned into a CNI error (see the module).
pub struct ExitOnOom;

// SAFETY: every method forwards to `System` with the caller's arguments; on failure the
// process ends instead of returning null, which no caller can observe.
unsafe impl GlobalAlloc for ExitOnOom {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}

/// Index into [`SpecVersion::ALL`] of the version errors are reported in, plus one (0: the
/// latest, before the config was read).
static REPORTED: AtomicU8 = AtomicU8::new(0);

/// The version an out-of-memory error is reported in from now on (the config's).
pub fn set_reported_version(v: SpecVersion) {
    if let Some(i) = SpecVersion::ALL.iter().position(|x| *x == v) {
        REPORTED.store(u8::try_from(i + 1).unwrap_or(0), Ordering::Relaxed);
    }
}

fn reported_version() -> &'static str {
    let i = usize::from(REPORTED.load(Ordering::Relaxed));
    i.checked_sub(1)
        .and_then(|i| SpecVersion::ALL.get(i))
        .copied()
        .unwrap_or(SpecVersion::LATEST)
        .as_str()
}

/// The error object for a failed allocation of `size` bytes, written into `buf`; returns its
/// length (with the trailing newline).
fn error_object(buf: &mut [u8; 160], size: usize) -> usize {
    let mut n = 0;
    let mut put = |s: &[u8]| {
        let end = (n + s.len()).min(buf.len());
        buf[n..end].copy_from_slice(&s[..end - n]);
        n = end;
    };
    put(b"{\"cniVersion\":\"");
    put(reported_version().as_bytes());
    put(b"\",\"code\":11,\"msg\":\"out of memory: allocating ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" bytes failed (RLIMIT_AS or the node's memory)\"}\n");
    n
}

/// Writes the error object on stdout and ends the process with status 1; allocates nothing.
#[cold]
fn out_of_memory(size: usize) -> ! {
    let mut buf = [0u8; 160];
    let len = error_object(&mut buf, size);
    let mut off = 0;
    while off < len {
        // SAFETY: writes initialised bytes of a live stack buffer to fd 1.
        let w = unsafe { libc::write(1, buf[off..len].as_ptr().cast(), len - off) };
        if w <= 0 {
            break;
        }
        off += w as usize;
    }
    // SAFETY: ends the process without running anything that could allocate.
    unsafe { libc::_exit(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_object_is_json_in_the_reported_version() {
        let mut buf = [0u8; 160];
        let n = error_object(&mut buf, 123_456);
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap_or_default();
        assert_eq!(buf[n - 1], b'\n');
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["code"], 11);
        assert_eq!(
            v["msg"],
            "out of memory: allocating 123456 bytes failed (RLIMIT_AS or the node's memory)"
        );
        set_reported_version(SpecVersion::V0_4_0);
        let n = error_object(&mut buf, usize::MAX);
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap_or_default();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert!(
            v["msg"]
                .as_str()
                .unwrap_or_default()
                .contains("allocating 18446744073709551615 bytes")
        );
        set_reported_version(SpecVersion::LATEST);
    }
}
