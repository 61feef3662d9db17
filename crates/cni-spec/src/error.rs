//! The CNI error object, its codes, and the one enum every plugin error ends up in.

use serde_json::{Map, Value, json};

/// Well-known CNI error codes (spec §"Error"), plus the suite's own range (100+).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    /// CNI_NETNS is the plugin's own namespace (Go libcni's ErrInvalidNetNS).
    pub const INVALID_NETNS: u32 = 8;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const UNAVAILABLE: u32 = 50;
    pub const UNAVAILABLE_DEGRADED: u32 = 51;
    /// Generic failure of an operation on the system (netlink, files).
    pub const OPERATION_FAILED: u32 = 100;
    /// A kernel feature the operation needs is missing.
    pub const KERNEL_UNSUPPORTED: u32 = 101;
}

/// What can go wrong in the protocol layer (environment, stdin, config, versions), mapped to a
/// CNI code by [`Error::code`]. A plugin's own failures are its [`Plugin::Error`]
/// (crate::Plugin::Error), which the dispatcher converts into [`Error::Plugin`] once, at the
/// edge ([`Error::from_plugin`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("incompatible CNI versions: config is \"{requested}\", plugin supports {supported:?}")]
    IncompatibleVersion {
        requested: String,
        supported: Vec<&'static str>,
    },
    #[error("config version \"{version}\" does not allow {command}")]
    VerbNotInVersion {
        command: &'static str,
        version: String,
    },
    #[error("required env variables [{}] missing", .names.join(","))]
    MissingEnv { names: Vec<&'static str> },
    #[error("invalid {var} \"{value}\": {reason}")]
    InvalidEnv {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("unknown CNI_COMMAND: \"{0}\" (expected ADD, DEL, CHECK, GC, STATUS or VERSION)")]
    UnknownCommand(String),
    #[error(
        "CNI_NETNS \"{path}\" is the plugin's own network namespace; refusing to touch it (set CNI_NETNS_OVERRIDE=1 to allow)"
    )]
    OwnNetns { path: String },
    #[error("failed to read stdin: {0}")]
    Stdin(std::io::Error),
    #[error("network config on stdin is larger than {limit} bytes")]
    StdinTooLarge { limit: usize },
    #[error("failed to decode network config: {0}")]
    Decode(String),
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    #[error("{msg}")]
    Plugin {
        code: u32,
        msg: String,
        details: String,
    },
}

/// An error a plugin returns: it knows its CNI code (and, optionally, details for the error
/// object's `details`); its `Display` is the error object's `msg`. The dispatcher converts it
/// once ([`Error::from_plugin`]); nothing else turns errors into strings or codes.
pub trait PluginError: std::error::Error {
    /// The CNI error code (4 env, 6 decode, 7 config, 11 try again, 50/51 status, 100+ ours).
    fn code(&self) -> u32;
    /// The error object's `details`, when there is more to say than the message.
    fn details(&self) -> Option<String> {
        None
    }
}

impl PluginError for Error {
    fn code(&self) -> u32 {
        Error::code(self)
    }
    fn details(&self) -> Option<String> {
        let d = Error::details(self);
        (!d.is_empty()).then_some(d)
    }
}

impl Error {
    /// The conversion at the edge: a plugin's error becomes the error object's code, message
    /// and details.
    pub fn from_plugin<E: PluginError + ?Sized>(e: &E) -> Error {
        Error::Plugin {
            code: e.code(),
            msg: e.to_string(),
            details: e.details().unwrap_or_default(),
        }
    }

    /// The CNI error code of this error.
    pub fn code(&self) -> u32 {
        match self {
            Error::IncompatibleVersion { .. } | Error::VerbNotInVersion { .. } => {
                code::INCOMPATIBLE_VERSION
            }
            Error::MissingEnv { .. } | Error::InvalidEnv { .. } | Error::UnknownCommand(_) => {
                code::INVALID_ENV
            }
            Error::OwnNetns { .. } => code::INVALID_NETNS,
            Error::Stdin(_) | Error::StdinTooLarge { .. } => code::IO,
            Error::Decode(_) => code::DECODE,
            Error::InvalidConfig(_) => code::INVALID_CONFIG,
            Error::Plugin { code, .. } => *code,
        }
    }

    /// A plugin-level error with an explicit code.
    pub fn plugin(code: u32, msg: impl Into<String>) -> Error {
        Error::Plugin {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Code 7: the config is invalid; the message names the key and value.
    pub fn invalid_config(msg: impl Into<String>) -> Error {
        Error::InvalidConfig(msg.into())
    }

    /// Code 11: a transient condition; the runtime may retry.
    pub fn try_again(msg: impl Into<String>) -> Error {
        Error::plugin(code::TRY_AGAIN_LATER, msg)
    }

    /// Attaches details (kept on plugin errors, added to others).
    pub fn with_details(self, details: impl Into<String>) -> Error {
        match self {
            Error::Plugin { code, msg, .. } => Error::Plugin {
                code,
                msg,
                details: details.into(),
            },
            other => Error::Plugin {
                code: other.code(),
                msg: other.to_string(),
                details: details.into(),
            },
        }
    }

    fn details(&self) -> String {
        match self {
            Error::IncompatibleVersion {
                requested,
                supported,
            } => format!("config is \"{requested}\", plugin supports {supported:?}"),
            Error::Plugin { details, .. } => details.clone(),
            _ => String::new(),
        }
    }

    fn message(&self) -> String {
        match self {
            Error::IncompatibleVersion { .. } => "incompatible CNI versions".to_owned(),
            other => other.to_string(),
        }
    }

    /// The error object printed on stdout: `{cniVersion, code, msg, details}`.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), json!(cni_version));
        m.insert("code".into(), json!(self.code()));
        m.insert("msg".into(), json!(self.message()));
        let details = self.details();
        if !details.is_empty() {
            m.insert("details".into(), json!(details));
        }
        Value::Object(m)
    }
}

/// Whether `errno` says a process limit or memory ran out rather than that something is wrong:
/// EMFILE, ENFILE (RLIMIT_NOFILE, the system's file table), ENOMEM, EAGAIN (a pids or memory
/// limit, a thread that could not be spawned). The CNI answer to those is code 11
/// ([`Error::try_again`]): the runtime may retry.
pub fn errno_is_exhaustion(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_errnos_are_the_limits_and_memory() {
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EAGAIN] {
            assert!(errno_is_exhaustion(e), "{e}");
        }
        for e in [
            0,
            libc::ENOENT,
            libc::EACCES,
            libc::EPERM,
            libc::EINVAL,
            libc::EEXIST,
        ] {
            assert!(!errno_is_exhaustion(e), "{e}");
        }
    }

    #[test]
    fn codes_map_once() {
        assert_eq!(
            Error::MissingEnv {
                names: vec!["CNI_NETNS"]
            }
            .code(),
            4
        );
        assert_eq!(Error::Decode("x".into()).code(), 6);
        assert_eq!(Error::invalid_config("x").code(), 7);
        assert_eq!(Error::try_again("x").code(), 11);
        assert_eq!(Error::OwnNetns { path: "/p".into() }.code(), 8);
    }

    #[test]
    fn error_json_shape() {
        let e = Error::IncompatibleVersion {
            requested: "0.2.0".into(),
            supported: vec!["0.3.0", "1.1.0"],
        };
        assert_eq!(
            e.to_json("0.2.0").to_string(),
            r#"{"cniVersion":"0.2.0","code":1,"msg":"incompatible CNI versions","details":"config is \"0.2.0\", plugin supports [\"0.3.0\", \"1.1.0\"]"}"#
        );
        let m = Error::MissingEnv {
            names: vec!["CNI_CONTAINERID", "CNI_NETNS"],
        };
        assert_eq!(
            m.to_json("1.0.0").to_string(),
            r#"{"cniVersion":"1.0.0","code":4,"msg":"required env variables [CNI_CONTAINERID,CNI_NETNS] missing"}"#
        );
    }
}
