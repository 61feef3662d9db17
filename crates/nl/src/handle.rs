//! The netlink socket: request/ACK, single-reply GETs and dumps.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use netns::{Netns, THREAD_SELF_NETNS};

use crate::Error;

/// How many times a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is restarted.
const DUMP_ATTEMPTS: usize = 5;
/// The receive buffer's initial capacity: the most the kernel puts in one dump datagram.
const RECV_BUF: usize = 32 * 1024;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// The attribute type bits of `nla_type` (without NLA_F_NESTED and NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// A failure before it is given its context (operation, interface, namespace).
#[derive(Debug)]
pub(crate) enum Raw {
    Kernel { errno: i32, ext: Option<String> },
    Io(io::Error),
    Decode(String),
}

impl Raw {
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            Raw::Kernel { errno, .. } => Some(*errno),
            Raw::Io(e) => e.raw_os_error(),
            Raw::Decode(_) => None,
        }
    }
}

/// A synchronous rtnetlink socket bound to the network namespace it was opened in.
///
/// Open it with [`Handle::current`] or [`Handle::open_in`]. Once open it may be used from
/// any thread: the kernel ties a netlink socket to the namespace of its creator, not of its user.
#[derive(Debug)]
pub struct Handle {
    sock: Socket,
    seq: u32,
    label: String,
    buf: Vec<u8>,
    restarts: u64,
}

impl Handle {
    /// Opens a socket in the calling thread's network namespace.
    pub fn current() -> Result<Handle, Error> {
        let label = std::fs::read_link(THREAD_SELF_NETNS)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| THREAD_SELF_NETNS.to_string());
        Handle::open(label)
    }

    /// Opens a socket inside `ns` (the calling thread enters it and comes back,
    /// [`Netns::run`]). The handle stays bound to that namespace, labelled with its path in
    /// messages, and can be used from any thread.
    pub fn open_in(ns: &Netns) -> Result<Handle, Error> {
        let sock = ns.run(Handle::socket)?.map_err(|e| {
            Error::io(
                format!("open rtnetlink socket in netns {}", ns.path().display()),
                e,
            )
        })?;
        Ok(Handle::from_socket(sock, ns.path().display().to_string()))
    }

    /// Moves the calling thread into `ns` for good ([`Netns::enter`]) and opens the socket
    /// there, without the thread of [`Handle::open_in`]. Only for a single-threaded process
    /// with nothing left to do in its own namespace (the `loopback` plugin).
    pub fn enter(ns: &Netns) -> Result<Handle, Error> {
        ns.enter()?;
        Handle::open(ns.path().display().to_string())
    }

    /// Opens a socket in the calling thread's namespace, labelled `label` in messages.
    pub(crate) fn open(label: String) -> Result<Handle, Error> {
        let sock = Handle::socket()
            .map_err(|e| Error::io(format!("open rtnetlink socket in netns {label}"), e))?;
        Ok(Handle::from_socket(sock, label))
    }

    /// Creates and binds the socket in the calling thread's namespace. It allocates nothing.
    pub(crate) fn socket() -> std::io::Result<Socket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Extended ACKs carry the kernel's own explanation ("Unknown device type"); capped ACKs
        // do not echo our request back. Strict checking makes the kernel filter dumps by what we
        // ask (ifindex in the address header, NDA_IFINDEX for neighbours) and reject nonsense.
        // All three are optional: older kernels simply lack them.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(sock)
    }

    /// Wraps a socket made by [`Handle::socket`].
    pub(crate) fn from_socket(sock: Socket, label: String) -> Handle {
        Handle {
            sock,
            seq: 0,
            label,
            buf: Vec::with_capacity(RECV_BUF),
            restarts: 0,
        }
    }

    /// The namespace label used in messages (a path, or `net:[inode]`).
    pub fn netns_label(&self) -> &str {
        &self.label
    }

    /// How many dumps this handle restarted because the kernel flagged them as interrupted
    /// (NLM_F_DUMP_INTR) or dropped messages (ENOBUFS).
    pub fn dump_restarts(&self) -> u64 {
        self.restarts
    }

    /// Attaches operation context to a failure.
    pub(crate) fn fail(&self, op: String, raw: Raw) -> Error {
        match raw {
            Raw::Kernel { errno, ext } => {
                let desc = strerror(errno);
                let msg = match ext {
                    Some(ext) if !ext.is_empty() => format!("{ext}: {desc}"),
                    _ => desc.to_string(),
                };
                Error::Netlink {
                    op,
                    netns: self.label.clone(),
                    errno,
                    msg,
                }
            }
            Raw::Io(source) => Error::Io {
                op: format!("{op} in netns {}", self.label),
                source,
            },
            Raw::Decode(msg) => Error::Decode {
                op: format!("{op} in netns {}", self.label),
                msg,
            },
        }
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, Raw> {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        let bytes = encode(msg, flags, self.seq);
        loop {
            match self.sock.send(&bytes, 0) {
                Ok(_) => return Ok(self.seq),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Raw::Io(e)),
            }
        }
    }

    /// Waits until `deadline` for a datagram (multicast notifications of a subscribed socket)
    /// and receives it into `self.buf`: `Ok(Some(bytes))`, `Ok(None)` when the time is up,
    /// `Err(ENOBUFS)` when the kernel dropped notifications because the socket was full.
    pub(crate) fn recv_until_deadline(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<&[u8]>, Raw> {
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            // round up: poll's milliseconds must not wake us before the deadline
            let ms = left.as_micros().div_ceil(1000);
            let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&self.sock),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, alive for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Raw::Io(e));
            }
            if n == 0 {
                return Ok(None);
            }
            return match self.recv_datagram()? {
                Some(len) => Ok(Some(&self.buf[..len])),
                None => Err(Raw::Kernel {
                    errno: libc::ENOBUFS,
                    ext: None,
                }),
            };
        }
    }

    /// Joins a multicast group (RTNLGRP_*) on this socket.
    pub(crate) fn join_group(&mut self, group: u32) -> Result<(), Raw> {
        self.sock.add_membership(group).map_err(Raw::Io)
    }

    /// Receives one datagram into `self.buf`, growing it when a datagram is larger. Returns its
    /// length. EINTR is retried; ENOBUFS (messages were dropped) is reported as `Ok(None)`.
    /// The datagram lands in the buffer's spare capacity: the buffer is never zeroed, so a
    /// reply touches only the pages it fills, not all of [`RECV_BUF`] (whose size still tells
    /// the kernel how large a dump's datagrams may be).
    fn recv_datagram(&mut self) -> Result<Option<usize>, Raw> {
        loop {
            // the peek only asks for the length (MSG_TRUNC): an empty buffer, nothing copied
            let mut none: &mut [u8] = &mut [];
            let peeked = self.sock.recv(&mut none, libc::MSG_PEEK | libc::MSG_TRUNC);
            match peeked {
                Ok(n) if n > self.buf.capacity() => self.buf.reserve(n),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(None),
                Err(e) => return Err(Raw::Io(e)),
            }
            self.buf.clear();
            match self.sock.recv(&mut self.buf, 0) {
                Ok(n) => return Ok(Some(n.min(self.buf.len()))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(None),
                Err(e) => return Err(Raw::Io(e)),
            }
        }
    }

    /// Receives datagrams and hands every message carrying `seq` to `on_msg` until it returns
    /// `Some`. Messages of other sequence numbers (left over from an earlier request) are
    /// skipped. `on_lost` is called when the kernel reports dropped messages (ENOBUFS).
    fn recv_until<R>(
        &mut self,
        seq: u32,
        mut on_msg: impl FnMut(Reply<'_>) -> Result<Option<R>, Raw>,
        mut on_lost: impl FnMut(),
    ) -> Result<R, Raw> {
        loop {
            let Some(len) = self.recv_datagram()? else {
                on_lost();
                continue;
            };
            for reply in messages(&self.buf[..len]) {
                let reply = reply?;
                if reply.seq != seq {
                    continue;
                }
                if let Some(r) = on_msg(reply)? {
                    return Ok(r);
                }
            }
        }
    }

    /// Sends a request with NLM_F_ACK and waits for the kernel's ACK or error.
    pub(crate) fn ack_raw(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), Raw> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.recv_until(
            seq,
            |reply| match reply.msg_type {
                NLMSG_ERROR => match reply.error_code() {
                    0 => Ok(Some(())),
                    errno => Err(Raw::Kernel {
                        errno,
                        ext: reply.ext_ack(),
                    }),
                },
                _ => Ok(None),
            },
            || {},
        )
    }

    /// Sends a request expecting exactly one reply message (a GET by key).
    pub(crate) fn get_raw(&mut self, msg: RouteNetlinkMessage) -> Result<RouteNetlinkMessage, Raw> {
        self.get_with(msg, |r| r.decode())
    }

    /// [`Handle::get_raw`], the reply read by `read` (from its bytes) instead of the generic
    /// decoder.
    pub(crate) fn get_with<T>(
        &mut self,
        msg: RouteNetlinkMessage,
        read: impl Fn(&Reply<'_>) -> Result<T, Raw>,
    ) -> Result<T, Raw> {
        let seq = self.send(msg, 0)?;
        self.recv_until(
            seq,
            |reply| match reply.msg_type {
                NLMSG_ERROR => match reply.error_code() {
                    0 => Err(Raw::Decode("ACK without a reply message".into())),
                    errno => Err(Raw::Kernel {
                        errno,
                        ext: reply.ext_ack(),
                    }),
                },
                NLMSG_DONE => Err(Raw::Decode("end of dump without a reply message".into())),
                _ => read(&reply).map(Some),
            },
            || {},
        )
    }

    /// Dumps (NLM_F_DUMP) and returns every reply message. A dump the kernel marks as
    /// inconsistent (NLM_F_DUMP_INTR) or that lost messages (ENOBUFS) is read to its end and
    /// restarted, up to 5 attempts; then EINTR is returned.
    pub(crate) fn dump_raw(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, Raw> {
        self.dump_with(msg, |_| true, |r| r.decode())
    }

    /// [`Handle::dump_raw`], reading only the messages `keep` accepts, each with `read` (from
    /// its bytes) instead of the generic decoder: looking for one link among thousands costs
    /// the kernel's dump, not the decoding of every message.
    pub(crate) fn dump_with<T>(
        &mut self,
        msg: RouteNetlinkMessage,
        keep: impl Fn(&Reply<'_>) -> bool,
        read: impl Fn(&Reply<'_>) -> Result<T, Raw>,
    ) -> Result<Vec<T>, Raw> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.send(msg.clone(), NLM_F_DUMP)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            let mut lost = false;
            self.recv_until(
                seq,
                |reply| {
                    if reply.flags & NLM_F_DUMP_INTR != 0 {
                        interrupted = true;
                    }
                    match reply.msg_type {
                        NLMSG_DONE => match reply.done_code() {
                            0 => Ok(Some(())),
                            errno => Err(Raw::Kernel {
                                errno,
                                ext: reply.ext_ack(),
                            }),
                        },
                        NLMSG_ERROR => match reply.error_code() {
                            0 => Ok(Some(())),
                            errno => Err(Raw::Kernel {
                                errno,
                                ext: reply.ext_ack(),
                            }),
                        },
                        _ => {
                            if keep(&reply) {
                                out.push(read(&reply)?);
                            }
                            Ok(None)
                        }
                    }
                },
                || lost = true,
            )?;
            if !interrupted && !lost {
                return Ok(out);
            }
            self.restarts += 1;
        }
        Err(Raw::Kernel {
            errno: libc::EINTR,
            ext: Some(format!(
                "dump still inconsistent after {DUMP_ATTEMPTS} attempts"
            )),
        })
    }
}

/// The bytes of a request: the netlink header (`NLM_F_REQUEST | flags`, sequence `seq`, port
/// id 0 for the kernel to fill) and the message. Everything sent goes through here.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    bytes
}

/// The C library's description of an errno ("File exists").
fn strerror(errno: i32) -> String {
    let full = io::Error::from_raw_os_error(errno).to_string();
    match full.rfind(" (os error ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    }
}

/// One received message.
pub(crate) struct Reply<'a> {
    pub(crate) msg_type: u16,
    pub(crate) flags: u16,
    /// The sequence number of the request it answers (0 for a notification).
    pub(crate) seq: u32,
    /// The whole message, netlink header included.
    pub(crate) bytes: &'a [u8],
}

/// The messages of one received datagram, in order. A malformed header ends the walk with an
/// error (the rest of the datagram cannot be framed).
pub(crate) fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Reply<'_>, Raw>> {
    let mut off = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        let data = datagram
            .get(off..)
            .filter(|d| !failed && d.len() >= NLMSG_HDRLEN)?;
        let nl = match NetlinkBuffer::new_checked(data) {
            Ok(nl) => nl,
            Err(e) => {
                failed = true;
                return Some(Err(Raw::Decode(format!("netlink header: {e}"))));
            }
        };
        let len = nl.length() as usize;
        let reply = Reply {
            msg_type: nl.message_type(),
            flags: nl.flags(),
            seq: nl.sequence_number(),
            bytes: data.get(..len)?,
        };
        off += (len + 3) & !3;
        Some(Ok(reply))
    })
}

impl Reply<'_> {
    fn payload(&self) -> &[u8] {
        self.bytes.get(NLMSG_HDRLEN..).unwrap_or(&[])
    }

    fn i32_at(&self, at: usize) -> Option<i32> {
        let b = self.payload().get(at..at + 4)?;
        Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Positive errno of an NLMSG_ERROR (0 = ACK).
    pub(crate) fn error_code(&self) -> i32 {
        self.i32_at(0).map_or(libc::EIO, |c| c.saturating_neg())
    }

    /// Positive errno of an NLMSG_DONE (0 = success; an empty payload is success too).
    fn done_code(&self) -> i32 {
        self.i32_at(0).map_or(0, |c| c.saturating_neg())
    }

    /// The kernel's NLMSGERR_ATTR_MSG, if it sent extended-ack attributes (other attributes,
    /// such as NLMSGERR_ATTR_OFFS, are skipped).
    pub(crate) fn ext_ack(&self) -> Option<String> {
        if self.flags & NLM_F_ACK_TLVS == 0 {
            return None;
        }
        let p = self.payload();
        let start = if self.msg_type == NLMSG_DONE {
            4
        } else {
            // error code, then the echoed request: only its header when capped
            let echoed = if self.flags & NLM_F_CAPPED != 0 {
                NLMSG_HDRLEN
            } else {
                let b = p.get(4..8)?;
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
            };
            4 + ((echoed + 3) & !3)
        };
        let value = find_attr(p, start, NLMSGERR_ATTR_MSG)?;
        let end = value.iter().position(|&c| c == 0).unwrap_or(value.len());
        Some(String::from_utf8_lossy(&value[..end]).trim().to_string())
    }

    pub(crate) fn decode(&self) -> Result<RouteNetlinkMessage, Raw> {
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(self.bytes) {
            Ok(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(m),
                ..
            }) => Ok(m),
            Ok(other) => Err(Raw::Decode(format!(
                "unexpected message type {}",
                other.header.message_type
            ))),
            Err(e) => Err(Raw::Decode(e.to_string())),
        }
    }
}

/// The value of the attribute `kind` among the netlink attributes of `bytes` from offset
/// `start` on (top level only, without decoding the others); `None` when absent or when an
/// attribute before it is malformed.
pub(crate) fn find_attr(bytes: &[u8], start: usize, kind: u16) -> Option<&[u8]> {
    attrs(bytes, start).find_map(|(k, v)| (k == kind).then_some(v))
}

/// The netlink attributes of `bytes` from offset `start` on, as (type, value) pairs, top level
/// only; the walk ends at the first malformed attribute.
pub(crate) fn attrs(bytes: &[u8], start: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = start;
    std::iter::from_fn(move || {
        let head = bytes.get(off..off + 4)?;
        let len = usize::from(u16::from_ne_bytes([head[0], head[1]]));
        let k = u16::from_ne_bytes([head[2], head[3]]) & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        let value = bytes.get(off + 4..off + len)?;
        off += (len + 3) & !3;
        Some((k, value))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use netns::Netns;

    use crate::{Handle, VethSpec};

    #[test]
    fn datagrams_are_framed_into_messages() {
        // two messages (the first 18 bytes long, padded to 20), then a header claiming more
        // bytes than are left
        let mut d = Vec::new();
        for (len, kind, seq) in [(18u32, 16u16, 7u32), (20, 3, 7), (64, 16, 8)] {
            d.extend_from_slice(&len.to_ne_bytes());
            d.extend_from_slice(&kind.to_ne_bytes());
            d.extend_from_slice(&0u16.to_ne_bytes());
            d.extend_from_slice(&seq.to_ne_bytes());
            d.extend_from_slice(&0u32.to_ne_bytes());
            d.resize(d.len() + ((len as usize + 3) & !3) - 16, 0);
        }
        d.truncate(40 + 16);
        let got: Vec<_> = super::messages(&d).collect();
        assert_eq!(got.len(), 3);
        let ok: Vec<_> = got.iter().take(2).map(|m| m.as_ref().unwrap()).collect();
        assert_eq!((ok[0].msg_type, ok[0].seq, ok[0].bytes.len()), (16, 7, 18));
        assert_eq!((ok[1].msg_type, ok[1].seq, ok[1].bytes.len()), (3, 7, 20));
        assert!(
            got[2].is_err(),
            "a header longer than the datagram is an error"
        );
        assert_eq!(
            super::messages(&d[..10]).count(),
            0,
            "no whole header: nothing"
        );
    }

    #[test]
    fn strerror_is_plain() {
        assert_eq!(super::strerror(libc::EEXIST), "File exists");
        assert_eq!(super::strerror(libc::EOPNOTSUPP), "Operation not supported");
    }

    /// Link dumps racing with link creation and deletion get NLM_F_DUMP_INTR and are restarted;
    /// every dump that returns is complete.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn interrupted_dumps_are_restarted() {
        // a fresh namespace of our own, gone with the thread it lives on
        Netns::in_fresh(interrupted_dumps_in_this_namespace).unwrap();
    }

    fn interrupted_dumps_in_this_namespace() {
        let mut h = Handle::current().unwrap();
        // enough links for a dump of several datagrams
        for i in 0..100 {
            let (a, b) = (format!("f{i}a"), format!("f{i}b"));
            h.create_veth(&VethSpec {
                name: &a,
                peer_name: &b,
                ..Default::default()
            })
            .unwrap();
        }
        let mut churn = Handle::current().unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    churn
                        .create_veth(&VethSpec {
                            name: "c0",
                            peer_name: "c1",
                            ..Default::default()
                        })
                        .unwrap();
                    let c0 = churn.link_by_name("c0").unwrap().unwrap().index;
                    churn.delete_link(c0).unwrap();
                }
            });
            for _ in 0..2000 {
                match h.links() {
                    Ok(links) => {
                        let fixed = links.iter().filter(|l| l.name.starts_with('f')).count();
                        assert_eq!(fixed, 200);
                    }
                    Err(e) => assert_eq!(e.errno(), Some(libc::EINTR), "{e}"),
                }
                if h.dump_restarts() > 0 {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(h.dump_restarts() > 0, "no dump was ever interrupted");
    }
}
