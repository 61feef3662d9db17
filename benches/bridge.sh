#!/bin/bash
# benches/bridge.sh [N]
#
# One benchmark run of the bridge plugin: our bridge with in-process IPAM (`ipam.type: host-local`
# served by our ipam crate, no second exec) against Debian's Go /usr/lib/cni/bridge + host-local on
# the same two configs, plus the kernel floor measured in the same loop:
#
#   v4   IPv4 only, isDefaultGateway
#   ds   dual-stack, isDefaultGateway (the Go bridge waits for IPv6 DAD to settle on ADD)
#   floor ADD = `ip link add <veth> type veth peer name eth0 netns <ctr>` (one exec + a veth whose
#         peer is born in the container), floor DEL = `ip link del <veth>`, exec floor = /bin/true
#
# N iterations (default 100) of ADD then DEL per config and plugin, interleaved in one loop (each
# iteration in a shuffled order), timed with bash's $EPOCHREALTIME. A Go bridge that waits for IPv6 DAD takes
# seconds per dual-stack ADD, so that cycle runs only every ceil(N/GO_DS_N)-th iteration (GO_DS_N, default
# 50, samples). (Debian's 1.1.1 sets accept_dad=0 in the container and does not wait; its ADD time then
# comes from its two execs and its host-veth operstate polling, 0 or 50 ms.) Prints median, p95,
# mean and min in ms, the ratios go/ours and ours-floor, and checks the goals:
#   dual-stack ADD: ours >= 4x faster than Go;   IPv4-only ADD: ours within 1.5 ms of the floor.
#
# Everything runs inside namespaces of a simulated host made by the netns-fixture CLI (netns-fixtures,
# `cargo xtask fixture`): its "host" netns, in which the plugins run and own their bridges, and one
# container netns per plugin and config; nothing touches the machine's own namespaces; `netns-fixture
# down` removes everything on exit (trap), also on failure or Ctrl-C.
#
# Environment:
#   OURS     our bridge binary (default: built with `cargo xtask release bridge ipam`)
#   GO_DIR   Debian's plugins (default /usr/lib/cni)
#   N, GO_DS_N  iteration counts
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-100}}
GO_DS_N=${GO_DS_N:-50}
GO_DIR=${GO_DIR:-/usr/lib/cni}

die() { echo "bench-bridge: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[[ $GO_DS_N =~ ^[1-9][0-9]*$ ]] || die "GO_DS_N must be a positive integer, got '$GO_DS_N'"
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
command -v ip > /dev/null || die "ip (iproute2) not found"
for p in bridge host-local; do
  [ -x "$GO_DIR/$p" ] || die "$GO_DIR/$p not found: apt-get install -y containernetworking-plugins"
done
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir bridge ipam)/bridge
fi
[ -x "$OURS" ] || die "our bridge binary $OURS is missing"
need_fixture || die "cannot build the netns-fixture CLI"

bench_workspace brbench || die "cannot create a work directory"

# the host netns (lo up) and the containers $TAG-o4 (ours, IPv4), -g4 (Go), -ods, -gds (dual-stack), -fl
fixture_up "$TAG" --ns o4 --ns g4 --ns ods --ns gds --ns fl
HOSTNS=$HOST_NS

# conf WHO FAMILY: the same config for both plugins, apart from bridge name and dataDir
conf() {
  local who=$1 fam=$2 ranges
  if [ "$fam" = v4 ]; then
    ranges='[[{"subnet":"10.123.0.0/24"}]]'
  else
    ranges='[[{"subnet":"10.124.0.0/24"}],[{"subnet":"fd12:4::/64"}]]'
  fi
  printf '{"cniVersion":"1.0.0","name":"bench-%s","type":"bridge","bridge":"bb%s%s","isDefaultGateway":true,"ipam":{"type":"host-local","ranges":%s,"dataDir":"%s/ipam-%s-%s"}}\n' \
    "$fam" "$who" "$fam" "$ranges" "$WORK" "$who" "$fam"
}
for who in o g; do for fam in v4 ds; do conf "$who" "$fam" > "$WORK/$who-$fam.json"; done; done

# The loop, run by a bash inside the "host" netns.
cat > "$WORK/loop.sh" << 'LOOP'
set -u
N=$1 GO_DS_N=$2 OURS=$3 GO=$4 W=$5 TAG=$6
# shellcheck source=benches/lib.sh
source "$7" # in_order
export CNI_IFNAME=eth0 CNI_PATH=$GO CNI_CONTAINERID=brbench-$$
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
every=$(((N + GO_DS_N - 1) / GO_DS_N))
# plugin_cycle NAME BIN CONF CTR: one timed ADD then one timed DEL
plugin_cycle() {
  local name=$1 bin=$2 conf=$3 ctr=$4 s e
  s=$EPOCHREALTIME
  CNI_COMMAND=ADD CNI_NETNS=/run/netns/$ctr "$bin" < "$conf" > /dev/null || { echo "$name: ADD failed" >&2; exit 1; }
  e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$W/t-$name-add"
  s=$EPOCHREALTIME
  CNI_COMMAND=DEL CNI_NETNS=/run/netns/$ctr "$bin" < "$conf" > /dev/null || { echo "$name: DEL failed" >&2; exit 1; }
  e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$W/t-$name-del"
}
floor_cycle() {
  local s e
  s=$EPOCHREALTIME; ip link add vfloor0 type veth peer name eth0 netns "$TAG-fl" || exit 1
  e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$W/t-floor-add"
  s=$EPOCHREALTIME; ip link del vfloor0 || exit 1
  e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$W/t-floor-del"
  s=$EPOCHREALTIME; /bin/true; e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$W/t-true"
}
# Sanity before timing: each plugin really configures the container.
for who in o g; do
  if [ $who = o ]; then bin=$OURS; else bin=$GO/bridge; fi
  for fam in v4 ds; do
    ctr=$TAG-$who$([ $fam = v4 ] && echo 4 || echo ds)
    res=$(CNI_COMMAND=ADD CNI_NETNS=/run/netns/$ctr "$bin" < "$W/$who-$fam.json") || { echo "$who $fam: ADD failed: $res" >&2; exit 1; }
    case $res in *10.12*) ;; *) echo "$who $fam: no address in the result: $res" >&2; exit 1 ;; esac
    ip -n "$ctr" -o addr show dev eth0 | grep -q 'inet 10.12' || { echo "$who $fam: eth0 has no address" >&2; exit 1; }
    CNI_COMMAND=DEL CNI_NETNS=/run/netns/$ctr "$bin" < "$W/$who-$fam.json" > /dev/null || { echo "$who $fam: DEL failed" >&2; exit 1; }
  done
done
# variant K I: variant K of iteration I
variant() {
  case $1 in
    0) plugin_cycle ours-v4 "$OURS" "$W/o-v4.json" "$TAG-o4" ;;
    1) plugin_cycle go-v4 "$GO/bridge" "$W/g-v4.json" "$TAG-g4" ;;
    2) plugin_cycle ours-ds "$OURS" "$W/o-ds.json" "$TAG-ods" ;;
    3) if (($2 % every == 0)); then plugin_cycle go-ds "$GO/bridge" "$W/g-ds.json" "$TAG-gds"; fi ;;
    4) floor_cycle ;;
  esac
}
# each iteration in a shuffled order (benches/lib.sh in_order)
in_order "$N" 5 variant
LOOP

echo "bench-bridge: N=$N (Go dual-stack: every ${N}/$GO_DS_N), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  ours: $OURS ($(stat -c %s "$OURS") bytes, ipam in-process)"
echo "  go:   $GO_DIR/bridge + $GO_DIR/host-local"
start=$EPOCHREALTIME
ip netns exec "$HOSTNS" bash "$WORK/loop.sh" "$N" "$GO_DS_N" "$OURS" "$GO_DIR" "$WORK" "$TAG" "$ROOT/benches/lib.sh"
end=$EPOCHREALTIME
echo "  wall time: $(((${end/./} - ${start/./}) / 1000)) ms"

declare -A MED
printf '  %-16s %9s %9s %9s %9s %5s\n' "" "median" "p95" "mean" "min" "n"
for t in ours-v4-add go-v4-add ours-ds-add go-ds-add floor-add ours-v4-del go-v4-del ours-ds-del go-ds-del floor-del true; do
  read -r m p a n c < <(stats "$WORK/t-$t" 3 count)
  MED[$t]=$m
  printf '  %-16s %9s %9s %9s %9s %5s  ms\n' "$t" "$m" "$p" "$a" "$n" "$c"
done
awk -v o4="${MED[ours-v4-add]}" -v g4="${MED[go-v4-add]}" -v ods="${MED[ours-ds-add]}" -v gds="${MED[go-ds-add]}" \
  -v fa="${MED[floor-add]}" -v od4="${MED[ours-v4-del]}" -v gd4="${MED[go-v4-del]}" -v odds="${MED[ours-ds-del]}" \
  -v gdds="${MED[go-ds-del]}" -v fd="${MED[floor-del]}" -v t="${MED[true]}" 'BEGIN {
  printf "  ratios of medians (go/ours): ADD v4 %.2f, ADD dual-stack %.2f, DEL v4 %.2f, DEL dual-stack %.2f\n", g4 / o4, gds / ods, gd4 / od4, gdds / odds
  printf "  ours - floor: ADD v4 %+.3f ms, ADD dual-stack %+.3f ms, DEL v4 %+.3f ms, DEL dual-stack %+.3f ms (exec floor /bin/true %.3f ms)\n", o4 - fa, ods - fa, od4 - fd, odds - fd, t
  ok1 = (gds / ods >= 4); ok2 = (o4 - fa <= 1.5)
  printf "  goal dual-stack ADD >= 4x faster than Go: %s (%.1fx)\n", ok1 ? "MET" : "MISSED", gds / ods
  printf "  goal IPv4-only ADD within 1.5 ms of the floor: %s (%+.3f ms)\n", ok2 ? "MET" : "MISSED", o4 - fa
}'
d=$(awk -v o="${MED[ours-v4-add]}" -v f="${MED[floor-add]}" 'BEGIN { printf "%.3f", o - f }')
figure bridge-add-v4-floor "bridge ADD IPv4 above the veth floor, median" ms "$d" \
  "$(awk -v g="${MED[go-v4-add]}" -v f="${MED[floor-add]}" 'BEGIN { printf "%.3f", g - f }')" "${MED[floor-add]}" \
  "$(ratio "${MED[go-v4-add]}" "${MED[ours-v4-add]}")" "<= 1.5 ms" "$(goal_le "$d" 1.5)"
r=$(ratio "${MED[go-ds-add]}" "${MED[ours-ds-add]}")
figure bridge-add-ds-go "bridge ADD dual-stack, median, Go/ours" ms "${MED[ours-ds-add]}" "${MED[go-ds-add]}" \
  "${MED[floor-add]}" "$r" ">= 4x Go" "$(goal_ge "$r" 4)"
