//! `ipam`: persistent, concurrency-safe address management; a drop-in for the reference
//! `host-local` and for Amazon's `ecs-ipam` (see [`config`] for both dialects).
//!
//! - ADD: one address per range set, round-robin, requested addresses honoured exactly; a
//!   repeated ADD for the same owner returns the same lease. Result: `ips` (address with the
//!   subnet prefix, gateway), `routes`, `dns`.
//! - DEL: releases by owner (or, in the ecs dialect, by the given addresses); success when
//!   nothing is leased.
//! - CHECK: the owner holds a lease for every `prevResult` address in our ranges.
//! - GC: releases every lease whose owner is not in `cni.dev/valid-attachments` (host-local
//!   dialect; a no-op in the ecs dialect, whose owners are ENI MACs GC never lists).
//! - STATUS: code 50 naming the range set that has no free address.
//!
//! The host-local dialect keeps host-local's directory store; the ecs dialect keeps Amazon
//! ecs-ipam's BoltDB file ([`ipam_store::ecs`]), so the two plugins can replace each other.

pub mod config;

use std::collections::HashSet;

use cni_spec::{CniResult, Error, Invocation, IpConfig, NetnsUse, Plugin, code};
use ipam_store::{EcsStore, Owner, Store};

pub use config::{Dialect, IpamConfig, StoreAt};

/// What can go wrong, mapped to CNI codes once ([`From<IpamError>`]).
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error(transparent)]
    Store(#[from] ipam_store::Error),
    #[error("no lease for container {id} interface {ifname} in network {network}")]
    NoLease {
        id: String,
        ifname: String,
        network: String,
    },
    #[error(
        "prevResult address {address} is not leased to container {id} interface {ifname} in network {network} (it holds {held})"
    )]
    NotLeased {
        address: String,
        id: String,
        ifname: String,
        network: String,
        held: String,
    },
    #[error("{0}")]
    Exhausted(String),
    #[error("GC of network {network} finished with errors: {errors}")]
    Gc { network: String, errors: String },
}

impl From<IpamError> for Error {
    fn from(e: IpamError) -> Error {
        use ipam_store::Error as S;
        let code = match &e {
            IpamError::Store(
                S::LockTimeout { .. } | S::Db(ipam_store::boltdb::Error::LockTimeout { .. }),
            ) => code::TRY_AGAIN_LATER,
            IpamError::Store(S::InvalidRange { .. } | S::InvalidName { .. }) => {
                code::INVALID_CONFIG
            }
            IpamError::Exhausted(_) => code::UNAVAILABLE,
            _ => code::OPERATION_FAILED,
        };
        Error::plugin(code, e.to_string())
    }
}

/// A dialect's store.
enum Backend {
    Dir(Store),
    Bolt(EcsStore),
}

impl Backend {
    fn open(cfg: &IpamConfig) -> Result<Backend, Error> {
        Ok(match &cfg.store {
            StoreAt::Dir { data_dir, network } => Backend::Dir(
                Store::open(data_dir, network, cfg.lock_timeout).map_err(IpamError::from)?,
            ),
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

    fn exhausted(&self, cfg: &IpamConfig) -> Result<Option<String>, IpamError> {
        Ok(match self {
            Backend::Dir(s) => s.exhausted(&cfg.sets)?,
            Backend::Bolt(s) => s.exhausted(&cfg.sets)?,
        })
    }
}

/// The configuration, its store and the invocation's owner.
fn open(inv: &Invocation) -> Result<(IpamConfig, Backend, Owner), Error> {
    let cfg = IpamConfig::load(inv, &|k| inv.vars.get(k).map(str::to_owned))?;
    let owner = Owner::new(&cfg.owner_id, &inv.env.ifname).map_err(IpamError::from)?;
    let store = Backend::open(&cfg)?;
    Ok((cfg, store, owner))
}

/// The IPAM plugin.
pub struct Ipam;

impl Ipam {
    /// ADD as a function, so that a main plugin can run IPAM in-process (no second exec).
    pub fn allocate(inv: &Invocation) -> Result<CniResult, Error> {
        let (cfg, store, owner) = open(inv)?;
        let leases = match &store {
            Backend::Dir(s) => s.allocate(&owner, &cfg.sets, &cfg.requested),
            Backend::Bolt(s) => s.allocate(&owner.id, &cfg.sets, &cfg.requested),
        }
        .map_err(IpamError::from)?;
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

    /// DEL as a function (see [`Ipam::allocate`]).
    pub fn release(inv: &Invocation) -> Result<(), Error> {
        let (cfg, store, owner) = open(inv)?;
        match &store {
            Backend::Dir(s) => s.release_by_owner(&owner).map(drop),
            // ecs-ipam: by the given addresses, else every address of the id
            Backend::Bolt(s) if !cfg.requested.is_empty() => {
                s.release_addresses(&cfg.requested).map(drop)
            }
            Backend::Bolt(s) => s.release_by_id(&owner.id).map(drop),
        }
        .map_err(IpamError::from)?;
        Ok(())
    }
}

impl Plugin for Ipam {
    const NAME: &'static str = "ipam";
    const ABOUT: &'static str = "host-local and ecs-ipam compatible address management";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];
    /// IPAM never enters the container's namespace; like host-local it does not open CNI_NETNS.
    const USES_NETNS: NetnsUse = NetnsUse::Ignore;

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        Ipam::allocate(inv)
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        Ipam::release(inv)
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        let (cfg, store, owner) = open(inv)?;
        let held = match &store {
            Backend::Dir(s) => s.find(&owner),
            Backend::Bolt(s) => s.find(&owner.id),
        }
        .map_err(IpamError::from)?;
        if held.is_empty() {
            return Err(IpamError::NoLease {
                id: owner.id,
                ifname: owner.ifname,
                network: cfg.network,
            }
            .into());
        }
        let prev = inv.conf.require_prev_result("CHECK")?;
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
                }
                .into());
            }
        }
        Ok(())
    }

    fn status(&self, inv: &Invocation) -> Result<(), Error> {
        let cfg = IpamConfig::load(inv, &|k| inv.vars.get(k).map(str::to_owned))?;
        let store = Backend::open(&cfg)?;
        match store.exhausted(&cfg)? {
            Some(what) => {
                Err(IpamError::Exhausted(format!("network {}: {what}", cfg.network)).into())
            }
            None => Ok(()),
        }
    }

    fn gc(&self, inv: &Invocation) -> Result<(), Error> {
        let cfg = IpamConfig::load(inv, &|k| inv.vars.get(k).map(str::to_owned))?;
        let StoreAt::Dir { data_dir, network } = &cfg.store else {
            // ecs leases belong to ENI MACs or namespace paths, never to the container IDs GC
            // lists: collecting them here would release every task's address.
            return Ok(());
        };
        let store = Store::open(data_dir, network, cfg.lock_timeout).map_err(IpamError::from)?;
        let valid: HashSet<Owner> = inv
            .conf
            .valid_attachments
            .iter()
            .flatten()
            .filter_map(|a| Owner::new(&a.container_id, &a.ifname).ok())
            .collect();
        let report = store.gc(&valid).map_err(IpamError::from)?;
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(IpamError::Gc {
                network: cfg.network,
                errors: report.errors.join("; "),
            }
            .into())
        }
    }
}
