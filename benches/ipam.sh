#!/bin/bash
# benches/ipam.sh [N]
#
# One benchmark run of our `ipam` against Debian's Go `host-local` (/usr/lib/cni/host-local), both
# on host-local's on-disk layout, dual-stack (10.90.0.0/16 + fd90::/64):
#   1. sequential ADD then DEL, N rounds (default 200), with an empty store;
#   2. the same with 5,000 existing leases in the store (written in host-local's format);
#   3. 100 concurrent ADDs (different container IDs) at 5,000 leases: wall time for all 100.
# Each plugin gets its own copy of the store. Timed with bash's $EPOCHREALTIME; prints medians in ms
# and host-local/ours ratios. Everything runs in namespaces and directories this script creates.
#
# Environment: OURS (our ipam binary; default: built by `cargo xtask release ipam`), GO.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-200}}
GO=${GO:-/usr/lib/cni/host-local}
die() { echo "bench-ipam: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace)"
[ -x "$GO" ] || die "$GO not found: apt-get install -y containernetworking-plugins"
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir ipam)/ipam
fi
[ -x "$OURS" ] || die "$OURS is missing"

TAG=ipbench-$$-$RANDOM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX")
cleanup() { remove_bench_state "$TAG"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ip netns add "$TAG"
export CNI_NETNS=/run/netns/$TAG CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni

conf() { # conf DATADIR
  printf '{"cniVersion":"1.0.0","name":"bench","type":"x","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.90.0.0/16"}],[{"subnet":"fd90::/64"}]]}}' "$1"
}

# populate DIR COUNT: COUNT v4 leases in host-local's format, plus last_reserved_ip.0
populate() {
  python3 - "$1" "$2" << 'PY'
import os, sys
d = os.path.join(sys.argv[1], "bench"); n = int(sys.argv[2])
os.makedirs(d, exist_ok=True)
last = None
for i in range(n):
    ip = "10.90.%d.%d" % ((i + 2) // 256, (i + 2) % 256)
    with open(os.path.join(d, ip), "w") as f:
        f.write("pre-%d\r\neth0" % i)
    last = ip
if last:
    open(os.path.join(d, "last_reserved_ip.0"), "w").write(last)
PY
}

us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
median() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1000}'; }

# sequential BIN DATADIR LABEL: N rounds of ADD+DEL, one container ID per round
sequential() {
  local bin=$1 dir=$2 label=$3 c s e i
  c=$(conf "$dir")
  # warm-up (our first use of a foreign store builds the owner index once)
  CNI_COMMAND=ADD CNI_CONTAINERID=warm "$bin" <<< "$c" > /dev/null || die "$label warm-up ADD failed"
  CNI_COMMAND=DEL CNI_CONTAINERID=warm "$bin" <<< "$c" > /dev/null || die "$label warm-up DEL failed"
  : > "$WORK/$label.add"; : > "$WORK/$label.del"
  for ((i = 0; i < N; i++)); do
    s=$EPOCHREALTIME; CNI_COMMAND=ADD CNI_CONTAINERID=seq-$i "$bin" <<< "$c" > /dev/null || die "$label ADD $i failed"; e=$EPOCHREALTIME
    us "$s" "$e" >> "$WORK/$label.add"
    s=$EPOCHREALTIME; CNI_COMMAND=DEL CNI_CONTAINERID=seq-$i "$bin" <<< "$c" > /dev/null || die "$label DEL $i failed"; e=$EPOCHREALTIME
    us "$s" "$e" >> "$WORK/$label.del"
  done
}

# concurrent BIN DATADIR: wall ms for 100 parallel ADDs; checks 100 distinct leases appeared
concurrent() {
  local bin=$1 dir=$2 c s e i before after
  c=$(conf "$dir")
  before=$(find "$dir/bench" -maxdepth 1 -name '10.90.*' 2> /dev/null | wc -l)
  s=$EPOCHREALTIME
  for ((i = 0; i < 100; i++)); do
    CNI_COMMAND=ADD CNI_CONTAINERID=par-$i "$bin" <<< "$c" > /dev/null 2> "$WORK/par-$i.err" &
  done
  wait
  e=$EPOCHREALTIME
  after=$(find "$dir/bench" -maxdepth 1 -name '10.90.*' 2> /dev/null | wc -l)
  [ $((after - before)) = 100 ] || die "$bin: expected 100 new leases, got $((after - before))"
  echo "scale=1; $(us "$s" "$e") / 1000" | bc 2> /dev/null || awk -v u="$(us "$s" "$e")" 'BEGIN{printf "%.1f", u/1000}'
}

printf 'ipam benchmark: N=%d rounds, dual-stack; ours=%s, go=%s\n' "$N" "$OURS" "$GO"
declare -A RES
for state in 0 5000; do
  for who in ours go; do
    bin=$OURS; [ "$who" = go ] && bin=$GO
    dir="$WORK/$who-$state"; mkdir -p "$dir"; populate "$dir" "$state"
    sequential "$bin" "$dir" "$who-$state"
    RES[$who-$state-add]=$(median "$WORK/$who-$state.add")
    RES[$who-$state-del]=$(median "$WORK/$who-$state.del")
  done
done
for who in ours go; do
  bin=$OURS; [ "$who" = go ] && bin=$GO
  dir="$WORK/$who-par"; mkdir -p "$dir"; populate "$dir" 5000
  RES[$who-par]=$(concurrent "$bin" "$dir")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.1fx", a/b; else print "n/a" }'; }
printf '\n%-34s %10s %12s %10s\n' "median (ms)" "ours" "host-local" "go/ours"
for state in 0 5000; do
  for op in add del; do
    printf '%-34s %10s %12s %10s\n' "${op^^}, $state existing leases" "${RES[ours-$state-$op]}" "${RES[go-$state-$op]}" \
      "$(ratio "${RES[go-$state-$op]}" "${RES[ours-$state-$op]}")"
  done
done
printf '%-34s %10s %12s %10s\n' "100 concurrent ADDs, 5000 leases" "${RES[ours-par]}" "${RES[go-par]}" "$(ratio "${RES[go-par]}" "${RES[ours-par]}")"
printf '(the last row is wall time for all 100, in ms)\n'
