//! Finding the ENI, remembering what it looked like in the host, and moving it back.

use std::os::fd::BorrowedFd;
use std::time::Instant;

use netns::{IfName, Mac};
use nl::{Family, Handle, Link, LinkEvent, LinkWatch};

use crate::config::EniConf;
use crate::error::EniError;

/// Prefix of the link alias in which ADD records the ENI's host name and MTU (and any alias it
/// had), so that DEL, a later process, can restore them: `cni-eni:1:<mtu>:<name>:<old alias>`.
/// Interface names cannot contain `:`.
pub const MARKER: &str = "cni-eni:1:";
const ALIAS_MAX: usize = 255;

/// The ENI's state in the host namespace before ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Its host name (`eth1`).
    pub name: String,
    /// Its MTU there.
    pub mtu: u32,
    /// The alias it had, if any.
    pub alias: Option<String>,
    /// Whether it was up.
    pub up: bool,
}

impl Origin {
    /// The state to restore for `link`. A link that already carries our marker came back to
    /// the host when its namespace died (the kernel returns physical devices, possibly renamed
    /// `devN`): its original state is the one in the marker.
    pub fn of(link: &Link) -> Origin {
        if let Some(o) = link.alias.as_deref().and_then(Origin::decode) {
            return Origin { up: link.up, ..o };
        }
        Origin {
            name: link.name.clone(),
            mtu: link.mtu,
            alias: link.alias.clone(),
            up: link.up,
        }
    }

    /// The alias that records this origin (the old alias is cut to fit 255 bytes).
    pub fn encode(&self) -> String {
        let mut s = format!("{MARKER}{}:{}:", self.mtu, self.name);
        if let Some(a) = &self.alias {
            for c in a.chars() {
                if s.len() + c.len_utf8() > ALIAS_MAX {
                    break;
                }
                s.push(c);
            }
        }
        s
    }

    /// Reads a marker alias; `None` for any other alias.
    pub fn decode(alias: &str) -> Option<Origin> {
        let rest = alias.strip_prefix(MARKER)?;
        let (mtu, rest) = rest.split_once(':')?;
        let (name, old) = rest.split_once(':')?;
        if IfName::problem(name).is_some() {
            return None;
        }
        Some(Origin {
            name: name.to_string(),
            mtu: mtu.parse().ok()?,
            alias: (!old.is_empty()).then(|| old.to_string()),
            up: false,
        })
    }
}

/// A name for the ENI while its own is taken: `eni` + the last three MAC bytes.
pub fn temp_name(mac: Mac) -> String {
    let m = mac.octets();
    format!("eni{:02x}{:02x}{:02x}", m[3], m[4], m[5])
}

/// [`temp_name`] of the link's MAC; `eni<index>` for a link without one.
pub fn temp_name_for(link: &Link) -> String {
    link.mac
        .map_or_else(|| format!("eni{}", link.index), temp_name)
}

/// Link kinds that share a MAC with the device below them; never the ENI itself.
fn is_upper_kind(l: &Link) -> bool {
    matches!(
        l.kind.as_deref(),
        Some("bridge" | "vlan" | "macvlan" | "macvtap" | "ipvlan" | "bond" | "team" | "vrf")
    )
}

/// Looks the ENI up once: by `eniName` first (its MAC must then match a configured MAC), else
/// by MAC (a device rather than a bridge/VLAN/macvlan on it, then one that is no bridge's or
/// bond's port, then the shortest name). By MAC, the links without a master are asked for
/// first: the kernel filters that dump, so a node whose thousands of veths are bridge ports
/// does not pay a message per veth. Only when no device among them carries the MAC (or the
/// kernel cannot filter) are all links dumped.
pub fn lookup(h: &mut Handle, conf: &EniConf) -> Result<Option<Link>, EniError> {
    if let Some(name) = &conf.name {
        if let Some(link) = h.link_by_name(name)? {
            if let (Some(want), found) = (conf.mac, link.mac) {
                if found != Some(want) {
                    return Err(EniError::MacMismatch {
                        name: link.name,
                        found: found.map_or_else(|| "none".into(), |m| m.to_string()),
                        key: conf.mac_key.clone(),
                        wanted: want.to_string(),
                    });
                }
            }
            return Ok(Some(link));
        }
    }
    let Some(mac) = conf.mac else {
        return Ok(None);
    };
    Ok(h.links_with_mac_free_first(mac, has_device)?
        .into_iter()
        .filter(|l| !l.loopback)
        .min_by_key(|l| (is_upper_kind(l), l.master.is_some(), l.name.len(), l.index)))
}

/// Whether `links` hold a device that could be the ENI (neither loopback nor an upper kind):
/// then the links without a master are enough, and no dump of every link is needed.
fn has_device(links: &[Link]) -> bool {
    links.iter().any(|l| !l.loopback && !is_upper_kind(l))
}

/// The ENI inside the container already: by MAC, or (without a MAC) by `eniName` carrying our
/// record. A link of that name without our record is someone else's.
fn in_container(ctr: &mut Handle, conf: &EniConf) -> Result<Option<Link>, EniError> {
    if let Some(mac) = conf.mac {
        return Ok(ctr.links_with_mac(mac)?.into_iter().find(|l| !l.loopback));
    }
    match &conf.name {
        Some(name) => Ok(ctr
            .link_by_name(name)?
            .filter(|l| l.alias.as_deref().is_some_and(|a| a.starts_with(MARKER)))),
        None => Ok(None),
    }
}

/// The ENI in the container (DEL, CHECK): CNI_IFNAME if it is ours (our marker, or the
/// configured MAC), else the link with the configured MAC, else the one named `eniName`
/// carrying our marker.
pub fn find_in_container(
    ctr: &mut Handle,
    ifname: &str,
    mac: Option<Mac>,
    name: Option<&str>,
) -> Result<Option<Link>, EniError> {
    let ours = |l: &Link| {
        l.alias.as_deref().is_some_and(|a| a.starts_with(MARKER)) || (mac.is_some() && l.mac == mac)
    };
    if let Some(l) = ctr.link_by_name(ifname)? {
        if ours(&l) && mac.is_none_or(|m| l.mac == Some(m)) {
            return Ok(Some(l));
        }
    }
    if let Some(m) = mac {
        if let Some(l) = ctr
            .links_with_mac(m)?
            .into_iter()
            .filter(|l| !l.loopback)
            .min_by_key(|l| (!ours(l), l.name.len()))
        {
            return Ok(Some(l));
        }
    }
    if let Some(n) = name {
        if let Some(l) = ctr.link_by_name(n)? {
            if ours(&l) {
                return Ok(Some(l));
            }
        }
    }
    Ok(None)
}

/// [`lookup`], then, while the ENI is not there, a wait for the kernel's link notifications
/// until it appears or `conf.wait` is over (then code 11). Before the wait, the container
/// namespace is looked at too: an ENI already there is a repeated ADD, reported at once. The
/// wait subscribes first and looks once more, then looks again only when a notification names a
/// link that could be the ENI (its MAC or name), or when notifications were lost: no dump per
/// poll on a host with thousands of links.
pub fn wait_for(host: &mut Handle, ctr: &mut Handle, conf: &EniConf) -> Result<Link, EniError> {
    let start = Instant::now();
    if let Some(link) = lookup(host, conf)? {
        return Ok(link);
    }
    if let Some(l) = in_container(ctr, conf)? {
        return Err(EniError::AlreadyInContainer {
            what: conf.describe(),
            netns: ctr.netns_label().to_string(),
            ifname: l.name,
        });
    }
    let not_found = |host: &Handle| EniError::NotFound {
        what: conf.describe(),
        netns: host.netns_label().to_string(),
        waited_ms: start.elapsed().as_millis(),
    };
    if conf.wait.is_zero() {
        return Err(not_found(host));
    }
    let deadline = start + conf.wait;
    // subscribed before the next look: an ENI that appears after it is announced
    let mut watch = LinkWatch::current()?;
    loop {
        if let Some(link) = lookup(host, conf)? {
            return Ok(link);
        }
        loop {
            match watch.next(deadline)? {
                None => return Err(not_found(host)),
                Some(LinkEvent::Changed(l)) if could_be(&l, conf) => break,
                Some(LinkEvent::Overrun) => break,
                Some(_) => {}
            }
        }
    }
}

/// Whether a link that just appeared or changed may be the configured ENI (then [`lookup`]
/// decides).
fn could_be(link: &Link, conf: &EniConf) -> bool {
    (conf.mac.is_some() && link.mac == conf.mac) || conf.name.as_deref() == Some(&*link.name)
}

/// Refuses the loopback device and the interface carrying the host's default route (IPv4 or
/// IPv6): moving it would cut the host off.
pub fn refuse_host_critical(
    host: &mut Handle,
    link: &Link,
    conf: &EniConf,
) -> Result<(), EniError> {
    let netns = host.netns_label().to_string();
    let refuse = |reason: String| EniError::Refused {
        name: link.name.clone(),
        index: link.index,
        what: conf.describe(),
        netns: netns.clone(),
        reason,
    };
    if link.loopback {
        return Err(refuse("it is the loopback device".into()));
    }
    for fam in [Family::V4, Family::V6] {
        let routes = match host.routes_via(fam, link.index) {
            Ok(r) => r,
            // no IPv6 in the host: nothing to refuse
            Err(e)
                if fam == Family::V6
                    && matches!(e.errno(), Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)) =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(r) = routes.iter().find(|r| r.dst.prefix() == 0) {
            let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(refuse(format!(
                "it carries the host's default route {}{via}; configure the ENI's MAC, not the primary interface's",
                r.dst
            )));
        }
    }
    Ok(())
}

/// Moves `link` (in the namespace of `ctr`) back to the host namespace `host_fd` as it was:
/// down, MTU and alias restored, original name (or [`temp_name`] when the name is taken on
/// either side, then renamed in the host if possible). Returns the name it has in the host.
pub fn return_to_host(
    ctr: &mut Handle,
    link: &Link,
    origin: &Origin,
    host_fd: BorrowedFd<'_>,
    host: &mut Handle,
) -> Result<String, EniError> {
    let idx = link.index;
    if link.up {
        ctr.set_down(idx)?;
    }
    if link.mtu != origin.mtu {
        ctr.set_mtu(idx, origin.mtu)?;
    }
    // the alias travels with the link: restore it here, no host round trip needed
    ctr.set_alias(idx, origin.alias.as_deref().unwrap_or(""))?;
    let tmp = temp_name_for(link);
    let mut carried = link.name.clone();
    if carried != origin.name {
        match ctr.rename(idx, &origin.name) {
            Ok(()) => carried = origin.name.clone(),
            Err(e) if e.is_exists() => {
                ctr.rename(idx, &tmp)?;
                carried = tmp.clone();
            }
            Err(e) => return Err(e.into()),
        }
    }
    match ctr.set_netns(idx, host_fd) {
        Ok(()) => {}
        Err(e) if e.is_exists() && carried != tmp => {
            // the name is taken in the host: cross under the temporary name
            ctr.rename(idx, &tmp)?;
            carried = tmp.clone();
            ctr.set_netns(idx, host_fd)?;
        }
        Err(e) => return Err(e.into()),
    }
    if carried != origin.name {
        if let Some(l) = host.link_by_name(&carried)? {
            match host.rename(l.index, &origin.name) {
                Ok(()) => carried = origin.name.clone(),
                Err(e) if e.is_exists() => {} // keep the temporary name; nothing of ours clashes
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(carried)
}

/// DEL without the ENI in the container: if it is back in the host carrying our marker (the
/// kernel returns physical devices to the host when a namespace dies, under the container
/// name or `devN`), restore its name, MTU and alias there. Best effort: a name taken in the
/// host is left as it is. As in [`lookup`], the links without a master are asked for first;
/// every link is dumped only when no device among them carries the MAC.
pub fn restore_in_host(host: &mut Handle, mac: Option<Mac>) -> Result<(), EniError> {
    let Some(mac) = mac else {
        return Ok(());
    };
    let Some(link) = host
        .links_with_mac_free_first(mac, has_device)?
        .into_iter()
        .find(|l| l.alias.as_deref().is_some_and(|a| a.starts_with(MARKER)))
    else {
        return Ok(());
    };
    let Some(origin) = link.alias.as_deref().and_then(Origin::decode) else {
        return Ok(());
    };
    if link.name != origin.name {
        if link.up {
            host.set_down(link.index)?;
        }
        match host.rename(link.index, &origin.name) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if link.mtu != origin.mtu {
        host.set_mtu(link.index, origin.mtu)?;
    }
    host.set_alias(link.index, origin.alias.as_deref().unwrap_or(""))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_roundtrip() {
        let o = Origin {
            name: "eth1".into(),
            mtu: 1500,
            alias: None,
            up: false,
        };
        assert_eq!(o.encode(), "cni-eni:1:1500:eth1:");
        assert_eq!(Origin::decode(&o.encode()), Some(o.clone()));
        let o2 = Origin {
            alias: Some("uplink: a:b".into()),
            ..o
        };
        assert_eq!(o2.encode(), "cni-eni:1:1500:eth1:uplink: a:b");
        assert_eq!(Origin::decode(&o2.encode()), Some(o2));
        let long = Origin {
            name: "eth1".into(),
            mtu: 9001,
            alias: Some("é".repeat(200)),
            up: false,
        };
        let enc = long.encode();
        assert!(enc.len() <= 255, "{}", enc.len());
        assert!(
            Origin::decode(&enc)
                .unwrap()
                .alias
                .unwrap()
                .starts_with("éé")
        );
        for other in [
            "",
            "uplink",
            "cni-eni:1:x:eth1:",
            "cni-eni:1:1500:",
            "cni-eni:1:1500::",
        ] {
            assert_eq!(Origin::decode(other), None, "{other}");
        }
    }

    #[test]
    fn origin_of_a_returned_eni_is_the_marker() {
        let mut l = Link {
            index: 7,
            name: "dev7".into(),
            mac: Some(Mac::new([2, 0, 0, 0, 0, 1])),
            mtu: 9001,
            up: false,
            oper_up: false,
            kind: None,
            master: None,
            alias: Some("cni-eni:1:1500:eth1:".into()),
            peer_index: None,
            link_netnsid: None,
            vlan_id: None,
            loopback: false,
        };
        assert_eq!(
            Origin::of(&l),
            Origin {
                name: "eth1".into(),
                mtu: 1500,
                alias: None,
                up: false
            }
        );
        l.alias = Some("mine".into());
        l.up = true;
        assert_eq!(
            Origin::of(&l),
            Origin {
                name: "dev7".into(),
                mtu: 9001,
                alias: Some("mine".into()),
                up: true
            }
        );
        assert_eq!(
            temp_name(Mac::new([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])),
            "eni3d4e5f"
        );
    }
}
