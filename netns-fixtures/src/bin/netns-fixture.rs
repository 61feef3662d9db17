//! `netns-fixture`: the simulated hosts of `netns_fixtures` for shell scripts (benchmarks,
//! examples). `up` builds a named topology that outlives the command and prints what it made;
//! `down` tears it down by name, killing by PID the processes `spawn` started in it. The
//! fixture is recorded in `$NETNS_FIXTURE_STATE_DIR/NAME.json` (default
//! `/run/netns-fixtures`). Run `netns-fixture help` for the commands.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use netns_fixtures::{EniSpec, NETNS_RUN_DIR, SimHost, TestNs, TrunkSpec, enter_before_exec};
use serde_json::{Value, json};

const USAGE: &str = "\
netns-fixture: simulated EC2 hosts in network namespaces, for scripts (benchmarks, examples)

usage:
  netns-fixture up NAME [ELEMENT...] [--json]
      create fixture NAME: namespaces NAME-host (where plugins run; lo up) and NAME-subnet
      (the VPC side; lo up), plus the ELEMENTs; print what was made
  netns-fixture add NAME ELEMENT... [--json]
      add ELEMENTs to an existing fixture; print the whole fixture
  netns-fixture spawn NAME LABEL [--log FILE] -- CMD [ARG...]
      start CMD in the background inside namespace NAME-LABEL, in a session of its own, stdin
      /dev/null, stdout and stderr to FILE (appended) or /dev/null; print its PID
  netns-fixture show NAME [--json]
      print what fixture NAME holds
  netns-fixture down NAME
      kill the processes spawned in it (by PID, with their process group), delete its
      namespaces (with every link in them) and forget it; a fixture that is gone is fine
  netns-fixture list
      the names of the fixtures that exist

ELEMENTs:
  --ns LABEL                  one more namespace NAME-LABEL ([a-z0-9]+; lo down, as new)
  --eni KEY=VAL[,KEY=VAL]...  a fake ENI: a veth end in NAME-host whose peer in NAME-subnet
                              answers as its gateway; keys: name, peer, mac, mtu (both ends),
                              gw4, gw6 (gateway CIDRs on the peer, IPv6 without DAD)
  --trunk KEY=VAL[,...]       a fake trunk: keys name, peer, mac, mtu, and vlan=ID:GW_CIDR
                              (repeatable; a VLAN link PEER.ID on the peer, needs 802.1Q)
  --primary                   a fake primary interface carrying the default routes
                              (198.51.100.2/24 via .1, 2001:db8:ffff::2/64 via ::1)

Output (default): KEY=VALUE lines for `eval`: FIXTURE_NAME, FIXTURE_STATE; <LABEL>_NS for every
namespace (HOST_NS, SUBNET_NS, TASK_NS...); ENI_{NAME,MAC,INDEX,MTU,PEER,GW4,GW6} for the
first ENI, ENI2_... for the second; TRUNK_{NAME,MAC,INDEX,MTU,PEER,VLANS} (VLANS: ID:LINK:GW
...), TRUNK2_...; PRIMARY_{NAME,MAC,INDEX,ADDR4,GW4,ADDR6,GW6}. --json prints the fixture's
record instead. Needs root and ip(8). Exit status: 0, 1 on failure, 2 on a usage error.
";

/// A failed command: a usage error (exit 2) or anything else (exit 1).
enum Failure {
    Usage(String),
    Failed(String),
}

type Res<T> = Result<T, Failure>;

fn usage<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure::Usage(msg.into()))
}

fn failed<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure::Failed(msg.into()))
}

fn main() -> ExitCode {
    // Fixture setup reports failures by panicking (it is test code); say them in one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("failed");
        eprintln!("netns-fixture: {msg}");
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    match catch_unwind(AssertUnwindSafe(|| run(&args))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Failure::Usage(msg))) => {
            eprintln!("netns-fixture: {msg} (netns-fixture help: the commands)");
            ExitCode::from(2)
        }
        Ok(Err(Failure::Failed(msg))) => {
            eprintln!("netns-fixture: {msg}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

fn run(args: &[String]) -> Res<()> {
    let Some((cmd, rest)) = args.split_first() else {
        return usage("no command");
    };
    match cmd.as_str() {
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        "up" => cmd_up(rest),
        "add" => cmd_add(rest),
        "spawn" => cmd_spawn(rest),
        "show" => cmd_show(rest),
        "down" => cmd_down(rest),
        "list" => cmd_list(rest),
        other => usage(format!("unknown command {other:?}")),
    }
}

// --- arguments ---------------------------------------------------------------------------------

/// One thing to build.
enum Element {
    Ns(String),
    Eni(EniSpec),
    Trunk(TrunkSpec),
    Primary,
}

/// `NAME ELEMENT... [--json]`.
fn parse_name_and_elements(args: &[String]) -> Res<(String, Vec<Element>, bool)> {
    let Some((name, mut rest)) = args.split_first() else {
        return usage("missing NAME");
    };
    check_fixture_name(name)?;
    let mut elements = Vec::new();
    let mut json = false;
    while let Some((flag, tail)) = rest.split_first() {
        rest = tail;
        let mut value = || -> Res<&String> {
            let Some((v, tail)) = rest.split_first() else {
                return usage(format!("{flag} needs a value"));
            };
            rest = tail;
            Ok(v)
        };
        match flag.as_str() {
            "--json" => json = true,
            "--primary" => elements.push(Element::Primary),
            "--ns" => {
                let label = value()?;
                check_label(label)?;
                elements.push(Element::Ns(label.clone()));
            }
            "--eni" => elements.push(Element::Eni(parse_eni(value()?)?)),
            "--trunk" => elements.push(Element::Trunk(parse_trunk(value()?)?)),
            other => return usage(format!("unknown argument {other:?}")),
        }
    }
    Ok((name.clone(), elements, json))
}

fn check_fixture_name(name: &str) -> Res<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        usage(format!(
            "bad fixture name {name:?}: 1-64 characters of [A-Za-z0-9_-], not starting with -"
        ))
    }
}

fn check_label(label: &str) -> Res<()> {
    if label.is_empty()
        || label.len() > 20
        || !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return usage(format!("bad namespace label {label:?}: 1-20 of [a-z0-9]"));
    }
    Ok(())
}

fn check_ifname(key: &str, v: &str) -> Res<String> {
    if v.is_empty()
        || v.len() > 15
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return usage(format!(
            "{key}={v:?}: an interface name is 1-15 of [A-Za-z0-9._-]"
        ));
    }
    Ok(v.to_string())
}

fn check_mac(v: &str) -> Res<String> {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return usage(format!("mac={v:?}: not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    Ok(v.to_ascii_lowercase())
}

fn check_mtu(v: &str) -> Res<u32> {
    match v.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => usage(format!("mtu={v:?}: a number from 68 to 65535")),
    }
}

fn check_cidr(key: &str, v: &str, v6: bool) -> Res<String> {
    let ok = v.split_once('/').is_some_and(|(a, p)| {
        let addr_ok = if v6 {
            a.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            a.parse::<std::net::Ipv4Addr>().is_ok()
        };
        addr_ok
            && p.parse::<u8>()
                .is_ok_and(|p| p <= if v6 { 128 } else { 32 })
    });
    if !ok {
        return usage(format!(
            "{key}={v:?}: not an IPv{} CIDR",
            if v6 { 6 } else { 4 }
        ));
    }
    Ok(v.to_string())
}

/// `k=v,k=v` (values may not contain commas).
fn key_values(spec: &str) -> Res<Vec<(&str, &str)>> {
    spec.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
            _ => usage(format!("{kv:?} in {spec:?} is not KEY=VALUE")),
        })
        .collect()
}

fn parse_eni(spec: &str) -> Res<EniSpec> {
    let mut eni = EniSpec::default();
    for (k, v) in key_values(spec)? {
        match k {
            "name" => eni.name = Some(check_ifname(k, v)?),
            "peer" => eni.peer_name = Some(check_ifname(k, v)?),
            "mac" => eni.mac = Some(check_mac(v)?),
            "mtu" => eni.mtu = Some(check_mtu(v)?),
            "gw4" => eni.gw_v4_cidr = Some(check_cidr(k, v, false)?),
            "gw6" => eni.gw_v6_cidr = Some(check_cidr(k, v, true)?),
            _ => return usage(format!("--eni: unknown key {k:?}")),
        }
    }
    Ok(eni)
}

fn parse_trunk(spec: &str) -> Res<TrunkSpec> {
    let mut trunk = TrunkSpec::default();
    for (k, v) in key_values(spec)? {
        match k {
            "name" => trunk.name = Some(check_ifname(k, v)?),
            "peer" => trunk.peer_name = Some(check_ifname(k, v)?),
            "mac" => trunk.mac = Some(check_mac(v)?),
            "mtu" => trunk.mtu = Some(check_mtu(v)?),
            "vlan" => {
                let Some((id, cidr)) = v.split_once(':') else {
                    return usage(format!("vlan={v:?}: expected ID:GATEWAY_CIDR"));
                };
                let id = match id.parse::<u16>() {
                    Ok(id) if (1..=4094).contains(&id) => id,
                    _ => return usage(format!("vlan={v:?}: the VLAN id is 1-4094")),
                };
                let cidr = check_cidr(k, cidr, cidr.contains(':'))?;
                trunk.vlans.push((id, cidr));
            }
            _ => return usage(format!("--trunk: unknown key {k:?}")),
        }
    }
    Ok(trunk)
}

// --- the record ----------------------------------------------------------------------------------

/// A test tool's own knob (the environment rule in clippy.toml is for plugins).
#[allow(clippy::disallowed_methods)]
fn state_dir() -> PathBuf {
    std::env::var_os("NETNS_FIXTURE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/netns-fixtures"))
}

fn state_path(name: &str) -> PathBuf {
    state_dir().join(format!("{name}.json"))
}

/// The record of one fixture, locked (flock) while this value lives.
struct Record {
    file: File,
    path: PathBuf,
}

impl Record {
    fn lock(file: File, path: PathBuf) -> Res<Record> {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            return failed(format!("lock {}: {e}", path.display()));
        }
        Ok(Record { file, path })
    }

    /// A new record for `name`; fails if one exists.
    fn create(name: &str) -> Res<Record> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir)
            .or_else(|e| failed(format!("create {}: {e}", dir.display())))?;
        let path = state_path(name);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => Record::lock(file, path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => failed(format!(
                "fixture {name} exists ({}): `netns-fixture down {name}` first",
                path.display()
            )),
            Err(e) => failed(format!("create {}: {e}", path.display())),
        }
    }

    /// The record of `name`, or `None` when there is none.
    fn open(name: &str) -> Res<Option<Record>> {
        let path = state_path(name);
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => Record::lock(file, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => failed(format!("open {}: {e}", path.display())),
        }
    }

    fn open_existing(name: &str) -> Res<Record> {
        match Record::open(name)? {
            Some(r) => Ok(r),
            None => failed(format!("no fixture {name} (netns-fixture list)")),
        }
    }

    fn read(&mut self) -> Res<Value> {
        let mut text = String::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut text))
            .or_else(|e| failed(format!("read {}: {e}", self.path.display())))?;
        serde_json::from_str(&text).or_else(|e| {
            failed(format!(
                "{} is not a fixture record: {e}",
                self.path.display()
            ))
        })
    }

    fn write(&mut self, v: &Value) -> Res<()> {
        let text = format!("{v:#}\n");
        self.file
            .set_len(0)
            .and_then(|_| self.file.seek(SeekFrom::Start(0)))
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .or_else(|e| failed(format!("write {}: {e}", self.path.display())))
    }

    fn remove(self) -> Res<()> {
        std::fs::remove_file(&self.path)
            .or_else(|e| failed(format!("remove {}: {e}", self.path.display())))
    }
}

fn namespaces(rec: &Value) -> Vec<(String, String)> {
    rec["namespaces"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(l, n)| (l.clone(), n.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn array_mut<'a>(rec: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    if !rec[key].is_array() {
        rec[key] = Value::Array(Vec::new());
    }
    match &mut rec[key] {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

// --- up, add -------------------------------------------------------------------------------------

fn cmd_up(args: &[String]) -> Res<()> {
    let (name, elements, json_out) = parse_name_and_elements(args)?;
    let (host, subnet) = (format!("{name}-host"), format!("{name}-subnet"));
    for ns in [&host, &subnet] {
        if Path::new(NETNS_RUN_DIR).join(ns).exists() {
            return failed(format!("namespace {ns} exists already"));
        }
    }
    let mut record = Record::create(&name)?;
    let mut rec = json!({
        "name": name,
        "namespaces": {"host": host, "subnet": subnet},
        "enis": [], "trunks": [], "primary": null, "processes": [],
    });
    // Until every step succeeded, the namespaces belong to this process: a failure (a panic of
    // the fixtures) drops them, which deletes them, and the record goes too.
    let built = catch_unwind(AssertUnwindSafe(|| {
        let sim = SimHost::with_names(&host, &subnet);
        let extra = build(&sim, &mut rec, &elements);
        (sim, extra)
    }));
    match built {
        Ok((sim, extra)) => {
            if let Err(e) = record.write(&rec) {
                let _ = record.remove();
                return Err(e); // dropping sim and extra deletes the namespaces
            }
            for ns in extra {
                ns.keep();
            }
            sim.host.keep();
            sim.subnet.keep();
            print_record(&rec, json_out);
            Ok(())
        }
        Err(panic) => {
            let _ = record.remove();
            resume_unwind(panic)
        }
    }
}

fn cmd_add(args: &[String]) -> Res<()> {
    let (name, elements, json_out) = parse_name_and_elements(args)?;
    if elements.is_empty() {
        return usage("add: nothing to add");
    }
    let mut record = Record::open_existing(&name)?;
    let mut rec = record.read()?;
    let ns_of = |label: &str| -> Res<TestNs> {
        let n = rec["namespaces"][label].as_str().unwrap_or_default();
        TestNs::open(n).map_or_else(|| failed(format!("namespace {n} of {name} is gone")), Ok)
    };
    let sim = SimHost {
        host: ns_of("host")?,
        subnet: ns_of("subnet")?,
    };
    let extra = build(&sim, &mut rec, &elements);
    record.write(&rec)?;
    for ns in extra {
        ns.keep();
    }
    print_record(&rec, json_out);
    Ok(())
}

/// Builds `elements` into `sim`, recording each in `rec`; returns the new namespaces (still
/// owned: deleted if the caller fails before keeping them).
fn build(sim: &SimHost, rec: &mut Value, elements: &[Element]) -> Vec<TestNs> {
    let name = rec["name"].as_str().unwrap_or_default().to_string();
    let mut extra = Vec::new();
    for element in elements {
        match element {
            Element::Ns(label) => {
                assert!(
                    rec["namespaces"].get(label).is_none(),
                    "namespace label {label} is taken in fixture {name}"
                );
                let ns = TestNs::with_name(&format!("{name}-{label}"));
                rec["namespaces"][label] = json!(ns.name());
                extra.push(ns);
            }
            Element::Eni(spec) => {
                let e = sim.add_fake_eni_with(spec);
                array_mut(rec, "enis").push(json!({
                    "name": e.name, "mac": e.mac, "index": e.index, "mtu": e.mtu,
                    "peer": e.peer_name,
                    "gw4": e.gw_v4.map(|a| a.to_string()), "gw6": e.gw_v6.map(|a| a.to_string()),
                }));
            }
            Element::Trunk(spec) => {
                let t = sim.add_fake_trunk(spec);
                let vlans: Vec<Value> = t
                    .vlans
                    .iter()
                    .map(|(id, link, gw)| json!({"id": id, "link": link, "gw": gw.to_string()}))
                    .collect();
                array_mut(rec, "trunks").push(json!({
                    "name": t.name, "mac": t.mac, "index": t.index, "mtu": t.mtu,
                    "peer": t.peer_name, "vlans": vlans,
                }));
            }
            Element::Primary => {
                assert!(rec["primary"].is_null(), "fixture {name} has a primary");
                let p = sim.add_primary_with_default_route();
                rec["primary"] = json!({
                    "name": p.name, "mac": p.mac, "index": p.index,
                    "addr4": p.addr_v4, "gw4": p.gw_v4.to_string(),
                    "addr6": p.addr_v6, "gw6": p.gw_v6.to_string(),
                });
            }
        }
    }
    extra
}

// --- output --------------------------------------------------------------------------------------

fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:,@%+=-".contains(&b))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `KEY=VALUE` lines of a record.
fn env_lines(rec: &Value) -> Vec<(String, String)> {
    let name = scalar(&rec["name"]);
    let mut out = vec![
        ("FIXTURE_NAME".to_string(), name.clone()),
        (
            "FIXTURE_STATE".to_string(),
            state_path(&name).display().to_string(),
        ),
    ];
    for (label, ns) in namespaces(rec) {
        out.push((format!("{}_NS", label.to_ascii_uppercase()), ns));
    }
    let numbered = |kind: &str, i: usize| {
        if i == 0 {
            kind.to_string()
        } else {
            format!("{kind}{}", i + 1)
        }
    };
    let empty = Vec::new();
    for (i, e) in rec["enis"].as_array().unwrap_or(&empty).iter().enumerate() {
        let k = numbered("ENI", i);
        for f in ["name", "mac", "index", "mtu", "peer", "gw4", "gw6"] {
            out.push((format!("{k}_{}", f.to_ascii_uppercase()), scalar(&e[f])));
        }
    }
    for (i, t) in rec["trunks"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let k = numbered("TRUNK", i);
        for f in ["name", "mac", "index", "mtu", "peer"] {
            out.push((format!("{k}_{}", f.to_ascii_uppercase()), scalar(&t[f])));
        }
        let vlans: Vec<String> = t["vlans"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|v| format!("{}:{}:{}", v["id"], scalar(&v["link"]), scalar(&v["gw"])))
            .collect();
        out.push((format!("{k}_VLANS"), vlans.join(" ")));
    }
    if let Some(p) = rec["primary"].as_object() {
        for f in ["name", "mac", "index", "addr4", "gw4", "addr6", "gw6"] {
            let v = p.get(f).map(scalar).unwrap_or_default();
            out.push((format!("PRIMARY_{}", f.to_ascii_uppercase()), v));
        }
    }
    out
}

fn print_record(rec: &Value, json_out: bool) {
    if json_out {
        println!("{rec:#}");
    } else {
        for (k, v) in env_lines(rec) {
            println!("{k}={}", shell_quote(&v));
        }
    }
}

fn cmd_show(args: &[String]) -> Res<()> {
    let (name, json_out) = match args {
        [name] => (name, false),
        [name, flag] if flag == "--json" => (name, true),
        _ => return usage("show NAME [--json]"),
    };
    check_fixture_name(name)?;
    let rec = Record::open_existing(name)?.read()?;
    print_record(&rec, json_out);
    Ok(())
}

fn cmd_list(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return usage("list takes no arguments");
    }
    let Ok(rd) = std::fs::read_dir(state_dir()) else {
        return Ok(());
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    names.sort();
    for n in names {
        println!("{n}");
    }
    Ok(())
}

// --- processes -----------------------------------------------------------------------------------

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot) and field 3 (state), or
/// `None` when there is no such process.
fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) is in parentheses and may hold spaces: split after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

fn cmd_spawn(args: &[String]) -> Res<()> {
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return usage("spawn NAME LABEL [--log FILE] -- CMD [ARG...]");
    };
    let (opts, argv) = (&args[..dash], &args[dash + 1..]);
    let (name, label, log) = match opts {
        [name, label] => (name, label, None),
        [name, label, flag, file] if flag == "--log" => (name, label, Some(file)),
        _ => return usage("spawn NAME LABEL [--log FILE] -- CMD [ARG...]"),
    };
    check_fixture_name(name)?;
    let Some((prog, prog_args)) = argv.split_first() else {
        return usage("spawn: no command after --");
    };
    let mut record = Record::open_existing(name)?;
    let mut rec = record.read()?;
    let Some(ns) = rec["namespaces"][label.as_str()]
        .as_str()
        .map(str::to_string)
    else {
        return failed(format!("fixture {name} has no namespace labelled {label}"));
    };
    let ns_path = Path::new(NETNS_RUN_DIR).join(&ns);
    if !ns_path.exists() {
        return failed(format!("namespace {ns} is gone"));
    }
    let (stdout, stderr) = match log {
        Some(file) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .or_else(|e| failed(format!("open log {file}: {e}")))?;
            let g = f
                .try_clone()
                .or_else(|e| failed(format!("dup log {file}: {e}")))?;
            (Stdio::from(f), Stdio::from(g))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = Command::new(prog);
    cmd.args(prog_args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    enter_before_exec(&mut cmd, &ns_path);
    let child = cmd
        .spawn()
        .or_else(|e| failed(format!("start {prog} in {ns}: {e}")))?;
    let pid = i32::try_from(child.id()).or_else(|_| failed("pid out of range"))?;
    let start = proc_stat(pid).map(|(s, _)| s);
    array_mut(&mut rec, "processes").push(json!({
        "pid": pid, "start_time": start, "namespace": ns, "command": argv,
        "log": log,
    }));
    record.write(&rec)?;
    // The child is not waited for: it outlives this command (init reaps it), until `down`.
    drop(child);
    println!("{pid}");
    Ok(())
}

/// Whether the process `pid` started at `start` is still running (not a zombie).
fn running(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, state)) if s == start && state != 'Z')
}

/// Stops the process `pid` (started at clock tick `start`) and its process group: TERM, up to
/// 3 s, then KILL. A PID now used by another process is left alone. Returns whether it ran.
fn stop(pid: i32, start: u64) -> bool {
    let leader = proc_stat(pid);
    let ours = matches!(leader, Some((s, _)) if s == start);
    if leader.is_some() && !ours {
        return false; // the PID was recycled: not ours
    }
    let signal = |sig: libc::c_int| {
        // SAFETY: kill only sends a signal. The group id is the PID of our session leader
        // (setsid at spawn); while any member lives, that number cannot be reused.
        unsafe {
            libc::kill(-pid, sig);
            if ours {
                libc::kill(pid, sig);
            }
        }
    };
    signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while ours && running(pid, start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if ours && running(pid, start) {
        signal(libc::SIGKILL);
    } else {
        // members of the group that ignored TERM
        // SAFETY: as above.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    ours
}

// --- down ----------------------------------------------------------------------------------------

fn cmd_down(args: &[String]) -> Res<()> {
    let [name] = args else {
        return usage("down NAME");
    };
    check_fixture_name(name)?;
    let Some(mut record) = Record::open(name)? else {
        eprintln!("netns-fixture: no fixture {name}: nothing to do");
        return Ok(());
    };
    let rec = record.read()?;
    let mut killed = 0;
    for p in rec["processes"].as_array().into_iter().flatten() {
        let pid = p["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
        if let (Some(pid), Some(start)) = (pid, p["start_time"].as_u64())
            && pid > 1
            && stop(pid, start)
        {
            killed += 1;
        }
    }
    // the extra namespaces first, the host and subnet last (links between them go with them)
    let mut all = namespaces(&rec);
    all.reverse();
    let mut deleted = 0;
    for (_, ns) in &all {
        if let Some(owned) = TestNs::adopt(ns) {
            drop(owned);
            deleted += 1;
        }
    }
    let left: Vec<&str> = all
        .iter()
        .map(|(_, n)| n.as_str())
        .filter(|n| Path::new(NETNS_RUN_DIR).join(n).exists())
        .collect();
    if !left.is_empty() {
        return failed(format!(
            "fixture {name}: could not delete {} (record kept)",
            left.join(" ")
        ));
    }
    record.remove()?;
    eprintln!(
        "netns-fixture: {name} down ({deleted} namespaces deleted, {killed} processes stopped)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Value {
        json!({
            "name": "demo",
            "namespaces": {"host": "demo-host", "subnet": "demo-subnet", "task": "demo-task"},
            "enis": [
                {"name": "eth1", "mac": "0a:1b:2c:3d:4e:5f", "index": 7, "mtu": 9001,
                 "peer": "vpc0", "gw4": "10.0.1.1", "gw6": null},
                {"name": "eni2", "mac": "0a:00:00:00:00:02", "index": 9, "mtu": 1500,
                 "peer": "sub2", "gw4": null, "gw6": "2001:db8::1"},
            ],
            "trunks": [{"name": "trk0", "mac": "0a:00:00:00:00:aa", "index": 11, "mtu": 1500,
                        "peer": "trp0", "vlans": [{"id": 102, "link": "trp0.102", "gw": "10.0.2.1"}]}],
            "primary": null, "processes": [],
        })
    }

    #[test]
    fn env_lines_name_every_element() {
        let lines: Vec<String> = env_lines(&record())
            .into_iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(&v)))
            .collect();
        for want in [
            "FIXTURE_NAME=demo",
            "HOST_NS=demo-host",
            "SUBNET_NS=demo-subnet",
            "TASK_NS=demo-task",
            "ENI_NAME=eth1",
            "ENI_MAC=0a:1b:2c:3d:4e:5f",
            "ENI_MTU=9001",
            "ENI_GW4=10.0.1.1",
            "ENI_GW6=''",
            "ENI2_NAME=eni2",
            "ENI2_GW6=2001:db8::1",
            "TRUNK_PEER=trp0",
            "TRUNK_VLANS=102:trp0.102:10.0.2.1",
        ] {
            assert!(lines.contains(&want.to_string()), "{want} in {lines:?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("PRIMARY_")));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("a-b.c:1/2"), "a-b.c:1/2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn element_specs_are_checked() {
        let eni =
            parse_eni("name=eth1,peer=vpc0,mac=0A:1b:2c:3d:4e:5f,mtu=9001,gw4=10.0.1.1/24").ok();
        let eni = eni.expect("valid spec");
        assert_eq!(eni.name.as_deref(), Some("eth1"));
        assert_eq!(eni.mac.as_deref(), Some("0a:1b:2c:3d:4e:5f"));
        assert_eq!(eni.mtu, Some(9001));
        assert!(parse_eni("name=waytoolonginterfacename").is_err());
        assert!(parse_eni("mac=0a:1b").is_err());
        assert!(parse_eni("gw4=2001:db8::1/64").is_err());
        assert!(parse_eni("colour=red").is_err());
        let trunk = parse_trunk("name=trk0,vlan=102:10.0.2.1/24,vlan=103:fd00::1/64").ok();
        assert_eq!(trunk.expect("valid spec").vlans.len(), 2);
        assert!(parse_trunk("vlan=0:10.0.2.1/24").is_err());
        assert!(check_label("Task").is_err());
        assert!(check_fixture_name("awsvpc123").is_ok());
        assert!(check_fixture_name("a-b_c").is_ok());
        assert!(check_fixture_name("-x").is_err());
        assert!(check_fixture_name("a/b").is_err());
    }
}
