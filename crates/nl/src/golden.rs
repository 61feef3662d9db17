//! Golden bytes: the requests `nl` sends and the extended acks it reads, byte for byte as the
//! kernel sees them (this machine is little-endian; netlink is host-endian). No socket, no
//! privileges: `cargo test -p nl --lib` as any user.
//!
//! Each request is built by the same function its `Handle` method sends, framed by the same
//! [`encode`] with the same flags plus `NLM_F_ACK` (added by `ack_raw`), with sequence number 1.
//! The field layouts were checked against `linux/rtnetlink.h`, `if_link.h`, `if_addr.h` and
//! `if_bridge.h`; the replies were captured from the kernel (6.1).

#![cfg(target_endian = "little")]

use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::NLM_F_ACK;
use netlink_packet_route::RouteNetlinkMessage;

use crate::addr::{ADD_ADDR, add_addr_request};
use crate::bridge_vlan::add_port_vlans_request;
use crate::handle::{Reply, encode, messages};
use crate::link::{CREATE, move_request, veth_request};
use crate::route::ADD_ROUTE;
use crate::{RouteSpec, VethSpec, VlanRange};

/// Request flags on the wire: NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE.
const REQ_ACK_EXCL_CREATE: [u8; 2] = [0x05, 0x06];

/// `ip link add veth1 mtu 1500 type veth peer name eth0 mtu 1500 netns <fd>`: the peer is born
/// in the other namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER), both ends carry the MTU.
#[test]
fn veth_with_its_peer_in_another_namespace() {
    let other = std::fs::File::open("/dev/null").unwrap();
    let spec = VethSpec {
        name: "veth1",
        peer_name: "eth0",
        mtu: Some(1500),
        peer_netns: Some(other.as_fd()),
        ..Default::default()
    };
    let got = encode(veth_request(&spec).unwrap(), CREATE | NLM_F_ACK, 1);
    let fd = u32::try_from(other.as_raw_fd()).unwrap().to_le_bytes();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x78, 0x00, 0x00, 0x00][..],  // nlmsg_len 120
        &[0x10, 0x00], &REQ_ACK_EXCL_CREATE, // RTM_NEWLINK, flags
        &[0x01, 0x00, 0x00, 0x00],      // seq 1
        &[0x00, 0x00, 0x00, 0x00],      // port id 0 (the kernel's)
        &[0x00, 0x00, 0x00, 0x00],      // ifinfomsg: AF_UNSPEC, pad, type 0
        &[0x00, 0x00, 0x00, 0x00],      //   index 0 (the kernel picks)
        &[0x00, 0x00, 0x00, 0x00],      //   flags 0
        &[0x00, 0x00, 0x00, 0x00],      //   change 0
        &[0x0a, 0x00, 0x03, 0x00],      // IFLA_IFNAME, 10 bytes
        b"veth1\0", &[0x00, 0x00],      //   "veth1" NUL, padding
        &[0x08, 0x00, 0x04, 0x00],      // IFLA_MTU
        &[0xdc, 0x05, 0x00, 0x00],      //   1500
        &[0x44, 0x00, 0x12, 0x00],      // IFLA_LINKINFO, 68 bytes
        &[0x09, 0x00, 0x01, 0x00],      //   IFLA_INFO_KIND, 9 bytes
        b"veth\0", &[0x00, 0x00, 0x00], //     "veth" NUL, padding
        &[0x34, 0x00, 0x02, 0x00],      //   IFLA_INFO_DATA, 52 bytes
        &[0x30, 0x00, 0x01, 0x00],      //     VETH_INFO_PEER, 48 bytes
        &[0x00; 16],                    //       the peer's ifinfomsg, all zero
        &[0x09, 0x00, 0x03, 0x00],      //       IFLA_IFNAME, 9 bytes
        b"eth0\0", &[0x00, 0x00, 0x00], //         "eth0" NUL, padding
        &[0x08, 0x00, 0x04, 0x00],      //       IFLA_MTU
        &[0xdc, 0x05, 0x00, 0x00],      //         1500
        &[0x08, 0x00, 0x1c, 0x00],      //       IFLA_NET_NS_FD
        &fd,                            //         the other namespace's fd
    ]
    .concat();
    assert_eq!(got, want);
}

/// `ip link set dev <7> netns <fd> name eth0 alias cni-eni:1:9001:eth1:`: one RTM_SETLINK that
/// moves, renames and sets the alias (eni's ADD).
#[test]
fn move_renamed_with_an_alias() {
    let other = std::fs::File::open("/dev/null").unwrap();
    let msg = move_request(7, other.as_fd(), Some("eth0"), Some("cni-eni:1:9001:eth1:")).unwrap();
    let got = encode(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK, 1);
    let fd = u32::try_from(other.as_raw_fd()).unwrap().to_le_bytes();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x50, 0x00, 0x00, 0x00][..],  // nlmsg_len 80
        &[0x13, 0x00], &[0x05, 0x00],   // RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK
        &[0x01, 0x00, 0x00, 0x00],      // seq 1
        &[0x00, 0x00, 0x00, 0x00],      // port id 0 (the kernel's)
        &[0x00, 0x00, 0x00, 0x00],      // ifinfomsg: AF_UNSPEC, pad, type 0
        &[0x07, 0x00, 0x00, 0x00],      //   index 7
        &[0x00, 0x00, 0x00, 0x00],      //   flags 0
        &[0x00, 0x00, 0x00, 0x00],      //   change 0
        &[0x08, 0x00, 0x1c, 0x00],      // IFLA_NET_NS_FD
        &fd,                            //   the other namespace's fd
        &[0x09, 0x00, 0x03, 0x00],      // IFLA_IFNAME, 9 bytes
        b"eth0\0", &[0x00, 0x00, 0x00], //   "eth0" NUL, padding
        &[0x19, 0x00, 0x14, 0x00],      // IFLA_IFALIAS, 25 bytes
        b"cni-eni:1:9001:eth1:\0",      //   the alias, NUL-terminated (the kernel
        &[0x00, 0x00, 0x00],            //   reads it back up to the NUL), padding
    ]
    .concat();
    assert_eq!(got, want);
}

/// `ip addr add 2001:db8::2/64 dev <4> nodad`: IFA_F_NODAD both in the header's 8-bit flags
/// and in IFA_FLAGS (the kernel reads the attribute when present).
#[test]
fn ipv6_address_with_nodad() {
    let net = "2001:db8::2/64".parse().unwrap();
    let got = encode(add_addr_request(4, net, true), ADD_ADDR | NLM_F_ACK, 1);
    let ip6: &[u8] = &[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    ];
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x48, 0x00, 0x00, 0x00][..], // nlmsg_len 72
        &[0x14, 0x00], &REQ_ACK_EXCL_CREATE, // RTM_NEWADDR, flags
        &[0x01, 0x00, 0x00, 0x00],     // seq 1
        &[0x00, 0x00, 0x00, 0x00],     // port id
        &[0x0a, 0x40, 0x02, 0x00],     // ifaddrmsg: AF_INET6, /64, IFA_F_NODAD, scope universe
        &[0x04, 0x00, 0x00, 0x00],     //   index 4
        &[0x14, 0x00, 0x02, 0x00],     // IFA_LOCAL, 20 bytes
        ip6,                           //   2001:db8::2
        &[0x14, 0x00, 0x01, 0x00],     // IFA_ADDRESS, 20 bytes
        ip6,                           //   2001:db8::2
        &[0x08, 0x00, 0x08, 0x00],     // IFA_FLAGS
        &[0x02, 0x00, 0x00, 0x00],     //   IFA_F_NODAD
    ]
    .concat();
    assert_eq!(got, want);
}

/// `ip addr add 10.0.0.2/24 brd + dev <4>`: no nodad for IPv4, the broadcast computed.
#[test]
fn ipv4_address_with_broadcast() {
    let net = "10.0.0.2/24".parse().unwrap();
    let got = encode(add_addr_request(4, net, false), ADD_ADDR | NLM_F_ACK, 1);
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x30, 0x00, 0x00, 0x00][..], // nlmsg_len 48
        &[0x14, 0x00], &REQ_ACK_EXCL_CREATE, // RTM_NEWADDR, flags
        &[0x01, 0x00, 0x00, 0x00],     // seq 1
        &[0x00, 0x00, 0x00, 0x00],     // port id
        &[0x02, 0x18, 0x00, 0x00],     // ifaddrmsg: AF_INET, /24, no flags, scope universe
        &[0x04, 0x00, 0x00, 0x00],     //   index 4
        &[0x08, 0x00, 0x02, 0x00],     // IFA_LOCAL
        &[0x0a, 0x00, 0x00, 0x02],     //   10.0.0.2
        &[0x08, 0x00, 0x01, 0x00],     // IFA_ADDRESS
        &[0x0a, 0x00, 0x00, 0x02],     //   10.0.0.2
        &[0x08, 0x00, 0x04, 0x00],     // IFA_BROADCAST
        &[0x0a, 0x00, 0x00, 0xff],     //   10.0.0.255
    ]
    .concat();
    assert_eq!(got, want);
}

/// `ip route add default via 169.254.1.1 dev <3> onlink proto boot`: a default route carries
/// no RTA_DST; RTNH_F_ONLINK is in rtm_flags.
#[test]
fn default_route_via_an_onlink_gateway() {
    let spec = RouteSpec {
        onlink: true,
        ..RouteSpec::via(
            "0.0.0.0/0".parse().unwrap(),
            "169.254.1.1".parse().unwrap(),
            3,
        )
    };
    let got = encode(spec.request(false).unwrap(), ADD_ROUTE | NLM_F_ACK, 1);
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x34, 0x00, 0x00, 0x00][..], // nlmsg_len 52
        &[0x18, 0x00], &REQ_ACK_EXCL_CREATE, // RTM_NEWROUTE, flags
        &[0x01, 0x00, 0x00, 0x00],     // seq 1
        &[0x00, 0x00, 0x00, 0x00],     // port id
        &[0x02, 0x00, 0x00, 0x00],     // rtmsg: AF_INET, dst_len 0, src_len 0, tos 0
        &[0xfe, 0x03, 0x00, 0x01],     //   table main, RTPROT_BOOT, scope universe, RTN_UNICAST
        &[0x04, 0x00, 0x00, 0x00],     //   rtm_flags RTNH_F_ONLINK
        &[0x08, 0x00, 0x0f, 0x00],     // RTA_TABLE
        &[0xfe, 0x00, 0x00, 0x00],     //   254
        &[0x08, 0x00, 0x05, 0x00],     // RTA_GATEWAY
        &[0xa9, 0xfe, 0x01, 0x01],     //   169.254.1.1
        &[0x08, 0x00, 0x04, 0x00],     // RTA_OIF
        &[0x03, 0x00, 0x00, 0x00],     //   3
    ]
    .concat();
    assert_eq!(got, want);
}

/// `bridge vlan add dev <5> vid 100 pvid untagged master`: RTM_SETLINK on AF_BRIDGE with
/// IFLA_AF_SPEC { IFLA_BRIDGE_FLAGS = BRIDGE_FLAGS_MASTER, IFLA_BRIDGE_VLAN_INFO }.
#[test]
fn bridge_port_vlan() {
    let req = add_port_vlans_request(5, &[VlanRange::one(100, true, true)]).unwrap();
    let got = encode(req, NLM_F_ACK, 1);
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x34, 0x00, 0x00, 0x00][..], // nlmsg_len 52
        &[0x13, 0x00, 0x05, 0x00],     // RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK
        &[0x01, 0x00, 0x00, 0x00],     // seq 1
        &[0x00, 0x00, 0x00, 0x00],     // port id
        &[0x07, 0x00, 0x00, 0x00],     // ifinfomsg: AF_BRIDGE, pad, type 0
        &[0x05, 0x00, 0x00, 0x00],     //   index 5
        &[0x00, 0x00, 0x00, 0x00],     //   flags
        &[0x00, 0x00, 0x00, 0x00],     //   change
        &[0x14, 0x00, 0x1a, 0x00],     // IFLA_AF_SPEC, 20 bytes
        &[0x06, 0x00, 0x00, 0x00],     //   IFLA_BRIDGE_FLAGS, 6 bytes
        &[0x01, 0x00, 0x00, 0x00],     //     BRIDGE_FLAGS_MASTER, padding
        &[0x08, 0x00, 0x02, 0x00],     //   IFLA_BRIDGE_VLAN_INFO
        &[0x06, 0x00, 0x64, 0x00],     //     PVID | UNTAGGED, vid 100
    ]
    .concat();
    assert_eq!(got, want);
    // an out-of-range id never reaches the wire
    assert!(add_port_vlans_request(5, &[VlanRange::one(4095, false, false)]).is_err());
}

/// The kernel's answer (captured) to RTM_SETLINK of link 1 with a 2-byte IFLA_MTU, on a socket
/// with NETLINK_EXT_ACK and NETLINK_CAP_ACK (as `Handle` opens them): ERANGE, the request's
/// header only (NLM_F_CAPPED), then NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS and
/// NLMSGERR_ATTR_POLICY.
#[rustfmt::skip]
const ERANGE_CAPPED: &[u8] = &[
    0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x03, // len 120, NLMSG_ERROR, CAPPED | ACK_TLVS
    0x01, 0x00, 0x00, 0x00, 0x90, 0x13, 0x00, 0x00, // seq 1, port id
    0xde, 0xff, 0xff, 0xff,                         // error -34 (ERANGE)
    0x28, 0x00, 0x00, 0x00, 0x13, 0x00, 0x05, 0x00, // echoed header: len 40, RTM_SETLINK
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   seq 1, port id 0
    0x27, 0x00, 0x01, 0x00,                         // NLMSGERR_ATTR_MSG, 39 bytes
    b'A', b't', b't', b'r', b'i', b'b', b'u', b't', b'e', b' ', b'f', b'a', b'i', b'l', b'e',
    b'd', b' ', b'p', b'o', b'l', b'i', b'c', b'y', b' ', b'v', b'a', b'l', b'i', b'd', b'a',
    b't', b'i', b'o', b'n', 0x00, 0x00,             //   NUL, padding
    0x08, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, // NLMSGERR_ATTR_OFFS: byte 32 (IFLA_MTU)
    0x24, 0x00, 0x04, 0x80,                         // NLMSGERR_ATTR_POLICY (nested), 36 bytes
    0x0c, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00,
];

/// The same answer on a socket without NETLINK_CAP_ACK: the whole request is echoed (40
/// bytes, ending with the offending 2-byte IFLA_MTU) before the attributes.
#[rustfmt::skip]
const ERANGE_UNCAPPED: &[u8] = &[
    0x90, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02, // len 144, NLMSG_ERROR, ACK_TLVS
    0x01, 0x00, 0x00, 0x00, 0xb9, 0x13, 0x00, 0x00, // seq 1, port id
    0xde, 0xff, 0xff, 0xff,                         // error -34 (ERANGE)
    0x28, 0x00, 0x00, 0x00, 0x13, 0x00, 0x05, 0x00, // echoed request: len 40, RTM_SETLINK
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   ifinfomsg, index 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, //   IFLA_MTU with 2 bytes, padding
    0x27, 0x00, 0x01, 0x00,                         // NLMSGERR_ATTR_MSG, 39 bytes
    b'A', b't', b't', b'r', b'i', b'b', b'u', b't', b'e', b' ', b'f', b'a', b'i', b'l', b'e',
    b'd', b' ', b'p', b'o', b'l', b'i', b'c', b'y', b' ', b'v', b'a', b'l', b'i', b'd', b'a',
    b't', b'i', b'o', b'n', 0x00, 0x00,
    0x08, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, // NLMSGERR_ATTR_OFFS
    0x24, 0x00, 0x04, 0x80,                         // NLMSGERR_ATTR_POLICY
    0x0c, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0c, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00,
];

/// A captured message as [`messages`] frames it (type, flags and sequence from the header),
/// but without its framing checks: the malformed messages below test the readers of a
/// message's content on their own.
fn reply(bytes: &[u8]) -> Reply<'_> {
    if let Some(Ok(framed)) = messages(bytes).next() {
        assert_eq!(framed.bytes, bytes, "one whole message");
    }
    Reply {
        msg_type: u16::from_le_bytes([bytes[4], bytes[5]]),
        flags: u16::from_le_bytes([bytes[6], bytes[7]]),
        seq: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        bytes,
    }
}

const POLICY_MSG: &str = "Attribute failed policy validation";

#[test]
fn extended_ack_capped_and_uncapped() {
    for bytes in [ERANGE_CAPPED, ERANGE_UNCAPPED] {
        assert_eq!(
            bytes.len(),
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
        );
        let r = reply(bytes);
        assert_eq!(r.error_code(), libc::ERANGE);
        assert_eq!(r.ext_ack().as_deref(), Some(POLICY_MSG));
    }
}

/// NLMSGERR_ATTR_OFFS (or any other attribute) before NLMSGERR_ATTR_MSG is skipped.
#[test]
fn extended_ack_message_after_other_attributes() {
    let head = &ERANGE_CAPPED[..36];
    let msg = &ERANGE_CAPPED[36..76];
    let offs = &ERANGE_CAPPED[76..84];
    let mut bytes = [head, offs, msg].concat();
    assert_eq!(bytes.len(), 84);
    bytes[0] = 84;
    assert_eq!(reply(&bytes).ext_ack().as_deref(), Some(POLICY_MSG));
    // without the message attribute there is no message
    let mut no_msg = [head, offs].concat();
    no_msg[0] = 44;
    assert_eq!(reply(&no_msg).ext_ack(), None);
}

/// Without NLM_F_ACK_TLVS the bytes after the echoed request are not attributes.
#[test]
fn no_extended_ack_without_the_flag() {
    let mut bytes = ERANGE_CAPPED.to_vec();
    bytes[7] = 0x01; // NLM_F_CAPPED only
    let r = reply(&bytes);
    assert_eq!(r.error_code(), libc::ERANGE);
    assert_eq!(r.ext_ack(), None);
}

/// A dump's NLMSG_DONE carries the error and the attributes without an echoed request.
#[test]
fn extended_ack_on_done() {
    let mut bytes = [&ERANGE_CAPPED[..20], &ERANGE_CAPPED[36..76]].concat();
    bytes[0] = 60;
    bytes[4] = 0x03; // NLMSG_DONE
    bytes[7] = 0x02; // NLM_F_ACK_TLVS
    assert_eq!(reply(&bytes).ext_ack().as_deref(), Some(POLICY_MSG));
}

/// Truncated or malformed attributes end the search without panicking.
#[test]
fn malformed_extended_acks() {
    // the message attribute claims more bytes than there are
    let cut = &ERANGE_CAPPED[..60];
    assert_eq!(reply(cut).ext_ack(), None);
    // a zero-length attribute
    let mut zero = ERANGE_CAPPED[..76].to_vec();
    zero[36] = 0;
    assert_eq!(reply(&zero).ext_ack(), None);
    // an uncapped echo longer than the message
    let mut long = ERANGE_UNCAPPED.to_vec();
    long[20] = 0xff;
    assert_eq!(reply(&long).ext_ack(), None);
    // an error message without even the error code
    assert_eq!(reply(&ERANGE_CAPPED[..16]).error_code(), libc::EIO);
    // the kernel's text is trimmed and cut at its NUL
    let value: &[u8] = b" hi \0junk\0\0\0";
    let mut padded = [&ERANGE_CAPPED[..36], &[0x10, 0x00, 0x01, 0x00], value].concat();
    padded[0] = 52;
    assert_eq!(reply(&padded).ext_ack().as_deref(), Some("hi"));
}
