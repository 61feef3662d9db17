//! STATUS: whether ADD can be served. Code 50 when the config needs `nft` and there is none,
//! or needs bridge VLAN filtering and the kernel lacks it; then IPAM STATUS (code 50 when its
//! pool is exhausted).

use cni_spec::{Command, Invocation};

use crate::config::BridgeConfig;
use crate::error::{BridgeError, StepExt};
use crate::ipam_glue;
use crate::nft::Nft;

/// STATUS's steps.
pub fn status(inv: &Invocation) -> Result<(), BridgeError> {
    let cfg = BridgeConfig::load(inv)?;
    if let Some(what) = cfg.nft_feature() {
        Nft::find(&inv.vars, what).map_err(|e| BridgeError::from(e).unavailable())?;
    }
    if cfg.vlan.filtering && lacks_vlan_filtering(&cfg.bridge) {
        let e = BridgeError::NoVlanFiltering {
            bridge: cfg.bridge.clone(),
            netns: netns::Netns::current()
                .map(|n| n.path().display().to_string())
                .unwrap_or_default(),
            key: if cfg.vlan.vlan.is_some() {
                "vlan"
            } else {
                "vlanTrunk"
            },
        };
        return Err(e.unavailable());
    }
    ipam_glue::forward(inv, &cfg.ipam, Command::Status).step("STATUS: IPAM STATUS")
}

/// Whether the kernel surely lacks bridge VLAN filtering: the existing bridge reports no
/// default PVID, or, with no bridge yet, one made with `vlan_filtering` in a throwaway
/// namespace is refused with EOPNOTSUPP. Anything that cannot be probed counts as present
/// (STATUS is informational; ADD gives the real answer).
fn lacks_vlan_filtering(bridge: &str) -> bool {
    let Ok(mut host) = nl::Handle::current() else {
        return false;
    };
    match host.link_by_name(bridge) {
        Ok(Some(l)) if l.kind.as_deref() == Some("bridge") => host
            .bridge_vlan_state(l.index)
            .ok()
            .flatten()
            .is_some_and(|s| s.default_pvid.is_none()),
        Ok(None) => netns::Netns::in_fresh(|| {
            nl::Handle::current().is_ok_and(|mut h| {
                h.create_bridge_with(&nl::BridgeSpec {
                    name: "cni-vlan-probe",
                    vlan_filtering: true,
                    ..nl::BridgeSpec::default()
                })
                .is_err_and(|e| e.is_not_supported())
            })
        })
        .unwrap_or(false),
        _ => false,
    }
}
