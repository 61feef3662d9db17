//! The config dialect of vpc-branch-eni, plus our `mtu`, and the per-container CNI_ARGS.
//!
//! Keys are read the way Go's `encoding/json` reads them (`cni_spec::gojson`, shared by every
//! plugin): case-insensitively, later keys overriding earlier ones, `null` meaning "not set",
//! unknown keys ignored. Values may be
//! strings where vpc-branch-eni has strings (`"branchVlanID":"102"`, `"uid":"1000"`) and
//! numbers as well.

use std::net::IpAddr;

use cni_spec::gojson::GoObject;
use cni_spec::{CniArgs, Error};
use ipnetwork::IpNetwork;
use netns::{MAX_MTU, MIN_MTU, Mac};
use serde_json::{Map, Value};

/// The MTU of the bridge and the TAP in tap mode when `mtu` is not set (as vpc-branch-eni).
pub const TAP_MTU: u32 = 9001;

/// The config keys this plugin reads (besides the common CNI keys).
pub const KEYS: [&str; 11] = [
    "trunkName",
    "trunkMACAddress",
    "branchVlanID",
    "branchMACAddress",
    "ipAddresses",
    "gatewayIPAddresses",
    "blockInstanceMetadata",
    "interfaceType",
    "uid",
    "gid",
    "mtu",
];

/// The per-container CNI_ARGS keys (case-sensitive, as in vpc-branch-eni). Other keys are
/// always ignored (`IgnoreUnknown` is implied).
pub const ARG_KEYS: [&str; 4] = [
    "BranchVlanID",
    "BranchMACAddress",
    "IPAddresses",
    "GatewayIPAddresses",
];

/// How the branch is presented in the container namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The 802.1Q link itself, named CNI_IFNAME, with the IP configuration.
    Vlan,
    /// A bridge joining the 802.1Q link and a TAP named CNI_IFNAME owned by `uid`/`gid`
    /// (a VM, e.g. Firecracker, owns the branch MAC and the addresses).
    Tap {
        /// Owner of the TAP.
        uid: u32,
        /// Group of the TAP.
        gid: u32,
    },
    /// A passthru macvtap named CNI_IFNAME on the 802.1Q link.
    Macvtap,
}

impl Mode {
    /// The `interfaceType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Vlan => "vlan",
            Mode::Tap { .. } => "tap",
            Mode::Macvtap => "macvtap",
        }
    }
}

/// How the trunk is found in the host namespace: by name if given, else by MAC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrunkRef {
    /// `trunkName`.
    pub name: Option<String>,
    /// `trunkMACAddress`.
    pub mac: Option<Mac>,
}

impl std::fmt::Display for TrunkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.mac) {
            (Some(n), _) => write!(f, "{n}"),
            (None, Some(m)) => write!(f, "with MAC {m}"),
            (None, None) => f.write_str("(none configured)"),
        }
    }
}

/// The validated configuration of one invocation (config keys with CNI_ARGS applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchConf {
    /// Where the trunk is.
    pub trunk: TrunkRef,
    /// 802.1Q VLAN id of the branch, 1..=4094.
    pub vlan_id: u16,
    /// The branch ENI's MAC.
    pub branch_mac: Mac,
    /// Addresses with their subnet prefix.
    pub addresses: Vec<IpNetwork>,
    /// Gateways: one default route per gateway (vlan mode).
    pub gateways: Vec<IpAddr>,
    /// Blackhole routes for the instance metadata service.
    pub block_imds: bool,
    /// vlan, tap or macvtap.
    pub mode: Mode,
    /// MTU of the created links; `None`: the trunk's (vlan link), 9001 (tap and bridge).
    pub mtu: Option<u32>,
}

fn bad(key: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("key \"{key}\": {msg}"))
}

fn arg_error(key: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEnv {
        var: "CNI_ARGS",
        value: format!("{key}={value}"),
        reason: reason.into(),
    }
}

fn as_str<'v>(key: &str, v: &'v Value) -> Result<&'v str, Error> {
    v.as_str()
        .ok_or_else(|| bad(key, format!("expected a string, got {v}")))
}

/// A string holding a decimal number, or a JSON number.
fn as_number(key: &str, v: &Value) -> Result<u64, Error> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| bad(key, format!("{n} is not a non-negative integer"))),
        Value::String(s) => s
            .parse::<u64>()
            .map_err(|_| bad(key, format!("\"{s}\" is not a non-negative integer"))),
        other => Err(bad(
            key,
            format!("expected a number or a string holding one, got {other}"),
        )),
    }
}

fn as_str_list<'v>(key: &str, v: &'v Value) -> Result<Vec<&'v str>, Error> {
    let list = v
        .as_array()
        .ok_or_else(|| bad(key, format!("expected a list of strings, got {v}")))?;
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            e.as_str().ok_or_else(|| {
                bad(
                    &format!("{key}[{i}]"),
                    format!("expected a string, got {e}"),
                )
            })
        })
        .collect()
}

/// A usable VLAN id (1..=4094), or why `id` is not one.
fn vlan_id(id: u64) -> Result<u16, String> {
    u16::try_from(id)
        .ok()
        .filter(|v| (1..=4094).contains(v))
        .ok_or_else(|| format!("{id} is not a usable VLAN id (1..=4094)"))
}

/// A MAC usable as a link address: 6 bytes, unicast, not all zeros ([`Mac::parse_unicast`]);
/// the error says which, e.g. `"01:00:5e:00:00:01" is a multicast MAC address`.
pub fn parse_unicast_mac(s: &str) -> Result<Mac, String> {
    Mac::parse_unicast(s).map_err(|e| e.to_string())
}

/// An address with its subnet prefix; a bare IP is refused (the prefix decides the subnet
/// route).
fn parse_cidr(s: &str) -> Result<IpNetwork, String> {
    if !s.contains('/') {
        return Err(format!(
            "\"{s}\" has no prefix length (expected e.g. 10.0.1.17/24)"
        ));
    }
    s.parse::<IpNetwork>()
        .map_err(|e| format!("\"{s}\" is not an address with prefix length: {e}"))
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("\"{s}\" is not an IP address"))
}

/// Config key `key`: a list of strings, each read by `parse`.
fn key_list<T>(
    key: &str,
    v: &Value,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, Error> {
    as_str_list(key, v)?
        .into_iter()
        .map(|s| parse(s).map_err(|e| bad(key, e)))
        .collect()
}

/// CNI_ARGS key `key`: a comma-separated list `v`, each item read by `parse`.
fn arg_list<T>(key: &str, v: &str, parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, Error> {
    v.split(',')
        .map(|s| parse(s.trim()).map_err(|e| arg_error(key, v, e)))
        .collect()
}

/// Raw values before defaults and cross-field validation.
#[derive(Default)]
struct Raw {
    trunk_name: Option<String>,
    trunk_mac: Option<Mac>,
    vlan_id: Option<u16>,
    branch_mac: Option<Mac>,
    addresses: Vec<IpNetwork>,
    gateways: Vec<IpAddr>,
    block_imds: bool,
    interface_type: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtu: Option<u32>,
}

fn read_keys(raw: &Map<String, Value>) -> Result<Raw, Error> {
    let mut r = Raw::default();
    for (canonical, key, v) in GoObject::new(raw, &KEYS).iter() {
        match canonical {
            "trunkName" => {
                let s = as_str(key, v)?;
                r.trunk_name = (!s.is_empty()).then(|| s.to_owned());
            }
            "trunkMACAddress" => {
                let s = as_str(key, v)?;
                if !s.is_empty() {
                    r.trunk_mac = Some(Mac::parse(s).map_err(|e| bad(key, e.to_string()))?);
                }
            }
            "branchVlanID" => {
                r.vlan_id = Some(vlan_id(as_number(key, v)?).map_err(|e| bad(key, e))?);
            }
            "branchMACAddress" => {
                let s = as_str(key, v)?;
                if !s.is_empty() {
                    r.branch_mac = Some(parse_unicast_mac(s).map_err(|e| bad(key, e))?);
                }
            }
            "ipAddresses" => r.addresses = key_list(key, v, parse_cidr)?,
            "gatewayIPAddresses" => r.gateways = key_list(key, v, parse_ip)?,
            "blockInstanceMetadata" => {
                r.block_imds = v
                    .as_bool()
                    .ok_or_else(|| bad(key, format!("expected true or false, got {v}")))?;
            }
            "interfaceType" => r.interface_type = Some(as_str(key, v)?.to_owned()),
            "uid" | "gid" => {
                let n = as_number(key, v)?;
                let id = u32::try_from(n)
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .ok_or_else(|| bad(key, format!("{n} is not a valid {canonical}")))?;
                if canonical == "uid" {
                    r.uid = Some(id);
                } else {
                    r.gid = Some(id);
                }
            }
            "mtu" => {
                let n = as_number(key, v)?;
                let range = MIN_MTU..=MAX_MTU;
                let mtu = u32::try_from(n)
                    .ok()
                    .filter(|m| range.contains(m))
                    .ok_or_else(|| bad(key, format!("{n} is outside {range:?}")))?;
                r.mtu = Some(mtu);
            }
            _ => {}
        }
    }
    Ok(r)
}

/// Applies the per-container CNI_ARGS; a non-empty value replaces the config's.
fn apply_args(r: &mut Raw, args: &CniArgs) -> Result<(), Error> {
    let get = |k: &str| args.get(k).filter(|v| !v.is_empty());
    if let Some(v) = get("BranchVlanID") {
        let id = v
            .parse::<u64>()
            .map_err(|_| arg_error("BranchVlanID", v, "not a number"))?;
        r.vlan_id = Some(vlan_id(id).map_err(|e| arg_error("BranchVlanID", v, e))?);
    }
    if let Some(v) = get("BranchMACAddress") {
        r.branch_mac = Some(parse_unicast_mac(v).map_err(|e| arg_error("BranchMACAddress", v, e))?);
    }
    if let Some(v) = get("IPAddresses") {
        r.addresses = arg_list("IPAddresses", v, parse_cidr)?;
    }
    if let Some(v) = get("GatewayIPAddresses") {
        r.gateways = arg_list("GatewayIPAddresses", v, parse_ip)?;
    }
    Ok(())
}

/// `interfaceType` (default `tap`, as vpc-branch-eni) with the owner a TAP needs.
fn mode_of(
    interface_type: Option<&str>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<Mode, Error> {
    let (type_name, defaulted) = match interface_type {
        Some(t) => (t, ""),
        None => ("tap", " (the default)"),
    };
    match type_name {
        "vlan" => Ok(Mode::Vlan),
        "macvtap" => Ok(Mode::Macvtap),
        "tap" => {
            let need = |v: Option<u32>, key: &str| {
                v.ok_or_else(|| {
                    Error::invalid_config(format!(
                        "interfaceType \"tap\"{defaulted} requires key \"{key}\" (the owner of the TAP device)"
                    ))
                })
            };
            Ok(Mode::Tap {
                uid: need(uid, "uid")?,
                gid: need(gid, "gid")?,
            })
        }
        other => Err(Error::invalid_config(format!(
            "key \"interfaceType\": unknown value \"{other}\" (expected \"vlan\", \"tap\" or \"macvtap\")"
        ))),
    }
}

impl BranchConf {
    /// Reads the plugin's keys from the config object `raw` and applies `args` (CNI_ARGS).
    pub fn parse(raw: &Map<String, Value>, args: &CniArgs) -> Result<BranchConf, Error> {
        let mut r = read_keys(raw)?;
        apply_args(&mut r, args)?;
        let trunk = TrunkRef {
            name: r.trunk_name,
            mac: r.trunk_mac,
        };
        if trunk.name.is_none() && trunk.mac.is_none() {
            return Err(Error::invalid_config(
                "missing required key \"trunkName\" or \"trunkMACAddress\"",
            ));
        }
        let vlan_id = r.vlan_id.ok_or_else(|| {
            Error::invalid_config(
                "missing required key \"branchVlanID\" (or CNI_ARGS BranchVlanID)",
            )
        })?;
        let branch_mac = r.branch_mac.ok_or_else(|| {
            Error::invalid_config(
                "missing required key \"branchMACAddress\" (or CNI_ARGS BranchMACAddress)",
            )
        })?;
        let mode = mode_of(r.interface_type.as_deref(), r.uid, r.gid)?;
        let conf = BranchConf {
            trunk,
            vlan_id,
            branch_mac,
            addresses: r.addresses,
            gateways: r.gateways,
            block_imds: r.block_imds,
            mode,
            mtu: r.mtu,
        };
        conf.iface_config(conf.mtu).validate().map_err(|e| {
            let key = match e.field {
                ipconf::Field::Addresses => "ipAddresses",
                ipconf::Field::Gateways => "gatewayIPAddresses",
                ipconf::Field::Routes => "routes",
                ipconf::Field::Mtu => "mtu",
            };
            bad(key, format!("{:?}: {}", e.value, e.reason))
        })?;
        Ok(conf)
    }

    /// The MTU of the 802.1Q link: `mtu`, else the trunk's.
    pub(crate) fn vlan_mtu(&self, trunk_mtu: u32) -> u32 {
        self.mtu.unwrap_or(trunk_mtu)
    }

    /// The MTU of the TAP and its bridge in tap mode: `mtu`, else [`TAP_MTU`].
    pub(crate) fn tap_mtu(&self) -> u32 {
        self.mtu.unwrap_or(TAP_MTU)
    }

    /// What the container side carries in tap and macvtap modes: the IMDS blackholes when
    /// `blockInstanceMetadata` is set, nothing else (the addresses are the VM's).
    pub(crate) fn imds_config(&self) -> ipconf::IfaceConfig {
        ipconf::IfaceConfig {
            block_imds: self.block_imds,
            ..ipconf::IfaceConfig::default()
        }
    }

    /// What the interface carries in vlan mode (in tap and macvtap modes only `block_imds` is
    /// applied, on the container side).
    pub fn iface_config(&self, mtu: Option<u32>) -> ipconf::IfaceConfig {
        ipconf::IfaceConfig {
            addresses: self.addresses.clone(),
            gateways: self.gateways.clone(),
            default_routes: true,
            routes: Vec::new(),
            mtu,
            block_imds: self.block_imds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, args: &str) -> Result<BranchConf, Error> {
        let Value::Object(m) = v else {
            panic!("object")
        };
        BranchConf::parse(&m, &CniArgs::parse(args).unwrap())
    }

    fn msg(v: Value, args: &str) -> (u32, String) {
        let e = parse(v, args).unwrap_err();
        (e.code(), e.to_string())
    }

    /// The exact stdin the ECS agent sends (aws-plugins.md §1).
    #[test]
    fn ecs_agent_config_works_unchanged() {
        let c = parse(
            json!({"cniVersion":"0.3.0","name":"network-name","type":"vpc-branch-eni",
                "trunkMACAddress":"0a:1b:2c:3d:4e:01","branchVlanID":"102",
                "branchMACAddress":"0a:1b:2c:3d:4e:5f","ipAddresses":["10.0.1.17/24"],
                "gatewayIPAddresses":["10.0.1.1"],"blockInstanceMetadata":false,
                "interfaceType":"vlan"}),
            "",
        )
        .unwrap();
        assert_eq!(
            c,
            BranchConf {
                trunk: TrunkRef {
                    name: None,
                    mac: Some(Mac::new([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x01])),
                },
                vlan_id: 102,
                branch_mac: Mac::new([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]),
                addresses: vec!["10.0.1.17/24".parse().unwrap()],
                gateways: vec!["10.0.1.1".parse().unwrap()],
                block_imds: false,
                mode: Mode::Vlan,
                mtu: None,
            }
        );
        assert_eq!(c.trunk.to_string(), "with MAC 0a:1b:2c:3d:4e:01");
        // ecs-agent/netlib (Fargate): 0.3.1, tap, uid/gid as strings
        let c = parse(
            json!({"cniVersion":"0.3.1","name":"n","type":"vpc-branch-eni","trunkName":"eth1",
                "branchVlanID":"7","branchMACAddress":"0a:00:00:00:00:07",
                "interfaceType":"tap","uid":"123","gid":"456"}),
            "",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Tap { uid: 123, gid: 456 });
        assert_eq!(c.trunk.name.as_deref(), Some("eth1"));
        assert!(c.addresses.is_empty());
    }

    #[test]
    fn keys_are_case_insensitive_later_wins_and_null_is_unset() {
        let c = parse(
            json!({"TRUNKNAME":"eth9","trunkname":"eth1","BranchVlanId":101,
                "BRANCHMACADDRESS":"0A:00:00:00:00:01","IpAddresses":["10.0.1.5/24","2001:db8::5/64"],
                "GATEWAYIPADDRESSES":["10.0.1.1"],"blockinstancemetadata":true,
                "InterfaceType":"macvtap","MTU":"1500","mtu":null,"unknownKey":{"x":1}}),
            "",
        )
        .unwrap();
        assert_eq!(c.trunk.name.as_deref(), Some("eth1"));
        assert_eq!(c.vlan_id, 101);
        assert_eq!(c.branch_mac, Mac::new([0x0a, 0, 0, 0, 0, 1]));
        assert_eq!(c.addresses.len(), 2);
        assert!(c.block_imds);
        assert_eq!(c.mode, Mode::Macvtap);
        assert_eq!(c.mtu, Some(1500));
    }

    #[test]
    fn cni_args_override_the_config() {
        let base = json!({"trunkName":"eth1","branchVlanID":"5","branchMACAddress":"0a:00:00:00:00:01",
            "ipAddresses":["10.0.0.5/24"],"gatewayIPAddresses":["10.0.0.1"],"interfaceType":"vlan"});
        let c = parse(
            base.clone(),
            "BranchVlanID=10;BranchMACAddress=10:20:30:40:50:60;IPAddresses=192.168.1.2/16,2001:1234::4/64;GatewayIPAddresses=192.168.1.1;K8S_POD_NAME=x",
        )
        .unwrap();
        assert_eq!(c.vlan_id, 10);
        assert_eq!(c.branch_mac, Mac::new([0x10, 0x20, 0x30, 0x40, 0x50, 0x60]));
        assert_eq!(
            c.addresses,
            vec![
                "192.168.1.2/16".parse::<IpNetwork>().unwrap(),
                "2001:1234::4/64".parse().unwrap()
            ]
        );
        assert_eq!(c.gateways, vec!["192.168.1.1".parse::<IpAddr>().unwrap()]);
        // empty values leave the config alone
        let c = parse(base.clone(), "BranchVlanID=;IPAddresses=").unwrap();
        assert_eq!(c.vlan_id, 5);
        assert_eq!(c.addresses.len(), 1);
        // bad values: code 4, naming the argument
        for (args, part) in [
            ("BranchVlanID=0", "BranchVlanID=0"),
            ("BranchVlanID=x", "not a number"),
            ("BranchMACAddress=zz", "BranchMACAddress=zz"),
            ("IPAddresses=10.0.0.1", "no prefix length"),
            ("GatewayIPAddresses=10.0.0.300", "not an IP address"),
        ] {
            let (code, m) = msg(base.clone(), args);
            assert_eq!(code, 4, "{args}: {m}");
            assert!(m.contains(part) && m.contains("CNI_ARGS"), "{args}: {m}");
        }
    }

    #[test]
    fn bad_input_names_the_key() {
        let ok = json!({"trunkName":"eth1","branchVlanID":"5","branchMACAddress":"0a:00:00:00:00:01",
            "interfaceType":"vlan"});
        let with = |k: &str, v: Value| {
            let mut c = ok.clone();
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut c = ok.clone();
            c.as_object_mut().unwrap().remove(k);
            c
        };
        let cases: Vec<(Value, &str)> = vec![
            (
                with("branchVlanID", json!("0")),
                "key \"branchVlanID\": 0 is not a usable VLAN id (1..=4094)",
            ),
            (
                with("branchVlanID", json!(4095)),
                "key \"branchVlanID\": 4095 is not a usable VLAN id",
            ),
            (
                with("branchVlanID", json!("-1")),
                "key \"branchVlanID\": \"-1\" is not a non-negative integer",
            ),
            (
                with("branchVlanID", json!(true)),
                "key \"branchVlanID\": expected a number",
            ),
            (
                with("branchMACAddress", json!("0a:00:00:00:00")),
                "key \"branchMACAddress\": \"0a:00:00:00:00\" is not a MAC address",
            ),
            (
                with("branchMACAddress", json!("01:00:5e:00:00:01")),
                "multicast",
            ),
            (
                with("branchMACAddress", json!("00:00:00:00:00:00")),
                "all-zero",
            ),
            (
                with("trunkMACAddress", json!("nope")),
                "key \"trunkMACAddress\": \"nope\" is not a MAC address",
            ),
            (
                with("interfaceType", json!("ipvlan")),
                "key \"interfaceType\": unknown value \"ipvlan\"",
            ),
            (
                with("interfaceType", json!("tap")),
                "interfaceType \"tap\" requires key \"uid\"",
            ),
            (
                without("interfaceType"),
                "interfaceType \"tap\" (the default) requires key \"uid\"",
            ),
            (
                with("ipAddresses", json!(["10.0.0.5"])),
                "key \"ipAddresses\": \"10.0.0.5\" has no prefix length",
            ),
            (
                with("ipAddresses", json!("10.0.0.5/24")),
                "key \"ipAddresses\": expected a list of strings",
            ),
            (
                with("ipAddresses", json!([5])),
                "key \"ipAddresses[0]\": expected a string",
            ),
            (
                with("gatewayIPAddresses", json!(["10.0.0.1"])),
                "key \"gatewayIPAddresses\": \"10.0.0.1\": no IPv4 address is configured",
            ),
            (
                with("blockInstanceMetadata", json!("true")),
                "key \"blockInstanceMetadata\": expected true or false",
            ),
            (
                with("mtu", json!(67)),
                "key \"mtu\": 67 is outside 68..=65535",
            ),
            (
                with("uid", json!(-1)),
                "key \"uid\": -1 is not a non-negative integer",
            ),
            (
                with("trunkName", json!(7)),
                "key \"trunkName\": expected a string",
            ),
            (
                without("trunkName"),
                "missing required key \"trunkName\" or \"trunkMACAddress\"",
            ),
            (
                without("branchVlanID"),
                "missing required key \"branchVlanID\"",
            ),
            (
                without("branchMACAddress"),
                "missing required key \"branchMACAddress\"",
            ),
        ];
        for (conf, want) in cases {
            let (code, m) = msg(conf.clone(), "");
            assert_eq!(code, 7, "{conf}: {m}");
            assert!(m.contains(want), "{conf}:\n  got  {m}\n  want {want}");
        }
        let mut tap = with("interfaceType", json!("tap"));
        tap["uid"] = json!(0);
        let (_, m) = msg(tap.clone(), "");
        assert!(m.contains("requires key \"gid\""), "{m}");
        tap["gid"] = json!("0");
        assert_eq!(parse(tap, "").unwrap().mode, Mode::Tap { uid: 0, gid: 0 });
    }

    #[test]
    fn go_style_folding() {
        use cni_spec::gojson::fold_eq;
        assert!(fold_eq("trunkName", "TRUNKNAME"));
        // U+212A KELVIN SIGN folds to k, as in Go
        assert!(fold_eq("trunkName", "trun\u{212a}Name"));
        assert!(!fold_eq("trunkName", "trunk_name"));
        let c = parse(
            json!({"trun\u{212a}Name":"eth3","branchVlanID":"5","branchMACAddress":"0a:00:00:00:00:01",
                "interfaceType":"vlan"}),
            "",
        )
        .unwrap();
        assert_eq!(c.trunk.name.as_deref(), Some("eth3"));
    }
}
