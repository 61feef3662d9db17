//! Bridge VLAN filtering: a bridge's `vlan_filtering` switch and default PVID
//! (`IFLA_BR_VLAN_FILTERING`, `IFLA_BR_VLAN_DEFAULT_PVID`), and the VLANs of its ports
//! (`RTM_SETLINK` / `RTM_DELLINK` of family `AF_BRIDGE` carrying `IFLA_AF_SPEC` with
//! `IFLA_BRIDGE_FLAGS` and `IFLA_BRIDGE_VLAN_INFO`, as `bridge vlan add|del ... master` sends;
//! dumped with `RTEXT_FILTER_BRVLAN_COMPRESSED`).
//!
//! A kernel built without `CONFIG_BRIDGE_VLAN_FILTERING` refuses `vlan_filtering 1` with
//! EOPNOTSUPP ([`Error::is_not_supported`]) and does not report a default PVID
//! ([`BridgeVlanState::default_pvid`] is `None`).

use netlink_packet_route::link::{
    AfSpecBridge, BridgeFlag, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind,
    LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::{Error, Handle};

/// The highest 802.1Q VLAN id a bridge accepts.
pub const MAX_VLAN_ID: u16 = 4094;

/// A bridge's VLAN filtering state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeVlanState {
    /// `vlan_filtering` is on.
    pub filtering: bool,
    /// The VLAN a new port joins as PVID, untagged (`vlan_default_pvid`, normally 1; 0 = none).
    /// `None` when the kernel lacks bridge VLAN filtering (it then does not report it).
    pub default_pvid: Option<u16>,
}

/// One VLAN of a bridge port, as `bridge vlan show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortVlan {
    /// VLAN id, 1..=4094.
    pub vid: u16,
    /// Frames arriving untagged are classified into this VLAN ("PVID").
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged ("Egress Untagged").
    pub untagged: bool,
}

/// A run of VLAN ids given the same flags in one request (`first == last` for a single id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRange {
    /// First id.
    pub first: u16,
    /// Last id (inclusive).
    pub last: u16,
    /// PVID (only for a single id: the kernel refuses it on a range).
    pub pvid: bool,
    /// Egress untagged.
    pub untagged: bool,
}

impl VlanRange {
    /// One id.
    pub fn one(vid: u16, pvid: bool, untagged: bool) -> VlanRange {
        VlanRange {
            first: vid,
            last: vid,
            pvid,
            untagged,
        }
    }

    /// Tagged (trunk) runs covering `vids` (sorted or not, repeats allowed), consecutive ids
    /// merged into one range.
    pub fn tagged(vids: &[u16]) -> Vec<VlanRange> {
        let mut sorted = vids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out: Vec<VlanRange> = Vec::new();
        for vid in sorted {
            match out.last_mut() {
                Some(r) if r.last.checked_add(1) == Some(vid) => r.last = vid,
                _ => out.push(VlanRange::one(vid, false, false)),
            }
        }
        out
    }

    fn flags(&self) -> BridgeVlanInfoFlags {
        let mut f = BridgeVlanInfoFlags::empty();
        if self.pvid {
            f |= BridgeVlanInfoFlags::Pvid;
        }
        if self.untagged {
            f |= BridgeVlanInfoFlags::Untagged;
        }
        f
    }

    fn describe(&self) -> String {
        let mut s = if self.first == self.last {
            format!("vid {}", self.first)
        } else {
            format!("vid {}-{}", self.first, self.last)
        };
        if self.pvid {
            s.push_str(" pvid");
        }
        if self.untagged {
            s.push_str(" untagged");
        }
        s
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |reason: &str| {
            Err(Error::invalid(
                "vlan range",
                self.describe(),
                reason.to_string(),
            ))
        };
        if self.first == 0 || self.last > MAX_VLAN_ID {
            return bad("ids must be in 1..=4094");
        }
        if self.first > self.last {
            return bad("first id after last");
        }
        if self.pvid && self.first != self.last {
            return bad("a PVID is one id, not a range");
        }
        Ok(())
    }
}

/// The `IFLA_AF_SPEC` entries of `ranges`, for a port's controller (the bridge).
fn vlan_spec(ranges: &[VlanRange]) -> Vec<AfSpecBridge> {
    let mut spec = vec![AfSpecBridge::Flags(BridgeFlag::Controller)];
    for r in ranges {
        let flags = r.flags();
        if r.first == r.last {
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
                flags,
                vid: r.first,
            }));
        } else {
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
                flags: flags | BridgeVlanInfoFlags::RangeBegin,
                vid: r.first,
            }));
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
                flags: flags | BridgeVlanInfoFlags::RangeEnd,
                vid: r.last,
            }));
        }
    }
    spec
}

fn bridge_port_msg(port: u32, spec: Vec<AfSpecBridge>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = port;
    msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
    msg
}

/// The RTM_SETLINK of [`Handle::add_port_vlans`] (sent with no flags but NLM_F_ACK).
pub(crate) fn add_port_vlans_request(
    port: u32,
    ranges: &[VlanRange],
) -> Result<RouteNetlinkMessage, Error> {
    for r in ranges {
        r.check()?;
    }
    Ok(RouteNetlinkMessage::SetLink(bridge_port_msg(
        port,
        vlan_spec(ranges),
    )))
}

/// The VLANs in one port's dumped `IFLA_AF_SPEC`, compressed ranges expanded.
fn port_vlans_of(spec: &[AfSpecBridge]) -> Vec<PortVlan> {
    let mut out = Vec::new();
    let mut begin: Option<u16> = None;
    for a in spec {
        let AfSpecBridge::VlanInfo(info) = a else {
            continue;
        };
        let f = info.flags;
        let vlan = |vid| PortVlan {
            vid,
            pvid: f.contains(BridgeVlanInfoFlags::Pvid),
            untagged: f.contains(BridgeVlanInfoFlags::Untagged),
        };
        if f.contains(BridgeVlanInfoFlags::RangeBegin) {
            begin = Some(info.vid);
        } else if f.contains(BridgeVlanInfoFlags::RangeEnd) {
            let first = begin.take().unwrap_or(info.vid);
            out.extend((first..=info.vid).map(vlan));
        } else {
            out.push(vlan(info.vid));
        }
    }
    out
}

impl Handle {
    /// The VLAN filtering state of bridge `index`; `None` when there is no such link or it is
    /// not a bridge.
    pub fn bridge_vlan_state(&mut self, index: u32) -> Result<Option<BridgeVlanState>, Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let reply = match self.get_raw(RouteNetlinkMessage::GetLink(msg)) {
            Ok(RouteNetlinkMessage::NewLink(l)) => l,
            Ok(_) => return Ok(None),
            Err(raw) if raw.errno() == Some(libc::ENODEV) => return Ok(None),
            Err(raw) => {
                let link = self.describe_link(index);
                return Err(self.fail(format!("get bridge {link}"), raw));
            }
        };
        let mut state = None;
        for attr in reply.attributes {
            let LinkAttribute::LinkInfo(infos) = attr else {
                continue;
            };
            for info in infos {
                if let LinkInfo::Data(InfoData::Bridge(opts)) = info {
                    let mut s = BridgeVlanState {
                        filtering: false,
                        default_pvid: None,
                    };
                    for o in opts {
                        match o {
                            InfoBridge::VlanFiltering(on) => s.filtering = on,
                            InfoBridge::VlanDefaultPvid(p) => s.default_pvid = Some(p),
                            _ => {}
                        }
                    }
                    state = Some(s);
                }
            }
        }
        Ok(state)
    }

    /// Turns VLAN filtering on a bridge on or off (`ip link set X type bridge vlan_filtering
    /// 1`). EOPNOTSUPP on a kernel without bridge VLAN filtering.
    pub fn set_bridge_vlan_filtering(&mut self, index: u32, on: bool) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(on)])),
        ]));
        match self.ack_raw(RouteNetlinkMessage::NewLink(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(index);
                Err(self.fail(
                    format!("set vlan_filtering {} on bridge {link}", u8::from(on)),
                    raw,
                ))
            }
        }
    }

    /// Adds VLANs to bridge port `port` (`bridge vlan add dev X vid ... [pvid] [untagged]
    /// master`), all in one request, in order. Adding an id the port has changes its flags.
    pub fn add_port_vlans(&mut self, port: u32, ranges: &[VlanRange]) -> Result<(), Error> {
        if ranges.is_empty() {
            return Ok(());
        }
        match self.ack_raw(add_port_vlans_request(port, ranges)?, 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(port);
                let what: Vec<String> = ranges.iter().map(VlanRange::describe).collect();
                Err(self.fail(
                    format!("add bridge vlan {} to port {link}", what.join(", ")),
                    raw,
                ))
            }
        }
    }

    /// Removes VLAN `vid` from bridge port `port` (`bridge vlan del dev X vid N master`). A
    /// `vid` the port is no member of is no error (kernel 6.1 answers 0).
    pub fn del_port_vlan(&mut self, port: u32, vid: u16) -> Result<(), Error> {
        let r = VlanRange::one(vid, false, false);
        r.check()?;
        let msg = bridge_port_msg(port, vlan_spec(&[r]));
        match self.ack_raw(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let link = self.describe_link(port);
                Err(self.fail(format!("delete bridge vlan {vid} from port {link}"), raw))
            }
        }
    }

    /// The VLANs of bridge port `port` (or, given a bridge's own index, of the bridge device
    /// itself), sorted by id; empty for a link that is no port of a VLAN-aware bridge.
    pub fn port_vlans(&mut self, port: u32) -> Result<Vec<PortVlan>, Error> {
        let mut req = LinkMessage::default();
        req.header.interface_family = AddressFamily::Bridge;
        req.attributes.push(LinkAttribute::ExtMask(vec![
            LinkExtentMask::BrvlanCompressed,
        ]));
        let msgs = self
            .dump_raw(RouteNetlinkMessage::GetLink(req))
            .map_err(|raw| self.fail("list bridge port vlans".into(), raw))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewLink(l) = m else {
                continue;
            };
            if l.header.index != port {
                continue;
            }
            for a in &l.attributes {
                if let LinkAttribute::AfSpecBridge(spec) = a {
                    out.extend(port_vlans_of(spec));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunks_become_ranges() {
        assert_eq!(
            VlanRange::tagged(&[
                210, 101, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 101
            ]),
            vec![
                VlanRange::one(101, false, false),
                VlanRange {
                    first: 200,
                    last: 210,
                    pvid: false,
                    untagged: false
                },
            ]
        );
        assert_eq!(VlanRange::tagged(&[]), vec![]);
    }

    #[test]
    fn ranges_are_checked() {
        VlanRange::one(1, true, true).check().unwrap();
        VlanRange::one(4094, false, false).check().unwrap();
        for bad in [
            VlanRange::one(0, false, false),
            VlanRange::one(4095, false, false),
            VlanRange {
                first: 5,
                last: 4,
                pvid: false,
                untagged: false,
            },
            VlanRange {
                first: 5,
                last: 6,
                pvid: true,
                untagged: true,
            },
        ] {
            let e = bad.check().unwrap_err();
            assert!(e.to_string().contains("vlan range"), "{e}");
        }
    }

    /// The request `bridge vlan add dev X vid 100 pvid untagged master` and a trunk range
    /// encode as the kernel expects: IFLA_BRIDGE_FLAGS = master, then VLAN_INFO entries.
    #[test]
    fn request_bytes() {
        use netlink_packet_core::Emitable;
        let spec = vlan_spec(&[
            VlanRange::one(100, true, true),
            VlanRange {
                first: 200,
                last: 210,
                pvid: false,
                untagged: false,
            },
        ]);
        let attr = LinkAttribute::AfSpecBridge(spec);
        let mut buf = vec![0u8; attr.buffer_len()];
        attr.emit(&mut buf);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x24, 0x00, 0x1a, 0x00,             // IFLA_AF_SPEC, 36 bytes
            0x06, 0x00, 0x00, 0x00, 0x01, 0x00, // IFLA_BRIDGE_FLAGS = BRIDGE_FLAGS_MASTER
            0x00, 0x00,                         // padding
            0x08, 0x00, 0x02, 0x00, 0x06, 0x00, 0x64, 0x00, // VLAN_INFO pvid|untagged, 100
            0x08, 0x00, 0x02, 0x00, 0x08, 0x00, 0xc8, 0x00, // VLAN_INFO range begin, 200
            0x08, 0x00, 0x02, 0x00, 0x10, 0x00, 0xd2, 0x00, // VLAN_INFO range end, 210
        ];
        assert_eq!(buf, want);
    }

    #[test]
    fn compressed_dump_entries_expand() {
        let info =
            |flags: BridgeVlanInfoFlags, vid| AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid });
        let spec = vec![
            info(
                BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged,
                100,
            ),
            info(BridgeVlanInfoFlags::RangeBegin, 200),
            info(BridgeVlanInfoFlags::RangeEnd, 202),
        ];
        let v = |vid, pvid, untagged| PortVlan {
            vid,
            pvid,
            untagged,
        };
        assert_eq!(
            port_vlans_of(&spec),
            vec![
                v(100, true, true),
                v(200, false, false),
                v(201, false, false),
                v(202, false, false)
            ]
        );
    }
}
