//! The CNI_* environment: which variables each verb needs, and their validation.

use std::path::{Path, PathBuf};

use netns::{IfName, Netns};

use crate::Error;

/// A CNI verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }

    /// The variables a verb requires (as Go's skel does: CNI_PATH for all but VERSION/STATUS).
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => {
                &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
            }
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            Command::Gc => &["CNI_PATH"],
            Command::Status | Command::Version => &[],
        }
    }
}

/// Whether a plugin works inside the namespace CNI_NETNS names ([`crate::Plugin::USES_NETNS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetnsUse {
    /// Open it: ADD and CHECK fail (code 4) when it is missing or not a network namespace;
    /// DEL goes on without it.
    Open,
    /// Never enter it (an IPAM plugin, as host-local): CNI_NETNS must still be set for ADD and
    /// CHECK (Go's skel requires it), but a missing path or a file that is not a network
    /// namespace is fine and [`Env::netns`] stays `None`. The plugin's own namespace is still
    /// refused (code 8), as Go's skel (v1.2+) refuses it for every plugin.
    Ignore,
}

/// The validated environment of one invocation.
#[derive(Debug)]
pub struct Env {
    pub command: Command,
    /// Empty for GC and STATUS.
    pub container_id: String,
    /// The path as given (may be set for DEL even when the namespace is gone).
    pub netns_path: Option<PathBuf>,
    /// The opened namespace ([`Netns::open`]: it is one, and not ours unless
    /// CNI_NETNS_OVERRIDE says so): always present for ADD/CHECK; for DEL only when it still
    /// exists.
    pub netns: Option<Netns>,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
}

/// Reads one variable; empty counts as unset (as in Go's skel).
fn var(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.is_empty())
}

impl Env {
    /// Reads and validates the variables `command` needs; every missing one is named at once.
    /// CNI_NETNS is opened and validated ([`NetnsUse::Open`]).
    pub fn load(command: Command, get: &dyn Fn(&str) -> Option<String>) -> Result<Env, Error> {
        Env::load_for(command, get, NetnsUse::Open)
    }

    /// [`Env::load`] for a plugin that uses CNI_NETNS as `netns_use` says.
    pub fn load_for(
        command: Command,
        get: &dyn Fn(&str) -> Option<String>,
        netns_use: NetnsUse,
    ) -> Result<Env, Error> {
        let missing: Vec<&'static str> = command
            .required()
            .iter()
            .copied()
            .filter(|n| var(get, n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingEnv { names: missing });
        }
        let needs_target = matches!(command, Command::Add | Command::Check | Command::Del);
        let container_id = var(get, "CNI_CONTAINERID").unwrap_or_default();
        let ifname = var(get, "CNI_IFNAME").unwrap_or_default();
        if needs_target {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let args = CniArgs::parse(&var(get, "CNI_ARGS").unwrap_or_default())?;
        let path = var(get, "CNI_PATH")
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let netns_path = var(get, "CNI_NETNS").map(PathBuf::from);
        let override_own = matches!(
            var(get, "CNI_NETNS_OVERRIDE").as_deref(),
            Some("1") | Some("true") | Some("TRUE") | Some("True")
        );
        let netns = match (&netns_path, command) {
            // never entered: only our own namespace is refused, anything else is not our business
            (Some(p), Command::Add | Command::Check | Command::Del)
                if netns_use == NetnsUse::Ignore =>
            {
                match open_netns(p, override_own) {
                    Err(e @ Error::OwnNetns { .. }) => return Err(e),
                    Ok(_) | Err(_) => None,
                }
            }
            (Some(p), Command::Add | Command::Check) => Some(open_netns(p, override_own)?),
            // DEL: a missing or no-longer-namespace path is normal; our own namespace is not.
            (Some(p), Command::Del) => match open_netns(p, override_own) {
                Ok(ns) => Some(ns),
                Err(e @ Error::OwnNetns { .. }) => return Err(e),
                Err(_) => None,
            },
            _ => None,
        };
        Ok(Env {
            command,
            container_id,
            netns_path,
            netns,
            ifname,
            args,
            path,
        })
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (spec); code 4 otherwise.
pub fn validate_container_id(id: &str) -> Result<(), Error> {
    if is_cni_identifier(id) {
        Ok(())
    } else {
        Err(Error::InvalidEnv {
            var: "CNI_CONTAINERID",
            value: id.to_owned(),
            reason: "must match [a-zA-Z0-9][a-zA-Z0-9_.-]*".into(),
        })
    }
}

/// The spec's identifier charset, shared by container IDs and network names.
pub fn is_cni_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// CNI_IFNAME must be a Linux interface name ([`IfName`]: 1..=15 bytes, not `.`/`..`, no `/`,
/// `:`, NUL or whitespace); code 4 otherwise.
pub fn validate_ifname(name: &str) -> Result<(), Error> {
    match IfName::problem(name) {
        None => Ok(()),
        Some(problem) => Err(Error::InvalidEnv {
            var: "CNI_IFNAME",
            value: name.to_owned(),
            reason: problem.to_string(),
        }),
    }
}

/// Opens CNI_NETNS ([`Netns::open`]: a network namespace, opened without blocking) and refuses
/// our own namespace unless `allow_own`.
fn open_netns(path: &Path, allow_own: bool) -> Result<Netns, Error> {
    let invalid = |reason: String| Error::InvalidEnv {
        var: "CNI_NETNS",
        value: path.display().to_string(),
        reason,
    };
    let ns = Netns::open(path).map_err(|e| {
        if let netns::Error::Io { source, .. } = &e {
            if source
                .raw_os_error()
                .is_some_and(crate::errno_is_exhaustion)
            {
                // a process limit (RLIMIT_NOFILE) or memory, not a bad path
                return Error::try_again(format!(
                    "cannot open CNI_NETNS \"{}\": {source}",
                    path.display()
                ));
            }
        }
        invalid(match e {
            netns::Error::NotFound { .. } => "cannot open: it does not exist".into(),
            netns::Error::Io { source, .. } => format!("cannot open: {source}"),
            netns::Error::NotANetns { reason, .. } => format!(
                "not a network namespace: {reason} (expected an nsfs file such as /run/netns/NAME or /proc/PID/ns/net)"
            ),
            other => other.to_string(),
        })
    })?;
    let own = ns
        .is_current()
        .map_err(|e| invalid(format!("cannot compare with our own namespace: {e}")))?;
    if own && !allow_own {
        return Err(Error::OwnNetns {
            path: path.display().to_string(),
        });
    }
    Ok(ns)
}

/// CNI_ARGS: `K=V;K=V`, with `IgnoreUnknown=1|true` relaxing [`CniArgs::check_known`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CniArgs {
    pub pairs: Vec<(String, String)>,
    pub ignore_unknown: bool,
}

impl CniArgs {
    pub fn parse(s: &str) -> Result<CniArgs, Error> {
        let mut out = CniArgs::default();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
                return Err(Error::InvalidEnv {
                    var: "CNI_ARGS",
                    value: s.to_owned(),
                    reason: format!("pair \"{pair}\" is not KEY=VALUE"),
                });
            };
            if k == "IgnoreUnknown" {
                out.ignore_unknown = matches!(v, "1" | "true" | "True" | "TRUE");
            } else {
                out.pairs.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(out)
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Fails naming the unknown keys unless `IgnoreUnknown` was given.
    pub fn check_known(&self, known: &[&str]) -> Result<(), Error> {
        if self.ignore_unknown {
            return Ok(());
        }
        let unknown: Vec<&str> = self
            .pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !known.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidEnv {
                var: "CNI_ARGS",
                value: unknown.join(","),
                reason: format!(
                    "unknown keys (this plugin knows {known:?}; add IgnoreUnknown=1 to ignore others)"
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn all_missing_variables_are_named_at_once() {
        let get = env_of(&[("CNI_IFNAME", "eth0")]);
        let e = Env::load(Command::Add, &get).unwrap_err();
        assert_eq!(e.code(), 4);
        assert_eq!(
            e.to_string(),
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_PATH] missing"
        );
        let e = Env::load(Command::Del, &env_of(&[("CNI_CONTAINERID", "")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing"
        );
        let e = Env::load(Command::Gc, &env_of(&[])).unwrap_err();
        assert_eq!(e.to_string(), "required env variables [CNI_PATH] missing");
        assert!(Env::load(Command::Status, &env_of(&[])).is_ok());
    }

    #[test]
    fn container_id_rules() {
        for ok in ["a", "ABC", "cnitool-9cd7c963007cf315b0b0", "0a_b.c-d"] {
            assert!(validate_container_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "a:b", "ä"] {
            assert_eq!(validate_container_id(bad).unwrap_err().code(), 4, "{bad}");
        }
    }

    #[test]
    fn ifname_rules() {
        for ok in ["eth0", "ecs-eth0", "a", "123456789012345"] {
            assert!(validate_ifname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\0b",
        ] {
            let e = validate_ifname(bad).unwrap_err();
            assert_eq!(e.code(), 4, "{bad}");
            assert!(e.to_string().contains("CNI_IFNAME"));
        }
    }

    #[test]
    fn del_tolerates_a_missing_netns_but_add_does_not() {
        let base = [
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
            ("CNI_NETNS", "/run/netns/does-not-exist-cni-spec-test"),
        ];
        let del = Env::load(Command::Del, &env_of(&base)).unwrap();
        assert!(del.netns.is_none());
        assert_eq!(
            del.path,
            vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
        let e = Env::load(Command::Add, &env_of(&base)).unwrap_err();
        assert_eq!(e.code(), 4);
        assert!(
            e.to_string().contains("does-not-exist-cni-spec-test"),
            "{e}"
        );
    }

    #[test]
    fn netns_must_be_a_namespace_and_not_our_own() {
        let mut vars = vec![
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/x"),
            ("CNI_NETNS", "/etc/hostname"),
        ];
        let e = Env::load(Command::Add, &env_of(&vars)).unwrap_err();
        assert!(e.to_string().contains("not a network namespace"), "{e}");
        vars[3].1 = "/proc/self/ns/uts";
        let e = Env::load(Command::Add, &env_of(&vars)).unwrap_err();
        assert!(e.to_string().contains("not a network namespace"), "{e}");
        vars[3].1 = "/proc/thread-self/ns/net";
        let e = Env::load(Command::Add, &env_of(&vars)).unwrap_err();
        assert_eq!(e.code(), 8, "{e}");
        // DEL must refuse it too (it would take down our own interfaces).
        assert_eq!(
            Env::load(Command::Del, &env_of(&vars)).unwrap_err().code(),
            8
        );
        vars.push(("CNI_NETNS_OVERRIDE", "1"));
        assert!(Env::load(Command::Add, &env_of(&vars)).is_ok());
    }

    /// An IPAM plugin never enters CNI_NETNS (host-local never opens it): a missing path or a
    /// file that is not a namespace is fine, an unset one is not (Go's skel requires it for
    /// ADD and CHECK), our own namespace is refused as for every plugin.
    #[test]
    fn a_plugin_that_ignores_the_netns_does_not_open_it() {
        let base = |netns: &'static str| {
            vec![
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/x"),
                ("CNI_NETNS", netns),
            ]
        };
        for cmd in [Command::Add, Command::Check, Command::Del] {
            for path in ["/run/netns/does-not-exist-cni-spec-test", "/etc/hostname"] {
                let env = Env::load_for(cmd, &env_of(&base(path)), NetnsUse::Ignore).unwrap();
                assert!(env.netns.is_none(), "{cmd:?} {path}");
                assert_eq!(env.netns_path.as_deref(), Some(std::path::Path::new(path)));
            }
            let own = base("/proc/thread-self/ns/net");
            let e = Env::load_for(cmd, &env_of(&own), NetnsUse::Ignore).unwrap_err();
            assert_eq!(e.code(), 8, "{cmd:?}: {e}");
            let mut own = own;
            own.push(("CNI_NETNS_OVERRIDE", "1"));
            assert!(Env::load_for(cmd, &env_of(&own), NetnsUse::Ignore).is_ok());
        }
        let mut unset = base("");
        unset.pop();
        for cmd in [Command::Add, Command::Check] {
            let e = Env::load_for(cmd, &env_of(&unset), NetnsUse::Ignore).unwrap_err();
            assert_eq!(e.to_string(), "required env variables [CNI_NETNS] missing");
        }
        assert!(Env::load_for(Command::Del, &env_of(&unset), NetnsUse::Ignore).is_ok());
    }

    /// Regression (tests/netns/tests/invocation): a FIFO as CNI_NETNS blocked ADD forever in open(2).
    #[test]
    fn a_fifo_as_netns_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("cni-spec-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("netns");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let path = fifo.to_str().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let vars = [
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/x"),
                ("CNI_NETNS", path.as_str()),
            ];
            let add = Env::load(Command::Add, &env_of(&vars)).map(drop);
            let del = Env::load(Command::Del, &env_of(&vars)).map(|e| e.netns.is_none());
            let _ = tx.send((add, del));
        });
        let (add, del) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("Env::load blocked on a FIFO");
        let e = add.unwrap_err();
        assert_eq!(e.code(), 4);
        assert!(e.to_string().contains("not a network namespace"), "{e}");
        assert!(
            del.unwrap(),
            "DEL treats a FIFO as a namespace that is gone"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cni_args() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5").unwrap();
        assert!(a.ignore_unknown);
        assert_eq!(a.get("IP"), Some("10.0.0.5"));
        assert!(a.check_known(&["IP"]).is_ok());
        let b = CniArgs::parse("IP=10.0.0.5;FOO=bar").unwrap();
        let e = b.check_known(&["IP"]).unwrap_err();
        assert_eq!(e.code(), 4);
        assert!(e.to_string().contains("FOO"), "{e}");
        assert!(CniArgs::parse("IP").is_err());
        assert!(CniArgs::parse("IP=a=b").is_err());
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
    }
}
