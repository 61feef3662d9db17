//! What the eni's kill -9 and metadata tests share: one fake ENI's MAC and config, and how to
//! start the plugin in the simulated host.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_support::*;

pub const MAC: &str = "0a:1b:2c:3d:4e:5f";

pub fn conf() -> Value {
    json!({"cniVersion": "1.0.0", "name": "eni-net", "type": "eni", "eniMACAddress": MAC,
           "eniIPAddresses": ["10.0.1.5/24"], "gatewayIPAddresses": ["10.0.1.1"],
           "blockInstanceMetadata": true})
}

/// The names of the links of `ns` that carry the ENI's MAC.
pub fn with_mac(ns: &TestNs) -> Vec<String> {
    ns.ip_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["address"].as_str() == Some(MAC))
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

pub fn start(sim: &SimHost, verb: &str, netns: &str) -> std::process::Child {
    let mut cmd = Command::new(bin("eni"));
    cmd.env_clear()
        .envs(cni_env(verb, "ctr-1", netns, "eth0"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = sim.host.spawn(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf().to_string().as_bytes());
    child
}
