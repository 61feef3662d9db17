//! `cni-spec`: the Container Network Interface protocol, spec versions 0.3.0 to 1.1.0.
//!
//! A plugin implements [`Plugin`] and its binary is `#![no_main] cni_spec::main!(MyPlugin);`. The dispatcher
//! handles `--version`/`--capabilities`, the "about" line, VERSION, the per-verb CNI_*
//! environment ([`Env`]; CNI_NETNS opened once as a `netns::Netns`, CNI_IFNAME checked as a
//! `netns::IfName`), the config ([`NetConf`]), version negotiation and output in the
//! requested version ([`CniResult::to_json`]), and error objects on stdout ([`Error`]).
//!
//! Every config key, common or a plugin's own, is read with Go's `encoding/json` rules: keys
//! match case-insensitively (the exact spelling first), the last of several members for one
//! field wins, and `null` counts as absent. The rules, and where we deliberately differ from
//! Go, are documented once in [`gojson`]; plugins get them through [`NetConf`],
//! [`NetConf::parse_as`], [`parse_value`] and [`gojson::GoObject`]. Other Go behaviours the
//! configs rely on (`time.ParseDuration`) are in [`gocompat`].
//!
//! A plugin returns its own typed error ([`Plugin::Error`], a [`PluginError`] that knows its
//! CNI code); the dispatcher turns it into the CNI error object once, at the edge. An ADD
//! undoes what it did when a later step fails with the one idiom of [`Rollback`].
//!
//! A plugin reads the environment only through [`Invocation::vars`] ([`Vars`]): [`run_c_main`]
//! fills it from the process (the one place that reads the process environment), [`run_with`]
//! takes it from its caller, and a delegate is started with exactly it.

mod conf;
mod delegate;
mod env;
mod error;
pub mod gocompat;
pub mod gojson;
pub mod log;
mod oom;
mod result;
mod rollback;
mod skel;
mod vars;
mod version;

pub use conf::{Attachment, NetConf, RangeConf, RuntimeConfig, version_hint};
pub use delegate::{delegate, find_in_path};
pub use env::{
    CniArgs, Command, Env, NetnsUse, is_cni_identifier, validate_container_id, validate_ifname,
};
pub use error::{Error, PluginError, code, errno_is_exhaustion};
pub use gojson::parse_value;
pub use oom::{ExitOnOom, set_reported_version};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use rollback::Rollback;
pub use skel::{Invocation, Plugin, STDIN_LIMIT, run_c_main, run_with};
pub use vars::Vars;
pub use version::SpecVersion;

/// The suite's version, as `--version` and the "about" line name it: the workspace version, plus
/// `+g<shortrev>` (and `.dirty`) for a build that is not the tag `v<version>` (`build.rs`;
/// `cargo xtask dist` sets it so the artifacts' names and every binary agree).
pub const VERSION: &str = env!("CNI_SUITE_VERSION");
