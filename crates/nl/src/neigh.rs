//! Neighbour (ARP / NDP) entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use netns::Mac;

use crate::{Error, Handle};

/// NUD_PERMANENT.
const NUD_PERMANENT: u16 = 0x80;

/// A neighbour cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    /// Link index.
    pub index: u32,
    /// Neighbour IP.
    pub ip: IpAddr,
    /// Link-layer address, when known (and 6 bytes long).
    pub mac: Option<Mac>,
    /// `NUD_*` state bits (0x80 permanent, 0x02 reachable, 0x04 stale, ...).
    pub state: u16,
}

impl Neigh {
    /// NUD_PERMANENT: a static entry.
    pub fn is_permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }

    fn from_msg(msg: NeighbourMessage) -> Option<Neigh> {
        let mut ip = None;
        let mut mac = None;
        for attr in msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    ip = Some(IpAddr::V4(v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    ip = Some(IpAddr::V6(v6))
                }
                NeighbourAttribute::LinkLayerAddress(l) => {
                    mac = <[u8; 6]>::try_from(l.as_slice()).ok().map(Mac::new)
                }
                _ => {}
            }
        }
        Some(Neigh {
            index: msg.header.ifindex,
            ip: ip?,
            mac,
            state: u16::from(msg.header.state),
        })
    }
}

fn neigh_msg(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.ifindex = index;
    let dst = match ip {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            NeighbourAddress::Inet(v4)
        }
        IpAddr::V6(v6) => {
            msg.header.family = AddressFamily::Inet6;
            NeighbourAddress::Inet6(v6)
        }
    };
    msg.attributes.push(NeighbourAttribute::Destination(dst));
    msg
}

impl Handle {
    /// Adds or replaces a permanent neighbour entry `ip lladdr mac` on a link.
    pub fn add_neigh(&mut self, index: u32, ip: IpAddr, mac: Mac) -> Result<(), Error> {
        let mut msg = neigh_msg(index, ip);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
        match self.ack_raw(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        ) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(
                    format!("add neighbour {ip} lladdr {mac} on link {link}"),
                    raw,
                ))
            }
        }
    }

    /// Deletes a neighbour entry ([`Error::is_not_found`] when absent).
    pub fn del_neigh(&mut self, index: u32, ip: IpAddr) -> Result<(), Error> {
        let msg = neigh_msg(index, ip);
        match self.ack_raw(RouteNetlinkMessage::DelNeighbour(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(format!("delete neighbour {ip} on link {link}"), raw))
            }
        }
    }

    /// IPv4 and IPv6 neighbour entries of one link, or of all links.
    pub fn neighs(&mut self, index: Option<u32>) -> Result<Vec<Neigh>, Error> {
        // strict checking filters neighbour dumps by the NDA_IFINDEX attribute (a non-zero
        // header ifindex is rejected)
        let mut req = NeighbourMessage::default();
        if let Some(i) = index {
            req.attributes.push(NeighbourAttribute::IfIndex(i));
        }
        let msgs = self
            .dump_raw(RouteNetlinkMessage::GetNeighbour(req))
            .map_err(|raw| self.fail("list neighbours".into(), raw))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Neigh::from_msg(n),
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .collect())
    }
}
