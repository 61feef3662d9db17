//! Kernel-facing helpers: the trunk, the 802.1Q probe, who holds a VLAN id, names and tags.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use netns::{MAX_IFNAME_LEN, Netns, NsId};
use nl::{Handle, Link, VethSpec, VlanSpec};

use crate::config::TrunkRef;
use crate::error::BranchEniError;

/// Alias prefix marking links this plugin created: `cni:<containerID>/<ifname>`.
pub const TAG_PREFIX: &str = "cni:";

/// The alias recording which attachment owns a link (`IFLA_IFALIAS`, at most 255 bytes).
pub fn owner_tag(container_id: &str, ifname: &str) -> String {
    // CNI_IFNAME is at most 15 bytes; container IDs are 64 hex digits in practice
    let id: String = container_id.chars().take(230).collect();
    format!("{TAG_PREFIX}{id}/{ifname}")
}

/// The link's kind as the kernel names it (`vlan`, `tun`, `macvtap`, `bridge`, ...), or
/// `plain` for a link without one.
pub(crate) fn kind_of(l: &Link) -> &str {
    l.kind.as_deref().unwrap_or("plain")
}

/// Whether `l` is of kind `kind`.
pub(crate) fn is_kind(l: &Link, kind: &str) -> bool {
    l.kind.as_deref() == Some(kind)
}

/// Whether `l` carries the alias `tag` ([`owner_tag`]).
pub(crate) fn is_tagged(l: &Link, tag: &str) -> bool {
    l.alias.as_deref() == Some(tag)
}

/// `(container ..., interface ...)` for an alias written by [`owner_tag`].
pub fn describe_tag(alias: Option<&str>) -> String {
    match alias.and_then(|a| a.strip_prefix(TAG_PREFIX)) {
        Some(rest) => match rest.rsplit_once('/') {
            Some((id, ifname)) => format!(" (container {id}, interface {ifname})"),
            None => format!(" (alias {rest})"),
        },
        None => String::new(),
    }
}

/// The temporary name of the VLAN link of attachment `tag` ([`owner_tag`]) until it is renamed:
/// `brtmp` + 8 hex digits of a hash of the tag. Deterministic, so that DEL finds a link left
/// under it by an ADD killed between creating and tagging it, and a retried ADD can clear it.
pub fn temp_name(tag: &str) -> String {
    // FNV-1a, 32 bits: stable across builds and platforms (std's hasher is not).
    format!("brtmp{:08x}", netns::fnv1a_32(tag.as_bytes()))
}

/// The name of the 802.1Q link in tap and macvtap modes: `<trunk>.<vlan>` as vpc-branch-eni
/// names it, or `vlan<id>` when that would exceed 15 bytes.
pub fn vlan_link_name(trunk: &str, vlan_id: u16) -> String {
    let name = format!("{trunk}.{vlan_id}");
    if name.len() <= MAX_IFNAME_LEN {
        name
    } else {
        format!("vlan{vlan_id}")
    }
}

/// The bridge of tap mode, named as vpc-branch-eni names it.
pub fn bridge_name(vlan_id: u16) -> String {
    format!("tapbr{vlan_id}")
}

/// The trunk in the namespace of `host`: by name if configured, else by MAC (shortest name).
pub fn find_trunk(host: &mut Handle, trunk: &TrunkRef) -> Result<Link, BranchEniError> {
    let found = match (&trunk.name, &trunk.mac) {
        (Some(name), _) => host.link_by_name(name)?,
        (None, Some(mac)) => host.link_by_mac(*mac)?,
        (None, None) => None,
    };
    found.ok_or_else(|| BranchEniError::TrunkNotFound {
        trunk: trunk.to_string(),
        netns: host.netns_label().to_string(),
    })
}

/// Whether the kernel can create 802.1Q links: in a fresh, empty network namespace of its own
/// ([`Netns::in_fresh`]), a veth pair is created and a VLAN on it. Nothing outside that
/// namespace is touched; it disappears with the thread that made it. `Ok(false)` only when
/// the kernel does not know the link kind (EOPNOTSUPP); other failures are errors.
pub fn vlan_supported() -> Result<bool, nl::Error> {
    let probe = || -> Result<bool, nl::Error> {
        let mut h = Handle::current()?;
        h.create_veth(&VethSpec {
            name: "probe0",
            peer_name: "probe1",
            ..VethSpec::default()
        })?;
        let parent = h.link("probe0")?;
        match h.create_vlan(&VlanSpec {
            name: "probe0.1",
            parent: parent.index,
            vlan_id: 1,
            ..VlanSpec::default()
        }) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_supported() => Ok(false),
            Err(e) => Err(e),
        }
    };
    Netns::in_fresh(probe)?
}

/// Whether `l` is the 802.1Q link with `vlan_id` on `trunk` (whose parent lives in another
/// namespace when `remote`).
pub(crate) fn is_branch_of(l: &Link, trunk: &Link, vlan_id: u16, remote: bool) -> bool {
    is_kind(l, "vlan")
        && l.vlan_id == Some(vlan_id)
        && l.peer_index == Some(trunk.index)
        && l.link_netnsid.is_some() == remote
}

/// Where the VLAN `vlan_id` of `trunk` lives, for the error when the kernel refuses a second
/// one: the host namespace, the container namespace, then every namespace reachable through
/// `/run/netns` and `/proc/*/ns/net` (each looked at once). Only used on that error path.
pub fn find_vlan_owner(host: &mut Handle, trunk: &Link, vlan_id: u16, container: &Path) -> String {
    let describe = |l: &Link, where_: &str| {
        format!(
            "link {}{} in {where_}",
            l.name,
            describe_tag(l.alias.as_deref())
        )
    };
    if let Ok(links) = host.links() {
        if let Some(l) = links
            .iter()
            .find(|l| is_branch_of(l, trunk, vlan_id, false))
        {
            return describe(l, "the host network namespace");
        }
    }
    let mut seen: HashSet<NsId> = HashSet::new();
    if let Ok(id) = NsId::current() {
        seen.insert(id);
    }
    let mut candidates: Vec<PathBuf> = vec![container.to_path_buf()];
    for dir in ["/run/netns", "/var/run/netns"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            candidates.extend(entries.flatten().map(|e| e.path()));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        candidates.extend(
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|e| e.path().join("ns/net")),
        );
    }
    for path in candidates {
        let Ok(ns) = Netns::open(&path) else { continue };
        let Ok(id) = ns.id() else { continue };
        if !seen.insert(id) {
            continue;
        }
        let Ok(mut h) = Handle::open_in(&ns) else {
            continue;
        };
        let Ok(links) = h.links() else { continue };
        if let Some(l) = links.iter().find(|l| is_branch_of(l, trunk, vlan_id, true)) {
            return describe(l, &format!("netns {}", path.display()));
        }
    }
    "a link in a network namespace not reachable through /run/netns or /proc/*/ns/net".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(owner_tag("ctr-1", "eth0"), "cni:ctr-1/eth0");
        assert!(owner_tag(&"a".repeat(300), "eth0").len() < 256);
        assert_eq!(
            describe_tag(Some("cni:ctr-1/eth0")),
            " (container ctr-1, interface eth0)"
        );
        assert_eq!(describe_tag(Some("uplink")), "");
        assert_eq!(describe_tag(None), "");
        assert_eq!(vlan_link_name("eth1", 102), "eth1.102");
        assert_eq!(vlan_link_name("enp0s31f6xy", 4094), "vlan4094");
        assert_eq!(bridge_name(7), "tapbr7");
        let t = temp_name("cni:ctr-a/eth0");
        assert!(t.starts_with("brtmp") && t.len() == 13, "{t}");
        assert_eq!(t, temp_name("cni:ctr-a/eth0"), "stable");
        assert_ne!(t, temp_name("cni:ctr-b/eth0"));
    }

    /// The temporary name is FNV-1a 32 of the tag, bit for bit: a link left by an ADD of an
    /// older build must still be found by this one's DEL.
    #[test]
    fn temp_names_are_pinned() {
        assert_eq!(temp_name("cni:ctr-a/eth0"), "brtmpc30d9c04");
        assert_eq!(temp_name(""), "brtmp811c9dc5");
        assert_eq!(temp_name("a"), "brtmpe40c292c");
        assert_eq!(temp_name("foobar"), "brtmpbf9cf968");
    }

    /// On a kernel without 8021q (this project's build hosts) the probe says so; with it, it
    /// says yes. Either way it answers, and leaves nothing behind in our namespace.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn probe_answers_without_touching_our_namespace() {
        let supported = vlan_supported().unwrap();
        if Path::new("/proc/net/vlan").exists() {
            assert!(supported, "8021q is loaded, yet the probe says no");
        } else if !Path::new("/proc/modules").exists() {
            assert!(
                !supported,
                "no 8021q and no modules, yet the probe says yes"
            );
        }
        let mut h = Handle::current().unwrap();
        for name in ["probe0", "probe1", "probe0.1"] {
            assert_eq!(h.link_by_name(name).unwrap(), None, "{name} leaked");
        }
    }
}
