//! The two config dialects under `ipam`, normalised into one [`IpamConfig`].
//!
//! - host-local's: `ranges` (range sets), legacy top-level `subnet`/`rangeStart`/`rangeEnd`/
//!   `gateway`, `routes`, `dataDir`, `resolvConf`; requested addresses from CNI_ARGS `IP`,
//!   `args.cni.ips` and `runtimeConfig.ips` (appended, as host-local does); `runtimeConfig.ipRanges`
//!   prepended to `ranges`.
//! - ecs-ipam's: `id`, `ipv4-subnet`/`-address`/`-gateway`/`-routes` and the `ipv6-` twins; the
//!   store is Amazon's BoltDB file at `IPAM_DB_PATH` (default `/data/eni-ipam.db`). Chosen when
//!   `ipam.type` is `ecs-ipam`, when the binary runs as `ecs-ipam`, or when any
//!   `ipv4-*`/`ipv6-*` key is present.
//!
//! Keys are read with Go's `encoding/json` rules (case-insensitive, the last member wins, `null`
//! is absent): see `cni_spec::gojson`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cni_spec::gocompat::parse_duration;
use cni_spec::gojson::{GoObject, fold_key};
use cni_spec::{CniArgs, Dns, RangeConf, Route, parse_value};
use ipam_store::{FieldLabels, RangeSet, RangeSpec, check_sets, validate_sets};
use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_json::Value;

use crate::{IpamError, Request};

/// Where a dialect keeps its leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    /// host-local's directory store `<data_dir>/<network>/`.
    Dir { data_dir: PathBuf, network: String },
    /// ecs-ipam's BoltDB file, whatever the config's `name` (the ECS agent allocates with
    /// `name: "network-name"` and releases with `name: "ecs-ipam"`).
    Bolt {
        /// `IPAM_DB_PATH`, default `/data/eni-ipam.db`.
        path: PathBuf,
        /// Data directories whose `ecs-ipam/` an earlier version of ours wrote: imported once
        /// (`<IPAM_DB_PATH>.d`, or host-local's default directory when `IPAM_DB_PATH` is
        /// unset). A directory *at* `path` is found by the store itself.
        legacy_dirs: Vec<PathBuf>,
    },
}

/// The dialect a config was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    HostLocal,
    Ecs,
}

/// Everything a verb needs, whichever dialect it came from.
#[derive(Debug)]
pub struct IpamConfig {
    pub dialect: Dialect,
    pub sets: Vec<RangeSet>,
    pub requested: Vec<IpAddr>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    pub store: StoreAt,
    /// The network, for messages: the config's `name` (host-local), the store file (ecs).
    pub network: String,
    /// The lease owner's id: CNI_CONTAINERID, or ecs-ipam's `id`.
    pub owner_id: String,
    pub lock_timeout: Duration,
}

#[derive(Deserialize)]
struct RouteConf {
    dst: IpNetwork,
    #[serde(default)]
    gw: Option<IpAddr>,
}

impl RouteConf {
    fn into_route(self) -> Route {
        Route::new(self.dst, self.gw)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HostLocal {
    ranges: Vec<Vec<RangeConf>>,
    subnet: Option<String>,
    #[serde(rename = "rangeStart")]
    range_start: Option<String>,
    #[serde(rename = "rangeEnd")]
    range_end: Option<String>,
    gateway: Option<String>,
    routes: Vec<RouteConf>,
    #[serde(rename = "dataDir")]
    data_dir: Option<String>,
    #[serde(rename = "resolvConf")]
    resolv_conf: Option<String>,
    /// Our key: how long to wait for the store lock before answering "try again later".
    #[serde(rename = "lockTimeoutMs")]
    lock_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Ecs {
    id: Option<String>,
    #[serde(rename = "ipv4-subnet")]
    ipv4_subnet: Option<String>,
    #[serde(rename = "ipv4-address")]
    ipv4_address: Option<String>,
    #[serde(rename = "ipv4-gateway")]
    ipv4_gateway: Option<String>,
    #[serde(rename = "ipv4-routes")]
    ipv4_routes: Vec<RouteConf>,
    #[serde(rename = "ipv6-subnet")]
    ipv6_subnet: Option<String>,
    #[serde(rename = "ipv6-address")]
    ipv6_address: Option<String>,
    #[serde(rename = "ipv6-gateway")]
    ipv6_gateway: Option<String>,
    #[serde(rename = "ipv6-routes")]
    ipv6_routes: Vec<RouteConf>,
    #[serde(rename = "lockTimeoutMs")]
    lock_timeout_ms: Option<u64>,
}

fn to_spec(r: &RangeConf) -> RangeSpec {
    RangeSpec {
        subnet: r.subnet.clone(),
        range_start: r.range_start.clone(),
        range_end: r.range_end.clone(),
        gateway: r.gateway.clone(),
    }
}

/// `10.0.0.5` or `10.0.0.5/24` (the prefix is ignored); `field` names the source.
fn parse_requested(s: &str, field: &str) -> Result<IpAddr, IpamError> {
    let ip = s.split('/').next().unwrap_or_default().trim();
    ip.parse()
        .map_err(|_| IpamError::Config(format!("{field}: \"{s}\" is not an IP address")))
}

/// `lockTimeoutMs`, else `IPAM_DB_CONNECTION_TIMEOUT` in Go's duration syntax (`5s`, `500ms`,
/// `1m30s`; read as Amazon's plugin reads it, with `time.ParseDuration`), else 5 s.
fn lock_timeout(ms: Option<u64>, env: Option<&str>) -> Result<Duration, IpamError> {
    if let Some(ms) = ms {
        return Ok(Duration::from_millis(ms));
    }
    match env.filter(|s| !s.is_empty()) {
        None => Ok(ipam_store::DEFAULT_LOCK_TIMEOUT),
        // a value past Go's range (e.g. "99999999999999999999s") once panicked here (found in
        // review for issue 5; fuzz/regressions/ipam_config/huge-duration)
        Some(s) => parse_duration(s).map_err(|source| IpamError::ConnectionTimeout {
            value: s.to_owned(),
            source,
        }),
    }
}

/// Reads `nameserver`, `domain`, `search` and `options` lines as host-local does.
fn read_resolv_conf(path: &str) -> Result<Dns, IpamError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| IpamError::Config(format!("ipam.resolvConf \"{path}\": {e}")))?;
    let mut dns = Dns::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.next().map(str::to_owned)),
            Some("domain") => dns.domain = words.next().map(str::to_owned),
            Some("search") => dns.search.extend(words.map(str::to_owned)),
            Some("options") => dns.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    Ok(dns)
}

/// host-local accepts a gateway outside its subnet and so do we, with a warning on ADD (the
/// address is reported as the gateway; network+1 is handed out like any other address).
/// `field` names the list (`ipam.ranges`), or the legacy key's parent when `legacy`.
fn warn_foreign_gateways(req: &Request, sets: &[RangeSet], field: &str, legacy: bool) {
    if !req.warn {
        return;
    }
    for (i, set) in sets.iter().enumerate() {
        for (j, r) in set.ranges().iter().enumerate() {
            if r.gateway_in_subnet() {
                continue;
            }
            let key = if legacy {
                format!("{field}.gateway")
            } else {
                format!("{field}[{i}][{j}].gateway")
            };
            cni_spec::log_warn!(
                "{key} {} is outside subnet {}: accepted as host-local does; the container may not reach it",
                r.gateway(),
                r.subnet()
            );
        }
    }
}

impl IpamConfig {
    /// Reads the request's `ipam` object in whichever dialect it is written.
    pub fn load(req: &Request) -> Result<IpamConfig, IpamError> {
        let ipam = req.ipam.ok_or_else(|| {
            IpamError::Config(
                "key \"ipam\" is missing or empty; an IPAM plugin needs it".to_owned(),
            )
        })?;
        let ipam_type = GoObject::new(ipam, &["type"])
            .get("type")
            .and_then(|(_, t)| t.as_str());
        let is_ecs = ipam_type == Some("ecs-ipam")
            || req.as_ecs_ipam
            || ipam.iter().any(|(k, v)| {
                let k = fold_key(k);
                !v.is_null() && (k.starts_with("IPV4-") || k.starts_with("IPV6-"))
            });
        let value = Value::Object(ipam.clone());
        if is_ecs {
            Self::load_ecs(req, parse_value(&value, "ipam")?)
        } else {
            Self::load_host_local(req, parse_value(&value, "ipam")?)
        }
    }

    fn load_host_local(req: &Request, c: HostLocal) -> Result<IpamConfig, IpamError> {
        // runtimeConfig.ipRanges first, then the legacy single range, then `ranges`, each
        // validated under its own key so errors name the right field.
        let list = |sets: &[Vec<RangeConf>], field: &str| -> Result<Vec<RangeSet>, IpamError> {
            if sets.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<Vec<RangeSpec>> = sets
                .iter()
                .map(|s| s.iter().map(to_spec).collect())
                .collect();
            let sets = validate_sets(&raw, field)?;
            warn_foreign_gateways(req, &sets, field, false);
            Ok(sets)
        };
        let mut sets = list(&req.runtime_config.ip_ranges, "runtimeConfig.ipRanges")?;
        if let Some(subnet) = &c.subnet {
            let legacy = RangeSpec {
                subnet: subnet.clone(),
                range_start: c.range_start.clone(),
                range_end: c.range_end.clone(),
                gateway: c.gateway.clone(),
            };
            let r = legacy.validate(&FieldLabels::at("ipam"))?;
            let set = RangeSet::new(vec![r])?;
            warn_foreign_gateways(req, std::slice::from_ref(&set), "ipam", true);
            sets.push(set);
        }
        sets.extend(list(&c.ranges, "ipam.ranges")?);
        if sets.is_empty() {
            return Err(IpamError::Config(
                "ipam: no address ranges (set \"ranges\", or the legacy \"subnet\")".to_owned(),
            ));
        }
        check_sets(&sets, "ipam.ranges")?;

        let mut requested = Vec::new();
        ours(req.cni_args, req.callers_args).check_known(&["IP"])?;
        if let Some(ips) = req.cni_args.get("IP") {
            for s in ips.split(',').filter(|s| !s.is_empty()) {
                requested.push(parse_requested(s, "CNI_ARGS IP")?);
            }
        }
        if let Some(v) = req.args_ips {
            let list: Vec<String> = parse_value(v, "args.cni.ips")?;
            for s in &list {
                requested.push(parse_requested(s, "args.cni.ips")?);
            }
        }
        for s in &req.runtime_config.ips {
            requested.push(parse_requested(s, "runtimeConfig.ips")?);
        }
        requested.dedup();

        let dns = match &c.resolv_conf {
            Some(p) if !p.is_empty() => read_resolv_conf(p)?,
            _ => Dns::default(),
        };
        Ok(IpamConfig {
            dialect: Dialect::HostLocal,
            sets,
            requested,
            routes: c.routes.into_iter().map(RouteConf::into_route).collect(),
            dns,
            store: StoreAt::Dir {
                data_dir: PathBuf::from(
                    c.data_dir
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| ipam_store::DEFAULT_DATA_DIR.to_owned()),
                ),
                network: req.network.to_owned(),
            },
            network: req.network.to_owned(),
            owner_id: req.container_id.to_owned(),
            lock_timeout: lock_timeout(c.lock_timeout_ms, req.db_timeout)?,
        })
    }

    fn load_ecs(req: &Request, c: Ecs) -> Result<IpamConfig, IpamError> {
        let mut sets = Vec::new();
        let mut requested = Vec::new();
        for (fam, subnet, address, gateway) in [
            ("ipv4", &c.ipv4_subnet, &c.ipv4_address, &c.ipv4_gateway),
            ("ipv6", &c.ipv6_subnet, &c.ipv6_address, &c.ipv6_gateway),
        ] {
            let Some(subnet) = subnet.as_ref().filter(|s| !s.is_empty()) else {
                if address.is_some() {
                    return Err(IpamError::Config(format!(
                        "ipam.{fam}-address is set but ipam.{fam}-subnet is not"
                    )));
                }
                continue;
            };
            let labels = FieldLabels {
                subnet: format!("ipam.{fam}-subnet"),
                range_start: format!("ipam.{fam}-subnet"),
                range_end: format!("ipam.{fam}-subnet"),
                gateway: format!("ipam.{fam}-gateway"),
            };
            let range = RangeSpec {
                subnet: subnet.clone(),
                range_start: None,
                range_end: None,
                gateway: gateway.clone().filter(|g| !g.is_empty()),
            }
            .validate(&labels)?;
            // ecs-ipam refuses a gateway outside the subnet (host-local does not)
            if !range.gateway_in_subnet() {
                return Err(IpamError::Store(ipam_store::Error::InvalidRange {
                    field: labels.gateway.clone(),
                    value: range.gateway().to_string(),
                    reason: format!("is outside subnet {}", range.subnet()),
                }));
            }
            let want_v4 = fam == "ipv4";
            if range.is_ipv4() != want_v4 {
                return Err(IpamError::Config(format!(
                    "ipam.{fam}-subnet \"{subnet}\" is not an {fam} subnet"
                )));
            }
            sets.push(RangeSet::new(vec![range])?);
            if let Some(a) = address.as_ref().filter(|a| !a.is_empty()) {
                requested.push(parse_requested(a, &format!("ipam.{fam}-address"))?);
            }
        }
        if sets.is_empty() {
            return Err(IpamError::Config(
                "ipam: at least one of \"ipv4-subnet\" and \"ipv6-subnet\" is required".to_owned(),
            ));
        }
        // Amazon's LoadDBConfig: a blank IPAM_DB_PATH means the default. Nothing is read from
        // the file system here; the store decides what the path holds.
        let store = match req.db_path.filter(|p| !p.trim().is_empty()) {
            Some(p) => StoreAt::Bolt {
                legacy_dirs: vec![PathBuf::from(format!("{p}.d"))],
                path: PathBuf::from(p),
            },
            None => StoreAt::Bolt {
                path: PathBuf::from(ipam_store::ecs::DEFAULT_DB_PATH),
                legacy_dirs: vec![PathBuf::from(ipam_store::DEFAULT_DATA_DIR)],
            },
        };
        let network = match &store {
            StoreAt::Bolt { path, .. } => path.display().to_string(),
            StoreAt::Dir { network, .. } => network.clone(),
        };
        let routes = c
            .ipv4_routes
            .into_iter()
            .chain(c.ipv6_routes)
            .map(RouteConf::into_route)
            .collect();
        Ok(IpamConfig {
            dialect: Dialect::Ecs,
            sets,
            requested,
            routes,
            dns: Dns::default(),
            store,
            network,
            owner_id: c
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| req.container_id.to_owned()),
            lock_timeout: lock_timeout(c.lock_timeout_ms, req.db_timeout)?,
        })
    }
}

/// The CNI_ARGS that are IPAM's to judge: without the keys the calling plugin reads itself
/// (host-local refuses keys it does not know unless `IgnoreUnknown` is given; the bridge's
/// `MAC` is not unknown to the bridge).
fn ours(args: &CniArgs, callers: &[&str]) -> CniArgs {
    CniArgs {
        pairs: args
            .pairs
            .iter()
            .filter(|(k, _)| !callers.contains(&k.as_str()))
            .cloned()
            .collect(),
        ignore_unknown: args.ignore_unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::{NetConf, RuntimeConfig};
    use serde_json::json;

    fn conf(ipam: Value) -> NetConf {
        NetConf::from_value(json!({
            "cniVersion": "0.3.0", "name": "network-name", "type": "ecs-bridge", "ipam": ipam}))
        .unwrap()
    }

    fn ecs_conf() -> NetConf {
        conf(json!({"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f",
                    "ipv4-subnet": "169.254.172.0/22"}))
    }

    /// A request for `conf` with no environment, CNI_ARGS or runtimeConfig.
    fn req<'a>(conf: &'a NetConf, args: &'a CniArgs) -> Request<'a> {
        static NO_RUNTIME: std::sync::OnceLock<RuntimeConfig> = std::sync::OnceLock::new();
        let rc = NO_RUNTIME.get_or_init(RuntimeConfig::default);
        crate::tests::request(conf, "c", "ecs-eth0", args, rc)
    }

    #[test]
    fn the_ecs_store_is_the_file_at_ipam_db_path_or_amazons_default() {
        let conf = ecs_conf();
        let args = CniArgs::default();
        let c = IpamConfig::load(&Request {
            db_path: Some("/var/lib/ecs/data/eni-ipam.db"),
            ..req(&conf, &args)
        })
        .unwrap();
        assert_eq!(
            c.store,
            StoreAt::Bolt {
                path: "/var/lib/ecs/data/eni-ipam.db".into(),
                legacy_dirs: vec!["/var/lib/ecs/data/eni-ipam.db.d".into()],
            }
        );
        for unset in [None, Some("  ")] {
            let c = IpamConfig::load(&Request {
                db_path: unset,
                ..req(&conf, &args)
            })
            .unwrap();
            assert_eq!(
                c.store,
                StoreAt::Bolt {
                    path: "/data/eni-ipam.db".into(),
                    legacy_dirs: vec!["/var/lib/cni/networks".into()],
                }
            );
            assert_eq!(c.lock_timeout, Duration::from_secs(5));
        }
    }

    /// `IPAM_DB_CONNECTION_TIMEOUT` is read with Go's `time.ParseDuration` (`1m30s` was once
    /// refused); `lockTimeoutMs` wins over it.
    #[test]
    fn the_connection_timeout_is_a_go_duration() {
        let conf = ecs_conf();
        let args = CniArgs::default();
        for (value, want) in [
            ("1m30s", Duration::from_secs(90)),
            ("400ms", Duration::from_millis(400)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("", ipam_store::DEFAULT_LOCK_TIMEOUT),
        ] {
            let c = IpamConfig::load(&Request {
                db_timeout: Some(value),
                ..req(&conf, &args)
            })
            .unwrap();
            assert_eq!(c.lock_timeout, want, "{value}");
        }
        for bad in ["5", "-5s", "soon", "99999999999999999999s"] {
            let e = IpamConfig::load(&Request {
                db_timeout: Some(bad),
                ..req(&conf, &args)
            })
            .unwrap_err();
            assert_eq!(e.code(), 7, "{bad}: {e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "invalid network config: IPAM_DB_CONNECTION_TIMEOUT \"{bad}\""
                )),
                "{e}"
            );
        }
        let ms = conf_ms();
        let c = IpamConfig::load(&Request {
            db_timeout: Some("1m"),
            ..req(&ms, &args)
        })
        .unwrap();
        assert_eq!(c.lock_timeout, Duration::from_millis(250));
    }

    fn conf_ms() -> NetConf {
        conf(json!({"type": "ecs-ipam", "ipv4-subnet": "169.254.172.0/22", "lockTimeoutMs": 250}))
    }

    /// host-local's CNI_ARGS strictness: an unknown key is code 4 unless `IgnoreUnknown`, or
    /// unless the calling plugin reads it itself (the bridge's `MAC`); the ecs dialect does
    /// not look at CNI_ARGS.
    #[test]
    fn cni_args_unknown_to_host_local() {
        let hl = conf(json!({"type": "host-local", "subnet": "10.1.0.0/24"}));
        let mac = CniArgs::parse("MAC=0a:58:0a:01:00:05;IP=10.1.0.5").unwrap();
        let e = IpamConfig::load(&req(&hl, &mac)).unwrap_err();
        assert_eq!(e.code(), 4, "{e}");
        assert!(e.to_string().contains("MAC"), "{e}");
        let c = IpamConfig::load(&Request {
            callers_args: &["MAC"],
            ..req(&hl, &mac)
        })
        .unwrap();
        assert_eq!(c.requested, vec!["10.1.0.5".parse::<IpAddr>().unwrap()]);
        let lenient = CniArgs::parse("IgnoreUnknown=1;MAC=0a:58:0a:01:00:05").unwrap();
        assert!(IpamConfig::load(&req(&hl, &lenient)).is_ok());
        let other = CniArgs::parse("MAC=0a:58:0a:01:00:05;FOO=1").unwrap();
        let e = IpamConfig::load(&Request {
            callers_args: &["MAC"],
            ..req(&hl, &other)
        })
        .unwrap_err();
        assert_eq!(e.code(), 4);
        assert!(e.to_string().starts_with("invalid CNI_ARGS \"FOO\""), "{e}");
        assert!(IpamConfig::load(&req(&ecs_conf(), &other)).is_ok());
    }

    #[test]
    fn requested_addresses_accept_a_prefix() {
        assert_eq!(
            parse_requested("10.0.0.5/24", "f").unwrap(),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_requested("fd00::5", "f").unwrap(),
            "fd00::5".parse::<IpAddr>().unwrap()
        );
        let e = parse_requested("10.0.0", "args.cni.ips").unwrap_err();
        assert!(e.to_string().contains("args.cni.ips"), "{e}");
    }
}
