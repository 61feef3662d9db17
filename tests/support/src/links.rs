//! Links of a namespace as `ip -j` shows them.

use serde_json::Value;

pub use netns_fixtures::flags;

use crate::TestNs;

/// Names of the links in a namespace, sorted.
pub fn link_names(ns: &TestNs) -> std::collections::BTreeSet<String> {
    ns.ip_json(&["link", "show"])
        .as_array()
        .expect("ip -j link show: an array")
        .iter()
        .map(|l| l["ifname"].as_str().expect("ifname").to_string())
        .collect()
}

/// What [`link_names`] returns for a namespace holding only `lo`.
pub fn only_lo() -> std::collections::BTreeSet<String> {
    std::collections::BTreeSet::from(["lo".to_string()])
}

/// Whether an `ip -j link` object is administratively up.
pub fn is_up(link: &Value) -> bool {
    flags(link).iter().any(|f| f == "UP")
}
