# shellcheck shell=bash
# benches/lib.sh — helpers sourced by the benchmark scripts (not run on its own). Expects $ROOT (the
# repository root) to be set by the sourcing script.
#
# --- the figures protocol ------------------------------------------------------------------------
# Every benchmark script prints, besides its own human-readable table, machine-readable lines that
# benches/run.sh collects into one table and one plot. Fields are separated by `|` (so no field may
# contain one); an unknown value is `-`. Numbers are plain decimals (no unit, no `x`).
#
#   FIGURE|id|label|unit|ours|peer|floor|ratio|goal|met
#       id     a short stable key, unique per script (e.g. bridge-add-growth)
#       label  what is measured, for humans (e.g. "bridge ADD above floor, 1000 ports")
#       unit   of ours/peer/floor: ms, MB, x, ops/s, count...
#       ours   our figure (usually a median); peer: Debian's Go plugin doing the same, same run;
#       floor  what the kernel/exec alone costs, same run
#       ratio  the ratio the goal is about, as a plain number (peer/ours, ours/floor... the label
#              or goal says which)
#       goal   the goal, for humans ("<= 0.5 ms", ">= 3x Go")
#       met    MET, MISSED, or - (no goal)
#   POINT|plot|xname|x|series|y|unit
#       one point of a plot of cost against node size: plot title, x axis name (leases, links,
#       concurrent tasks...), x, the series (ours, go, floor...), y, y's unit
#
# Emit them with `figure` and `point` below; scripts print them on stdout, in any order, anywhere.
# benches/run.sh runs every benches/*.sh but lib.sh and run.sh, with OURS_DIR (the release build's
# directory) and FIXTURE (the netns-fixture CLI) exported, OURS/N set per script (script_env in
# run.sh: a new script gets a line there), and QUICK=1 when asked: a script honours it with fewer
# iterations.

# stats FILE [DECIMALS] [count]: samples in microseconds, one per line ->
# "median p95 mean min" in ms (nearest-rank p95), with the sample count appended when the third
# argument is `count`.
stats() {
  sort -n "$1" | awk -v d="${2:-3}" -v withn="${3:-}" '{ v[NR] = $1; s += $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          p = int(NR * 0.95 + 0.999999); if (p < 1) p = 1
          f = "%." d "f"
          printf f " " f " " f " " f, m / 1000, v[p] / 1000, s / NR / 1000, v[1] / 1000
          if (withn == "count") printf " %d", NR
          printf "\n" }'
}

# orders N K: N lines, each the numbers 0..K-1 in a random order (Fisher-Yates), the order in
# which a timing loop runs its K variants in each of its N iterations. A fixed rotation gives every
# variant the same predecessor almost every time, so whatever the kernel still does after one
# variant (an ENI back in the host namespace, a Go plugin's exit) is always charged to the same
# other variant; shuffled, each pays its share. Seeded (ORDER_SEED, default 1): a run is repeatable.
orders() {
  local n=$1 k=$2 i j t x
  local -a a
  RANDOM=${ORDER_SEED:-1}
  for ((x = 0; x < n; x++)); do
    for ((i = 0; i < k; i++)); do a[i]=$i; done
    for ((i = k - 1; i > 0; i--)); do
      j=$((RANDOM % (i + 1)))
      t=${a[i]} a[i]=${a[j]} a[j]=$t
    done
    echo "${a[*]}"
  done
}

# in_order N K FN: the loop of a timing script: in each iteration I of 0..N-1, `FN V I` for every
# variant V of 0..K-1, in that iteration's order (orders)
in_order() {
  local n=$1 k=$2 fn=$3 i=0 v
  local -a perm
  while read -r -a perm; do
    for v in "${perm[@]}"; do "$fn" "$v" "$i"; done
    i=$((i + 1))
  done < <(orders "$n" "$k")
}

# remove_bench_state NS...: deletes those of the named network namespaces that exist, and $WORK.
remove_bench_state() {
  local ns
  for ns in "$@"; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2> /dev/null
  done
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

# bench_workspace PREFIX: sets TAG to PREFIX-<pid>-<random> (the name of the script's fixture and
# namespaces) and WORK to a fresh directory named after it, and makes sure that however the script
# ends (exit, INT, TERM) the fixture called TAG is taken down, a namespace called TAG is deleted and
# WORK is removed. A script with more to undo (its own processes) defines bench_cleanup_more, which
# runs first.
bench_workspace() {
  TAG=$1-$$-$RANDOM
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX") || return 1
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_install DIR FILE...: copies the FILEs into DIR (made if needed) with install(1), as a
# package, a release tarball or an operator puts a plugin in place. A timing loop runs every binary
# it compares (ours, the peer, /bin/true) from such a copy, so that all of them sit in the page
# cache the same way: a file the linker has just written is cached in small pieces and starts
# measurably slower than the same bytes copied (6 % for our loopback here), and a file read back
# from disk is cached differently again.
bench_install() {
  local dir=$1
  shift
  mkdir -p "$dir" && install -m 0755 "$@" "$dir/"
}

# bench_cleanup: what bench_workspace arranges for the end of the script.
bench_cleanup() {
  if declare -F bench_cleanup_more > /dev/null; then bench_cleanup_more; fi
  rcu_trace_stop || true # never keeps the rest of the cleanup from running
  [ -z "${FIXTURE:-}" ] || "$FIXTURE" down "$TAG" > /dev/null 2>&1
  remove_bench_state "$TAG"
}

# xtask ARGS...: `cargo xtask ARGS...` from the repository root (where the alias is defined).
xtask() { (cd "$ROOT" && cargo xtask "$@"); }

# release_dir PLUGIN...: builds those plugins statically (`cargo xtask release PLUGIN...`, which checks
# that they are static) and prints the directory holding them.
release_dir() {
  xtask release "$@" | tail -n 1
}

# need_fixture: sets and exports FIXTURE, the netns-fixture CLI (the simulated hosts of
# netns-fixtures/src/lib.rs for scripts), building it with `cargo xtask fixture-bin` unless FIXTURE is
# already set. Then: "$FIXTURE" up NAME ..., "$FIXTURE" down NAME (see `"$FIXTURE" help`).
need_fixture() {
  if [ -z "${FIXTURE:-}" ]; then
    FIXTURE=$(xtask fixture-bin | tail -n 1) || return 1
  fi
  [ -x "$FIXTURE" ] || { echo "benches: netns-fixture CLI $FIXTURE is missing" >&2; return 1; }
  export FIXTURE
}

# fixture_up NAME ELEMENT...: "$FIXTURE" up NAME ELEMENT..., its KEY=VALUE lines evaluated here
# (HOST_NS, SUBNET_NS, <LABEL>_NS, ENI_NAME, ...).
fixture_up() {
  local vars
  vars=$("$FIXTURE" up "$@") || return 1
  eval "$vars"
}

# figure ID LABEL UNIT OURS PEER FLOOR RATIO GOAL MET: one FIGURE line
figure() {
  (($# == 9)) || { echo "benches: figure needs 9 arguments, got $#: $*" >&2; return 1; }
  local IFS='|'
  printf 'FIGURE|%s\n' "$*"
}

# point PLOT XNAME X SERIES Y UNIT: one POINT line
point() {
  (($# == 6)) || { echo "benches: point needs 6 arguments, got $#: $*" >&2; return 1; }
  local IFS='|'
  printf 'POINT|%s\n' "$*"
}

# ratio A B: A/B with two decimals, `-` when either is missing or B is 0
ratio() { awk -v a="${1:--}" -v b="${2:--}" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

# goal_le VALUE LIMIT / goal_ge VALUE LIMIT: MET when VALUE <= (>=) LIMIT, else MISSED; `-`
# when VALUE is missing (`-` or empty)
goal_le() { awk -v v="${1:--}" -v l="$2" 'BEGIN { if (v == "-") print "-"; else print (v + 0 <= l + 0) ? "MET" : "MISSED" }'; }
goal_ge() { awk -v v="${1:--}" -v l="$2" 'BEGIN { if (v == "-") print "-"; else print (v + 0 >= l + 0) ? "MET" : "MISSED" }'; }

# --- time asleep in rcu_barrier() (optional: needs perf and python3) ------------------------------
# Every move of a link to another network namespace sleeps in the kernel's rcu_barrier() for at
# least one RCU grace period, holding the rtnl lock: 13 to 40 ms here, almost all of the move, and
# the main noise of the eni figures (see benches/rcu_waits.py). A script that moves links records
# its timed loop with rcu_trace_start DIR / rcu_trace_stop, writes one "LABEL START END" line per
# timed operation ($EPOCHREALTIME) and calls rcu_waits WINDOWS OUTDIR, which writes per LABEL
# OUTDIR/net-LABEL (each operation minus that sleep, microseconds) and OUTDIR/rcu-LABEL. RCU_WAITS=0
# turns it off; without perf it is off. rcu_trace_start returns 1 when off.

# rcu_trace_start DIR: starts `perf record` (system-wide, into DIR) in the background; RCU_PERF is
# its PID, which rcu_trace_stop (and bench_cleanup) stop.
rcu_trace_start() {
  rcu_trace_stop # a recording still running (a caller that skipped the stop) ends first
  RCU_DIR=$1
  if [ "${RCU_WAITS:-1}" != 1 ] || ! command -v perf > /dev/null || ! command -v python3 > /dev/null; then
    RCU_DIR=
    return 1
  fi
  rcu_clocks > "$RCU_DIR/clocks" || return 1
  perf record -q -a -k mono -B -N --kernel-callchains -g -m 1024 \
    -e sched:sched_switch --filter 'prev_state == 2' -e sched:sched_wakeup \
    -o "$RCU_DIR/sched.data" > "$RCU_DIR/perf.log" 2>&1 &
  RCU_PERF=$!
  sleep 1 # perf needs a moment to open its events on every CPU
  if ! kill -0 "$RCU_PERF" 2> /dev/null; then
    echo "benches: perf record failed ($(tr '\n' ' ' < "$RCU_DIR/perf.log")); no rcu_barrier() figures" >&2
    RCU_PERF=
    RCU_DIR=
    return 1
  fi
}

# rcu_trace_stop: stops the recording rcu_trace_start began (by its PID) and waits for it.
rcu_trace_stop() {
  [ -n "${RCU_PERF:-}" ] || return 0
  kill -INT "$RCU_PERF" 2> /dev/null || true
  wait "$RCU_PERF" 2> /dev/null || true # its status after SIGINT says nothing
  RCU_PERF=
  rcu_clocks >> "$RCU_DIR/clocks"
}

# rcu_clocks: one line "REALTIME MONOTONIC" (seconds), to map $EPOCHREALTIME onto perf's clock
rcu_clocks() {
  python3 -c 'import time; print("%.6f %.6f" % (time.clock_gettime(time.CLOCK_REALTIME), time.clock_gettime(time.CLOCK_MONOTONIC)))'
}

# rcu_stats OUTDIR LABEL: from what rcu_waits wrote for LABEL, "median p95 mean min count sleep
# unseen" in ms: the operations without their sleep in rcu_barrier() (as `stats`), their number,
# the median sleep, and how many slept in no barrier at all (each of them moves a link: perf did
# not see that sleep)
rcu_stats() {
  local m p a n c sm
  read -r m p a n c < <(stats "$1/net-$2" 3 count)
  read -r sm _ < <(cut -d' ' -f1 "$1/rcu-$2" > "$1/sleep-$2" && stats "$1/sleep-$2")
  echo "$m $p $a $n $c $sm $(awk '$2 == 0' "$1/rcu-$2" | wc -l)"
}

# rcu_waits WINDOWS OUTDIR: see above; 1 when nothing was recorded
rcu_waits() {
  [ -n "${RCU_DIR:-}" ] && [ -s "$RCU_DIR/sched.data" ] || return 1
  python3 "$ROOT/benches/rcu_waits.py" "$RCU_DIR/sched.data" "$1" "$RCU_DIR/clocks" "$2"
}
