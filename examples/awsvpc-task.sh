#!/bin/bash
# examples/awsvpc-task.sh — the whole job in one command: four simulated container tasks networked
# by this suite's plugins exactly as their callers drive them, each property proved by one check
# line, then torn down in the callers' order with the proof that nothing is left.
#
#   1. awsvpc task on a task ENI (an EC2 container instance): the ECS agent's vpc-eni as eth0
#      (dual-stack, MTU 9001, instance metadata blocked), ecs-bridge + ecs-ipam as ecs-eth0 (the
#      credentials endpoint 169.254.170.2), loopback
#   2. awsvpc tasks on branch ENIs (ENI trunking): vpc-branch-eni, VLANs on a trunk ENI, two tasks
#      on two VLANs. Needs 802.1Q: where the kernel lacks it (this project's machines) this part
#      runs inside a user-mode-linux guest (netns-fixtures/uml-run.sh; examples/demo/branch-eni.sh)
#   3. IPv6-only awsvpc task: an ENI with only an IPv6 address and gateway; the credentials path
#      stays IPv4 link-local on the bridge
#   4. external instance (ECS Anywhere-style) task in bridge mode: bridge + ipam with outbound
#      NAT and Debian's portmap publishing a port, one conflist run as libcni runs it
#   5. teardown (DEL in reverse; the agent's later ecs-ipam release by ENI MAC), then the proof:
#      no namespace, link, lease, nftables/iptables rule, process or file of the run is left
# and a summary table. Exits non-zero when any check fails.
#
# The configs are the shipped examples (examples/ecs-agent/*.json, examples/conflists/*.conflist)
# with the per-task values (MACs, addresses, store paths) substituted by examples/demo/cni.py.
# Everything happens inside network namespaces the run creates with the netns-fixture CLI
# (netns-fixtures' simulated hosts), named <tag>-*, and in the guest: the machine's own interfaces,
# routes and firewall are never touched, and all traffic stays between the run's namespaces.
#
# Usage (as root): examples/awsvpc-task.sh
#   BIN=dir       prebuilt plugins (default: build them, `cargo xtask release`)
#   FIXTURE=path  the netns-fixture CLI (default: $BIN/netns-fixture, or `cargo xtask fixture-bin`)
#   KEEP=1        pause before the teardown, to look around (ip netns exec <tag>-task1 ...)
#   VERBOSE=1     print every plugin result in full
# Ctrl-C at any point cleans up and proves that nothing is left.
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
EX=$ROOT/examples
die() {
  echo "awsvpc-task: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] ||
  die "must run as root: it creates network namespaces, veths and bridges (all inside namespaces of its own)."

# --- prerequisites: Debian packages, installed when missing ---------------------------------------
# need WHAT:PACKAGE...: install the packages of the commands (or files) that are missing
need() {
  local pair what missing=()
  for pair in "$@"; do
    what=${pair%%:*}
    if [[ $what == /* ]]; then [ -x "$what" ]; else command -v "$what" > /dev/null; fi ||
      missing+=("${pair##*:}")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  echo "awsvpc-task: installing ${missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } > /dev/null
}
need ip:iproute2 ping:iputils-ping nsenter:util-linux unshare:util-linux python3:python3 \
  nft:nftables iptables:iptables /usr/lib/cni/portmap:containernetworking-plugins ||
  die "could not install what the demo needs (apt-get failed); install iproute2 iputils-ping util-linux python3 nftables iptables containernetworking-plugins"
# 802.1Q, probed in a throwaway namespace that dies with the probe
if unshare --net sh -c 'ip link add dq0 type veth peer name dq1 && ip link add link dq0 name dq0.9 type vlan id 9' > /dev/null 2>&1; then
  VLAN_HERE=1
else
  VLAN_HERE=0
  UML_KERNEL=${UML_KERNEL:-/usr/bin/linux.uml}
  need "$UML_KERNEL:user-mode-linux" /sbin/modprobe:kmod cc:gcc && [ -x "$UML_KERNEL" ] ||
    die "this kernel has no 802.1Q VLANs, so the branch-ENI part runs inside user-mode-linux, and $UML_KERNEL is missing and could not be installed with apt-get. Install user-mode-linux (and kmod, gcc), or run on a kernel with 802.1Q (module 8021q)."
fi

# --- the run: its name, scratch directory and cleanup ----------------------------------------------
TAG=awsvpc$$                 # names every namespace (<tag>-*) and fixture of the run
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX") || die "cannot create a scratch directory"
EC2=$TAG EXT=$TAG-ext        # the fixtures: the EC2 container instance, the external instance
FIXTURE=${FIXTURE:-}
SPAWNED=()                   # PIDs of the background processes the run started
INTERRUPTED=
# shellcheck source=examples/demo/lib.sh
source "$EX/demo/lib.sh"

# The traps print to the run's own stdout and stderr, kept as fds 3 and 4: a Ctrl-C is handled
# after the current command, which may be one whose output goes to a file. Long-lived children
# (the servers, the guest) do not get them.
exec 3>&1 4>&2
# fx ARGS...: the netns-fixture CLI, not interruptible (a Ctrl-C takes effect once it is done, so
# it never leaves a half-made fixture); what it spawns carries the run's marker in its environment
fx() { (trap '' INT && exec env AWSVPC_DEMO_RUN="$TAG" "$FIXTURE" "$@" 3>&- 4>&-); }
# the run's namespaces, whatever made them
our_namespaces() { ip netns list | awk -v p="$TAG-" 'index($1, p) == 1 { print $1 }'; }
# the PIDs of processes carrying the run's marker (environment) or its tag (command line)
marked_processes() {
  local f pid
  for f in /proc/[0-9]*; do
    pid=${f#/proc/}
    [ "$pid" = "$BASHPID" ] && continue
    { grep -qz "^AWSVPC_DEMO_RUN=$TAG\$" "$f/environ" || tr '\0' ' ' < "$f/cmdline" | grep -qE "$TAG([^0-9]|\$)"; } 2> /dev/null &&
      echo "$pid"
  done
}
cleanup() {
  local rc=$? ns pid
  trap '' INT TERM HUP
  trap - EXIT
  if [ -n "$FIXTURE" ]; then
    for f in "$EXT" "$EC2"; do fx down "$f" > /dev/null 2>&1; done
  fi
  # anything an interrupted step left: processes inside our namespaces, the namespaces, records
  for ns in $(our_namespaces); do
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null; done
    ip netns del "$ns" 2> /dev/null
  done
  for pid in "${SPAWNED[@]}"; do
    grep -qz "^AWSVPC_DEMO_RUN=$TAG\$" "/proc/$pid/environ" 2> /dev/null && kill -KILL "$pid"
  done
  rm -f "${NETNS_FIXTURE_STATE_DIR:-/run/netns-fixtures}/$TAG".json "${NETNS_FIXTURE_STATE_DIR:-/run/netns-fixtures}/$TAG"-*.json
  rm -rf "$WORK"
  if [ -n "$INTERRUPTED" ]; then
    local left_ns left_ps
    left_ns=$(our_namespaces | tr '\n' ' ') left_ps=$(marked_processes | tr '\n' ' ')
    if [ -z "$left_ns$left_ps" ] && [ ! -e "$WORK" ]; then
      echo "awsvpc-task: interrupted; cleaned up: no namespace $TAG-*, no process of the run, $WORK removed" >&4
    else
      echo "awsvpc-task: interrupted; LEFT after cleanup: namespaces: ${left_ns:-none}; processes: ${left_ps:-none}" >&4
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'INTERRUPTED=1; echo >&3; echo "awsvpc-task: interrupted, cleaning up" >&4; exit 130' INT TERM HUP

echo "awsvpc-task: run $TAG (namespaces $TAG-*, files in $WORK, processes marked AWSVPC_DEMO_RUN=$TAG)"

# --- plugins --------------------------------------------------------------------------------------
if [ -z "${BIN:-}" ]; then
  say "building the release plugins (static): cargo xtask release"
  BIN=$(cd "$ROOT" && cargo xtask release 2> "$WORK/build.log" | tail -n 1) || {
    cat "$WORK/build.log" >&2
    die "the build failed"
  }
fi
BIN=$(cd "$BIN" && pwd -P) || die "BIN=$BIN is not a directory"
for p in eni branch-eni bridge ipam loopback; do
  [ -x "$BIN/$p" ] || die "$BIN/$p is missing"
done
if [ -z "$FIXTURE" ]; then
  if [ -x "$BIN/netns-fixture" ]; then
    FIXTURE=$BIN/netns-fixture
  else
    FIXTURE=$(cd "$ROOT" && cargo xtask fixture-bin 2>> "$WORK/build.log" | tail -n 1) || {
      cat "$WORK/build.log" >&2
      die "cannot build the netns-fixture CLI"
    }
  fi
fi
# The callers execute the plugins by name: the ECS agent by its names (what `ECS_NAMES=1
# examples/install.sh` links), a conflist by the types it lists; portmap is Debian's.
PLUGINS=$WORK/plugins
mkdir -p "$PLUGINS"
for pair in eni:vpc-eni branch-eni:vpc-branch-eni bridge:ecs-bridge ipam:ecs-ipam bridge:bridge ipam:ipam loopback:loopback; do
  ln -s "$BIN/${pair%%:*}" "$PLUGINS/${pair##*:}"
done
ln -s /usr/lib/cni/portmap "$PLUGINS/portmap"
FIXTURE=$(cd "$(dirname "$FIXTURE")" && pwd -P)/$(basename "$FIXTURE")
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself, for a clean environment
note "plugins: $BIN, run as: $(cd "$PLUGINS" && echo *)"
T0=$EPOCHREALTIME
elapsed() { # seconds since the EPOCHREALTIME $1, one decimal
  local us=$((${EPOCHREALTIME/./} - ${1/./}))
  printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# render FILE [PATH=VALUE...]: an example config with this run's values (examples/demo/cni.py)
render() { python3 "$EX/demo/cni.py" render "$@" || die "cannot render $1"; }
cid() { # a stable 64-hex container ID (the pause container's) for a task name
  local h
  h=$(printf '%s' "$1" | sha256sum)
  printf '%s' "${h%% *}"
}
# spawn FIXTURE LABEL LOG CMD...: a background process in a namespace of the fixture, by PID
spawn() {
  local pid
  pid=$(fx spawn "$1" "$2" --log "$3" -- "${@:4}") && SPAWNED+=("$pid")
}
# http_get NS URL EXPECTED: an HTTP GET from NS answers with a body containing EXPECTED (retried for
# 5 s while the server starts)
http_get() {
  in_ns "$1" python3 - "$2" "$3" << 'EOF'
import sys, time, urllib.request
for _ in range(50):
    try:
        body = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()
        break
    except OSError as e:
        err = e
        time.sleep(0.1)
else:
    raise SystemExit(f"{sys.argv[1]}: {err}")
if sys.argv[2] not in body:
    raise SystemExit(f"{sys.argv[1]} answered {body!r}")
EOF
}
blackholed() { # NS: both IMDS addresses are blackhole routes, and a route lookup fails for both
  local r
  r=$(ip -n "$1" route show type blackhole; ip -n "$1" -6 route show type blackhole) &&
    has "$r" "blackhole 169.254.169.254" "blackhole fd00:ec2::254" &&
    ! ip -n "$1" route get 169.254.169.254 && ! ip -n "$1" route get fd00:ec2::254
}
only_lo() { # NS...: each namespace holds only lo
  local ns
  for ns in "$@"; do
    [ "$(ip -n "$ns" -o link show | wc -l)" = 1 ] || { ip -n "$ns" -o link show; return 1; }
  done
}

# The machine's own namespace, before: what of it could look like ours (compared at the end)
ours_in_root() {
  { ip -o link show; ip -o addr show; ip route show; ip -6 route show; nft list ruleset 2> /dev/null; iptables-save 2> /dev/null; } |
    grep -c -e "$TAG" -e ecs-bridge -e cni-pm0 -e 169.254.172. -e 10.89.0. -e 198.51.100. -e cni-bridge -e CNI-DN-
}
ROOT_BEFORE=$(ours_in_root)

# --- the EC2 container instance (tasks 1 and 3) --------------------------------------------------
# Two task ENIs waiting on the instance (a veth end each, with the ENI's MAC and jumbo MTU) whose
# other ends in the VPC namespace are the subnets' routers; the agent's credentials endpoint.
MAC1=0a:1b:2c:3d:4e:5f MAC3=0a:1b:2c:3d:4e:60
vars=$(fx up "$EC2" --ns task1 --ns task3 \
  --eni "name=eth1,peer=vpc1,mac=$MAC1,mtu=9001,gw4=10.0.1.1/24,gw6=2001:db8:1::1/64" \
  --eni "name=eth2,peer=vpc6,mac=$MAC3,mtu=9001,gw6=2001:db8:6::1/64") ||
  die "cannot build the simulated EC2 instance"
eval "$vars"
HOST=$HOST_NS VPC=$SUBNET_NS TASK1=$TASK1_NS TASK3=$TASK3_NS
NS1=/run/netns/$TASK1 NS3=/run/netns/$TASK3
CID1=$(cid "$TASK1") CID3=$(cid "$TASK3")
in_ns "$HOST" ip addr add 169.254.170.2/32 dev lo
mkdir -p "$WORK/tmds/v2"
printf '{"RoleArn":"arn:aws:iam::111122223333:role/demo","AccessKeyId":"ASIADEMO","Expiration":"2026-11-22T06:00:00Z"}' > "$WORK/tmds/v2/credentials"
spawn "$EC2" host "$WORK/tmds.log" python3 -m http.server --bind 169.254.170.2 --directory "$WORK/tmds" 80 ||
  die "cannot start the credentials endpoint"

# The agent's configs (aws-plugins.md §1), from examples/ecs-agent/ with this run's values
ENI1_CONF=$(render "$EX/ecs-agent/vpc-eni.json" eniMACAddress=$MAC1 'eniIPAddresses=["10.0.1.17/24","2001:db8:1::17/64"]' 'gatewayIPAddresses=["10.0.1.1"]') || exit 1
ENI3_CONF=$(render "$EX/ecs-agent/vpc-eni-ipv6-only.json" eniMACAddress=$MAC3 'eniIPAddresses=["2001:db8:6::17/64"]' 'gatewayIPAddresses=["2001:db8:6::1"]') || exit 1
BR1_CONF=$(render "$EX/ecs-agent/ecs-bridge.json" ipam.id=$MAC1) || exit 1
BR3_CONF=$(render "$EX/ecs-agent/ecs-bridge.json" ipam.id=$MAC3) || exit 1
BRDEL_CONF=$(render "$EX/ecs-agent/ecs-bridge-del.json") || exit 1
# shellcheck disable=SC2034 # REL1_CONF, REL3_CONF: used by name in the teardown
REL1_CONF=$(render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id=$MAC1) || exit 1
# shellcheck disable=SC2034
REL3_CONF=$(render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id=$MAC3) || exit 1
# the same release config at a version that has CHECK: asks the store whether a lease is left
CHK1_CONF=$(render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id=$MAC1 cniVersion=1.0.0) || exit 1
CHK3_CONF=$(render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id=$MAC3 cniVersion=1.0.0) || exit 1
# lo up: not the agent's (Docker brings up lo of the pause container), the runtime's conflist
LO_CONF=$(render "$EX/conflists/99-loopback.conflist" --plugin 0) || exit 1

# --- 1. ----------------------------------------------------------------------------------------------
ROW=1
say "1. awsvpc task on a task ENI: vpc-eni, ecs-bridge + ecs-ipam, loopback"
note "EC2 instance $HOST: task ENI eth1 ($MAC1, MTU 9001) <-> VPC router $VPC (10.0.1.1, 2001:db8:1::1);"
note "credentials endpoint 169.254.170.2:80 on the instance; task namespace $TASK1"
step ADD vpc-eni "$CID1" eth0 "$NS1" "$ENI1_CONF"
step ADD ecs-bridge "$CID1" ecs-eth0 "$NS1" "$BR1_CONF"
BRIDGE_ADDR1=$(addresses "$LAST_OUT")
step ADD loopback "$CID1" lo "$NS1" "$LO_CONF"
sub "checks"
check "eth0 is the ENI (MAC $MAC1) with MTU 9001" \
  sh -c "ip -n $TASK1 -o link show eth0 | grep 'mtu 9001' | grep -q $MAC1"
check "task reaches its IPv4 gateway 10.0.1.1 over the ENI" in_ns "$TASK1" ping -c1 -W2 10.0.1.1
check "task reaches its IPv6 gateway 2001:db8:1::1 over the ENI" in_ns "$TASK1" ping -6 -c1 -W2 2001:db8:1::1
check "jumbo frames: 8,000-byte ping with DF set reaches the gateway" in_ns "$TASK1" ping -M 'do' -s 8000 -c1 -W2 10.0.1.1
check "task fetches credentials from 169.254.170.2 over ecs-eth0" \
  http_get "$TASK1" http://169.254.170.2/v2/credentials '"AccessKeyId":"ASIADEMO"'
check "route to 169.254.170.2 goes via ecs-eth0" sh -c "ip -n $TASK1 route get 169.254.170.2 | grep -q 'dev ecs-eth0'"
blackhole() { # NS -4|-6 ADDRESS: ADDRESS is a blackhole route in NS, and unreachable
  has "$(ip -n "$1" "$2" route show type blackhole)" "blackhole $3" && ! ip -n "$1" route get "$3"
}
check "instance metadata 169.254.169.254 is unreachable (blackholed)" blackhole "$TASK1" -4 169.254.169.254
check "instance metadata fd00:ec2::254 is unreachable (blackholed)" blackhole "$TASK1" -6 fd00:ec2::254
check "no connected route to other tasks on the bridge (169.254.172.0/22)" sh -c "! ip -n $TASK1 route | grep '^169.254.172.0/22'"
spawn "$EC2" task1 "$WORK/localhost.log" python3 -m http.server --bind 127.0.0.1 18080 --directory "$WORK/tmds"
check "two processes in the task talk over localhost" \
  http_get "$TASK1" http://127.0.0.1:18080/v2/credentials ASIADEMO
sub "the task's namespace"
{ ip -n "$TASK1" -br addr; ip -n "$TASK1" route; } | sed 's/^/    /'

# --- 2. ----------------------------------------------------------------------------------------------
ROW=2
say "2. awsvpc tasks on branch ENIs (ENI trunking): vpc-branch-eni, ecs-bridge + ecs-ipam, loopback"
# The configs of both tasks, rendered here (the guest has no time for python), and their values
TRUNK_MAC=0a:9e:33:41:2b:d1
# shellcheck disable=SC2034 # used by name below
A_VLAN=102 A_MAC=0a:3c:81:47:10:6f A_ADDR=10.0.2.17 A_PREFIX=24 A_GW=10.0.2.1
# shellcheck disable=SC2034
B_VLAN=103 B_MAC=0a:3c:81:47:10:70 B_ADDR=10.0.3.17 B_PREFIX=24 B_GW=10.0.3.1
BRC=$WORK/branch
mkdir -p "$BRC"
for t in A B; do
  v=${t}_VLAN m=${t}_MAC a=${t}_ADDR p=${t}_PREFIX g=${t}_GW
  # ECS_AWSVPC_BLOCK_IMDS=true: the agent then sends blockInstanceMetadata true
  render "$EX/ecs-agent/vpc-branch-eni.json" trunkMACAddress=$TRUNK_MAC "branchVlanID=\"${!v}\"" \
    branchMACAddress="${!m}" "ipAddresses=[\"${!a}/${!p}\"]" "gatewayIPAddresses=[\"${!g}\"]" \
    blockInstanceMetadata=true > "$BRC/$t-eni.json" &&
    render "$EX/ecs-agent/ecs-bridge.json" ipam.id="${!m}" > "$BRC/$t-bridge.json" &&
    render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id="${!m}" > "$BRC/$t-release.json" &&
    render "$EX/ecs-agent/ecs-ipam-release.json" ipam.id="${!m}" cniVersion=1.0.0 > "$BRC/$t-check.json" || exit 1
done
printf '%s\n' "$BRDEL_CONF" > "$BRC/bridge-del.json"
printf '%s\n' "$LO_CONF" > "$BRC/lo.json"
for v in TRUNK_MAC A_VLAN A_MAC A_ADDR A_PREFIX A_GW B_VLAN B_MAC B_ADDR B_PREFIX B_GW; do
  printf '%s=%q\n' "$v" "${!v}"
done > "$BRC/values.sh"
printf 'A_CID=%s\nB_CID=%s\n' "$(cid "$TAG-br-taska")" "$(cid "$TAG-br-taskb")" >> "$BRC/values.sh"
T2=$EPOCHREALTIME
if [ "$VLAN_HERE" = 1 ]; then
  note "this kernel has 802.1Q: the branch tasks run here, in namespaces $TAG-br-*"
  env DEMO_TAG="$TAG" DEMO_CONF="$BRC" PLUGINS="$PLUGINS" FIXTURE="$FIXTURE" TMPDIR="$WORK" AWSVPC_DEMO_RUN="$TAG" \
    bash "$EX/demo/branch-eni.sh" 2>&1 3>&- 4>&- | tee "$WORK/branch.out"
  BRANCH_RC=${PIPESTATUS[0]}
else
  note "this kernel has no 802.1Q: this part runs inside a user-mode-linux guest (netns-fixtures/uml-run.sh); its output follows when the guest is done"
  # The guest sees the host's files read-only and these directories read-write; its own /run
  # holds its scratch files. Everything it makes dies with it.
  (cd "$ROOT" && env DEMO_TAG="$TAG" DEMO_CONF="$BRC" PLUGINS="$PLUGINS" FIXTURE="$FIXTURE" DEMO_SCRATCH=/run \
    AWSVPC_DEMO_RUN="$TAG" TMPDIR="$WORK" UML_MOUNTS="$WORK:$BIN:$(dirname "$FIXTURE")" UML_TIMEOUT=180 \
    bash netns-fixtures/uml-run.sh bash examples/demo/branch-eni.sh) > "$WORK/branch.out" 2>&1 3>&- 4>&-
  BRANCH_RC=$?
  cat "$WORK/branch.out"
fi
[ -n "$INTERRUPTED" ] && exit 130
n_ok=$(grep -c '^  \[ ok \]' "$WORK/branch.out") n_bad=$(grep -c '^  \[FAIL\]' "$WORK/branch.out")
PASSED=$((PASSED + n_ok)) FAILED=$((FAILED + n_bad)) ROW_PASSED[2]=$n_ok ROW_FAILED[2]=$n_bad
if [ "$BRANCH_RC" != 0 ] && [ "$n_bad" = 0 ]; then
  bad "the branch-ENI part did not finish (exit status $BRANCH_RC)"
fi
T2=$(elapsed "$T2")

# --- 3. ----------------------------------------------------------------------------------------------
ROW=3
say "3. IPv6-only awsvpc task: vpc-eni (IPv6 only), ecs-bridge + ecs-ipam, loopback"
note "same instance: task ENI eth2 ($MAC3) <-> VPC router 2001:db8:6::1 (no IPv4); task namespace $TASK3"
step ADD vpc-eni "$CID3" eth0 "$NS3" "$ENI3_CONF"
step ADD ecs-bridge "$CID3" ecs-eth0 "$NS3" "$BR3_CONF"
BRIDGE_ADDR3=$(addresses "$LAST_OUT")
step ADD loopback "$CID3" lo "$NS3" "$LO_CONF"
sub "checks"
v6_only() {
  local a
  a=$(ip -n "$TASK3" -o addr show dev eth0 scope global) && has "$a" "inet6 2001:db8:6::17/64" && lacks "$a" "inet " &&
    has "$(ip -n "$TASK3" -o link show eth0)" "$MAC3" "mtu 9001"
}
check "eth0 is the ENI ($MAC3, MTU 9001) with only 2001:db8:6::17/64, no IPv4 address" v6_only
v6_default() {
  has "$(ip -n "$TASK3" -6 route show default)" "default via 2001:db8:6::1 dev eth0" &&
    lacks "$(ip -n "$TASK3" -4 route show)" "default"
}
check "IPv6 default route via 2001:db8:6::1 on eth0, no IPv4 default route" v6_default
check "task reaches its IPv6 gateway 2001:db8:6::1 over the ENI" in_ns "$TASK3" ping -6 -c1 -W2 2001:db8:6::1
check "instance metadata blocked: fd00:ec2::254 and 169.254.169.254 blackholed" blackholed "$TASK3"
creds3() {
  has "$(ip -n "$TASK3" route get 169.254.170.2)" "via 169.254.172.1 dev ecs-eth0" &&
    http_get "$TASK3" http://169.254.170.2/v2/credentials '"AccessKeyId":"ASIADEMO"'
}
check "task fetches credentials from 169.254.170.2 over ecs-eth0, IPv4 link-local on the bridge" creds3
apart() {
  ! in_ns "$TASK3" ping -c1 -W1 "${BRIDGE_ADDR1%/*}" && ! in_ns "$TASK1" ping -c1 -W1 "${BRIDGE_ADDR3%/*}"
}
check "tasks 1 and 3 share ecs-bridge but cannot reach each other (${BRIDGE_ADDR1%/*}, ${BRIDGE_ADDR3%/*})" apart

# --- 4. ----------------------------------------------------------------------------------------------
ROW=4
say "4. external instance (ECS Anywhere-style) task in bridge mode: bridge + ipam, Debian's portmap"
vars=$(fx up "$EXT" --ns task4 --primary) || die "cannot build the simulated external instance"
eval "$vars"
XHOST=$HOST_NS OUTSIDE=$SUBNET_NS TASK4=$TASK4_NS NS4=/run/netns/$TASK4_NS CID4=$(cid "$TASK4_NS")
note "external instance $XHOST: uplink 198.51.100.2/24, default route via 198.51.100.1 in $OUTSIDE"
note "(the outside: another namespace of the run); task namespace $TASK4; host port 8080 -> task port 80"
mkdir -p "$WORK/www4" "$WORK/www-outside"
echo "hello from task 4" > "$WORK/www4/index.html"
echo "hello from outside" > "$WORK/www-outside/index.html"
spawn "$EXT" task4 "$WORK/task4.log" python3 -m http.server --bind 0.0.0.0 --directory "$WORK/www4" 80
spawn "$EXT" subnet "$WORK/outside.log" python3 -m http.server --bind 198.51.100.1 --directory "$WORK/www-outside" 80
# the conflist, with a store directory of the run (host-local's default is the machine's)
render "$EX/conflists/30-bridge-portmap.conflist" plugins.0.ipam.dataDir="$WORK/host-local" > "$WORK/bridge-portmap.conflist" || exit 1
PORTS='{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'
# list VERB: libcni's AddNetworkList/DelNetworkList of the conflist, in the external instance
list() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_CONTAINERID="$CID4" CNI_NETNS="$NS4" CNI_IFNAME=eth0 CNI_PATH="$PLUGINS" \
    timeout 60 nsenter --net="/run/netns/$XHOST" "$PY" "$EX/demo/cni.py" list "$1" \
    "$WORK/bridge-portmap.conflist" "$WORK/bridge-portmap.cache" "$PORTS" > "$WORK/out.json" 2> "$WORK/err.txt"
}
if list ADD; then
  ok "ADD conflist bridge-portmap (bridge + ipam, portmap) as eth0: $(addresses "$(< "$WORK/out.json")")"
else
  bad "ADD conflist bridge-portmap: $(cat "$WORK/out.json" "$WORK/err.txt")"
fi
ADDR4=$(addresses "$(< "$WORK/out.json")") ADDR4=${ADDR4%/*}
sub "checks"
task4_net() {
  has "$(ip -n "$TASK4" -o addr show dev eth0 scope global)" "inet $ADDR4/24" &&
    has "$(ip -n "$TASK4" route show default)" "default via 10.89.0.1 dev eth0" &&
    has "$(ip -n "$XHOST" -o addr show dev cni-pm0)" "inet 10.89.0.1/24"
}
check "task has $ADDR4/24, default route via 10.89.0.1 on the instance's bridge cni-pm0" task4_net
check "the outside has no route to the task's subnet: replies can only come back through NAT" \
  sh -c "! ip -n $OUTSIDE route get $ADDR4"
nat_out() {
  http_get "$TASK4" http://198.51.100.1/ "hello from outside" &&
    has "$(cat "$WORK/outside.log")" "198.51.100.2 - - " && lacks "$(cat "$WORK/outside.log")" "$ADDR4"
}
check "task reaches 198.51.100.1 outside the instance through NAT (the outside saw 198.51.100.2)" nat_out
check "a client outside reaches the task through the host port 198.51.100.2:8080" \
  http_get "$OUTSIDE" http://198.51.100.2:8080/ "hello from task 4"
check "outbound NAT: our bridge's nftables masquerade rule for the task (tagged with its container ID)" \
  sh -c "ip netns exec $XHOST nft list ruleset | grep 'ip saddr $ADDR4 ' | grep masquerade | grep -q 'id=$CID4 if=eth0'"
check "published port: portmap's iptables DNAT 8080 -> $ADDR4:80 on the instance" \
  sh -c "ip netns exec $XHOST iptables-save -t nat | grep -q -- '--dport 8080 -j DNAT --to-destination $ADDR4:80'"

# --- 5. ----------------------------------------------------------------------------------------------
if [ -n "${KEEP:-}" ]; then
  echo
  echo "KEEP=1: everything is up. Look around as root from another terminal, e.g.:"
  echo "  ip netns exec $TASK1 ip addr; ip netns exec $TASK3 ip -6 route; ip -n $HOST link"
  echo "  ip netns exec $OUTSIDE python3 -c 'import urllib.request as u; print(u.urlopen(\"http://198.51.100.2:8080/\").read())'"
  echo "  ip netns exec $XHOST nft list ruleset; ip netns exec $XHOST iptables-save -t nat"
  echo "(the branch-ENI tasks of part 2 lived their whole life at once, in the guest if there was one)."
  echo "Press Enter to tear down (Ctrl-C too)."
  read -r _
fi
ROW=5
say "5. teardown in each caller's order, then nothing left"
sub "task 4: libcni's DEL of the conflist (portmap, then bridge), with the cached result and the port mapping"
if list DEL; then ok "DEL conflist bridge-portmap (portmap, bridge + ipam)"; else bad "DEL conflist bridge-portmap: $(cat "$WORK/out.json" "$WORK/err.txt")"; fi
if list DEL; then ok "a second DEL of the conflist succeeds too"; else bad "second DEL of the conflist: $(cat "$WORK/out.json" "$WORK/err.txt")"; fi
sub "tasks 3 and 1: the agent's DEL in reverse (ecs-bridge with \"ipam\": {}), then its ecs-ipam release by ENI MAC"
for t in 3 1; do
  cid_var=CID$t ns_var=NS$t rel_var=REL${t}_CONF eni_var=ENI${t}_CONF
  step DEL loopback "${!cid_var}" lo "${!ns_var}" "$LO_CONF" "task $t"
  step DEL ecs-bridge "${!cid_var}" ecs-eth0 "${!ns_var}" "$BRDEL_CONF" "task $t, \"ipam\": {}"
  step DEL vpc-eni "${!cid_var}" eth0 "${!ns_var}" "${!eni_var}" "task $t"
  step DEL ecs-ipam "${!cid_var}" ecs-eth0 "${!ns_var}" "${!rel_var}" "task $t: release by ENI MAC"
done
step DEL vpc-eni "$CID1" eth0 "$NS1" "$ENI1_CONF" "task 1, again: still success"

sub "nothing left in the namespaces"
check "task namespaces hold only lo" only_lo "$TASK1" "$TASK3" "$TASK4"
enis_back() {
  has "$(ip -n "$HOST" -o link show eth1)" "$MAC1" "mtu 9001" && has "$(ip -n "$HOST" -o link show eth2)" "$MAC3" "mtu 9001"
}
check "the ENIs are back on the instance: eth1 ($MAC1) and eth2 ($MAC3), MTU 9001" enis_back
no_veth() {
  local l
  l=$(ip -n "$HOST" -o link show type veth | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | sort | tr '\n' ' ') &&
    [ "$l" = "eth1 eth2 " ] || { echo "EC2 instance: $l"; return 1; }
  l=$(ip -n "$XHOST" -o link show type veth | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | grep -c -v '^prim')
  [ "$l" = 0 ] || { ip -n "$XHOST" -o link show type veth; return 1; }
}
check "no veth left on the instances (only the ENIs and the uplink)" no_veth
no_ecs_leases() { no_lease "$CID1" "$NS1" "$CHK1_CONF" && no_lease "$CID3" "$NS3" "$CHK3_CONF"; }
check "no lease left in the ecs-ipam store, Amazon's BoltDB file (CHECK of $MAC1 and $MAC3: none)" no_ecs_leases
no_hl_leases() {
  local f left=
  for f in "$WORK/host-local/bridge-portmap"/*; do
    [[ ${f##*/} =~ ^[0-9] ]] && left+=" ${f##*/}"
  done
  [ -z "$left" ] || { echo "leases:$left"; return 1; }
}
check "no lease left in the host-local store of bridge-portmap" no_hl_leases
no_rules() {
  lacks "$(ip netns exec "$HOST" nft list ruleset 2> /dev/null)" cni-bridge &&
    lacks "$(ip netns exec "$XHOST" nft list ruleset 2> /dev/null)" "$CID4" "$ADDR4" &&
    lacks "$(ip netns exec "$XHOST" iptables-save 2> /dev/null)" CNI-DN- "$CID4" "$ADDR4"
}
check "no nftables or iptables rule of the tasks left (masquerade, portmap's DNAT chain)" no_rules

sub "namespaces, processes, files"
for f in "$EXT" "$EC2"; do
  if fx down "$f" 2> "$WORK/down.txt"; then
    ok "fixture $f down: $(sed 's/^netns-fixture: [^ ]* down (//; s/)$//' "$WORK/down.txt")"
  else
    bad "netns-fixture down $f: $(cat "$WORK/down.txt")"
  fi
done
check "no namespace $TAG-* left" sh -c "! ip netns list | grep '^$TAG-'"
spawned_gone() {
  local pid
  for pid in "${SPAWNED[@]}"; do
    ! grep -qz "^AWSVPC_DEMO_RUN=$TAG\$" "/proc/$pid/environ" 2> /dev/null || { echo "PID $pid runs"; return 1; }
  done
}
check "the ${#SPAWNED[@]} processes the run started are gone (PIDs ${SPAWNED[*]})" spawned_gone
no_marked() {
  local left
  left=$(marked_processes)
  [ -z "$left" ] || { ps -o pid,args -p "$(echo $left | tr ' ' ,)"; return 1; }
}
check "no process carries the run's marker or tag (the user-mode-linux guest included)" no_marked
check "no fixture record left" sh -c "! ls ${NETNS_FIXTURE_STATE_DIR:-/run/netns-fixtures}/$TAG.json ${NETNS_FIXTURE_STATE_DIR:-/run/netns-fixtures}/$TAG-*.json"
root_untouched() { local now; now=$(ours_in_root); [ "$now" = "$ROOT_BEFORE" ] || { echo "$ROOT_BEFORE lines before, $now now"; return 1; }; }
check "the machine's own namespace holds no link, address, route or rule of the run (as before it)" root_untouched

# --- summary -------------------------------------------------------------------------------------------
TOTAL=$(elapsed "$T0")
WHERE="here" GUEST="the branch-ENI part"
[ "$VLAN_HERE" = 1 ] || WHERE="in the UML guest" GUEST="the user-mode-linux guest"
say "summary"
row() { printf '  %-44s %-58s %s\n' "$@"; }
counts() { echo "${ROW_PASSED[$1]:-0}/$((${ROW_PASSED[$1]:-0} + ${ROW_FAILED[$1]:-0}))"; }
row "task" "plugin chain" "checks passed"
row "1 awsvpc, task ENI (dual-stack)" "vpc-eni, ecs-bridge + ecs-ipam, loopback" "$(counts 1)"
row "2 awsvpc, 2 branch ENIs ($WHERE)" "vpc-branch-eni, ecs-bridge + ecs-ipam, loopback; teardown" "$(counts 2)"
row "3 awsvpc, IPv6-only task ENI" "vpc-eni, ecs-bridge + ecs-ipam, loopback" "$(counts 3)"
row "4 external instance, bridge mode" "conflist: bridge + ipam, portmap (Debian)" "$(counts 4)"
row "5 teardown 1, 3, 4; nothing left" "DEL in reverse; ecs-ipam release by ENI MAC" "$(counts 5)"
echo
echo "awsvpc-task: ${TOTAL} s after the build ($GUEST: ${T2} s)"
if [ "$FAILED" = 0 ]; then
  echo "awsvpc-task: all $PASSED checks passed"
else
  echo "awsvpc-task: $FAILED of $((PASSED + FAILED)) checks FAILED"
  exit 1
fi
