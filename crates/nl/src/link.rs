//! Links: lookup, attributes, creation (veth, bridge, vlan, macvlan, macvtap), deletion.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoMacVtap, InfoPortData,
    InfoPortKind, InfoVeth, InfoVlan, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo,
    LinkMessage, MacVlanMode,
};

use netns::{IfName, MIN_MTU, Mac};

use crate::handle::{NLMSG_HDRLEN, Raw, Reply, attrs, find_attr};
use crate::{Error, Handle};

// if_link.h: the attributes of a link message that [`Link`] keeps
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;
// if.h
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const IFINFOMSG_LEN: usize = 16;

/// The value of top-level attribute `kind` in the raw bytes of a link message (netlink header
/// included), without decoding the rest; `None` when absent or malformed.
pub(crate) fn raw_link_attr(msg: &[u8], kind: u16) -> Option<&[u8]> {
    find_attr(msg, NLMSG_HDRLEN + IFINFOMSG_LEN, kind)
}
/// The flags of a request that creates a link: fail if it exists.
pub(crate) const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index (unique within its namespace).
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<Mac>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Operationally up (IFF_RUNNING: operstate UP, or UNKNOWN as for `lo` and taps).
    pub oper_up: bool,
    /// `IFLA_INFO_KIND`: "veth", "bridge", "vlan", "macvlan", "macvtap", "tun", ...
    /// `None` for plain devices (lo, physical NICs).
    pub kind: Option<String>,
    /// Index of the bridge (or other controller) this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_IFALIAS`, when set and non-empty.
    pub alias: Option<String>,
    /// `IFLA_LINK`: the veth peer's index, or the parent of a vlan/macvlan/macvtap. When
    /// [`Link::link_netnsid`] is set, this index lives in that other namespace.
    pub peer_index: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace id (as seen from this namespace) of the peer/parent.
    pub link_netnsid: Option<i32>,
    /// 802.1Q VLAN id, for vlan links.
    pub vlan_id: Option<u16>,
    /// IFF_LOOPBACK.
    pub loopback: bool,
}

/// A netlink string attribute: the bytes up to the first NUL.
fn attr_str(value: &[u8]) -> String {
    let end = value.iter().position(|&c| c == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

fn attr_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

impl Link {
    /// The link of an RTM_NEWLINK message's bytes (netlink header included), read in place:
    /// only the attributes [`Link`] keeps are looked at, none is decoded into a general
    /// message (a link message is mostly attributes nobody here reads).
    pub(crate) fn from_raw(msg: &[u8]) -> Result<Link, Raw> {
        let head = msg
            .get(NLMSG_HDRLEN..NLMSG_HDRLEN + IFINFOMSG_LEN)
            .ok_or_else(|| Raw::Decode(format!("link message of {} bytes", msg.len())))?;
        let index = attr_u32(&head[4..8]).unwrap_or(0);
        let flags = attr_u32(&head[8..12]).unwrap_or(0);
        let mut link = Link::bare(index, flags);
        for (kind, value) in attrs(msg, NLMSG_HDRLEN + IFINFOMSG_LEN) {
            match kind {
                IFLA_IFNAME => link.name = attr_str(value),
                IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(value).ok().map(Mac::new),
                IFLA_MTU => link.mtu = attr_u32(value).unwrap_or(0),
                IFLA_MASTER => link.master = attr_u32(value).filter(|&m| m != 0),
                IFLA_IFALIAS => link.alias = Some(attr_str(value)).filter(|a| !a.is_empty()),
                IFLA_LINK => link.peer_index = attr_u32(value).filter(|&l| l != 0),
                IFLA_LINK_NETNSID => link.link_netnsid = attr_u32(value).map(|v| v as i32),
                IFLA_LINKINFO => link.read_info(value),
                _ => {}
            }
        }
        Ok(link)
    }

    /// The link of a message's header alone: index and IFF_* flags, no attribute.
    fn bare(index: u32, flags: u32) -> Link {
        Link {
            index,
            name: String::new(),
            mac: None,
            mtu: 0,
            up: flags & IFF_UP != 0,
            oper_up: flags & IFF_RUNNING != 0,
            kind: None,
            master: None,
            alias: None,
            peer_index: None,
            link_netnsid: None,
            vlan_id: None,
            loopback: flags & IFF_LOOPBACK != 0,
        }
    }

    /// IFLA_LINKINFO: the kind, and a vlan's id.
    fn read_info(&mut self, info: &[u8]) {
        let kind = find_attr(info, 0, IFLA_INFO_KIND).map(attr_str);
        if kind.as_deref() == Some("vlan") {
            self.vlan_id = find_attr(info, 0, IFLA_INFO_DATA)
                .and_then(|data| find_attr(data, 0, IFLA_VLAN_ID))
                .and_then(|v| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)));
        }
        self.kind = kind;
    }

    /// [`Link::from_raw`] of a reply.
    pub(crate) fn from_reply(reply: &Reply<'_>) -> Result<Link, Raw> {
        Link::from_raw(reply.bytes)
    }

    /// The same [`Link`] from netlink-packet-route's decoded message: the reference that
    /// [`Link::from_raw`] is tested against.
    #[cfg(test)]
    pub(crate) fn from_msg(msg: LinkMessage) -> Link {
        let mut link = Link::bare(msg.header.index, msg.header.flags.bits());
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Address(a) => {
                    link.mac = <[u8; 6]>::try_from(a.as_slice()).ok().map(Mac::new)
                }
                LinkAttribute::Mtu(mtu) => link.mtu = mtu,
                LinkAttribute::Controller(m) if m != 0 => link.master = Some(m),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a),
                LinkAttribute::Link(l) if l != 0 => link.peer_index = Some(l),
                LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::Data(InfoData::Vlan(vlan)) => {
                                link.vlan_id = vlan.iter().find_map(|v| match v {
                                    InfoVlan::Id(id) => Some(*id),
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A veth pair to create with [`Handle::create_veth`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VethSpec<'a> {
    /// Name of the end created in the handle's namespace (or in `netns`).
    pub name: &'a str,
    /// Name of the peer end.
    pub peer_name: &'a str,
    /// MTU applied to both ends.
    pub mtu: Option<u32>,
    /// MAC of the first end.
    pub mac: Option<Mac>,
    /// MAC of the peer end.
    pub peer_mac: Option<Mac>,
    /// Namespace to create the first end in (default: the handle's).
    pub netns: Option<BorrowedFd<'a>>,
    /// Namespace the peer is born in (default: the handle's).
    pub peer_netns: Option<BorrowedFd<'a>>,
}

/// A bridge to create with [`Handle::create_bridge_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BridgeSpec<'a> {
    /// Name of the bridge.
    pub name: &'a str,
    /// MTU of the bridge (its ports may lower it).
    pub mtu: Option<u32>,
    /// MAC; a MAC set at creation is kept as ports come and go.
    pub mac: Option<Mac>,
    /// Turn VLAN filtering on (`vlan_filtering 1`).
    pub vlan_filtering: bool,
}

/// An 802.1Q VLAN link to create with [`Handle::create_vlan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VlanSpec<'a> {
    /// Name of the new link (unique in the target namespace).
    pub name: &'a str,
    /// Index of the parent (trunk) link in the handle's namespace.
    pub parent: u32,
    /// VLAN id, 1..=4094.
    pub vlan_id: u16,
    /// MAC of the new link (default: the parent's).
    pub mac: Option<Mac>,
    /// MTU of the new link.
    pub mtu: Option<u32>,
    /// Namespace the link is born in (default: the handle's).
    pub netns: Option<BorrowedFd<'a>>,
}

/// macvlan/macvtap modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MacvlanMode {
    /// Children on the same parent talk to each other directly.
    #[default]
    Bridge,
    /// One child owns the parent entirely, with the parent's MAC filtering.
    Passthru,
    /// No traffic between children.
    Private,
    /// Traffic between children goes through the external switch.
    Vepa,
}

impl From<MacvlanMode> for MacVlanMode {
    fn from(m: MacvlanMode) -> MacVlanMode {
        match m {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
        }
    }
}

/// A macvlan (or, with [`Handle::create_macvtap`], macvtap) link on a parent.
#[derive(Debug, Clone, Copy, Default)]
pub struct MacvlanSpec<'a> {
    /// Name of the new link.
    pub name: &'a str,
    /// Index of the parent link in the handle's namespace.
    pub parent: u32,
    /// Mode; `Bridge` by default. branch-eni's macvtap uses `Passthru`.
    pub mode: MacvlanMode,
    /// MAC of the new link (default: random; in passthru mode the parent's).
    pub mac: Option<Mac>,
    /// MTU of the new link.
    pub mtu: Option<u32>,
    /// Namespace the link is born in (default: the handle's).
    pub netns: Option<BorrowedFd<'a>>,
}

/// A macvtap link: same fields as a macvlan.
pub type MacvtapSpec<'a> = MacvlanSpec<'a>;

/// Checks an interface name against the kernel's rules ([`IfName`]).
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    match IfName::problem(name) {
        None => Ok(()),
        Some(problem) => Err(Error::invalid("interface name", name, problem.to_string())),
    }
}

/// An MTU below the kernel's minimum for Ethernet ([`MIN_MTU`]) is refused before it is sent;
/// the upper bound is the device's own, which only the kernel knows.
fn check_mtu(mtu: Option<u32>) -> Result<(), Error> {
    match mtu {
        Some(m) if m < MIN_MTU => Err(Error::invalid(
            "mtu",
            m.to_string(),
            format!("below the minimum of {MIN_MTU}"),
        )),
        _ => Ok(()),
    }
}

/// rtnetlink.h: the type of a link message (a GETLINK reply, a notification).
pub(crate) const RTM_NEWLINK: u16 = 16;

/// Whether a received message is an RTM_NEWLINK.
fn is_new_link(reply: &Reply<'_>) -> bool {
    reply.msg_type == RTM_NEWLINK
}

/// A GETLINK request; statistics are skipped (they are most of a link message's size).
/// `IFLA_MASTER` in a link dump request meaning "links without a master" (-1 as a u32).
const NO_MASTER: u32 = u32::MAX;

fn get_link_msg() -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    msg
}

/// What /proc shows for a namespace fd, for messages: the path it was opened from
/// (`/run/netns/x`) or `net:[4026532281]`.
pub(crate) fn fd_label(fd: BorrowedFd<'_>) -> String {
    let raw = fd.as_raw_fd();
    std::fs::read_link(format!("/proc/thread-self/fd/{raw}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("fd {raw}"))
}

/// The RTM_SETLINK of [`Handle::move_to_netns`]: IFLA_NET_NS_FD, then IFLA_IFNAME and
/// IFLA_IFALIAS when given (the kernel acts in its own order: move, rename, alias).
pub(crate) fn move_request(
    index: u32,
    netns: BorrowedFd<'_>,
    name: Option<&str>,
    alias: Option<&str>,
) -> Result<LinkMessage, Error> {
    let mut msg = link_msg(index);
    msg.attributes
        .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    if let Some(name) = name {
        check_name(name)?;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    }
    if let Some(alias) = alias {
        msg.attributes.push(alias_attribute(alias)?);
    }
    Ok(msg)
}

/// `IFLA_IFALIAS` with `alias`; an empty alias clears it. The kernel takes at most 255 bytes.
fn alias_attribute(alias: &str) -> Result<LinkAttribute, Error> {
    if alias.len() >= 256 {
        return Err(Error::invalid(
            "interface alias",
            alias,
            "is longer than 255 bytes",
        ));
    }
    Ok(if alias.is_empty() {
        LinkAttribute::Other(DefaultNla::new(IFLA_IFALIAS, Vec::new()))
    } else {
        LinkAttribute::IfAlias(alias.to_string())
    })
}

fn link_msg(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

/// Attributes shared by every created link: name, MTU, MAC, target namespace.
fn new_link_msg(
    name: &str,
    mtu: Option<u32>,
    mac: Option<Mac>,
    netns: Option<BorrowedFd<'_>>,
) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()));
    }
    if let Some(fd) = netns {
        msg.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    msg
}

fn netns_suffix(netns: Option<BorrowedFd<'_>>) -> String {
    netns
        .map(|fd| format!(" into netns {}", fd_label(fd)))
        .unwrap_or_default()
}

fn mac_suffix(mac: Option<Mac>) -> String {
    mac.map(|m| format!(" mac {m}")).unwrap_or_default()
}

/// The RTM_NEWLINK of [`Handle::create_veth`] (sent with [`CREATE`]).
pub(crate) fn veth_request(spec: &VethSpec<'_>) -> Result<RouteNetlinkMessage, Error> {
    check_name(spec.name)?;
    check_name(spec.peer_name)?;
    check_mtu(spec.mtu)?;
    let peer = new_link_msg(spec.peer_name, spec.mtu, spec.peer_mac, spec.peer_netns);
    let mut msg = new_link_msg(spec.name, spec.mtu, spec.mac, spec.netns);
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    Ok(RouteNetlinkMessage::NewLink(msg))
}

impl Handle {
    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, Error> {
        self.dump_with(
            RouteNetlinkMessage::GetLink(get_link_msg()),
            is_new_link,
            Link::from_reply,
        )
        .map_err(|raw| self.fail("list links".into(), raw))
    }

    fn get_link(&mut self, msg: LinkMessage, what: String) -> Result<Option<Link>, Error> {
        let read = |reply: &Reply<'_>| match reply.msg_type {
            RTM_NEWLINK => Link::from_reply(reply),
            _ => Err(Raw::Decode("reply is not a link".into())),
        };
        match self.get_with(RouteNetlinkMessage::GetLink(msg), read) {
            Ok(link) => Ok(Some(link)),
            Err(raw) if matches!(raw.errno(), Some(libc::ENODEV)) => Ok(None),
            Err(raw) => Err(self.fail(format!("get link {what}"), raw)),
        }
    }

    /// The link called `name`, or `None` (also for names no link can have).
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, Error> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        let mut msg = get_link_msg();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg, name.to_string())
    }

    /// The link called `name`; a missing link is an error with errno ENODEV
    /// ([`Error::is_not_found`]) naming the link and the namespace.
    pub fn link(&mut self, name: &str) -> Result<Link, Error> {
        match self.link_by_name(name)? {
            Some(link) => Ok(link),
            None => Err(self.fail(
                format!("find link {name}"),
                Raw::Kernel {
                    errno: libc::ENODEV,
                    ext: None,
                },
            )),
        }
    }

    /// The link with this index, or `None`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, Error> {
        if index == 0 || index > i32::MAX as u32 {
            return Ok(None);
        }
        let mut msg = get_link_msg();
        msg.header.index = index;
        self.get_link(msg, format!("index {index}"))
    }

    /// The link carrying this MAC, or `None`. If several do (a bridge and its first port, a
    /// macvtap in passthru mode and its parent), one that is no device's port wins, then the
    /// shortest name, then the lowest index ([`Handle::links_with_mac_free_first`]: a dump of
    /// every link only when no link without a master carries the MAC).
    pub fn link_by_mac(&mut self, mac: Mac) -> Result<Option<Link>, Error> {
        Ok(self
            .links_with_mac_free_first(mac, |free| !free.is_empty())?
            .into_iter()
            .min_by_key(|l| (l.master.is_some(), l.name.len(), l.index)))
    }

    /// Every link carrying this MAC. The kernel cannot filter a dump by hardware address, so
    /// this is one dump of every link, but only the matching messages are decoded: on a node
    /// with thousands of veths the cost is the kernel's, not ours.
    pub fn links_with_mac(&mut self, mac: Mac) -> Result<Vec<Link>, Error> {
        self.mac_dump(mac, get_link_msg(), "list links with mac")
    }

    /// [`Handle::links_with_mac`] among the links that are no device's port. The kernel filters
    /// this dump itself (`IFLA_MASTER` = -1, "no master", Linux 5.15 and later): on a node whose
    /// thousands of veths are bridge ports it fills a few messages instead of one per link. An
    /// older kernel (Amazon Linux 2's 5.10) reads -1 as a master index no link has and answers
    /// with none, so an empty answer means "look further", never "not there".
    pub fn unenslaved_links_with_mac(&mut self, mac: Mac) -> Result<Vec<Link>, Error> {
        let mut msg = get_link_msg();
        msg.attributes.push(LinkAttribute::Controller(NO_MASTER));
        self.mac_dump(mac, msg, "list links without a master with mac")
    }

    /// The links carrying this MAC, the cheap way when it answers: those without a master
    /// ([`Handle::unenslaved_links_with_mac`]) when `enough` accepts them, else every link
    /// ([`Handle::links_with_mac`]). A failure of the first dump is met again, and reported,
    /// by the second.
    pub fn links_with_mac_free_first(
        &mut self,
        mac: Mac,
        enough: impl FnOnce(&[Link]) -> bool,
    ) -> Result<Vec<Link>, Error> {
        match self.unenslaved_links_with_mac(mac) {
            Ok(free) if enough(&free) => Ok(free),
            _ => self.links_with_mac(mac),
        }
    }

    /// A link dump `msg` of which only the links carrying `mac` are read; `what` names the
    /// request in errors.
    fn mac_dump(&mut self, mac: Mac, msg: LinkMessage, what: &str) -> Result<Vec<Link>, Error> {
        let want = mac.octets();
        self.dump_with(
            RouteNetlinkMessage::GetLink(msg),
            |r| is_new_link(r) && raw_link_attr(r.bytes, IFLA_ADDRESS) == Some(&want[..]),
            Link::from_reply,
        )
        .map_err(|raw| self.fail(format!("{what} {mac}"), raw))
    }

    /// "eth0 (index 4)" when the link can be found, else "index 4". Used in error messages.
    pub fn describe_link(&mut self, index: u32) -> String {
        match self.link_by_index(index) {
            Ok(Some(l)) => format!("{} (index {index})", l.name),
            _ => format!("index {index}"),
        }
    }

    /// Applies a RTM_SETLINK to link `index`; on failure the message names the link.
    fn set_link(&mut self, msg: LinkMessage, what: impl FnOnce() -> String) -> Result<(), Error> {
        let index = msg.header.index;
        match self.ack_raw(RouteNetlinkMessage::SetLink(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(format!("{} on link {link}", what()), raw))
            }
        }
    }

    fn set_flag_up(&mut self, index: u32, up: bool) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.set_link(msg, || if up { "set up" } else { "set down" }.to_string())
    }

    /// Sets or clears IFF_PROMISC.
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.header.change_mask = LinkFlags::Promisc;
        if on {
            msg.header.flags = LinkFlags::Promisc;
        }
        self.set_link(msg, || {
            format!("set promisc {}", if on { "on" } else { "off" })
        })
    }

    /// Sets the bridge-port flags of a link already enslaved to a bridge.
    pub fn set_bridge_port(
        &mut self,
        index: u32,
        hairpin: bool,
        isolated: bool,
    ) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![
                InfoBridgePort::HairpinMode(hairpin),
                InfoBridgePort::Isolated(isolated),
            ])),
        ]));
        let what = || format!("set bridge port hairpin {hairpin} isolated {isolated}");
        match self.ack_raw(RouteNetlinkMessage::NewLink(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(format!("{} on link {link}", what()), raw))
            }
        }
    }

    /// Sets IFF_UP.
    pub fn set_up(&mut self, index: u32) -> Result<(), Error> {
        self.set_flag_up(index, true)
    }

    /// Clears IFF_UP.
    pub fn set_down(&mut self, index: u32) -> Result<(), Error> {
        self.set_flag_up(index, false)
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), Error> {
        check_mtu(Some(mtu))?;
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(msg, || format!("set mtu {mtu}"))
    }

    /// Sets the hardware address.
    pub fn set_mac(&mut self, index: u32, mac: Mac) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()));
        self.set_link(msg, || format!("set mac {mac}"))
    }

    /// Renames a link (it must be down for most kinds).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<(), Error> {
        check_name(name)?;
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.set_link(msg, || format!("rename to {name}"))
    }

    /// Sets `IFLA_IFALIAS`; an empty string clears it.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes.push(alias_attribute(alias)?);
        self.set_link(msg, || format!("set alias {alias:?}"))
    }

    /// Enslaves a link to a bridge (`IFLA_MASTER`).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(msg, || format!("set master index {master}"))
    }

    /// Releases a link from its bridge.
    pub fn set_nomaster(&mut self, index: u32) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link(msg, || "set nomaster".to_string())
    }

    /// Moves a link into another namespace. It keeps its name, MAC and MTU but loses its
    /// addresses, routes and up state; its index may change.
    pub fn set_netns(&mut self, index: u32, netns: BorrowedFd<'_>) -> Result<(), Error> {
        let mut msg = link_msg(index);
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.set_link(msg, || format!("move to netns {}", fd_label(netns)))
    }

    /// Moves a link into the namespace `netns` and, in the same request, names it `name` and
    /// sets its alias there (each when given). The kernel moves the link first: under its own
    /// name, or directly under `name` when its own is taken in the target (EEXIST, with
    /// nothing changed, when both are). Then it renames the link (a moved link is down) and
    /// sets the alias in the target namespace, so the change notification an alias sends
    /// walks the target's routing tables, not the source's (which, on a node full of tasks,
    /// hold thousands of routes). An error after the move leaves the link moved: the caller
    /// looks for it on both sides.
    pub fn move_to_netns(
        &mut self,
        index: u32,
        netns: BorrowedFd<'_>,
        name: Option<&str>,
        alias: Option<&str>,
    ) -> Result<(), Error> {
        let msg = move_request(index, netns, name, alias)?;
        self.set_link(msg, || {
            let mut what = format!("move to netns {}", fd_label(netns));
            if let Some(name) = name {
                what.push_str(&format!(" as {name}"));
            }
            if let Some(alias) = alias {
                what.push_str(&format!(" with alias {alias:?}"));
            }
            what
        })
    }

    /// Deletes a link (for a veth, both ends go).
    pub fn delete_link(&mut self, index: u32) -> Result<(), Error> {
        let msg = link_msg(index);
        match self.ack_raw(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(format!("delete link {link}"), raw))
            }
        }
    }

    fn create(&mut self, msg: LinkMessage, what: impl FnOnce() -> String) -> Result<(), Error> {
        self.ack_raw(RouteNetlinkMessage::NewLink(msg), CREATE)
            .map_err(|raw| self.fail(what(), raw))
    }

    /// Creates a veth pair; the MTU goes on both ends and the peer may be born directly in
    /// another namespace. EEXIST if a name is taken (in either namespace).
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), Error> {
        let req = veth_request(spec)?;
        let what = || {
            format!(
                "create veth {}{} with peer {}{}{}{}",
                spec.name,
                mac_suffix(spec.mac),
                spec.peer_name,
                mac_suffix(spec.peer_mac),
                spec.peer_netns
                    .map(|fd| format!(" in netns {}", fd_label(fd)))
                    .unwrap_or_default(),
                spec.mtu.map(|m| format!(", mtu {m}")).unwrap_or_default(),
            )
        };
        self.ack_raw(req, CREATE)
            .map_err(|raw| self.fail(what(), raw))
    }

    /// Creates a bridge.
    pub fn create_bridge(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<Mac>,
    ) -> Result<(), Error> {
        self.create_bridge_with(&BridgeSpec {
            name,
            mtu,
            mac,
            vlan_filtering: false,
        })
    }

    /// Creates a bridge as `spec` says. With `vlan_filtering` on a kernel without bridge VLAN
    /// filtering this fails with EOPNOTSUPP ([`Error::is_not_supported`]) and no bridge is
    /// left behind.
    pub fn create_bridge_with(&mut self, spec: &BridgeSpec<'_>) -> Result<(), Error> {
        let BridgeSpec {
            name,
            mtu,
            mac,
            vlan_filtering,
        } = *spec;
        check_name(name)?;
        check_mtu(mtu)?;
        let mut msg = new_link_msg(name, mtu, mac, None);
        let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        if vlan_filtering {
            info.push(LinkInfo::Data(InfoData::Bridge(vec![
                InfoBridge::VlanFiltering(true),
            ])));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        self.create(msg, || {
            format!(
                "create bridge {name}{}{}",
                mac_suffix(mac),
                if vlan_filtering {
                    " vlan_filtering 1"
                } else {
                    ""
                }
            )
        })
    }

    /// Creates an 802.1Q VLAN on `parent`, born directly in `netns` when given. On kernels
    /// without 8021q this fails with [`Error::is_not_supported`].
    pub fn create_vlan(&mut self, spec: &VlanSpec<'_>) -> Result<(), Error> {
        check_name(spec.name)?;
        check_mtu(spec.mtu)?;
        if !(1..=4094).contains(&spec.vlan_id) {
            return Err(Error::invalid(
                "vlan id",
                spec.vlan_id.to_string(),
                "must be in 1..=4094",
            ));
        }
        let mut msg = new_link_msg(spec.name, spec.mtu, spec.mac, spec.netns);
        msg.attributes.push(LinkAttribute::Link(spec.parent));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(spec.vlan_id)])),
        ]));
        let parent = spec.parent;
        match self.ack_raw(RouteNetlinkMessage::NewLink(msg), CREATE) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let parent = self.describe_link(parent);
                Err(self.fail(
                    format!(
                        "create vlan {} id {} on {parent}{}",
                        spec.name,
                        spec.vlan_id,
                        netns_suffix(spec.netns)
                    ),
                    raw,
                ))
            }
        }
    }

    fn create_macvlan_kind(&mut self, spec: &MacvlanSpec<'_>, tap: bool) -> Result<(), Error> {
        check_name(spec.name)?;
        check_mtu(spec.mtu)?;
        let mut msg = new_link_msg(spec.name, spec.mtu, spec.mac, spec.netns);
        msg.attributes.push(LinkAttribute::Link(spec.parent));
        let mode = MacVlanMode::from(spec.mode);
        let info = if tap {
            vec![
                LinkInfo::Kind(InfoKind::MacVtap),
                LinkInfo::Data(InfoData::MacVtap(vec![InfoMacVtap::Mode(mode)])),
            ]
        } else {
            vec![
                LinkInfo::Kind(InfoKind::MacVlan),
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
            ]
        };
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        match self.ack_raw(RouteNetlinkMessage::NewLink(msg), CREATE) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let parent = self.describe_link(spec.parent);
                let kind = if tap { "macvtap" } else { "macvlan" };
                Err(self.fail(
                    format!(
                        "create {kind} {} mode {:?}{} on {parent}{}",
                        spec.name,
                        spec.mode,
                        mac_suffix(spec.mac),
                        netns_suffix(spec.netns)
                    ),
                    raw,
                ))
            }
        }
    }

    /// Creates a macvlan on `spec.parent`.
    pub fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<(), Error> {
        self.create_macvlan_kind(spec, false)
    }

    /// Creates a macvtap on `spec.parent` (branch-eni uses `MacvlanMode::Passthru`).
    pub fn create_macvtap(&mut self, spec: &MacvtapSpec<'_>) -> Result<(), Error> {
        self.create_macvlan_kind(spec, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["eth0", "a", "veth1234567890a", "eth0.100", "ü"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "a:b", "veth1234567890ab"] {
            let err = check_name(bad).unwrap_err();
            assert!(err.to_string().contains("interface name"), "{err}");
        }
    }

    #[test]
    fn mtu_bounds() {
        check_mtu(Some(68)).unwrap();
        check_mtu(None).unwrap();
        assert!(check_mtu(Some(67)).is_err());
    }
}

#[cfg(test)]
mod raw_tests {
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_packet_route::link::{
        InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    };
    use netns::{Mac, Netns};

    use super::{Link, get_link_msg, is_new_link, raw_link_attr};
    use crate::handle::encode;
    use crate::{BridgeSpec, Handle, VethSpec};

    /// Every attribute [`Link`] keeps, as netlink-packet-route emits them: the in-place
    /// reader agrees with the reference decoder, field by field.
    #[test]
    fn from_raw_reads_what_the_reference_decoder_reads() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up | LinkFlags::Running | LinkFlags::Loopback;
        msg.attributes = vec![
            LinkAttribute::IfName("eth0.100".into()),
            LinkAttribute::Address(vec![0x0a, 1, 2, 3, 4, 5]),
            LinkAttribute::Mtu(9001),
            LinkAttribute::Controller(3),
            LinkAttribute::IfAlias("task 1".into()),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(4),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
            ]),
        ];
        let bytes = encode(RouteNetlinkMessage::NewLink(msg.clone()), 0, 1);
        let raw = Link::from_raw(&bytes).unwrap();
        assert_eq!(raw, Link::from_msg(msg));
        assert_eq!(raw.vlan_id, Some(100));
        assert_eq!(raw.alias.as_deref(), Some("task 1"));
        assert!(raw.up && raw.oper_up && raw.loopback);
        // a message cut inside its header is an error, not a panic
        assert!(Link::from_raw(&bytes[..20]).is_err());
        // absent and zero attributes are None
        let bare = encode(RouteNetlinkMessage::NewLink(LinkMessage::default()), 0, 1);
        let link = Link::from_raw(&bare).unwrap();
        assert_eq!(link, Link::from_msg(LinkMessage::default()));
        assert_eq!(
            (link.master, link.peer_index, link.kind),
            (None, None, None)
        );
    }

    /// The kernel's own link messages (lo, a bridge, a veth pair with one end enslaved and an
    /// alias): both readers agree on every one of them.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn from_raw_agrees_with_the_reference_on_kernel_messages() {
        Netns::in_fresh(|| {
            let mut h = Handle::current().unwrap();
            h.create_bridge_with(&BridgeSpec {
                name: "rb0",
                mac: Some(Mac::new([0x0a, 0, 0, 0, 0, 1])),
                ..Default::default()
            })
            .unwrap();
            h.create_veth(&VethSpec {
                name: "rv0",
                peer_name: "rv1",
                mtu: Some(9001),
                ..Default::default()
            })
            .unwrap();
            let (br, v0) = (h.link("rb0").unwrap(), h.link("rv0").unwrap());
            h.set_master(v0.index, br.index).unwrap();
            h.set_alias(v0.index, "task 1").unwrap();
            h.set_up(v0.index).unwrap();
            let pairs = h
                .dump_with(
                    RouteNetlinkMessage::GetLink(get_link_msg()),
                    is_new_link,
                    |r| Ok((Link::from_reply(r)?, r.decode()?)),
                )
                .unwrap();
            assert_eq!(pairs.len(), 4, "lo, rb0, rv0, rv1");
            for (raw, decoded) in pairs {
                let RouteNetlinkMessage::NewLink(msg) = decoded else {
                    panic!("not a link: {decoded:?}");
                };
                assert_eq!(raw, Link::from_msg(msg));
            }
            let v0 = h.link("rv0").unwrap();
            assert_eq!(v0.master, Some(br.index));
            assert_eq!(v0.alias.as_deref(), Some("task 1"));
            assert_eq!(
                (v0.mtu, v0.kind.as_deref(), v0.up),
                (9001, Some("veth"), true)
            );
            assert!(
                h.links()
                    .unwrap()
                    .iter()
                    .any(|l| l.loopback && l.name == "lo")
            );
        })
        .unwrap();
    }

    #[test]
    fn raw_link_attr_finds_top_level_attributes() {
        // netlink header (16) + ifinfomsg (16), then IFLA_IFNAME "ab\0" (len 7, padded to 8)
        // and IFLA_ADDRESS (len 10, padded to 12)
        let mut m = vec![0u8; 32];
        m.extend_from_slice(&[7, 0, 3, 0, b'a', b'b', 0, 0]);
        m.extend_from_slice(&[10, 0, 1, 0, 1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(raw_link_attr(&m, 1), Some(&[1u8, 2, 3, 4, 5, 6][..]));
        assert_eq!(raw_link_attr(&m, 3), Some(&b"ab\0"[..]));
        assert_eq!(raw_link_attr(&m, 20), None);
        // truncated or malformed: None, no panic
        assert_eq!(raw_link_attr(&m[..40], 1), None);
        let mut bad = m.clone();
        bad[32] = 2; // length below the header
        assert_eq!(raw_link_attr(&bad, 1), None);
        assert_eq!(raw_link_attr(&[], 1), None);
    }
}
