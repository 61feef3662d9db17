//! Black-box tests of the plugins under the limits a runtime may set (issue 15, "Bad input /
//! limits"): a pids limit (what RLIMIT_NPROC would be for a non-root runtime; root ignores
//! RLIMIT_NPROC, so the pids cgroup is how a node really caps it), RLIMIT_NOFILE from 3 up, and
//! RLIMIT_AS. Each ADD either works or fails with a clear CNI error object naming what ran out,
//! never with a crash, and a failed ADD leaves no link and no lease behind.
//!
//! Below the address-space floor a process cannot even start (the kernel refuses to map the
//! binary: `execve` fails, or the process is killed with SIGSEGV before `main`); the tests
//! find that floor and only look above it.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_support::*;

/// Limits applied to a plugin process between fork and exec.
#[derive(Clone, Copy, Default)]
struct Limits<'a> {
    nofile: Option<u64>,
    address_space: Option<u64>,
    /// `cgroup.procs` of a pids cgroup the process joins.
    pids_cgroup: Option<&'a PidsCgroup>,
}

/// Runs `bin` inside `host` with `env`, `stdin` and `limits` (a copy of `run_plugin` with the
/// limits set in the child).
fn run_limited(
    bin: &Path,
    host: &TestNs,
    env: &[(String, String)],
    stdin: &[u8],
    limits: Limits<'_>,
) -> PluginOutput {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    netns_fixtures::enter_before_exec(&mut cmd, host.path());
    let procs = limits
        .pids_cgroup
        .map(|c| CString::new(c.dir.join("cgroup.procs").as_os_str().as_encoded_bytes()))
        .transpose()
        .expect("cgroup path");
    let (nofile, address_space) = (limits.nofile, limits.address_space);
    // SAFETY: the hook runs between fork and exec and only makes system calls (open, write,
    // close, setrlimit) on data prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(p) = &procs {
                // "0" moves the writing process itself
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            for (resource, value) in [
                (libc::RLIMIT_NOFILE, nofile),
                (libc::RLIMIT_AS, address_space),
            ] {
                if let Some(v) = value {
                    let lim = libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    };
                    if libc::setrlimit(resource, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        // the kernel refused to map the binary under this address-space limit
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
            return PluginOutput {
                status: 127,
                stdout: String::new(),
                stderr: format!("exec: {e}"),
                timed_out: false,
            };
        }
        Err(e) => panic!("spawn {}: {e}", bin.display()),
    };
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let _ = child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout);
    let status = child.wait().expect("wait");
    let _ = writer.join();
    let stderr = err_reader.join().expect("stderr reader");
    use std::os::unix::process::ExitStatusExt;
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    PluginOutput {
        status,
        stdout,
        stderr,
        timed_out: false,
    }
}

/// A pids cgroup of our own (cgroup v1 `pids` hierarchy, or v2), removed on drop.
struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    fn new(max: u32) -> PidsCgroup {
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let root = if v1.join("cgroup.procs").exists() {
            v1.to_path_buf()
        } else {
            PathBuf::from("/sys/fs/cgroup")
        };
        let dir = root.join(format!(
            "cnitest-limits-{}",
            netns_fixtures::unique_suffix()
        ));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::write(dir.join("pids.max"), max.to_string())
            .unwrap_or_else(|e| panic!("set pids.max in {}: {e}", dir.display()));
        PidsCgroup { dir }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // its processes have exited (each run is waited for)
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// One plugin in a simulated host, with a container namespace and (for eni) a fake ENI.
struct Case {
    plugin: &'static str,
    sim: SimHost,
    ctr: TestNs,
    eni: Option<netns_fixtures::FakeEni>,
    data: PathBuf,
    conf: Value,
}

const ENI_MAC: &str = "0a:1b:2c:3d:4e:9f";

impl Case {
    fn new(plugin: &'static str) -> Case {
        let tag = match plugin {
            "loopback" => "lml",
            "ipam" => "lmi",
            "eni" => "lme",
            _ => "lmb",
        };
        let sim = SimHost::new(tag);
        let ctr = TestNs::new(&format!("{tag}c"));
        let data = std::env::temp_dir().join(format!(
            "cnitest-limits-{}",
            netns_fixtures::unique_suffix()
        ));
        let dir = data.display().to_string();
        let (eni, conf) = match plugin {
            "loopback" => (
                None,
                json!({"cniVersion": "1.0.0", "name": "lim", "type": "loopback"}),
            ),
            "ipam" => (
                None,
                json!({"cniVersion": "1.0.0", "name": "lim", "type": "ipam",
                   "ipam": {"type": "host-local", "dataDir": dir,
                            "ranges": [[{"subnet": "10.77.0.0/24"}]]}}),
            ),
            "eni" => (
                Some(sim.add_fake_eni(ENI_MAC, Some("10.0.7.1/24"), None, 1500)),
                json!({"cniVersion": "1.0.0", "name": "lim", "type": "eni",
                   "eniMACAddress": ENI_MAC, "eniIPAddresses": ["10.0.7.17/24"],
                   "gatewayIPAddresses": ["10.0.7.1"], "blockInstanceMetadata": false}),
            ),
            _ => (
                None,
                json!({"cniVersion": "1.0.0", "name": "lim", "type": "bridge",
                   "bridge": "lmbr0", "isGateway": true,
                   "ipam": {"type": "host-local", "dataDir": dir,
                            "ranges": [[{"subnet": "10.78.0.0/24"}]]}}),
            ),
        };
        Case {
            plugin,
            sim,
            ctr,
            eni,
            data,
            conf,
        }
    }

    fn env(&self, verb: &str) -> Vec<(String, String)> {
        let ifname = if self.plugin == "loopback" {
            "lo"
        } else {
            "eth0"
        };
        cni_env(
            verb,
            "ctr-lim",
            &self.ctr.path().display().to_string(),
            ifname,
        )
    }

    fn run(&self, verb: &str, limits: Limits<'_>) -> PluginOutput {
        run_limited(
            &bin(self.plugin),
            &self.sim.host,
            &self.env(verb),
            self.conf.to_string().as_bytes(),
            limits,
        )
    }

    /// DEL without limits (after a successful ADD), so the next ADD starts afresh.
    fn del(&self) {
        let out = self.run("DEL", Limits::default());
        assert_eq!(out.status, 0, "{} DEL: {out:?}", self.plugin);
    }

    /// Leases on disk (host-local files named by address).
    fn leases(&self) -> Vec<String> {
        let dir = self.data.join("lim");
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing of an ADD is left: the container holds only `lo` (down, unless loopback's ADD
    /// worked), the ENI is in the host, no veth in the host, no lease.
    fn assert_untouched(&self, what: &str) {
        let ctr_links: Vec<String> = self
            .ctr
            .ip_json(&["link", "show"])
            .as_array()
            .expect("links")
            .iter()
            .map(|l| l["ifname"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(ctr_links, ["lo"], "{what}: links left in the container");
        if let Some(eni) = &self.eni {
            assert!(
                self.sim.host.link(&eni.name).is_some(),
                "{what}: the ENI {} is no longer in the host",
                eni.name
            );
        }
        let host_veths: Vec<String> = self
            .sim
            .host
            .ip_json(&["link", "show", "type", "veth"])
            .as_array()
            .expect("links")
            .iter()
            .map(|l| l["ifname"].as_str().unwrap_or_default().to_string())
            .filter(|n| self.eni.as_ref().is_none_or(|e| *n != e.name))
            .collect();
        assert!(host_veths.is_empty(), "{what}: veths left: {host_veths:?}");
        assert!(
            self.leases().is_empty(),
            "{what}: leases left: {:?}",
            self.leases()
        );
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = self.sim.host.ip(&["link", "del", "lmbr0"]).status.success();
    }
}

/// A failed run printed one CNI error object with this code and a message containing `needle`,
/// and did not crash (no signal, no panic message).
fn assert_clean_error(out: &PluginOutput, codes: &[u64], needle: &str, what: &str) {
    assert_eq!(out.status, 1, "{what}: {out:?}");
    let v = out.json();
    let code = v["code"].as_u64().unwrap_or_default();
    assert!(codes.contains(&code), "{what}: code {code}: {v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "{what}: message {msg:?} lacks {needle:?}"
    );
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

/// No plugin spawns a thread (each enters the container namespace on its only thread and comes
/// back, `netns::Netns::run`), so a pids limit of one process stops none of them.
#[test]
fn every_plugin_adds_under_a_pids_limit_of_one() {
    for plugin in ["loopback", "ipam", "eni", "bridge"] {
        let case = Case::new(plugin);
        let cg = PidsCgroup::new(1);
        let out = case.run(
            "ADD",
            Limits {
                pids_cgroup: Some(&cg),
                ..Limits::default()
            },
        );
        assert_eq!(out.status, 0, "{plugin} ADD with pids.max=1: {out:?}");
        let v = out.json();
        match plugin {
            "loopback" => {
                assert_eq!(v["interfaces"][0]["name"], "lo");
                let flags = case.ctr.link("lo").expect("lo")["flags"].to_string();
                assert!(flags.contains("\"UP\""), "lo is not up: {flags}");
            }
            "ipam" => assert!(v["ips"][0]["address"].is_string(), "{v}"),
            _ => {
                let ifname = v["interfaces"]
                    .as_array()
                    .and_then(|i| i.iter().find(|i| i["sandbox"].is_string()))
                    .map(|i| i["name"].as_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                assert!(case.ctr.link(&ifname).is_some(), "{plugin}: {v}");
            }
        }
        case.del();
        case.assert_untouched(&format!("{plugin} ADD with pids.max=1, then DEL"));
    }
}

/// RLIMIT_NOFILE from 3 (only the standard streams) up: every ADD either works or fails with
/// an error naming "Too many open files" (code 11 for the namespace and netlink, 100 for the
/// IPAM store's files), and leaves nothing behind. (A dynamically linked build may not start
/// at all at 3: its loader needs a descriptor for the shared libraries.)
#[test]
fn open_file_limits_give_clear_errors_and_no_partial_change() {
    for plugin in ["loopback", "ipam", "eni", "bridge"] {
        let case = Case::new(plugin);
        let mut failed = 0;
        for n in 3..=8 {
            let what = format!("{plugin} ADD with RLIMIT_NOFILE={n}");
            let out = case.run(
                "ADD",
                Limits {
                    nofile: Some(n),
                    ..Limits::default()
                },
            );
            if out.status == 0 {
                assert!(
                    out.json()["interfaces"].is_array() || plugin == "ipam",
                    "{what}"
                );
                case.del();
                continue;
            }
            failed += 1;
            if out.status == 127 && out.stderr.contains("error while loading shared libraries") {
                // a dynamically linked (debug) build: the loader itself needs a descriptor,
                // so the plugin never started (the static release build has no loader)
                assert_eq!(out.stdout, "", "{what}");
                case.assert_untouched(&what);
                continue;
            }
            assert_clean_error(&out, &[11, 100], "Too many open files", &what);
            if plugin != "loopback" {
                case.assert_untouched(&what);
            }
        }
        assert!(failed >= 1, "{plugin}: not even RLIMIT_NOFILE=3 failed");
        // and with the limit gone, the same ADD works
        let out = case.run("ADD", Limits::default());
        assert_eq!(out.status, 0, "{plugin} ADD without limits: {out:?}");
        case.del();
    }
}

/// The smallest RLIMIT_AS (64 KiB steps) under which `plugin` answers VERSION: the floor
/// below which the process cannot start at all.
fn address_space_floor(case: &Case) -> u64 {
    let ok = |limit: u64| {
        let out = run_limited(
            &bin(case.plugin),
            &case.sim.host,
            &[("CNI_COMMAND".into(), "VERSION".into())],
            b"{}",
            Limits {
                address_space: Some(limit),
                ..Limits::default()
            },
        );
        out.status == 0
    };
    let (mut lo, mut hi) = (1u64 << 20, 1u64 << 30);
    assert!(ok(hi), "{}: VERSION fails even with 1 GiB", case.plugin);
    while hi - lo > 64 << 10 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) { hi = mid } else { lo = mid }
    }
    hi
}

/// One MiB above the start-up floor there is room for the work of an ADD (no plugin needs a
/// thread's stack): every plugin works. Below the floor nothing runs at all: no output.
#[test]
fn address_space_limit_gives_clear_errors_and_no_partial_change() {
    for plugin in ["loopback", "eni", "bridge"] {
        let case = Case::new(plugin);
        let floor = address_space_floor(&case);
        let below = case.run(
            "ADD",
            Limits {
                address_space: Some(floor - (256 << 10)),
                ..Limits::default()
            },
        );
        assert_ne!(
            below.status, 0,
            "{plugin} below the floor {floor}: {below:?}"
        );
        assert_eq!(below.stdout, "", "{plugin} below the floor {floor}");
        case.assert_untouched(&format!("{plugin} ADD below the floor"));

        let what = format!("{plugin} ADD with RLIMIT_AS = floor {floor} + 1 MiB");
        let out = case.run(
            "ADD",
            Limits {
                address_space: Some(floor + (1 << 20)),
                ..Limits::default()
            },
        );
        assert_eq!(out.status, 0, "{what}: {out:?}");
        case.del();
        case.assert_untouched(&format!("{what}, then DEL"));
    }
}

/// RLIMIT_AS swept in 64 KiB steps from the start-up floor to 3 MiB above it, for every
/// plugin: each ADD either works, or fails with one CNI error object (code 11: "out of
/// memory" from the allocator of `cni_spec::main!`), or did
/// not start at all (nothing on stdout, nothing changed). Never an abort (SIGABRT: Rust's
/// default reaction to a failed allocation), never a signal after the plugin wrote anything,
/// and after a failure the runtime's DEL leaves nothing behind.
#[test]
fn address_space_sweep_never_aborts() {
    for plugin in ["loopback", "ipam", "eni", "bridge"] {
        let case = Case::new(plugin);
        let floor = address_space_floor(&case);
        let (mut worked, mut errors, mut unstarted) = (0, 0, 0);
        let mut limit = floor.saturating_sub(256 << 10);
        while limit <= floor + (3 << 20) {
            let what = format!("{plugin} ADD with RLIMIT_AS={limit} (floor {floor})");
            let out = case.run(
                "ADD",
                Limits {
                    address_space: Some(limit),
                    ..Limits::default()
                },
            );
            assert_ne!(out.status, 128 + libc::SIGABRT, "{what}: aborted: {out:?}");
            assert!(
                !out.stderr.contains("memory allocation of"),
                "{what}: {out:?}"
            );
            if out.status == 0 {
                worked += 1;
                let v = out.json();
                assert!(
                    v["interfaces"].is_array() || (plugin == "ipam" && v["ips"].is_array()),
                    "{what}: {v}"
                );
            } else if out.stdout.is_empty() {
                // never started: the kernel refused the mapping, or a signal before main
                unstarted += 1;
                assert!(out.status == 127 || out.status > 128, "{what}: {out:?}");
                case.assert_untouched(&what);
            } else {
                errors += 1;
                assert_clean_error(&out, &[11], "", &what);
            }
            // the runtime's DEL after any ADD, then nothing is left
            case.del();
            case.assert_untouched(&format!("{what}, then DEL"));
            limit += 64 << 10;
        }
        assert!(worked >= 1, "{plugin}: no ADD worked up to floor + 3 MiB");
        eprintln!(
            "{plugin}: floor {floor}: {worked} worked, {errors} errors, {unstarted} never started"
        );
    }
}
