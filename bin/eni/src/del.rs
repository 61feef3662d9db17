//! DEL: put the ENI back in the host as it was. Never fails because of its config, the
//! namespace or the ENI being gone; repeated DELs succeed.

use cni_spec::Invocation;
use netns::Netns;
use nl::{Handle, Link};

use crate::config::EniConf;
use crate::error::EniError;
use crate::host::{self, Origin};

pub(crate) fn del(inv: &Invocation) -> Result<(), EniError> {
    let (mac, name) = EniConf::parse_lenient(&inv.conf.raw);
    let mut host = Handle::current()?;
    let Some(ns) = &inv.env.netns else {
        // the namespace is gone: a physical ENI is back in the host already
        return host::restore_in_host(&mut host, mac);
    };
    let mut ctr = Handle::open_in(ns)?;
    let Some(link) = host::find_in_container(&mut ctr, &inv.env.ifname, mac, name.as_deref())?
    else {
        return host::restore_in_host(&mut host, mac);
    };
    let origin = origin_of(&link, name);
    let host_ns = Netns::current()?;
    host::return_to_host(&mut ctr, &link, &origin, host_ns.fd(), &mut host)?;
    Ok(())
}

/// What to restore: the record ADD left in the alias. An ENI that is ours by MAC but has no
/// record (e.g. moved by another plugin) keeps its MTU and gets the configured host name, or
/// a name derived from its MAC.
fn origin_of(link: &Link, name: Option<String>) -> Origin {
    match link.alias.as_deref().and_then(Origin::decode) {
        Some(o) => o,
        None => Origin {
            name: name.unwrap_or_else(|| host::temp_name_for(link)),
            mtu: link.mtu,
            alias: None,
            up: false,
        },
    }
}
