//! Link settings the `nl` crate has no call for yet: bridge port flags (hairpin, isolated) and
//! promiscuous mode. One acknowledged RTM_NEWLINK/RTM_SETLINK each, on a socket in the calling
//! thread's namespace (the plugin's own, i.e. the host's).
//!
//! These only run when `hairpinMode`, `portIsolation` or `promiscMode` are set. They belong in
//! `nl::Handle` (as `set_bridge_port` and `set_promisc`); this module goes away once `nl` has
//! them.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A failed request: what was attempted, and the errno (0 for a local failure).
#[derive(Debug, thiserror::Error)]
#[error("{op} in the plugin's network namespace: {msg}")]
pub struct PortError {
    pub op: String,
    pub errno: i32,
    pub msg: String,
}

fn io_err(op: &str, e: &std::io::Error) -> PortError {
    PortError {
        op: op.to_owned(),
        errno: e.raw_os_error().unwrap_or(0),
        msg: e.to_string(),
    }
}

fn request(msg: RouteNetlinkMessage, op: &str) -> Result<(), PortError> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err(op, &e))?;
    sock.bind_auto().map_err(|e| io_err(op, &e))?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(|e| io_err(op, &e))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    sock.send(&bytes, 0).map_err(|e| io_err(op, &e))?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| io_err(op, &e))?;
        let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..n]).map_err(|e| {
            PortError {
                op: op.to_owned(),
                errno: 0,
                msg: format!("cannot decode the kernel's reply: {e}"),
            }
        })?;
        if reply.header.sequence_number != 1 {
            continue;
        }
        if let NetlinkPayload::Error(e) = reply.payload {
            return match e.code {
                None => Ok(()),
                Some(c) => {
                    let errno = c.get().saturating_neg();
                    Err(PortError {
                        op: op.to_owned(),
                        errno,
                        msg: std::io::Error::from_raw_os_error(errno).to_string(),
                    })
                }
            };
        }
    }
}

/// Sets the bridge-port flags of `index` (which must already be enslaved to a bridge).
pub fn set_port_flags(
    index: u32,
    name: &str,
    hairpin: bool,
    isolated: bool,
) -> Result<(), PortError> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![
            InfoBridgePort::HairpinMode(hairpin),
            InfoBridgePort::Isolated(isolated),
        ])),
    ]));
    request(
        RouteNetlinkMessage::NewLink(msg),
        &format!("set bridge port {name} (index {index}) hairpin {hairpin} isolated {isolated}"),
    )
}

/// Turns IFF_PROMISC on for `index`.
pub fn set_promisc(index: u32, name: &str) -> Result<(), PortError> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Promisc;
    msg.header.change_mask = LinkFlags::Promisc;
    request(
        RouteNetlinkMessage::SetLink(msg),
        &format!("set promisc on link {name} (index {index})"),
    )
}
