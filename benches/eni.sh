#!/bin/bash
# benches/eni.sh [N]
#
# One benchmark run of the eni plugin, inside a simulated host: ADD and DEL of our `eni` (static release
# binary from `cargo xtask release`) against Debian's Go `host-device` (/usr/lib/cni/host-device,
# selecting the same fake ENI by `hwaddr`, with the `static` IPAM giving it the same address and default
# route), and the kernel floor measured in the same loop: `ip link set <eni> netns <task>` and back. N
# iterations (default 40), interleaved (each iteration in a shuffled order), timed with bash's
# $EPOCHREALTIME (no extra forks). Prints median, p95, mean and min in ms per operation, the ratios of the
# medians and ours minus the floor (goal: ADD and DEL each within 1 ms of the floor). The floor's way back
# moves the ENI while it is up in the task, once configured as the plugins leave it (the DEL floor) and once
# bare; see floor() below.
#
# What the floor does not do and both plugins must: rename the ENI to eth0 in the task (ADD) and back to its
# host name (DEL). The kernel renames only a link that is down and waits for an RCU grace period in
# dev_change_name(), so each rename costs about as much as one `ip link set ... name` (~1 ms here).
#
# Almost all of a move is one sleep in the kernel's rcu_barrier() (__dev_change_net_namespace waits for
# every queued RCU callback: at least one grace period, 13 to 40 ms here, whoever moves the link). It
# makes the medians above swing by a few ms between runs, more than the 1 ms goal. With perf installed
# (RCU_WAITS=0 turns it off) the timed loop is recorded (`perf record` of the scheduler's switches and
# wake-ups, system-wide; benches/lib.sh) and every operation is printed a second time without its sleep
# in rcu_barrier(): the same comparison with that noise taken out (FIGURE eni-add-floor-net and
# eni-del-floor-net).
#
# Both plugins do the same work: move the ENI into the task namespace, rename it to eth0, add 10.0.1.17/24,
# bring it up, add `default via 10.0.1.1`; DEL moves it back under its host name. Ours additionally records
# and restores the host name and MTU in the alias. (`OURS_FULL=1` adds a fourth variant: ours with
# `mtu: 9001` and IMDS blocking.)
#
# Everything runs in namespaces of a simulated host made by the netns-fixture CLI (netns-fixtures, `cargo
# xtask fixture`): a "host" netns where the plugins and `ip` run, holding the fake ENI `enibench0` (a veth
# end with the ENI's MAC), a "subnet" netns holding its peer (gateway 10.0.1.1), and one task netns.
# Nothing touches the machine's own namespaces; `netns-fixture down` removes them on exit (trap), also on
# failure or Ctrl-C.
#
# Environment:
#   OURS   path of our eni binary (default: build it with `cargo xtask release eni`)
#   GO     path of the reference binary (default /usr/lib/cni/host-device; its IPAM `static` is looked up
#          in the same directory)
#   N      iterations, if not given as $1
#   SETTLE seconds to wait after every untimed state change and between ADD and DEL (default 0.05), so
#          that each timed move starts from a settled link (no IPv6 DAD/RS packets in flight right after
#          "up", which can make the kernel wait a jiffy for a busy qdisc while closing the link)
#   RT     1 runs the timed loop under SCHED_FIFO (`chrt -f 10`), so that other work on a shared machine
#          does not preempt the plugins between their system calls (both plugins and the floor alike)
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-40}}
GO=${GO:-/usr/lib/cni/host-device}
GODIR=$(dirname "$GO")
SETTLE=${SETTLE:-0.05}

die() { echo "bench-eni: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
command -v ip > /dev/null || die "ip (iproute2) not found"
[ -x "$GO" ] || die "$GO not found: apt-get install -y containernetworking-plugins"
[ -x "$GODIR/static" ] || die "$GODIR/static (IPAM for host-device) not found"
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir eni)/eni
fi
[ -x "$OURS" ] || die "our eni binary $OURS is missing"
need_fixture || die "cannot build the netns-fixture CLI"

bench_workspace enibench || die "cannot create a work directory"
ENI=enibench0
MAC=0a:1b:2c:3d:4e:5f

# host and subnet namespaces (lo up), the fake ENI between them, the task namespace
fixture_up "$TAG" --ns task --eni "name=$ENI,peer=enibsub,mac=$MAC,gw4=10.0.1.1/24"
HOSTNS=$HOST_NS
TASK=$TASK_NS

cat > "$WORK/ours.json" << 'EOF'
{"cniVersion":"1.0.0","name":"enibench","type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:5f",
 "eniIPAddresses":["10.0.1.17/24"],"gatewayIPAddresses":["10.0.1.1"],"blockInstanceMetadata":false}
EOF
cat > "$WORK/full.json" << 'EOF'
{"cniVersion":"1.0.0","name":"enibench","type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:5f",
 "eniIPAddresses":["10.0.1.17/24"],"gatewayIPAddresses":["10.0.1.1"],"blockInstanceMetadata":true,"mtu":9001}
EOF
cat > "$WORK/go.json" << 'EOF'
{"cniVersion":"1.0.0","name":"enibench","type":"host-device","hwaddr":"0a:1b:2c:3d:4e:5f",
 "ipam":{"type":"static","addresses":[{"address":"10.0.1.17/24","gateway":"10.0.1.1"}],
         "routes":[{"dst":"0.0.0.0/0","gw":"10.0.1.1"}]}}
EOF

# The loop, run by a bash inside the "host" netns.
cat > "$WORK/loop.sh" << 'LOOP'
set -u
N=$1 OURS=$2 GO=$3 GODIR=$4 WORK=$5 TASK=$6 ENI=$7 FULL=$8 SETTLE=$9
# shellcheck source=benches/lib.sh
source "${10}" # in_order
export CNI_IFNAME=eth0 CNI_CONTAINERID=enibench-$$ CNI_NETNS=/run/netns/$TASK
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
fail() { echo "bench-eni: $*" >&2; exit 1; }
# ADD then DEL with one plugin; appends the two times to $OUT/<name>.add / .del
# (Output goes to a file, not through $(...): a command substitution forks a subshell, which the floor's
# plain `ip` call does not pay.)
pair() {
  local name=$1 bin=$2 conf=$3 path=$4 s e
  s=$EPOCHREALTIME
  CNI_COMMAND=ADD CNI_PATH=$path "$bin" < "$conf" > "$WORK/out" || fail "$name ADD failed: $(cat "$WORK/out")"
  e=$EPOCHREALTIME
  echo "$(us "$s" "$e")" >> "$WORK/$name.add"
  echo "$name.add $s $e" >> "$WORK/windows"
  sleep "$SETTLE"
  s=$EPOCHREALTIME
  CNI_COMMAND=DEL CNI_PATH=$path "$bin" < "$conf" > "$WORK/out" || fail "$name DEL failed: $(cat "$WORK/out")"
  e=$EPOCHREALTIME
  echo "$(us "$s" "$e")" >> "$WORK/$name.del"
  echo "$name.del $s $e" >> "$WORK/windows"
}
# The floor: the move in, then the move back of the link as a DEL finds it. `floor cfg` first gives it in
# the task (untimed) what both plugins' ADD gives it (up, 10.0.1.17/24, default route): the kernel tears
# that down inside the move, which a DEL cannot avoid. `floor bare` moves it back up but unconfigured.
floor() {
  local kind=$1 s e
  s=$EPOCHREALTIME
  ip link set "$ENI" netns "$TASK" || fail "ip link set $ENI netns $TASK failed"
  e=$EPOCHREALTIME
  echo "$(us "$s" "$e")" >> "$WORK/floor.add"
  echo "floor.add $s $e" >> "$WORK/windows"
  ip -n "$TASK" link set "$ENI" up || fail "ip -n $TASK link set $ENI up failed"
  if [ "$kind" = cfg ]; then
    ip -n "$TASK" addr add 10.0.1.17/24 dev "$ENI" || fail "floor: addr add failed"
    ip -n "$TASK" route add default via 10.0.1.1 dev "$ENI" || fail "floor: route add failed"
  fi
  sleep "$SETTLE"
  s=$EPOCHREALTIME
  ip -n "$TASK" link set "$ENI" netns "/proc/$$/ns/net" || fail "moving $ENI back failed"
  e=$EPOCHREALTIME
  echo "$(us "$s" "$e")" >> "$WORK/floor$kind.del"
  echo "floor$kind.del $s $e" >> "$WORK/windows"
}
# Sanity, before anything is timed: each plugin really moves and configures the ENI, and DEL brings it back.
for which in ours go; do
  if [ $which = ours ]; then bin=$OURS conf=$WORK/ours.json path=$GODIR; else bin=$GO conf=$WORK/go.json path=$GODIR; fi
  res=$(CNI_COMMAND=ADD CNI_PATH=$path "$bin" < "$conf") || fail "$which: ADD failed: $res"
  case $res in *10.0.1.17*) ;; *) fail "$which: ADD printed no result with 10.0.1.17: '$res'" ;; esac
  ip -n "$TASK" -o addr show dev eth0 | grep -q 'inet 10.0.1.17/24' || fail "$which: eth0 in the task lacks 10.0.1.17/24"
  ip -n "$TASK" route | grep -q '^default via 10.0.1.1 dev eth0' || fail "$which: no default route in the task"
  ip netns exec "$TASK" ping -c1 -W2 10.0.1.1 > /dev/null || fail "$which: gateway unreachable from the task"
  res=$(CNI_COMMAND=DEL CNI_PATH=$path "$bin" < "$conf") || fail "$which: DEL failed: $res"
  ip -o link show "$ENI" > /dev/null 2>&1 || fail "$which: $ENI is not back in the host after DEL"
  ip link set "$ENI" up
done
rm -f "$WORK"/*.add "$WORK"/*.del "$WORK/windows"
variants=(ours go floorcfg floorbare)
[ "$FULL" = 1 ] && variants+=(full)
# variant K: the K-th of the variants, then the ENI back up as a freshly attached one (not timed)
variant() {
  case ${variants[$1]} in
    ours) pair ours "$OURS" "$WORK/ours.json" "$GODIR" ;;
    full) pair full "$OURS" "$WORK/full.json" "$GODIR" ;;
    go) pair go "$GO" "$WORK/go.json" "$GODIR" ;;
    floorcfg) floor cfg ;;
    floorbare) floor bare ;;
  esac
  ip link set "$ENI" up
  sleep "$SETTLE"
}
# each iteration in a shuffled order (benches/lib.sh in_order)
in_order "$N" "${#variants[@]}" variant
LOOP

echo "bench-eni: N=$N, load average: $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "  ours: $OURS ($(stat -c %s "$OURS") bytes)"
echo "  go:   $GO ($(stat -c %s "$GO") bytes) + $GODIR/static"
runner=()
if [ "${RT:-0}" = 1 ]; then
  command -v chrt > /dev/null || die "RT=1 needs chrt (util-linux)"
  runner=(chrt -f 10)
  echo "  timed loop under SCHED_FIFO (chrt -f 10)"
fi
mkdir -p "$WORK/rcu"
rcu=0
rcu_trace_start "$WORK/rcu" && rcu=1 && echo "  recording sleeps in rcu_barrier() with perf (RCU_WAITS=0: off)"
start=$EPOCHREALTIME
"${runner[@]}" ip netns exec "$HOSTNS" bash "$WORK/loop.sh" "$N" "$OURS" "$GO" "$GODIR" "$WORK" "$TASK" "$ENI" "${OURS_FULL:-0}" "$SETTLE" "$ROOT/benches/lib.sh"
end=$EPOCHREALTIME
rcu_trace_stop
echo "  wall time: $(((${end/./} - ${start/./}) / 1000)) ms"

printf '  %-26s %9s %9s %9s %9s\n' "" "median" "p95" "mean" "min"
declare -A med
for op in add del; do
  for which in ours full go floor floorcfg floorbare; do
    [ -f "$WORK/$which.$op" ] || continue
    read -r m p a n < <(stats "$WORK/$which.$op")
    med[$which.$op]=$m
    case $which in
      ours) label="ours ${op^^}" ;;
      full) label="ours ${op^^} (mtu+imds)" ;;
      go) label="go host-device ${op^^}" ;;
      floor) label="floor ADD (move in)" ;;
      floorcfg) label="floor DEL (configured)" ;;
      floorbare) label="floor DEL (bare link)" ;;
    esac
    printf '  %-26s %9s %9s %9s %9s  ms\n' "$label" "$m" "$p" "$a" "$n"
  done
done
med[floor.del]=${med[floorcfg.del]}
for op in add del; do
  awk -v o="${med[ours.$op]}" -v g="${med[go.$op]}" -v f="${med[floor.$op]}" -v op="${op^^}" 'BEGIN {
    printf "  %s: ours/floor %.2f  go/floor %.2f  go/ours %.2f  ours-floor %+.3f ms  go-floor %+.3f ms\n",
      op, o / f, g / f, g / o, o - f, g - f }'
done
for op in add del; do
  d=$(awk -v o="${med[ours.$op]}" -v f="${med[floor.$op]}" 'BEGIN { printf "%.3f", o - f }')
  figure "eni-$op-floor" "eni ${op^^} above the move floor, median" ms "$d" \
    "$(awk -v g="${med[go.$op]}" -v f="${med[floor.$op]}" 'BEGIN { printf "%.3f", g - f }')" "${med[floor.$op]}" \
    "$(ratio "${med[go.$op]}" "${med[ours.$op]}")" "<= 1 ms" "$(goal_le "$d" 1)"
done

# The same medians without the time each operation slept in rcu_barrier() (one grace period per
# move, whoever moves: benches/lib.sh), which is most of a move and most of the noise above.
if [ "$rcu" = 1 ] && rcu_waits "$WORK/windows" "$WORK/rcu/out"; then
  echo "  without the sleep in rcu_barrier() (perf sched records):"
  printf '  %-26s %9s %9s %9s %9s %14s\n' "" "median" "p95" "mean" "min" "barrier sleep"
  declare -A net
  for op in add del; do
    for which in ours full go floor floorcfg floorbare; do
      [ -f "$WORK/rcu/out/net-$which.$op" ] || continue
      read -r m p a n _ sm none < <(rcu_stats "$WORK/rcu/out" "$which.$op")
      net[$which.$op]=$m
      printf '  %-26s %9s %9s %9s %9s %9s ms%s\n' "$which ${op^^}" "$m" "$p" "$a" "$n" "$sm" \
        "$([ "$none" = 0 ] || echo "  ($none without a barrier sleep)")"
    done
  done
  net[floor.del]=${net[floorcfg.del]}
  for op in add del; do
    d=$(awk -v o="${net[ours.$op]}" -v f="${net[floor.$op]}" 'BEGIN { printf "%.3f", o - f }')
    g=$(awk -v o="${net[go.$op]}" -v f="${net[floor.$op]}" 'BEGIN { printf "%.3f", o - f }')
    echo "  ${op^^} without the barrier: ours-floor $d ms  go-floor $g ms"
    figure "eni-$op-floor-net" "eni ${op^^} above the move floor, rcu_barrier() sleep excluded, median" ms "$d" \
      "$g" "${net[floor.$op]}" "$(ratio "${net[go.$op]}" "${net[ours.$op]}")" "<= 1 ms" "$(goal_le "$d" 1)"
  done
fi
