//! The network configuration on stdin: the common keys, `runtimeConfig`, `args`, `prevResult`,
//! GC's attachments, and typed access to a plugin's own keys.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{CniResult, Dns, Error};

/// The keys every plugin config shares. The whole object stays in `raw` for the plugin's own
/// typed view ([`NetConf::parse_as`]) and for delegation.
#[derive(Clone, Debug, Default)]
pub struct NetConf {
    /// As written; `"0.1.0"` when absent (as libcni assumes).
    pub cni_version: String,
    pub name: String,
    pub plugin_type: String,
    /// The `ipam` object, if any (an empty object counts as none).
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

/// Typed capabilities from `runtimeConfig`; other capabilities stay in `rest`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    pub mac: Option<String>,
    pub ips: Vec<String>,
    #[serde(rename = "ipRanges")]
    pub ip_ranges: Vec<Vec<RangeConf>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
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

/// Deserializes `v` into `T`, naming the key path of the first mismatch (code 7).
pub fn parse_value<T: DeserializeOwned>(v: &Value, prefix: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let key = match (prefix.is_empty(), path.as_str()) {
            (true, p) => p.to_owned(),
            (false, ".") => prefix.to_owned(),
            (false, p) => format!("{prefix}.{p}"),
        };
        Error::invalid_config(format!("key \"{key}\": {}", e.inner()))
    })
}

impl NetConf {
    /// Parses the stdin object (already decoded JSON). Name validation is done by the dispatcher.
    pub fn from_value(v: Value) -> Result<NetConf, Error> {
        let Value::Object(raw) = v else {
            return Err(Error::Decode("network config must be a JSON object".into()));
        };
        let string = |key: &str| -> Result<Option<String>, Error> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::invalid_config(format!(
                    "key \"{key}\": expected a string, got {other}"
                ))),
            }
        };
        let cni_version = string("cniVersion")?.unwrap_or_else(|| "0.1.0".to_owned());
        let name = string("name")?.unwrap_or_default();
        let plugin_type = string("type")?.unwrap_or_default();
        let ipam = match raw.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.is_empty() => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "key \"ipam\": expected an object, got {other}"
                )));
            }
        };
        let dns = match raw.get("dns") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_value::<Dns>(v, "dns")?),
        };
        let runtime_config = match raw.get("runtimeConfig") {
            None | Some(Value::Null) => RuntimeConfig::default(),
            Some(v) => parse_value(v, "runtimeConfig")?,
        };
        let prev_result = match raw.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v) => Some(CniResult::from_value(v)?),
        };
        let attachments = raw
            .get("cni.dev/valid-attachments")
            .map(|v| (v, "cni.dev/valid-attachments"))
            .or_else(|| {
                raw.get("cni.dev/attachments")
                    .map(|v| (v, "cni.dev/attachments"))
            });
        let valid_attachments = match attachments {
            None | Some((Value::Null, _)) => None,
            Some((v, key)) => Some(parse_value(v, key)?),
        };
        Ok(NetConf {
            cni_version,
            name,
            plugin_type,
            ipam,
            dns,
            args: raw.get("args").cloned(),
            runtime_config,
            prev_result,
            valid_attachments,
            raw,
        })
    }

    /// The plugin's own typed view of the whole config object; a wrong type names the key (code 7).
    /// Unknown keys are ignored by the target type (no `deny_unknown_fields`).
    pub fn parse_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        parse_value(&Value::Object(self.raw.clone()), "")
    }

    /// `args.cni.<key>`, the spec's place for per-attachment metadata (`ips`, `mac`, `labels`).
    pub fn args_cni(&self, key: &str) -> Option<&Value> {
        self.args.as_ref()?.get("cni")?.get(key)
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
        let e = NetConf::from_value(json!({"cniVersion": 1})).unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.to_string().contains("cniVersion"), "{e}");
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
}
