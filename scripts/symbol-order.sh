#!/bin/bash
# scripts/symbol-order.sh BIN_DIR OUT_DIR — run by `cargo xtask symbol-order`.
#
# Writes OUT_DIR/<plugin>.txt for loopback, ipam, bridge and eni: the symbols of the functions
# one ADD, CHECK and DEL of that plugin run, ADD's first, one per line, as valgrind's callgrind
# names them in the unstripped binaries of BIN_DIR. `cargo xtask release` links each plugin
# with its file (`--symbol-ordering-file`), so that code is contiguous and start-up maps few
# pages of the binary (see xtask/src/release.rs).
#
# The plugins run inside namespaces of a simulated host made by the netns-fixture CLI, with a
# fake ENI for eni and host-local state in a temporary directory, like benches/startup.sh;
# `netns-fixture down` removes them on exit. Needs root, valgrind and ip(8).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
die() { echo "symbol-order: $*" >&2; exit 1; }
[ $# = 2 ] || die "usage: symbol-order.sh BIN_DIR OUT_DIR"
BIN_DIR=$1 OUT_DIR=$2
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
command -v valgrind > /dev/null || die "valgrind not found: apt-get install -y valgrind"
need_fixture || die "cannot build the netns-fixture CLI"

TAG=suorder-$$-$RANDOM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX")
cleanup() {
  "$FIXTURE" down "$TAG" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fixture_up "$TAG" --ns lo --ns ipam --ns br --ns eni \
  --eni "name=suoeni0,peer=suoenip,mac=0a:1b:2c:3d:4e:7f,gw4=10.0.9.1/24"

echo '{"cniVersion":"1.1.0","name":"suorder","type":"loopback"}' > "$WORK/loopback.json"
printf '{"cniVersion":"1.1.0","name":"suorder","type":"ipam","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.96.0.0/24"}]]}}\n' \
  "$WORK/ipam" > "$WORK/ipam.json"
printf '{"cniVersion":"1.1.0","name":"suorder","type":"bridge","bridge":"suor%s","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.97.0.0/24"}]]}}\n' \
  "$$" "$WORK/br" > "$WORK/bridge.json"
cat > "$WORK/eni.json" << 'EOF'
{"cniVersion":"1.1.0","name":"suorder","type":"eni","eniMACAddress":"0a:1b:2c:3d:4e:7f",
 "eniIPAddresses":["10.0.9.17/24"],"gatewayIPAddresses":["10.0.9.1"],"blockInstanceMetadata":false}
EOF

# The profiling script, run by a bash inside the "host" netns.
cat > "$WORK/inner.sh" << 'INNER'
set -eu
BIN_DIR=$1 WORK=$2 TAG=$3
export CNI_CONTAINERID=suorder-$$ CNI_PATH=/nonexistent
# run P VERB CONF: one verb under callgrind; its profile in $WORK/P.VERB.cg
run() {
  CNI_COMMAND=$2 valgrind -q --tool=callgrind --callgrind-out-file="$WORK/$1.$2.cg" \
    --dump-line=no --compress-strings=no --demangle=no "$BIN_DIR/$1" < "$3" > "$WORK/out" 2> "$WORK/$1.$2.log" ||
    { echo "symbol-order: $1 $2 failed: $(cat "$WORK/out")" >&2; exit 1; }
}
for p in loopback ipam bridge eni; do
  case $p in loopback) ns=lo ;; bridge) ns=br ;; *) ns=$p ;; esac
  export CNI_NETNS=/run/netns/$TAG-$ns
  [ "$p" = loopback ] && export CNI_IFNAME=lo || export CNI_IFNAME=eth0
  run "$p" ADD "$WORK/$p.json"
  python3 - "$WORK/$p.json" "$WORK/out" "$WORK/$p-prev.json" << 'PY'
import json, sys
conf = json.load(open(sys.argv[1]))
conf["prevResult"] = json.load(open(sys.argv[2]))
json.dump(conf, open(sys.argv[3], "w"))
PY
  run "$p" CHECK "$WORK/$p-prev.json"
  run "$p" DEL "$WORK/$p-prev.json"
done
INNER
ip netns exec "$HOST_NS" bash "$WORK/inner.sh" "$BIN_DIR" "$WORK" "$TAG"

mkdir -p "$OUT_DIR"
for p in loopback ipam bridge eni; do
  # every function named in the profiles (callers and callees), first appearance first;
  # addresses (code without a symbol) and valgrind's pseudo-functions left out
  cat "$WORK/$p.ADD.cg" "$WORK/$p.CHECK.cg" "$WORK/$p.DEL.cg" |
    sed -n -E 's/^c?fn=(\([0-9]+\) )?//p' |
    grep -v -E '^(0x|\(below main\))' |
    awk '!seen[$0]++' > "$OUT_DIR/$p.txt"
  echo "symbol-order: $OUT_DIR/$p.txt: $(wc -l < "$OUT_DIR/$p.txt") functions" >&2
done
