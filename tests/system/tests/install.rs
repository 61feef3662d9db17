//! examples/install.sh: installs the five plugins into PREFIX and, with ECS_NAMES=1, links the
//! names the ECS agent calls; a plugin called by an ECS name reads that plugin's dialect.

use std::process::Command;

use serde_json::json;
use test_support::*;

#[test]
fn install_with_ecs_names() {
    let prefix = std::env::temp_dir().join(format!(
        "install-test-{}-{}",
        std::process::id(),
        netns_fixtures::unique_suffix()
    ));
    let out = Command::new("bash")
        .arg(repo_root().join("examples").join("install.sh"))
        .env("PREFIX", &prefix)
        .env("BIN", bin_dir())
        .env("ECS_NAMES", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for p in ["eni", "branch-eni", "bridge", "ipam", "loopback"] {
        let f = prefix.join(p);
        assert!(f.is_file(), "{p} not installed");
        let same = std::fs::read(&f).unwrap() == std::fs::read(bin(p)).unwrap();
        assert!(same, "{p} differs from the build");
    }
    for (link, target) in [
        ("ecs-eni", "eni"),
        ("vpc-eni", "eni"),
        ("vpc-branch-eni", "branch-eni"),
        ("ecs-ipam", "ipam"),
        ("ecs-bridge", "bridge"),
    ] {
        let l = prefix.join(link);
        assert_eq!(
            std::fs::read_link(&l).unwrap().to_str(),
            Some(target),
            "{link}"
        );
        let caps = Command::new(&l).arg("--capabilities").output().unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&caps.stdout).unwrap(),
            json!({"capabilities": ["awsvpc-network-mode"]}),
            "{link}"
        );
    }
    // called as ecs-ipam, a config with only `id` and `ipv4-subnet` (no `type`) is the ecs dialect
    let ns = TestNs::new("inst");
    let data = prefix.join("ipam-data").join("eni-ipam.db");
    let conf = json!({"cniVersion": "0.3.0", "name": "network-name",
        "ipam": {"id": "0a:00:00:00:00:01", "ipv4-subnet": "169.254.172.0/22"}});
    let mut env = cni_env("ADD", "pause", &ns.path().display().to_string(), "ecs-eth0");
    env.push(("IPAM_DB_PATH".into(), data.display().to_string()));
    let add = call(&prefix.join("ecs-ipam"), None, &env, &conf);
    assert_eq!(
        add.json()["ips"][0]["address"],
        json!("169.254.172.2/22"),
        "{add:?}"
    );
    assert_eq!(
        ecs_leases(&data).get("169.254.172.2").map(String::as_str),
        Some("0a:00:00:00:00:01")
    );
    std::fs::remove_dir_all(&prefix).unwrap();
}
