//! CHECK: the ENI in the container against the config and prevResult. Every difference is
//! collected and named in one [`EniError::Check`].

use cni_spec::{CniResult, Invocation};
use ipconf::{ExtraRoute, IfaceConfig};
use nl::{Handle, Link};

use crate::config::EniConf;
use crate::error::EniError;
use crate::host::{self, Origin};

pub(crate) fn check(inv: &Invocation) -> Result<(), EniError> {
    let conf = crate::parse(inv)?;
    let prev = inv.conf.require_prev_result("CHECK")?;
    let ctr_ns = inv.netns()?;
    let netns = ctr_ns.path().display().to_string();
    let mut ctr = Handle::open_in(ctr_ns)?;
    let ifname = inv.env.ifname.as_str();
    let Some(link) = host::find_in_container(&mut ctr, ifname, conf.mac, conf.name.as_deref())?
    else {
        return Err(EniError::Check {
            ifname: ifname.to_string(),
            netns,
            diffs: vec![format!(
                "no interface {ifname} with the ENI's {} in the namespace",
                conf.describe()
            )],
        });
    };
    // with stay-down it keeps its host name
    let expected_name = if conf.stay_down {
        link.name.clone()
    } else {
        ifname.to_string()
    };

    let mut diffs = identity_diffs(&link, &conf, &expected_name);
    let pos = prev_interface_diffs(prev, &link, &expected_name, &netns, &mut diffs);
    let iface = with_prev_result(&conf.iface, prev, pos);
    state_diffs(&mut ctr, &link, &conf, &iface, &mut diffs)?;
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(EniError::Check {
            ifname: link.name,
            netns,
            diffs,
        })
    }
}

/// Our record in its alias (DEL needs it), its name and its MAC.
fn identity_diffs(link: &Link, conf: &EniConf, expected_name: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    if link.alias.as_deref().and_then(Origin::decode).is_none() {
        diffs.push(format!(
            "its alias does not record the host name and MTU (DEL needs them): {:?}",
            link.alias.as_deref().unwrap_or("")
        ));
    }
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
    diffs
}

/// prevResult's entry for our interface: its MAC and sandbox. Returns its position in
/// `interfaces` (`None`, and a difference, when prevResult lists no such interface).
fn prev_interface_diffs(
    prev: &CniResult,
    link: &Link,
    expected_name: &str,
    netns: &str,
    diffs: &mut Vec<String>,
) -> Option<usize> {
    let Some(pos) = prev.interfaces.iter().position(|i| i.name == expected_name) else {
        diffs.push(format!("prevResult lists no interface {expected_name}"));
        return None;
    };
    let pi = &prev.interfaces[pos];
    let link_mac = link.mac.map(|m| m.to_string()).unwrap_or_default();
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
    Some(pos)
}

/// What the interface must carry: the config, plus prevResult's addresses of our interface
/// (at `pos`) and prevResult's routes.
fn with_prev_result(iface: &IfaceConfig, prev: &CniResult, pos: Option<usize>) -> IfaceConfig {
    let mut iface = iface.clone();
    if let Some(pos) = pos {
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
    let wanted = iface.route_specs(0);
    for r in &prev.routes {
        if !wanted.iter().any(|s| s.dst == r.dst && s.gw == r.gw) {
            iface.routes.push(ExtraRoute {
                dst: r.dst,
                gw: r.gw,
            });
        }
    }
    iface
}

/// The kernel's view: down with stay-down; else MTU, up state, addresses, routes and IMDS
/// blackholes ([`ipconf::check`]).
fn state_diffs(
    ctr: &mut Handle,
    link: &Link,
    conf: &EniConf,
    iface: &IfaceConfig,
    diffs: &mut Vec<String>,
) -> Result<(), EniError> {
    if conf.stay_down {
        if link.up {
            diffs.push("it is up, but the config says stay-down".to_string());
        }
        return Ok(());
    }
    match ipconf::check(ctr, link.index, iface) {
        Ok(()) => Ok(()),
        Err(ipconf::Error::Mismatch { diffs: d, .. }) => {
            diffs.extend(d);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
