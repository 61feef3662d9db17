//! Persistent TAP devices through `/dev/net/tun`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

use crate::link::check_name;
use crate::{Error, Handle};

/// Fail instead of attaching when the device already exists.
const IFF_TUN_EXCL: libc::c_int = 0x8000;

/// Creates a persistent TAP device `name` owned by `uid`/`gid` (`IFF_TAP | IFF_NO_PI |
/// IFF_ONE_QUEUE`, plus `IFF_VNET_HDR` when `vnet_hdr`), then sets its MTU if given.
///
/// The device is created in the **calling thread's** network namespace: to create it in a
/// container, call it inside [`netns::Netns::run`]. An existing device of that name gives an
/// error with errno EEXIST ([`Error::is_exists`]).
pub fn create_tap(
    name: &str,
    uid: u32,
    gid: u32,
    vnet_hdr: bool,
    mtu: Option<u32>,
) -> Result<(), Error> {
    check_name(name)?;
    let op = |what: &str| format!("{what} tap {name}");
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| Error::io(op("open /dev/net/tun to create"), e))?;
    let fd = tun.as_raw_fd();

    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_ONE_QUEUE | IFF_TUN_EXCL;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    // the flags field is a C short; IFF_TUN_EXCL is its sign bit
    ifr.ifr_ifru.ifru_flags = flags as u16 as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `ifr` is; the fd is open.
    if unsafe { libc::ioctl(fd, libc::TUNSETIFF, &mut ifr) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EBUSY) {
            return Err(Error::io(
                op("create"),
                io::Error::from_raw_os_error(libc::EEXIST),
            ));
        }
        return Err(Error::io(op("create (TUNSETIFF)"), e));
    }
    let set = |req: libc::Ioctl, value: libc::c_ulong, what: &str| -> Result<(), Error> {
        // SAFETY: these TUNSET* requests take an integer argument by value.
        if unsafe { libc::ioctl(fd, req, value) } < 0 {
            return Err(Error::io(op(what), io::Error::last_os_error()));
        }
        Ok(())
    };
    set(
        libc::TUNSETOWNER,
        libc::c_ulong::from(uid),
        &format!("set owner {uid} of"),
    )?;
    set(
        libc::TUNSETGROUP,
        libc::c_ulong::from(gid),
        &format!("set group {gid} of"),
    )?;
    // Until this succeeds, closing the fd removes the device again.
    set(libc::TUNSETPERSIST, 1, "make persistent")?;
    drop(tun);

    if let Some(mtu) = mtu {
        let result = (|| {
            let mut h = Handle::current()?;
            match h.link_by_name(name)? {
                Some(link) => h.set_mtu(link.index, mtu),
                None => Err(Error::io(
                    op("find new"),
                    io::Error::from_raw_os_error(libc::ENODEV),
                )),
            }
        })();
        if let Err(e) = result {
            let _ = delete_tap(name);
            return Err(e);
        }
    }
    Ok(())
}

/// Deletes a persistent TAP device in the calling thread's namespace (via netlink).
pub fn delete_tap(name: &str) -> Result<(), Error> {
    let mut h = Handle::current()?;
    match h.link_by_name(name)? {
        Some(link) => h.delete_link(link.index),
        None => Err(Error::io(
            format!("delete tap {name}"),
            io::Error::from_raw_os_error(libc::ENODEV),
        )),
    }
}
