//! The two config dialects, normalised into one [`BridgeConfig`].
//!
//! - The reference bridge's (`type: bridge`): `bridge` (default `cni0`), `isGateway`,
//!   `isDefaultGateway` (implies `isGateway`), `forceAddress`, `ipMasq` (+ `ipMasqBackend`), `mtu`,
//!   `hairpinMode`, `promiscMode`, `portIsolation`, `macspoofchk`, `disableContainerInterface`,
//!   `enabledad` (accepted; addresses never wait for DAD), `vlan`, `vlanTrunk`,
//!   `preserveDefaultVlan` (bridge VLAN filtering), the container MAC from
//!   `runtimeConfig.mac` > `args.cni.mac` > CNI_ARGS `MAC`, and `ipam`.
//! - ecs-bridge's (`type: ecs-bridge`, or the binary installed as `ecs-bridge`): `bridge`
//!   (required), `mtu` (0 means 1500), `ipam` (normally `ecs-ipam`), `blockInstanceMetadata`;
//!   the reference keys the ECS agent also sends (`isGateway` ... `hairpinMode`) are ignored, as
//!   ecs-bridge ignores them.
//!
//! Keys are read with Go's `encoding/json` rules (case-insensitive, the last member wins, `null`
//! is absent): see `cni_spec::gojson`.

use cni_spec::{Command, Error, Invocation, parse_value};
use netns::{IfName, MAX_IFNAME_LEN, MAX_MTU, MIN_MTU, Mac, MacProblem};
use serde::Deserialize;
use serde_json::Value;

/// The reference bridge's default bridge name.
pub const DEFAULT_BRIDGE: &str = "cni0";
/// ecs-bridge's MTU when `mtu` is 0 or absent.
pub const ECS_DEFAULT_MTU: u32 = 1500;
/// The program name / plugin type of the ECS dialect.
pub const ECS_TYPE: &str = "ecs-bridge";

/// The dialect a config is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// containernetworking/plugins' `bridge`.
    Reference,
    /// Amazon's `ecs-bridge`: tasks on one bridge only reach the gateway-routed destinations.
    Ecs,
}

/// How IPAM is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpamKind {
    /// No (or an empty) `ipam` object: a layer-2 attachment without addresses, or, for the ECS
    /// agent's DEL config `"ipam":{}`, "do not release".
    None,
    /// `ipam.type` is `ipam`, `host-local` or `ecs-ipam`: our `ipam` crate, in this process.
    InProcess(String),
    /// Any other `ipam.type`: the binary of that name on CNI_PATH.
    Delegate(String),
}

impl IpamKind {
    /// The configured `ipam.type` (empty for none).
    pub fn type_name(&self) -> &str {
        match self {
            IpamKind::None => "",
            IpamKind::InProcess(t) | IpamKind::Delegate(t) => t,
        }
    }
}

/// IPAM types served in-process by the `ipam` crate (no second exec).
pub const IN_PROCESS_IPAM: [&str; 3] = ["ipam", "host-local", "ecs-ipam"];

/// Everything a verb needs, whichever dialect it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    pub dialect: Dialect,
    /// The bridge's name (1..=15 bytes).
    pub bridge: String,
    /// Put each IPAM gateway (or subnet+1) on the bridge, enable forwarding.
    pub is_gateway: bool,
    /// Default routes via the gateways.
    pub is_default_gateway: bool,
    /// Replace a different bridge address of the same subnet instead of failing.
    pub force_address: bool,
    /// Masquerade traffic from the container leaving its subnet (nftables).
    pub ip_masq: bool,
    /// MTU of the new bridge and of both veth ends; `None` keeps the kernel default (1500).
    pub mtu: Option<u32>,
    /// Hairpin mode on the bridge port (traffic may return through the port it came in on).
    pub hairpin: bool,
    /// Promiscuous mode on the bridge.
    pub promisc: bool,
    /// The bridge port is isolated (isolated ports cannot talk to each other).
    pub port_isolation: bool,
    /// Drop frames from the container whose source MAC is not the container's (nftables).
    pub mac_spoof_check: bool,
    /// Leave the container interface down (layer 2 only; no IPAM).
    pub disable_container_interface: bool,
    /// The container interface's MAC, if one was asked for.
    pub mac: Option<Mac>,
    /// Blackhole routes to the instance metadata service in the container.
    pub block_imds: bool,
    /// ECS: the connected IPv4 route to keep (mask size; `None` deletes it).
    pub connected_v4: Option<u8>,
    /// ECS: the connected IPv6 route to keep (mask size; `None` deletes it).
    pub connected_v6: Option<u8>,
    pub ipam: IpamKind,
    /// The bridge's VLAN settings (reference dialect; all off in the ECS dialect).
    pub vlan: VlanConfig,
}

/// The reference bridge's VLAN keys: `vlan`, `vlanTrunk`, `preserveDefaultVlan`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VlanConfig {
    /// `vlan` (1..=4094; 0 or absent = none): the port's PVID, egress untagged (access port,
    /// or the native VLAN of a trunk).
    pub vlan: Option<u16>,
    /// `vlanTrunk`, expanded, sorted, without repeats: tagged VLANs of the port.
    pub trunk: Vec<u16>,
    /// `preserveDefaultVlan` (default false, as in the reference plugin since v1.8): keep the
    /// bridge's default VLAN (normally 1, egress untagged) on the port when VLANs are set.
    pub preserve_default: bool,
    /// The bridge needs `vlan_filtering`: `vlan` is set or `vlanTrunk` is given (even empty, as
    /// the reference plugin decides).
    pub filtering: bool,
}

impl VlanConfig {
    /// Whether the container's port gets VLANs.
    pub fn configures_port(&self) -> bool {
        self.vlan.is_some() || !self.trunk.is_empty()
    }
}

/// One `vlanTrunk` entry: `{"id": N}` and/or `{"minID": A, "maxID": B}`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TrunkEntry {
    id: Option<i64>,
    #[serde(rename = "minID")]
    min_id: Option<i64>,
    #[serde(rename = "maxID")]
    max_id: Option<i64>,
}

/// The reference plugin's `vlanTrunk` rules (`collectVlanTrunk`): ids in 1..=4094, `minID`
/// and `maxID` together with `minID <= maxID`; the union of all entries, sorted. Errors name
/// the entry and key (code 7).
pub fn collect_vlan_trunk(entries: &[Value]) -> Result<Vec<u16>, Error> {
    let mut vids = std::collections::BTreeSet::new();
    for (i, v) in entries.iter().enumerate() {
        let key = format!("vlanTrunk[{i}]");
        let e: TrunkEntry = parse_value(v, &key)?;
        let id_of = |name: &str, n: i64| -> Result<u16, Error> {
            u16::try_from(n)
                .ok()
                .filter(|n| (1..=nl::MAX_VLAN_ID).contains(n))
                .ok_or_else(|| {
                    Error::invalid_config(format!(
                        "key \"{key}.{name}\": {n} is outside 1..={}",
                        nl::MAX_VLAN_ID
                    ))
                })
        };
        match (e.min_id, e.max_id) {
            (Some(min), Some(max)) => {
                let (min, max) = (id_of("minID", min)?, id_of("maxID", max)?);
                if max < min {
                    return Err(Error::invalid_config(format!(
                        "key \"{key}\": minID {min} is greater than maxID {max}"
                    )));
                }
                vids.extend(min..=max);
            }
            (None, Some(_)) => {
                return Err(Error::invalid_config(format!(
                    "key \"{key}\": minID and maxID go together, minID is missing"
                )));
            }
            (Some(_), None) => {
                return Err(Error::invalid_config(format!(
                    "key \"{key}\": minID and maxID go together, maxID is missing"
                )));
            }
            (None, None) => {}
        }
        if let Some(id) = e.id {
            vids.insert(id_of("id", id)?);
        }
    }
    Ok(vids.into_iter().collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Raw {
    bridge: Option<String>,
    #[serde(rename = "isGateway")]
    is_gateway: bool,
    #[serde(rename = "isDefaultGateway")]
    is_default_gateway: bool,
    #[serde(rename = "forceAddress")]
    force_address: bool,
    #[serde(rename = "ipMasq")]
    ip_masq: bool,
    #[serde(rename = "ipMasqBackend")]
    ip_masq_backend: Option<String>,
    mtu: Option<i64>,
    #[serde(rename = "hairpinMode")]
    hairpin_mode: bool,
    #[serde(rename = "promiscMode")]
    promisc_mode: bool,
    #[serde(rename = "portIsolation")]
    port_isolation: bool,
    macspoofchk: bool,
    #[serde(rename = "disableContainerInterface")]
    disable_container_interface: bool,
    /// Accepted: addresses are always added without waiting for DAD.
    #[allow(dead_code)]
    enabledad: bool,
    vlan: Option<i64>,
    #[serde(rename = "vlanTrunk")]
    vlan_trunk: Option<Vec<Value>>,
    #[serde(rename = "preserveDefaultVlan")]
    preserve_default_vlan: bool,
    #[serde(rename = "blockInstanceMetadata")]
    block_instance_metadata: bool,
    #[serde(rename = "connectedSubnetMaskSizeIPv4")]
    connected_v4: Option<u8>,
    #[serde(rename = "connectedSubnetMaskSizeIPv6")]
    connected_v6: Option<u8>,
}

/// The `connectedSubnetMaskSize*` keys, read from the `ipam` object where the ECS agent puts
/// them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct IpamExtras {
    #[serde(rename = "connectedSubnetMaskSizeIPv4")]
    connected_v4: Option<u8>,
    #[serde(rename = "connectedSubnetMaskSizeIPv6")]
    connected_v6: Option<u8>,
}

/// Interface-name rules ([`IfName`], the kernel's `dev_valid_name`), reported as a config error
/// on `key`.
pub fn validate_link_name(key: &str, name: &str) -> Result<(), Error> {
    match IfName::problem(name) {
        None => Ok(()),
        Some(problem) => Err(Error::invalid_config(format!(
            "key \"{key}\": \"{name}\" {problem}"
        ))),
    }
}

/// Parses a unicast MAC ([`Mac::parse_unicast`]) from `source` (the key or variable it came
/// from).
pub fn parse_unicast_mac(source: &str, s: &str) -> Result<Mac, Error> {
    Mac::parse_unicast(s).map_err(|e| {
        Error::invalid_config(match e.problem {
            MacProblem::Malformed => format!("{source}: \"{s}\" is not a MAC address"),
            MacProblem::Zero | MacProblem::Multicast => {
                format!("{source}: \"{s}\" is not a unicast MAC address")
            }
        })
    })
}

/// `runtimeConfig.mac` > `args.cni.mac` > CNI_ARGS `MAC` (the reference bridge's precedence).
fn container_mac(inv: &Invocation) -> Result<Option<Mac>, Error> {
    if let Some(m) = inv.conf.runtime_config.mac.as_deref() {
        return parse_unicast_mac("runtimeConfig.mac", m).map(Some);
    }
    if let Some(v) = inv.conf.args_cni("mac") {
        let m: String = parse_value(v, "args.cni.mac")?;
        return parse_unicast_mac("args.cni.mac", &m).map(Some);
    }
    if let Some(m) = inv.env.args.get("MAC") {
        return parse_unicast_mac("CNI_ARGS MAC", m).map(Some);
    }
    Ok(None)
}

fn mask(key: &str, v: Option<u8>, max: u8) -> Result<Option<u8>, Error> {
    match v {
        None | Some(0) => Ok(None),
        Some(m) if m <= max => Ok(Some(m)),
        Some(m) => Err(Error::invalid_config(format!(
            "key \"{key}\": {m} is not a prefix length (0..={max})"
        ))),
    }
}

/// `bridge`: the reference bridge's default `cni0`, required by ecs-bridge; a valid link name.
fn bridge_name(dialect: Dialect, raw: Option<String>) -> Result<String, Error> {
    let bridge = match (dialect, raw.filter(|b| !b.is_empty())) {
        (_, Some(b)) => b,
        (Dialect::Reference, None) => DEFAULT_BRIDGE.to_owned(),
        (Dialect::Ecs, None) => {
            return Err(Error::invalid_config(
                "missing required parameter in config named: 'bridge'",
            ));
        }
    };
    validate_link_name("bridge", &bridge)?;
    Ok(bridge)
}

/// `mtu`: 0 or absent is the kernel's default (ecs-bridge: 1500); else within the MTU bounds.
fn mtu(dialect: Dialect, raw: Option<i64>) -> Result<Option<u32>, Error> {
    match raw {
        None | Some(0) => Ok((dialect == Dialect::Ecs).then_some(ECS_DEFAULT_MTU)),
        Some(m) if (i64::from(MIN_MTU)..=i64::from(MAX_MTU)).contains(&m) => {
            Ok(u32::try_from(m).ok())
        }
        Some(m) => Err(Error::invalid_config(format!(
            "key \"mtu\": {m} is outside {MIN_MTU}..={MAX_MTU}"
        ))),
    }
}

/// How IPAM runs, from `ipam.type` (any case): in-process, a delegate, or none.
fn ipam_kind(inv: &Invocation) -> Result<IpamKind, Error> {
    if inv.conf.ipam.is_none() {
        return Ok(IpamKind::None);
    }
    match inv.conf.ipam_member("type") {
        Some((_, Value::String(t))) if IN_PROCESS_IPAM.contains(&t.as_str()) => {
            Ok(IpamKind::InProcess(t.clone()))
        }
        Some((_, Value::String(t))) if !t.is_empty() => Ok(IpamKind::Delegate(t.clone())),
        Some((_, Value::String(_))) | None => Err(Error::invalid_config(
            "key \"ipam.type\" is missing or empty: name the IPAM plugin",
        )),
        Some((key, other)) => Err(Error::invalid_config(format!(
            "key \"ipam.{key}\": expected a string, got {other}"
        ))),
    }
}

/// `vlan`: 0 or absent is none, else 1..=4094.
fn vlan_id(raw: Option<i64>) -> Result<Option<u16>, Error> {
    match raw {
        None | Some(0) => Ok(None),
        Some(v) => u16::try_from(v)
            .ok()
            .filter(|v| *v <= nl::MAX_VLAN_ID)
            .map(Some)
            .ok_or_else(|| {
                Error::invalid_config(format!(
                    "key \"vlan\": {v} is outside 0..={} (0 = none)",
                    nl::MAX_VLAN_ID
                ))
            }),
    }
}

/// The keys both dialects read, validated.
struct Common {
    dialect: Dialect,
    bridge: String,
    mtu: Option<u32>,
    ipam: IpamKind,
    mac: Option<Mac>,
    block_imds: bool,
}

impl BridgeConfig {
    /// The dialect of an invocation: ECS when the config's `type` or the program name is
    /// `ecs-bridge`.
    pub fn dialect_of(inv: &Invocation) -> Dialect {
        if inv.conf.plugin_type == ECS_TYPE || inv.program == ECS_TYPE {
            Dialect::Ecs
        } else {
            Dialect::Reference
        }
    }

    /// Reads and validates the invocation's config. Errors are code 7 naming the key.
    ///
    /// Steps: the keys both dialects have (CNI_ARGS and the MAC on ADD only, `bridge`, `mtu`,
    /// `ipam.type`), then the dialect's own (`BridgeConfig::ecs`,
    /// `BridgeConfig::reference`).
    pub fn load(inv: &Invocation) -> Result<BridgeConfig, Error> {
        let raw: Raw = inv.conf.parse_as()?;
        let dialect = Self::dialect_of(inv);
        // CNI_ARGS (MAC is ours, IP is for host-local style IPAM) and the MAC only matter to
        // ADD; DEL, CHECK, GC and STATUS must not fail over them.
        let adding = inv.command() == Command::Add;
        if adding {
            inv.env.args.check_known(&["MAC", "IP"])?;
        }
        let common = Common {
            dialect,
            bridge: bridge_name(dialect, raw.bridge.clone())?,
            mtu: mtu(dialect, raw.mtu)?,
            ipam: ipam_kind(inv)?,
            mac: if adding { container_mac(inv)? } else { None },
            block_imds: raw.block_instance_metadata,
        };
        match dialect {
            Dialect::Ecs => Self::ecs(inv, &raw, common),
            Dialect::Reference => Self::reference(&raw, common),
        }
    }

    /// ecs-bridge: a gateway always, the `connectedSubnetMaskSize*` keys (in `ipam`, where the
    /// agent puts them, or at the top level), every other reference key ignored.
    fn ecs(inv: &Invocation, raw: &Raw, c: Common) -> Result<BridgeConfig, Error> {
        let extras: IpamExtras = match &inv.conf.ipam {
            Some(m) => parse_value(&Value::Object(m.clone()), "ipam")?,
            None => IpamExtras::default(),
        };
        Ok(BridgeConfig {
            dialect: c.dialect,
            bridge: c.bridge,
            is_gateway: true,
            is_default_gateway: false,
            force_address: false,
            ip_masq: false,
            mtu: c.mtu,
            hairpin: false,
            promisc: false,
            port_isolation: false,
            mac_spoof_check: false,
            disable_container_interface: false,
            mac: c.mac,
            block_imds: c.block_imds,
            connected_v4: mask(
                "ipam.connectedSubnetMaskSizeIPv4",
                extras.connected_v4.or(raw.connected_v4),
                32,
            )?,
            connected_v6: mask(
                "ipam.connectedSubnetMaskSizeIPv6",
                extras.connected_v6.or(raw.connected_v6),
                128,
            )?,
            ipam: c.ipam,
            vlan: VlanConfig::default(),
        })
    }

    /// The reference bridge: its VLAN keys, then the combinations it refuses.
    fn reference(raw: &Raw, c: Common) -> Result<BridgeConfig, Error> {
        let vlan_id = vlan_id(raw.vlan)?;
        let vlan = VlanConfig {
            vlan: vlan_id,
            trunk: collect_vlan_trunk(raw.vlan_trunk.as_deref().unwrap_or_default())?,
            preserve_default: raw.preserve_default_vlan,
            filtering: vlan_id.is_some() || raw.vlan_trunk.is_some(),
        };
        let cfg = BridgeConfig {
            dialect: c.dialect,
            bridge: c.bridge,
            is_gateway: raw.is_gateway || raw.is_default_gateway,
            is_default_gateway: raw.is_default_gateway,
            force_address: raw.force_address,
            ip_masq: raw.ip_masq,
            mtu: c.mtu,
            hairpin: raw.hairpin_mode,
            promisc: raw.promisc_mode,
            port_isolation: raw.port_isolation,
            mac_spoof_check: raw.macspoofchk,
            disable_container_interface: raw.disable_container_interface,
            mac: c.mac,
            block_imds: c.block_imds,
            connected_v4: None,
            connected_v6: None,
            ipam: c.ipam,
            vlan,
        };
        cfg.refuse_reference_combinations(raw.ip_masq_backend.as_deref())?;
        Ok(cfg)
    }

    /// What the reference bridge refuses: a `<bridge>.<vlan>` gateway name over 15 bytes, an
    /// unknown `ipMasqBackend`, `hairpinMode` with `promiscMode`, `disableContainerInterface`
    /// with `ipam`.
    fn refuse_reference_combinations(&self, ip_masq_backend: Option<&str>) -> Result<(), Error> {
        if let (Some(link), Some(v)) = (self.vlan_gateway_link(), self.vlan.vlan) {
            if link.len() > MAX_IFNAME_LEN {
                return Err(Error::invalid_config(format!(
                    "key \"bridge\": with \"vlan\" {v} and \"isGateway\" the gateway goes on \"{link}\", which is longer than 15 bytes (the kernel's IFNAMSIZ limit)"
                )));
            }
        }
        match ip_masq_backend {
            None | Some("") | Some("nftables") | Some("iptables") => {}
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "key \"ipMasqBackend\": \"{other}\" is neither \"nftables\" nor \"iptables\""
                )));
            }
        }
        if self.hairpin && self.promisc {
            return Err(Error::invalid_config(
                "keys \"hairpinMode\" and \"promiscMode\" cannot both be true",
            ));
        }
        if self.disable_container_interface && self.ipam != IpamKind::None {
            return Err(Error::invalid_config(
                "key \"disableContainerInterface\" is true, which cannot be combined with \"ipam\"",
            ));
        }
        Ok(())
    }

    /// `<bridge>.<vlan>`: the reference bridge's gateway interface for a layer-3 network with a
    /// VLAN (a veth whose peer is a port of the bridge in that VLAN); `None` when the gateway
    /// goes on the bridge itself.
    pub fn vlan_gateway_link(&self) -> Option<String> {
        match self.vlan.vlan {
            Some(v) if self.is_gateway && self.ipam != IpamKind::None => {
                Some(format!("{}.{v}", self.bridge))
            }
            _ => None,
        }
    }

    /// Whether DEL, CHECK and GC have nftables rules to look at.
    pub fn uses_nft(&self) -> bool {
        self.ip_masq || self.mac_spoof_check
    }

    /// The key that needs the `nft` binary (`ipMasq`, else `macspoofchk`), if any: named when
    /// `nft` is missing.
    pub fn nft_feature(&self) -> Option<&'static str> {
        match (self.dialect, self.ip_masq, self.mac_spoof_check) {
            (Dialect::Reference, true, _) => Some("ipMasq"),
            (Dialect::Reference, false, true) => Some("macspoofchk"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::{CniArgs, Env, NetConf, SpecVersion};
    use serde_json::json;

    fn inv_with(conf: Value, program: &str, cni_args: &str) -> Invocation {
        inv_for(Command::Add, conf, program, cni_args)
    }

    fn inv_for(command: Command, conf: Value, program: &str, cni_args: &str) -> Invocation {
        Invocation {
            env: Env {
                command,
                container_id: "c1".into(),
                netns_path: None,
                netns: None,
                ifname: "eth0".into(),
                args: CniArgs::parse(cni_args).unwrap(),
                path: vec![],
            },
            vars: cni_spec::Vars::new(),
            version: SpecVersion::V1_1_0,
            conf: NetConf::from_value(conf).unwrap(),
            stdin: Vec::new(),
            program: program.into(),
        }
    }

    fn load(conf: Value) -> Result<BridgeConfig, Error> {
        BridgeConfig::load(&inv_with(conf, "bridge", ""))
    }

    #[test]
    fn reference_defaults() {
        let c = load(json!({"cniVersion": "1.1.0", "name": "n", "type": "bridge"})).unwrap();
        assert_eq!(c.dialect, Dialect::Reference);
        assert_eq!(c.bridge, "cni0");
        assert_eq!(c.mtu, None);
        assert_eq!(c.ipam, IpamKind::None);
        assert!(!c.is_gateway && !c.ip_masq && !c.uses_nft());
        let c = load(
            json!({"name": "n", "type": "bridge", "isDefaultGateway": true, "mtu": 9001,
            "ipam": {"type": "host-local"}}),
        )
        .unwrap();
        assert!(c.is_gateway && c.is_default_gateway);
        assert_eq!(c.mtu, Some(9001));
        assert_eq!(c.ipam, IpamKind::InProcess("host-local".into()));
        let c = load(json!({"name": "n", "ipam": {"type": "dhcp"}})).unwrap();
        assert_eq!(c.ipam, IpamKind::Delegate("dhcp".into()));
    }

    #[test]
    fn ecs_dialect_by_type_or_program() {
        let agent = json!({"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name",
            "bridge":"ecs-bridge","isGateway":false,"isDefaultGateway":false,"forceAddress":false,
            "ipMasq":false,"mtu":0,"hairpinMode":false,
            "ipam":{"type":"ecs-ipam","id":"0a:1b:2c:3d:4e:5f","ipv4-subnet":"169.254.172.0/22",
                    "ipv4-routes":[{"dst":"169.254.170.2/32"}]}});
        let c = load(agent.clone()).unwrap();
        assert_eq!(c.dialect, Dialect::Ecs);
        assert_eq!(c.mtu, Some(1500));
        assert_eq!(c.bridge, "ecs-bridge");
        assert_eq!(c.ipam, IpamKind::InProcess("ecs-ipam".into()));
        assert_eq!((c.connected_v4, c.connected_v6), (None, None));
        let mut no_bridge = agent.clone();
        no_bridge.as_object_mut().unwrap().remove("bridge");
        let e = load(no_bridge).unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.to_string().contains("'bridge'"), "{e}");
        // installed as ecs-bridge, type says bridge
        let c = BridgeConfig::load(&inv_with(
            json!({"name": "n", "type": "bridge", "bridge": "b0"}),
            "ecs-bridge",
            "",
        ))
        .unwrap();
        assert_eq!(c.dialect, Dialect::Ecs);
        // the agent's DEL config skips IPAM
        let mut del = agent;
        del["ipam"] = json!({});
        assert_eq!(load(del).unwrap().ipam, IpamKind::None);
        let c = load(json!({"type": "ecs-bridge", "name": "n", "bridge": "b",
            "ipam": {"type": "ecs-ipam", "connectedSubnetMaskSizeIPv4": 22}}))
        .unwrap();
        assert_eq!(c.connected_v4, Some(22));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (conf, key) in [
            (
                json!({"name": "n", "bridge": "a-very-long-bridge"}),
                "bridge",
            ),
            (json!({"name": "n", "bridge": "a b"}), "bridge"),
            (json!({"name": "n", "mtu": 67}), "mtu"),
            (json!({"name": "n", "mtu": 65536}), "mtu"),
            (json!({"name": "n", "mtu": -1}), "mtu"),
            (json!({"name": "n", "mtu": "9001"}), "mtu"),
            (json!({"name": "n", "isGateway": "true"}), "isGateway"),
            (
                json!({"name": "n", "ipam": {"subnet": "10.0.0.0/24"}}),
                "ipam.type",
            ),
            (
                json!({"name": "n", "hairpinMode": true, "promiscMode": true}),
                "hairpinMode",
            ),
            (
                json!({"name": "n", "ipMasqBackend": "ebpf"}),
                "ipMasqBackend",
            ),
            (
                json!({"name": "n", "disableContainerInterface": true, "ipam": {"type": "ipam"}}),
                "disableContainerInterface",
            ),
            (json!({"name": "n", "vlan": 4095}), "key \"vlan\": 4095"),
            (json!({"name": "n", "vlan": -1}), "key \"vlan\": -1"),
            (json!({"name": "n", "vlan": "100"}), "vlan"),
            (
                json!({"name": "n", "preserveDefaultVlan": "yes"}),
                "preserveDefaultVlan",
            ),
            (json!({"name": "n", "vlanTrunk": {"id": 5}}), "vlanTrunk"),
            (
                json!({"name": "n", "bridge": "bridge-long0", "vlan": 1000, "isGateway": true,
                       "ipam": {"type": "ipam"}}),
                "\"bridge-long0.1000\", which is longer than 15 bytes",
            ),
        ] {
            let e = load(conf.clone()).unwrap_err();
            assert_eq!(e.code(), 7, "{conf}: {e}");
            assert!(e.to_string().contains(key), "{conf}: {e}");
        }

        assert_eq!(
            load(json!({"name": "n", "mtu": 65535})).unwrap().mtu,
            Some(65535)
        );
        assert_eq!(load(json!({"name": "n", "mtu": 68})).unwrap().mtu, Some(68));
    }

    /// The reference plugin's vlanTrunk table (bridge_test.go): empty, min/max, id, id plus
    /// range; errors for a missing minID or maxID, ids out of 1..=4094, maxID < minID.
    #[test]
    fn vlan_trunk_table() {
        let ok = |v: Value| collect_vlan_trunk(v.as_array().unwrap()).unwrap();
        assert_eq!(ok(json!([])), Vec::<u16>::new());
        assert_eq!(ok(json!([{}])), Vec::<u16>::new());
        assert_eq!(
            ok(json!([{"minID": 100, "maxID": 103}])),
            [100, 101, 102, 103]
        );
        assert_eq!(ok(json!([{"id": 101}])), [101]);
        assert_eq!(
            ok(json!([{"id": 101}, {"minID": 200, "maxID": 202}, {"id": 201}])),
            [101, 200, 201, 202]
        );
        assert_eq!(ok(json!([{"id": 5, "minID": 1, "maxID": 2}])), [1, 2, 5]);
        assert_eq!(ok(json!([{"minID": 4094, "maxID": 4094}])), [4094]);
        for (bad, msg) in [
            (
                json!([{"maxID": 10}]),
                "key \"vlanTrunk[0]\": minID and maxID go together, minID is missing",
            ),
            (
                json!([{"id": 1}, {"minID": 10}]),
                "key \"vlanTrunk[1]\": minID and maxID go together, maxID is missing",
            ),
            (
                json!([{"minID": 0, "maxID": 10}]),
                "key \"vlanTrunk[0].minID\": 0 is outside 1..=4094",
            ),
            (
                json!([{"minID": 1, "maxID": 4095}]),
                "key \"vlanTrunk[0].maxID\": 4095 is outside 1..=4094",
            ),
            (
                json!([{"id": -1}]),
                "key \"vlanTrunk[0].id\": -1 is outside 1..=4094",
            ),
            (
                json!([{"minID": 20, "maxID": 10}]),
                "key \"vlanTrunk[0]\": minID 20 is greater than maxID 10",
            ),
        ] {
            let e = collect_vlan_trunk(bad.as_array().unwrap()).unwrap_err();
            assert_eq!(e.code(), 7, "{bad}");
            assert_eq!(
                e.to_string(),
                format!("invalid network config: {msg}"),
                "{bad}"
            );
        }
        let e = collect_vlan_trunk(&[json!({"id": "5"})]).unwrap_err();
        assert!(e.to_string().contains("vlanTrunk[0]"), "{e}");
    }

    #[test]
    fn vlan_keys() {
        let c = load(json!({"name": "n"})).unwrap();
        assert_eq!(c.vlan, VlanConfig::default());
        let c = load(json!({"name": "n", "vlan": 0, "vlanTrunk": null})).unwrap();
        assert!(!c.vlan.filtering && !c.vlan.configures_port());
        let c = load(json!({"name": "n", "vlan": 100})).unwrap();
        assert_eq!(
            c.vlan,
            VlanConfig {
                vlan: Some(100),
                trunk: vec![],
                preserve_default: false,
                filtering: true
            }
        );
        assert_eq!(c.vlan_gateway_link(), None, "layer 2: no gateway interface");
        // an empty vlanTrunk still turns filtering on, as in the reference plugin
        let c = load(json!({"name": "n", "vlanTrunk": []})).unwrap();
        assert!(c.vlan.filtering && !c.vlan.configures_port());
        let c = load(json!({"name": "n", "vlan": 7, "preserveDefaultVlan": true,
            "vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 201}],
            "isGateway": true, "ipam": {"type": "ipam"}}))
        .unwrap();
        assert_eq!(c.vlan.trunk, [101, 200, 201]);
        assert!(c.vlan.preserve_default);
        assert_eq!(c.vlan_gateway_link().as_deref(), Some("cni0.7"));
        // ecs-bridge knows no VLANs: ignored
        let c = load(
            json!({"name": "n", "type": "ecs-bridge", "bridge": "b", "vlan": 100,
            "ipam": {"type": "ecs-ipam"}}),
        )
        .unwrap();
        assert_eq!(c.vlan, VlanConfig::default());
    }

    #[test]
    fn mac_precedence() {
        let conf = json!({"name": "n",
            "runtimeConfig": {"mac": "c2:00:00:00:00:01"},
            "args": {"cni": {"mac": "c2:00:00:00:00:02"}}});
        let c = BridgeConfig::load(&inv_with(conf, "bridge", "MAC=c2:00:00:00:00:03")).unwrap();
        assert_eq!(c.mac, Some(Mac::new([0xc2, 0, 0, 0, 0, 1])));
        let conf = json!({"name": "n", "args": {"cni": {"mac": "c2:00:00:00:00:02"}}});
        let c = BridgeConfig::load(&inv_with(conf, "bridge", "MAC=c2:00:00:00:00:03")).unwrap();
        assert_eq!(c.mac, Some(Mac::new([0xc2, 0, 0, 0, 0, 2])));
        let c = BridgeConfig::load(&inv_with(
            json!({"name": "n"}),
            "bridge",
            "MAC=c2:00:00:00:00:03",
        ))
        .unwrap();
        assert_eq!(c.mac, Some(Mac::new([0xc2, 0, 0, 0, 0, 3])));
        let e = BridgeConfig::load(&inv_with(
            json!({"name": "n"}),
            "bridge",
            "MAC=01:00:00:00:00:03",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("CNI_ARGS MAC"), "{e}");
        let e = BridgeConfig::load(&inv_with(json!({"name": "n"}), "bridge", "FOO=1")).unwrap_err();
        assert_eq!(e.code(), 4);
        BridgeConfig::load(&inv_with(
            json!({"name": "n"}),
            "bridge",
            "IgnoreUnknown=1;FOO=1",
        ))
        .unwrap();
        // DEL does not care about CNI_ARGS or the MAC
        let c = BridgeConfig::load(&inv_for(
            Command::Del,
            json!({"name": "n", "runtimeConfig": {"mac": "bogus"}}),
            "bridge",
            "FOO=1",
        ))
        .unwrap();
        assert_eq!(c.mac, None);
    }
}
