//! The dispatcher end to end with injected environment and streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;

use cni_spec::{CniResult, Error, Interface, Invocation, Plugin, SpecVersion, Vars, run_with};
use serde_json::{Value, json};

struct Fake;

impl Plugin for Fake {
    type Error = cni_spec::Error;
    const NAME: &'static str = "fake";
    const ABOUT: &'static str = "test double";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        if inv.conf.raw.get("fail").is_some() {
            return Err(Error::try_again("ENI 0a:00:00:00:00:01 not there yet"));
        }
        Ok(CniResult {
            interfaces: vec![Interface::new(
                inv.env.ifname.clone(),
                Some("0a:00:00:00:00:01".into()),
                inv.env.netns_path.as_ref().map(|p| p.display().to_string()),
            )],
            ips: vec![cni_spec::IpConfig::new(
                "10.0.0.2/24".parse().unwrap(),
                Some("10.0.0.1".parse().unwrap()),
                Some(0),
            )],
            ..CniResult::default()
        })
    }
    fn del(&self, _inv: &Invocation) -> Result<(), Error> {
        Ok(())
    }
    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        inv.conf.require_prev_result("CHECK").map(|_| ())
    }
}

struct Out {
    status: u8,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }
}

fn call(argv: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
    call_plugin(&Fake, argv, env, stdin)
}

fn call_plugin<P: Plugin>(plugin: &P, argv: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
    let vars: Vars = env.iter().copied().collect();
    let args: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run_with(
        plugin,
        &args,
        vars,
        &mut Cursor::new(stdin.as_bytes().to_vec()),
        &mut out,
        &mut err,
    );
    Out {
        status,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

/// Our own namespace with the override: a real nsfs file that the dispatcher accepts.
fn add_env(cmd: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/proc/thread-self/ns/net"),
        ("CNI_NETNS_OVERRIDE", "1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/nonexistent"),
    ]
}

fn conf(version: &str) -> String {
    json!({"cniVersion": version, "name": "net1", "type": "fake"}).to_string()
}

#[test]
fn no_command_prints_about_to_stderr_only() {
    let o = call(&["fake"], &[], "");
    assert_eq!(o.status, 0);
    assert_eq!(o.stdout, "");
    let head = format!("CNI fake plugin {} (", cni_spec::VERSION);
    assert!(o.stderr.starts_with(&head), "{}", o.stderr);
    assert!(o.stderr.contains("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"));
    assert_eq!(o.stderr.lines().count(), 1);
}

#[test]
fn version_ignores_stdin_and_env() {
    let o = call(&["fake"], &[("CNI_COMMAND", "VERSION")], "garbage");
    assert_eq!(o.status, 0);
    assert_eq!(
        o.json(),
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[test]
fn ecs_agent_flags() {
    let o = call(&["/opt/cni/bin/ecs-eni", "--capabilities"], &[], "");
    assert_eq!(o.json(), json!({"capabilities": ["awsvpc-network-mode"]}));
    let v = call(&["x", "--version"], &[], "").json();
    assert_eq!(v["version"], json!(cni_spec::VERSION));
    // the workspace version, alone (a tag build) or with the revision as semver build metadata
    let rest = cni_spec::VERSION.strip_prefix(env!("CARGO_PKG_VERSION"));
    assert!(
        rest.is_some_and(|r| r.is_empty() || r.starts_with("+g") || r == "+nogit"),
        "{}",
        cni_spec::VERSION
    );
    assert!(v["gitShortHash"].is_string() && v["dirty"].is_boolean() && v["built"].is_string());
}

#[test]
fn add_prints_the_result_in_every_version() {
    for v in SpecVersion::ALL {
        let o = call(&["fake"], &add_env("ADD"), &conf(v.as_str()));
        assert_eq!(o.status, 0, "{}", o.stdout);
        assert!(o.stdout.ends_with('\n'));
        let mut ip = json!({"interface": 0, "address": "10.0.0.2/24", "gateway": "10.0.0.1"});
        if v.has_ip_version_field() {
            ip = json!({"version": "4", "interface": 0, "address": "10.0.0.2/24", "gateway": "10.0.0.1"});
        }
        let mut want = json!({
            "cniVersion": v.as_str(),
            "interfaces": [{"name": "eth0", "mac": "0a:00:00:00:00:01", "sandbox": "/proc/thread-self/ns/net"}],
            "ips": [ip],
        });
        if !v.has_1_1_fields() {
            want["dns"] = json!({});
        }
        assert_eq!(o.json(), want, "{v}");
        // key order as Go prints it
        assert!(
            o.stdout
                .starts_with(&format!("{{\"cniVersion\":\"{v}\",\"interfaces\""))
        );
    }
}

#[test]
fn errors_go_to_stdout_with_exit_1() {
    let o = call(
        &["fake"],
        &add_env("ADD"),
        r#"{"cniVersion":"1.0.0","name":"n","fail":1}"#,
    );
    assert_eq!(o.status, 1);
    assert_eq!(
        o.json(),
        json!({"cniVersion": "1.0.0", "code": 11, "msg": "ENI 0a:00:00:00:00:01 not there yet"})
    );
    assert_eq!(o.stderr, "");
}

#[test]
fn bad_input_codes() {
    // invalid JSON
    let o = call(&["fake"], &add_env("ADD"), "{not json");
    assert_eq!((o.status, o.json()["code"].clone()), (1, json!(6)));
    // unsupported versions name what is supported
    for bad in ["0.1.0", "0.2.0", "2.0.0"] {
        let o = call(&["fake"], &add_env("ADD"), &conf(bad));
        let j = o.json();
        assert_eq!(j["code"], json!(1), "{bad}");
        assert!(j["details"].as_str().unwrap().contains("1.1.0"));
    }
    let o = call(&["fake"], &add_env("ADD"), r#"{"name":"n"}"#);
    assert_eq!(
        o.json()["details"],
        json!(
            "config is \"0.1.0\", plugin supports [\"0.3.0\", \"0.3.1\", \"0.4.0\", \"1.0.0\", \"1.1.0\"]"
        )
    );
    // verbs gated by version
    let o = call(&["fake"], &add_env("CHECK"), &conf("0.3.1"));
    assert_eq!(o.json()["code"], json!(1));
    assert_eq!(
        o.json()["msg"],
        json!("config version \"0.3.1\" does not allow CHECK")
    );
    for verb in ["GC", "STATUS"] {
        let o = call(&["fake"], &add_env(verb), &conf("1.0.0"));
        assert_eq!(o.json()["code"], json!(1), "{verb}");
    }
    // unknown verb
    let o = call(&["fake"], &[("CNI_COMMAND", "FROB")], "");
    assert_eq!(o.json()["code"], json!(4));
    // bad name
    let o = call(
        &["fake"],
        &add_env("ADD"),
        r#"{"cniVersion":"1.0.0","name":"a b"}"#,
    );
    assert_eq!(o.json()["code"], json!(7));
    // missing env: all names at once, reported in the config's version
    let o = call(&["fake"], &[("CNI_COMMAND", "ADD")], &conf("0.4.0"));
    assert_eq!(
        o.json(),
        json!({"cniVersion": "0.4.0", "code": 4,
               "msg": "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"})
    );
    // CHECK without prevResult
    let o = call(&["fake"], &add_env("CHECK"), &conf("1.0.0"));
    assert_eq!(o.json()["code"], json!(7));
    // oversized stdin
    let big = format!(
        r#"{{"cniVersion":"1.0.0","name":"n","pad":"{}"}}"#,
        "x".repeat(cni_spec::STDIN_LIMIT)
    );
    let o = call(&["fake"], &add_env("ADD"), &big);
    assert_eq!(o.json()["code"], json!(5));
    // wrong netns
    let mut env = add_env("ADD");
    env[2].1 = "/etc/passwd";
    let o = call(&["fake"], &env, &conf("1.0.0"));
    let j = o.json();
    assert_eq!(j["code"], json!(4));
    assert!(j["msg"].as_str().unwrap().contains("/etc/passwd"));
}

#[test]
fn gc_and_status_in_1_1_succeed_silently() {
    for verb in ["GC", "STATUS"] {
        let o = call(&["fake"], &add_env(verb), &conf("1.1.0"));
        assert_eq!((o.status, o.stdout.as_str()), (0, ""), "{verb}");
    }
    // STATUS needs no container variables at all
    let o = call(&["fake"], &[("CNI_COMMAND", "STATUS")], &conf("1.1.0"));
    assert_eq!(o.status, 0, "{}", o.stdout);
}

#[test]
fn del_with_gone_netns_succeeds() {
    let mut env = add_env("DEL");
    env[2].1 = "/run/netns/cni-spec-test-never-existed";
    let o = call(&["fake"], &env, &conf("1.0.0"));
    assert_eq!((o.status, o.stdout.as_str()), (0, ""));
}

/// Reports the variables it sees, as an error message.
struct Peek;

impl Plugin for Peek {
    type Error = cni_spec::Error;
    const NAME: &'static str = "peek";
    const ABOUT: &'static str = "reports its environment";

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        let seen: Vec<String> = [
            "IPAM_DB_PATH",
            "ENI_WAIT_TIMEOUT",
            "PATH",
            "HOME",
            "CNI_ARGS",
        ]
        .iter()
        .map(|k| format!("{k}={:?}", inv.vars.get(k)))
        .collect();
        Err(Error::plugin(100, seen.join(" ")))
    }
    fn del(&self, _inv: &Invocation) -> Result<(), Error> {
        Ok(())
    }
    fn check(&self, _inv: &Invocation) -> Result<(), Error> {
        Ok(())
    }
}

/// The injected environment is the whole truth: a plugin sees the variables given to the
/// dispatcher, and none of the test process's own (which has a PATH and a HOME).
#[test]
fn a_plugin_sees_exactly_the_injected_environment() {
    let mut env = add_env("ADD");
    env.push(("IPAM_DB_PATH", "/tmp/x/eni-ipam.db"));
    env.push(("ENI_WAIT_TIMEOUT", "1m30s"));
    env.push(("CNI_ARGS", "IgnoreUnknown=1;MAC=0a:58:00:00:00:01"));
    let o = call_plugin(&Peek, &["peek"], &env, &conf("1.1.0"));
    assert_eq!(o.status, 1);
    assert_eq!(
        o.json()["msg"],
        json!(
            "IPAM_DB_PATH=Some(\"/tmp/x/eni-ipam.db\") ENI_WAIT_TIMEOUT=Some(\"1m30s\") PATH=None HOME=None CNI_ARGS=Some(\"IgnoreUnknown=1;MAC=0a:58:00:00:00:01\")"
        )
    );
}

/// A plugin with its own typed error: the dispatcher turns it into the error object once, with
/// the plugin's code, its message (which keeps the wrapped source's text) and its details.
#[derive(Debug, thiserror::Error)]
enum TypedError {
    #[error(transparent)]
    Spec(#[from] Error),
    #[error("ADD: create the link: {0}")]
    Step(#[source] std::io::Error),
}

impl cni_spec::PluginError for TypedError {
    fn code(&self) -> u32 {
        match self {
            TypedError::Spec(e) => e.code(),
            TypedError::Step(_) => 101,
        }
    }
    fn details(&self) -> Option<String> {
        match self {
            TypedError::Spec(_) => None,
            TypedError::Step(e) => Some(format!("errno {}", e.raw_os_error().unwrap_or(0))),
        }
    }
}

struct Typed;

impl Plugin for Typed {
    type Error = TypedError;
    const NAME: &'static str = "typed";
    const ABOUT: &'static str = "test double with a typed error";

    fn add(&self, inv: &Invocation) -> Result<CniResult, TypedError> {
        if inv.conf.raw.get("spec").is_some() {
            inv.conf.require_prev_result("ADD")?;
        }
        Err(TypedError::Step(std::io::Error::from_raw_os_error(95)))
    }
    fn del(&self, _inv: &Invocation) -> Result<(), TypedError> {
        Ok(())
    }
    fn check(&self, _inv: &Invocation) -> Result<(), TypedError> {
        Ok(())
    }
}

#[test]
fn a_typed_plugin_error_is_converted_once_at_the_edge() {
    let env = add_env("ADD");
    let out = call_plugin(&Typed, &["typed"], &env, &conf("1.0.0"));
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stdout,
        "{\"cniVersion\":\"1.0.0\",\"code\":101,\"msg\":\"ADD: create the link: Operation not supported (os error 95)\",\"details\":\"errno 95\"}\n"
    );
    // A protocol-layer error raised inside the verb keeps its own code.
    let with_spec = conf("1.0.0").replacen('{', "{\"spec\":true,", 1);
    let out = call_plugin(&Typed, &["typed"], &env, &with_spec);
    assert_eq!(out.status, 1);
    assert_eq!(out.json()["code"], 7, "{}", out.stdout);
    assert_eq!(
        out.json()["msg"],
        "invalid network config: ADD requires prevResult, but the config has none"
    );
}
