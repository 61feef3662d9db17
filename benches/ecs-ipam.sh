#!/bin/bash
# benches/ecs-ipam.sh [N]
#
# One benchmark run of our `ipam` (ecs dialect) against ecs-ipam-go (netns-fixtures/ecs-ipam-go: Amazon's
# ecs-ipam store emulated on Go's bbolt, one bolt transaction per key as Amazon's plugin commits them),
# both on one BoltDB store per plugin, IPv4 169.254.172.0/22 as the ECS agent configures it:
#   1. ADD then DEL (by id, as the agent releases), N rounds (default 200), with an empty store;
#   2. the same with 500 leases already in the store;
#   3. fdatasync calls per ADD and per DEL (strace -c -f), the Go figure for its store emulation.
# Our plugin and the Go double run in the same loop, alternately, each as one exec per operation.
# Timed with bash's $EPOCHREALTIME; prints medians in ms and Go/ours ratios, and FIGURE lines (the
# protocol of benches/lib.sh; no goal of issue 15 is about this dialect: information only). Everything
# runs in a namespace and a directory this script creates.
#
# Environment: OURS (our ipam binary; default: built by `cargo xtask release ipam`), GO (the double;
# default: built by scripts/build-ecs-ipam-go.sh).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-200}}
die() { echo "bench-ecs-ipam: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace)"
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir ipam)/ipam
fi
GO=${GO:-$(bash "$ROOT/scripts/build-ecs-ipam-go.sh" | tail -n 1)}
[ -x "$OURS" ] || die "$OURS is missing"
[ -x "$GO" ] || die "$GO is missing"

bench_workspace ecsbench || die "cannot create a work directory"
ip netns add "$TAG"
export CNI_NETNS=/run/netns/$TAG CNI_IFNAME=ecs-eth0 CNI_PATH=/tmp CNI_CONTAINERID=pause
SUBNET=169.254.172.0/22

add_conf() { printf '{"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","ipam":{"type":"ecs-ipam","id":"%s","ipv4-subnet":"%s","ipv4-routes":[{"dst":"169.254.170.2/32"}]}}' "$1" "$SUBNET"; }
del_conf() { printf '{"cniVersion":"0.3.0","name":"ecs-ipam","type":"ecs-ipam","ipam":{"type":"ecs-ipam","id":"%s","ipv4-subnet":"%s"}}' "$1" "$SUBNET"; }
add_conf bench-task > "$WORK/add.json"
del_conf bench-task > "$WORK/del.json"

ours() { IPAM_DB_PATH=$1 CNI_COMMAND=$2 "$OURS" < "$WORK/$3" > /dev/null || die "ours $2 failed"; }
go_add() { "$GO" add -db "$1" -id bench-task -subnet "$SUBNET" > /dev/null || die "go add failed"; }
go_del() { "$GO" del -db "$1" -id bench-task > /dev/null || die "go del failed"; }

us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
median() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1000}'; }

# populate DB COUNT: COUNT leases written by the Go double (as Amazon's plugin would have)
populate() {
  local i
  for ((i = 0; i < $2; i++)); do "$GO" add -db "$1" -id "pre-$i" -subnet "$SUBNET" > /dev/null; done
}

round() { # round LABEL LEASES
  local label=$1 n=$2 i s e
  local dbo=$WORK/$label-ours.db dbg=$WORK/$label-go.db
  populate "$dbo" "$n"
  if [ -e "$dbo" ]; then cp "$dbo" "$dbg"; fi
  : > "$WORK/oa"; : > "$WORK/od"; : > "$WORK/ga"; : > "$WORK/gd"; : > "$WORK/t"
  for ((i = 0; i < N; i++)); do
    s=$EPOCHREALTIME; ours "$dbo" ADD add.json; e=$EPOCHREALTIME; us "$s" "$e" >> "$WORK/oa"
    s=$EPOCHREALTIME; ours "$dbo" DEL del.json; e=$EPOCHREALTIME; us "$s" "$e" >> "$WORK/od"
    s=$EPOCHREALTIME; go_add "$dbg"; e=$EPOCHREALTIME; us "$s" "$e" >> "$WORK/ga"
    s=$EPOCHREALTIME; go_del "$dbg"; e=$EPOCHREALTIME; us "$s" "$e" >> "$WORK/gd"
    s=$EPOCHREALTIME; /bin/true; e=$EPOCHREALTIME; us "$s" "$e" >> "$WORK/t"
  done
  local oa od ga gd t
  oa=$(median "$WORK/oa"); od=$(median "$WORK/od"); ga=$(median "$WORK/ga"); gd=$(median "$WORK/gd"); t=$(median "$WORK/t")
  printf '%-22s ADD ours %7s ms  go %7s ms  go/ours %5s   DEL ours %7s ms  go %7s ms  go/ours %5s   (/bin/true %s ms)\n' \
    "$label ($n leases)" "$oa" "$ga" "$(awk -v a="$ga" -v b="$oa" 'BEGIN{printf "%.2f", a/b}')" \
    "$od" "$gd" "$(awk -v a="$gd" -v b="$od" 'BEGIN{printf "%.2f", a/b}')" "$t"
  figure "ecs-ipam-add-$label" "ecs-ipam ADD, $n leases (peer: ecs-ipam-go; ratio peer/ours)" ms \
    "$oa" "$ga" "$t" "$(ratio "$ga" "$oa")" - -
  figure "ecs-ipam-del-$label" "ecs-ipam DEL, $n leases (peer: ecs-ipam-go; ratio peer/ours)" ms \
    "$od" "$gd" "$t" "$(ratio "$gd" "$od")" - -
}

echo "bench-ecs-ipam: N=$N, ours=$OURS, go=$GO"
round empty 0
round populated 500

# fdatasync per operation (the store already exists and the gateway is marked, as on a live node)
syncs() { strace -f -c -e trace=fdatasync,fsync "$@" 2>&1 > /dev/null | awk '$NF=="fdatasync"||$NF=="fsync"{n+=$4} END{print n+0}'; }
if command -v strace > /dev/null; then
  db=$WORK/sync.db
  populate "$db" 1
  oa=$(IPAM_DB_PATH=$db CNI_COMMAND=ADD syncs "$OURS" < "$WORK/add.json")
  od=$(IPAM_DB_PATH=$db CNI_COMMAND=DEL syncs "$OURS" < "$WORK/del.json")
  ga=$(syncs "$GO" add -db "$db" -id bench-task -subnet "$SUBNET")
  gd=$(syncs "$GO" del -db "$db" -id bench-task)
  echo "fdatasync per ADD: ours $oa, go $ga; per DEL: ours $od, go $gd"
  figure ecs-ipam-syncs-add "ecs-ipam fdatasync calls per ADD" count "$oa" "$ga" - - - -
  figure ecs-ipam-syncs-del "ecs-ipam fdatasync calls per DEL" count "$od" "$gd" - - - -
else
  echo "fdatasync per operation: strace is not installed, skipped"
fi
