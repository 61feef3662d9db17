//! examples/install.sh: installs the five plugins into PREFIX and, with ECS_NAMES=1, links the
//! names the ECS agent calls; a plugin called by an ECS name reads that plugin's dialect. A
//! reinstall on a live node never breaks an invocation: each file is renamed into place.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;
use test_support::*;

#[test]
fn install_with_ecs_names() {
    let prefix = temp_prefix("install-test");
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

fn temp_prefix(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        netns_fixtures::unique_suffix()
    ))
}

/// Removes the install directory and stops the calling thread, on failure too.
struct Cleanup {
    prefix: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

fn install_into(prefix: &Path) {
    let out = Command::new("bash")
        .arg(repo_root().join("examples").join("install.sh"))
        .env("PREFIX", prefix)
        .env("BIN", bin_dir())
        .env("ECS_NAMES", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// One CNI VERSION call of `plugin`; `Err` describes what went wrong (cannot exec, exit
/// status, output).
fn version_call(plugin: &Path) -> Result<(), String> {
    let mut child = Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("exec: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(br#"{"cniVersion":"1.0.0"}"#);
    }
    let out = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
    let expected = json!({"cniVersion": "1.1.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]});
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(v) if out.status.success() && v == expected => Ok(()),
        _ => Err(format!(
            "{}: stdout {:?} stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The runtime keeps calling the installed `loopback` while install.sh reinstalls every plugin
/// (and re-checks the ECS-name links) over and over: every exec sees a whole binary, the old or
/// the new one. At least 5 reinstalls and 200 execs during them (more reinstalls until then).
#[test]
fn reinstall_while_the_runtime_calls_the_plugins() {
    let prefix = temp_prefix("reinstall-test");
    let stop = Arc::new(AtomicBool::new(false));
    let _cleanup = Cleanup {
        prefix: prefix.clone(),
        stop: stop.clone(),
    };
    install_into(&prefix);
    let loopback = prefix.join("loopback");
    version_call(&loopback).unwrap();

    let execs = Arc::new(AtomicUsize::new(0));
    let caller = {
        let (stop, execs, loopback) = (stop.clone(), execs.clone(), loopback.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Err(e) = version_call(&loopback) {
                    failures.push(e);
                }
                execs.fetch_add(1, Ordering::SeqCst);
            }
            failures
        })
    };
    let mut installs = 0;
    while installs < 5 || (execs.load(Ordering::SeqCst) < 200 && installs < 500) {
        install_into(&prefix);
        installs += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let failures = caller.join().unwrap();
    let n = execs.load(Ordering::SeqCst);
    eprintln!(
        "{n} execs during {installs} reinstalls, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {n} execs failed during {installs} reinstalls; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(
        installs >= 5 && n >= 200,
        "{n} execs, {installs} reinstalls"
    );
    // nothing left behind: the plugins, the links, no temporary file
    let mut names: Vec<String> = std::fs::read_dir(&prefix)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "branch-eni",
            "bridge",
            "ecs-bridge",
            "ecs-eni",
            "ecs-ipam",
            "eni",
            "ipam",
            "loopback",
            "vpc-branch-eni",
            "vpc-eni"
        ]
    );
    for p in ["eni", "branch-eni", "bridge", "ipam", "loopback"] {
        let same = std::fs::read(prefix.join(p)).unwrap() == std::fs::read(bin(p)).unwrap();
        assert!(same, "{p} differs from the build");
    }
}

/// ECS_NAMES=1 never replaces a file it did not link (an Amazon plugin in the same directory)
/// and then changes nothing; ECS_NAMES=force does.
#[test]
fn ecs_names_never_shadow_a_foreign_plugin() {
    let prefix = temp_prefix("install-foreign");
    let _cleanup = Cleanup {
        prefix: prefix.clone(),
        stop: Arc::default(),
    };
    std::fs::create_dir_all(&prefix).unwrap();
    std::fs::write(prefix.join("ecs-bridge"), "amazon's ecs-bridge\n").unwrap();
    let run = |names: &str| {
        Command::new("bash")
            .arg(repo_root().join("examples").join("install.sh"))
            .env("PREFIX", &prefix)
            .env("BIN", bin_dir())
            .env("ECS_NAMES", names)
            .output()
            .unwrap()
    };
    let out = run("1");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ecs-bridge is a file (20 bytes), not our link to bridge"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(prefix.join("ecs-bridge")).unwrap(),
        b"amazon's ecs-bridge\n"
    );
    for link in ["ecs-eni", "vpc-eni", "vpc-branch-eni", "ecs-ipam"] {
        assert!(prefix.join(link).symlink_metadata().is_err(), "{link}");
    }
    let out = run("force");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(prefix.join("ecs-bridge")).unwrap(),
        Path::new("bridge")
    );
}
