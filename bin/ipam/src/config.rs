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

use cni_spec::gojson::fold_key;
use cni_spec::{Dns, Error, Invocation, RangeConf, Route, parse_value};
use ipam_store::{FieldLabels, RangeSet, RangeSpec, check_sets, validate_sets};
use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_json::Value;

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
fn parse_requested(s: &str, field: &str) -> Result<IpAddr, Error> {
    let ip = s.split('/').next().unwrap_or_default().trim();
    ip.parse()
        .map_err(|_| Error::invalid_config(format!("{field}: \"{s}\" is not an IP address")))
}

/// Go's duration syntax for `IPAM_DB_CONNECTION_TIMEOUT` (`5s`, `500ms`, `1m`, `1.5s`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    // try_from: a value past Duration's range (e.g. "99999999999999999999s") used to panic
    // (found in review for issue 5; fuzz/regressions/ipam_config/huge-duration)
    Duration::try_from_secs_f64(secs).ok()
}

fn lock_timeout(
    ms: Option<u64>,
    get_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, Error> {
    if let Some(ms) = ms {
        return Ok(Duration::from_millis(ms));
    }
    match get_env("IPAM_DB_CONNECTION_TIMEOUT").filter(|s| !s.is_empty()) {
        None => Ok(ipam_store::DEFAULT_LOCK_TIMEOUT),
        Some(s) => parse_go_duration(&s).ok_or_else(|| {
            Error::invalid_config(format!(
                "IPAM_DB_CONNECTION_TIMEOUT \"{s}\" is not a duration such as 5s or 500ms"
            ))
        }),
    }
}

/// Reads `nameserver`, `domain`, `search` and `options` lines as host-local does.
fn read_resolv_conf(path: &str) -> Result<Dns, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid_config(format!("ipam.resolvConf \"{path}\": {e}")))?;
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

fn store_error(e: ipam_store::Error) -> Error {
    crate::IpamError::Store(e).into()
}

/// host-local accepts a gateway outside its subnet and so do we, with a warning on ADD (the
/// address is reported as the gateway; network+1 is handed out like any other address).
/// `field` names the list (`ipam.ranges`), or the legacy key's parent when `legacy`.
fn warn_foreign_gateways(inv: &Invocation, sets: &[RangeSet], field: &str, legacy: bool) {
    if inv.command() != cni_spec::Command::Add {
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
    /// Reads the invocation's `ipam` object in whichever dialect it is written.
    /// `get_env` reads the invocation's environment (`IPAM_DB_PATH`, `IPAM_DB_CONNECTION_TIMEOUT`).
    pub fn load(
        inv: &Invocation,
        get_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IpamConfig, Error> {
        let ipam = inv.conf.ipam.clone().ok_or_else(|| {
            Error::invalid_config("key \"ipam\" is missing or empty; an IPAM plugin needs it")
        })?;
        let is_ecs = inv.conf.ipam_member("type").and_then(|(_, t)| t.as_str()) == Some("ecs-ipam")
            || inv.program == "ecs-ipam"
            || ipam.iter().any(|(k, v)| {
                let k = fold_key(k);
                !v.is_null() && (k.starts_with("IPV4-") || k.starts_with("IPV6-"))
            });
        let value = Value::Object(ipam);
        if is_ecs {
            Self::load_ecs(inv, parse_value(&value, "ipam")?, get_env)
        } else {
            Self::load_host_local(inv, parse_value(&value, "ipam")?, get_env)
        }
    }

    fn load_host_local(
        inv: &Invocation,
        c: HostLocal,
        get_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IpamConfig, Error> {
        // runtimeConfig.ipRanges first, then the legacy single range, then `ranges`, each
        // validated under its own key so errors name the right field.
        let list = |sets: &[Vec<RangeConf>], field: &str| -> Result<Vec<RangeSet>, Error> {
            if sets.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<Vec<RangeSpec>> = sets
                .iter()
                .map(|s| s.iter().map(to_spec).collect())
                .collect();
            let sets = validate_sets(&raw, field).map_err(store_error)?;
            warn_foreign_gateways(inv, &sets, field, false);
            Ok(sets)
        };
        let mut sets = list(&inv.conf.runtime_config.ip_ranges, "runtimeConfig.ipRanges")?;
        if let Some(subnet) = &c.subnet {
            let legacy = RangeSpec {
                subnet: subnet.clone(),
                range_start: c.range_start.clone(),
                range_end: c.range_end.clone(),
                gateway: c.gateway.clone(),
            };
            let r = legacy
                .validate(&FieldLabels::at("ipam"))
                .map_err(store_error)?;
            let set = RangeSet::new(vec![r]).map_err(store_error)?;
            warn_foreign_gateways(inv, std::slice::from_ref(&set), "ipam", true);
            sets.push(set);
        }
        sets.extend(list(&c.ranges, "ipam.ranges")?);
        if sets.is_empty() {
            return Err(Error::invalid_config(
                "ipam: no address ranges (set \"ranges\", or the legacy \"subnet\")",
            ));
        }
        check_sets(&sets, "ipam.ranges").map_err(store_error)?;

        let mut requested = Vec::new();
        inv.env.args.check_known(&["IP"])?;
        if let Some(ips) = inv.env.args.get("IP") {
            for s in ips.split(',').filter(|s| !s.is_empty()) {
                requested.push(parse_requested(s, "CNI_ARGS IP")?);
            }
        }
        if let Some(v) = inv.conf.args_cni("ips") {
            let list: Vec<String> = parse_value(v, "args.cni.ips")?;
            for s in &list {
                requested.push(parse_requested(s, "args.cni.ips")?);
            }
        }
        for s in &inv.conf.runtime_config.ips {
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
                network: inv.conf.name.clone(),
            },
            network: inv.conf.name.clone(),
            owner_id: inv.env.container_id.clone(),
            lock_timeout: lock_timeout(c.lock_timeout_ms, get_env)?,
        })
    }

    fn load_ecs(
        inv: &Invocation,
        c: Ecs,
        get_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IpamConfig, Error> {
        let mut sets = Vec::new();
        let mut requested = Vec::new();
        for (fam, subnet, address, gateway) in [
            ("ipv4", &c.ipv4_subnet, &c.ipv4_address, &c.ipv4_gateway),
            ("ipv6", &c.ipv6_subnet, &c.ipv6_address, &c.ipv6_gateway),
        ] {
            let Some(subnet) = subnet.as_ref().filter(|s| !s.is_empty()) else {
                if address.is_some() {
                    return Err(Error::invalid_config(format!(
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
            .validate(&labels)
            .map_err(store_error)?;
            // ecs-ipam refuses a gateway outside the subnet (host-local does not)
            if !range.gateway_in_subnet() {
                return Err(store_error(ipam_store::Error::InvalidRange {
                    field: labels.gateway.clone(),
                    value: range.gateway().to_string(),
                    reason: format!("is outside subnet {}", range.subnet()),
                }));
            }
            let want_v4 = fam == "ipv4";
            if range.is_ipv4() != want_v4 {
                return Err(Error::invalid_config(format!(
                    "ipam.{fam}-subnet \"{subnet}\" is not an {fam} subnet"
                )));
            }
            sets.push(RangeSet::new(vec![range]).map_err(store_error)?);
            if let Some(a) = address.as_ref().filter(|a| !a.is_empty()) {
                requested.push(parse_requested(a, &format!("ipam.{fam}-address"))?);
            }
        }
        if sets.is_empty() {
            return Err(Error::invalid_config(
                "ipam: at least one of \"ipv4-subnet\" and \"ipv6-subnet\" is required",
            ));
        }
        // Amazon's LoadDBConfig: a blank IPAM_DB_PATH means the default. Nothing is read from
        // the file system here; the store decides what the path holds.
        let store = match get_env("IPAM_DB_PATH").filter(|p| !p.trim().is_empty()) {
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
                .unwrap_or_else(|| inv.env.container_id.clone()),
            lock_timeout: lock_timeout(c.lock_timeout_ms, get_env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("xs"), None);
        // out of Duration's range, negative, not a number: refused, never a panic
        for bad in [
            "99999999999999999999s",
            "1000000000000000000m",
            "-1s",
            "1e300s",
            "inf s",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    fn ecs_inv() -> Invocation {
        let conf = cni_spec::NetConf::from_value(serde_json::json!({
            "cniVersion": "0.3.0", "name": "network-name", "type": "ecs-bridge",
            "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f",
                     "ipv4-subnet": "169.254.172.0/22"}}))
        .unwrap();
        Invocation {
            env: cni_spec::Env {
                command: cni_spec::Command::Add,
                container_id: "c".into(),
                netns_path: None,
                netns: None,
                ifname: "ecs-eth0".into(),
                args: cni_spec::CniArgs::default(),
                path: Vec::new(),
            },
            vars: cni_spec::Vars::new(),
            version: cni_spec::SpecVersion::LATEST,
            conf,
            stdin: Vec::new(),
            program: "ipam".into(),
        }
    }

    #[test]
    fn the_ecs_store_is_the_file_at_ipam_db_path_or_amazons_default() {
        let inv = ecs_inv();
        let c = IpamConfig::load(&inv, &|k| {
            (k == "IPAM_DB_PATH").then(|| "/var/lib/ecs/data/eni-ipam.db".to_string())
        })
        .unwrap();
        assert_eq!(
            c.store,
            StoreAt::Bolt {
                path: "/var/lib/ecs/data/eni-ipam.db".into(),
                legacy_dirs: vec!["/var/lib/ecs/data/eni-ipam.db.d".into()],
            }
        );
        for unset in [None, Some("  ".to_string())] {
            let c = IpamConfig::load(&inv, &|k| {
                if k == "IPAM_DB_PATH" {
                    unset.clone()
                } else {
                    None
                }
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
