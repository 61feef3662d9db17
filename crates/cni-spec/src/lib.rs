//! `cni-spec`: the Container Network Interface protocol, spec versions 0.3.0 to 1.1.0.
//!
//! A plugin implements [`Plugin`] and its `main` is `cni_spec::run(MyPlugin)`. The dispatcher
//! handles `--version`/`--capabilities`, the "about" line, VERSION, the per-verb CNI_*
//! environment ([`Env`]), the config ([`NetConf`]), version negotiation and output in the
//! requested version ([`CniResult::to_json`]), and error objects on stdout ([`Error`]).

mod conf;
mod delegate;
mod env;
mod error;
pub mod log;
mod result;
mod skel;
mod version;

pub use conf::{Attachment, NetConf, RangeConf, RuntimeConfig, parse_value};
pub use delegate::{delegate, find_in_path};
pub use env::{
    CniArgs, Command, Env, NetnsArg, NetnsUse, is_cni_identifier, validate_container_id,
    validate_ifname,
};
pub use error::{Error, code};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use skel::{Invocation, Plugin, STDIN_LIMIT, run, run_with};
pub use version::SpecVersion;
