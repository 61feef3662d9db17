//! Delegation to a plugin on CNI_PATH: same stdin bytes, result and error objects parsed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cni_spec::{Command, Env, Invocation, NetConf, SpecVersion, Vars, delegate};
use serde_json::json;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cni-spec-delegate-{tag}-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    d
}

fn script(d: &Path, name: &str, body: &str) {
    let p = d.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn inv(d: &Path, stdin: &str) -> Invocation {
    inv_with(d, stdin, Vars::new())
}

/// The invocation of a DEL with `extra` variables besides the CNI_* ones and a `PATH`.
fn inv_with(d: &Path, stdin: &str, extra: Vars) -> Invocation {
    let mut vars = Vars::new()
        .with("CNI_CONTAINERID", "c9")
        .with("CNI_IFNAME", "eth3")
        .with("CNI_PATH", format!("/nonexistent:{}", d.display()))
        .with("PATH", "/usr/bin:/bin");
    for (k, v) in extra.iter() {
        vars.set(k, v);
    }
    Invocation {
        env: Env::load(Command::Del, &|k| vars.get(k).map(str::to_owned)).unwrap(),
        vars,
        version: SpecVersion::V1_0_0,
        conf: NetConf::from_value(serde_json::from_str(stdin).unwrap()).unwrap(),
        stdin: stdin.as_bytes().to_vec(),
        program: "t".into(),
    }
}

#[test]
fn delegate_add_gets_same_stdin_and_env_and_result_is_parsed() {
    let d = dir("add");
    let seen = d.join("seen");
    script(
        &d,
        "echoipam",
        &format!(
            "cat > {s}.stdin; echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME\" > {s}.env\n\
             echo '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.9.0.2/24\",\"gateway\":\"10.9.0.1\"}}]}}'",
            s = seen.display()
        ),
    );
    let stdin = r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"echoipam"}}"#;
    let r = delegate(&inv(&d, stdin), "echoipam", Command::Add)
        .unwrap()
        .unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.9.0.2/24");
    assert_eq!(fs::read_to_string(d.join("seen.stdin")).unwrap(), stdin);
    assert_eq!(
        fs::read_to_string(d.join("seen.env")).unwrap(),
        "ADD c9 eth3\n"
    );
    // DEL returns nothing
    assert!(
        delegate(&inv(&d, stdin), "echoipam", Command::Del)
            .unwrap()
            .is_none()
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn delegate_errors_keep_their_code() {
    let d = dir("err");
    script(
        &d,
        "busy",
        r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"lock busy","details":"waited 5s"}'; exit 1"#,
    );
    script(&d, "garbage", "echo oops; exit 3");
    let stdin = json!({"cniVersion":"1.0.0","name":"n"}).to_string();
    let e = delegate(&inv(&d, &stdin), "busy", Command::Add).unwrap_err();
    assert_eq!(e.code(), 11);
    assert_eq!(e.to_string(), "busy ADD: lock busy");
    assert_eq!(e.to_json("1.0.0")["details"], json!("waited 5s"));
    let e = delegate(&inv(&d, &stdin), "garbage", Command::Add).unwrap_err();
    assert_eq!(e.code(), 100);
    assert!(e.to_string().contains("oops"), "{e}");
    let e = delegate(&inv(&d, &stdin), "missing", Command::Add).unwrap_err();
    assert_eq!(e.code(), 7);
    assert!(
        e.to_string().contains("\"missing\" not found in CNI_PATH"),
        "{e}"
    );
    let e = delegate(&inv(&d, &stdin), "../busy", Command::Add).unwrap_err();
    assert_eq!(e.code(), 7);
    fs::remove_dir_all(&d).unwrap();
}

/// The delegate is started with the invocation's environment and nothing of the process's:
/// what the dispatcher was given (CNI_ARGS, IPAM_DB_PATH, ...) reaches it, the verb and the
/// CNI_* values of this call override, and a variable of the test process does not leak in.
#[test]
fn delegate_gets_exactly_the_invocations_environment() {
    let d = dir("vars");
    let seen = d.join("seen");
    script(&d, "envipam", &format!("env | sort > {}", seen.display()));
    let stdin = json!({"cniVersion":"1.0.0","name":"n"}).to_string();
    let extra = Vars::new()
        .with("CNI_ARGS", "IgnoreUnknown=1;MAC=0a:58:00:00:00:01")
        .with("IPAM_DB_PATH", "/x/eni-ipam.db")
        .with("CNI_COMMAND", "DEL");
    let inv = inv_with(&d, &stdin, extra);
    // the test process has a HOME (cargo sets CARGO_* too); the invocation has neither
    assert!(inv.vars.get("HOME").is_none());
    delegate(&inv, "envipam", Command::Check).unwrap();
    let text = fs::read_to_string(&seen).unwrap();
    let mut got: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "CNI_ARGS=IgnoreUnknown=1;MAC=0a:58:00:00:00:01",
            "CNI_COMMAND=CHECK",
            "CNI_CONTAINERID=c9",
            "CNI_IFNAME=eth3",
            &format!("CNI_PATH=/nonexistent:{}", d.display()),
            "IPAM_DB_PATH=/x/eni-ipam.db",
            "PATH=/usr/bin:/bin",
        ]
    );
    fs::remove_dir_all(&d).unwrap();
}
