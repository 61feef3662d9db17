//! ADD: find the ENI in the host, move it into the container and configure it there; when a
//! step after the first change fails, undo what was done ([`Undo`], newest first) and report
//! the original error.

use cni_spec::{CniResult, Interface, Invocation, Rollback};
use netns::{Mac, Netns};
use nl::{Handle, Link};

use crate::config::EniConf;
use crate::error::EniError;
use crate::host::{self, Origin};

/// One change ADD made, undone by [`undo`] if a later step fails.
enum Undo {
    /// Our marker replaced the ENI's alias in the host: put `alias` back.
    HostAlias { index: u32, alias: Option<String> },
    /// The ENI was brought down in the host (to rename it): bring it up.
    HostDown { index: u32 },
    /// The ENI was renamed in the host (its name was taken in the container): name it `name`.
    HostRename { index: u32, name: String },
    /// The ENI is in the container, named `name`: return it to the host as `origin` describes
    /// (name, MTU, alias, up state). This undoes every host-side change before it, so it
    /// replaces their records ([`record_in_container`]).
    InContainer {
        name: String,
        mac: Option<Mac>,
        origin: Origin,
    },
}

/// Both ends of the move: the plugin's own (host) namespace and the container's.
struct Sides<'a> {
    host: Handle,
    ctr: Handle,
    ctr_ns: &'a Netns,
    /// CNI_NETNS as given, for messages and the result's `sandbox`.
    label: String,
}

pub(crate) fn add(inv: &Invocation) -> Result<CniResult, EniError> {
    // everything is validated before anything is touched
    let conf = crate::parse(inv)?;
    let ifname = inv.env.ifname.as_str();
    let ctr_ns = inv.netns()?;
    let mut at = Sides {
        host: Handle::current()?,
        ctr: Handle::open_in(ctr_ns)?,
        ctr_ns,
        label: ctr_ns.path().display().to_string(),
    };
    let eni = host::wait_for(&mut at.host, &mut at.ctr, &conf)?;
    host::refuse_host_critical(&mut at.host, &eni, &conf)?;
    if !conf.stay_down {
        require_free_ifname(&mut at, ifname)?;
    }

    let mut rb = Rollback::new();
    match move_and_configure(&mut at, &conf, ifname, &eni, &mut rb) {
        Ok(link) => {
            rb.commit();
            Ok(result(inv, &conf, &link, &at.label))
        }
        Err(error) => Err(roll_back(rb, error, &mut at)),
    }
}

/// The steps of ADD that change something, each recorded in `rb`. Returns the ENI as it is in
/// the container at the end.
fn move_and_configure(
    at: &mut Sides<'_>,
    conf: &EniConf,
    ifname: &str,
    eni: &Link,
    rb: &mut Rollback<Undo>,
) -> Result<Link, EniError> {
    let origin = Origin::of(eni);
    let name = (!conf.stay_down).then_some(ifname);
    let carried = move_into_container(at, eni, &origin, name, rb)?;
    let mut link = at.ctr.link(&carried)?;
    if conf.stay_down {
        return Ok(link);
    }
    // after a move under a temporary name
    rename_in_container(at, &mut link, ifname, &origin, rb)?;
    ipconf::apply(at.ctr_ns, &mut at.ctr, link.index, &conf.iface)?;
    if let Some(mtu) = conf.iface.mtu {
        link.mtu = mtu;
    }
    link.up = true;
    Ok(link)
}

/// CNI_IFNAME must be free in the container.
fn require_free_ifname(at: &mut Sides<'_>, ifname: &str) -> Result<(), EniError> {
    match at.ctr.link_by_name(ifname)? {
        None => Ok(()),
        Some(_) => Err(EniError::IfnameTaken {
            ifname: ifname.to_string(),
            netns: at.label.clone(),
        }),
    }
}

/// Moves the ENI into the container, named `name` there (CNI_IFNAME; None keeps its host
/// name, with stay-down) and marked with its origin (its host name, MTU and old alias, which
/// DEL, a later process, reads from its alias), all in one request: the kernel sets the alias
/// after the move, in the container, whose few routes the change notification walks instead
/// of a full node's. Only when that name is taken there too does the ENI cross under a
/// temporary name ([`move_under_temp_name`]). Returns its name in the container.
fn move_into_container(
    at: &mut Sides<'_>,
    eni: &Link,
    origin: &Origin,
    name: Option<&str>,
    rb: &mut Rollback<Undo>,
) -> Result<String, EniError> {
    let marker = origin.encode();
    let alias = (eni.alias.as_deref() != Some(marker.as_str())).then_some(marker.as_str());
    match at
        .host
        .move_to_netns(eni.index, at.ctr_ns.fd(), name, alias)
    {
        Ok(()) => {
            let carried = name.unwrap_or(&eni.name).to_string();
            record_in_container(rb, &carried, eni.mac, origin);
            Ok(carried)
        }
        Err(e) if e.is_exists() => move_under_temp_name(at, eni, origin, alias, rb),
        Err(e) => {
            // the kernel moves first: a failure after the move leaves the ENI in the container
            let home = at.host.link_by_index(eni.index)?;
            if home.is_none_or(|l| l.mac != eni.mac || l.name != eni.name) {
                record_in_container(rb, name.unwrap_or(&eni.name), eni.mac, origin);
            }
            Err(e.into())
        }
    }
}

/// The ENI's name is taken in the container: mark its origin in the host (`alias`, unless it
/// carries it already), bring it down, rename it to a temporary name (the kernel renames only
/// links that are down) and move it. Returns the temporary name.
fn move_under_temp_name(
    at: &mut Sides<'_>,
    eni: &Link,
    origin: &Origin,
    alias: Option<&str>,
    rb: &mut Rollback<Undo>,
) -> Result<String, EniError> {
    if let Some(marker) = alias {
        at.host.set_alias(eni.index, marker)?;
        rb.record(Undo::HostAlias {
            index: eni.index,
            alias: origin.alias.clone(),
        });
    }
    let tmp = host::temp_name_for(eni);
    if eni.up {
        at.host.set_down(eni.index)?;
        rb.record(Undo::HostDown { index: eni.index });
    }
    at.host.rename(eni.index, &tmp)?;
    rb.record(Undo::HostRename {
        index: eni.index,
        name: origin.name.clone(),
    });
    at.host.set_netns(eni.index, at.ctr_ns.fd())?;
    record_in_container(rb, &tmp, eni.mac, origin);
    Ok(tmp)
}

/// Renames the ENI in the container to CNI_IFNAME.
fn rename_in_container(
    at: &mut Sides<'_>,
    link: &mut Link,
    ifname: &str,
    origin: &Origin,
    rb: &mut Rollback<Undo>,
) -> Result<(), EniError> {
    if link.name != ifname {
        at.ctr.rename(link.index, ifname)?;
        link.name = ifname.to_string();
        record_in_container(rb, ifname, link.mac, origin);
    }
    Ok(())
}

/// Records that the ENI is in the container as `name`. Returning it to the host restores
/// everything the earlier steps changed there, and their records name it by a host index that
/// may not survive the round trip: this one record replaces them (they are kept, and undone by
/// the return).
fn record_in_container(rb: &mut Rollback<Undo>, name: &str, mac: Option<Mac>, origin: &Origin) {
    std::mem::take(rb).commit();
    rb.record(Undo::InContainer {
        name: name.to_string(),
        mac,
        origin: origin.clone(),
    });
}

/// Undoes what ADD did, newest first; `error` is what made it fail (wrapped in
/// [`EniError::Rollback`] when something could not be undone).
fn roll_back(rb: Rollback<Undo>, error: EniError, at: &mut Sides<'_>) -> EniError {
    let failures = rb.unwind(|u| undo(u, &mut at.host, &mut at.ctr));
    if failures.is_empty() {
        error
    } else {
        EniError::Rollback {
            error: Box::new(error),
            rollback: failures.join("; "),
        }
    }
}

/// Undoes one change. The IMDS blackholes [`ipconf::apply`] added are removed by `apply`
/// itself when it fails.
fn undo(u: Undo, host: &mut Handle, ctr: &mut Handle) -> Result<(), EniError> {
    match u {
        Undo::HostAlias { index, alias } => {
            host.set_alias(index, alias.as_deref().unwrap_or(""))?
        }
        Undo::HostDown { index } => host.set_up(index)?,
        Undo::HostRename { index, name } => host.rename(index, &name)?,
        Undo::InContainer { name, mac, origin } => {
            return_from_container(&name, mac, &origin, host, ctr)?;
        }
    }
    Ok(())
}

/// Puts the ENI back as it was before ADD: in the host, with its name, MTU, alias and up state.
fn return_from_container(
    name: &str,
    mac: Option<Mac>,
    origin: &Origin,
    host: &mut Handle,
    ctr: &mut Handle,
) -> Result<(), EniError> {
    // by its name there, else by MAC (its index may have changed in the move)
    let by_name = ctr
        .link_by_name(name)?
        .filter(|l| mac.is_none_or(|m| l.mac == Some(m)));
    let link = match (by_name, mac) {
        (Some(l), _) => Some(l),
        (None, Some(mac)) => ctr.links_with_mac(mac)?.into_iter().next(),
        (None, None) => None,
    };
    let Some(link) = link else {
        return Ok(()); // gone with its namespace
    };
    let host_ns = Netns::current()?;
    let name = host::return_to_host(ctr, &link, origin, host_ns.fd(), host)?;
    if origin.up {
        if let Some(l) = host.link_by_name(&name)? {
            host.set_up(l.index)?;
        }
    }
    Ok(())
}

/// The result: the ENI as it is in the container, the configured addresses and the default
/// routes added (none with stay-down), DNS from the config.
fn result(inv: &Invocation, conf: &EniConf, link: &Link, netns: &str) -> CniResult {
    let mut iface = Interface::new(
        link.name.clone(),
        link.mac.map(|m| m.to_string()),
        Some(netns.to_string()),
    );
    iface.mtu = Some(link.mtu);
    CniResult {
        interfaces: vec![iface],
        ips: cni_glue::ip_configs(&conf.iface, 0),
        routes: if conf.stay_down {
            Vec::new()
        } else {
            cni_glue::cni_routes(&conf.iface)
        },
        dns: inv.conf.dns.clone().unwrap_or_default(),
        ..CniResult::default()
    }
}
