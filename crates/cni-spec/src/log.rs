//! Diagnostics: never on stdout (which carries only the result). To stderr by default, or
//! appended to a file named by `CNI_LOG_FILE` (or the ECS plugins' `ECS_CNI_LOG_FILE` /
//! `VPC_CNI_LOG_FILE`). The level comes from `CNI_LOG_LEVEL` (or `ECS_CNI_LOGLEVEL` /
//! `VPC_CNI_LOG_LEVEL`): `error`, `warn` (default), `info`, `debug`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Message severity, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" | "critical" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

struct Logger {
    level: Level,
    file: Option<Mutex<File>>,
    plugin: String,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging from the environment; the first call wins.
pub fn init(plugin: &str, get: &dyn Fn(&str) -> Option<String>) {
    let first = |names: &[&str]| names.iter().find_map(|n| get(n).filter(|v| !v.is_empty()));
    let level = first(&["CNI_LOG_LEVEL", "ECS_CNI_LOGLEVEL", "VPC_CNI_LOG_LEVEL"])
        .and_then(|l| Level::parse(&l))
        .unwrap_or(Level::Warn);
    let file = first(&["CNI_LOG_FILE", "ECS_CNI_LOG_FILE", "VPC_CNI_LOG_FILE"]).and_then(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| {
                let _ = writeln!(
                    std::io::stderr(),
                    "{plugin}: cannot open log file {p}: {e}; logging to stderr"
                );
            })
            .ok()
    });
    let _ = LOGGER.set(Logger {
        level,
        file: file.map(Mutex::new),
        plugin: plugin.to_owned(),
    });
}

/// Whether a message of `level` would be written.
pub fn enabled(level: Level) -> bool {
    LOGGER
        .get()
        .map_or(level <= Level::Warn, |l| level <= l.level)
}

/// Writes one line (use the `log_*!` macros).
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let plugin = LOGGER.get().map_or("cni", |l| l.plugin.as_str());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let line = format!(
        "{secs:.6} {plugin}[{}] {}: {args}\n",
        std::process::id(),
        level.as_str()
    );
    match LOGGER.get().and_then(|l| l.file.as_ref()) {
        Some(f) => {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Logs at error level.
#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) } }
/// Logs at warn level.
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Logs at info level.
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
/// Logs at debug level.
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } }
