//! Delegation: running another plugin (usually IPAM) found on CNI_PATH with our environment and
//! the same stdin bytes, as libcni's `invoke.DelegateAdd`/`DelegateDel` do. "Our environment"
//! is the invocation's ([`Invocation::vars`]), passed explicitly: the delegate sees exactly
//! the variables the dispatcher was given, with the CNI_* ones of its call.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use crate::{CniResult, Command, Error, Invocation, code};

/// Finds an executable named `plugin` in the CNI_PATH directories, in order.
pub fn find_in_path(plugin: &str, dirs: &[PathBuf]) -> Result<PathBuf, Error> {
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return Err(Error::invalid_config(format!(
            "key \"type\": \"{plugin}\" is not a plugin name"
        )));
    }
    dirs.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "plugin \"{plugin}\" not found in CNI_PATH {:?}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
            ))
        })
}

/// Runs `plugin` for `command` with this invocation's environment ([`Invocation::vars`], the
/// verb, container ID, ifname, CNI_PATH and CNI_NETNS set as this call needs) and stdin.
///
/// ADD returns the delegate's result; other verbs return `None`. A delegate's error object keeps
/// its code (so an IPAM "try again later" stays code 11) and its message gains the plugin name.
pub fn delegate(
    inv: &Invocation,
    plugin: &str,
    command: Command,
) -> Result<Option<CniResult>, Error> {
    let exe = find_in_path(plugin, &inv.env.path)?;
    let env = &inv.env;
    let mut p = Process::new(&exe);
    p.env_clear()
        .envs(inv.vars.iter())
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", &env.container_id)
        .env("CNI_IFNAME", &env.ifname)
        .env(
            "CNI_PATH",
            std::env::join_paths(&env.path).unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match &env.netns_path {
        Some(ns) => p.env("CNI_NETNS", ns),
        None => p.env_remove("CNI_NETNS"),
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::plugin(
            code::IO,
            format!("delegate {plugin} ({}): {what}: {e}", exe.display()),
        )
    };
    let mut child = p.spawn().map_err(|e| failed("cannot start", &e))?;
    let output = std::thread::scope(|s| {
        if let Some(mut stdin) = child.stdin.take() {
            let bytes = &inv.stdin;
            s.spawn(move || {
                // A delegate that exits without reading stdin is reported by its own status.
                let _ = stdin.write_all(bytes);
            });
        }
        child.wait_with_output()
    })
    .map_err(|e| failed("wait failed", &e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let parsed: Option<Value> = serde_json::from_str(stdout.trim()).ok();
        let code_of = |v: &Value| v.get("code").and_then(Value::as_u64);
        return Err(
            match parsed.as_ref().and_then(|v| code_of(v).map(|c| (v, c))) {
                Some((v, c)) => Error::Plugin {
                    code: u32::try_from(c).unwrap_or(code::OPERATION_FAILED),
                    msg: format!(
                        "{plugin} {}: {}",
                        command.as_str(),
                        v.get("msg").and_then(Value::as_str).unwrap_or("failed")
                    ),
                    details: v
                        .get("details")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                },
                None => Error::plugin(
                    code::OPERATION_FAILED,
                    format!(
                        "{plugin} {} failed ({}) without an error object: {}",
                        command.as_str(),
                        output.status,
                        stdout.trim()
                    ),
                ),
            },
        );
    }
    if command != Command::Add {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        Error::plugin(
            code::DECODE,
            format!("{plugin} ADD printed an invalid result: {e}"),
        )
    })?;
    CniResult::from_value(&v).map(Some)
}
