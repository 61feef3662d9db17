#!/bin/bash
# benches/startup.sh [N]
#
# Start-up cost of every plugin, one run (issue 15 §1), with the static release binaries of
# `cargo xtask release`:
#  - time: `loopback` ADD against `/bin/true` (the exec floor) and Debian's Go loopback (the
#    peer), N runs each (default 300), interleaved in one loop that runs the six orders of the
#    three in turn, each started the same way; medians; ratio ours/true (goal <= 1.00);
#  - peak RSS of one ADD per plugin (`/usr/bin/time -f %M`, the largest of 3 runs), against
#    /bin/true (floor) and the Go plugin doing the same job where there is one (peer);
#    goal <= 1536 KB;
#  - system calls per verb per plugin (`strace -f -c`, the plugin process and its threads and
#    children): ADD, CHECK, GC, STATUS, DEL, VERSION, with /bin/true's count as the floor.
# Ours, Go's plugins and /bin/true all run from copies installed into the work directory
# (bench_install in lib.sh): the same page-cache state for every binary compared.
#
# Output: FIGURE lines (the protocol of benches/lib.sh) on stdout, one per figure; the same as a
# human-readable table (figure | ours | peer | floor | ratio | goal | met/missed/info, `-` where
# there is nothing to show; ratio = ours / floor) on stderr.
#
# Everything runs inside namespaces of a simulated host made by the netns-fixture CLI
# (`cargo xtask fixture`), with a fake ENI for `eni`; host-local state lives in a temporary
# directory. Nothing touches the machine's own namespaces; `netns-fixture down` removes them
# on exit (trap), also on failure or Ctrl-C.
#
# Environment:
#   BIN_DIR  directory holding our loopback, ipam, bridge and eni binaries (default: $OURS_DIR
#            as benches/run.sh exports it, else build them with `cargo xtask release`)
#   BEFORE   optionally, a directory holding older binaries of the same plugins: their system
#            call counts are printed too (the `peer` column of the syscall lines, status `info`)
#   GO_DIR   Debian's Go plugins (default /usr/lib/cni)
#   N        timed runs per binary, if not given as $1
# Needs root, ip(8), strace, GNU time (/usr/bin/time) and python3.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-300}}
GO_DIR=${GO_DIR:-/usr/lib/cni}
RSS_GOAL=1536

die() { echo "bench-startup: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
for tool in ip strace python3; do
  command -v "$tool" > /dev/null || die "$tool not found"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install -y time"
[ -x "$GO_DIR/loopback" ] || die "$GO_DIR/loopback not found: apt-get install -y containernetworking-plugins"
BIN_DIR=${BIN_DIR:-${OURS_DIR:-}}
if [ -z "$BIN_DIR" ]; then
  BIN_DIR=$(release_dir loopback ipam bridge eni)
fi
for p in loopback ipam bridge eni; do
  [ -x "$BIN_DIR/$p" ] || die "our $p binary $BIN_DIR/$p is missing"
done
need_fixture || die "cannot build the netns-fixture CLI"

bench_workspace subench || die "cannot create a work directory"
# every binary measured runs from a copy installed the same way (see bench_install)
bench_install "$WORK/installed/ours" "$BIN_DIR"/{loopback,ipam,bridge,eni} &&
  bench_install "$WORK/installed/go" "$GO_DIR"/{loopback,host-local,bridge} &&
  bench_install "$WORK/installed/floor" /bin/true || die "cannot install the binaries to measure"
BIN_SRC=$BIN_DIR GO_SRC=$GO_DIR
BIN_DIR=$WORK/installed/ours GO_DIR=$WORK/installed/go TRUE=$WORK/installed/floor/true

fixture_up "$TAG" --ns lo --ns golo --ns ipam --ns br --ns gobr --ns eni \
  --eni "name=subeni0,peer=subenip,mac=0a:1b:2c:3d:4e:6f,gw4=10.0.9.1/24"
HOSTNS=$HOST_NS

# Our configs in 1.1.0 (every verb exists there); Go's (and the timed loop's) in 1.0.0, the
# newest the Debian plugins know.
cat > "$WORK/loopback.json" << 'EOF'
{"cniVersion":"1.1.0","name":"subench","type":"loopback"}
EOF
printf '{"cniVersion":"1.1.0","name":"subench","type":"ipam","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.96.0.0/24"}]]}}\n' \
  "$WORK/ipam" > "$WORK/ipam.json"
printf '{"cniVersion":"1.1.0","name":"subench","type":"bridge","bridge":"subr%s","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.97.0.0/24"}]]}}\n' \
  "$$" "$WORK/br" > "$WORK/bridge.json"
printf '{"cniVersion":"1.0.0","name":"subench","type":"ipam","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.96.1.0/24"}]]}}\n' \
  "$WORK/goipam" > "$WORK/goipam.json"
printf '{"cniVersion":"1.0.0","name":"subench","type":"bridge","bridge":"sugo%s","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.98.0.0/24"}]]}}\n' \
  "$$" "$WORK/gobr" > "$WORK/gobridge.json"
cat > "$WORK/eni.json" << 'EOF'
{"cniVersion":"1.1.0","name":"subench","type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:6f",
 "eniIPAddresses":["10.0.9.17/24"],"gatewayIPAddresses":["10.0.9.1"],"blockInstanceMetadata":false}
EOF
echo '{"cniVersion":"1.0.0","name":"subench","type":"loopback"}' > "$WORK/golo.json"

# The measuring script, run by a bash inside the "host" netns.
cat > "$WORK/inner.sh" << 'INNER'
set -u
N=$1 BIN_DIR=$2 GO_DIR=$3 WORK=$4 TAG=$5 BEFORE=$6 TRUE=$7
fail() { echo "bench-startup: $*" >&2; exit 1; }
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
# with_prev CONF RESULT FILE: CONF with prevResult and cni.dev/valid-attachments (for GC) set
with_prev() {
  python3 - "$1" "$2" "$3" "$CNI_CONTAINERID" << 'PY'
import json, sys
conf = json.load(open(sys.argv[1]))
conf["prevResult"] = json.loads(sys.argv[2])
conf["cni.dev/valid-attachments"] = [{"containerID": sys.argv[4], "ifname": "eth0"}]
json.dump(conf, open(sys.argv[3], "w"))
PY
}
# calls OUT: the number of system calls in an `strace -c` summary
calls() { awk '$NF == "total" { print $4 }' "$1"; }
# syscalls NAME BIN VERB CONF: prints "NAME VERB COUNT"; the verb must succeed
syscalls() {
  local name=$1 bin=$2 verb=$3 conf=$4
  CNI_COMMAND=$verb strace -f -c -o "$WORK/strace.out" "$bin" < "$conf" > "$WORK/out" ||
    fail "$name $verb failed: $(cat "$WORK/out")"
  echo "$name $verb $(calls "$WORK/strace.out")"
}
# rss BIN CONF: the largest peak RSS (KB) of 3 ADDs (each followed by an untimed DEL)
rss() {
  local bin=$1 conf=$2 max=0 m i
  for i in 1 2 3; do
    CNI_COMMAND=ADD /usr/bin/time -o "$WORK/time.out" -f %M "$bin" < "$conf" > "$WORK/out" ||
      fail "$bin ADD failed: $(cat "$WORK/out")"
    m=$(tail -n 1 "$WORK/time.out")
    ((m > max)) && max=$m
    CNI_COMMAND=DEL "$bin" < "$conf" > /dev/null || fail "$bin DEL failed"
  done
  echo "$max"
}
export CNI_IFNAME=eth0 CNI_PATH=$GO_DIR CNI_CONTAINERID=subench-$$
# one plugin: its namespace, then every verb in order, counting system calls
verbs() {
  local p=$1 bin=$2 dir=$3
  export CNI_NETNS=/run/netns/$TAG-$4
  [ "$p" = loopback ] && export CNI_IFNAME=lo || export CNI_IFNAME=eth0
  # warm: the bridge, the data directories exist, as on a node that runs tasks
  CNI_COMMAND=ADD "$bin" < "$WORK/$p.json" > "$WORK/out" || fail "$p ADD failed: $(cat "$WORK/out")"
  CNI_COMMAND=DEL "$bin" < "$WORK/$p.json" > "$WORK/out" || fail "$p DEL failed: $(cat "$WORK/out")"
  syscalls "$dir" "$bin" ADD "$WORK/$p.json"
  with_prev "$WORK/$p.json" "$(cat "$WORK/out")" "$WORK/$p-prev.json"
  syscalls "$dir" "$bin" CHECK "$WORK/$p-prev.json"
  syscalls "$dir" "$bin" GC "$WORK/$p-prev.json"
  syscalls "$dir" "$bin" STATUS "$WORK/$p.json"
  syscalls "$dir" "$bin" DEL "$WORK/$p-prev.json"
  syscalls "$dir" "$bin" VERSION "$WORK/$p.json"
}
ns_of() { case $1 in loopback) echo lo ;; bridge) echo br ;; *) echo "$1" ;; esac; }
{
  strace -f -c -o "$WORK/strace.out" "$TRUE"
  echo "true - $(calls "$WORK/strace.out")"
  for p in loopback ipam bridge eni; do
    verbs "$p" "$BIN_DIR/$p" "ours:$p" "$(ns_of "$p")"
    [ -z "$BEFORE" ] || verbs "$p" "$BEFORE/$p" "before:$p" "$(ns_of "$p")"
  done
} > "$WORK/syscalls"

# peak RSS of an ADD: ours, Go's doing the same job (loopback, host-local, bridge), /bin/true
{
  /usr/bin/time -o "$WORK/time.out" -f %M "$TRUE"
  echo "true $(tail -n 1 "$WORK/time.out")"
  for p in loopback ipam bridge eni; do
    export CNI_NETNS=/run/netns/$TAG-$(ns_of "$p")
    [ "$p" = loopback ] && export CNI_IFNAME=lo || export CNI_IFNAME=eth0
    echo "ours:$p $(rss "$BIN_DIR/$p" "$WORK/$p.json")"
  done
  export CNI_IFNAME=lo CNI_NETNS=/run/netns/$TAG-golo
  echo "go:loopback $(rss "$GO_DIR/loopback" "$WORK/golo.json")"
  export CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$TAG-ipam
  echo "go:ipam $(rss "$GO_DIR/host-local" "$WORK/goipam.json")"
  export CNI_NETNS=/run/netns/$TAG-gobr
  echo "go:bridge $(rss "$GO_DIR/bridge" "$WORK/gobridge.json")"
} > "$WORK/rss"

# loopback ADD against /bin/true and Go's loopback, interleaved
export CNI_COMMAND=ADD CNI_IFNAME=lo
OURS=$BIN_DIR/loopback GO=$GO_DIR/loopback
CONF=$WORK/golo.json
t_ours=() t_go=() t_true=()
# The six orders in turn: each command runs first, second and third equally often and right
# after each other one equally often (a run that follows Go's plugin, which keeps both CPUs
# busy, is slower; with one fixed rotation /bin/true always followed it). All three are started
# the same way, with a CNI_NETNS assignment and the config on stdin (bash spends tens of
# microseconds more on a command with an assignment in front).
orders=("0 1 2" "1 2 0" "2 0 1" "0 2 1" "2 1 0" "1 0 2")
for ((i = 0; i < N; i++)); do
  for k in ${orders[i % 6]}; do
    case $k in
      0) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$TAG-lo "$OURS" < "$CONF" > /dev/null || fail "ours: ADD failed"
         e=$EPOCHREALTIME; t_ours+=("$(us "$s" "$e")") ;;
      1) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$TAG-golo "$GO" < "$CONF" > /dev/null || fail "go: ADD failed"
         e=$EPOCHREALTIME; t_go+=("$(us "$s" "$e")") ;;
      2) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$TAG-lo "$TRUE" < "$CONF" > /dev/null
         e=$EPOCHREALTIME; t_true+=("$(us "$s" "$e")") ;;
    esac
  done
done
printf '%s\n' "${t_ours[@]}" > "$WORK/t.ours"
printf '%s\n' "${t_go[@]}" > "$WORK/t.go"
printf '%s\n' "${t_true[@]}" > "$WORK/t.true"
INNER

echo "bench-startup: N=$N, load average: $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)" >&2
echo "  ours: $BIN_SRC, go: $GO_SRC, floor: /bin/true (each run from a copy in $WORK/installed)" >&2
[ -z "${BEFORE:-}" ] || echo "  before: $BEFORE" >&2
ip netns exec "$HOSTNS" bash "$WORK/inner.sh" "$N" "$BIN_DIR" "$GO_DIR" "$WORK" "$TAG" "${BEFORE:-}" "$TRUE"
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# human table on stderr, FIGURE lines (benches/lib.sh) on stdout
row() { printf '%-34s %9s %9s %9s %7s %9s %s\n' "$@" >&2; }
row figure ours peer floor ratio goal status
read -r m_ours _ < <(stats "$WORK/t.ours")
read -r m_go _ < <(stats "$WORK/t.go")
read -r m_true _ < <(stats "$WORK/t.true")
ratio=$(ratio "$m_ours" "$m_true")
met=$(goal_le "$ratio" 1.00)
row "loopback ADD median (ms)" "$m_ours" "$m_go" "$m_true" "$ratio" "<=1.00" "$met"
figure startup-loopback-add "loopback ADD vs /bin/true, median of $N (ratio ours/true)" ms \
  "$m_ours" "$m_go" "$m_true" "$ratio" "<= 1.00x /bin/true" "$met"

floor_rss=$(awk '$1 == "true" { print $2 }' "$WORK/rss")
for p in loopback ipam bridge eni; do
  ours=$(awk -v k="ours:$p" '$1 == k { print $2 }' "$WORK/rss")
  peer=$(awk -v k="go:$p" '$1 == k { print $2 }' "$WORK/rss")
  r=$(ratio "$ours" "$floor_rss")
  met=$(goal_le "$ours" "$RSS_GOAL")
  row "peak RSS $p ADD (KB)" "$ours" "${peer:--}" "$floor_rss" "$r" "<=$RSS_GOAL" "$met"
  figure "rss-$p" "peak RSS of one $p ADD, max of 3 (ratio ours/true)" KB \
    "$ours" "${peer:--}" "$floor_rss" "$r" "<= $RSS_GOAL KB" "$met"
done

floor_calls=$(awk '$1 == "true" { print $3 }' "$WORK/syscalls")
for p in loopback ipam bridge eni; do
  for verb in ADD CHECK GC STATUS DEL VERSION; do
    ours=$(awk -v k="ours:$p" -v v="$verb" '$1 == k && $2 == v { print $3 }' "$WORK/syscalls")
    before=$(awk -v k="before:$p" -v v="$verb" '$1 == k && $2 == v { print $3 }' "$WORK/syscalls")
    r=$(ratio "$ours" "$floor_calls")
    row "syscalls $p $verb" "$ours" "${before:--}" "$floor_calls" "$r" - info
    figure "syscalls-$p-$verb" "system calls, $p $verb (peer: BEFORE build if given; floor /bin/true)" count \
      "$ours" "${before:--}" "$floor_calls" "$r" - -
  done
done
