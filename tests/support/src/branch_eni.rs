//! What the `branch-eni` tests of both tiers share: a simulated host with a fake trunk
//! ([`Trunked`]) and the ECS agent's vlan-mode config. Used by the namespace tier
//! (`tests/netns/tests/branch_eni`) and by the VLAN tests in user-mode-linux
//! (`tests/system/tests/branch_eni_vlan`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::*;

/// The plugin binary.
pub fn plugin() -> PathBuf {
    bin("branch-eni")
}

/// A simulated host with a trunk: a veth end `trk<suffix>` in the host namespace (where the
/// plugin runs) whose peer `trp<suffix>` sits in the subnet namespace, both up.
pub struct Trunked {
    pub sim: SimHost,
    pub name: String,
    pub mac: String,
    pub peer: String,
}

impl Trunked {
    pub fn new(prefix: &str, mtu: u32) -> Trunked {
        let sim = SimHost::new(prefix);
        let t = sim.add_fake_trunk(&netns_fixtures::TrunkSpec {
            mtu: Some(mtu),
            ..Default::default()
        });
        Trunked {
            sim,
            name: t.name,
            mac: t.mac,
            peer: t.peer_name,
        }
    }

    /// Runs the plugin in the host namespace.
    pub fn call(
        &self,
        command: &str,
        container_id: &str,
        netns: &TestNs,
        ifname: &str,
        conf: &Value,
    ) -> PluginOutput {
        self.call_env(
            cni_env(
                command,
                container_id,
                &netns.path().display().to_string(),
                ifname,
            ),
            conf,
        )
    }

    pub fn call_env(&self, env: Vec<(String, String)>, conf: &Value) -> PluginOutput {
        call(&plugin(), Some(&self.sim.host), &env, conf)
    }

    /// Names of the links in the host namespace.
    pub fn host_links(&self) -> BTreeSet<String> {
        link_names(&self.sim.host)
    }
}

/// A vlan-mode config as the ECS agent writes it (strings everywhere), by trunk name.
pub fn vlan_conf(v: &str, trunk: &str, vlan: u16, mac: &str) -> Value {
    json!({
        "cniVersion": v, "name": "branch-net", "type": "vpc-branch-eni",
        "trunkName": trunk, "branchVlanID": vlan.to_string(), "branchMACAddress": mac,
        "ipAddresses": [], "gatewayIPAddresses": [], "blockInstanceMetadata": false,
        "interfaceType": "vlan"
    })
}
