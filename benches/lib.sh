# benches/lib.sh — helpers sourced by the benchmark scripts (not run on its own).

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
