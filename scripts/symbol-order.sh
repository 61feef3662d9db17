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
command -v nm > /dev/null || die "nm not found: apt-get install -y binutils"
need_fixture || die "cannot build the netns-fixture CLI"

bench_workspace suorder || die "cannot create a work directory"
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
# run P VERB[.LABEL] CONF: one verb under callgrind; its profile in $WORK/P.VERB[.LABEL].cg
run() {
  CNI_COMMAND=${2%%.*} valgrind -q --tool=callgrind --callgrind-out-file="$WORK/$1.$2.cg" \
    --dump-line=no --compress-strings=no --demangle=no "$BIN_DIR/$1" < "$3" > "$WORK/out" 2> "$WORK/$1.$2.log" ||
    { echo "symbol-order: $1 $2 failed: $(cat "$WORK/out")" >&2; exit 1; }
}
for p in loopback ipam bridge eni; do
  case $p in loopback) ns=lo ;; bridge) ns=br ;; *) ns=$p ;; esac
  export CNI_NETNS=/run/netns/$TAG-$ns
  [ "$p" = loopback ] && export CNI_IFNAME=lo || export CNI_IFNAME=eth0
  # the first ADD and DEL make the bridge and the data directory; the second ADD is the
  # common case (a node that runs tasks), and the one startup.sh measures
  run "$p" ADD.cold "$WORK/$p.json"
  run "$p" DEL.cold "$WORK/$p.json"
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

# expand_names NAMES NM: the names of NAMES (first appearance first) with what valgrind cannot
# show added:
#  - the start-up code that runs before callgrind starts counting (`_start`, libc's start);
#  - every CPU variant of a glibc string function the profile names (`memcpy` is
#    `__memmove_avx512_unaligned_erms` on one CPU, `__memmove_avx_unaligned_erms` on another,
#    and valgrind's emulated CPU picks yet another): all variants of the families, the ones of
#    newer CPUs first, together after the start-up code, so that whichever a CPU picks is in
#    the same few pages instead of one 64 KiB fault-around window each across glibc.
expand_names() {
  python3 - "$1" "$2" << 'PY'
import re, sys
names = [l.strip() for l in open(sys.argv[1]) if l.strip()]
defined = [l.strip() for l in open(sys.argv[2]) if l.strip()]
have = set(defined)
START = ["_start", "__libc_start_main_impl", "__libc_start_call_main", "frame_dummy",
         "__libc_csu_init", "_init", "_fini"]
VARIANT = re.compile(r"^__([a-z0-9]+?(?:_l)?)_(?:sse|ssse|avx|evex|erms)")
RANK = ("evex", "avx512", "avx2", "avx", "sse4", "ssse3", "sse2")
def rank(sym):
    return next((i for i, k in enumerate(RANK) if "_" + k in sym), len(RANK))
families = set()
for n in names:
    m = VARIANT.match(n)
    families.add(m.group(1) if m else n)
if "memcpy" in families:  # memcpy is an alias of memmove in glibc
    families.add("memmove")
variants = sorted((d for d in defined if (m := VARIANT.match(d)) and m.group(1) in families),
                  key=lambda d: (rank(d), d))
seen = set()
for n in [s for s in START if s in have] + variants + names:
    if n not in seen:
        seen.add(n)
        print(n)
PY
}

mkdir -p "$OUT_DIR"
for p in loopback ipam bridge eni; do
  # every function named in the profiles (callers and callees), first appearance first: the
  # warm ADD's, then the cold ADD's, CHECK's and DEL's; addresses (code without a symbol) and
  # valgrind's pseudo-functions left out
  for v in ADD ADD.cold CHECK DEL DEL.cold; do cat "$WORK/$p.$v.cg"; done |
    sed -n -E 's/^c?fn=(\([0-9]+\) )?//p' |
    grep -v -E '^(0x|\(below main\))' > "$WORK/$p.names"
  nm "$BIN_DIR/$p" | awk 'NF == 3 && $2 ~ /^[tTwW]$/ { print $3 }' > "$WORK/$p.nm"
  expand_names "$WORK/$p.names" "$WORK/$p.nm" > "$OUT_DIR/$p.txt"
  echo "symbol-order: $OUT_DIR/$p.txt: $(wc -l < "$OUT_DIR/$p.txt") functions" >&2
done
