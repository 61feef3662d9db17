#!/bin/bash
# netns-fixtures/test-matrix.sh [BIN_DIR]
#
# The test matrix, measured: runs every built plugin binary of BIN_DIR (default:
# $CARGO_TARGET_DIR/debug, else target/debug) through every verb in every spec version it
# advertises, in scratch network namespaces of its own, checks each answer and the kernel or
# store state it must leave, and prints one table:
#
#   rows: plugin x verb (ADD CHECK STATUS GC VERSION DEL), columns: spec versions
#   ok    the verb ran and did what it must (exit 0, the answer in that version, the state)
#   n/a   the verb does not exist in that version and was refused with code 1, as it must be
#   FAIL  anything else (the reason is printed under the table)
#
# Plugins: loopback, ipam (host-local dialect), bridge (+ in-process ipam) and eni (a fake ENI:
# a veth with the ENI's MAC in the plugin's namespace), each when its binary is present.
# branch-eni needs 802.1Q, which this kernel lacks: its matrix runs in tests/branch_eni*.rs.
# Every plugin runs inside a scratch "host" namespace (nsenter), never in the machine's own;
# everything is removed on exit, also on failure. Needs root, ip(8) and nsenter(1).
# Exit status: 0 when every cell is ok or n/a, 1 otherwise.
set -uo pipefail
exec < /dev/null

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}
VERSIONS=(0.3.0 0.3.1 0.4.0 1.0.0 1.1.0)
VERBS=(ADD CHECK STATUS GC VERSION DEL)

[ "$(id -u)" = 0 ] || { echo "test-matrix: must run as root (network namespaces)" >&2; exit 2; }
[ -d "$BIN" ] || { echo "test-matrix: no binary directory $BIN (build first)" >&2; exit 2; }

TAG="tm-$$-$RANDOM"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/test-matrix.XXXXXX")
NSS=()
cleanup() {
  local n
  for n in "${NSS[@]}"; do ip netns del "$n" 2> /dev/null; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

newns() { # newns NAME: a namespace with lo up
  ip netns add "$1" || return 1
  NSS+=("$1")
  ip -n "$1" link set lo up
}
delns() {
  ip netns del "$1" 2> /dev/null
  local keep=() n
  for n in "${NSS[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
  NSS=("${keep[@]}")
}

HOST="$TAG-h"
SUB="$TAG-s"
newns "$HOST" || exit 1
newns "$SUB" || exit 1

declare -A CELL
FAILS=()
PASS=0
FAILN=0
cell() { # cell PLUGIN VERB VERSION RESULT [REASON]
  CELL["$1/$2/$3"]=$4
  if [ "$4" = FAIL ]; then
    FAILN=$((FAILN + 1))
    FAILS+=("$1 $2 $3: ${5:-}")
  else
    PASS=$((PASS + 1))
  fi
}

OUT=""
RC=0
# run PLUGIN VERB CID NETNS CONF: runs the plugin in the host namespace; sets OUT and RC
run() {
  local plugin=$1 verb=$2 cid=$3 netns=$4 conf=$5
  OUT=$(printf '%s' "$conf" | env -i PATH="$PATH" CNI_COMMAND="$verb" CNI_CONTAINERID="$cid" \
    CNI_NETNS="$netns" CNI_IFNAME=eth0 CNI_PATH="$BIN" \
    timeout 30 nsenter --net="/run/netns/$HOST" "$BIN/$plugin" 2> "$SCRATCH/stderr")
  RC=$?
}

with_prev() { # with_prev CONF RESULT: CONF with "prevResult": RESULT
  printf '%s,"prevResult":%s}' "${1%\}}" "$2"
}

has() { grep -qF -- "$2" <<< "$1"; }
refused_v1() { [ "$RC" = 1 ] && has "$OUT" '"code":1,'; }

# --- per-plugin configuration, state checks and setup ---------------------------------------
DATA="$SCRATCH/ipam"
MAC=0a:1b:2c:3d:4e:5f
ENI="eni$$"
ENI=${ENI:0:15}
BR="brtm$$"
BR=${BR:0:15}

config() { # config PLUGIN VERSION
  case $1 in
    loopback) printf '{"cniVersion":"%s","name":"tm","type":"loopback"}' "$2" ;;
    ipam) printf '{"cniVersion":"%s","name":"tm","type":"ipam","ipam":{"type":"ipam","dataDir":"%s","ranges":[[{"subnet":"10.95.0.0/24"}]]}}' "$2" "$DATA" ;;
    bridge) printf '{"cniVersion":"%s","name":"tmbr","type":"bridge","bridge":"%s","ipam":{"type":"ipam","dataDir":"%s","ranges":[[{"subnet":"10.96.0.0/24"}]]}}' "$2" "$BR" "$DATA" ;;
    eni) printf '{"cniVersion":"%s","name":"tmeni","type":"eni","eniMACAddress":"%s","eniIPAddresses":["10.0.1.5/24"],"gatewayIPAddresses":["10.0.1.1"]}' "$2" "$MAC" ;;
  esac
}

# state_after PLUGIN VERB CTRNS CID: 0 when the kernel/store state is what VERB must leave
state_after() {
  local p=$1 verb=$2 ns=$3 cid=$4 lease
  case $p in
    loopback)
      if [ "$verb" = DEL ]; then
        ! ip -n "$ns" -o link show dev lo | grep -q '[<,]UP[,>]'
      else
        ip -n "$ns" -o link show dev lo | grep -q '[<,]UP[,>]'
      fi
      ;;
    ipam)
      lease=""
      for f in "$DATA/tm/"10.95.0.*; do
        [ -f "$f" ] && [ "$(cat "$f")" = "$cid"$'\r\n'"eth0" ] && lease=$f
      done
      if [ "$verb" = DEL ]; then [ -z "$lease" ]; else [ -n "$lease" ]; fi
      ;;
    bridge)
      if [ "$verb" = DEL ]; then
        ! ip -n "$ns" link show dev eth0 > /dev/null 2>&1
      else
        ip -n "$ns" -o -4 addr show dev eth0 | grep -q ' 10\.96\.0\.'
      fi
      ;;
    eni)
      if [ "$verb" = DEL ]; then
        ! ip -n "$ns" link show dev eth0 > /dev/null 2>&1 &&
          ip -n "$HOST" -o link show | grep -qi "$MAC"
      else
        ip -n "$ns" -o link show dev eth0 | grep -qi "$MAC" &&
          ip -n "$ns" -o -4 addr show dev eth0 | grep -q ' 10\.0\.1\.5/24'
      fi
      ;;
  esac
}

setup() { # setup PLUGIN: what the plugin needs in the host namespace
  case $1 in
    eni)
      ip -n "$HOST" link add "$ENI" address "$MAC" type veth peer name "s$ENI" netns "$SUB" &&
        ip -n "$SUB" addr add 10.0.1.1/24 dev "s$ENI" &&
        ip -n "$SUB" link set "s$ENI" up && ip -n "$HOST" link set "$ENI" up
      ;;
    *) true ;;
  esac
}

PLUGINS=()
for p in loopback ipam bridge eni; do
  [ -x "$BIN/$p" ] && PLUGINS+=("$p")
done
[ ${#PLUGINS[@]} -gt 0 ] || { echo "test-matrix: no plugin binaries in $BIN" >&2; exit 2; }

for p in "${PLUGINS[@]}"; do
  if ! setup "$p"; then
    for v in "${VERSIONS[@]}"; do for verb in "${VERBS[@]}"; do cell "$p" "$verb" "$v" FAIL "setup failed"; done; done
    continue
  fi
  for v in "${VERSIONS[@]}"; do
    ctr="$TAG-c"
    newns "$ctr" || { cell "$p" ADD "$v" FAIL "cannot create a namespace"; continue; }
    netns="/run/netns/$ctr"
    cid="tm-$p-${v//./}"
    conf=$(config "$p" "$v")

    run "$p" ADD "$cid" "$netns" "$conf"
    result=$OUT
    if [ "$RC" = 0 ] && has "$OUT" "\"cniVersion\":\"$v\"" && state_after "$p" ADD "$ctr" "$cid"; then
      cell "$p" ADD "$v" ok
    else
      cell "$p" ADD "$v" FAIL "exit $RC: $OUT $(head -c 300 "$SCRATCH/stderr")"
    fi
    [ -n "$result" ] || result='{}'
    prev=$(with_prev "$conf" "$result")

    run "$p" CHECK "$cid" "$netns" "$prev"
    case $v in
      0.3.*) if refused_v1; then cell "$p" CHECK "$v" n/a; else cell "$p" CHECK "$v" FAIL "exit $RC: $OUT"; fi ;;
      *) if [ "$RC" = 0 ] && [ -z "$OUT" ]; then cell "$p" CHECK "$v" ok; else cell "$p" CHECK "$v" FAIL "exit $RC: $OUT"; fi ;;
    esac

    run "$p" STATUS "" "" "$conf"
    if [ "$v" = 1.1.0 ]; then
      if [ "$RC" = 0 ] && [ -z "$OUT" ]; then cell "$p" STATUS "$v" ok; else cell "$p" STATUS "$v" FAIL "exit $RC: $OUT"; fi
    elif refused_v1; then cell "$p" STATUS "$v" n/a; else cell "$p" STATUS "$v" FAIL "exit $RC: $OUT"; fi

    # GC with this attachment valid: it must survive
    gc=$(printf '%s,"cni.dev/valid-attachments":[{"containerID":"%s","ifname":"eth0"}]}' "${conf%\}}" "$cid")
    run "$p" GC "" "" "$gc"
    if [ "$v" = 1.1.0 ]; then
      if [ "$RC" = 0 ] && [ -z "$OUT" ] && state_after "$p" GC "$ctr" "$cid"; then
        cell "$p" GC "$v" ok
      else
        cell "$p" GC "$v" FAIL "exit $RC: $OUT"
      fi
    elif refused_v1; then cell "$p" GC "$v" n/a; else cell "$p" GC "$v" FAIL "exit $RC: $OUT"; fi

    run "$p" VERSION "" "" "{\"cniVersion\":\"$v\"}"
    if [ "$RC" = 0 ] && has "$OUT" "\"$v\""; then cell "$p" VERSION "$v" ok; else cell "$p" VERSION "$v" FAIL "exit $RC: $OUT"; fi

    run "$p" DEL "$cid" "$netns" "$prev"
    if [ "$RC" = 0 ] && [ -z "$OUT" ] && state_after "$p" DEL "$ctr" "$cid"; then
      cell "$p" DEL "$v" ok
    else
      cell "$p" DEL "$v" FAIL "exit $RC: $OUT $(head -c 300 "$SCRATCH/stderr")"
    fi
    delns "$ctr"
  done
done

# --- the table ----------------------------------------------------------------------------
printf '\ntest matrix: verbs x versions x plugins (%s)\n' "$BIN"
printf '%-10s %-8s' plugin verb
for v in "${VERSIONS[@]}"; do printf ' %-6s' "$v"; done
printf '\n'
for p in "${PLUGINS[@]}"; do
  for verb in "${VERBS[@]}"; do
    printf '%-10s %-8s' "$p" "$verb"
    for v in "${VERSIONS[@]}"; do printf ' %-6s' "${CELL[$p/$verb/$v]:-FAIL}"; done
    printf '\n'
  done
done
for f in "${FAILS[@]}"; do printf '  FAIL %s\n' "$f"; done
printf 'test-matrix: %d cells ok or n/a, %d FAIL (%d plugins x %d verbs x %d versions)\n' \
  "$PASS" "$FAILN" "${#PLUGINS[@]}" "${#VERBS[@]}" "${#VERSIONS[@]}"
[ "$FAILN" = 0 ]
