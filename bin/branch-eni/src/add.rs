//! ADD: find the trunk, then either recognise a retried ADD ([`Add::resume`]) or create the
//! links of the mode ([`Add::create`]). Every change is recorded as an [`Undo`] in a
//! [`Rollback`]; when a later step fails, they are undone newest first and the original error
//! is returned.

use cni_spec::{CniResult, Interface, Rollback, log_info};
use netns::{Mac, Netns};
use nl::{Handle, Link, MacvlanMode, MacvlanSpec, VlanSpec};

use crate::config::{BranchConf, Mode};
use crate::error::BranchEniError;
use crate::kernel::{self, is_kind, is_tagged, kind_of};

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
    /// `cni:<containerID>/<ifname>`, the alias of every link this ADD creates.
    tag: String,
    ns: &'a Netns,
    /// The container namespace's path, for messages and results.
    netns: String,
    ctr: Handle,
    host: Handle,
    undo: Rollback<Undo>,
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
    mtu_fits(conf, &trunk)?;
    let mut a = Add {
        conf,
        ifname,
        tag: kernel::owner_tag(container_id, ifname),
        netns: ns.path().display().to_string(),
        ns,
        ctr,
        host,
        undo: Rollback::new(),
    };
    if let Some(existing) = a.ctr.link_by_name(ifname)? {
        log_info!(
            "{ifname} already exists in netns {}: checking for a retried ADD",
            a.netns
        );
        return a.resume(&trunk, existing);
    }
    match a.create(&trunk) {
        Ok(result) => {
            a.undo.commit();
            Ok(result)
        }
        Err(e) => Err(a.rollback(e)),
    }
}

/// An `mtu` above the trunk's is refused before anything is touched.
fn mtu_fits(conf: &BranchConf, trunk: &Link) -> Result<(), BranchEniError> {
    match conf.mtu {
        Some(mtu) if mtu > trunk.mtu => Err(BranchEniError::MtuAboveTrunk {
            mtu,
            trunk_mtu: trunk.mtu,
            trunk: trunk.name.clone(),
        }),
        _ => Ok(()),
    }
}

/// The steps of a first ADD, one list per mode.
impl Add<'_> {
    fn create(&mut self, trunk: &Link) -> Result<CniResult, BranchEniError> {
        self.trunk_up(trunk)?;
        match self.conf.mode {
            Mode::Vlan => self.create_vlan_mode(trunk),
            Mode::Tap { uid, gid } => self.create_tap_mode(trunk, uid, gid),
            Mode::Macvtap => self.create_macvtap_mode(trunk),
        }
    }

    /// vlan: the 802.1Q link itself, renamed to CNI_IFNAME, with the IP configuration.
    fn create_vlan_mode(&mut self, trunk: &Link) -> Result<CniResult, BranchEniError> {
        let conf = self.conf;
        let vlan = self.create_vlan(trunk, conf.branch_mac)?;
        self.rename(vlan, self.ifname)?;
        self.apply(vlan, &conf.iface_config(None))?;
        let iface = self.iface(self.ifname, conf.branch_mac, conf.vlan_mtu(trunk.mtu));
        Ok(self.result(vec![iface], true))
    }

    /// tap: a bridge joining the 802.1Q link and a TAP named CNI_IFNAME.
    fn create_tap_mode(
        &mut self,
        trunk: &Link,
        uid: u32,
        gid: u32,
    ) -> Result<CniResult, BranchEniError> {
        let conf = self.conf;
        let tap_mtu = conf.tap_mtu();
        // the bridge and its VLAN port share a MAC that is not the branch MAC (that one
        // belongs to the VM behind the TAP); set explicitly, it stays the bridge's MAC
        let br_mac = Mac::random_local();
        let br_name = kernel::bridge_name(conf.vlan_id);
        let br = self.create_bridge(&br_name, br_mac, tap_mtu)?;
        let (_, vlan_name) = self.create_port_vlan(trunk, br_mac, Some(br))?;
        let tap = self.create_tap(uid, gid, tap_mtu)?;
        self.ctr.set_master(tap, br)?;
        self.ctr.set_up(tap)?;
        self.ctr.set_up(br)?;
        self.block_imds(br)?;
        let ifaces = vec![
            self.iface(self.ifname, conf.branch_mac, tap_mtu),
            self.iface(&br_name, br_mac, tap_mtu),
            self.iface(&vlan_name, br_mac, conf.vlan_mtu(trunk.mtu)),
        ];
        Ok(self.result(ifaces, false))
    }

    /// macvtap: a passthru macvtap named CNI_IFNAME on the 802.1Q link.
    fn create_macvtap_mode(&mut self, trunk: &Link) -> Result<CniResult, BranchEniError> {
        let conf = self.conf;
        // passthru: the macvtap takes its parent's MAC, so the parent gets the branch MAC
        let (vlan, vlan_name) = self.create_port_vlan(trunk, conf.branch_mac, None)?;
        let mvt = self.create_macvtap(vlan)?;
        self.ctr.set_up(mvt)?;
        self.block_imds(mvt)?;
        let vlan_mtu = conf.vlan_mtu(trunk.mtu);
        let ifaces = vec![
            self.iface(self.ifname, conf.branch_mac, vlan_mtu),
            self.iface(&vlan_name, conf.branch_mac, vlan_mtu),
        ];
        Ok(self.result(ifaces, false))
    }
}

/// The single steps: each records what it changed.
impl Add<'_> {
    /// A trunk that is down is brought up (and set down again on rollback).
    fn trunk_up(&mut self, trunk: &Link) -> Result<(), BranchEniError> {
        if !trunk.up {
            self.host.set_up(trunk.index)?;
            self.undo.record(Undo::TrunkDown { index: trunk.index });
        }
        Ok(())
    }

    /// Creates the 802.1Q link on the trunk directly inside the container namespace under a
    /// temporary name, tags it, and returns its index there.
    fn create_vlan(&mut self, trunk: &Link, mac: Mac) -> Result<u32, BranchEniError> {
        let temp = kernel::temp_name(&self.tag);
        self.clear_stale(&temp)?;
        let spec = VlanSpec {
            name: &temp,
            parent: trunk.index,
            vlan_id: self.conf.vlan_id,
            mac: Some(mac),
            mtu: self.conf.mtu,
            netns: Some(self.ns.fd()),
        };
        if let Err(e) = self.host.create_vlan(&spec) {
            return Err(self.vlan_refused(trunk, e));
        }
        let link = self.ctr.link(&temp)?;
        log_info!(
            "created VLAN {} on trunk {} as {temp} (index {}) in netns {}",
            self.conf.vlan_id,
            trunk.name,
            link.index,
            self.netns
        );
        self.undo.record(Undo::DeleteLink { index: link.index });
        self.ctr.set_alias(link.index, &self.tag)?;
        Ok(link.index)
    }

    /// Deletes the VLAN link left under `temp` by an ADD of this attachment killed before it
    /// tagged or renamed the link.
    fn clear_stale(&mut self, temp: &str) -> Result<(), BranchEniError> {
        if let Some(stale) = self.ctr.link_by_name(temp)? {
            log_info!(
                "deleting {temp} (index {}) left by an interrupted ADD",
                stale.index
            );
            self.ctr.delete_link(stale.index)?;
        }
        Ok(())
    }

    /// Why the kernel refused the 802.1Q link: the VLAN id is in use (naming where), the
    /// kernel has no 802.1Q, or the trunk cannot carry VLANs.
    fn vlan_refused(&mut self, trunk: &Link, e: nl::Error) -> BranchEniError {
        let vlan_id = self.conf.vlan_id;
        if e.is_exists() {
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
        }
    }

    /// The 802.1Q link of tap and macvtap modes: created with `mac`, renamed to
    /// `<trunk>.<vlan>` ([`kernel::vlan_link_name`]), enslaved to `master` if given, up.
    /// Returns its index and name.
    fn create_port_vlan(
        &mut self,
        trunk: &Link,
        mac: Mac,
        master: Option<u32>,
    ) -> Result<(u32, String), BranchEniError> {
        let name = kernel::vlan_link_name(&trunk.name, self.conf.vlan_id);
        let vlan = self.create_vlan(trunk, mac)?;
        self.rename(vlan, &name)?;
        if let Some(master) = master {
            self.ctr.set_master(vlan, master)?;
        }
        self.ctr.set_up(vlan)?;
        Ok((vlan, name))
    }

    /// The bridge of tap mode, with `mac` and `mtu`.
    fn create_bridge(&mut self, name: &str, mac: Mac, mtu: u32) -> Result<u32, BranchEniError> {
        let br = self.create_in_container(name, |_, h| h.create_bridge(name, None, Some(mac)))?;
        // set after creation, so the kernel keeps it when ports with a smaller MTU join
        self.ctr.set_mtu(br, mtu)?;
        Ok(br)
    }

    /// The TAP named CNI_IFNAME, owned by `uid`/`gid`, with vnet headers.
    fn create_tap(&mut self, uid: u32, gid: u32, mtu: u32) -> Result<u32, BranchEniError> {
        let ifname = self.ifname;
        self.create_in_container(ifname, |ns, _| {
            ns.run(|| nl::create_tap(ifname, uid, gid, true, Some(mtu)))?
        })
    }

    /// The passthru macvtap named CNI_IFNAME on link `parent`.
    fn create_macvtap(&mut self, parent: u32) -> Result<u32, BranchEniError> {
        let ifname = self.ifname;
        self.create_in_container(ifname, |_, h| {
            h.create_macvtap(&MacvlanSpec {
                name: ifname,
                parent,
                mode: MacvlanMode::Passthru,
                ..MacvlanSpec::default()
            })
        })
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
        self.undo.record(Undo::DeleteLink { index: link.index });
        self.ctr.set_alias(link.index, &self.tag)?;
        Ok(link.index)
    }

    fn rename(&mut self, index: u32, name: &str) -> Result<(), BranchEniError> {
        self.ctr
            .rename(index, name)
            .map_err(|e| self.taken_or(name, e))
    }

    /// Applies `cfg` to link `index` in the container namespace.
    fn apply(&mut self, index: u32, cfg: &ipconf::IfaceConfig) -> Result<(), BranchEniError> {
        let applied = ipconf::apply(self.ns, &mut self.ctr, index, cfg)?;
        self.undo.record(Undo::Ipconf(applied));
        Ok(())
    }

    /// IMDS blackholes in tap and macvtap modes (vlan mode gets them from its IP
    /// configuration).
    fn block_imds(&mut self, index: u32) -> Result<(), BranchEniError> {
        if !self.conf.block_imds {
            return Ok(());
        }
        self.apply(index, &self.conf.imds_config())
    }

    /// Undoes everything recorded, newest first; returns `error`, wrapped with what could not
    /// be undone if the rollback failed too.
    fn rollback(mut self, error: BranchEniError) -> BranchEniError {
        log_info!(
            "ADD failed, undoing {} step(s) in netns {}: {error}",
            self.undo.len(),
            self.netns
        );
        let undo = std::mem::take(&mut self.undo);
        let failures = undo.unwind(|step| self.undo_step(step));
        if failures.is_empty() {
            error
        } else {
            BranchEniError::Rollback {
                error: Box::new(error),
                failures,
            }
        }
    }

    /// Undoes one change; a link already gone is fine.
    fn undo_step(&mut self, step: Undo) -> Result<(), BranchEniError> {
        match step {
            Undo::TrunkDown { index } => self.host.set_down(index)?,
            Undo::DeleteLink { index } => match self.ctr.delete_link(index) {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            },
            Undo::Ipconf(applied) => ipconf::undo(&mut self.ctr, &applied)?,
        }
        Ok(())
    }
}

/// A retried ADD: CNI_IFNAME already exists.
impl Add<'_> {
    /// A retried ADD (our tag, the same VLAN on the same trunk, the same mode) succeeds with
    /// the existing links, re-applying what is idempotent; anything else is an error.
    fn resume(&mut self, trunk: &Link, existing: Link) -> Result<CniResult, BranchEniError> {
        let conf = self.conf;
        if !is_tagged(&existing, &self.tag) {
            let detail = format!(
                " (a {} link{}, not created by this plugin for this container and interface)",
                kind_of(&existing),
                kernel::describe_tag(existing.alias.as_deref())
            );
            return Err(self.name_taken(self.ifname, detail));
        }
        let links = self.ctr.links()?;
        let vlan = links.iter().find(|l| {
            is_tagged(l, &self.tag) && kernel::is_branch_of(l, trunk, conf.vlan_id, true)
        });
        let Some(vlan) = vlan else {
            let what = format!("not as VLAN {} on trunk {}", conf.vlan_id, trunk.name);
            return Err(self.not_resumable(&what));
        };
        match conf.mode {
            Mode::Vlan => self.resume_vlan_mode(&existing, vlan),
            Mode::Tap { .. } => self.resume_tap_mode(&existing, vlan, &links),
            Mode::Macvtap => self.resume_macvtap_mode(&existing, vlan),
        }
    }

    fn resume_vlan_mode(
        &mut self,
        existing: &Link,
        vlan: &Link,
    ) -> Result<CniResult, BranchEniError> {
        if existing.index != vlan.index {
            return Err(self.not_resumable("not in vlan mode"));
        }
        ipconf::apply(
            self.ns,
            &mut self.ctr,
            vlan.index,
            &self.conf.iface_config(None),
        )?;
        let iface = self.iface(self.ifname, self.mac_of(vlan), vlan.mtu);
        Ok(self.result(vec![iface], true))
    }

    fn resume_tap_mode(
        &mut self,
        existing: &Link,
        vlan: &Link,
        links: &[Link],
    ) -> Result<CniResult, BranchEniError> {
        let bridge = links
            .iter()
            .find(|l| Some(l.index) == existing.master && is_tagged(l, &self.tag));
        let Some(br) =
            bridge.filter(|_| is_kind(existing, "tun") && vlan.master == existing.master)
        else {
            return Err(self.not_resumable("not in tap mode"));
        };
        for index in [vlan.index, existing.index, br.index] {
            self.ctr.set_up(index)?;
        }
        self.block_imds(br.index)?;
        let ifaces = vec![
            self.iface(self.ifname, self.conf.branch_mac, existing.mtu),
            self.iface(&br.name, self.mac_of(br), br.mtu),
            self.iface(&vlan.name, self.mac_of(vlan), vlan.mtu),
        ];
        Ok(self.result(ifaces, false))
    }

    fn resume_macvtap_mode(
        &mut self,
        existing: &Link,
        vlan: &Link,
    ) -> Result<CniResult, BranchEniError> {
        if !is_kind(existing, "macvtap") || existing.peer_index != Some(vlan.index) {
            return Err(self.not_resumable("not in macvtap mode"));
        }
        self.ctr.set_up(vlan.index)?;
        self.ctr.set_up(existing.index)?;
        self.block_imds(existing.index)?;
        let ifaces = vec![
            self.iface(self.ifname, self.mac_of(existing), existing.mtu),
            self.iface(&vlan.name, self.mac_of(vlan), vlan.mtu),
        ];
        Ok(self.result(ifaces, false))
    }

    /// CNI_IFNAME is this attachment's, but not what this config would make.
    fn not_resumable(&self, what: &str) -> BranchEniError {
        let detail =
            format!(" (created by an earlier ADD for this container, but {what}; DEL it first)");
        self.name_taken(self.ifname, detail)
    }

    /// The MAC a link reports, or the branch MAC if it reports none.
    fn mac_of(&self, l: &Link) -> Mac {
        l.mac.unwrap_or(self.conf.branch_mac)
    }
}

/// Errors and results.
impl Add<'_> {
    /// EEXIST on `name` becomes [`BranchEniError::NameTaken`], describing the link in the way.
    fn taken_or(&mut self, name: &str, e: nl::Error) -> BranchEniError {
        if !e.is_exists() {
            return e.into();
        }
        let detail = match self.ctr.link_by_name(name) {
            Ok(Some(l)) => format!(
                " (a {} link{})",
                kind_of(&l),
                kernel::describe_tag(l.alias.as_deref())
            ),
            _ => String::new(),
        };
        self.name_taken(name, detail)
    }

    fn name_taken(&self, name: &str, detail: String) -> BranchEniError {
        BranchEniError::NameTaken {
            name: name.to_owned(),
            netns: self.netns.clone(),
            detail,
        }
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
}
