# examples/demo/lib.sh — helpers shared by examples/awsvpc-task.sh and examples/demo/branch-eni.sh
# (sourced, not run). The caller sets WORK (a scratch directory), PLUGINS (the plugins under the
# names their callers execute) and HOST (the simulated instance's namespace, where plugins run).
# shellcheck shell=bash

PASSED=0 FAILED=0
ROW=0                    # the summary row the next check counts for
declare -A ROW_PASSED=() ROW_FAILED=()

say() { printf '\n== %s\n' "$*"; }
sub() { printf -- '-- %s\n' "$*"; }
note() { printf '  %s\n' "$*"; }
ok() {
  PASSED=$((PASSED + 1)) ROW_PASSED[$ROW]=$((${ROW_PASSED[$ROW]:-0} + 1))
  printf '  [ ok ] %s\n' "$*"
}
bad() {
  FAILED=$((FAILED + 1)) ROW_FAILED[$ROW]=$((${ROW_FAILED[$ROW]:-0} + 1))
  printf '  [FAIL] %s\n' "$*"
}
# check "description" COMMAND...: one check line; on failure the command's last output lines
check() {
  local what=$1
  shift
  if "$@" > "$WORK/check.out" 2>&1; then
    ok "$what"
  else
    bad "$what"
    tail -n 5 "$WORK/check.out" | sed 's/^/         /'
  fi
}
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
# has TEXT PATTERN...: TEXT contains every PATTERN (fixed strings)
has() {
  local text=$1 p
  shift
  for p in "$@"; do
    [[ $text == *"$p"* ]] || { printf 'no "%s" in:\n%s\n' "$p" "$text"; return 1; }
  done
}
# lacks TEXT PATTERN...: TEXT contains none of the PATTERNs
lacks() {
  local text=$1 p
  shift
  for p in "$@"; do
    [[ $text != *"$p"* ]] || { printf '"%s" found in:\n%s\n' "$p" "$text"; return 1; }
  done
}

# cni VERB PLUGIN CONTAINER_ID IFNAME NETNS CONFIG: one plugin call as the ECS agent makes it
# (libcni: a clean environment, the config on stdin), run inside the simulated instance. The
# ecs-ipam store is Amazon's BoltDB file $WORK/eni-ipam.db. Sets LAST_OUT to what it printed.
cni() {
  local verb=$1 plugin=$2 cid=$3 ifname=$4 netns=$5 conf=$6 rc=0
  printf '%s' "$conf" > "$WORK/stdin.json"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$verb" CNI_CONTAINERID="$cid" \
    CNI_NETNS="$netns" CNI_IFNAME="$ifname" CNI_PATH="$PLUGINS" IPAM_DB_PATH="$WORK/eni-ipam.db" \
    timeout 60 nsenter --net="/run/netns/$HOST" "$PLUGINS/$plugin" \
    < "$WORK/stdin.json" > "$WORK/out.json" 2> "$WORK/err.txt" || rc=$?
  LAST_OUT=$(< "$WORK/out.json")
  return "$rc"
}

# addresses JSON: the "address" values of a CNI result, space-separated
addresses() {
  local s=$1 out=() re='"address": *"([^"]+)"'
  while [[ $s =~ $re ]]; do
    out+=("${BASH_REMATCH[1]}")
    s=${s#*"${BASH_REMATCH[0]}"}
  done
  printf '%s' "${out[*]}"
}

# step VERB PLUGIN CONTAINER_ID IFNAME NETNS CONFIG [NOTE]: cni, as one check line (an ADD's line
# shows the addresses of its result; a failure shows the plugin's error)
step() {
  local what="$1 $2 $4${7:+ ($7)}"
  if cni "$1" "$2" "$3" "$4" "$5" "$6"; then
    if [ "$1" = ADD ]; then ok "$what: $(addresses "$LAST_OUT")"; else ok "$what"; fi
    if [ -n "${VERBOSE:-}" ] && [ -n "$LAST_OUT" ]; then sed 's/^/         /' <<< "$LAST_OUT"; fi
  else
    bad "$what: ${LAST_OUT:-no output} $(tail -n 3 "$WORK/err.txt")"
  fi
}

# no_lease CONTAINER_ID NETNS CONFIG: the ecs-ipam store holds no lease for the config's id (the
# ENI MAC), asked with CHECK, which answers "no lease" for an id that holds none
no_lease() {
  local rc=0
  cni CHECK ecs-ipam "$1" ecs-eth0 "$2" "$3" || rc=$?
  [ "$rc" != 0 ] && has "$LAST_OUT" 'no lease'
}
