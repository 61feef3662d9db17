//! What the bridge's fault and load tests (`rollback`, `kill9`, `concurrency`) share: a config
//! with in-process or delegated IPAM, the environment with a chosen CNI_PATH, and readers of
//! veths and leases.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_support::*;

pub fn conf(bridge: &str, net: &str, data: &str, ipam_type: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": bridge,
        "ipam": {"type": ipam_type, "dataDir": data, "ranges": [[{"subnet": "10.93.0.0/24"}]]}})
}

pub fn env(verb: &str, cid: &str, netns: &Path, cni_path: &str) -> Vec<(String, String)> {
    let mut e = cni_env(verb, cid, &netns.display().to_string(), "eth0");
    e[4].1 = cni_path.to_string();
    e
}

/// The veth links of a namespace, by name.
pub fn veths(ns: &TestNs) -> Vec<String> {
    ns.ip_json(&["link", "show", "type", "veth"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

pub fn leases(data: &str, net: &str) -> (Vec<String>, Vec<String>) {
    let mut leases = Vec::new();
    let mut temps = Vec::new();
    for e in fs::read_dir(Path::new(data).join(net))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.parse::<std::net::IpAddr>().is_ok() {
            leases.push(n);
        } else if n.starts_with(".tmp-") {
            temps.push(n);
        }
    }
    (leases, temps)
}

pub fn start(host: &TestNs, env: &[(String, String)], conf: &Value) -> std::process::Child {
    let mut cmd = Command::new(bin("bridge"));
    cmd.env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = host.spawn(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf.to_string().as_bytes());
    child
}
