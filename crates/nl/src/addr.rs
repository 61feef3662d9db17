//! IP addresses on links.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::{IpNetwork, Ipv4Network};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::{Error, Handle, Scope};

/// `IFA_F_*` bits of [`Addr::flags`].
pub mod addr_flags {
    /// Secondary (alias) address.
    pub const SECONDARY: u32 = 0x01;
    /// Duplicate address detection is disabled.
    pub const NODAD: u32 = 0x02;
    /// Duplicate address detection failed.
    pub const DADFAILED: u32 = 0x08;
    /// Deprecated (preferred lifetime over).
    pub const DEPRECATED: u32 = 0x20;
    /// Duplicate address detection still running: the address is not usable yet.
    pub const TENTATIVE: u32 = 0x40;
    /// Configured statically (not by SLAAC).
    pub const PERMANENT: u32 = 0x80;
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Index of the link carrying the address.
    pub index: u32,
    /// The address with its prefix length, e.g. `10.0.0.2/24` (not the network address).
    pub net: IpNetwork,
    /// `IFA_F_*` flags (see [`addr_flags`]).
    pub flags: u32,
    /// Address scope (global addresses are `Universe`, `fe80::/64` is `Link`, `127.0.0.1` `Host`).
    pub scope: Scope,
    /// IPv4 label (`eth0`, `eth0:1`).
    pub label: Option<String>,
}

impl Addr {
    /// IFA_F_TENTATIVE: DAD still running.
    pub fn is_tentative(&self) -> bool {
        self.flags & addr_flags::TENTATIVE != 0
    }

    /// IFA_F_NODAD.
    pub fn is_nodad(&self) -> bool {
        self.flags & addr_flags::NODAD != 0
    }

    /// IFA_F_DADFAILED.
    pub fn is_dadfailed(&self) -> bool {
        self.flags & addr_flags::DADFAILED != 0
    }

    fn from_msg(msg: AddressMessage) -> Option<Addr> {
        let mut local = None;
        let mut address = None;
        let mut flags = u32::from(msg.header.flags.bits());
        let mut label = None;
        for attr in msg.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                AddressAttribute::Flags(f) => flags = f.bits(),
                AddressAttribute::Label(l) => label = Some(l),
                _ => {}
            }
        }
        // For IPv4 IFA_LOCAL is the address and IFA_ADDRESS the peer; IPv6 only sends IFA_ADDRESS.
        let ip = local.or(address)?;
        let net = IpNetwork::new(ip, msg.header.prefix_len).ok()?;
        Some(Addr {
            index: msg.header.index,
            net,
            flags,
            scope: Scope::from(u8::from(msg.header.scope)),
            label,
        })
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The message for adding/deleting `net` on `index`.
fn addr_msg(index: u32, net: IpNetwork) -> AddressMessage {
    let ip = net.ip();
    let mut msg = AddressMessage::default();
    msg.header.family = family_of(ip);
    msg.header.prefix_len = net.prefix();
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    msg
}

/// The RTM_NEWADDR of [`Handle::add_addr`] (sent with [`ADD_ADDR`]).
pub(crate) fn add_addr_request(index: u32, net: IpNetwork, nodad: bool) -> RouteNetlinkMessage {
    let mut msg = addr_msg(index, net);
    if let IpAddr::V4(v4) = net.ip() {
        if v4.is_loopback() {
            msg.header.scope = AddressScope::Host;
        }
    }
    if let Some(brd) = broadcast(net) {
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if nodad {
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    RouteNetlinkMessage::NewAddress(msg)
}

/// The flags of [`Handle::add_addr`]'s request: fail if the address exists.
pub(crate) const ADD_ADDR: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// The broadcast address `ip` would compute for IPv4 (none for /31 and /32).
fn broadcast(net: IpNetwork) -> Option<Ipv4Addr> {
    match net {
        IpNetwork::V4(v4) if v4.prefix() < 31 => Ipv4Network::new(v4.ip(), v4.prefix())
            .ok()
            .map(|n| n.broadcast()),
        _ => None,
    }
}

impl Handle {
    /// Addresses of one link (`Some(index)`, filtered by the kernel) or of all links.
    pub fn addrs(&mut self, index: Option<u32>) -> Result<Vec<Addr>, Error> {
        let mut req = AddressMessage::default();
        req.header.index = index.unwrap_or(0);
        let msgs = self
            .dump_raw(RouteNetlinkMessage::GetAddress(req))
            .map_err(|raw| {
                let what = match index {
                    Some(i) => format!("list addresses of link index {i}"),
                    None => "list addresses".to_string(),
                };
                self.fail(what, raw)
            })?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Addr::from_msg(a),
                _ => None,
            })
            // kernels without strict checking ignore the filter
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }

    /// Adds `net` (address with prefix) to a link. `nodad` skips IPv6 duplicate address
    /// detection so the address is usable at once. IPv4 addresses get the broadcast address
    /// computed from the prefix, like `ip addr add ... brd +`; `127.0.0.0/8` gets host scope.
    /// EEXIST if the address is already there.
    pub fn add_addr(&mut self, index: u32, net: IpNetwork, nodad: bool) -> Result<(), Error> {
        match self.ack_raw(add_addr_request(index, net, nodad), ADD_ADDR) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                let nodad = if nodad { " nodad" } else { "" };
                Err(self.fail(format!("add address {net}{nodad} to link {link}"), raw))
            }
        }
    }

    /// Removes `net` from a link ([`Error::is_not_found`] when it is not there).
    pub fn del_addr(&mut self, index: u32, net: IpNetwork) -> Result<(), Error> {
        let msg = addr_msg(index, net);
        match self.ack_raw(RouteNetlinkMessage::DelAddress(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(format!("delete address {net} from link {link}"), raw))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_like_ip() {
        let n: IpNetwork = "10.1.2.3/24".parse().unwrap();
        assert_eq!(broadcast(n), Some(Ipv4Addr::new(10, 1, 2, 255)));
        let n: IpNetwork = "10.1.2.3/31".parse().unwrap();
        assert_eq!(broadcast(n), None);
        let n: IpNetwork = "2001:db8::1/64".parse().unwrap();
        assert_eq!(broadcast(n), None);
    }
}
