#!/bin/bash
# benches/branch-eni.sh [N]
#
# Benchmark of branch-eni's vlan-mode ADD and DEL against Debian's Go reference `vlan` plugin with its
# `host-local` IPAM (/usr/lib/cni), N iterations each (default 30), interleaved in one loop (the order
# alternates every iteration), timed with bash's $EPOCHREALTIME. Also times /bin/true as the exec floor.
#
# The host kernel has no 802.1Q, so the whole measurement runs inside ONE user-mode-linux guest
# (netns-fixtures/uml-run.sh). There every syscall is trapped with ptrace: absolute times are 10-50x the
# host's and only the RATIOS mean anything (both plugins are measured in the same guest, same loop).
#
# Inside the guest, in the namespaces of a simulated host made by the netns-fixture CLI (netns-fixtures,
# `cargo xtask fixture`; built on the host, run in the guest): a "host" netns (where the plugins run) with a
# fake trunk `trk0` (a veth end whose peer `trp0` sits in the "subnet" netns), and one container netns per
# plugin. Each iteration:
#   ours: ADD (VLAN 101 born in the container netns, renamed to eth0, branch MAC, 10.101.0.5/24, default
#         route via 10.101.0.1), then DEL;
#   go:   ADD (VLAN 102, host-local allocates from 10.102.0.0/24 with a default route), then DEL.
# Before timing, each ADD is checked to really create the 802.1Q link and each DEL to remove it.
#
# Environment:
#   OURS   our branch-eni binary (default: built with `cargo xtask release branch-eni`)
#   GO     the reference vlan plugin (default /usr/lib/cni/vlan; host-local must sit next to it)
#   N      iterations, if not given as $1
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
SELF=$ROOT/benches/branch-eni.sh
N=${1:-${N:-30}}
GO=${GO:-/usr/lib/cni/vlan}

die() { echo "bench-branch-eni: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"

# --- on the host: build, then run the guest part ---------------------------------------------------------
if [ "${BENCH_BRANCH_ENI_IN_UML:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || die "must run as root"
  [ -x "$GO" ] || die "$GO not found: apt-get install -y containernetworking-plugins"
  [ -x "$(dirname "$GO")/host-local" ] || die "$(dirname "$GO")/host-local not found"
  if [ -z "${OURS:-}" ]; then
    OURS=$(release_dir branch-eni)/branch-eni
  fi
  [ -x "$OURS" ] || die "our branch-eni binary $OURS is missing"
  OURS=$(cd "$(dirname "$OURS")" && pwd -P)/$(basename "$OURS")
  need_fixture || die "cannot build the netns-fixture CLI"
  echo "bench-branch-eni: N=$N, host load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  ours: $OURS ($(stat -c %s "$OURS") bytes)"
  echo "  go:   $GO ($(stat -c %s "$GO") bytes) + host-local"
  echo "  booting user-mode-linux (all timings below are inside the guest: compare ratios only)"
  # the binaries' directories may be under /tmp, which the guest covers: mount them read-write
  UML_MOUNTS="$(dirname "$OURS"):$(dirname "$FIXTURE")${UML_MOUNTS:+:$UML_MOUNTS}"
  export UML_MOUNTS OURS GO N FIXTURE BENCH_BRANCH_ENI_IN_UML=1
  exec bash "$ROOT/netns-fixtures/uml-run.sh" bash "$SELF" "$N"
fi

# --- in the guest -----------------------------------------------------------------------------------
[ -d /proc/net/vlan ] || die "no 802.1Q in this kernel: run this script on the host, it boots user-mode-linux"
TAG=bebench-$$
WORK=$(mktemp -d "/tmp/$TAG.XXXXXX")
trap '"$FIXTURE" down "$TAG" 2> /dev/null; rm -rf "$WORK"' EXIT
fixture_up "$TAG" --ns ours --ns go --trunk name=trk0,peer=trp0
HOSTNS=$HOST_NS CTR_OURS=$OURS_NS CTR_GO=$GO_NS

cat > "$WORK/ours.json" << 'EOF'
{"cniVersion":"1.0.0","name":"bench","type":"vpc-branch-eni","trunkName":"trk0","branchVlanID":"101",
 "branchMACAddress":"0a:00:00:00:01:01","ipAddresses":["10.101.0.5/24"],
 "gatewayIPAddresses":["10.101.0.1"],"blockInstanceMetadata":false,"interfaceType":"vlan"}
EOF
cat > "$WORK/go.json" << EOF
{"cniVersion":"1.0.0","name":"bench","type":"vlan","master":"trk0","vlanId":102,
 "ipam":{"type":"host-local","subnet":"10.102.0.0/24","gateway":"10.102.0.1",
         "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$WORK/ipam"}}
EOF

cat > "$WORK/loop.sh" << 'LOOP'
set -u
N=$1 OURS=$2 GO=$3 WORK=$4 CTR_OURS=$5 CTR_GO=$6
export CNI_IFNAME=eth0 CNI_PATH=$(dirname "$GO") CNI_CONTAINERID=bebench-$$
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
run() { # run WHICH VERB
  local bin conf ns
  if [ "$1" = ours ]; then bin=$OURS conf=$WORK/ours.json ns=$CTR_OURS; else bin=$GO conf=$WORK/go.json ns=$CTR_GO; fi
  CNI_COMMAND=$2 CNI_NETNS=/run/netns/$ns "$bin" < "$conf" > "$WORK/last" || { echo "$1 $2 failed: $(cat "$WORK/last")" >&2; exit 1; }
}
# Sanity: each ADD makes the 802.1Q link, each DEL removes it.
for which in ours go; do
  if [ $which = ours ]; then ns=$CTR_OURS id=101; else ns=$CTR_GO id=102; fi
  run $which ADD
  ip -n "$ns" -d link show eth0 | grep -q "vlan protocol 802.1Q id $id " || { echo "$which: no VLAN $id eth0 in $ns after ADD" >&2; exit 1; }
  ip -n "$ns" -o addr show dev eth0 | grep -q "10.10[12].0" || { echo "$which: no address on eth0 after ADD" >&2; exit 1; }
  run $which DEL
  ! ip -n "$ns" link show eth0 > /dev/null 2>&1 || { echo "$which: eth0 still in $ns after DEL" >&2; exit 1; }
done
for ((i = 0; i < N; i++)); do
  if ((i % 2)); then order="go ours"; else order="ours go"; fi
  for which in $order; do
    s=$EPOCHREALTIME; run $which ADD; m=$EPOCHREALTIME; run $which DEL; e=$EPOCHREALTIME
    echo "$(us "$s" "$m")" >> "$WORK/$which.add"
    echo "$(us "$m" "$e")" >> "$WORK/$which.del"
    echo "$(us "$s" "$e")" >> "$WORK/$which.both"
  done
  s=$EPOCHREALTIME; /bin/true; e=$EPOCHREALTIME; echo "$(us "$s" "$e")" >> "$WORK/true"
done
LOOP

start=$EPOCHREALTIME
ip netns exec "$HOSTNS" bash "$WORK/loop.sh" "$N" "$OURS" "$GO" "$WORK" "$CTR_OURS" "$CTR_GO"
end=$EPOCHREALTIME
echo "  guest loop wall time: $(((${end/./} - ${start/./}) / 1000)) ms"

printf '  %-18s %9s %9s %9s %9s\n' "(in the guest)" "median" "p95" "mean" "min"
for row in "ours ADD:ours.add" "go ADD:go.add" "ours DEL:ours.del" "go DEL:go.del" \
  "ours ADD+DEL:ours.both" "go ADD+DEL:go.both" "/bin/true:true"; do
  read -r m p a n < <(stats "$WORK/${row#*:}" 1)
  printf '  %-18s %9s %9s %9s %9s  ms\n' "${row%%:*}" "$m" "$p" "$a" "$n"
done
read -r mo _ < <(stats "$WORK/ours.both" 1)
read -r mg _ < <(stats "$WORK/go.both" 1)
read -r mt _ < <(stats "$WORK/true" 1)
awk -v o="$mo" -v g="$mg" -v t="$mt" 'BEGIN {
  printf "  ratios of ADD+DEL medians: go/ours %.2f  ours/true %.1f  go/true %.1f\n", g / o, o / t, g / t }'
figure branch-eni-cycle "branch-eni ADD+DEL in user-mode-linux, median" ms "$mo" "$mg" "$mt" \
  "$(ratio "$mg" "$mo")" "-" "-"
