//! `branch-eni`: ENI trunking. A branch ENI is an 802.1Q VLAN on the instance's trunk ENI; this
//! plugin gives a task its branch, in the task's network namespace, in one of three forms:
//!
//! - **vlan**: the 802.1Q link itself, born in the container namespace under a temporary name,
//!   renamed to CNI_IFNAME, with the branch MAC, the addresses, a default route per gateway
//!   and optional IMDS blackholes (the same IP code as `eni`, crate `ipconf`).
//! - **tap** (VMs such as Firecracker): a bridge `tapbr<vlan>` joining the 802.1Q link and a
//!   TAP named CNI_IFNAME owned by `uid`/`gid`, with vnet headers and MTU 9001.
//! - **macvtap**: a passthru macvtap named CNI_IFNAME on the 802.1Q link.
//!
//! Every link ADD creates carries the alias `cni:<containerID>/<ifname>`: a retried ADD
//! recognises its own links, the error for a VLAN id already in use names its owner, and DEL
//! finds what to delete without looking at the trunk. A failed ADD undoes its earlier steps.
//! CHECK compares the links, addresses and routes with the config; STATUS reports code 50
//! when the kernel has no 802.1Q support; GC has nothing to collect (the links die with their
//! namespace).

mod config;
mod error;
mod kernel;

pub use config::{ARG_KEYS, BranchConf, KEYS, Mode, TAP_MTU, TrunkRef, parse_unicast_mac};
pub use error::BranchEniError;
pub use kernel::{owner_tag, vlan_supported};

use cni_spec::{CniResult, Error, Interface, Invocation, Plugin, log_info};
use netns::{Mac, Netns};
use nl::{Handle, Link, MacvlanMode, MacvlanSpec, VlanSpec};

/// The branch-eni plugin.
pub struct BranchEni;

/// Reads the config and the per-container CNI_ARGS of an invocation.
fn conf_of(inv: &Invocation) -> Result<BranchConf, Error> {
    BranchConf::parse(&inv.conf.raw, &inv.env.args)
}

impl Plugin for BranchEni {
    type Error = cni_spec::Error;
    const NAME: &'static str = "branch-eni";
    const ABOUT: &'static str =
        "ENI trunking: a branch ENI (802.1Q VLAN on the trunk) as a vlan, tap or macvtap interface";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        let conf = conf_of(inv)?;
        let ns = inv.netns()?;
        let mut result = add(&conf, ns, &inv.env.container_id, &inv.env.ifname)?;
        if let Some(dns) = &inv.conf.dns {
            result.dns = dns.clone();
        }
        Ok(result)
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        let conf = conf_of(inv)?;
        del(
            &conf,
            inv.env.netns.as_ref(),
            &inv.env.container_id,
            &inv.env.ifname,
        )?;
        Ok(())
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        let conf = conf_of(inv)?;
        let prev = inv.conf.require_prev_result("CHECK")?;
        check(&conf, inv.netns()?, &inv.env.ifname, prev)?;
        Ok(())
    }

    fn status(&self, _inv: &Invocation) -> Result<(), Error> {
        let why = match kernel::vlan_supported() {
            Ok(true) => return Ok(()),
            Ok(false) => "no 802.1Q VLAN support in this kernel (module 8021q missing and not \
                          loadable): branch ENIs cannot be created"
                .to_string(),
            Err(e) => format!("cannot tell whether this kernel supports 802.1Q VLANs: {e}"),
        };
        Err(BranchEniError::Unavailable(why).into())
    }
}

/// One change ADD made, undone in reverse order when a later step fails.
enum Undo {
    /// The trunk was down and ADD brought it up.
    TrunkDown { index: u32 },
    /// A link ADD created in the container namespace.
    DeleteLink { index: u32 },
    /// Addresses and routes `ipconf::apply` added in the container namespace.
    Ipconf(ipconf::Applied),
}

/// The state of one ADD.
struct Add<'a> {
    conf: &'a BranchConf,
    ifname: &'a str,
    tag: String,
    ns: &'a Netns,
    netns: String,
    ctr: Handle,
    host: Handle,
    undo: Vec<Undo>,
}

/// ADD: find the trunk, then either recognise a retried ADD or create the branch; a failure
/// rolls back what was created.
pub fn add(
    conf: &BranchConf,
    ns: &Netns,
    container_id: &str,
    ifname: &str,
) -> Result<CniResult, BranchEniError> {
    let ctr = Handle::open_in(ns)?;
    let mut host = Handle::current()?;
    let trunk = kernel::find_trunk(&mut host, &conf.trunk)?;
    if let Some(mtu) = conf.mtu {
        if mtu > trunk.mtu {
            return Err(BranchEniError::MtuAboveTrunk {
                mtu,
                trunk_mtu: trunk.mtu,
                trunk: trunk.name.clone(),
            });
        }
    }
    let mut a = Add {
        conf,
        ifname,
        tag: kernel::owner_tag(container_id, ifname),
        netns: ns.path().display().to_string(),
        ns,
        ctr,
        host,
        undo: Vec::new(),
    };
    if let Some(existing) = a.ctr.link_by_name(ifname)? {
        log_info!(
            "{ifname} already exists in netns {}: checking for a retried ADD",
            a.netns
        );
        return a.resume(&trunk, existing);
    }
    match a.create(&trunk) {
        Ok(result) => Ok(result),
        Err(e) => Err(a.rollback(e)),
    }
}

impl Add<'_> {
    fn create(&mut self, trunk: &Link) -> Result<CniResult, BranchEniError> {
        if !trunk.up {
            self.host.set_up(trunk.index)?;
            self.undo.push(Undo::TrunkDown { index: trunk.index });
        }
        let conf = self.conf;
        let vlan_mtu = conf.mtu.unwrap_or(trunk.mtu);
        let vlan_name = kernel::vlan_link_name(&trunk.name, conf.vlan_id);
        match conf.mode {
            Mode::Vlan => {
                let vlan = self.create_vlan(trunk, conf.branch_mac)?;
                self.rename(vlan, self.ifname)?;
                let applied =
                    ipconf::apply(self.ns, &mut self.ctr, vlan, &conf.iface_config(None))?;
                self.undo.push(Undo::Ipconf(applied));
                let iface = self.iface(self.ifname, conf.branch_mac, vlan_mtu);
                Ok(self.result(vec![iface], true))
            }
            Mode::Tap { uid, gid } => {
                let tap_mtu = conf.mtu.unwrap_or(TAP_MTU);
                // the bridge and its VLAN port share a MAC that is not the branch MAC (that one
                // belongs to the VM behind the TAP); set explicitly, it stays the bridge's MAC
                let br_mac = Mac::random_local();
                let br_name = kernel::bridge_name(conf.vlan_id);
                let br = self.create_in_container(&br_name, |_, h| {
                    h.create_bridge(&br_name, None, Some(br_mac))
                })?;
                // set after creation, so the kernel keeps it when ports with a smaller MTU join
                self.ctr.set_mtu(br, tap_mtu)?;
                let vlan = self.create_vlan(trunk, br_mac)?;
                self.rename(vlan, &vlan_name)?;
                self.ctr.set_master(vlan, br)?;
                self.ctr.set_up(vlan)?;
                let ifname = self.ifname;
                let tap = self.create_in_container(ifname, |ns, _| {
                    ns.run(|| nl::create_tap(ifname, uid, gid, true, Some(tap_mtu)))?
                })?;
                self.ctr.set_master(tap, br)?;
                self.ctr.set_up(tap)?;
                self.ctr.set_up(br)?;
                self.block_imds(br)?;
                let ifaces = vec![
                    self.iface(ifname, conf.branch_mac, tap_mtu),
                    self.iface(&br_name, br_mac, tap_mtu),
                    self.iface(&vlan_name, br_mac, vlan_mtu),
                ];
                Ok(self.result(ifaces, false))
            }
            Mode::Macvtap => {
                // passthru: the macvtap takes its parent's MAC, so the parent gets the branch MAC
                let vlan = self.create_vlan(trunk, conf.branch_mac)?;
                self.rename(vlan, &vlan_name)?;
                self.ctr.set_up(vlan)?;
                let ifname = self.ifname;
                let mvt = self.create_in_container(ifname, |_, h| {
                    h.create_macvtap(&MacvlanSpec {
                        name: ifname,
                        parent: vlan,
                        mode: MacvlanMode::Passthru,
                        ..MacvlanSpec::default()
                    })
                })?;
                self.ctr.set_up(mvt)?;
                self.block_imds(mvt)?;
                let ifaces = vec![
                    self.iface(ifname, conf.branch_mac, vlan_mtu),
                    self.iface(&vlan_name, conf.branch_mac, vlan_mtu),
                ];
                Ok(self.result(ifaces, false))
            }
        }
    }

    /// Creates the 802.1Q link on the trunk directly inside the container namespace under a
    /// temporary name, tags it, and returns its index there.
    fn create_vlan(&mut self, trunk: &Link, mac: Mac) -> Result<u32, BranchEniError> {
        let temp = kernel::temp_name(&self.tag);
        // Left by an ADD of this attachment killed before it tagged or renamed the link.
        if let Some(stale) = self.ctr.link_by_name(&temp)? {
            log_info!(
                "deleting {temp} (index {}) left by an interrupted ADD",
                stale.index
            );
            self.ctr.delete_link(stale.index)?;
        }
        let spec = VlanSpec {
            name: &temp,
            parent: trunk.index,
            vlan_id: self.conf.vlan_id,
            mac: Some(mac),
            mtu: self.conf.mtu,
            netns: Some(self.ns.fd()),
        };
        if let Err(e) = self.host.create_vlan(&spec) {
            let vlan_id = self.conf.vlan_id;
            return Err(if e.is_exists() {
                let owner = kernel::find_vlan_owner(&mut self.host, trunk, vlan_id, self.ns.path());
                BranchEniError::VlanInUse {
                    trunk: trunk.name.clone(),
                    vlan_id,
                    owner,
                }
            } else if e.is_not_supported() {
                match kernel::vlan_supported() {
                    Ok(false) => BranchEniError::NoVlanSupport {
                        trunk: trunk.name.clone(),
                        vlan_id,
                    },
                    _ => BranchEniError::TrunkWithoutVlans {
                        trunk: trunk.name.clone(),
                        source: e,
                    },
                }
            } else {
                e.into()
            });
        }
        let link = self.ctr.link(&temp)?;
        log_info!(
            "created VLAN {} on trunk {} as {temp} (index {}) in netns {}",
            self.conf.vlan_id,
            trunk.name,
            link.index,
            self.netns
        );
        self.undo.push(Undo::DeleteLink { index: link.index });
        self.ctr.set_alias(link.index, &self.tag)?;
        Ok(link.index)
    }

    /// Runs `create` (which makes link `name` in the container namespace), records it for
    /// rollback and tags it. EEXIST names the link in the way.
    fn create_in_container(
        &mut self,
        name: &str,
        create: impl FnOnce(&Netns, &mut Handle) -> Result<(), nl::Error>,
    ) -> Result<u32, BranchEniError> {
        if let Err(e) = create(self.ns, &mut self.ctr) {
            return Err(self.taken_or(name, e));
        }
        let link = self.ctr.link(name)?;
        self.undo.push(Undo::DeleteLink { index: link.index });
        self.ctr.set_alias(link.index, &self.tag)?;
        Ok(link.index)
    }

    fn rename(&mut self, index: u32, name: &str) -> Result<(), BranchEniError> {
        self.ctr
            .rename(index, name)
            .map_err(|e| self.taken_or(name, e))
    }

    /// EEXIST on `name` becomes [`BranchEniError::NameTaken`], describing the link in the way.
    fn taken_or(&mut self, name: &str, e: nl::Error) -> BranchEniError {
        if !e.is_exists() {
            return e.into();
        }
        let detail = match self.ctr.link_by_name(name) {
            Ok(Some(l)) => format!(
                " (a {} link{})",
                l.kind.as_deref().unwrap_or("plain"),
                kernel::describe_tag(l.alias.as_deref())
            ),
            _ => String::new(),
        };
        BranchEniError::NameTaken {
            name: name.to_owned(),
            netns: self.netns.clone(),
            detail,
        }
    }

    /// IMDS blackholes in tap and macvtap modes (vlan mode gets them from `ipconf::apply`).
    fn block_imds(&mut self, index: u32) -> Result<(), BranchEniError> {
        if !self.conf.block_imds {
            return Ok(());
        }
        let cfg = ipconf::IfaceConfig {
            block_imds: true,
            ..ipconf::IfaceConfig::default()
        };
        let applied = ipconf::apply(self.ns, &mut self.ctr, index, &cfg)?;
        self.undo.push(Undo::Ipconf(applied));
        Ok(())
    }

    fn iface(&self, name: &str, mac: Mac, mtu: u32) -> Interface {
        Interface {
            mtu: Some(mtu),
            ..Interface::new(name, Some(mac.to_string()), Some(self.netns.clone()))
        }
    }

    /// The result: `interfaces[0]` is CNI_IFNAME and carries every configured address. In tap
    /// and macvtap modes the addresses are the VM's (reported, not configured here), and no
    /// routes are reported.
    fn result(&self, interfaces: Vec<Interface>, routes: bool) -> CniResult {
        let cfg = self.conf.iface_config(None);
        CniResult {
            interfaces,
            ips: cni_glue::ip_configs(&cfg, 0),
            routes: if routes {
                cni_glue::cni_routes(&cfg)
            } else {
                Vec::new()
            },
            ..CniResult::default()
        }
    }

    /// Undoes everything recorded, newest first; returns `error`, wrapped if the rollback
    /// failed too.
    fn rollback(mut self, error: BranchEniError) -> BranchEniError {
        let mut failed: Option<String> = None;
        log_info!(
            "ADD failed, undoing {} step(s) in netns {}: {error}",
            self.undo.len(),
            self.netns
        );
        while let Some(step) = self.undo.pop() {
            let r = match step {
                Undo::TrunkDown { index } => self.host.set_down(index).map_err(|e| e.to_string()),
                Undo::DeleteLink { index } => match self.ctr.delete_link(index) {
                    Err(e) if !e.is_not_found() => Err(e.to_string()),
                    _ => Ok(()),
                },
                Undo::Ipconf(applied) => {
                    ipconf::undo(&mut self.ctr, &applied).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = r {
                failed.get_or_insert(e);
            }
        }
        match failed {
            None => error,
            Some(rollback) => BranchEniError::Rollback {
                error: Box::new(error),
                rollback,
            },
        }
    }

    /// CNI_IFNAME already exists: a retried ADD (our tag, the same VLAN on the same trunk, the
    /// same mode) succeeds with the existing links; anything else is an error.
    fn resume(&mut self, trunk: &Link, existing: Link) -> Result<CniResult, BranchEniError> {
        let conf = self.conf;
        let taken = |a: &Self, detail: String| BranchEniError::NameTaken {
            name: a.ifname.to_owned(),
            netns: a.netns.clone(),
            detail,
        };
        if existing.alias.as_deref() != Some(self.tag.as_str()) {
            let detail = format!(
                " (a {} link{}, not created by this plugin for this container and interface)",
                existing.kind.as_deref().unwrap_or("plain"),
                kernel::describe_tag(existing.alias.as_deref())
            );
            return Err(taken(self, detail));
        }
        let links = self.ctr.links()?;
        let tag = Some(self.tag.as_str());
        let vlan = links.iter().find(|l| {
            l.alias.as_deref() == tag && kernel::is_branch_of(l, trunk, conf.vlan_id, true)
        });
        let mismatch = |a: &Self, what: &str| {
            taken(
                a,
                format!(
                    " (created by an earlier ADD for this container, but {what}; DEL it first)"
                ),
            )
        };
        let Some(vlan) = vlan.cloned() else {
            let what = format!("not as VLAN {} on trunk {}", conf.vlan_id, trunk.name);
            return Err(mismatch(self, &what));
        };
        let mac_of = |l: &Link| l.mac.unwrap_or(conf.branch_mac);
        match conf.mode {
            Mode::Vlan => {
                if existing.index != vlan.index {
                    return Err(mismatch(self, "not in vlan mode"));
                }
                ipconf::apply(self.ns, &mut self.ctr, vlan.index, &conf.iface_config(None))?;
                let iface = self.iface(self.ifname, mac_of(&vlan), vlan.mtu);
                Ok(self.result(vec![iface], true))
            }
            Mode::Tap { .. } => {
                let bridge = links
                    .iter()
                    .find(|l| Some(l.index) == existing.master && l.alias.as_deref() == tag);
                let Some(br) = bridge.filter(|_| {
                    existing.kind.as_deref() == Some("tun") && vlan.master == existing.master
                }) else {
                    return Err(mismatch(self, "not in tap mode"));
                };
                for index in [vlan.index, existing.index, br.index] {
                    self.ctr.set_up(index)?;
                }
                self.block_imds(br.index)?;
                let ifaces = vec![
                    self.iface(self.ifname, conf.branch_mac, existing.mtu),
                    self.iface(&br.name, mac_of(br), br.mtu),
                    self.iface(&vlan.name, mac_of(&vlan), vlan.mtu),
                ];
                Ok(self.result(ifaces, false))
            }
            Mode::Macvtap => {
                if existing.kind.as_deref() != Some("macvtap")
                    || existing.peer_index != Some(vlan.index)
                {
                    return Err(mismatch(self, "not in macvtap mode"));
                }
                self.ctr.set_up(vlan.index)?;
                self.ctr.set_up(existing.index)?;
                self.block_imds(existing.index)?;
                let ifaces = vec![
                    self.iface(self.ifname, mac_of(&existing), existing.mtu),
                    self.iface(&vlan.name, mac_of(&vlan), vlan.mtu),
                ];
                Ok(self.result(ifaces, false))
            }
        }
    }
}

/// Deletion order: what sits on top first (TAP, macvtap), then the 802.1Q link, then the bridge.
fn del_rank(l: &Link) -> u8 {
    match l.kind.as_deref() {
        Some("tun") | Some("macvtap") => 0,
        Some("vlan") => 1,
        _ => 2,
    }
}

/// DEL: deletes the links of this attachment in the container namespace: those tagged
/// `cni:<containerID>/<ifname>`, or, when none is tagged (links made by vpc-branch-eni), the
/// untagged ones vpc-branch-eni would have made. Never looks at the trunk. A missing namespace
/// or link is success. IMDS blackholes stay (see the README).
pub fn del(
    conf: &BranchConf,
    netns: Option<&Netns>,
    container_id: &str,
    ifname: &str,
) -> Result<(), BranchEniError> {
    let Some(ns) = netns else {
        return Ok(());
    };
    let mut ctr = Handle::open_in(ns)?;
    let tag = kernel::owner_tag(container_id, ifname);
    let links = ctr.links()?;
    // What this attachment's ADD made: links tagged with its owner, the VLAN link still under
    // its temporary name (an ADD killed before tagging it), and, untagged, the links
    // vpc-branch-eni (or an ADD killed between creating and tagging) leaves for this config.
    let temp = kernel::temp_name(&tag);
    let untagged = |l: &Link| {
        !l.alias
            .as_deref()
            .is_some_and(|a| a.starts_with(kernel::TAG_PREFIX))
    };
    let is_kind = |l: &Link, k: &str| l.kind.as_deref() == Some(k);
    let own_vlan = |l: &Link| is_kind(l, "vlan") && l.vlan_id == Some(conf.vlan_id);
    let bridge = kernel::bridge_name(conf.vlan_id);
    let made_for_config = |l: &Link| match conf.mode {
        Mode::Vlan => l.name == ifname && own_vlan(l),
        Mode::Tap { .. } => {
            (l.name == ifname && is_kind(l, "tun"))
                || (l.name == bridge && is_kind(l, "bridge"))
                || own_vlan(l)
        }
        Mode::Macvtap => (l.name == ifname && is_kind(l, "macvtap")) || own_vlan(l),
    };
    let mut doomed: Vec<&Link> = links
        .iter()
        .filter(|l| {
            l.alias.as_deref() == Some(tag.as_str())
                || (l.name == temp && is_kind(l, "vlan"))
                || (untagged(l) && made_for_config(l))
        })
        .collect();
    doomed.sort_by_key(|l| del_rank(l));
    let mut first: Option<nl::Error> = None;
    for l in doomed {
        log_info!(
            "deleting {} link {} (index {}) in netns {}",
            l.kind.as_deref().unwrap_or("plain"),
            l.name,
            l.index,
            ns.path().display()
        );
        if let Err(e) = ctr.delete_link(l.index) {
            if !e.is_not_found() {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// CHECK: the links of the attachment (kind, VLAN id, parent = the trunk, MAC, MTU, up,
/// bridge membership), the addresses and routes (vlan mode) and the IMDS blackholes, and that
/// prevResult lists CNI_IFNAME in this namespace. Every difference is named.
pub fn check(
    conf: &BranchConf,
    ns: &Netns,
    ifname: &str,
    prev: &CniResult,
) -> Result<(), BranchEniError> {
    let netns = ns.path().display().to_string();
    let mut ctr = Handle::open_in(ns)?;
    let mut host = Handle::current()?;
    let trunk = kernel::find_trunk(&mut host, &conf.trunk)?;
    let mut diffs: Vec<String> = Vec::new();
    let prev_index = prev.interfaces.iter().position(|i| i.name == ifname);
    match prev_index.map(|i| &prev.interfaces[i]) {
        None => diffs.push(format!("prevResult lists no interface {ifname}")),
        Some(i) if i.sandbox.as_deref() != Some(netns.as_str()) => diffs.push(format!(
            "prevResult puts {ifname} in sandbox {:?}, not {netns}",
            i.sandbox.as_deref().unwrap_or("")
        )),
        Some(_) => {}
    }
    let links = ctr.links()?;
    let mismatch = |diffs: Vec<String>| BranchEniError::Mismatch {
        ifname: ifname.to_owned(),
        netns: netns.clone(),
        diffs,
    };
    let Some(main) = links.iter().find(|l| l.name == ifname) else {
        diffs.push(format!("link {ifname} does not exist"));
        return Err(mismatch(diffs));
    };
    let kind = |l: &Link| l.kind.clone().unwrap_or_else(|| "plain".into());
    let vlan_mtu = conf.mtu.unwrap_or(trunk.mtu);
    let (vlan, vlan_mac, block_on) = match conf.mode {
        Mode::Vlan => (Some(main), conf.branch_mac, None),
        Mode::Tap { .. } => {
            let tap_mtu = conf.mtu.unwrap_or(TAP_MTU);
            expect(
                &mut diffs,
                kind(main) == "tun",
                format!("{ifname} is a {} link, not a tap", kind(main)),
            );
            expect(&mut diffs, main.up, format!("{ifname} is down"));
            expect(
                &mut diffs,
                main.mtu == tap_mtu,
                format!("{ifname} has mtu {} instead of {tap_mtu}", main.mtu),
            );
            let br = main
                .master
                .and_then(|m| links.iter().find(|l| l.index == m));
            let Some(br) = br else {
                diffs.push(format!("{ifname} is not enslaved to a bridge"));
                return Err(mismatch(diffs));
            };
            expect(
                &mut diffs,
                kind(br) == "bridge",
                format!("master {} of {ifname} is not a bridge", br.name),
            );
            expect(&mut diffs, br.up, format!("bridge {} is down", br.name));
            expect(
                &mut diffs,
                br.mtu == tap_mtu,
                format!("bridge {} has mtu {} instead of {tap_mtu}", br.name, br.mtu),
            );
            let port = links
                .iter()
                .find(|l| l.master == Some(br.index) && l.kind.as_deref() == Some("vlan"));
            (port, br.mac.unwrap_or_default(), Some(br.index))
        }
        Mode::Macvtap => {
            expect(
                &mut diffs,
                kind(main) == "macvtap",
                format!("{ifname} is a {} link, not a macvtap", kind(main)),
            );
            expect(&mut diffs, main.up, format!("{ifname} is down"));
            expect(
                &mut diffs,
                main.mac == Some(conf.branch_mac),
                format!(
                    "{ifname} has MAC {} instead of {}",
                    main.mac.map(|m| m.to_string()).unwrap_or_default(),
                    conf.branch_mac
                ),
            );
            let parent = main
                .peer_index
                .and_then(|p| links.iter().find(|l| l.index == p));
            (parent, conf.branch_mac, Some(main.index))
        }
    };
    let Some(vlan) = vlan else {
        diffs.push(format!("no 802.1Q link of {ifname} found"));
        return Err(mismatch(diffs));
    };
    let v = &vlan.name;
    expect(
        &mut diffs,
        kind(vlan) == "vlan",
        format!("{v} is a {} link, not an 802.1Q VLAN", kind(vlan)),
    );
    expect(
        &mut diffs,
        vlan.vlan_id == Some(conf.vlan_id),
        format!(
            "{v} has VLAN id {} instead of {}",
            vlan.vlan_id.map(|i| i.to_string()).unwrap_or_default(),
            conf.vlan_id
        ),
    );
    expect(
        &mut diffs,
        vlan.peer_index == Some(trunk.index) && vlan.link_netnsid.is_some(),
        format!(
            "the parent of {v} is not trunk {} (index {}) of the host namespace",
            trunk.name, trunk.index
        ),
    );
    expect(
        &mut diffs,
        vlan.mac == Some(vlan_mac),
        format!(
            "{v} has MAC {} instead of {}",
            vlan.mac.map(|m| m.to_string()).unwrap_or_default(),
            vlan_mac
        ),
    );
    expect(
        &mut diffs,
        vlan.mtu == vlan_mtu,
        format!("{v} has mtu {} instead of {vlan_mtu}", vlan.mtu),
    );
    expect(&mut diffs, vlan.up, format!("{v} is down"));
    let (index, cfg) = match block_on {
        None => {
            // vlan mode: the configured addresses plus any prevResult lists for CNI_IFNAME
            // (the MTU was compared above)
            let mut cfg = conf.iface_config(None);
            for ip in &prev.ips {
                if ip.interface == prev_index && !cfg.addresses.contains(&ip.address) {
                    cfg.addresses.push(ip.address);
                }
            }
            (vlan.index, cfg)
        }
        Some(index) => (
            index,
            ipconf::IfaceConfig {
                block_imds: conf.block_imds,
                ..ipconf::IfaceConfig::default()
            },
        ),
    };
    match ipconf::check(&mut ctr, index, &cfg) {
        Ok(()) => {}
        Err(ipconf::Error::Mismatch { diffs: more, .. }) => diffs.extend(more),
        Err(e) => return Err(e.into()),
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(mismatch(diffs))
    }
}

/// Records `diff` unless `ok`.
fn expect(diffs: &mut Vec<String>, ok: bool, diff: String) {
    if !ok {
        diffs.push(diff);
    }
}
