//! One result model (the CNI 1.1 superset), read leniently and printed in any advertised version.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, SpecVersion};

/// A CNI result: what ADD returns and what `prevResult` carries.
///
/// Parsing is lenient: host interfaces without `sandbox`, a missing `dns`, `ips[].version` of old
/// versions (dropped; it is derived from the address when printing) and unknown keys (kept and
/// printed back) are all accepted.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CniResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: Option<String>,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub sandbox: Option<String>,
    #[serde(rename = "socketPath")]
    pub socket_path: Option<String>,
    #[serde(rename = "pciID")]
    pub pci_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct IpConfig {
    /// Index into `interfaces`.
    #[serde(default)]
    pub interface: Option<usize>,
    /// Address with the subnet's prefix length, e.g. `10.1.0.5/24`.
    pub address: IpNetwork,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// `"4"`/`"6"` in 0.3.x/0.4.0 results; ignored on input, derived on output.
    #[serde(default, rename = "version", skip_serializing)]
    pub legacy_version: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Route {
    pub dst: IpNetwork,
    #[serde(default)]
    pub gw: Option<IpAddr>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub advmss: Option<u32>,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub table: Option<u32>,
    #[serde(default)]
    pub scope: Option<u8>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

impl IpConfig {
    pub fn new(address: IpNetwork, gateway: Option<IpAddr>, interface: Option<usize>) -> IpConfig {
        IpConfig {
            interface,
            address,
            gateway,
            legacy_version: None,
            extra: Map::new(),
        }
    }
}

impl Route {
    pub fn new(dst: IpNetwork, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
            extra: Map::new(),
        }
    }
}

impl Interface {
    pub fn new(name: impl Into<String>, mac: Option<String>, sandbox: Option<String>) -> Interface {
        Interface {
            name: name.into(),
            mac,
            sandbox,
            ..Interface::default()
        }
    }
}

fn put<T: Serialize>(m: &mut Map<String, Value>, key: &str, v: &Option<T>) {
    if let Some(v) = v {
        if let Ok(v) = serde_json::to_value(v) {
            m.insert(key.to_owned(), v);
        }
    }
}

fn put_extra(m: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (k, v) in extra {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

impl CniResult {
    /// Parses a result (e.g. `prevResult`) leniently.
    pub fn from_value(v: &Value) -> Result<CniResult, Error> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            Error::invalid_config(format!("prevResult.{path}: {}", e.inner()))
        })
    }

    /// The result as printed for `version`: `ips[].version` only below 1.0.0, interface and route
    /// fields of 1.1 only in 1.1.0, empty lists omitted, `dns` omitted in 1.1.0 when empty.
    pub fn to_json(&self, version: SpecVersion) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(version.as_str()));
        if !self.interfaces.is_empty() {
            let list = self.interfaces.iter().map(|i| i.to_json(version)).collect();
            m.insert("interfaces".into(), Value::Array(list));
        }
        if !self.ips.is_empty() {
            let list = self.ips.iter().map(|i| i.to_json(version)).collect();
            m.insert("ips".into(), Value::Array(list));
        }
        if !self.routes.is_empty() {
            let list = self.routes.iter().map(|r| r.to_json(version)).collect();
            m.insert("routes".into(), Value::Array(list));
        }
        if !(version.has_1_1_fields() && self.dns.is_empty()) {
            if let Ok(dns) = serde_json::to_value(&self.dns) {
                m.insert("dns".into(), dns);
            }
        }
        put_extra(&mut m, &self.extra);
        Value::Object(m)
    }
}

impl Interface {
    fn to_json(&self, version: SpecVersion) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.as_str()));
        put(&mut m, "mac", &self.mac.as_ref().filter(|s| !s.is_empty()));
        if version.has_1_1_fields() {
            put(&mut m, "mtu", &self.mtu.filter(|&v| v != 0));
        }
        put(
            &mut m,
            "sandbox",
            &self.sandbox.as_ref().filter(|s| !s.is_empty()),
        );
        if version.has_1_1_fields() {
            put(
                &mut m,
                "socketPath",
                &self.socket_path.as_ref().filter(|s| !s.is_empty()),
            );
            put(
                &mut m,
                "pciID",
                &self.pci_id.as_ref().filter(|s| !s.is_empty()),
            );
        }
        put_extra(&mut m, &self.extra);
        Value::Object(m)
    }
}

impl IpConfig {
    fn to_json(&self, version: SpecVersion) -> Value {
        let mut m = Map::new();
        if version.has_ip_version_field() {
            let v = if self.address.is_ipv4() { "4" } else { "6" };
            m.insert("version".into(), Value::from(v));
        }
        put(&mut m, "interface", &self.interface);
        m.insert("address".into(), Value::from(self.address.to_string()));
        put(&mut m, "gateway", &self.gateway);
        put_extra(&mut m, &self.extra);
        Value::Object(m)
    }
}

impl Route {
    fn to_json(&self, version: SpecVersion) -> Value {
        let mut m = Map::new();
        m.insert("dst".into(), Value::from(self.dst.to_string()));
        put(&mut m, "gw", &self.gw);
        if version.has_1_1_fields() {
            put(&mut m, "mtu", &self.mtu);
            put(&mut m, "advmss", &self.advmss);
            put(&mut m, "priority", &self.priority);
            put(&mut m, "table", &self.table);
            put(&mut m, "scope", &self.scope);
        }
        put_extra(&mut m, &self.extra);
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A bridge-style 1.1 result with every field we model, as JSON.
    fn full_json() -> serde_json::Value {
        json!({
            "cniVersion": "1.1.0",
            "interfaces": [
                {"name": "cni0", "mac": "02:11:22:33:44:55"},
                {"name": "veth1a2b3c4d", "mac": "aa:bb:cc:dd:ee:01", "mtu": 9001},
                {"name": "eth0", "mac": "0a:58:0a:01:00:05", "mtu": 9001,
                 "sandbox": "/run/netns/t1", "socketPath": "/s", "pciID": "0000:00:01.0"}
            ],
            "ips": [
                {"interface": 2, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
                {"interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"}
            ],
            "routes": [
                {"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400, "advmss": 1360,
                 "priority": 10, "table": 100, "scope": 0},
                {"dst": "169.254.170.2/32"}
            ],
            "dns": {"nameservers": ["10.1.0.1"], "search": ["example.com"]}
        })
    }

    /// [`full_json`] parsed.
    fn full() -> CniResult {
        CniResult::from_value(&full_json()).unwrap()
    }

    /// 1.1.0 in, 1.1.0 out: every field comes back exactly as written.
    #[test]
    fn golden_1_1_0() {
        assert_eq!(full().to_json(SpecVersion::V1_1_0), full_json());
    }

    #[test]
    fn golden_1_0_0_drops_1_1_fields_and_has_no_version() {
        let out = full().to_json(SpecVersion::V1_0_0).to_string();
        assert_eq!(
            out,
            concat!(
                r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"02:11:22:33:44:55"},"#,
                r#"{"name":"veth1a2b3c4d","mac":"aa:bb:cc:dd:ee:01"},"#,
                r#"{"name":"eth0","mac":"0a:58:0a:01:00:05","sandbox":"/run/netns/t1"}],"#,
                r#""ips":[{"interface":2,"address":"10.1.0.5/24","gateway":"10.1.0.1"},"#,
                r#"{"interface":2,"address":"fd00::5/64","gateway":"fd00::1"}],"#,
                r#""routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"169.254.170.2/32"}],"#,
                r#""dns":{"nameservers":["10.1.0.1"],"search":["example.com"]}}"#
            )
        );
    }

    #[test]
    fn golden_0_x_versions_carry_ip_version() {
        for v in [
            SpecVersion::V0_3_0,
            SpecVersion::V0_3_1,
            SpecVersion::V0_4_0,
        ] {
            let out = full().to_json(v).to_string();
            let expected = concat!(
                r#"{"cniVersion":"VER","interfaces":[{"name":"cni0","mac":"02:11:22:33:44:55"},"#,
                r#"{"name":"veth1a2b3c4d","mac":"aa:bb:cc:dd:ee:01"},"#,
                r#"{"name":"eth0","mac":"0a:58:0a:01:00:05","sandbox":"/run/netns/t1"}],"#,
                r#""ips":[{"version":"4","interface":2,"address":"10.1.0.5/24","gateway":"10.1.0.1"},"#,
                r#"{"version":"6","interface":2,"address":"fd00::5/64","gateway":"fd00::1"}],"#,
                r#""routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"169.254.170.2/32"}],"#,
                r#""dns":{"nameservers":["10.1.0.1"],"search":["example.com"]}}"#
            )
            .replace("VER", v.as_str());
            assert_eq!(out, expected, "{v}");
        }
    }

    #[test]
    fn loopback_result_in_every_version() {
        let r = CniResult {
            interfaces: vec![Interface::new(
                "lo",
                Some("00:00:00:00:00:00".into()),
                Some("/run/netns/x".into()),
            )],
            ips: vec![
                IpConfig::new("127.0.0.1/8".parse().unwrap(), None, Some(0)),
                IpConfig::new("::1/128".parse().unwrap(), None, Some(0)),
            ],
            ..CniResult::default()
        };
        for v in SpecVersion::ALL {
            let got = r.to_json(v).to_string();
            let ver = |fam: &str| {
                if v.has_ip_version_field() {
                    format!(r#""version":"{fam}","#)
                } else {
                    String::new()
                }
            };
            let dns = if v.has_1_1_fields() {
                ""
            } else {
                r#","dns":{}"#
            };
            let want = format!(
                r#"{{"cniVersion":"{v}","interfaces":[{{"name":"lo","mac":"00:00:00:00:00:00","sandbox":"/run/netns/x"}}],"ips":[{{{}"interface":0,"address":"127.0.0.1/8"}},{{{}"interface":0,"address":"::1/128"}}]{dns}}}"#,
                ver("4"),
                ver("6")
            );
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn lenient_input_keeps_unknown_keys_and_tolerates_missing_parts() {
        // 0.4.0 prevResult from a Go bridge: host interfaces without sandbox, no dns, versions.
        let v = json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "cni0", "mac": "02:00:00:00:00:01"},
                           {"name": "eth0", "sandbox": "/proc/1/ns/net", "vendorKey": 7}],
            "ips": [{"version": "4", "interface": 1, "address": "10.0.0.2/24", "gateway": "10.0.0.1"}],
            "futureTopLevel": {"a": 1}
        });
        let r = CniResult::from_value(&v).unwrap();
        assert_eq!(r.interfaces[0].sandbox, None);
        assert!(r.dns.is_empty());
        assert_eq!(r.interfaces[1].extra["vendorKey"], json!(7));
        let out = r.to_json(SpecVersion::V1_0_0);
        assert_eq!(out["interfaces"][1]["vendorKey"], json!(7));
        assert_eq!(out["futureTopLevel"], json!({"a": 1}));
        assert!(out["ips"][0].get("version").is_none());
        // and back to 0.4.0: the version comes back, derived from the address.
        assert_eq!(
            r.to_json(SpecVersion::V0_4_0)["ips"][0]["version"],
            json!("4")
        );
    }

    #[test]
    fn bad_prev_result_names_the_key() {
        let v = json!({"ips": [{"address": "not-an-ip"}]});
        let e = CniResult::from_value(&v).unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.to_string().contains("prevResult.ips[0].address"), "{e}");
    }
}
