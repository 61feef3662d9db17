//! The crate's error type, its one mapping to CNI codes, and the step label every ADD error
//! carries.

use cni_spec::code;

use crate::nft::NftError;

/// What can go wrong in the bridge plugin itself and in its in-process IPAM (a delegate's and
/// `cni-spec`'s errors are already CNI errors).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    /// A namespace or a sysctl could not be opened, entered, read or written.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Ipconf(#[from] ipconf::Error),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(
        "interface named {name} already exists in netns {netns}, but is a {kind}, not a bridge"
    )]
    NotABridge {
        name: String,
        kind: String,
        netns: String,
    },
    #[error(
        "bridge {bridge} in netns {netns}: the kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), which \"{key}\" needs"
    )]
    NoVlanFiltering {
        bridge: String,
        netns: String,
        key: &'static str,
    },
    #[error(
        "interface named {name} already exists in netns {netns}, but is a {kind}, not the veth of bridge {bridge}'s VLAN {vlan} gateway"
    )]
    NotAVlanGateway {
        name: String,
        kind: String,
        netns: String,
        bridge: String,
        vlan: u16,
    },
    #[error("container interface {ifname} already exists in netns {netns}")]
    IfaceExists { ifname: String, netns: String },
    #[error(
        "no free host-side veth name after {attempts} random attempts in the plugin's netns (last: {last})"
    )]
    NoVethName { attempts: usize, last: String },
    #[error(
        "{bridge} in netns {netns} already has address {existing}, which differs from {wanted}{hint}"
    )]
    BridgeAddress {
        /// `bridge cni0`, or `VLAN gateway interface cni0.100`.
        bridge: String,
        netns: String,
        existing: String,
        wanted: String,
        hint: &'static str,
    },
    #[error("IPAM ({ipam}) result unusable: {reason}")]
    IpamResult { ipam: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the kernel's state differs from prevResult: {}", .0.join("; "))]
    Check(Vec<String>),
}

impl BridgeError {
    /// The CNI code: IPAM's own (11 for a busy store), 7 for configurations and IPAM results
    /// that cannot work, 101 when the kernel lacks a feature, else 100.
    pub fn code(&self) -> u32 {
        match self {
            BridgeError::Ipam(e) => e.code(),
            BridgeError::Netlink(e) => cni_glue::nl_code(e),
            BridgeError::Ipconf(e) => cni_glue::ipconf_code(e),
            BridgeError::IpamResult { .. } | BridgeError::Invalid(_) => code::INVALID_CONFIG,
            BridgeError::NoVlanFiltering { .. } => code::KERNEL_UNSUPPORTED,
            _ => code::OPERATION_FAILED,
        }
    }
}

impl From<BridgeError> for cni_spec::Error {
    fn from(e: BridgeError) -> cni_spec::Error {
        cni_spec::Error::plugin(e.code(), e.to_string())
    }
}

/// Prefixes an error with the step that failed, keeping its code and details.
pub fn at(step: &str, e: impl Into<cni_spec::Error>) -> cni_spec::Error {
    let e: cni_spec::Error = e.into();
    let code = e.code();
    let details = match &e {
        cni_spec::Error::Plugin { details, .. } => details.clone(),
        _ => String::new(),
    };
    let out = cni_spec::Error::plugin(code, format!("{step}: {e}"));
    if details.is_empty() {
        out
    } else {
        out.with_details(details)
    }
}

/// `.map_err(step("..."))` for this crate's errors (and everything that converts into them).
pub fn step<E: Into<BridgeError>>(name: &str) -> impl FnOnce(E) -> cni_spec::Error + '_ {
    move |e| at(name, e.into())
}
