//! The two config dialects (ecs-eni's and vpc-eni's), read with Go's `encoding/json` rules
//! (`cni_spec::gojson`: case-insensitive keys, the last member wins, `null` is absent),
//! validated completely before anything on the host is touched.

use std::net::IpAddr;
use std::time::Duration;

use cni_spec::gocompat::parse_duration as parse_go_duration;
use cni_spec::gojson::GoObject;
use ipconf::{Field, IfaceConfig};
use ipnetwork::IpNetwork;
use netns::{IfName, MAX_MTU, MIN_MTU, Mac, MacProblem};
use serde_json::{Map, Value};

use crate::error::EniError;

/// How long ADD waits for a late ENI when neither the config nor the environment says.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// The longest wait accepted.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// The environment variable that sets the wait for every network on a host.
pub const WAIT_ENV: &str = "ENI_WAIT_TIMEOUT";

/// Which plugin's keys a config uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// amazon-ecs-cni-plugins' `ecs-eni`: `eni`, `mac`, `ip-addresses`, ...
    Ecs,
    /// amazon-vpc-cni-plugins' `vpc-eni`: `eniName`, `eniMACAddress`, `eniIPAddresses`, ...
    Vpc,
}

/// The key names of a dialect (canonical spelling), for lookups and messages.
struct Keys {
    /// The key that identifies the ENI: ecs-eni's `eni` (its id, informational), vpc-eni's
    /// `eniName` (its name in the host namespace).
    ident: &'static str,
    mac: &'static str,
    addresses: &'static str,
    gateways: &'static str,
    block: &'static str,
    stay_down: &'static str,
}

const ECS_KEYS: Keys = Keys {
    ident: "eni",
    mac: "mac",
    addresses: "ip-addresses",
    gateways: "gateway-ip-addresses",
    block: "block-instance-metadata",
    stay_down: "stay-down",
};

const VPC_KEYS: Keys = Keys {
    ident: "eniName",
    mac: "eniMACAddress",
    addresses: "eniIPAddresses",
    gateways: "gatewayIPAddresses",
    block: "blockInstanceMetadata",
    stay_down: "opStateDown",
};

impl Keys {
    /// The dialect's own keys (the other dialect has none of them), in the order messages
    /// name them.
    const fn own(&self) -> [&'static str; 6] {
        [
            self.ident,
            self.mac,
            self.addresses,
            self.gateways,
            self.block,
            self.stay_down,
        ]
    }
}

/// Keys our own plugin adds to both dialects.
const MTU_KEY: &str = "mtu";
const WAIT_KEY: &str = "eniWaitTimeout";

impl Dialect {
    fn keys(self) -> &'static Keys {
        match self {
            Dialect::Ecs => &ECS_KEYS,
            Dialect::Vpc => &VPC_KEYS,
        }
    }

    /// The dialect a plugin type or program name stands for.
    fn of_name(name: &str) -> Option<Dialect> {
        match name {
            "ecs-eni" => Some(Dialect::Ecs),
            "vpc-eni" => Some(Dialect::Vpc),
            _ => None,
        }
    }
}

/// Every key this plugin reads: both dialects' own and ours (canonical spelling).
const FIELDS: [&str; 14] = {
    let [a, b, c, d, e, f] = ECS_KEYS.own();
    let [g, h, i, j, k, l] = VPC_KEYS.own();
    [a, b, c, d, e, f, g, h, i, j, k, l, MTU_KEY, WAIT_KEY]
};

/// The config's keys read with Go's `encoding/json` rules (`cni_spec::gojson`): matched
/// case-insensitively, the last member of a key wins, `null` counts as absent.
struct Lookup<'a> {
    object: GoObject<'a, 'static>,
}

fn bad(key: &str, reason: impl Into<String>) -> EniError {
    EniError::Config {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Lookup<'a> {
    fn new(raw: &'a Map<String, Value>) -> Lookup<'a> {
        Lookup {
            object: GoObject::new(raw, &FIELDS),
        }
    }

    /// The key as written and its value; absent when missing or `null`.
    fn get(&self, key: &str) -> Option<(&'a str, &'a Value)> {
        self.object.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<(&'a str, String)>, EniError> {
        match self.get(key) {
            None => Ok(None),
            Some((k, Value::String(s))) => Ok(Some((k, s.clone()))),
            Some((k, v)) => Err(bad(k, format!("expected a string, got {}", json_kind(v)))),
        }
    }

    /// [`Lookup::string`], with `""` counting as absent.
    fn nonempty_string(&self, key: &str) -> Result<Option<(&'a str, String)>, EniError> {
        Ok(self.string(key)?.filter(|(_, s)| !s.is_empty()))
    }

    /// The key as written (the canonical spelling when absent), for messages.
    fn written(&self, key: &str) -> String {
        self.object.key_as_written(key).to_string()
    }

    fn bool(&self, key: &str) -> Result<bool, EniError> {
        match self.get(key) {
            None => Ok(false),
            Some((_, Value::Bool(b))) => Ok(*b),
            Some((k, v)) => Err(bad(k, format!("expected a boolean, got {}", json_kind(v)))),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<(&'a str, Vec<String>)>, EniError> {
        match self.get(key) {
            None => Ok(None),
            Some((k, Value::Array(items))) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        v => {
                            return Err(bad(
                                &format!("{k}[{i}]"),
                                format!("expected a string, got {}", json_kind(v)),
                            ));
                        }
                    }
                }
                Ok(Some((k, out)))
            }
            Some((k, v)) => Err(bad(
                k,
                format!("expected an array of strings, got {}", json_kind(v)),
            )),
        }
    }
}

/// The config of one ADD/CHECK/DEL, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct EniConf {
    /// Which keys it was written with.
    pub dialect: Dialect,
    /// ecs-eni's `eni` (the ENI id): informational.
    pub eni_id: Option<String>,
    /// The ENI's MAC.
    pub mac: Option<Mac>,
    /// vpc-eni's `eniName`: the ENI's name in the host namespace (looked up first).
    pub name: Option<String>,
    /// Addresses, gateways, MTU and IMDS blocking for the interface.
    pub iface: IfaceConfig,
    /// `stay-down` / `opStateDown`: only move the ENI, configure nothing.
    pub stay_down: bool,
    /// How long ADD waits for the ENI to appear.
    pub wait: Duration,
    /// The MAC key as written, for messages.
    pub mac_key: String,
}

/// Selects the dialect: `type` first, then the program name (an `ecs-eni`/`vpc-eni` symlink),
/// then the keys present. Returns the dialect and whether it was chosen by name (then the Go
/// plugin's required keys apply).
fn select_dialect(
    look: &Lookup<'_>,
    plugin_type: &str,
    program: &str,
) -> Result<(Dialect, bool), EniError> {
    if let Some(d) = Dialect::of_name(plugin_type).or_else(|| Dialect::of_name(program)) {
        return Ok((d, true));
    }
    // the keys present, as written
    let present = |keys: &Keys| -> Vec<&str> {
        keys.own()
            .iter()
            .filter_map(|k| look.get(k).map(|(k, _)| k))
            .collect()
    };
    let (ecs, vpc) = (present(&ECS_KEYS), present(&VPC_KEYS));
    match (ecs.is_empty(), vpc.is_empty()) {
        (false, true) => Ok((Dialect::Ecs, false)),
        (true, false) => Ok((Dialect::Vpc, false)),
        (false, false) => Err(bad(
            vpc[0],
            format!(
                "the config mixes ecs-eni keys ({}) and vpc-eni keys ({}); use one dialect",
                ecs.join(", "),
                vpc.join(", ")
            ),
        )),
        (true, true) => Err(bad(
            "mac",
            "no ENI given: set \"mac\" and \"ip-addresses\" (ecs-eni keys) or \"eniMACAddress\"/\"eniName\" and \"eniIPAddresses\" (vpc-eni keys)",
        )),
    }
}

/// Parses a Go duration (`"5s"`, `"250ms"`, `"1m30s"`, `"0"`; [`parse_go_duration`]) or a
/// plain number of seconds (`"3"`, `"1.5"`), surrounding blanks ignored; never negative.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Duration::try_from_secs_f64(v).ok(),
        Ok(_) => None,
        Err(_) => parse_go_duration(s).ok(),
    }
}

fn wait_from(key: &str, v: &Value) -> Result<Duration, EniError> {
    let d = match v {
        Value::Number(n) => n.as_f64().and_then(|s| {
            if s >= 0.0 {
                Duration::try_from_secs_f64(s).ok()
            } else {
                None
            }
        }),
        Value::String(s) => parse_duration(s),
        other => {
            return Err(bad(
                key,
                format!(
                    "expected a duration such as \"5s\" or \"250ms\" or a number of seconds, got {}",
                    json_kind(other)
                ),
            ));
        }
    };
    match d {
        Some(d) if d <= MAX_WAIT => Ok(d),
        _ => Err(bad(
            key,
            format!(
                "{v} is not a duration within 0s..={}s (e.g. \"5s\", \"250ms\")",
                MAX_WAIT.as_secs()
            ),
        )),
    }
}

/// A MAC in colon or dash form; must be a unicast, non-zero address ([`Mac::parse_unicast`]).
pub fn parse_unicast_mac(key: &str, s: &str) -> Result<Mac, EniError> {
    Mac::parse_unicast(s).map_err(|e| {
        bad(
            key,
            match e.problem {
                MacProblem::Malformed => {
                    format!("malformed MAC address {s:?} (expected 0a:1b:2c:3d:4e:5f)")
                }
                MacProblem::Zero | MacProblem::Multicast => {
                    format!("{s:?} is not a unicast MAC address")
                }
            },
        )
    })
}

/// A host interface name as the kernel accepts it ([`IfName`]).
fn check_ifname(key: &str, s: &str) -> Result<(), EniError> {
    match IfName::problem(s) {
        None => Ok(()),
        Some(problem) => Err(bad(
            key,
            format!("{s:?} is not a valid interface name: it {problem}"),
        )),
    }
}

/// vpc-eni's `eniName`: the ENI's name in the host namespace, when set and not `""`.
fn parse_host_name(look: &Lookup<'_>, key: &str) -> Result<Option<String>, EniError> {
    match look.nonempty_string(key)? {
        Some((k, s)) => {
            check_ifname(k, &s)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

fn parse_addresses(key: &str, items: &[String]) -> Result<Vec<IpNetwork>, EniError> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let k = format!("{key}[{i}]");
            if !s.contains('/') {
                return Err(bad(
                    &k,
                    format!("{s:?} has no prefix length (expected an address with its subnet prefix, e.g. 10.0.1.17/24)"),
                ));
            }
            s.parse::<IpNetwork>()
                .map_err(|e| bad(&k, format!("{s:?} is not an address with prefix: {e}")))
        })
        .collect()
}

fn parse_gateways(key: &str, items: &[String]) -> Result<Vec<IpAddr>, EniError> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpAddr>().map_err(|_| {
                bad(
                    &format!("{key}[{i}]"),
                    format!("{s:?} is not an IP address (a gateway has no prefix length)"),
                )
            })
        })
        .collect()
}

fn parse_mtu(look: &Lookup<'_>) -> Result<Option<u32>, EniError> {
    let Some((k, v)) = look.get(MTU_KEY) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| bad(k, format!("{n} is not an integer")))?,
        other => {
            return Err(bad(
                k,
                format!("expected a number, got {}", json_kind(other)),
            ));
        }
    };
    if n == 0 {
        return Ok(None);
    }
    match u32::try_from(n) {
        Ok(m) if (MIN_MTU..=MAX_MTU).contains(&m) => Ok(Some(m)),
        _ => Err(bad(
            k,
            format!("{n} is out of range (0 leaves the MTU unchanged; else {MIN_MTU}..={MAX_MTU})"),
        )),
    }
}

/// How long ADD waits: `eniWaitTimeout`, else `$ENI_WAIT_TIMEOUT`, else [`DEFAULT_WAIT`].
fn parse_wait(look: &Lookup<'_>, env_wait: Option<&str>) -> Result<Duration, EniError> {
    match look.get(WAIT_KEY) {
        Some((k, v)) => wait_from(k, v),
        None => match env_wait.filter(|s| !s.is_empty()) {
            Some(s) => wait_from(WAIT_ENV, &Value::String(s.to_string())),
            None => Ok(DEFAULT_WAIT),
        },
    }
}

impl EniConf {
    /// Parses and validates the whole config. `env_wait` is `$ENI_WAIT_TIMEOUT`, if set.
    pub fn parse(
        raw: &Map<String, Value>,
        plugin_type: &str,
        program: &str,
        env_wait: Option<&str>,
    ) -> Result<EniConf, EniError> {
        let look = Lookup::new(raw);
        let (dialect, by_name) = select_dialect(&look, plugin_type, program)?;
        let keys = dialect.keys();

        let eni_id = match dialect {
            Dialect::Ecs => look.nonempty_string(keys.ident)?.map(|(_, s)| s),
            Dialect::Vpc => None,
        };
        let mac = match look.nonempty_string(keys.mac)? {
            Some((k, s)) => Some(parse_unicast_mac(k, &s)?),
            None => None,
        };
        let name = match dialect {
            Dialect::Vpc => parse_host_name(&look, keys.ident)?,
            Dialect::Ecs => None,
        };
        let stay_down = look.bool(keys.stay_down)?;
        let block_imds = look.bool(keys.block)?;
        let addresses = match look.strings(keys.addresses)? {
            Some((k, items)) => parse_addresses(k, &items)?,
            None => Vec::new(),
        };
        let gateways = match look.strings(keys.gateways)? {
            Some((k, items)) => parse_gateways(k, &items)?,
            None => Vec::new(),
        };
        let mtu = parse_mtu(&look)?;
        let wait = parse_wait(&look, env_wait)?;

        let conf = EniConf {
            dialect,
            eni_id,
            mac,
            name,
            iface: IfaceConfig {
                addresses,
                gateways,
                default_routes: true,
                routes: Vec::new(),
                mtu,
                block_imds,
            },
            stay_down,
            wait,
            mac_key: look.written(keys.mac),
        };
        conf.require_keys(&look, by_name)?;
        conf.validate(&look)?;
        Ok(conf)
    }

    /// The keys the dialect needs: an ENI to look for, addresses unless only moving it (and
    /// always when chosen by name, as the Go plugins require), ecs-eni's ENI id when chosen by
    /// name.
    fn require_keys(&self, look: &Lookup<'_>, by_name: bool) -> Result<(), EniError> {
        let keys = self.dialect.keys();
        if self.dialect == Dialect::Ecs && by_name && self.eni_id.is_none() {
            return Err(bad(
                &look.written(keys.ident),
                "missing required parameter (the ENI id)",
            ));
        }
        if self.mac.is_none() && self.name.is_none() {
            let what = match self.dialect {
                Dialect::Vpc => format!("missing: give {} or {}", keys.mac, keys.ident),
                Dialect::Ecs => "missing required parameter (the ENI's MAC address)".to_string(),
            };
            return Err(bad(&self.mac_key, what));
        }
        if self.iface.addresses.is_empty() && (by_name || !self.stay_down) {
            return Err(bad(
                &look.written(keys.addresses),
                "missing: at least one address with its prefix is required",
            ));
        }
        Ok(())
    }

    /// The interface config as a whole ([`IfaceConfig::validate`]), naming the key as written.
    fn validate(&self, look: &Lookup<'_>) -> Result<(), EniError> {
        let keys = self.dialect.keys();
        self.iface.validate().map_err(|e| {
            let key = match e.field {
                Field::Addresses => look.written(keys.addresses),
                Field::Gateways => look.written(keys.gateways),
                Field::Mtu => look.written(MTU_KEY),
                Field::Routes => "routes".to_string(),
            };
            bad(&key, format!("{:?}: {}", e.value, e.reason))
        })
    }

    /// What DEL can use from a config that may be incomplete or wrong: the MAC and host name
    /// when they parse. DEL never fails because of its config (it must be able to clean up).
    pub fn parse_lenient(raw: &Map<String, Value>) -> (Option<Mac>, Option<String>) {
        let look = Lookup::new(raw);
        let mac = [ECS_KEYS.mac, VPC_KEYS.mac].iter().find_map(|k| {
            let (k, s) = look.string(k).ok().flatten()?;
            parse_unicast_mac(k, &s).ok()
        });
        let name = parse_host_name(&look, VPC_KEYS.ident).ok().flatten();
        (mac, name)
    }

    /// How the ENI is named in messages: `MAC 0a:1b:2c:3d:4e:5f`, `name eth1`, or both.
    pub fn describe(&self) -> String {
        match (&self.name, &self.mac) {
            (Some(n), Some(m)) => format!("name {n} / MAC {m}"),
            (Some(n), None) => format!("name {n}"),
            (None, Some(m)) => format!("MAC {m}"),
            (None, None) => "(unspecified)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::PluginError;
    use serde_json::json;

    fn parse(v: Value) -> Result<EniConf, EniError> {
        parse_as(v, "eni")
    }

    fn parse_as(v: Value, program: &str) -> Result<EniConf, EniError> {
        let Value::Object(m) = v else { panic!() };
        let t = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        EniConf::parse(&m, &t, program, None)
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn ecs_agent_vpc_eni_config_as_sent() {
        let c = parse_as(
            json!({"type":"vpc-eni","cniVersion":"0.3.0","name":"network-name","dns":{},"eniName":"",
             "eniMACAddress":"0a:1b:2c:3d:4e:5f","eniIPAddresses":["10.0.1.17/24"],
             "gatewayIPAddresses":["10.0.1.1"],"useExistingNetwork":false,"blockInstanceMetadata":true}),
            "vpc-eni",
        )
        .unwrap();
        assert_eq!(c.dialect, Dialect::Vpc);
        assert_eq!(c.mac, Some(Mac::new([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])));
        assert_eq!(c.name, None);
        assert_eq!(c.iface.addresses, vec!["10.0.1.17/24".parse().unwrap()]);
        assert_eq!(
            c.iface.gateways,
            vec!["10.0.1.1".parse::<IpAddr>().unwrap()]
        );
        assert!(c.iface.block_imds && c.iface.default_routes && !c.stay_down);
        assert_eq!(c.iface.mtu, None);
        assert_eq!(c.wait, DEFAULT_WAIT);
    }

    #[test]
    fn ecs_eni_netlib_config_as_sent() {
        let c = parse_as(
            json!({"type":"ecs-eni","cniVersion":"0.3.0","name":"network-name",
             "eni":"eni-0123456789abcdef0","mac":"0A:1B:2C:3D:4E:5F",
             "ip-addresses":["10.0.1.17/24","2600:1f13:4d9:e602::1234/64"],
             "gateway-ip-addresses":["10.0.1.1"],"block-instance-metadata":true,
             "stay-down":false,"mtu":9001}),
            "ecs-eni",
        )
        .unwrap();
        assert_eq!(c.dialect, Dialect::Ecs);
        assert_eq!(c.eni_id.as_deref(), Some("eni-0123456789abcdef0"));
        assert_eq!(c.iface.mtu, Some(9001));
        assert_eq!(c.iface.addresses.len(), 2);
        assert_eq!(c.mac_key, "mac");
    }

    #[test]
    fn keys_match_case_insensitively_and_the_later_wins() {
        let c = parse(json!({"type":"eni","ENIMacAddress":"0a:1b:2c:3d:4e:5f",
            "ENIIPADDRESSES":["10.0.1.17/24"],"OpStateDown":true,"MTU":1500,
            "blockinstancemetadata":true}))
        .unwrap();
        assert_eq!(c.dialect, Dialect::Vpc);
        assert!(c.stay_down && c.iface.block_imds);
        assert_eq!(c.iface.mtu, Some(1500));
        assert_eq!(c.mac_key, "ENIMacAddress");
        let c = parse(
            json!({"mac":"0a:1b:2c:3d:4e:5f","ip-addresses":["10.0.1.17/24"],
            "mtu": 1500, "Mtu": 9001}),
        )
        .unwrap();
        assert_eq!(c.iface.mtu, Some(9001));
    }

    #[test]
    fn dialect_by_type_program_or_content() {
        let vpc_only = json!({"type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:5f","eniIPAddresses":["10.0.1.17/24"]});
        assert_eq!(parse(vpc_only.clone()).unwrap().dialect, Dialect::Vpc);
        // installed as ecs-eni: only ecs keys count, so the vpc keys are unknown
        let e = parse_as(vpc_only, "ecs-eni").unwrap_err().to_string();
        assert!(e.contains("key \"eni\""), "{e}");
        let e = err(json!({"mac":"0a:1b:2c:3d:4e:5f","eniIPAddresses":["10.0.1.17/24"]}));
        assert!(
            e.contains("mixes ecs-eni keys (mac) and vpc-eni keys (eniIPAddresses)"),
            "{e}"
        );
        let e = err(json!({"type":"eni"}));
        assert!(e.contains("no ENI given"), "{e}");
    }

    #[test]
    fn bad_input_names_the_key() {
        let base =
            || json!({"type":"eni","mac":"0a:1b:2c:3d:4e:5f","ip-addresses":["10.0.1.17/24"]});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            err(b)
        };
        let cases = [
            (
                with("mac", json!("0a:1b:2c:3d:4e")),
                "key \"mac\": malformed MAC address \"0a:1b:2c:3d:4e\"",
            ),
            (
                with("mac", json!("01:00:5e:00:00:01")),
                "key \"mac\": \"01:00:5e:00:00:01\" is not a unicast",
            ),
            (
                with("ip-addresses", json!(["10.0.1.17"])),
                "key \"ip-addresses[0]\": \"10.0.1.17\" has no prefix length",
            ),
            (
                with("ip-addresses", json!(["10.0.1.17/24", "bogus/3"])),
                "key \"ip-addresses[1]\"",
            ),
            (
                with("ip-addresses", json!("10.0.1.17/24")),
                "key \"ip-addresses\": expected an array of strings, got a string",
            ),
            (
                with("ip-addresses", json!([])),
                "key \"ip-addresses\": missing",
            ),
            (
                with("gateway-ip-addresses", json!(["2001:db8::1"])),
                "key \"gateway-ip-addresses\": \"2001:db8::1\": no IPv6 address is configured",
            ),
            (
                with("gateway-ip-addresses", json!(["10.0.1.1/24"])),
                "key \"gateway-ip-addresses[0]\": \"10.0.1.1/24\" is not an IP address",
            ),
            (
                with("mtu", json!(65536)),
                "key \"mtu\": 65536 is out of range",
            ),
            (with("mtu", json!(67)), "key \"mtu\": 67 is out of range"),
            (with("mtu", json!(-1)), "key \"mtu\": -1 is out of range"),
            (
                with("mtu", json!("9001")),
                "key \"mtu\": expected a number, got a string",
            ),
            (
                with("mtu", json!(1500.5)),
                "key \"mtu\": 1500.5 is not an integer",
            ),
            (
                with("stay-down", json!("false")),
                "key \"stay-down\": expected a boolean, got a string",
            ),
            (
                with("eniWaitTimeout", json!("soon")),
                "key \"eniWaitTimeout\": \"soon\" is not a duration",
            ),
            (
                with("eniWaitTimeout", json!(-1)),
                "key \"eniWaitTimeout\": -1 is not a duration",
            ),
        ];
        for (got, want) in cases {
            assert!(
                got.starts_with(&format!("invalid network config: {want}")),
                "{got}\nwant: {want}"
            );
        }
        let e = parse(json!({"type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:5f","eniIPAddresses":["2001:db8::5/64"],"mtu":1000})).unwrap_err();
        assert_eq!(e.code(), 7);
        let e = err(json!({"type":"eni","eniName":"a/b","eniIPAddresses":["10.0.1.17/24"]}));
        assert!(e.contains("key \"eniName\""), "{e}");
        let e = err(
            json!({"type":"eni","eniName":"eth1","eniIPAddresses":["10.0.1.17/24"], "mtu": 1000, "gatewayIPAddresses":["10.0.1.1","10.0.1.2"]}),
        );
        assert!(
            e.contains("key \"gatewayIPAddresses\": \"10.0.1.2\": a second IPv4 gateway"),
            "{e}"
        );
    }

    #[test]
    fn required_keys_follow_the_go_plugins_when_named_so() {
        // ecs-eni requires "eni"; our own type does not
        let c = json!({"mac":"0a:1b:2c:3d:4e:5f","ip-addresses":["10.0.1.17/24"]});
        assert!(parse(c.clone()).is_ok());
        let e = parse_as(c, "ecs-eni").unwrap_err().to_string();
        assert!(e.contains("key \"eni\": missing required parameter"), "{e}");
        // stay-down without addresses: fine for ours, not for the Go dialects
        let c = json!({"type":"eni","eniName":"eth1","opStateDown":true});
        assert!(parse(c.clone()).unwrap().stay_down);
        let mut named = c;
        named["type"] = json!("vpc-eni");
        assert!(
            parse(named)
                .unwrap_err()
                .to_string()
                .contains("eniIPAddresses")
        );
        let e = err(json!({"type":"eni","eniIPAddresses":["10.0.1.17/24"],"eniName":""}));
        assert!(e.contains("give eniMACAddress or eniName"), "{e}");
    }

    #[test]
    fn wait_bound_from_config_env_or_default() {
        let raw = json!({"mac":"0a:1b:2c:3d:4e:5f","ip-addresses":["10.0.1.17/24"]});
        let Value::Object(m) = raw else { panic!() };
        assert_eq!(
            EniConf::parse(&m, "eni", "eni", Some("250ms"))
                .unwrap()
                .wait,
            Duration::from_millis(250)
        );
        assert_eq!(
            EniConf::parse(&m, "eni", "eni", None).unwrap().wait,
            DEFAULT_WAIT
        );
        let e = EniConf::parse(&m, "eni", "eni", Some("forever"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key \"ENI_WAIT_TIMEOUT\""), "{e}");
        let mut m2 = m.clone();
        m2.insert("ENIWAITTIMEOUT".into(), json!(1.5));
        assert_eq!(
            EniConf::parse(&m2, "eni", "eni", Some("9s")).unwrap().wait,
            Duration::from_millis(1500)
        );
        for (s, d) in [
            ("5s", 5000),
            ("250ms", 250),
            ("1.5s", 1500),
            ("2m", 120_000),
            ("0", 0),
            ("3", 3000),
            ("1.5", 1500),
            (" 5s ", 5000),
            // every Go duration (cni_spec::gocompat)
            ("1m30s", 90_000),
            ("1h", 3_600_000),
        ] {
            assert_eq!(parse_duration(s), Some(Duration::from_millis(d)), "{s}");
        }
        for s in ["", "s", "-1s", "-1", "nan", "inf", "5x"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
        // a duration past the bound is refused as before
        let e = EniConf::parse(&m, "eni", "eni", Some("1h"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key \"ENI_WAIT_TIMEOUT\": \"1h\" is not a duration within 0s..=600s"),
            "{e}"
        );
        assert_eq!(
            EniConf::parse(&m, "eni", "eni", Some("1m30s"))
                .unwrap()
                .wait,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn lenient_view_for_del() {
        let Value::Object(m) =
            json!({"eniMACAddress":"0A:1B:2C:3D:4E:5F","eniName":"eth1","mtu":"bad"})
        else {
            panic!()
        };
        assert_eq!(
            EniConf::parse_lenient(&m),
            (
                Some(Mac::new([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])),
                Some("eth1".into())
            )
        );
        let Value::Object(m) = json!({"mac": 5}) else {
            panic!()
        };
        assert_eq!(EniConf::parse_lenient(&m), (None, None));
    }
}
