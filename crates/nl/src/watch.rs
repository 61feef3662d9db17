//! Waiting for a link to appear: the kernel's link notifications (RTNLGRP_LINK) instead of a
//! dump per poll.

use std::collections::VecDeque;
use std::time::Instant;

use crate::handle::{Raw, messages};
use crate::link::RTM_NEWLINK;
use crate::{Error, Handle, Link};

/// `RTNLGRP_LINK`: link notifications.
const RTNLGRP_LINK: u32 = 1;
const RTM_DELLINK: u16 = 17;

/// What a [`LinkWatch`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A link appeared or changed (renamed, MAC set, moved in from another namespace, ...):
    /// its state after the change.
    Changed(Link),
    /// The link with this index is gone (deleted, or moved to another namespace).
    Removed(u32),
    /// The kernel dropped notifications (the socket's buffer was full): whatever was looked
    /// for may have been missed, look again.
    Overrun,
}

/// A socket subscribed to the link notifications of one namespace.
///
/// Subscribe first, then look once ([`Handle::link_by_name`], [`Handle::links_with_mac`]),
/// then wait with [`LinkWatch::next`]: a link that appears after the subscription is announced,
/// so nothing falls between the look and the wait, and no dump is repeated.
#[derive(Debug)]
pub struct LinkWatch {
    h: Handle,
    queue: VecDeque<LinkEvent>,
}

impl LinkWatch {
    /// Subscribes to the link notifications of the calling thread's namespace.
    pub fn current() -> Result<LinkWatch, Error> {
        let mut h = Handle::current()?;
        h.join_group(RTNLGRP_LINK)
            .map_err(|raw| h.fail("subscribe to link notifications".into(), raw))?;
        Ok(LinkWatch {
            h,
            queue: VecDeque::new(),
        })
    }

    /// The next notification, waiting until `deadline`; `None` when the time is up.
    pub fn next(&mut self, deadline: Instant) -> Result<Option<LinkEvent>, Error> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(Some(e));
            }
            let events = match self.h.recv_until_deadline(deadline) {
                Ok(None) => return Ok(None),
                Ok(Some(datagram)) => parse(datagram),
                Err(Raw::Kernel {
                    errno: libc::ENOBUFS,
                    ..
                }) => return Ok(Some(LinkEvent::Overrun)),
                Err(raw) => {
                    return Err(self.h.fail("receive link notifications".into(), raw));
                }
            };
            self.queue.extend(events);
        }
    }
}

/// The link events in one datagram of notifications; other messages are skipped, and so is
/// a message that does not decode (the next look after an event re-reads the state anyway).
fn parse(datagram: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    for reply in messages(datagram).map_while(Result::ok) {
        let kind = reply.msg_type;
        if kind == RTM_NEWLINK || kind == RTM_DELLINK {
            if let Ok(link) = Link::from_reply(&reply) {
                out.push(if kind == RTM_NEWLINK {
                    LinkEvent::Changed(link)
                } else {
                    LinkEvent::Removed(link.index)
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use netns::{Mac, Netns};

    use super::{LinkEvent, LinkWatch};
    use crate::{Handle, VethSpec};

    /// A link created, given a MAC and deleted after the subscription is announced with its
    /// state; with nothing happening, `next` returns `None` at the deadline.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn announces_links_that_appear_change_and_go() {
        Netns::in_fresh(|| {
            let mut watch = LinkWatch::current().unwrap();
            let soon = || Instant::now() + Duration::from_secs(5);
            let mut h = Handle::current().unwrap();
            h.create_veth(&VethSpec {
                name: "w0",
                peer_name: "w1",
                ..Default::default()
            })
            .unwrap();
            let w0 = h.link("w0").unwrap();
            let w1 = h.link("w1").unwrap();
            let mac = Mac::new([0x0a, 0, 0, 0, 0, 0x42]);
            h.set_mac(w0.index, mac).unwrap();
            h.delete_link(w0.index).unwrap();
            let mut events = Vec::new();
            let gone = |events: &[LinkEvent]| {
                [w0.index, w1.index]
                    .iter()
                    .all(|i| events.contains(&LinkEvent::Removed(*i)))
            };
            while let Some(e) = watch.next(soon()).unwrap() {
                events.push(e);
                if gone(&events) {
                    break;
                }
            }
            let changed = |name: &str, mac: Option<Mac>| {
                events.iter().any(|e| {
                    matches!(e, LinkEvent::Changed(l) if l.name == name && (mac.is_none() || l.mac == mac))
                })
            };
            assert!(changed("w0", None), "{events:?}");
            assert!(changed("w1", None), "{events:?}");
            assert!(changed("w0", Some(mac)), "{events:?}");
            assert!(gone(&events), "{events:?}");
            // quiet: the deadline ends the wait
            let t = Instant::now();
            let quiet = watch.next(t + Duration::from_millis(50)).unwrap();
            assert_eq!(quiet, None);
            assert!(t.elapsed() >= Duration::from_millis(50), "{:?}", t.elapsed());
        })
        .unwrap();
    }

    /// links_with_mac decodes only the links with that MAC, among many.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn links_with_mac_among_many() {
        Netns::in_fresh(|| {
            let mut h = Handle::current().unwrap();
            for i in 0..60u8 {
                veth(&mut h, &format!("m{i}a"), Mac::new([0x0a, 0, 0, 0, 1, i]));
            }
            let mac = Mac::new([0x0a, 0, 0, 0, 1, 33]);
            let found = h.links_with_mac(mac).unwrap();
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].name, "m33a");
            assert_eq!(h.link_by_mac(mac).unwrap().unwrap().name, "m33a");
            assert!(
                h.links_with_mac(Mac::new([0x0a, 9, 9, 9, 9, 9]))
                    .unwrap()
                    .is_empty()
            );
        })
        .unwrap();
    }

    /// A veth `name` (peer `name` + "p") with `mac`, in the handle's namespace.
    fn veth(h: &mut Handle, name: &str, mac: Mac) {
        h.create_veth(&VethSpec {
            name,
            peer_name: &format!("{name}p"),
            mac: Some(mac),
            ..Default::default()
        })
        .unwrap();
    }

    /// unenslaved_links_with_mac answers from the kernel's "no master" filter: ports of a
    /// bridge are left out, the bridge itself and free links are in.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn unenslaved_links_with_mac_leaves_ports_out() {
        Netns::in_fresh(|| {
            let mut h = Handle::current().unwrap();
            let shared = Mac::new([0x0a, 0, 0, 0, 2, 1]);
            h.create_bridge("br9", None, Some(shared)).unwrap();
            let br = h.link("br9").unwrap().index;
            veth(&mut h, "p1", shared);
            veth(&mut h, "free1", shared);
            for i in 0..40u8 {
                let a = format!("q{i}a");
                veth(&mut h, &a, Mac::new([0x0a, 0, 0, 0, 3, i]));
                let q = h.link(&a).unwrap().index;
                h.set_master(q, br).unwrap();
            }
            let p1 = h.link("p1").unwrap().index;
            h.set_master(p1, br).unwrap();

            let names = |links: Vec<crate::Link>| {
                let mut n: Vec<String> = links.into_iter().map(|l| l.name).collect();
                n.sort();
                n
            };
            assert_eq!(
                names(h.links_with_mac(shared).unwrap()),
                ["br9", "free1", "p1"]
            );
            assert_eq!(
                names(h.unenslaved_links_with_mac(shared).unwrap()),
                ["br9", "free1"]
            );
            // link_by_mac: the shortest name among the links without a master ("p1" is a port)
            assert_eq!(h.link_by_mac(shared).unwrap().unwrap().name, "br9");
            let port = Mac::new([0x0a, 0, 0, 0, 3, 7]);
            assert!(h.unenslaved_links_with_mac(port).unwrap().is_empty());
            assert_eq!(names(h.links_with_mac(port).unwrap()), ["q7a"]);
            // only a port carries it: found by the dump of every link
            assert_eq!(h.link_by_mac(port).unwrap().unwrap().name, "q7a");
        })
        .unwrap();
    }
}
