#!/bin/bash
# benches/loopback.sh [N]
#
# One benchmark run of the loopback plugin ADD: ours (the static release binary from
# `cargo xtask release`) against Debian's Go reference plugin (/usr/lib/cni/loopback) and
# `/bin/true` as the exec floor, N iterations (default 300), interleaved in one loop (the six orders
# in turn, all three started the same way), timed with bash's $EPOCHREALTIME (no extra forks). Prints median, p95, mean and min in
# ms and the ratios of the medians: ours/true, go/true, go/ours.
#
# All three run from copies installed into the work directory (bench_install in lib.sh), so that
# they sit in the page cache the same way.
#
# Everything runs inside namespaces of a simulated host made by the netns-fixture CLI (netns-fixtures,
# `cargo xtask fixture`): the plugins are started in its "host" netns and configure `lo` of one container
# netns each (loopback ADD is idempotent, so the same container netns is re-used). Nothing touches the
# machine's own namespaces; `netns-fixture down` removes them on exit (trap), also on failure or Ctrl-C.
#
# Environment:
#   OURS   path of our loopback binary (default: build it with `cargo xtask release loopback`)
#   GO     path of the reference binary (default /usr/lib/cni/loopback)
#   N      iterations, if not given as $1
# Benchmark the mechanics alone (before bin/loopback works): OURS=/usr/lib/cni/loopback benches/loopback.sh
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME uses the locale's decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-300}}
GO=${GO:-/usr/lib/cni/loopback}

die() { echo "bench-loopback: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
command -v ip > /dev/null || die "ip (iproute2) not found"
[ -x "$GO" ] || die "$GO not found: apt-get install -y containernetworking-plugins"
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir loopback)/loopback
fi
[ -x "$OURS" ] || die "our loopback binary $OURS is missing"
[ -x /bin/true ] || die "/bin/true is missing"
need_fixture || die "cannot build the netns-fixture CLI"

bench_workspace lobench || die "cannot create a work directory"
OURS_SRC=$OURS GO_SRC=$GO
bench_install "$WORK/installed/ours" "$OURS" && bench_install "$WORK/installed/go" "$GO" &&
  bench_install "$WORK/installed/floor" /bin/true || die "cannot install the binaries to measure"
OURS=$WORK/installed/ours/$(basename "$OURS") GO=$WORK/installed/go/$(basename "$GO")
TRUE=$WORK/installed/floor/true

fixture_up "$TAG" --ns ours --ns go
HOSTNS=$HOST_NS
CTR_OURS=$OURS_NS
CTR_GO=$GO_NS
echo '{"cniVersion":"1.0.0","name":"lobench","type":"loopback"}' > "$WORK/lo.json"

# The loop, run by a bash inside the "host" netns.
cat > "$WORK/loop.sh" << 'LOOP'
set -u
N=$1 OURS=$2 GO=$3 CONF=$4 CTR_OURS=$5 CTR_GO=$6 OUT=$7 TRUE=$8
export CNI_COMMAND=ADD CNI_IFNAME=lo CNI_PATH=/usr/lib/cni CNI_CONTAINERID=lobench-$$
us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
# Sanity: each plugin really brings lo up and prints a result, before anything is timed.
for which in ours go; do
  if [ $which = ours ]; then bin=$OURS ns=$CTR_OURS; else bin=$GO ns=$CTR_GO; fi
  res=$(CNI_NETNS=/run/netns/$ns "$bin" < "$CONF") || { echo "$which: ADD failed: $res" >&2; exit 1; }
  case $res in *127.0.0.1*) ;; *) echo "$which ($bin): ADD printed no result with 127.0.0.1: '$res'" >&2; exit 1 ;; esac
  ip -n "$ns" -o link show lo | grep -q '[<,]UP[,>]' || { echo "$which: lo is not UP in $ns after ADD" >&2; exit 1; }
done
t_ours=() t_go=() t_true=()
# the six orders in turn, all three started the same way (see benches/startup.sh)
orders=("0 1 2" "1 2 0" "2 0 1" "0 2 1" "2 1 0" "1 0 2")
for ((i = 0; i < N; i++)); do
  for k in ${orders[i % 6]}; do
    case $k in
      0) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$CTR_OURS "$OURS" < "$CONF" > /dev/null || { echo "ours: ADD failed" >&2; exit 1; }
         e=$EPOCHREALTIME; t_ours+=("$(us "$s" "$e")") ;;
      1) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$CTR_GO "$GO" < "$CONF" > /dev/null || { echo "go: ADD failed" >&2; exit 1; }
         e=$EPOCHREALTIME; t_go+=("$(us "$s" "$e")") ;;
      2) s=$EPOCHREALTIME; CNI_NETNS=/run/netns/$CTR_OURS "$TRUE" < "$CONF" > /dev/null
         e=$EPOCHREALTIME; t_true+=("$(us "$s" "$e")") ;;
    esac
  done
done
printf '%s\n' "${t_ours[@]}" > "$OUT/ours"
printf '%s\n' "${t_go[@]}" > "$OUT/go"
printf '%s\n' "${t_true[@]}" > "$OUT/true"
LOOP

echo "bench-loopback: N=$N, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  ours: $OURS_SRC ($(stat -c %s "$OURS") bytes)"
echo "  go:   $GO_SRC ($(stat -c %s "$GO") bytes)"
echo "  floor: /bin/true (each run from a copy in $WORK/installed)"
[ "$(readlink -f "$OURS_SRC")" != "$(readlink -f "$GO_SRC")" ] ||
  echo "  NOTE: ours and go are the same binary (mechanics check only)"
start=$EPOCHREALTIME
ip netns exec "$HOSTNS" bash "$WORK/loop.sh" "$N" "$OURS" "$GO" "$WORK/lo.json" "$CTR_OURS" "$CTR_GO" "$WORK" "$TRUE"
end=$EPOCHREALTIME
echo "  wall time: $(((${end/./} - ${start/./}) / 1000)) ms"

read -r m_ours p_ours a_ours n_ours < <(stats "$WORK/ours")
read -r m_go p_go a_go n_go < <(stats "$WORK/go")
read -r m_true p_true a_true n_true < <(stats "$WORK/true")
printf '  %-14s %9s %9s %9s %9s\n' "" "median" "p95" "mean" "min"
printf '  %-14s %9s %9s %9s %9s  ms\n' "ours ADD" "$m_ours" "$p_ours" "$a_ours" "$n_ours"
printf '  %-14s %9s %9s %9s %9s  ms\n' "go ADD" "$m_go" "$p_go" "$a_go" "$n_go"
printf '  %-14s %9s %9s %9s %9s  ms\n' "/bin/true" "$m_true" "$p_true" "$a_true" "$n_true"
awk -v o="$m_ours" -v g="$m_go" -v t="$m_true" 'BEGIN {
  printf "  ratios of medians: ours/true %.2f  go/true %.2f  go/ours %.2f\n", o / t, g / t, g / o }'
r=$(ratio "$m_ours" "$m_true")
figure loopback-add "loopback ADD, median, against /bin/true" ms "$m_ours" "$m_go" "$m_true" "$r" \
  "<= 1.0x /bin/true" "$(goal_le "$r" 1.0)"
