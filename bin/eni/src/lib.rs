//! `eni`: moves an AWS Elastic Network Interface from the host into the container's network
//! namespace and configures it. A drop-in for amazon-ecs-cni-plugins' `ecs-eni` and
//! amazon-vpc-cni-plugins' `vpc-eni` (both config dialects, keys matched case-insensitively).
//!
//! - ADD: find the ENI in the host namespace by `eniName` or MAC, waiting a bounded time for a
//!   late one (code 11 after `eniWaitTimeout`); refuse the loopback and the interface carrying
//!   the host's default route; record its host name and MTU in its alias; move it into
//!   CNI_NETNS; rename it to CNI_IFNAME; then [`ipconf::apply`]: MTU, IMDS blackholes, every
//!   address (IPv6 without DAD), up, one default route per gateway. `stay-down` /
//!   `opStateDown`: move only. Any failure after the move rolls back: the ENI returns to the
//!   host with its name, MTU, alias and up state.
//! - DEL: find the ENI in the container (CNI_IFNAME, else MAC or `eniName`), bring it down,
//!   restore MTU, alias and name, move it back to the plugin's own (host) namespace. Succeeds
//!   when the namespace, or the ENI in it, is gone; repeated DELs succeed.
//! - CHECK: name, MAC, MTU, up state, addresses, default routes and IMDS blackholes against the
//!   config and prevResult. STATUS and GC: nothing to do (no state outside the container).

mod config;
mod error;
mod host;

use cni_spec::{CniResult, Error, Interface, Invocation, Plugin};
use ipconf::ExtraRoute;
use netns::{Mac, Netns};
use nl::{Handle, Link};

pub use config::{DEFAULT_WAIT, Dialect, EniConf, WAIT_ENV, parse_duration};
pub use error::EniError;
pub use host::{MARKER, Origin};

/// The eni plugin.
pub struct Eni;

fn parse(inv: &Invocation) -> Result<EniConf, EniError> {
    EniConf::parse(
        &inv.conf.raw,
        &inv.conf.plugin_type,
        &inv.program,
        inv.vars.get(WAIT_ENV),
    )
}

/// What ADD changed so far, undone in reverse by [`rollback`].
struct Undo {
    origin: Origin,
    mac: Option<Mac>,
    host_index: u32,
    alias_set: bool,
    host_down: bool,
    host_renamed: bool,
    /// Its name in the container once moved (the host name, a temporary one, CNI_IFNAME).
    moved: Option<String>,
}

impl Plugin for Eni {
    type Error = cni_spec::Error;
    const NAME: &'static str = "eni";
    const ABOUT: &'static str =
        "moves an AWS ENI into the container network namespace and configures it";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        Ok(add(inv)?)
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        Ok(del(inv)?)
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        Ok(check(inv)?)
    }
}

fn add(inv: &Invocation) -> Result<CniResult, EniError> {
    // everything is validated before anything is touched
    let conf = parse(inv)?;
    let ifname = inv.env.ifname.as_str();
    let ctr_ns = inv.netns()?;
    let netns_label = ctr_ns.path().display().to_string();
    let mut host = Handle::current()?;
    let mut ctr = Handle::open_in(ctr_ns)?;

    let eni = host::wait_for(&mut host, &mut ctr, &conf)?;
    host::refuse_host_critical(&mut host, &eni, &conf)?;
    if !conf.stay_down && ctr.link_by_name(ifname)?.is_some() {
        return Err(EniError::IfnameTaken {
            ifname: ifname.to_string(),
            netns: netns_label,
        });
    }

    let mut undo = Undo {
        origin: Origin::of(&eni),
        mac: eni.mac,
        host_index: eni.index,
        alias_set: false,
        host_down: false,
        host_renamed: false,
        moved: None,
    };
    match add_steps(&conf, ifname, &eni, ctr_ns, &mut host, &mut ctr, &mut undo) {
        Ok(link) => Ok(result(inv, &conf, &link, &netns_label)),
        Err(error) => match rollback(&undo, &mut host, &mut ctr) {
            Ok(()) => Err(error),
            Err(e) => Err(EniError::Rollback {
                error: Box::new(error),
                rollback: e.to_string(),
            }),
        },
    }
}

/// The steps of ADD that change something, each recorded in `undo`. Returns the ENI as it is
/// in the container at the end.
fn add_steps(
    conf: &EniConf,
    ifname: &str,
    eni: &Link,
    ctr_ns: &Netns,
    host: &mut Handle,
    ctr: &mut Handle,
    undo: &mut Undo,
) -> Result<Link, EniError> {
    let marker = undo.origin.encode();
    if eni.alias.as_deref() != Some(marker.as_str()) {
        host.set_alias(eni.index, &marker)?;
        undo.alias_set = true;
    }
    let mut carried = eni.name.clone();
    match host.set_netns(eni.index, ctr_ns.fd()) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {
            // its host name is taken in the container: cross under a temporary name (the
            // kernel renames only links that are down)
            let tmp = eni
                .mac
                .map_or_else(|| format!("eni{}", eni.index), host::temp_name);
            if eni.up {
                host.set_down(eni.index)?;
                undo.host_down = true;
            }
            host.rename(eni.index, &tmp)?;
            undo.host_renamed = true;
            host.set_netns(eni.index, ctr_ns.fd())?;
            carried = tmp;
        }
        Err(e) => return Err(e.into()),
    }
    undo.moved = Some(carried.clone());
    let mut link = ctr.link(&carried)?;
    if conf.stay_down {
        return Ok(link);
    }
    if link.name != ifname {
        ctr.rename(link.index, ifname)?;
        link.name = ifname.to_string();
        undo.moved = Some(link.name.clone());
    }
    ipconf::apply(ctr_ns, ctr, link.index, &conf.iface)?;
    if let Some(mtu) = conf.iface.mtu {
        link.mtu = mtu;
    }
    link.up = true;
    Ok(link)
}

/// Puts the ENI back as it was before ADD: in the host, with its name, MTU, alias and up state.
/// The IMDS blackholes [`ipconf::apply`] added are removed by `apply` itself when it fails.
fn rollback(undo: &Undo, host: &mut Handle, ctr: &mut Handle) -> Result<(), EniError> {
    if let Some(ctr_name) = &undo.moved {
        // by its name there, else by MAC (its index may have changed in the move)
        let by_name = ctr
            .link_by_name(ctr_name)?
            .filter(|l| undo.mac.is_none_or(|m| l.mac == Some(m)));
        let link = match (by_name, undo.mac) {
            (Some(l), _) => Some(l),
            (None, Some(mac)) => ctr.links()?.into_iter().find(|l| l.mac == Some(mac)),
            (None, None) => None,
        };
        let Some(link) = link else {
            return Ok(()); // gone with its namespace
        };
        let host_ns = Netns::current()?;
        let name = host::return_to_host(ctr, &link, &undo.origin, host_ns.fd(), host)?;
        if undo.origin.up {
            if let Some(l) = host.link_by_name(&name)? {
                host.set_up(l.index)?;
            }
        }
        return Ok(());
    }
    if undo.host_renamed {
        host.rename(undo.host_index, &undo.origin.name)?;
    }
    if undo.alias_set {
        host.set_alias(undo.host_index, undo.origin.alias.as_deref().unwrap_or(""))?;
    }
    if undo.host_down && undo.origin.up {
        host.set_up(undo.host_index)?;
    }
    Ok(())
}

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

/// The ENI in the container: CNI_IFNAME if it is ours (our marker, or the configured MAC),
/// else the link with the configured MAC, else the one named `eniName` carrying our marker.
fn find_in_container(
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
            .links()?
            .into_iter()
            .filter(|l| l.mac == Some(m) && !l.loopback)
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

fn del(inv: &Invocation) -> Result<(), EniError> {
    let (mac, name) = EniConf::parse_lenient(&inv.conf.raw);
    let mut host = Handle::current()?;
    let Some(ns) = &inv.env.netns else {
        // the namespace is gone: a physical ENI is back in the host already
        return host::restore_in_host(&mut host, mac);
    };
    let mut ctr = Handle::open_in(ns)?;
    let Some(link) = find_in_container(&mut ctr, &inv.env.ifname, mac, name.as_deref())? else {
        return host::restore_in_host(&mut host, mac);
    };
    let origin = match link.alias.as_deref().and_then(Origin::decode) {
        Some(o) => o,
        // ours by MAC but without a record (e.g. moved by another plugin): keep its MTU,
        // give it the configured host name or a name derived from its MAC
        None => Origin {
            name: name.unwrap_or_else(|| {
                link.mac
                    .map_or_else(|| format!("eni{}", link.index), host::temp_name)
            }),
            mtu: link.mtu,
            alias: None,
            up: false,
        },
    };
    let host_ns = Netns::current()?;
    host::return_to_host(&mut ctr, &link, &origin, host_ns.fd(), &mut host)?;
    Ok(())
}

fn check(inv: &Invocation) -> Result<(), EniError> {
    let conf = parse(inv)?;
    let prev = inv.conf.require_prev_result("CHECK")?;
    let ctr_ns = inv.netns()?;
    let netns = ctr_ns.path().display().to_string();
    let mut ctr = Handle::open_in(ctr_ns)?;
    let ifname = inv.env.ifname.as_str();
    let fail = |diffs: Vec<String>, name: &str| EniError::Check {
        ifname: name.to_string(),
        netns: netns.clone(),
        diffs,
    };
    let Some(link) = find_in_container(&mut ctr, ifname, conf.mac, conf.name.as_deref())? else {
        return Err(fail(
            vec![format!(
                "no interface {ifname} with the ENI's {} in the namespace",
                conf.describe()
            )],
            ifname,
        ));
    };
    let mut diffs = Vec::new();
    let origin = link.alias.as_deref().and_then(Origin::decode);
    if origin.is_none() {
        diffs.push(format!(
            "its alias does not record the host name and MTU (DEL needs them): {:?}",
            link.alias.as_deref().unwrap_or("")
        ));
    }
    let expected_name = if conf.stay_down {
        link.name.clone()
    } else {
        ifname.to_string()
    };
    if link.name != expected_name {
        diffs.push(format!(
            "it is named {} instead of {expected_name}",
            link.name
        ));
    }
    if let (Some(want), Some(found)) = (conf.mac, link.mac) {
        if want != found {
            diffs.push(format!("MAC is {} instead of {}", found, want));
        }
    }
    // prevResult: our interface, its MAC and sandbox, its addresses and routes
    let link_mac = link.mac.map(|m| m.to_string()).unwrap_or_default();
    let mut iface = conf.iface.clone();
    match prev.interfaces.iter().position(|i| i.name == expected_name) {
        None => diffs.push(format!("prevResult lists no interface {expected_name}")),
        Some(pos) => {
            let pi = &prev.interfaces[pos];
            if let Some(m) = pi
                .mac
                .as_deref()
                .filter(|m| !m.eq_ignore_ascii_case(&link_mac))
            {
                diffs.push(format!(
                    "prevResult MAC {m} differs from the interface's {link_mac}"
                ));
            }
            if let Some(s) = pi.sandbox.as_deref().filter(|s| *s != netns) {
                diffs.push(format!("prevResult sandbox {s} is not {netns}"));
            }
            for ip in prev
                .ips
                .iter()
                .filter(|ip| ip.interface.is_none_or(|i| i == pos))
            {
                if !iface.addresses.contains(&ip.address) {
                    iface.addresses.push(ip.address);
                }
            }
        }
    }
    let wanted = iface.route_specs(0);
    for r in &prev.routes {
        if !wanted.iter().any(|s| s.dst == r.dst && s.gw == r.gw) {
            iface.routes.push(ExtraRoute {
                dst: r.dst,
                gw: r.gw,
            });
        }
    }
    if conf.stay_down {
        if link.up {
            diffs.push("it is up, but the config says stay-down".to_string());
        }
    } else {
        match ipconf::check(&mut ctr, link.index, &iface) {
            Ok(()) => {}
            Err(ipconf::Error::Mismatch { diffs: d, .. }) => diffs.extend(d),
            Err(e) => return Err(e.into()),
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(fail(diffs, &link.name))
    }
}
