//! The network configuration on stdin: the common keys, `runtimeConfig`, `args`, `prevResult`,
//! GC's attachments, and typed access to a plugin's own keys. Every key is read with Go's
//! `encoding/json` rules ([`crate::gojson`]): case-insensitive, the last member wins, `null` is
//! absent.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::gojson::{GoObject, parse_value};
use crate::{CniResult, Dns, Error};

/// The keys every plugin config shares (libcni's `NetConf`, GC's attachments, the legacy
/// spelling of the attachments last).
const COMMON_KEYS: [&str; 10] = [
    "cniVersion",
    "name",
    "type",
    "ipam",
    "dns",
    "args",
    "runtimeConfig",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
];

/// The keys of `runtimeConfig` read into typed fields; the others stay in
/// [`RuntimeConfig::rest`].
const RUNTIME_KEYS: [&str; 3] = ["mac", "ips", "ipRanges"];

/// The keys every plugin config shares. The whole object stays in `raw` for the plugin's own
/// typed view ([`NetConf::parse_as`]) and for delegation.
#[derive(Clone, Debug, Default)]
pub struct NetConf {
    /// As written; `"0.1.0"` when absent (as libcni assumes).
    pub cni_version: String,
    pub name: String,
    pub plugin_type: String,
    /// The `ipam` object, if any (an empty object, or one of only `null` members, counts as
    /// none), its keys as written.
    pub ipam: Option<Map<String, Value>>,
    pub dns: Option<Dns>,
    pub args: Option<Value>,
    pub runtime_config: RuntimeConfig,
    pub prev_result: Option<CniResult>,
    /// GC: `cni.dev/valid-attachments` (or legacy `cni.dev/attachments`); `None` when absent,
    /// which GC must treat as "nothing is valid".
    pub valid_attachments: Option<Vec<Attachment>>,
    pub raw: Map<String, Value>,
}

/// Typed capabilities from `runtimeConfig`; other capabilities stay in `rest` (as written,
/// `null` ones dropped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeConfig {
    pub mac: Option<String>,
    pub ips: Vec<String>,
    pub ip_ranges: Vec<Vec<RangeConf>>,
    pub rest: Map<String, Value>,
}

/// The typed part of [`RuntimeConfig`] (no `flatten`, so that its keys fold as Go's do).
#[derive(Default, Deserialize)]
#[serde(default)]
struct RuntimeKnown {
    mac: Option<String>,
    ips: Vec<String>,
    #[serde(rename = "ipRanges")]
    ip_ranges: Vec<Vec<RangeConf>>,
}

impl RuntimeConfig {
    /// Reads a `runtimeConfig` object found at `key` (as written), with Go's rules.
    pub fn from_value(v: &Value, key: &str) -> Result<RuntimeConfig, Error> {
        let known: RuntimeKnown = parse_value(v, key)?;
        let rest = match v {
            Value::Object(m) => GoObject::others(m, &RUNTIME_KEYS),
            _ => Map::new(),
        };
        Ok(RuntimeConfig {
            mac: known.mac,
            ips: known.ips,
            ip_ranges: known.ip_ranges,
            rest,
        })
    }
}

/// One range of a host-local style range set (`ranges`, `runtimeConfig.ipRanges`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RangeConf {
    pub subnet: String,
    #[serde(default, rename = "rangeStart")]
    pub range_start: Option<String>,
    #[serde(default, rename = "rangeEnd")]
    pub range_end: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
}

/// One `{containerID, ifname}` entry of GC's valid attachments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The `cniVersion` of a decoded config, if it is a string (for reporting errors in the
/// config's version before the config is validated).
pub fn version_hint(v: &Value) -> Option<&str> {
    let Value::Object(m) = v else {
        return None;
    };
    GoObject::new(m, &COMMON_KEYS)
        .get("cniVersion")
        .and_then(|(_, v)| v.as_str())
}

impl NetConf {
    /// Parses the stdin object (already decoded JSON). Name validation is done by the dispatcher.
    ///
    /// A `cniVersion` that is not a string is a decode error (code 6), as libcni's version
    /// decoder reports it; a wrong type of any other common key is code 7 naming the key.
    pub fn from_value(v: Value) -> Result<NetConf, Error> {
        let Value::Object(raw) = v else {
            return Err(Error::Decode("network config must be a JSON object".into()));
        };
        let common = GoObject::new(&raw, &COMMON_KEYS);
        let string = |field: &str| -> Result<Option<String>, Error> {
            match common.get(field) {
                None => Ok(None),
                Some((_, Value::String(s))) => Ok(Some(s.clone())),
                Some((key, other)) => Err(Error::invalid_config(format!(
                    "key \"{key}\": expected a string, got {other}"
                ))),
            }
        };
        let cni_version = match common.get("cniVersion") {
            None => "0.1.0".to_owned(),
            Some((_, Value::String(s))) => s.clone(),
            Some((key, other)) => {
                return Err(Error::Decode(format!(
                    "key \"{key}\": expected a string, got {other}"
                )));
            }
        };
        let name = string("name")?.unwrap_or_default();
        let plugin_type = string("type")?.unwrap_or_default();
        let ipam = match common.get("ipam") {
            None => None,
            // `{}`, or only null members (null = absent): no IPAM
            Some((_, Value::Object(m))) if m.values().all(Value::is_null) => None,
            Some((_, Value::Object(m))) => Some(m.clone()),
            Some((key, other)) => {
                return Err(Error::invalid_config(format!(
                    "key \"{key}\": expected an object, got {other}"
                )));
            }
        };
        let dns = match common.get("dns") {
            None => None,
            Some((key, v)) => Some(parse_value::<Dns>(v, key)?),
        };
        let runtime_config = match common.get("runtimeConfig") {
            None => RuntimeConfig::default(),
            Some((key, v)) => RuntimeConfig::from_value(v, key)?,
        };
        let prev_result = match common.get("prevResult") {
            None => None,
            Some((_, v)) => Some(CniResult::from_value(v)?),
        };
        let valid_attachments = match common
            .get("cni.dev/valid-attachments")
            .or_else(|| common.get("cni.dev/attachments"))
        {
            None => None,
            Some((key, v)) => Some(parse_value(v, key)?),
        };
        let args = common.get("args").map(|(_, v)| v.clone());
        Ok(NetConf {
            cni_version,
            name,
            plugin_type,
            ipam,
            dns,
            args,
            runtime_config,
            prev_result,
            valid_attachments,
            raw,
        })
    }

    /// The plugin's own typed view of the whole config object, read with Go's rules; a wrong
    /// type names the key as written (code 7). Unknown keys are ignored by the target type (no
    /// `deny_unknown_fields`).
    pub fn parse_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        parse_value(&Value::Object(self.raw.clone()), "")
    }

    /// `args.cni.<key>`, the spec's place for per-attachment metadata (`ips`, `mac`, `labels`);
    /// both levels matched as Go matches keys, `null` counting as absent.
    pub fn args_cni(&self, key: &str) -> Option<&Value> {
        let Some(Value::Object(args)) = &self.args else {
            return None;
        };
        let Some((_, Value::Object(cni))) = GoObject::new(args, &["cni"]).get("cni") else {
            return None;
        };
        GoObject::new(cni, &[key]).get(key).map(|(_, v)| v)
    }

    /// `ipam.<key>`, matched as Go matches keys: the key as written and its value; `None` when
    /// absent or `null`.
    pub fn ipam_member(&self, key: &str) -> Option<(&str, &Value)> {
        let ipam = self.ipam.as_ref()?;
        GoObject::new(ipam, &[key]).get(key)
    }

    /// `prevResult`, or code 7 naming the verb that needs it.
    pub fn require_prev_result(&self, verb: &str) -> Result<&CniResult, Error> {
        self.prev_result.as_ref().ok_or_else(|| {
            Error::invalid_config(format!(
                "{verb} requires prevResult, but the config has none"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn common_keys_and_capabilities() {
        let c = NetConf::from_value(json!({
            "cniVersion": "1.1.0", "name": "tnet", "type": "bridge",
            "capabilities": {"mac": true},
            "ipam": {"type": "ipam", "ranges": [[{"subnet": "10.1.0.0/24"}]]},
            "dns": {"nameservers": ["1.1.1.1"]},
            "args": {"cni": {"ips": ["10.1.0.9"], "mac": "c2:00:00:00:00:01"}},
            "runtimeConfig": {"mac": "c2:11:22:33:44:55", "ips": ["10.1.0.7/24"],
                              "ipRanges": [[{"subnet": "10.2.0.0/24", "rangeStart": "10.2.0.10"}]],
                              "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]}
        }))
        .unwrap();
        assert_eq!(c.name, "tnet");
        assert_eq!(c.ipam.as_ref().unwrap()["type"], json!("ipam"));
        assert_eq!(
            c.dns.clone().unwrap().nameservers,
            vec!["1.1.1.1".to_string()]
        );
        assert_eq!(c.runtime_config.mac.as_deref(), Some("c2:11:22:33:44:55"));
        assert_eq!(c.runtime_config.ips, vec!["10.1.0.7/24".to_string()]);
        assert_eq!(
            c.runtime_config.ip_ranges[0][0].range_start.as_deref(),
            Some("10.2.0.10")
        );
        assert!(c.runtime_config.rest.contains_key("portMappings"));
        assert_eq!(c.args_cni("mac"), Some(&json!("c2:00:00:00:00:01")));
        assert_eq!(c.prev_result.as_ref().unwrap().ips.len(), 1);
        assert!(c.valid_attachments.is_none());
    }

    #[test]
    fn missing_version_defaults_and_wrong_types_name_the_key() {
        let c = NetConf::from_value(json!({"name": "n"})).unwrap();
        assert_eq!(c.cni_version, "0.1.0");
        // libcni's version decoder fails on a non-string cniVersion: a decode error (code 6)
        for bad in [json!(1), json!(true), json!(["1.0.0"]), json!({"v": 1})] {
            let e = NetConf::from_value(json!({"CNIVersion": bad})).unwrap_err();
            assert_eq!(e.code(), 6, "{e}");
            assert!(
                e.to_string().starts_with(
                    "failed to decode network config: key \"CNIVersion\": expected a string"
                ),
                "{e}"
            );
        }
        let e = NetConf::from_value(json!({"name": 1})).unwrap_err();
        assert_eq!(e.code(), 7, "{e}");
        let e = NetConf::from_value(json!({"runtimeConfig": {"ips": "10.0.0.1"}})).unwrap_err();
        assert!(e.to_string().contains("runtimeConfig.ips"), "{e}");
        let e = NetConf::from_value(json!([1])).unwrap_err();
        assert_eq!(e.code(), 6);
    }

    #[test]
    fn typed_plugin_view_names_the_key() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Mine {
            mtu: Option<u32>,
            bridge: String,
        }
        let c = NetConf::from_value(json!({"name": "n", "bridge": "br0", "mtu": "9001"})).unwrap();
        let e = c.parse_as::<Mine>().unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(
            e.to_string()
                .starts_with("invalid network config: key \"mtu\""),
            "{e}"
        );
        let c = NetConf::from_value(json!({"name": "n"})).unwrap();
        let e = c.parse_as::<Mine>().unwrap_err();
        assert!(e.to_string().contains("missing field `bridge`"), "{e}");
    }

    #[test]
    fn gc_attachments_new_and_legacy_keys() {
        let c = NetConf::from_value(json!({"cni.dev/valid-attachments": [
            {"containerID": "c1", "ifname": "eth0"}]}))
        .unwrap();
        assert_eq!(
            c.valid_attachments.unwrap(),
            vec![Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into()
            }]
        );
        let c = NetConf::from_value(json!({"cni.dev/attachments": []})).unwrap();
        assert_eq!(c.valid_attachments, Some(vec![]));
    }

    #[test]
    fn common_keys_follow_go_rules() {
        let c = NetConf::from_value(json!({
            "CNIVersion": "1.0.0", "Name": "tnet", "TYPE": "bridge",
            "IPAM": {"type": "ipam", "Routes": null}, "DNS": {"Nameservers": ["1.1.1.1"], "search": null},
            "Args": {"CNI": {"IPs": ["10.1.0.9"], "mac": null}},
            "RuntimeConfig": {"MAC": "c2:11:22:33:44:55", "IpRanges": [[{"Subnet": "10.2.0.0/24"}]],
                              "portMappings": null},
            "PrevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]},
            "CNI.dev/Valid-Attachments": [{"ContainerId": "c1", "IFNAME": "eth0"}]
        }))
        .unwrap();
        assert_eq!(
            (
                c.cni_version.as_str(),
                c.name.as_str(),
                c.plugin_type.as_str()
            ),
            ("1.0.0", "tnet", "bridge")
        );
        assert_eq!(c.ipam.as_ref().unwrap()["type"], json!("ipam"));
        assert_eq!(
            c.dns.as_ref().unwrap().nameservers,
            vec!["1.1.1.1".to_string()]
        );
        assert_eq!(c.args_cni("ips"), Some(&json!(["10.1.0.9"])));
        assert_eq!(c.args_cni("mac"), None);
        assert_eq!(c.runtime_config.mac.as_deref(), Some("c2:11:22:33:44:55"));
        assert_eq!(c.runtime_config.ip_ranges[0][0].subnet, "10.2.0.0/24");
        assert!(c.runtime_config.rest.is_empty());
        assert_eq!(c.prev_result.unwrap().ips.len(), 1);
        assert_eq!(
            c.valid_attachments.unwrap(),
            vec![Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into()
            }]
        );
        assert_eq!(version_hint(&json!({"cniversion": "0.4.0"})), Some("0.4.0"));
        assert_eq!(version_hint(&json!({"cniVersion": 4})), None);
        // null common keys are absent
        let c = NetConf::from_value(json!({"cniVersion": null, "name": "n", "ipam": null,
            "dns": null, "args": null, "runtimeConfig": null, "prevResult": null,
            "cni.dev/valid-attachments": null}))
        .unwrap();
        assert_eq!(c.cni_version, "0.1.0");
        assert!(c.ipam.is_none() && c.dns.is_none() && c.args.is_none());
        let c = NetConf::from_value(json!({"ipam": {"type": null, "Routes": null}})).unwrap();
        assert!(c.ipam.is_none());
        assert!(c.prev_result.is_none() && c.valid_attachments.is_none());
        // wrong types name the key as written
        let e = NetConf::from_value(json!({"Name": 1})).unwrap_err();
        assert!(
            e.to_string().contains("key \"Name\": expected a string"),
            "{e}"
        );
        let e = NetConf::from_value(json!({"RuntimeConfig": {"IPs": "10.0.0.1"}})).unwrap_err();
        assert!(
            e.to_string()
                .contains("key \"RuntimeConfig.IPs\": invalid type"),
            "{e}"
        );
        let e = NetConf::from_value(json!({"Ipam": [1]})).unwrap_err();
        assert!(
            e.to_string().contains("key \"Ipam\": expected an object"),
            "{e}"
        );
    }
}
