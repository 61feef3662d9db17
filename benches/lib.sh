# shellcheck shell=bash
# benches/lib.sh — helpers sourced by the benchmark scripts (not run on its own). Expects $ROOT (the
# repository root) to be set by the sourcing script.

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

# remove_bench_state NS...: deletes those of the named network namespaces that exist, and $WORK.
remove_bench_state() {
  local ns
  for ns in "$@"; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2> /dev/null
  done
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
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
