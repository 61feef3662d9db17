//! IPAM as a library: persistent, concurrency-safe address management in the dialects of the
//! reference `host-local` and of Amazon's `ecs-ipam` (see [`config`]), used by the `ipam`
//! plugin and, in-process, by the `bridge` plugin.
//!
//! Every operation takes a [`Request`]: the attachment (network, container ID, interface), the
//! `ipam` object, where requested addresses come from (CNI_ARGS `IP`, `args.cni.ips`,
//! `runtimeConfig`) and the environment values IPAM reads (`IPAM_DB_PATH`,
//! `IPAM_DB_CONNECTION_TIMEOUT`). [`Request::of`] takes them from a plugin invocation.
//!
//! - [`add`]: one address per range set, round-robin, requested addresses honoured exactly; a
//!   repeated ADD for the same owner returns the same lease. Result: `ips` (address with the
//!   subnet prefix, gateway), `routes`, `dns`.
//! - [`del`]: releases by owner (or, in the ecs dialect, by the given addresses); success when
//!   nothing is leased.
//! - [`check`]: the owner holds a lease for every `prevResult` address in our ranges.
//! - [`gc`]: releases every lease whose owner is not a valid attachment (host-local dialect; a
//!   no-op in the ecs dialect, whose owners are ENI MACs GC never lists).
//! - [`status`]: [`IpamError::Exhausted`] naming the range set that has no free address.
//!
//! Errors are [`IpamError`], with their CNI code ([`IpamError::code`]); it is a
//! [`cni_spec::PluginError`], so the `ipam` plugin returns it as it is and `cni_spec::main!`
//! turns it into the CNI error object. The host-local dialect keeps host-local's
//! directory store; the ecs dialect keeps Amazon ecs-ipam's BoltDB file
//! ([`ipam_store::ecs`]), so our plugins and theirs can replace each other.

pub mod config;
mod error;

use std::collections::HashSet;

use cni_spec::{Attachment, CniArgs, CniResult, Command, Invocation, IpConfig, RuntimeConfig};
use ipam_store::{EcsStore, Owner, Store};
use serde_json::{Map, Value};

pub use config::{Dialect, IpamConfig, StoreAt};
pub use error::IpamError;

/// The variable naming the ecs dialect's store file (default `/data/eni-ipam.db`).
pub const DB_PATH_VAR: &str = "IPAM_DB_PATH";
/// The variable bounding the wait for the store's lock, a Go duration (default 5 s).
pub const DB_TIMEOUT_VAR: &str = "IPAM_DB_CONNECTION_TIMEOUT";

/// The inputs of one IPAM operation, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The network's `name`: host-local's store directory under `dataDir`, and messages.
    pub network: &'a str,
    /// CNI_CONTAINERID: with `ifname`, the lease owner (the ecs dialect's `ipam.id` replaces it).
    pub container_id: &'a str,
    /// CNI_IFNAME.
    pub ifname: &'a str,
    /// The `ipam` object, keys as written; `None` is a config error.
    pub ipam: Option<&'a Map<String, Value>>,
    /// Run as `ecs-ipam` (the binary's name): the ecs dialect whatever the config says.
    pub as_ecs_ipam: bool,
    /// `runtimeConfig`: `ipRanges` (prepended to `ranges`) and `ips` (requested).
    pub runtime_config: &'a RuntimeConfig,
    /// `args.cni.ips` (requested).
    pub args_ips: Option<&'a Value>,
    /// CNI_ARGS: `IP` (requested); host-local refuses keys it does not know unless
    /// `IgnoreUnknown` is given.
    pub cni_args: &'a CniArgs,
    /// CNI_ARGS keys the calling plugin reads itself (the bridge's `MAC`): not unknown here.
    pub callers_args: &'a [&'a str],
    /// `IPAM_DB_PATH` ([`DB_PATH_VAR`]) as given.
    pub db_path: Option<&'a str>,
    /// `IPAM_DB_CONNECTION_TIMEOUT` ([`DB_TIMEOUT_VAR`]) as given.
    pub db_timeout: Option<&'a str>,
    /// Log what the config gets away with (a gateway outside its subnet): on ADD.
    pub warn: bool,
}

impl<'a> Request<'a> {
    /// The request of a plugin invocation, everything as the invocation gives it (the
    /// environment values from [`Invocation::vars`]).
    pub fn of(inv: &'a Invocation) -> Request<'a> {
        Request {
            network: &inv.conf.name,
            container_id: &inv.env.container_id,
            ifname: &inv.env.ifname,
            ipam: inv.conf.ipam.as_ref(),
            as_ecs_ipam: inv.program == "ecs-ipam",
            runtime_config: &inv.conf.runtime_config,
            args_ips: inv.conf.args_cni("ips"),
            cni_args: &inv.env.args,
            callers_args: &[],
            db_path: inv.vars.get(DB_PATH_VAR),
            db_timeout: inv.vars.get(DB_TIMEOUT_VAR),
            warn: inv.command() == Command::Add,
        }
    }
}

/// A dialect's store.
enum Backend {
    Dir(Store),
    Bolt(EcsStore),
}

impl Backend {
    fn open(cfg: &IpamConfig) -> Result<Backend, IpamError> {
        Ok(match &cfg.store {
            StoreAt::Dir { data_dir, network } => {
                Backend::Dir(Store::open(data_dir, network, cfg.lock_timeout)?)
            }
            StoreAt::Bolt { path, legacy_dirs } => {
                let mut s = EcsStore::new(path, cfg.lock_timeout)
                    .with_log(Box::new(|m| cni_spec::log_warn!("{m}")));
                for d in legacy_dirs {
                    s = s.with_legacy_dir(d);
                }
                Backend::Bolt(s)
            }
        })
    }
}

/// The configuration, its store and the request's owner.
fn open(req: &Request) -> Result<(IpamConfig, Backend, Owner), IpamError> {
    let cfg = IpamConfig::load(req)?;
    let owner = Owner::new(&cfg.owner_id, req.ifname)?;
    let store = Backend::open(&cfg)?;
    Ok((cfg, store, owner))
}

/// ADD: a lease per range set; the result holds the addresses, their gateways, the config's
/// routes and DNS.
pub fn add(req: &Request) -> Result<CniResult, IpamError> {
    let (cfg, store, owner) = open(req)?;
    let leases = match &store {
        Backend::Dir(s) => s.allocate(&owner, &cfg.sets, &cfg.requested),
        Backend::Bolt(s) => s.allocate(&owner.id, &cfg.sets, &cfg.requested),
    }?;
    Ok(CniResult {
        ips: leases
            .iter()
            .map(|l| IpConfig::new(l.network(), Some(l.gateway()), None))
            .collect(),
        routes: cfg.routes,
        dns: cfg.dns,
        ..CniResult::default()
    })
}

/// DEL: the owner's leases go (ecs dialect: the given addresses, else every address of the
/// `id`); nothing leased is success.
pub fn del(req: &Request) -> Result<(), IpamError> {
    let (cfg, store, owner) = open(req)?;
    match &store {
        Backend::Dir(s) => s.release_by_owner(&owner).map(drop),
        Backend::Bolt(s) if !cfg.requested.is_empty() => {
            s.release_addresses(&cfg.requested).map(drop)
        }
        Backend::Bolt(s) => s.release_by_id(&owner.id).map(drop),
    }?;
    Ok(())
}

/// CHECK: the owner holds a lease, and every `prev_result` address inside our ranges is its
/// (the lease is looked at first, so that a missing one is reported as such).
pub fn check(req: &Request, prev_result: Option<&CniResult>) -> Result<(), IpamError> {
    let (cfg, store, owner) = open(req)?;
    let held = match &store {
        Backend::Dir(s) => s.find(&owner),
        Backend::Bolt(s) => s.find(&owner.id),
    }?;
    if held.is_empty() {
        return Err(IpamError::NoLease {
            id: owner.id,
            ifname: owner.ifname,
            network: cfg.network,
        });
    }
    let prev = prev_result.ok_or(IpamError::NoPrevResult)?;
    for ip in &prev.ips {
        let address = ip.address.ip();
        let ours = cfg.sets.iter().any(|s| s.contains(address));
        if ours && !held.contains(&address) {
            return Err(IpamError::NotLeased {
                address: address.to_string(),
                id: owner.id,
                ifname: owner.ifname,
                network: cfg.network,
                held: held
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// STATUS: [`IpamError::Exhausted`] when a range set has no free address.
pub fn status(req: &Request) -> Result<(), IpamError> {
    let cfg = IpamConfig::load(req)?;
    let exhausted = match Backend::open(&cfg)? {
        Backend::Dir(s) => s.exhausted(&cfg.sets)?,
        Backend::Bolt(s) => s.exhausted(&cfg.sets)?,
    };
    match exhausted {
        Some(what) => Err(IpamError::Exhausted {
            network: cfg.network,
            what,
        }),
        None => Ok(()),
    }
}

/// GC: releases every lease whose `(container ID, ifname)` is not in `valid`, in the
/// host-local dialect; nothing in the ecs dialect.
pub fn gc(req: &Request, valid: &[Attachment]) -> Result<(), IpamError> {
    let cfg = IpamConfig::load(req)?;
    let StoreAt::Dir { data_dir, network } = &cfg.store else {
        // ecs leases belong to ENI MACs or namespace paths, never to the container IDs GC
        // lists: collecting them here would release every task's address.
        return Ok(());
    };
    let store = Store::open(data_dir, network, cfg.lock_timeout)?;
    let valid: HashSet<Owner> = valid
        .iter()
        .filter_map(|a| Owner::new(&a.container_id, &a.ifname).ok())
        .collect();
    let report = store.gc(&valid)?;
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(IpamError::Gc {
            network: cfg.network,
            errors: report.errors.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::NetConf;
    use serde_json::json;

    /// A host-local store in a fresh directory, removed on drop.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("ipam-lib-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A request for `conf` from container `id`'s interface `ifname`, with no environment.
    pub(crate) fn request<'a>(
        conf: &'a NetConf,
        id: &'a str,
        ifname: &'a str,
        args: &'a CniArgs,
        rc: &'a RuntimeConfig,
    ) -> Request<'a> {
        Request {
            network: &conf.name,
            container_id: id,
            ifname,
            ipam: conf.ipam.as_ref(),
            as_ecs_ipam: false,
            runtime_config: rc,
            args_ips: conf.args_cni("ips"),
            cni_args: args,
            callers_args: &[],
            db_path: None,
            db_timeout: None,
            warn: false,
        }
    }

    /// Every verb in-process, as the bridge runs them: a lease per owner, CHECK against it,
    /// STATUS once the pool is full, GC of the owners not listed, DEL twice.
    #[test]
    fn the_verbs_over_a_host_local_store() {
        let dir = Dir::new("verbs");
        let conf = NetConf::from_value(json!({
            "cniVersion": "1.1.0", "name": "libnet", "type": "bridge",
            "ipam": {"type": "host-local", "dataDir": dir.0, "subnet": "10.7.0.0/29",
                     "routes": [{"dst": "0.0.0.0/0"}]}}))
        .unwrap();
        let (args, rc) = (CniArgs::default(), RuntimeConfig::default());
        let r = |id: &'static str| request(&conf, id, "eth0", &args, &rc);

        let first = add(&r("c1")).unwrap();
        assert_eq!(first.ips.len(), 1);
        assert_eq!(first.ips[0].address.to_string(), "10.7.0.2/29");
        assert_eq!(first.ips[0].gateway, Some("10.7.0.1".parse().unwrap()));
        assert_eq!(first.routes.len(), 1);
        // a repeated ADD returns the same lease
        assert_eq!(add(&r("c1")).unwrap().ips, first.ips);

        check(&r("c1"), Some(&first)).unwrap();
        assert_eq!(check(&r("c1"), None).unwrap_err().code(), 7);
        let mut other = first.clone();
        other.ips[0].address = "10.7.0.5/29".parse().unwrap();
        let e = check(&r("c1"), Some(&other)).unwrap_err();
        assert!(matches!(e, IpamError::NotLeased { .. }), "{e}");
        assert_eq!(e.code(), 100);

        status(&r("c1")).unwrap();
        for id in ["c2", "c3", "c4", "c5"] {
            add(&r(id)).unwrap();
        }
        let e = status(&r("c1")).unwrap_err();
        assert_eq!(e.code(), 50, "{e}");
        assert!(e.to_string().starts_with("network libnet: "), "{e}");
        assert_eq!(add(&r("c6")).unwrap_err().code(), 100);

        let valid = [Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        }];
        gc(&r("c1"), &valid).unwrap();
        assert!(matches!(
            check(&r("c2"), Some(&first)).unwrap_err(),
            IpamError::NoLease { .. }
        ));
        check(&r("c1"), Some(&first)).unwrap();

        del(&r("c1")).unwrap();
        del(&r("c1")).unwrap();
        let e = check(&r("c1"), Some(&first)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no lease for container c1 interface eth0 in network libnet"
        );
        status(&r("c1")).unwrap();
    }
}
