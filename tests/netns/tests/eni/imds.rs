//! The documented limit of the metadata block: a task with CAP_NET_ADMIN can remove a blackhole
//! route.

use test_support::*;

use crate::harness::*;

#[test]
fn the_metadata_block_is_a_route_that_cap_net_admin_can_remove() {
    // Documented in docs/reliability.md: blockInstanceMetadata installs blackhole routes in
    // the task's namespace; a process there with CAP_NET_ADMIN can delete them.
    let sim = SimHost::new("hem");
    let _eni = sim.add_fake_eni(MAC, Some("10.0.1.1/24"), None, 1500);
    let ctr = TestNs::new("hemc");
    let netns = ctr.path().display().to_string();
    let env = cni_env("ADD", "ctr-1", &netns, "eth0");
    let add = call(&bin("eni"), Some(&sim.host), &env, &conf());
    assert_eq!(add.status, 0, "{add:?}");
    let blackholes = |ns: &TestNs| -> Vec<String> {
        ns.ip_json(&["-4", "route", "show", "type", "blackhole"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(blackholes(&ctr), ["169.254.169.254"]);
    // root in the task namespace (what a task with CAP_NET_ADMIN is) removes it
    ctr.ip_ok(&["route", "del", "blackhole", "169.254.169.254"]);
    assert!(blackholes(&ctr).is_empty());
    // CHECK notices; DEL still cleans up
    let mut check_env = env.clone();
    check_env[0].1 = "CHECK".into();
    let check = call(
        &bin("eni"),
        Some(&sim.host),
        &check_env,
        &with_prev_result(&conf(), &add.json()),
    );
    assert_eq!(
        check.status, 1,
        "CHECK must report the missing blackhole: {check:?}"
    );
    let mut del_env = env.clone();
    del_env[0].1 = "DEL".into();
    assert_eq!(
        call(&bin("eni"), Some(&sim.host), &del_env, &conf()).status,
        0
    );
    assert_eq!(with_mac(&sim.host).len(), 1);
}
