//! Host-side links: the bridge (created once, race-safe, with a pinned MAC), the veth pair,
//! the bridge's gateway addresses and IP forwarding.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::os::fd::BorrowedFd;

use ipnetwork::IpNetwork;
use nl::{Handle, Link, VethSpec};

use crate::config::BridgeConfig;
use crate::error::BridgeError;

/// How many random host-side veth names are tried.
pub const VETH_NAME_ATTEMPTS: usize = 10;

/// 64 random bits (std's per-process random keys, advanced on every call).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

/// A random locally administered unicast MAC.
pub fn random_mac() -> [u8; 6] {
    let r = random_u64().to_le_bytes();
    [(r[0] & 0xfe) | 0x02, r[1], r[2], r[3], r[4], r[5]]
}

/// `veth` + 8 random hex digits.
pub fn veth_name() -> String {
    format!("veth{:08x}", random_u64() as u32)
}

/// The bridge, created if absent. A link of that name that is not a bridge is an error. An
/// ADD racing with another one to create it loses with EEXIST and uses the winner's. A new
/// bridge gets `cfg.mtu` and a random locally administered MAC, which the kernel then keeps
/// (an address set by the user does not follow the ports as they come and go, so containers'
/// ARP entries for the gateway stay valid). Returns the link and whether we created it.
pub fn ensure_bridge(host: &mut Handle, cfg: &BridgeConfig) -> Result<(Link, bool), BridgeError> {
    let name = cfg.bridge.as_str();
    let (link, created) = match host.link_by_name(name)? {
        Some(l) => (l, false),
        None => match host.create_bridge(name, cfg.mtu, Some(random_mac())) {
            Ok(()) => (host.link(name)?, true),
            Err(e) if e.is_exists() => (host.link(name)?, false),
            Err(e) => return Err(e.into()),
        },
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(BridgeError::NotABridge {
            name: name.to_owned(),
            kind: link.kind.clone().unwrap_or_else(|| "device".into()),
            netns: host.netns_label().to_owned(),
        });
    }
    if !link.up {
        host.set_up(link.index)?;
    }
    if cfg.promisc {
        host.set_promisc(link.index, true)?;
    }
    Ok((link, created))
}

/// Creates the veth pair from the container side: `ifname` in the container, the host end,
/// `veth<8 hex>`, born directly in the host namespace (`host_ns`), the MTU on both ends. A
/// taken host name is retried with another random one.
pub fn create_veth(
    ctr: &mut Handle,
    host_ns: BorrowedFd<'_>,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
) -> Result<String, BridgeError> {
    let mut last = String::new();
    for _ in 0..VETH_NAME_ATTEMPTS {
        let host_name = veth_name();
        let spec = VethSpec {
            name: ifname,
            peer_name: &host_name,
            mtu,
            mac,
            peer_mac: None,
            netns: None,
            peer_netns: Some(host_ns),
        };
        match ctr.create_veth(&spec) {
            Ok(()) => return Ok(host_name),
            Err(e) if e.is_exists() => {
                if ctr.link_by_name(ifname)?.is_some() {
                    return Err(BridgeError::IfaceExists {
                        ifname: ifname.to_owned(),
                        netns: ctr.netns_label().to_owned(),
                    });
                }
                last = host_name;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(BridgeError::NoVethName {
        attempts: VETH_NAME_ATTEMPTS,
        last,
    })
}

/// Puts each of `wants` (gateway/prefix) on the bridge unless it is there, with one address
/// dump for all of them.
///
/// Another global address of the same family that overlaps a wanted one is an error, or, with
/// `force`, is removed first (the reference bridge's `forceAddress`). `exclusive` (ecs-bridge)
/// treats any other global address of the family as a mismatch. Link-local addresses are
/// ignored. An address added meanwhile by a concurrent ADD is fine. A failure names the
/// address it was about.
pub fn ensure_bridge_addrs(
    host: &mut Handle,
    bridge: &Link,
    wants: &[IpNetwork],
    force: bool,
    exclusive: bool,
) -> Result<(), Box<(IpNetwork, BridgeError)>> {
    let Some(first) = wants.first() else {
        return Ok(());
    };
    let mut addrs: Vec<IpNetwork> = host
        .addrs(Some(bridge.index))
        .map_err(|e| Box::new((*first, e.into())))?
        .into_iter()
        .filter(|a| a.scope == nl::Scope::Universe)
        .map(|a| a.net)
        .collect();
    for want in wants {
        let want = *want;
        if addrs.contains(&want) {
            continue;
        }
        let in_the_way: Vec<IpNetwork> = addrs
            .iter()
            .copied()
            .filter(|a| {
                a.is_ipv4() == want.is_ipv4()
                    && !wants.contains(a)
                    && (exclusive || a.contains(want.ip()) || want.contains(a.ip()))
            })
            .collect();
        for a in in_the_way {
            if !force || exclusive {
                return Err(Box::new((
                    want,
                    BridgeError::BridgeAddress {
                        bridge: bridge.name.clone(),
                        netns: host.netns_label().to_owned(),
                        existing: a.to_string(),
                        wanted: want.to_string(),
                        hint: if exclusive {
                            " (mismatch in the bridge's address for this family)"
                        } else {
                            " (set forceAddress to replace it)"
                        },
                    },
                )));
            }
            match host.del_addr(bridge.index, a) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(Box::new((want, e.into()))),
            }
            addrs.retain(|x| *x != a);
        }
        match host.add_addr(bridge.index, want, want.is_ipv6()) {
            Ok(()) => addrs.push(want),
            Err(e) if e.is_exists() => addrs.push(want),
            Err(e) => return Err(Box::new((want, e.into()))),
        }
    }
    Ok(())
}

/// Sets a host (plugin namespace) sysctl to `1` unless it already is; a key that does not
/// exist (no IPv6 in the kernel) is skipped.
pub fn enable_sysctl(key: &str) -> Result<(), BridgeError> {
    let path = std::path::Path::new("/proc/sys").join(key);
    match std::fs::read_to_string(&path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => std::fs::write(&path, "1").map_err(|source| BridgeError::Sysctl {
            key: key.replace('/', "."),
            value: "1".into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_and_macs() {
        let n = veth_name();
        assert_eq!(n.len(), 12);
        assert!(n[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(veth_name(), veth_name());
        for _ in 0..100 {
            let m = random_mac();
            assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
        }
    }
}
