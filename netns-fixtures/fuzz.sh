#!/bin/bash
# netns-fixtures/fuzz.sh [--merge] [SECONDS] [TARGET...]
#
# Runs every fuzz target of fuzz/ (or the TARGETs named) with libFuzzer for SECONDS each
# (default 60), one after the other, and prints one line per target: seconds run, executions,
# executions per second, corpus size, findings. Exits 1 when any target found a crash or a
# timeout (the inputs are in fuzz/artifacts/<target>/; turn each into a regression file under
# fuzz/regressions/<target>/, which tests/hardening_fuzz_replay.rs replays in every
# `cargo test`).
#
# The toolchain here is stable; cargo-fuzz needs nightly-only rustc flags (-Z...), which
# RUSTC_BOOTSTRAP=1 unlocks on a stable compiler. cargo-fuzz is installed with
# `cargo install cargo-fuzz --locked` when missing; libfuzzer-sys builds libFuzzer with the
# system C++ compiler (g++).
#
# Each target starts from its committed corpus (fuzz/corpus/<target>) plus its regression
# inputs, with the dictionary fuzz/dicts/<target>.dict when there is one, and grows a working corpus in fuzz/corpus-work/<target> (not committed). --merge
# minimises the working corpus back into fuzz/corpus/<target> afterwards (libFuzzer -merge=1).
#
# Environment: FUZZ_SANITIZER (default none: the code under test is safe Rust; "address"
# for ASan), FUZZ_TIMEOUT (seconds per input before libFuzzer reports a hang, default 10),
# FUZZ_TARGET_DIR (cargo target dir, default /tmp/target-fuzz), FUZZ_LOG (a file that gets
# the summary lines appended, with the date and git revision).
set -euo pipefail
exec < /dev/null

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
FUZZ="$ROOT/fuzz"
cd "$FUZZ"

MERGE=0
if [ "${1:-}" = --merge ]; then
  MERGE=1
  shift
fi
SECS=${1:-60}
shift || true
case $SECS in
  '' | *[!0-9]*) echo "usage: netns-fixtures/fuzz.sh [--merge] [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
SAN=${FUZZ_SANITIZER:-none}
TIMEOUT=${FUZZ_TIMEOUT:-10}
TDIR=${FUZZ_TARGET_DIR:-/tmp/target-fuzz}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi
command -v c++ > /dev/null || { echo "fuzz.sh: a C++ compiler is required (apt-get install g++)" >&2; exit 1; }

mapfile -t ALL < <(cargo fuzz list)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  printf '%s\n' "${ALL[@]}" | grep -qx -- "$t" || { echo "fuzz.sh: no target $t (have: ${ALL[*]})" >&2; exit 2; }
done

echo "fuzz.sh: building the targets (sanitizer $SAN, debug assertions on)" >&2
build_log=$(mktemp "${TMPDIR:-/tmp}/fuzz-build.XXXXXX")
if ! cargo fuzz build -s "$SAN" --debug-assertions --target-dir "$TDIR" > "$build_log" 2>&1; then
  tail -n 30 "$build_log" >&2
  rm -f "$build_log"
  echo "fuzz.sh: build failed" >&2
  exit 1
fi
rm -f "$build_log"
BIN="$TDIR/$TRIPLE/release"

# Removes the scratch directories (/dev/shm/task-cni-fuzz-PID) of fuzz processes that are gone.
sweep_scratch() {
  local d pid
  for d in /dev/shm/task-cni-fuzz-* "${TMPDIR:-/tmp}"/task-cni-fuzz-*; do
    [ -d "$d" ] || continue
    pid=${d##*-}
    case $pid in '' | *[!0-9]*) continue ;; esac
    kill -0 "$pid" 2> /dev/null || rm -rf "$d"
  done
}

REV=$(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo unknown)
printf '%-18s %8s %12s %9s %8s %9s\n' target seconds execs exec/s corpus findings
FOUND=0
LINES=()
for t in "${TARGETS[@]}"; do
  work="$FUZZ/corpus-work/$t"
  art="$FUZZ/artifacts/$t/"
  mkdir -p "$work" "$art" "$FUZZ/corpus/$t"
  seeds=("$FUZZ/corpus/$t")
  [ -d "$FUZZ/regressions/$t" ] && seeds+=("$FUZZ/regressions/$t")
  log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$t.XXXXXX")
  before=$(find "$art" -type f | wc -l)
  t0=$(date +%s.%N)
  rc=0
  dict=()
  [ -f "$FUZZ/dicts/$t.dict" ] && dict=(-dict="$FUZZ/dicts/$t.dict")
  "$BIN/$t" -max_total_time="$SECS" -timeout="$TIMEOUT" -rss_limit_mb=2048 "${dict[@]}" \
    -print_final_stats=1 -artifact_prefix="$art" "$work" "${seeds[@]}" > "$log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  sweep_scratch
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs=${execs:-0}
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", b - a }')
  rate=$(awk -v e="$execs" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? e / s : 0) }')
  corpus=$(find "$work" -type f | wc -l)
  found=$(($(find "$art" -type f | wc -l) - before))
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    FOUND=1
    echo "fuzz.sh: $t stopped (exit $rc) with a finding; log:" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
  fi
  line=$(printf '%-18s %8d %12d %9d %8d %9d' "$t" "$secs" "$execs" "$rate" "$corpus" "$found")
  echo "$line"
  LINES+=("$line")
  if [ "$MERGE" = 1 ]; then
    "$BIN/$t" -merge=1 -timeout="$TIMEOUT" "$FUZZ/corpus/$t" "$work" > /dev/null 2>&1 ||
      echo "fuzz.sh: merge of $t failed" >&2
  fi
  rm -f "$log"
done

if [ -n "${FUZZ_LOG:-}" ]; then
  {
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) rev $REV sanitizer $SAN, $SECS s per target"
    printf '%s\n' "${LINES[@]}"
  } >> "$FUZZ_LOG"
fi
exit $FOUND
