//! What a call must have returned, and the time claims of load tests.

use crate::PluginOutput;

/// A call that succeeded (exit 0) without hanging.
pub fn assert_ok(out: &PluginOutput, what: &str) {
    assert_eq!(out.status, 0, "{what}: {out:?}");
    assert!(!out.timed_out, "{what}: hung");
}

/// A call that succeeded and printed nothing (DEL, CHECK, a delegated GC).
pub fn assert_ok_silent(out: &PluginOutput, what: &str) {
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, ""),
        "{what}: {out:?}"
    );
}

/// A failure that is a CNI error object with `code` whose message contains `needle`.
pub fn assert_cni_error(out: &PluginOutput, code: u64, needle: &str, what: &str) {
    assert!(!out.timed_out, "{what}: hung: {out:?}");
    assert_eq!(out.status, 1, "{what}: {out:?}");
    let v = out.json();
    assert_eq!(v["code"], serde_json::json!(code), "{what}: {v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

/// `(code, msg)` of a failed call (exit status 1).
pub fn failure(out: &PluginOutput) -> (u64, String) {
    assert_eq!(out.status, 1, "expected a failure: {out:?}");
    let j = out.json();
    (
        j["code"]
            .as_u64()
            .expect("an error object has a numeric code"),
        j["msg"]
            .as_str()
            .expect("an error object has a msg")
            .to_string(),
    )
}

/// The median of some measured durations (zero for none).
pub fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The longest wait [`assert_no_operation_starved`] allows (a test that sets a lock bound
/// from it needs it first).
pub fn starvation_limit(
    single: std::time::Duration,
    ops: u32,
    floor: std::time::Duration,
) -> std::time::Duration {
    floor.max(single * ops * 2)
}

/// The time claim of a load test, relative to this run rather than to a fixed clock: under
/// load, no operation took longer than all `ops` operations of the test would take one after
/// another at `single`, the uncontended duration of one operation measured in the same run
/// (twice that, for exec and scheduling of many processes on a shared machine), and never
/// less than `floor` (the limit the test had before: a lock bound, a documented figure). A
/// fair lock makes no operation wait for more than the others; starvation would show here.
pub fn assert_no_operation_starved(
    slowest: std::time::Duration,
    single: std::time::Duration,
    ops: u32,
    floor: std::time::Duration,
    what: &str,
) {
    let limit = starvation_limit(single, ops, floor);
    assert!(
        slowest < limit,
        "{what}: an operation took {slowest:?}, more than {limit:?} (one uncontended \
         operation: {single:?}, {ops} operations)"
    );
}
