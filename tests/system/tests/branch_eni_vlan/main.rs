//! The VLAN tests of `branch-eni`, inside user-mode-linux (system tier).
//!
//! The host kernel has no 802.1Q, tun/tap or macvtap, so the tests in `guest.rs` (module
//! `guest`) are `#[ignore]`d on the host; [`vm_tests_pass_inside_user_mode_linux`] boots one
//! user-mode-linux guest (netns-fixtures/uml-run.sh, kernel with 8021q, tun, macvtap), runs
//! this binary's ignored tests there with `IN_UML=1`, then checks that every one of them
//! passed. Without linux.uml that test fails, unless `SKIP_UML=1`. What needs no VLAN is
//! tested on the host, in the namespace tier (`tests/netns/tests/branch_eni`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod guest;

use test_support::branch_eni::plugin;
use test_support::*;

#[test]
fn vm_tests_pass_inside_user_mode_linux() {
    plugin(); // fails early with a hint when the binary is not built
    run_ignored_tests_in_uml("guest::", 10, &[]);
}
