#!/bin/bash
# examples/demo/branch-eni.sh — part 2 of examples/awsvpc-task.sh: two awsvpc tasks on branch
# ENIs (ENI trunking), networked as the ECS agent networks them, checked, torn down in the agent's
# order, with the proof that nothing is left.
#
# It needs 802.1Q VLANs: awsvpc-task.sh runs it directly where the kernel has them, and inside a
# user-mode-linux guest (netns-fixtures/uml-run.sh) where it does not. It is not meant to be run
# by hand: it reads what awsvpc-task.sh prepared in $DEMO_CONF — the agent's configs rendered
# from examples/ecs-agent/ and examples/conflists/ (*.json) and their values (values.sh) — and
# needs PLUGINS (the plugins under the agent's names), FIXTURE (the netns-fixture CLI) and
# DEMO_TAG (the run's name). No python: every exec costs ~33 ms in the guest.
#
# The simulated instance (netns-fixture): a trunk ENI eth1 in <tag>-br-host whose peer in
# <tag>-br-subnet carries the VPC side of two VLANs, each with its gateway; two task namespaces.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=examples/demo/lib.sh
source "$HERE/lib.sh"
# shellcheck source=/dev/null
source "$DEMO_CONF/values.sh"
WORK=$(mktemp -d "${DEMO_SCRATCH:-${TMPDIR:-/tmp}}/branch.XXXXXX")
NAME=$DEMO_TAG-br
cleanup() {
  "$FIXTURE" down "$NAME" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

conf() { cat "$DEMO_CONF/$1"; }

vars=$("$FIXTURE" up "$NAME" --ns taska --ns taskb \
  --trunk "name=eth1,peer=vpctrunk,mac=$TRUNK_MAC,mtu=9001,vlan=$A_VLAN:$A_GW/$A_PREFIX,vlan=$B_VLAN:$B_GW/$B_PREFIX") || {
  echo "branch-eni: cannot build the simulated instance with a trunk" >&2
  exit 1
}
eval "$vars"
HOST=$HOST_NS VPC=$SUBNET_NS TA=$TASKA_NS TB=$TASKB_NS
PEER_A=vpctrunk.$A_VLAN PEER_B=vpctrunk.$B_VLAN
note "instance $HOST: trunk ENI eth1 ($TRUNK_MAC, MTU 9001) <-> VPC $VPC: $PEER_A ($A_GW), $PEER_B ($B_GW)"

# --- the agent's invocations, per task: vpc-branch-eni as eth0, ecs-bridge (+ ecs-ipam) as
# ecs-eth0; lo up as Docker does for the pause container (loopback)
sub "task A: branch ENI $A_MAC on VLAN $A_VLAN; task B: branch ENI $B_MAC on VLAN $B_VLAN"
for t in A B; do
  ns_var=T$t cid_var=${t}_CID
  ns=/run/netns/${!ns_var} cid=${!cid_var}
  step ADD vpc-branch-eni "$cid" eth0 "$ns" "$(conf "$t-eni.json")" "task $t"
  step ADD ecs-bridge "$cid" ecs-eth0 "$ns" "$(conf "$t-bridge.json")" "task $t"
  step ADD loopback "$cid" lo "$ns" "$(conf lo.json)" "task $t"
done

sub "checks"
vlan_link() { # NS VLAN MAC: eth0 in NS is an 802.1Q link with that id and MAC on the trunk
  local l
  l=$(ip -d -n "$1" link show eth0) &&
    has "$l" "eth0@if$TRUNK_INDEX:" "link-netns $HOST" "link/ether $3 " "vlan protocol 802.1Q id $2 " "mtu 9001"
}
check "task A: eth0 is an 802.1Q link, VLAN $A_VLAN on the trunk eth1 (MTU 9001), with the branch MAC $A_MAC" \
  vlan_link "$TA" "$A_VLAN" "$A_MAC"
addr_and_route() { # NS ADDR GW
  local a r
  a=$(ip -n "$1" -o addr show dev eth0 scope global) && r=$(ip -n "$1" route show default) &&
    has "$a" "inet $2 " && has "$r" "default via $3 dev eth0"
}
check "task A: eth0 has $A_ADDR/$A_PREFIX and the default route via $A_GW" addr_and_route "$TA" "$A_ADDR/$A_PREFIX" "$A_GW"
check "task A reaches its gateway $A_GW over VLAN $A_VLAN (tagged frames)" in_ns "$TA" ping -c1 -W2 "$A_GW"
learned_on() { # IP MAC DEV OTHER_DEV: the VPC side has IP at MAC on DEV, nothing on OTHER_DEV
  local n
  n=$(ip -n "$VPC" neigh show "$1") && has "$n" "dev $3 lladdr $2" && lacks "$n" "dev $4 "
}
check "the VPC side learned task A's MAC on its VLAN $A_VLAN link only" learned_on "$A_ADDR" "$A_MAC" "$PEER_A" "$PEER_B"
blackholed() { # NS: both IMDS addresses are blackholed, and a route lookup fails
  local r
  r=$(ip -n "$1" route show type blackhole; ip -n "$1" -6 route show type blackhole) &&
    has "$r" "blackhole 169.254.169.254" "blackhole fd00:ec2::254" &&
    ! ip -n "$1" route get 169.254.169.254 && ! ip -n "$1" route get fd00:ec2::254
}
check "task A: instance metadata blocked (169.254.169.254 and fd00:ec2::254 blackholed)" blackholed "$TA"
creds_path() { # NS: 169.254.170.2 goes via ecs-eth0, whose gateway answers
  local r
  r=$(ip -n "$1" route get 169.254.170.2) && has "$r" "via 169.254.172.1 dev ecs-eth0" &&
    in_ns "$1" ping -c1 -W2 169.254.172.1
}
check "task A: the credentials endpoint 169.254.170.2 is routed via ecs-eth0, whose gateway answers" creds_path "$TA"
check "task B: eth0 is VLAN $B_VLAN on the trunk with the branch MAC $B_MAC" vlan_link "$TB" "$B_VLAN" "$B_MAC"
b_reaches_gw() { addr_and_route "$TB" "$B_ADDR/$B_PREFIX" "$B_GW" && in_ns "$TB" ping -c1 -W2 "$B_GW"; }
check "task B: eth0 has $B_ADDR/$B_PREFIX, the default route via $B_GW, which answers over VLAN $B_VLAN" b_reaches_gw
check "the VPC side learned task B's MAC on its VLAN $B_VLAN link only" learned_on "$B_ADDR" "$B_MAC" "$PEER_B" "$PEER_A"
# VLAN isolation, from the VPC side: pinging through one VLAN link only (-I binds the socket to it;
# the other VLAN's subnet is then "on link"), each branch answers on its own VLAN, never on the other
answers_only_on() { # IP DEV OTHER_DEV
  in_ns "$VPC" ping -c1 -W2 -I "$2" "$1" && ! in_ns "$VPC" ping -c1 -W1 -I "$3" "$1"
}
check "VLAN isolation: task A ($A_ADDR) answers on VLAN $A_VLAN, not on VLAN $B_VLAN" answers_only_on "$A_ADDR" "$PEER_A" "$PEER_B"
check "VLAN isolation: task B ($B_ADDR) answers on VLAN $B_VLAN, not on VLAN $A_VLAN" answers_only_on "$B_ADDR" "$PEER_B" "$PEER_A"
apart() { ! in_ns "$TB" ping -c1 -W1 "$A_ADDR" && ! in_ns "$TA" ping -c1 -W1 "$B_ADDR"; }
check "task B cannot reach task A ($A_ADDR), nor A reach B ($B_ADDR)" apart

# --- teardown as the agent does it: DEL in reverse (the bridge without IPAM), then, once the task
# has stopped, the separate ecs-ipam release by the branch ENI's MAC
sub "teardown in the agent's order (task B, then task A)"
for t in B A; do
  ns_var=T$t cid_var=${t}_CID
  ns=/run/netns/${!ns_var} cid=${!cid_var}
  step DEL loopback "$cid" lo "$ns" "$(conf lo.json)" "task $t"
  step DEL ecs-bridge "$cid" ecs-eth0 "$ns" "$(conf bridge-del.json)" "task $t, \"ipam\": {}"
  step DEL vpc-branch-eni "$cid" eth0 "$ns" "$(conf "$t-eni.json")" "task $t"
  step DEL ecs-ipam "$cid" ecs-eth0 "$ns" "$(conf "$t-release.json")" "task $t: release by MAC"
done
step DEL vpc-branch-eni "$A_CID" eth0 "/run/netns/$TA" "$(conf A-eni.json)" "task A, again: still success"

sub "nothing left"
only_lo() { # NS...: each namespace holds only lo
  local ns
  for ns in "$@"; do [ "$(ip -n "$ns" -o link show | wc -l)" = 1 ] || { ip -n "$ns" -o link show; return 1; }; done
}
check "task namespaces hold only lo" only_lo "$TA" "$TB"
no_vlan() { # no 802.1Q link in the instance or a task namespace
  local ns found=
  for ns in "$HOST" "$TA" "$TB"; do found+=$(ip -n "$ns" -o link show type vlan); done
  [ -z "$found" ] || { echo "$found"; return 1; }
}
check "no 802.1Q link left in the instance or the tasks" no_vlan
only_trunk() {
  local l
  l=$(ip -n "$HOST" -o link show type veth) && has "$l" ": eth1@" && [ "$(wc -l <<< "$l")" = 1 ]
}
check "no veth left on the instance, only the trunk eth1" only_trunk
no_leases() {
  no_lease "$A_CID" "/run/netns/$TA" "$(conf A-check.json)" &&
    no_lease "$B_CID" "/run/netns/$TB" "$(conf B-check.json)"
}
check "no lease left in the ecs-ipam store (CHECK of $A_MAC and $B_MAC: none)" no_leases
if "$FIXTURE" down "$NAME" 2> "$WORK/down.txt"; then
  ok "the simulated instance is gone: $(sed 's/^netns-fixture: //' "$WORK/down.txt")"
else
  bad "netns-fixture down $NAME: $(cat "$WORK/down.txt")"
fi
check "no namespace $NAME-* left" sh -c "! ip netns list | grep '^$NAME-'"

echo
echo "branch-eni: $PASSED checks passed, $FAILED failed"
[ "$FAILED" = 0 ]
