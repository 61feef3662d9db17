#!/bin/bash
# examples/awsvpc-task.sh — network one simulated Amazon ECS "awsvpc" task, end to end.
#
# Builds the release plugins, then, entirely inside network namespaces it creates (never the
# machine's own) with the netns-fixture CLI (netns-fixtures' simulated host, `cargo xtask fixture`),
# sets up a simulated container instance:
#   <tag>-host    the instance: the plugins run here, the task ENI waits here, the ecs-bridge and
#                 the agent's credentials endpoint (169.254.170.2:80) live here
#   <tag>-subnet  the VPC subnet router at the other end of the ENI (10.0.1.1, 2001:db8:1::1)
#   <tag>-task    the task's (pause container's) namespace
# and networks the task exactly as the ECS agent does — separate invocations, the agent's JSON:
#   eni (vpc-eni dialect) as eth0: dual-stack, MTU 9001, instance metadata blocked
#   bridge (ecs-bridge dialect) + ipam (ecs-ipam dialect) as ecs-eth0: 169.254.172.0/22, route to
#   169.254.170.2
#   loopback
# then proves each property with one line per check, tears everything down with DEL in reverse
# order (and the agent's later ecs-ipam release by ENI MAC) and proves nothing is left.
# Where the kernel has 802.1Q it also runs a second task on a branch ENI (VLAN); it says when not.
#
# Usage: sudo examples/awsvpc-task.sh        (BIN=dir to use prebuilt plugins; KEEP=1 to pause;
#        FIXTURE=path of a built netns-fixture, default $BIN/netns-fixture or `cargo xtask fixture-bin`)
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ "$(id -u)" != 0 ]; then
  echo "awsvpc-task: must run as root: it creates network namespaces, veths and a bridge (all inside its own namespaces)." >&2
  exit 1
fi
# A fresh machine of this kind may lack ping: install what is missing (Debian packages, by name).
missing=()
for pair in ip:iproute2 ping:iputils-ping nsenter:util-linux python3:python3; do
  command -v "${pair%%:*}" > /dev/null || missing+=("${pair##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "awsvpc-task: installing ${missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } > /dev/null ||
    { echo "awsvpc-task: could not install ${missing[*]}" >&2; exit 1; }
fi

TAG=awsvpc$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX")
ENI_MAC=0a:1b:2c:3d:4e:5f
ENI_NAME=eth1            # the ENI's name on the instance before the task gets it
PAUSE_ID=4b6c0e6a91f3c0de4b6c0e6a91f3c0de4b6c0e6a91f3c0de4b6c0e6a91f3c0de
FAILED=0 PASSED=0

say() { printf '\n== %s\n' "$*"; }
ok() { PASSED=$((PASSED + 1)); printf '  [ ok ] %s\n' "$*"; }
bad() { FAILED=$((FAILED + 1)); printf '  [FAIL] %s\n' "$*"; }
check() { # check "description" command...
  local what=$1; shift
  if "$@" > "$WORK/check.out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/         /' "$WORK/check.out" | tail -5; fi
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# The fixture's `down` stops the processes it spawned (by PID) and deletes its namespaces.
cleanup() {
  local rc=$?
  [ -z "${FIXTURE:-}" ] || "$FIXTURE" down "$TAG" 2> /dev/null
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "awsvpc-task: interrupted, cleaning up"; exit 130' INT TERM

# --- plugins ------------------------------------------------------------------------------------
if [ -z "${BIN:-}" ]; then
  say "building the release plugins (static)"
  BIN=$(cd "$ROOT" && cargo xtask release 2> "$WORK/build.log" | tail -n 1) || {
    cat "$WORK/build.log" >&2; echo "awsvpc-task: build failed" >&2; exit 1; }
fi
for p in eni bridge ipam loopback; do
  [ -x "$BIN/$p" ] || { echo "awsvpc-task: $BIN/$p is missing" >&2; exit 1; }
done
# The agent calls the plugins by their ECS names: link them, as `install` does on request.
PLUGINS=$WORK/plugins; mkdir -p "$PLUGINS"
for pair in eni:vpc-eni branch-eni:vpc-branch-eni bridge:ecs-bridge ipam:ecs-ipam loopback:loopback; do
  src=${pair%%:*} dst=${pair##*:}
  [ -x "$BIN/$src" ] && ln -sf "$BIN/$src" "$PLUGINS/$dst"
done
echo "  plugins: $BIN (linked as $(ls "$PLUGINS" | tr '\n' ' '))"
# The simulated instance comes from netns-fixtures, through its CLI.
if [ -z "${FIXTURE:-}" ]; then
  if [ -x "$BIN/netns-fixture" ]; then
    FIXTURE=$BIN/netns-fixture
  else
    FIXTURE=$(cd "$ROOT" && cargo xtask fixture-bin 2>> "$WORK/build.log" | tail -n 1) || {
      cat "$WORK/build.log" >&2; echo "awsvpc-task: cannot build the netns-fixture CLI" >&2; exit 1; }
  fi
fi

# cni VERB PLUGIN IFNAME NETNS JSON [extra env...]: run one plugin inside the simulated host
cni() {
  local verb=$1 plugin=$2 ifname=$3 netns=$4 json=$5; shift 5
  printf '%s' "$json" > "$WORK/stdin.json"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$verb" CNI_CONTAINERID="$PAUSE_ID" \
    CNI_NETNS="$netns" CNI_IFNAME="$ifname" CNI_PATH="$PLUGINS" IPAM_DB_PATH="$WORK/eni-ipam.db" "$@" \
    nsenter --net="/run/netns/$HOST" "$PLUGINS/$plugin" < "$WORK/stdin.json" > "$WORK/out.json" 2> "$WORK/err.txt"
  local rc=$?
  LAST_OUT=$(cat "$WORK/out.json")
  return $rc
}
show() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read()), indent=2))' <<< "$1" | sed 's/^/    /'; }

# --- the simulated instance ---------------------------------------------------------------------
# The instance and VPC namespaces (lo up), the task's, and the task ENI: one end in the instance
# with the ENI's MAC and jumbo MTU, the other in the VPC with the gateway addresses.
vars=$("$FIXTURE" up "$TAG" --ns task \
  --eni "name=$ENI_NAME,peer=vpc0,mac=$ENI_MAC,mtu=9001,gw4=10.0.1.1/24,gw6=2001:db8:1::1/64") || {
  echo "awsvpc-task: cannot build the simulated instance" >&2; exit 1; }
eval "$vars"
HOST=$HOST_NS VPC=$SUBNET_NS TASK=$TASK_NS
say "simulated container instance (namespaces $HOST, $VPC, $TASK)"
# The agent's credentials endpoint, reached by tasks through the ecs-bridge.
in_ns "$HOST" ip addr add 169.254.170.2/32 dev lo
mkdir -p "$WORK/tmds/v2"
printf '{"RoleArn":"arn:aws:iam::111122223333:role/demo","AccessKeyId":"ASIADEMO","Expiration":"2026-11-22T06:00:00Z"}' > "$WORK/tmds/v2/credentials"
"$FIXTURE" spawn "$TAG" host --log "$WORK/tmds.log" -- \
  python3 -m http.server --bind 169.254.170.2 --directory "$WORK/tmds" 80 > /dev/null
echo "  ENI $ENI_NAME ($ENI_MAC, MTU 9001) <-> VPC router 10.0.1.1 / 2001:db8:1::1; credentials endpoint 169.254.170.2:80"

# --- the agent's invocations (aws-plugins.md §1) --------------------------------------------------
ENI_CONF='{"type":"vpc-eni","cniVersion":"0.3.0","name":"network-name","dns":{},"eniName":"","eniMACAddress":"'$ENI_MAC'","eniIPAddresses":["10.0.1.17/24","2001:db8:1::17/64"],"gatewayIPAddresses":["10.0.1.1"],"useExistingNetwork":false,"blockInstanceMetadata":true}'
BRIDGE_CONF='{"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","bridge":"ecs-bridge","isGateway":false,"isDefaultGateway":false,"forceAddress":false,"ipMasq":false,"mtu":0,"hairpinMode":false,"ipam":{"type":"ecs-ipam","id":"'$ENI_MAC'","ipv4-subnet":"169.254.172.0/22","ipv4-routes":[{"dst":"169.254.170.2/32"}]}}'
BRIDGE_DEL_CONF='{"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","bridge":"ecs-bridge","mtu":0,"ipam":{}}'
IPAM_DEL_CONF='{"cniVersion":"0.3.0","name":"ecs-ipam","type":"ecs-ipam","ipam":{"type":"ecs-ipam","id":"'$ENI_MAC'","ipv4-subnet":"169.254.172.0/22"}}'
LO_CONF='{"cniVersion":"0.3.0","name":"network-name","type":"loopback"}'
NS=/run/netns/$TASK

say "ADD vpc-eni as eth0"
if cni ADD vpc-eni eth0 "$NS" "$ENI_CONF"; then show "$LAST_OUT"; else bad "vpc-eni ADD: $LAST_OUT $(cat "$WORK/err.txt")"; fi
say "ADD ecs-bridge (+ ecs-ipam) as ecs-eth0"
if cni ADD ecs-bridge ecs-eth0 "$NS" "$BRIDGE_CONF"; then show "$LAST_OUT"; else bad "ecs-bridge ADD: $LAST_OUT $(cat "$WORK/err.txt")"; fi
say "ADD loopback"
if cni ADD loopback lo "$NS" "$LO_CONF"; then show "$LAST_OUT"; else bad "loopback ADD: $LAST_OUT $(cat "$WORK/err.txt")"; fi

say "task namespace"
in_ns "$TASK" ip -br link | sed 's/^/    /'
in_ns "$TASK" ip -br addr | sed 's/^/    /'
in_ns "$TASK" ip route | sed 's/^/    /'

say "checks"
check "eth0 is the ENI (MAC $ENI_MAC) with MTU 9001" \
  sh -c "ip -n $TASK -o link show eth0 | grep -q 'mtu 9001' && ip -n $TASK -o link show eth0 | grep -q $ENI_MAC"
check "task reaches its IPv4 gateway 10.0.1.1 over the ENI" in_ns "$TASK" ping -c1 -W2 10.0.1.1
check "task reaches its IPv6 gateway 2001:db8:1::1 over the ENI" in_ns "$TASK" ping -6 -c1 -W2 2001:db8:1::1
check "jumbo frames: 8,000-byte ping with DF set reaches the gateway" in_ns "$TASK" ping -M 'do' -s 8000 -c1 -W2 10.0.1.1
check "task fetches credentials from 169.254.170.2 over ecs-eth0" \
  in_ns "$TASK" python3 -c 'import urllib.request,json; r=urllib.request.urlopen("http://169.254.170.2/v2/credentials", timeout=3); assert json.load(r)["AccessKeyId"]=="ASIADEMO"'
check "route to 169.254.170.2 goes via ecs-eth0" sh -c "ip -n $TASK route get 169.254.170.2 | grep -q 'dev ecs-eth0'"
check "instance metadata 169.254.169.254 is unreachable (blackholed)" sh -c "! ip -n $TASK route get 169.254.169.254 > /dev/null 2>&1"
check "instance metadata fd00:ec2::254 is unreachable (blackholed)" sh -c "! ip -n $TASK route get fd00:ec2::254 > /dev/null 2>&1"
check "no connected route to other tasks on the bridge (169.254.172.0/22)" sh -c "! ip -n $TASK route | grep -q '^169.254.172.0/22'"
"$FIXTURE" spawn "$TAG" task -- python3 -m http.server --bind 127.0.0.1 18080 --directory "$WORK/tmds" > /dev/null
check "two processes in the task talk over localhost" \
  in_ns "$TASK" python3 -c 'import urllib.request,time
for i in range(50):
    try: urllib.request.urlopen("http://127.0.0.1:18080/v2/credentials", timeout=1); break
    except Exception: time.sleep(0.1)
else: raise SystemExit("no answer on 127.0.0.1:18080")'

# --- a second task on a branch ENI (VLAN) ----------------------------------------------------------
say "second task on a branch ENI (VLAN 102 of a trunk)"
if [ -x "$PLUGINS/vpc-branch-eni" ] && cni STATUS vpc-branch-eni "" "" '{"cniVersion":"1.1.0","name":"probe","type":"vpc-branch-eni"}'; then
  # a second task namespace, and a trunk whose peer in the VPC carries VLAN 102 with the gateway
  vars=$("$FIXTURE" add "$TAG" --ns task2 \
    --trunk "name=trunk0,peer=trunkpeer,mac=0a:00:00:00:00:aa,vlan=102:10.0.2.1/24") && eval "$vars" ||
    bad "simulated trunk with VLAN 102"
  TASK2=$TAG-task2
  BR_CONF='{"cniVersion":"0.3.0","name":"network-name","type":"vpc-branch-eni","trunkMACAddress":"0a:00:00:00:00:aa","branchVlanID":"102","branchMACAddress":"0a:00:00:00:01:02","ipAddresses":["10.0.2.17/24"],"gatewayIPAddresses":["10.0.2.1"],"blockInstanceMetadata":false,"interfaceType":"vlan"}'
  if cni ADD vpc-branch-eni eth0 "/run/netns/$TASK2" "$BR_CONF"; then show "$LAST_OUT"; else bad "vpc-branch-eni ADD: $LAST_OUT"; fi
  check "branch task reaches its gateway over VLAN 102" in_ns "$TASK2" ping -c1 -W2 10.0.2.1
  cni DEL vpc-branch-eni eth0 "/run/netns/$TASK2" "$BR_CONF" && ok "vpc-branch-eni DEL" || bad "vpc-branch-eni DEL: $LAST_OUT"
  check "branch link gone from the task" sh -c "! ip -n $TASK2 link show eth0 > /dev/null 2>&1"
  ip netns del "$TASK2"
else
  echo "  SKIPPED: this kernel has no 802.1Q VLAN support (branch-eni STATUS: ${LAST_OUT:-no plugin});"
  echo "           the VLAN tests run inside user-mode-linux instead (tests/branch_eni.rs)."
fi

[ -n "${KEEP:-}" ] && { echo; echo "KEEP set: inspect with 'ip -n $TASK ...'; press Enter to tear down"; read -r _; }

# --- teardown as the agent does it: DEL in reverse, bridge without IPAM, then ecs-ipam release ---
say "teardown: DEL in reverse order"
cni DEL loopback lo "$NS" "$LO_CONF" && ok "loopback DEL" || bad "loopback DEL: $LAST_OUT"
cni DEL ecs-bridge ecs-eth0 "$NS" "$BRIDGE_DEL_CONF" && ok "ecs-bridge DEL (ipam {} as the agent sends it)" || bad "ecs-bridge DEL: $LAST_OUT"
cni DEL vpc-eni eth0 "$NS" "$ENI_CONF" && ok "vpc-eni DEL" || bad "vpc-eni DEL: $LAST_OUT"
cni DEL ecs-ipam ecs-eth0 "$NS" "$IPAM_DEL_CONF" && ok "ecs-ipam release by ENI MAC" || bad "ecs-ipam DEL: $LAST_OUT"
cni DEL vpc-eni eth0 "$NS" "$ENI_CONF" && ok "a second vpc-eni DEL succeeds too" || bad "second vpc-eni DEL: $LAST_OUT"

say "nothing left"
check "task namespace holds only lo" sh -c "[ \"\$(ip -n $TASK -o link | wc -l)\" = 1 ]"
check "ENI is back on the instance as $ENI_NAME with MTU 9001" \
  sh -c "ip -n $HOST -o link show $ENI_NAME | grep -q 'mtu 9001' && ip -n $HOST -o link show $ENI_NAME | grep -q $ENI_MAC"
check "no veth left on the instance" sh -c "! ip -n $HOST -o link show type veth | grep -v -e '$ENI_NAME@' -e 'trunk0@'"
# the store is Amazon's BoltDB file: ask the plugin itself (CHECK answers "no lease" for the ENI MAC)
IPAM_CHECK_CONF='{"cniVersion":"1.0.0","name":"ecs-ipam","type":"ecs-ipam","ipam":{"type":"ecs-ipam","id":"'$ENI_MAC'","ipv4-subnet":"169.254.172.0/22"}}'
cni CHECK ecs-ipam ecs-eth0 "$NS" "$IPAM_CHECK_CONF"; CHECK_RC=$?
check "no lease left in the IPAM store (CHECK of $ENI_MAC in $WORK/eni-ipam.db: none)" \
  sh -c "[ $CHECK_RC != 0 ] && grep -q 'no lease' '$WORK/out.json'"
ip netns del "$TASK"
check "task namespace deleted" sh -c "! ip netns list | grep -q '^$TASK '"

echo
if [ "$FAILED" = 0 ]; then
  echo "awsvpc-task: all $PASSED checks passed"
else
  echo "awsvpc-task: $FAILED of $((PASSED + FAILED)) checks FAILED"
  exit 1
fi
