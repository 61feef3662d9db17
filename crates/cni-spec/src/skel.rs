//! The dispatcher: argv flags, CNI_COMMAND, stdin, validation, the verb, and the output.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::env::{NetnsUse, is_cni_identifier};
use crate::{CniResult, Command, Env, Error, NetConf, PluginError, SpecVersion, Vars};

/// Upper bound on the config read from stdin (prevResults included).
pub const STDIN_LIMIT: usize = 4 << 20;

/// One plugin invocation, validated: the environment, the negotiated version and the config.
#[derive(Debug)]
pub struct Invocation {
    /// The CNI_* variables, validated.
    pub env: Env,
    /// The whole environment the plugin was started with: the only place a plugin reads a
    /// variable from (`IPAM_DB_PATH`, `PATH`, ...), and what a delegate is started with.
    pub vars: Vars,
    pub version: SpecVersion,
    pub conf: NetConf,
    /// The exact stdin bytes (for delegation).
    pub stdin: Vec<u8>,
    /// Basename of `argv[0]`: lets one binary act as the dialect it was installed as
    /// (`ecs-eni`, `vpc-eni`, ...).
    pub program: String,
}

impl Invocation {
    pub fn command(&self) -> Command {
        self.env.command
    }

    /// The container namespace; always present for ADD and CHECK.
    pub fn netns(&self) -> Result<&netns::Netns, Error> {
        self.env.netns.as_ref().ok_or(Error::MissingEnv {
            names: vec!["CNI_NETNS"],
        })
    }
}

/// What a plugin implements. STATUS and GC succeed by default (no shared state).
///
/// Each verb returns the plugin's own typed [`Plugin::Error`]; the dispatcher converts it into
/// the CNI error object once ([`Error::from_plugin`]). `From<Error>` lets a verb use `?` on the
/// protocol layer's helpers (`inv.netns()?`, `inv.conf.parse_as()?`).
pub trait Plugin {
    /// The plugin's error: knows its CNI code, keeps its sources.
    type Error: PluginError + From<Error>;

    /// The plugin's name, used in the "about" line.
    const NAME: &'static str;
    /// One line describing the plugin.
    const ABOUT: &'static str;
    /// Printed by `--capabilities` (the ECS agent asks for `awsvpc-network-mode`).
    const CAPABILITIES: &'static [&'static str] = &[];
    /// Whether the plugin works inside CNI_NETNS. An IPAM plugin says [`NetnsUse::Ignore`]:
    /// the dispatcher then neither opens nor validates the path (host-local never does), and
    /// [`Invocation::netns`] is an error for it.
    const USES_NETNS: NetnsUse = NetnsUse::Open;

    fn add(&self, inv: &Invocation) -> Result<CniResult, Self::Error>;
    fn del(&self, inv: &Invocation) -> Result<(), Self::Error>;
    fn check(&self, inv: &Invocation) -> Result<(), Self::Error>;
    fn status(&self, _inv: &Invocation) -> Result<(), Self::Error> {
        Ok(())
    }
    fn gc(&self, _inv: &Invocation) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The C `main` of a plugin binary: `cni_spec::main!(MyPlugin);` in a `#![no_main]` crate.
///
/// The C library calls it directly, so Rust's own runtime set-up is skipped: the main thread's
/// stack-guard lookup (glibc reads and parses `/proc/self/maps`), the signal stack and
/// SIGSEGV/SIGBUS handlers that turn a stack overflow into a message: about 16 system calls
/// and their page faults, a tenth of a plugin's start-up. What of that set-up matters to a
/// plugin is done here: standard streams that are closed are reopened on `/dev/null` (so a
/// socket never becomes "stdout"), and SIGPIPE is ignored (a runtime that stopped reading gets
/// a failed write, not a killed plugin). argv is read from `main`'s arguments (the standard
/// library's `std::env::args` is filled from them only on glibc, by an `.init_array` hook).
/// Stdout is flushed before `main` returns. The global allocator is
/// [`ExitOnOom`](crate::ExitOnOom): a failed allocation is a CNI error (code 11) on stdout, not
/// an abort.
#[macro_export]
macro_rules! main {
    ($plugin:expr) => {
        /// The system allocator; a failed allocation is a CNI error, not an abort
        /// ([`cni_spec::ExitOnOom`]).
        #[global_allocator]
        static CNI_SPEC_ALLOCATOR: $crate::ExitOnOom = $crate::ExitOnOom;

        /// The process entry point, called by the C library ([`cni_spec::main!`]).
        ///
        /// # Safety
        /// Called by the C library alone, with the environment block the process started with.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn main(
            argc: ::core::ffi::c_int,
            argv: *const *const ::core::ffi::c_char,
            envp: *const *const ::core::ffi::c_char,
        ) -> ::core::ffi::c_int {
            // SAFETY: the C library passes the arguments and the environment block the
            // process started with, before any thread of ours exists.
            ::core::ffi::c_int::from(unsafe { $crate::run_c_main($plugin, argc, argv, envp) })
        }
    };
}

/// The body of [`main!`]: the standard streams and SIGPIPE as Rust's runtime would leave
/// them, then the dispatcher over the real process. Returns the exit status.
///
/// # Safety
/// `argc`, `argv` and `envp` are C `main`'s arguments ([`Vars::from_envp`]), and no other
/// thread runs yet.
pub unsafe fn run_c_main<P: Plugin>(
    plugin: P,
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    envp: *const *const std::ffi::c_char,
) -> u8 {
    sanitize_std_streams();
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // One malloc arena: the one thread a plugin may start (the writer of a delegated IPAM
    // plugin's stdin) allocates from the main heap instead of reserving a 64 MiB arena
    // (glibc; musl's allocator has no arenas).
    // SAFETY: mallopt only sets an allocator parameter; no thread exists yet.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // SAFETY: the caller's contract.
    let (args, vars) = unsafe { (args_from_argv(argc, argv), Vars::from_envp(envp)) };
    run_process(plugin, &args, vars)
}

/// C `main`'s `argc`/`argv` as strings (not UTF-8: replaced lossily, as no CNI argument is).
///
/// # Safety
/// `argv` holds `argc` pointers to NUL-terminated strings (or is null with `argc` 0).
unsafe fn args_from_argv(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
) -> Vec<String> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..n)
        // SAFETY: the caller's contract: `argv[i]` for `i < argc` is a valid C string.
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|p| !p.is_null())
        // SAFETY: as above.
        .map(|p| {
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Reopens each of fds 0, 1, 2 that is closed on `/dev/null` (one `poll` when all are open).
fn sanitize_std_streams() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if n <= 0 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a constant NUL-terminated path; the new fd is the lowest free one, `p.fd`,
            // and is deliberately left open as that standard stream.
            unsafe {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// The process's real environment (`vars`, read by [`run_c_main`], the one place in the suite
/// that reads it: everything else reads [`Invocation::vars`]), argv and standard streams,
/// through [`run_with`]; returns the exit status.
fn run_process<P: Plugin>(plugin: P, args: &[String], vars: Vars) -> u8 {
    let code = run_io(
        &plugin,
        args,
        vars,
        Io {
            stdin: &mut std::io::stdin().lock(),
            stdout: &mut std::io::stdout().lock(),
            stderr: &mut std::io::stderr().lock(),
        },
        Teardown::Exit,
    );
    let _ = std::io::stdout().flush();
    code
}

/// The dispatcher with injected I/O; returns the process exit status (0 or 1). `vars` is the
/// whole environment: the plugin sees these variables and no others ([`Invocation::vars`]).
pub fn run_with<P: Plugin>(
    plugin: &P,
    args: &[String],
    vars: Vars,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let io = Io {
        stdin,
        stdout,
        stderr,
    };
    run_io(plugin, args, vars, io, Teardown::Free)
}

/// The streams of one invocation.
struct Io<'a> {
    stdin: &'a mut dyn Read,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
}

/// What becomes of the invocation's memory once the verb has run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// Freed, as a library call must (tests, the fuzzer).
    Free,
    /// Left to the kernel: the process exits right after, and the kernel drops its heap at
    /// once, where freeing the environment, the config and the result one allocation at a
    /// time is about a tenth of a loopback ADD's instructions (benches/startup.sh).
    Exit,
}

fn run_io<P: Plugin>(plugin: &P, args: &[String], vars: Vars, io: Io<'_>, end: Teardown) -> u8 {
    let Io {
        stdin,
        stdout,
        stderr,
    } = io;
    let get = |k: &str| vars.get(k).map(str::to_owned);
    let get: &dyn Fn(&str) -> Option<String> = &get;
    let program = args
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or(P::NAME)
        .to_owned();
    // ECS agent conventions, before any CNI dispatch.
    match args.get(1).map(String::as_str) {
        Some("--version") => {
            let v = json!({
                "version": crate::VERSION,
                "gitShortHash": option_env!("CNI_SUITE_GIT_HASH").unwrap_or("unknown"),
                "dirty": option_env!("CNI_SUITE_GIT_DIRTY") == Some("true"),
                "built": option_env!("CNI_SUITE_BUILT").unwrap_or("unknown"),
            });
            return emit(stdout, &v, 0);
        }
        Some("--capabilities") => {
            return emit(stdout, &json!({ "capabilities": P::CAPABILITIES }), 0);
        }
        _ => {}
    }
    crate::log::init(&program, get);
    let Some(cmd_str) = get("CNI_COMMAND").filter(|c| !c.is_empty()) else {
        let _ = writeln!(
            stderr,
            "CNI {} plugin {} ({}); CNI protocol versions supported: {}",
            P::NAME,
            crate::VERSION,
            P::ABOUT,
            SpecVersion::supported_strings().join(", ")
        );
        return 0;
    };
    let Some(command) = Command::parse(&cmd_str) else {
        let e = Error::UnknownCommand(cmd_str);
        return emit(stdout, &e.to_json(SpecVersion::LATEST.as_str()), 1);
    };
    if command == Command::Version {
        let v = json!({
            "cniVersion": SpecVersion::LATEST.as_str(),
            "supportedVersions": SpecVersion::supported_strings(),
        });
        return emit(stdout, &v, 0);
    }
    let mut reported_version = SpecVersion::LATEST.as_str().to_owned();
    let started = std::time::Instant::now();
    let container = get("CNI_CONTAINERID").unwrap_or_default();
    let ifname = get("CNI_IFNAME").unwrap_or_default();
    crate::log_debug!("{cmd_str} container {container:?} ifname {ifname:?} starting");
    match dispatch(
        plugin,
        command,
        vars,
        stdin,
        program,
        &mut reported_version,
        end,
    ) {
        Ok(out) => {
            crate::log_info!(
                "{cmd_str} container {container:?} ifname {ifname:?} done in {:?}",
                started.elapsed()
            );
            match out {
                Some(result) => {
                    let status = emit(stdout, &result, 0);
                    if end == Teardown::Exit {
                        std::mem::forget(result);
                    }
                    status
                }
                None => 0,
            }
        }
        Err(e) => {
            // The error object on stdout is the report; the log line is for the log file.
            crate::log_info!(
                "{cmd_str} container {container:?} ifname {ifname:?} failed (code {}): {e}",
                e.code()
            );
            emit(stdout, &e.to_json(&reported_version), 1)
        }
    }
}

fn emit(out: &mut dyn Write, v: &Value, status: u8) -> u8 {
    // straight to bytes: `Value`'s Display goes through the formatting machinery
    let Ok(mut text) = serde_json::to_vec(v) else {
        return 1;
    };
    text.push(b'\n');
    match out.write_all(&text).and_then(|()| out.flush()) {
        Ok(()) => status,
        Err(_) => 1,
    }
}

fn read_stdin(stdin: &mut dyn Read) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    let limit = STDIN_LIMIT as u64 + 1;
    stdin
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(Error::Stdin)?;
    if buf.len() > STDIN_LIMIT {
        return Err(Error::StdinTooLarge { limit: STDIN_LIMIT });
    }
    Ok(buf)
}

fn dispatch<P: Plugin>(
    plugin: &P,
    command: Command,
    vars: Vars,
    stdin: &mut dyn Read,
    program: String,
    reported_version: &mut String,
    end: Teardown,
) -> Result<Option<Value>, Error> {
    let bytes = read_stdin(stdin)?;
    // Decode first so that every later error is reported in the config's version.
    let decoded: Result<Value, Error> =
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()));
    if let Some(v) = decoded.as_ref().ok().and_then(crate::version_hint) {
        if let Some(parsed) = SpecVersion::parse(v) {
            crate::set_reported_version(parsed);
            v.clone_into(reported_version);
        }
    }
    let env = Env::load_for(command, &|k| vars.get(k).map(str::to_owned), P::USES_NETNS)?;
    let conf = NetConf::from_value(decoded?)?;
    let version =
        SpecVersion::parse(&conf.cni_version).ok_or_else(|| Error::IncompatibleVersion {
            requested: conf.cni_version.clone(),
            supported: SpecVersion::supported_strings(),
        })?;
    let verb_ok = match command {
        Command::Check => version.allows_check(),
        Command::Gc | Command::Status => version.allows_gc_and_status(),
        _ => true,
    };
    if !verb_ok {
        return Err(Error::VerbNotInVersion {
            command: command.as_str(),
            version: conf.cni_version.clone(),
        });
    }
    if !is_cni_identifier(&conf.name) {
        return Err(Error::invalid_config(format!(
            "key \"name\": \"{}\" is missing or not [a-zA-Z0-9][a-zA-Z0-9_.-]*",
            conf.name
        )));
    }
    let inv = Invocation {
        env,
        vars,
        version,
        conf,
        stdin: bytes,
        program,
    };
    let out = match command {
        Command::Add => plugin.add(&inv).map(|r| Some(r.to_json(version))),
        Command::Del => plugin.del(&inv).map(|()| None),
        Command::Check => plugin.check(&inv).map(|()| None),
        Command::Gc => plugin.gc(&inv).map(|()| None),
        Command::Status => plugin.status(&inv).map(|()| None),
        Command::Version => Ok(None),
    };
    if end == Teardown::Exit {
        std::mem::forget(inv);
    }
    // The one place a plugin's error becomes a CNI error object.
    out.map_err(|e| Error::from_plugin(&e))
}
