//! Running IPAM: our `ipam` crate in this process for `ipam`, `host-local` and `ecs-ipam`
//! (no second exec), any other `ipam.type` as a delegate binary on CNI_PATH.

use cni_spec::{CniArgs, CniResult, Command, Env, Error, Invocation, Plugin, delegate};

use crate::config::IpamKind;

/// The invocation the in-process IPAM sees: the same, except that CNI_ARGS loses `MAC` (ours;
/// host-local style IPAM refuses keys it does not know unless `IgnoreUnknown` is set). `None`
/// when nothing needs to change.
fn view(inv: &Invocation) -> Option<Invocation> {
    let args = &inv.env.args;
    if args.ignore_unknown || args.get("MAC").is_none() {
        return None;
    }
    let env = &inv.env;
    Some(Invocation {
        env: Env {
            command: env.command,
            container_id: env.container_id.clone(),
            netns_path: env.netns_path.clone(),
            netns: None,
            ifname: env.ifname.clone(),
            args: CniArgs {
                pairs: args
                    .pairs
                    .iter()
                    .filter(|(k, _)| k != "MAC")
                    .cloned()
                    .collect(),
                ignore_unknown: false,
            },
            path: env.path.clone(),
        },
        vars: inv.vars.clone(),
        version: inv.version,
        conf: inv.conf.clone(),
        stdin: Vec::new(),
        program: inv.program.clone(),
    })
}

/// Runs `f` against the in-process IPAM with the right view of `inv`.
fn in_process<T>(
    inv: &Invocation,
    f: impl FnOnce(&Invocation) -> Result<T, Error>,
) -> Result<T, Error> {
    match view(inv) {
        Some(v) => f(&v),
        None => f(inv),
    }
}

fn delegated(inv: &Invocation, plugin: &str, command: Command) -> Result<Option<CniResult>, Error> {
    delegate(inv, plugin, command)
}

/// IPAM ADD: the abbreviated result (addresses with gateways, routes, DNS).
pub fn add(inv: &Invocation, kind: &IpamKind) -> Result<Option<CniResult>, Error> {
    match kind {
        IpamKind::None => Ok(None),
        IpamKind::InProcess(_) => in_process(inv, ipam::Ipam::allocate).map(Some),
        IpamKind::Delegate(p) => match delegated(inv, p, Command::Add)? {
            Some(r) => Ok(Some(r)),
            None => Err(Error::plugin(
                cni_spec::code::OPERATION_FAILED,
                format!("{p} ADD printed no result"),
            )),
        },
    }
}

/// IPAM DEL (also used to roll back a failed ADD).
pub fn del(inv: &Invocation, kind: &IpamKind) -> Result<(), Error> {
    match kind {
        IpamKind::None => Ok(()),
        IpamKind::InProcess(_) => in_process(inv, ipam::Ipam::release),
        IpamKind::Delegate(p) => delegated(inv, p, Command::Del).map(|_| ()),
    }
}

/// IPAM CHECK, STATUS or GC.
pub fn forward(inv: &Invocation, kind: &IpamKind, command: Command) -> Result<(), Error> {
    match kind {
        IpamKind::None => Ok(()),
        IpamKind::InProcess(_) => in_process(inv, |v| match command {
            Command::Check => ipam::Ipam.check(v),
            Command::Status => ipam::Ipam.status(v),
            Command::Gc => ipam::Ipam.gc(v),
            Command::Add => ipam::Ipam::allocate(v).map(|_| ()),
            Command::Del => ipam::Ipam::release(v),
            Command::Version => Ok(()),
        }),
        IpamKind::Delegate(p) => delegated(inv, p, command).map(|_| ()),
    }
}
