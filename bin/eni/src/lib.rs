//! `eni`: moves an AWS Elastic Network Interface from the host into the container's network
//! namespace and configures it. A drop-in for amazon-ecs-cni-plugins' `ecs-eni` and
//! amazon-vpc-cni-plugins' `vpc-eni` (both config dialects, keys matched case-insensitively).
//!
//! - ADD: find the ENI in the host namespace by `eniName` or MAC, waiting a bounded time for a
//!   late one (code 11 after `eniWaitTimeout`); refuse the loopback and the interface carrying
//!   the host's default route; record its host name and MTU in its alias; move it into
//!   CNI_NETNS; rename it to CNI_IFNAME; then [`ipconf::apply`]: MTU, IMDS blackholes, every
//!   address (IPv6 without DAD), up, one default route per gateway. `stay-down` /
//!   `opStateDown`: move only. Any failure after the move rolls back: the ENI returns to the
//!   host with its name, MTU, alias and up state.
//! - DEL: find the ENI in the container (CNI_IFNAME, else MAC or `eniName`), bring it down,
//!   restore MTU, alias and name, move it back to the plugin's own (host) namespace. Succeeds
//!   when the namespace, or the ENI in it, is gone; repeated DELs succeed.
//! - CHECK: name, MAC, MTU, up state, addresses, default routes and IMDS blackholes against the
//!   config and prevResult. STATUS and GC: nothing to do (no state outside the container).
//!
//! Layout: each verb is the list of its steps in its own module (`add`, `del`, `check`);
//! `config` reads the two dialects, `host` finds the ENI and moves it back. Every step returns
//! [`EniError`], which the [`Plugin`] impl returns as it is (`cni_spec::main!` turns it into the
//! CNI error object); ADD records what it changed in a [`cni_spec::Rollback`] and undoes it,
//! newest first, when a later step fails.

mod add;
mod check;
mod config;
mod del;
mod error;
mod host;

use cni_spec::{CniResult, Invocation, Plugin};

pub use config::{DEFAULT_WAIT, Dialect, EniConf, WAIT_ENV, parse_duration};
pub use error::EniError;
pub use host::{MARKER, Origin};

/// The eni plugin.
pub struct Eni;

impl Plugin for Eni {
    type Error = EniError;
    const NAME: &'static str = "eni";
    const ABOUT: &'static str =
        "moves an AWS ENI into the container network namespace and configures it";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, EniError> {
        add::add(inv)
    }

    fn del(&self, inv: &Invocation) -> Result<(), EniError> {
        del::del(inv)
    }

    fn check(&self, inv: &Invocation) -> Result<(), EniError> {
        check::check(inv)
    }
}

/// The validated config of an ADD or CHECK (`$ENI_WAIT_TIMEOUT` from the invocation's
/// environment).
fn parse(inv: &Invocation) -> Result<EniConf, EniError> {
    EniConf::parse(
        &inv.conf.raw,
        &inv.conf.plugin_type,
        &inv.program,
        inv.vars.get(WAIT_ENV),
    )
}
