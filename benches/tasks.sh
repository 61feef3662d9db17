#!/bin/bash
# benches/tasks.sh [TASKS]
#
# A node starting many awsvpc tasks at once (issue 15 §2): TASKS (default 50) tasks, each with its
# own fake ENI in one simulated host, networked concurrently with the ECS agent's sequence per task,
# and torn down concurrently in the agent's order:
#
#   ours  ADD: vpc-eni (eth0; the agent's config, instance metadata blocked), ecs-bridge with ecs-ipam
#         in-process (ecs-eth0, 169.254.172.0/22, Amazon's BoltDB store), loopback (lo)
#         DEL: loopback, ecs-bridge ("ipam": {}), vpc-eni, ecs-ipam (release by the ENI's MAC)
#   go    Debian's Go plugins doing the equivalent: host-device (hwaddr, static IPAM: the same
#         address and default route), bridge + host-local (169.254.172.0/22, the same route),
#         loopback; DEL in the reverse order
#   floor the kernel's rtnl lock: the TASKS ENI moves into the tasks (`ip link set <eni> netns
#         <task>`) started at once, against the same moves one after the other (each timed; their
#         sum), and back; and TASKS `/bin/true` at once (the exec floor of a 2-core machine)
#
# Every task runs in its own background subshell of a bash inside the host namespace; all are
# released at once (a FIFO barrier: one line each). Per-task latency = the task's whole ADD sequence. After each
# round, untimed: every task's eth0 and ecs-eth0 addresses are read from the kernel; a task whose
# sequence failed or lacks an address is a failure; an ecs-eth0 address held by two tasks is a
# duplicate. ROUNDS rounds (default 3; QUICK=1: 1), ours and Go alternating first. Then, for the
# plot of wall time against the number of tasks, one round at each count in CURVE (default "10 25").
#
# With perf installed (RCU_WAITS=0: off), the first round's ADD phases and the floor's moves are
# recorded (benches/lib.sh) to say where the time goes: how long the processes slept in the kernel's
# rcu_barrier(), which every move to another namespace calls while it holds the rtnl lock (so those
# sleeps follow one another, one per task: a floor no plugin that moves ENIs gets under).
#
# Prints a table, FIGURE and POINT lines (protocol: benches/lib.sh). Goals: ours >= 3x Go's
# throughput (TASKS / wall time of the ADDs), zero failures, zero duplicate addresses.
#
# Everything runs in namespaces of a simulated host (netns-fixture CLI); the subshells are waited
# for (and killed by PID on interrupt); `netns-fixture down` removes every namespace on exit.
#
# Environment: OURS_DIR (our eni, bridge, ipam, loopback; default `cargo xtask release`), GO_DIR
# (default /usr/lib/cni), TASKS, ROUNDS, QUICK, CURVE.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
TASKS=${1:-${TASKS:-50}}
if [ "${QUICK:-0}" = 1 ]; then ROUNDS=${ROUNDS:-1}; else ROUNDS=${ROUNDS:-3}; fi
GO_DIR=${GO_DIR:-/usr/lib/cni}
CURVE=${CURVE-10 25}
NT=

die() { echo "bench-tasks: $*" >&2; exit 1; }
[[ $TASKS =~ ^[1-9][0-9]*$ ]] && ((TASKS <= 250)) || die "TASKS must be 1-250, got '$TASKS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
command -v ip > /dev/null || die "ip (iproute2) not found"
for p in host-device static bridge host-local loopback; do
  [ -x "$GO_DIR/$p" ] || die "$GO_DIR/$p not found: apt-get install -y containernetworking-plugins"
done
if [ -z "${OURS_DIR:-}" ]; then
  OURS_DIR=$(release_dir eni bridge ipam loopback)
fi
OURS_DIR=$(cd "$OURS_DIR" && pwd -P)
for p in eni bridge ipam loopback; do [ -x "$OURS_DIR/$p" ] || die "our $p is missing in $OURS_DIR"; done
need_fixture || die "cannot build the netns-fixture CLI"

DRIVER=
# a driver interrupted mid-round: stop it and its task subshells, by PID
bench_cleanup_more() {
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2> /dev/null; then
    kill -TERM "$DRIVER" 2> /dev/null
    wait "$DRIVER" 2> /dev/null
  fi
}
bench_workspace tkbench || die "cannot create a work directory"

# our plugins under the names the ECS agent executes (each reads its dialect from its name)
mkdir -p "$WORK/ours"
for pair in eni:vpc-eni bridge:ecs-bridge ipam:ecs-ipam loopback:loopback; do
  cp "$OURS_DIR/${pair%%:*}" "$WORK/ours/${pair#*:}"
done

mac() { printf '0a:5a:00:00:%02x:%02x' $(($1 / 256)) $(($1 % 256)); }
elements=()
for ((i = 0; i < TASKS; i++)); do
  elements+=(--ns "t$i" --eni "name=tke$i,peer=tkp$i,mac=$(mac "$i"),gw4=10.77.$i.1/24")
done
echo "bench-tasks: building a simulated host with $TASKS fake ENIs and $TASKS task namespaces" >&2
fixture_up "$TAG" "${elements[@]}" > /dev/null
HOSTNS=$HOST_NS

# the configs of task i, both implementations
for ((i = 0; i < TASKS; i++)); do
  m=$(mac "$i")
  d=$WORK/c$i
  mkdir -p "$d"
  cat > "$d/vpc-eni.json" << EOF
{"type":"vpc-eni","cniVersion":"0.3.0","name":"network-name","dns":{},"eniName":"","eniMACAddress":"$m",
 "eniIPAddresses":["10.77.$i.17/24"],"gatewayIPAddresses":["10.77.$i.1"],"useExistingNetwork":false,
 "blockInstanceMetadata":true}
EOF
  cat > "$d/ecs-bridge.json" << EOF
{"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","bridge":"ecs-bridge","isGateway":false,
 "isDefaultGateway":false,"forceAddress":false,"ipMasq":false,"mtu":0,"hairpinMode":false,
 "ipam":{"type":"ecs-ipam","id":"$m","ipv4-subnet":"169.254.172.0/22","ipv4-routes":[{"dst":"169.254.170.2/32"}]}}
EOF
  cat > "$d/ecs-bridge-del.json" << EOF
{"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","bridge":"ecs-bridge","isGateway":false,
 "isDefaultGateway":false,"forceAddress":false,"ipMasq":false,"mtu":0,"hairpinMode":false,"ipam":{}}
EOF
  cat > "$d/ecs-ipam.json" << EOF
{"cniVersion":"0.3.0","name":"ecs-ipam","type":"ecs-ipam","ipam":{"type":"ecs-ipam","id":"$m",
 "ipv4-subnet":"169.254.172.0/22","ipv4-routes":[{"dst":"169.254.170.2/32"}]}}
EOF
  cat > "$d/host-device.json" << EOF
{"cniVersion":"0.3.0","name":"network-name","type":"host-device","hwaddr":"$m",
 "ipam":{"type":"static","addresses":[{"address":"10.77.$i.17/24","gateway":"10.77.$i.1"}],
         "routes":[{"dst":"0.0.0.0/0","gw":"10.77.$i.1"}]}}
EOF
  cat > "$d/bridge.json" << EOF
{"cniVersion":"0.3.0","name":"network-name","type":"bridge","bridge":"go-bridge","isGateway":false,
 "ipMasq":false,"hairpinMode":false,"ipam":{"type":"host-local","subnet":"169.254.172.0/22",
 "routes":[{"dst":"169.254.170.2/32"}],"dataDir":"$WORK/go-ipam"}}
EOF
done
echo '{"cniVersion":"0.3.0","name":"lo","type":"loopback"}' > "$WORK/lo.json"

# The driver, run by a bash inside the host netns: `driver.sh PHASE OUT`, PHASE one of
# ours-add ours-del go-add go-del move-conc move-back-conc move-serial move-back-serial true-conc.
# Writes OUT/wall (µs, barrier to last task) and OUT/t<i> ("<µs> <rc>") per task.
cat > "$WORK/driver.sh" << 'DRIVER'
set -u
PHASE=$1 OUT=$2 TASKS=$3 W=$4 GO=$5 TAG=$6
mkdir -p "$OUT"
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
HOSTNET=/proc/$$/ns/net
# cni PLUGIN_DIR PLUGIN VERB IFNAME CONF I: one plugin call as the agent makes it
cni() {
  CNI_COMMAND=$3 CNI_CONTAINERID=tk-$6 CNI_NETNS=/run/netns/$TAG-t$6 CNI_IFNAME=$4 CNI_PATH=$1 \
    IPAM_DB_PATH=$W/eni-ipam.db "$1/$2" < "$5" > "$OUT/out$6" 2>> "$OUT/err$6"
}
task() {
  local i=$1 c=$W/c$1 rc=0
  case $PHASE in
    ours-add)
      cni "$W/ours" vpc-eni ADD eth0 "$c/vpc-eni.json" "$i" &&
        cni "$W/ours" ecs-bridge ADD ecs-eth0 "$c/ecs-bridge.json" "$i" &&
        cni "$W/ours" loopback ADD lo "$W/lo.json" "$i" || rc=$? ;;
    ours-del)
      cni "$W/ours" loopback DEL lo "$W/lo.json" "$i" || rc=$?
      cni "$W/ours" ecs-bridge DEL ecs-eth0 "$c/ecs-bridge-del.json" "$i" || rc=$?
      cni "$W/ours" vpc-eni DEL eth0 "$c/vpc-eni.json" "$i" || rc=$?
      cni "$W/ours" ecs-ipam DEL ecs-eth0 "$c/ecs-ipam.json" "$i" || rc=$? ;;
    go-add)
      cni "$GO" host-device ADD eth0 "$c/host-device.json" "$i" &&
        cni "$GO" bridge ADD ecs-eth0 "$c/bridge.json" "$i" &&
        cni "$GO" loopback ADD lo "$W/lo.json" "$i" || rc=$? ;;
    go-del)
      cni "$GO" loopback DEL lo "$W/lo.json" "$i" || rc=$?
      cni "$GO" bridge DEL ecs-eth0 "$c/bridge.json" "$i" || rc=$?
      cni "$GO" host-device DEL eth0 "$c/host-device.json" "$i" || rc=$? ;;
    move*) 
      if [ "${PHASE#move-back}" != "$PHASE" ]; then
        ip -n "$TAG-t$i" link set "tke$i" netns "$HOSTNET" || rc=$?
      else
        ip link set "tke$i" netns "$TAG-t$i" || rc=$?
      fi ;;
    true-conc) /bin/true || rc=$? ;;
  esac
  return "$rc"
}
timed() {
  local s e rc=0
  s=$EPOCHREALTIME
  task "$1" || rc=$?
  e=$EPOCHREALTIME
  echo "$(us "$s" "$e") $rc" > "$OUT/t$1"
}
pids=()
stop() { kill -TERM "${pids[@]}" 2> /dev/null; exit 143; }
trap stop TERM INT
if [ "${PHASE%-serial}" != "$PHASE" ]; then
  s=$EPOCHREALTIME
  for ((i = 0; i < TASKS; i++)); do timed "$i"; done
  e=$EPOCHREALTIME
else
  # the barrier: a FIFO held open read-write here (so no open blocks); each task reads one line
  # of it (bash reads a pipe byte by byte), and all lines are written at once
  rm -f "$OUT/go"; mkfifo "$OUT/go"
  exec 3<> "$OUT/go"
  for ((i = 0; i < TASKS; i++)); do
    (read -r _ <&3; exec 3<&-; timed "$i") &
    pids+=($!)
  done
  s=$EPOCHREALTIME
  printf '%*s' "$TASKS" '' | tr ' ' '\n' >&3 # all tasks start
  exec 3<&-
  for p in "${pids[@]}"; do wait "$p"; done
  e=$EPOCHREALTIME
fi
us "$s" "$e" > "$OUT/wall"
echo "$PHASE $s $e" > "$OUT/span"
DRIVER

phase() { # PHASE OUT: one driver run inside the host netns, for the first ${NT:-$TASKS} tasks
  ip netns exec "$HOSTNS" bash "$WORK/driver.sh" "$1" "$2" "${NT:-$TASKS}" "$WORK" "$GO_DIR" "$TAG" &
  DRIVER=$!
  wait "$DRIVER" || die "driver phase $1 failed"
  DRIVER=
}
# round_phase R PHASE OUT: phase, traced in the first round (R = 0)
round_phase() {
  if (($1 == 0)); then traced "$2" "$3"; else phase "$2" "$3"; fi
}
# traced PHASE OUT: phase, recorded by perf (benches/lib.sh): OUT/rcu/rcu-PHASE gets the time the
# phase's processes slept in rcu_barrier() ("<µs> <sleeps>"); RCU_OK=0 when that is not available
RCU_OK=1
traced() {
  mkdir -p "$2-rcu"
  if ! rcu_trace_start "$2-rcu"; then RCU_OK=0; phase "$1" "$2"; return; fi
  phase "$1" "$2"
  rcu_trace_stop
  rcu_waits "$2/span" "$2/rcu" || RCU_OK=0
}
# after a teardown: every ENI back in the host and up, as freshly attached
reset_enis() {
  local i missing=0
  for ((i = 0; i < TASKS; i++)); do
    ip -n "$HOSTNS" link show "tke$i" > /dev/null 2>&1 || missing=$((missing + 1))
  done
  for ((i = 0; i < TASKS; i++)); do echo "link set tke$i up"; done | ip -n "$HOSTNS" -force -batch - 2> /dev/null || true
  echo "$missing"
}
# verify OUT: reads every task's addresses (untimed); writes OUT/failures and OUT/duplicates
verify() {
  local out=$1 i fails=0 a4 br
  : > "$out/bridge-addrs"
  for ((i = 0; i < ${NT:-$TASKS}; i++)); do
    read -r _ rc < "$out/t$i"
    a4=$(ip -n "$TAG-t$i" -o -4 addr show dev eth0 2> /dev/null | awk '{print $4}')
    br=$(ip -n "$TAG-t$i" -o -4 addr show dev ecs-eth0 2> /dev/null | awk '{print $4}')
    if [ "$rc" != 0 ] || [ "$a4" != "10.77.$i.17/24" ] || [ -z "$br" ]; then
      fails=$((fails + 1))
      echo "bench-tasks: task $i: rc $rc, eth0 '$a4', ecs-eth0 '$br': $(tail -c 300 "$out/err$i" 2> /dev/null)" >&2
    fi
    [ -z "$br" ] || echo "${br%/*}" >> "$out/bridge-addrs"
  done
  echo "$fails" > "$out/failures"
  sort "$out/bridge-addrs" | uniq -d | wc -l > "$out/duplicates"
}
# del_failures OUT: tasks whose teardown failed or left an ENI out of the host
del_failures() {
  local out=$1 i fails=0
  for ((i = 0; i < ${NT:-$TASKS}; i++)); do
    read -r _ rc < "$out/t$i"
    [ "$rc" = 0 ] || { fails=$((fails + 1)); echo "bench-tasks: task $i DEL: rc $rc: $(tail -c 300 "$out/err$i")" >&2; }
  done
  echo "$fails" > "$out/failures"
}

echo "bench-tasks: $TASKS tasks, $ROUNDS round(s), load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, kernel $(uname -r)"
echo "  ours: $OURS_DIR/{eni,bridge,ipam,loopback} as vpc-eni, ecs-bridge, ecs-ipam, loopback"
echo "  go:   $GO_DIR/{host-device,static,bridge,host-local,loopback}"
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2 == 0)); then order="ours go"; else order="go ours"; fi
  for who in $order; do
    round_phase "$r" "$who-add" "$WORK/r$r/$who-add"
    verify "$WORK/r$r/$who-add"
    sleep 0.2
    phase "$who-del" "$WORK/r$r/$who-del"
    del_failures "$WORK/r$r/$who-del"
    lost=$(reset_enis)
    [ "$lost" = 0 ] || echo "bench-tasks: $who round $r: $lost ENIs not back in the host after DEL" >&2
    echo "$lost" > "$WORK/r$r/$who-del/lost"
    sleep 0.2
  done
  round_phase "$r" move-conc "$WORK/r$r/move-conc"
  phase move-back-conc "$WORK/r$r/move-back-conc"
  reset_enis > /dev/null
  round_phase "$r" move-serial "$WORK/r$r/move-serial"
  phase move-back-serial "$WORK/r$r/move-back-serial"
  reset_enis > /dev/null
  phase true-conc "$WORK/r$r/true-conc"
done

# the curve: one round at each smaller count, for the plot (their failures and duplicates count too)
declare -A CF=([ours]=0 [go]=0)
for n in $CURVE; do
  ((n < TASKS)) || continue
  NT=$n
  for who in ours go; do
    phase "$who-add" "$WORK/curve$n/$who-add"
    verify "$WORK/curve$n/$who-add"
    CF[$who]=$((CF[$who] + $(< "$WORK/curve$n/$who-add/failures") + $(< "$WORK/curve$n/$who-add/duplicates")))
    sleep 0.2
    phase "$who-del" "$WORK/curve$n/$who-del"
    reset_enis > /dev/null
    sleep 0.2
  done
  phase move-conc "$WORK/curve$n/move-conc"
  phase move-back-conc "$WORK/curve$n/move-back-conc"
  reset_enis > /dev/null
  for ph in ours-add go-add move-conc; do
    series=${ph%-*}
    [ "$series" = move ] && series=floor
    point "wall time of N tasks at once" "concurrent tasks" "$n" "$series" \
      "$(awk '{ printf "%.1f", $1 / 1000 }' "$WORK/curve$n/$ph/wall")" ms
  done
  NT=
done

# collect: per phase, every task time of every round (r*: the main rounds only), and the walls
for ph in ours-add ours-del go-add go-del move-conc move-back-conc move-serial move-back-serial true-conc; do
  cat "$WORK"/r*/"$ph"/t* | awk '{print $1}' > "$WORK/$ph.lat"
  cat "$WORK"/r*/"$ph"/wall > "$WORK/$ph.wall"
  # the serial phases: the sum of the per-move times, per round
  for ((r = 0; r < ROUNDS; r++)); do cat "$WORK/r$r/$ph"/t* | awk '{s += $1} END {print s}'; done > "$WORK/$ph.sum"
done
med() { local m _; read -r m _ < <(stats "$1" 1); printf '%s' "${m:-0.0}"; }
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { k = int(NR * p / 100 + 0.999999); if (k < 1) k = 1; printf "%.1f", v[k] / 1000 }'; }
total() { cat "$WORK"/r*/"$1"/"$2" | awk '{ s += $1 } END { print s + 0 }'; }

declare -A R
for ph in ours-add ours-del go-add go-del; do
  R[$ph-wall]=$(med "$WORK/$ph.wall")
  R[$ph-p50]=$(med "$WORK/$ph.lat")
  R[$ph-p99]=$(pct "$WORK/$ph.lat" 99)
  R[$ph-fail]=$(total "$ph" failures)
done
for who in ours go; do
  R[$who-dup]=$(total "$who-add" duplicates)
  R[$who-lost]=$(total "$who-del" lost)
  R[$who-tput]=$(awk -v n="$TASKS" -v w="${R[$who-add-wall]}" 'BEGIN { printf "%.1f", n / (w / 1000) }')
done
for ph in move-conc move-back-conc true-conc; do R[$ph-wall]=$(med "$WORK/$ph.wall"); R[$ph-p50]=$(med "$WORK/$ph.lat"); done
for ph in move-serial move-back-serial; do R[$ph-sum]=$(med "$WORK/$ph.sum"); R[$ph-p50]=$(med "$WORK/$ph.lat"); done

printf '\n  load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-34s %10s %10s %10s %9s %9s %6s\n' "$TASKS tasks at once (medians)" "wall ms" "p50 ms" "p99 ms" "tasks/s" "failures" "dups"
for who in ours go; do
  printf '  %-34s %10s %10s %10s %9s %9s %6s\n' "$who ADD sequence" "${R[$who-add-wall]}" "${R[$who-add-p50]}" \
    "${R[$who-add-p99]}" "${R[$who-tput]}" "${R[$who-add-fail]}" "${R[$who-dup]}"
  printf '  %-34s %10s %10s %10s %9s %9s %6s\n' "$who DEL sequence" "${R[$who-del-wall]}" "${R[$who-del-p50]}" \
    "${R[$who-del-p99]}" "-" "${R[$who-del-fail]}" "lost ${R[$who-lost]}"
done
printf '  %-34s %10s %10s\n' "floor: $TASKS ENI moves at once" "${R[move-conc-wall]}" "${R[move-conc-p50]}"
printf '  %-34s %10s %10s\n' "floor: the same moves one by one" "${R[move-serial-sum]}" "${R[move-serial-p50]}"
printf '  %-34s %10s %10s\n' "floor: $TASKS moves back at once" "${R[move-back-conc-wall]}" "${R[move-back-conc-p50]}"
printf '  %-34s %10s %10s\n' "floor: the moves back one by one" "${R[move-back-serial-sum]}" "${R[move-back-serial-p50]}"
printf '  %-34s %10s %10s\n' "floor: $TASKS x /bin/true at once" "${R[true-conc-wall]}" "${R[true-conc-p50]}"
par=$(ratio "${R[move-serial-sum]}" "${R[move-conc-wall]}")
share=$(awk -v m="${R[move-conc-wall]}" -v o="${R[ours-add-wall]}" 'BEGIN { printf "%.0f", 100 * m / o }')
gshare=$(awk -v m="${R[move-conc-wall]}" -v o="${R[go-add-wall]}" 'BEGIN { printf "%.0f", 100 * m / o }')
echo "  rtnl lock: $TASKS concurrent moves take ${R[move-conc-wall]} ms, the same moves one by one ${R[move-serial-sum]} ms:"
echo "    parallel speed-up ${par}x on $(nproc) CPUs (1.0 = fully serialised); the moves alone are ${share}% of our"
echo "    ADD wall time (${gshare}% of Go's)"
if [ "$RCU_OK" = 1 ]; then
  echo "  where the moves' time goes (round 1, perf sched records): each move sleeps in rcu_barrier(), holding rtnl"
  for ph in move-serial move-conc ours-add go-add; do
    read -r slept n < "$WORK/r0/$ph/rcu/rcu-$ph"
    wall=$(< "$WORK/r0/$ph/wall")
    R[$ph-rcu]=$(awk -v s="$slept" -v w="$wall" 'BEGIN { printf "%.0f", 100 * s / w }')
    printf '    %-16s %8.1f ms of %8.1f ms wall asleep in rcu_barrier() (%s%%), %3d sleeps, %5.1f ms each\n' "$ph" \
      "$(awk -v s="$slept" 'BEGIN { print s / 1000 }')" "$(awk -v w="$wall" 'BEGIN { print w / 1000 }')" "${R[$ph-rcu]}" \
      "$n" "$(awk -v s="$slept" -v n="$n" 'BEGIN { print (n ? s / n / 1000 : 0) }')"
  done
  figure rtnl-barrier "$TASKS concurrent tasks: share of the ADD wall time asleep in rcu_barrier() (ours; peer Go; floor: the moves alone)" "%" \
    "${R[ours-add-rcu]}" "${R[go-add-rcu]}" "${R[move-conc-rcu]}" "-" "-" "-"
fi

tput_ratio=$(ratio "${R[ours-tput]}" "${R[go-tput]}")
figure tasks-throughput "$TASKS concurrent awsvpc tasks, ADD throughput (tasks/s)" "tasks/s" \
  "${R[ours-tput]}" "${R[go-tput]}" "-" "$tput_ratio" ">= 3x Go" "$(goal_ge "$tput_ratio" 3)"
figure tasks-wall "$TASKS concurrent awsvpc tasks, ADD wall time" ms \
  "${R[ours-add-wall]}" "${R[go-add-wall]}" "${R[move-conc-wall]}" "$(ratio "${R[go-add-wall]}" "${R[ours-add-wall]}")" "-" "-"
figure tasks-p50 "$TASKS concurrent tasks, per-task ADD latency p50" ms \
  "${R[ours-add-p50]}" "${R[go-add-p50]}" "-" "$(ratio "${R[go-add-p50]}" "${R[ours-add-p50]}")" "-" "-"
figure tasks-p99 "$TASKS concurrent tasks, per-task ADD latency p99" ms \
  "${R[ours-add-p99]}" "${R[go-add-p99]}" "-" "$(ratio "${R[go-add-p99]}" "${R[ours-add-p99]}")" "-" "-"
fails=$((${R[ours-add-fail]} + ${R[ours-del-fail]} + ${R[ours-lost]} + ${CF[ours]}))
figure tasks-failures "$TASKS concurrent tasks, failures (ADD+DEL, all rounds, curve rounds too)" count \
  "$fails" "$((${R[go-add-fail]} + ${R[go-del-fail]} + ${R[go-lost]} + ${CF[go]}))" "-" "-" "0" "$(goal_le "$fails" 0)"
figure tasks-duplicates "$TASKS concurrent tasks, duplicate addresses (all rounds)" count \
  "${R[ours-dup]}" "${R[go-dup]}" "-" "-" "0" "$(goal_le "${R[ours-dup]}" 0)"
figure tasks-del-wall "$TASKS concurrent tasks, DEL wall time" ms \
  "${R[ours-del-wall]}" "${R[go-del-wall]}" "${R[move-back-conc-wall]}" "$(ratio "${R[go-del-wall]}" "${R[ours-del-wall]}")" "-" "-"
figure rtnl-moves "$TASKS ENI moves alone: at once (wall; floor) vs one by one (sum; ours), ratio sum/wall = parallel speed-up" ms \
  "${R[move-serial-sum]}" "-" "${R[move-conc-wall]}" "$par" "-" "-"
figure rtnl-share "$TASKS concurrent tasks: the $TASKS ENI moves alone, share of the ADD wall time (ours; peer Go)" "%" \
  "$share" "$gshare" "-" "-" "-" "-"
point "wall time of N tasks at once" "concurrent tasks" "$TASKS" ours "${R[ours-add-wall]}" ms
point "wall time of N tasks at once" "concurrent tasks" "$TASKS" go "${R[go-add-wall]}" ms
point "wall time of N tasks at once" "concurrent tasks" "$TASKS" floor "${R[move-conc-wall]}" ms
