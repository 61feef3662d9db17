//! CHECK: compares the kernel's state with the config and prevResult, and names every
//! difference ([`BranchEniError::Mismatch`]).

use cni_spec::CniResult;
use netns::{Mac, Netns};
use nl::{Handle, Link};

use crate::config::{BranchConf, Mode};
use crate::error::BranchEniError;
use crate::kernel::{self, is_kind, kind_of};

/// CHECK: the links of the attachment (kind, VLAN id, parent = the trunk, MAC, MTU, up,
/// bridge membership), the addresses and routes (vlan mode) and the IMDS blackholes, and that
/// prevResult lists CNI_IFNAME in this namespace. Every difference is named.
pub fn check(
    conf: &BranchConf,
    ns: &Netns,
    ifname: &str,
    prev: &CniResult,
) -> Result<(), BranchEniError> {
    let mut diffs = Diffs::new(ifname, ns);
    let mut ctr = Handle::open_in(ns)?;
    let mut host = Handle::current()?;
    let trunk = kernel::find_trunk(&mut host, &conf.trunk)?;
    let prev_index = diffs.check_prev_result(prev);
    let links = ctr.links()?;
    let Some(main) = links.iter().find(|l| l.name == ifname) else {
        diffs.push(format!("link {ifname} does not exist"));
        return Err(diffs.mismatch());
    };
    let layout = match conf.mode {
        Mode::Vlan => Some(Layout {
            vlan: Some(main),
            vlan_mac: conf.branch_mac,
            imds_on: None,
        }),
        Mode::Tap { .. } => diffs.check_tap(conf, main, &links),
        Mode::Macvtap => Some(diffs.check_macvtap(conf, main, &links)),
    };
    let Some(layout) = layout else {
        return Err(diffs.mismatch());
    };
    let Some(vlan) = layout.vlan else {
        diffs.push(format!("no 802.1Q link of {ifname} found"));
        return Err(diffs.mismatch());
    };
    diffs.check_vlan_link(conf, vlan, &trunk, layout.vlan_mac);
    let (index, cfg) = match layout.imds_on {
        None => (vlan.index, vlan_mode_config(conf, prev, prev_index)),
        Some(index) => (index, conf.imds_config()),
    };
    diffs.check_ip(&mut ctr, index, &cfg)?;
    diffs.finish()
}

/// The links of the attachment besides CNI_IFNAME, as the mode arranges them.
struct Layout<'l> {
    /// The 802.1Q link: CNI_IFNAME itself (vlan), the bridge's 802.1Q port (tap), the
    /// macvtap's parent (macvtap); `None` when it was not found.
    vlan: Option<&'l Link>,
    /// The MAC the 802.1Q link must carry.
    vlan_mac: Mac,
    /// Where the IMDS blackholes are checked in tap and macvtap modes; `None` in vlan mode,
    /// where the whole IP configuration is checked on the 802.1Q link.
    imds_on: Option<u32>,
}

/// vlan mode: the configured addresses plus any prevResult lists for CNI_IFNAME (the MTU is
/// compared with the link itself).
fn vlan_mode_config(
    conf: &BranchConf,
    prev: &CniResult,
    prev_index: Option<usize>,
) -> ipconf::IfaceConfig {
    let mut cfg = conf.iface_config(None);
    for ip in &prev.ips {
        if ip.interface == prev_index && !cfg.addresses.contains(&ip.address) {
            cfg.addresses.push(ip.address);
        }
    }
    cfg
}

/// The differences found so far, in the order they were found.
struct Diffs<'a> {
    ifname: &'a str,
    netns: String,
    found: Vec<String>,
}

/// The steps of CHECK.
impl Diffs<'_> {
    /// prevResult lists CNI_IFNAME in this sandbox; returns its index in `interfaces`.
    fn check_prev_result(&mut self, prev: &CniResult) -> Option<usize> {
        let ifname = self.ifname;
        let index = prev.interfaces.iter().position(|i| i.name == ifname);
        match index.and_then(|i| prev.interfaces.get(i)) {
            None => self.push(format!("prevResult lists no interface {ifname}")),
            Some(i) if i.sandbox.as_deref() != Some(self.netns.as_str()) => {
                let diff = format!(
                    "prevResult puts {ifname} in sandbox {:?}, not {}",
                    i.sandbox.as_deref().unwrap_or(""),
                    self.netns
                );
                self.push(diff);
            }
            Some(_) => {}
        }
        index
    }

    /// tap mode: CNI_IFNAME is a TAP, up, with the tap MTU, enslaved to an up bridge with the
    /// same MTU; the 802.1Q link is the bridge's port and carries the bridge's MAC. `None`
    /// when there is no bridge to look further from.
    fn check_tap<'l>(
        &mut self,
        conf: &BranchConf,
        main: &Link,
        links: &'l [Link],
    ) -> Option<Layout<'l>> {
        let ifname = self.ifname;
        let tap_mtu = conf.tap_mtu();
        self.kind(main, "tun", "a tap");
        self.up(ifname, main);
        self.mtu(ifname, main, tap_mtu);
        let Some(br) = main
            .master
            .and_then(|m| links.iter().find(|l| l.index == m))
        else {
            self.push(format!("{ifname} is not enslaved to a bridge"));
            return None;
        };
        self.expect(
            is_kind(br, "bridge"),
            format!("master {} of {ifname} is not a bridge", br.name),
        );
        let label = format!("bridge {}", br.name);
        self.up(&label, br);
        self.mtu(&label, br, tap_mtu);
        let port = links
            .iter()
            .find(|l| l.master == Some(br.index) && is_kind(l, "vlan"));
        Some(Layout {
            vlan: port,
            vlan_mac: br.mac.unwrap_or_default(),
            imds_on: Some(br.index),
        })
    }

    /// macvtap mode: CNI_IFNAME is a macvtap, up, with the branch MAC; the 802.1Q link is its
    /// parent and carries the branch MAC too.
    fn check_macvtap<'l>(
        &mut self,
        conf: &BranchConf,
        main: &Link,
        links: &'l [Link],
    ) -> Layout<'l> {
        let ifname = self.ifname;
        self.kind(main, "macvtap", "a macvtap");
        self.up(ifname, main);
        self.mac(ifname, main, conf.branch_mac);
        let parent = main
            .peer_index
            .and_then(|p| links.iter().find(|l| l.index == p));
        Layout {
            vlan: parent,
            vlan_mac: conf.branch_mac,
            imds_on: Some(main.index),
        }
    }

    /// The 802.1Q link: its kind, VLAN id, parent (the trunk, in the host namespace), MAC,
    /// MTU, and that it is up.
    fn check_vlan_link(&mut self, conf: &BranchConf, vlan: &Link, trunk: &Link, mac: Mac) {
        let v = &vlan.name;
        self.kind(vlan, "vlan", "an 802.1Q VLAN");
        self.expect(
            vlan.vlan_id == Some(conf.vlan_id),
            format!(
                "{v} has VLAN id {} instead of {}",
                vlan.vlan_id.map(|i| i.to_string()).unwrap_or_default(),
                conf.vlan_id
            ),
        );
        self.expect(
            vlan.peer_index == Some(trunk.index) && vlan.link_netnsid.is_some(),
            format!(
                "the parent of {v} is not trunk {} (index {}) of the host namespace",
                trunk.name, trunk.index
            ),
        );
        self.mac(v, vlan, mac);
        self.mtu(v, vlan, conf.vlan_mtu(trunk.mtu));
        self.up(v, vlan);
    }

    /// The IP configuration `cfg` on link `index` (addresses, default routes, IMDS
    /// blackholes); its differences join ours.
    fn check_ip(
        &mut self,
        ctr: &mut Handle,
        index: u32,
        cfg: &ipconf::IfaceConfig,
    ) -> Result<(), BranchEniError> {
        match ipconf::check(ctr, index, cfg) {
            Ok(()) => Ok(()),
            Err(ipconf::Error::Mismatch { diffs, .. }) => {
                self.found.extend(diffs);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Recording differences.
impl<'a> Diffs<'a> {
    fn new(ifname: &'a str, ns: &Netns) -> Self {
        Diffs {
            ifname,
            netns: ns.path().display().to_string(),
            found: Vec::new(),
        }
    }

    fn push(&mut self, diff: String) {
        self.found.push(diff);
    }

    /// Records `diff` unless `ok`.
    fn expect(&mut self, ok: bool, diff: String) {
        if !ok {
            self.push(diff);
        }
    }

    /// `l` is of kind `kind` (`what` names it for people: `a tap`).
    fn kind(&mut self, l: &Link, kind: &str, what: &str) {
        let diff = format!("{} is a {} link, not {what}", l.name, kind_of(l));
        self.expect(is_kind(l, kind), diff);
    }

    /// `l`, called `label` in the message, is up.
    fn up(&mut self, label: &str, l: &Link) {
        self.expect(l.up, format!("{label} is down"));
    }

    /// `l`, called `label` in the message, has MTU `want`.
    fn mtu(&mut self, label: &str, l: &Link, want: u32) {
        let diff = format!("{label} has mtu {} instead of {want}", l.mtu);
        self.expect(l.mtu == want, diff);
    }

    /// `l`, called `label` in the message, has MAC `want`.
    fn mac(&mut self, label: &str, l: &Link, want: Mac) {
        let diff = format!(
            "{label} has MAC {} instead of {want}",
            l.mac.map(|m| m.to_string()).unwrap_or_default()
        );
        self.expect(l.mac == Some(want), diff);
    }

    fn mismatch(self) -> BranchEniError {
        BranchEniError::Mismatch {
            ifname: self.ifname.to_owned(),
            netns: self.netns,
            diffs: self.found,
        }
    }

    fn finish(self) -> Result<(), BranchEniError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(self.mismatch())
        }
    }
}
