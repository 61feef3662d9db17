#!/bin/bash
# benches/ipam.sh [N]
#
# One benchmark run of our `ipam` against Debian's Go `host-local` (/usr/lib/cni/host-local), both
# on host-local's on-disk layout, dual-stack (10.90.0.0/16 + fd90::/64):
#   1. sequential ADD then DEL, N rounds (default 200), with 0, 5,000 and 65,000 existing leases
#      (65,000: a full /16). Our three stores take turns within each round, so that the
#      ours/ours@0 ratios compare the same moments of a shared machine; Go host-local reads every
#      lease on every call, so it runs store by store, with NGO_BIG rounds (default 10) at 65,000;
#   2. the first operation after a foreign write, at 5,000 and 65,000 leases: rounds of
#      [our ADD+DEL (steady)] [Go DEL of an unknown container (it reads every lease and changes
#      nothing)] [our ADD+DEL, timed: after a Go call] [Go ADD] [our ADD, timed: first after a Go
#      write] [Go ADD] [our DEL of Go's container, timed: first after a Go write]. The steady
#      figures of the same rounds are the reference; "after a Go call" shows what Go's run costs
#      the next process (cold caches) without any change to take in (F rounds, default 40; FBIG
#      at 65,000, default 15);
#   3. 100 concurrent ADDs (different container IDs) at 5,000 leases: wall time for all 100;
#   4. the same as 2 in CPU time (perf stat task-clock of our process, when perf is installed;
#      CR rounds, default 20, CRBIG at 65,000, default 8): on a shared machine wall time also
#      measures everybody else's load, CPU time measures our work;
#   5. system calls per operation (strace -c -f, when strace is installed): steady ADD/DEL and the
#      first ADD and DEL after a Go write, total and getdents64.
# The first ADD after a foreign write does not list the directory: every address it takes is
# checked on disk, and the one lease it could miss (the same container's, made by Go) is the one
# `last_reserved_ip.N` names. The next lookup by owner (DEL, CHECK) lists the directory once, the
# only way to learn what someone else created or removed: its floor is our steady DEL plus what
# listing the directory costs the kernel, measured in the same rounds (`ls -f` minus
# `/bin/true`).
# Besides the tables it prints FIGURE and POINT lines (the protocol of benches/lib.sh) for
# benches/run.sh.
# Each plugin gets its own copy of the store. Timed with bash's $EPOCHREALTIME; prints medians in ms,
# host-local/ours ratios and ratios against our own empty-store figure. Everything runs in
# namespaces and directories this script creates.
#
# Environment: OURS (our ipam binary; default: built by `cargo xtask release ipam`), GO,
# STATES (default "0 5000 65000"), NGO_BIG, F, FBIG, CR, CRBIG. At 65,000 leases the /16 has 534
# free addresses and every ADD moves the round-robin cursor: keep N + 4*(FBIG+CRBIG) below ~500.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
N=${1:-${N:-200}}
NGO_BIG=${NGO_BIG:-10}
F=${F:-40}
FBIG=${FBIG:-15}
CR=${CR:-20}
CRBIG=${CRBIG:-8}
STATES=${STATES:-"0 5000 65000"}
GO=${GO:-/usr/lib/cni/host-local}
die() { echo "bench-ipam: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace)"
[ -x "$GO" ] || die "$GO not found: apt-get install -y containernetworking-plugins"
if [ -z "${OURS:-}" ]; then
  OURS=$(release_dir ipam)/ipam
fi
[ -x "$OURS" ] || die "$OURS is missing"

bench_workspace ipbench || die "cannot create a work directory"
ip netns add "$TAG"
export CNI_NETNS=/run/netns/$TAG CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni

conf() { # conf DATADIR
  printf '{"cniVersion":"1.0.0","name":"bench","type":"x","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.90.0.0/16"}],[{"subnet":"fd90::/64"}]]}}' "$1"
}

# populate DIR COUNT: COUNT v4 leases in host-local's format, plus last_reserved_ip.0
populate() {
  python3 - "$1" "$2" << 'PY'
import os, sys
d = os.path.join(sys.argv[1], "bench"); n = int(sys.argv[2])
os.makedirs(d, exist_ok=True)
last = None
for i in range(n):
    ip = "10.90.%d.%d" % ((i + 2) // 256, (i + 2) % 256)
    with open(os.path.join(d, ip), "w") as f:
        f.write("pre-%d\r\neth0" % i)
    last = ip
if last:
    open(os.path.join(d, "last_reserved_ip.0"), "w").write(last)
PY
}

# sum A B (ms, three decimals)
sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

us() { local a=${1/./} b=${2/./}; echo $((10#$b - 10#$a)); }
median() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1000}'; }

# op BIN VERB CID CONF [OUTFILE]: one call; its duration (us) appended to OUTFILE when given
op() {
  local s e
  s=$EPOCHREALTIME
  CNI_COMMAND=$2 CNI_CONTAINERID=$3 "$1" <<< "$4" > /dev/null || die "$1 $2 $3 failed"
  e=$EPOCHREALTIME
  if [ -n "${5:-}" ]; then us "$s" "$e" >> "$5"; fi
}

# warm BIN CONF: one ADD+DEL (our first use of a foreign store builds the owner index once)
warm() { op "$1" ADD warm "$2"; op "$1" DEL warm "$2"; }

# sequential BIN DATADIR LABEL ROUNDS: ROUNDS rounds of ADD+DEL, one container ID per round
sequential() {
  local bin=$1 dir=$2 label=$3 rounds=$4 c i
  c=$(conf "$dir")
  warm "$bin" "$c"
  : > "$WORK/$label.add"; : > "$WORK/$label.del"
  for ((i = 0; i < rounds; i++)); do
    op "$bin" ADD "seq-$i" "$c" "$WORK/$label.add"
    op "$bin" DEL "seq-$i" "$c" "$WORK/$label.del"
  done
}

# cpu BIN VERB CID CONF OUTFILE: one call under perf stat; its task-clock (us) appended to OUTFILE
cpu() {
  CNI_COMMAND=$2 CNI_CONTAINERID=$3 perf stat -x, -e task-clock -o "$WORK/perf.out" "$1" <<< "$4" \
    > /dev/null || die "$1 $2 $3 failed (perf stat)"
  awk -F, '$3 ~ /^task-clock/ {printf "%d\n", $1 * 1000}' "$WORK/perf.out" >> "$5"
}

# after_foreign_cpu DATADIR LABEL ROUNDS: CPU time of a steady ADD and of the first ADD and DEL
# after a Go write
after_foreign_cpu() {
  local dir=$1 label=$2 rounds=$3 c i
  c=$(conf "$dir")
  for k in add fadd fdel; do : > "$WORK/$label.$k"; done
  for ((i = 0; i < rounds; i++)); do
    cpu "$OURS" ADD "cs-$i" "$c" "$WORK/$label.add"
    op "$OURS" DEL "cs-$i" "$c"
    op "$GO" ADD "cg-$i" "$c"
    cpu "$OURS" ADD "cf-$i" "$c" "$WORK/$label.fadd"
    op "$GO" ADD "ch-$i" "$c"
    cpu "$OURS" DEL "ch-$i" "$c" "$WORK/$label.fdel"
    op "$OURS" DEL "cf-$i" "$c"
    op "$OURS" DEL "cg-$i" "$c"
  done
}

# tick CMD... : runs CMD with stdout to /dev/null; its duration (us) on stdout
tick() {
  local s e
  s=$EPOCHREALTIME
  "$@" > /dev/null
  e=$EPOCHREALTIME
  us "$s" "$e"
}

# after_foreign DATADIR LABEL ROUNDS: steady ADD/DEL and the first ADD/DEL after a Go write, and
# the kernel's cost of listing the directory (ls -f minus /bin/true)
after_foreign() {
  local dir=$1 label=$2 rounds=$3 c i
  c=$(conf "$dir")
  warm "$OURS" "$c"
  for k in add del nadd ndel fadd fdel ls true; do : > "$WORK/$label.$k"; done
  for ((i = 0; i < rounds; i++)); do
    tick ls -f "$dir/bench" >> "$WORK/$label.ls"
    tick /bin/true >> "$WORK/$label.true"
    op "$OURS" ADD "s-$i" "$c" "$WORK/$label.add"
    op "$OURS" DEL "s-$i" "$c" "$WORK/$label.del"
    op "$GO" DEL "nobody-$i" "$c"
    op "$OURS" ADD "n-$i" "$c" "$WORK/$label.nadd"
    op "$OURS" DEL "n-$i" "$c" "$WORK/$label.ndel"
    op "$GO" ADD "g-$i" "$c"
    op "$OURS" ADD "f-$i" "$c" "$WORK/$label.fadd"
    op "$GO" ADD "h-$i" "$c"
    op "$OURS" DEL "h-$i" "$c" "$WORK/$label.fdel"
    op "$OURS" DEL "f-$i" "$c"
    op "$OURS" DEL "g-$i" "$c"
  done
}

# concurrent BIN DATADIR: wall ms for 100 parallel ADDs; checks 100 distinct leases appeared
concurrent() {
  local bin=$1 dir=$2 c s e i before after
  c=$(conf "$dir")
  before=$(find "$dir/bench" -maxdepth 1 -name '10.90.*' | wc -l)
  s=$EPOCHREALTIME
  for ((i = 0; i < 100; i++)); do
    CNI_COMMAND=ADD CNI_CONTAINERID=par-$i "$bin" <<< "$c" > /dev/null 2> "$WORK/par-$i.err" &
  done
  wait
  e=$EPOCHREALTIME
  after=$(find "$dir/bench" -maxdepth 1 -name '10.90.*' | wc -l)
  [ $((after - before)) = 100 ] || die "$bin: expected 100 new leases, got $((after - before))"
  awk -v u="$(us "$s" "$e")" 'BEGIN{printf "%.1f", u/1000}'
}

# syscalls DATADIR VERB CID [foreign]: "total getdents64" system calls of one call of ours (after a
# Go ADD when the fourth argument is given)
syscalls() {
  local dir=$1 verb=$2 cid=$3 c out
  c=$(conf "$dir")
  [ -z "${4:-}" ] || op "$GO" ADD "sys-go-$cid" "$c"
  out=$WORK/strace.$cid
  CNI_COMMAND=$verb CNI_CONTAINERID=$cid strace -f -c -o "$out" "$OURS" <<< "$c" > /dev/null ||
    die "strace $verb $cid failed"
  # columns: % time, seconds, usecs/call, calls, errors (may be empty), syscall
  awk '$NF == "total" {t = $4} $NF == "getdents64" {g = $4} END {printf "%d %d", t, g}' "$out"
}

printf 'ipam benchmark: N=%d rounds, dual-stack; ours=%s, go=%s\n' "$N" "$OURS" "$GO"
declare -A RES
for state in $STATES; do
  dir="$WORK/ours-$state"; mkdir -p "$dir"; populate "$dir" "$state"
  warm "$OURS" "$(conf "$dir")"
  : > "$WORK/ours-$state.add"; : > "$WORK/ours-$state.del"
done
for ((i = 0; i < N; i++)); do
  for state in $STATES; do
    c=$(conf "$WORK/ours-$state")
    op "$OURS" ADD "seq-$i" "$c" "$WORK/ours-$state.add"
    op "$OURS" DEL "seq-$i" "$c" "$WORK/ours-$state.del"
  done
done
for state in $STATES; do
  RES[ours-$state-add]=$(median "$WORK/ours-$state.add")
  RES[ours-$state-del]=$(median "$WORK/ours-$state.del")
  rounds=$N; [ "$state" -lt 65000 ] || rounds=$NGO_BIG
  dir="$WORK/go-$state"; mkdir -p "$dir"; populate "$dir" "$state"
  sequential "$GO" "$dir" "go-$state" "$rounds"
  RES[go-$state-add]=$(median "$WORK/go-$state.add")
  RES[go-$state-del]=$(median "$WORK/go-$state.del")
  rm -rf "$dir"
done
for state in $STATES; do
  [ "$state" -gt 0 ] || continue
  rounds=$F; [ "$state" -lt 65000 ] || rounds=$FBIG
  dir="$WORK/ours-$state"
  after_foreign "$dir" "foreign-$state" "$rounds"
  for k in add del nadd ndel fadd fdel ls true; do
    RES[foreign-$state-$k]=$(median "$WORK/foreign-$state.$k")
  done
done
if command -v perf > /dev/null; then
  for state in $STATES; do
    [ "$state" -gt 0 ] || continue
    rounds=$CR; [ "$state" -lt 65000 ] || rounds=$CRBIG
    after_foreign_cpu "$WORK/ours-$state" "cpu-$state" "$rounds"
    for k in add fadd fdel; do RES[cpu-$state-$k]=$(median "$WORK/cpu-$state.$k"); done
  done
fi
for who in ours go; do
  bin=$OURS; [ "$who" = go ] && bin=$GO
  dir="$WORK/$who-par"; mkdir -p "$dir"; populate "$dir" 5000
  RES[$who-par]=$(concurrent "$bin" "$dir")
  rm -rf "$dir"
done
if command -v strace > /dev/null; then
  for state in $STATES; do
    dir="$WORK/ours-$state"
    RES[sys-$state-add]=$(syscalls "$dir" ADD "sys-a")
    RES[sys-$state-del]=$(syscalls "$dir" DEL "sys-a")
    [ "$state" -gt 0 ] || continue
    RES[sys-$state-fadd]=$(syscalls "$dir" ADD "sys-f" foreign)
    RES[sys-$state-fdel]=$(syscalls "$dir" DEL "sys-go-sys-f")
    op "$OURS" DEL sys-f "$(conf "$dir")"
  done
fi

xratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
printf '\n%-38s %10s %12s %9s %12s\n' "median (ms)" "ours" "host-local" "go/ours" "ours/ours@0"
for state in $STATES; do
  for op in add del; do
    base=${RES[ours-0-$op]:-}
    printf '%-38s %10s %12s %9s %12s\n' "${op^^}, $state existing leases" "${RES[ours-$state-$op]}" \
      "${RES[go-$state-$op]}" "$(xratio "${RES[go-$state-$op]}" "${RES[ours-$state-$op]}")" \
      "$(if [ -n "$base" ]; then xratio "${RES[ours-$state-$op]}" "$base"; else echo n/a; fi)"
  done
done
printf '%-38s %10s %12s %9s\n' "100 concurrent ADDs, 5000 leases" "${RES[ours-par]}" "${RES[go-par]}" \
  "$(xratio "${RES[go-par]}" "${RES[ours-par]}")"
printf '(wall time for all 100, in ms)\n'
printf '\n%-30s %11s %11s %8s %11s %8s\n' "first op after a Go write (ms)" "after write" "steady ADD" "ratio" \
  "after call" "ratio"
for state in $STATES; do
  [ "$state" -gt 0 ] || continue
  for k in add del; do
    f=${RES[foreign-$state-f$k]} s=${RES[foreign-$state-add]} n=${RES[foreign-$state-n$k]}
    printf '%-30s %11s %11s %8s %11s %8s\n' "${k^^}, $state existing leases" "$f" "$s" \
      "$(xratio "$f" "$s")" "$n" "$(xratio "$f" "$n")"
  done
done
for state in $STATES; do
  [ -n "${RES[foreign-$state-ls]:-}" ] || continue
  printf 'listing the directory (ls -f minus /bin/true), %s leases: %s ms\n' "$state" \
    "$(awk -v a="${RES[foreign-$state-ls]}" -v b="${RES[foreign-$state-true]}" 'BEGIN { printf "%.3f", a - b }')"
done
printf '(steady ADD: ours, same rounds, after our own call; after call: our same op right after a Go\n'
printf ' call that changed nothing: what Go costs the next process without any change to take in)\n'
if [ -n "${RES[cpu-5000-add]:-}${RES[cpu-65000-add]:-}" ]; then
  printf '\n%-30s %11s %11s %8s\n' "CPU time of our call (ms)" "after write" "steady ADD" "ratio"
  for state in $STATES; do
    [ -n "${RES[cpu-$state-add]:-}" ] || continue
    for k in add del; do
      f=${RES[cpu-$state-f$k]} s=${RES[cpu-$state-add]}
      printf '%-30s %11s %11s %8s\n' "${k^^}, $state existing leases" "$f" "$s" "$(xratio "$f" "$s")"
    done
  done
  printf '(perf stat task-clock of our process, medians; load average at the end: %s)\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
fi
if command -v strace > /dev/null; then
  printf '\n%-38s %14s\n' "system calls of one call of ours" "total/getdents"
  for state in $STATES; do
    for k in add del fadd fdel; do
      [ -n "${RES[sys-$state-$k]:-}" ] || continue
      label="${k^^}"
      [ "$k" = fadd ] && label="first ADD after a Go write"
      [ "$k" = fdel ] && label="first DEL after a Go write"
      printf '%-38s %14s\n' "$label, $state leases" "${RES[sys-$state-$k]/ //}"
    done
  done
fi

# --- FIGURE and POINT lines for benches/run.sh --------------------------------------------------
load=$(cut -d' ' -f1 /proc/loadavg)
for state in $STATES; do
  ours=$(sum "${RES[ours-$state-add]}" "${RES[ours-$state-del]}")
  go=$(sum "${RES[go-$state-add]}" "${RES[go-$state-del]}")
  RES[ours-$state-adddel]=$ours
  figure "ipam-adddel-$state" "ipam ADD+DEL, $state leases (peer: host-local; ratio peer/ours)" ms \
    "$ours" "$go" - "$(ratio "$go" "$ours")" - -
  point "ipam ADD+DEL against leases" leases "$state" ours "$ours" ms
  point "ipam ADD+DEL against leases" leases "$state" go "$go" ms
done
for state in $STATES; do
  [ "$state" -gt 0 ] && [ -n "${RES[ours-0-adddel]:-}" ] || continue
  r=$(ratio "${RES[ours-$state-adddel]}" "${RES[ours-0-adddel]}")
  figure "ipam-flat-$state" "ipam ADD+DEL at $state leases / at 0 (load $load)" x \
    "$r" - - "$r" "<= 1.15x" "$(goal_le "$r" 1.15)"
done
for state in $STATES; do
  [ -n "${RES[foreign-$state-fadd]:-}" ] || continue
  f=${RES[foreign-$state-fadd]} s=${RES[foreign-$state-add]} n=${RES[foreign-$state-nadd]}
  list=$(awk -v a="${RES[foreign-$state-ls]}" -v b="${RES[foreign-$state-true]}" \
    'BEGIN { d = a - b; if (d < 0) d = 0; printf "%.3f", d }')
  floor=$(sum "$s" "$list")
  r=$(ratio "$f" "$s")
  figure "ipam-first-after-write-$state" \
    "ipam first ADD after a Go write, $state leases / our steady ADD $s ms (floor: steady ADD + listing $list ms; peer: host-local ADD)" \
    ms "$f" "${RES[go-$state-add]}" "$floor" "$r" "<= 2x steady ADD" "$(goal_le "$r" 2)"
  figure "ipam-first-after-call-$state" \
    "ipam first ADD after a Go write / our ADD after a Go call that changed nothing, $state leases" \
    x "$(ratio "$f" "$n")" - - "$(ratio "$f" "$n")" - -
  point "ipam first ADD after a Go write against leases" leases "$state" ours "$f" ms
  point "ipam first ADD after a Go write against leases" leases "$state" steady "$s" ms
  point "ipam first ADD after a Go write against leases" leases "$state" floor "$floor" ms
  d=${RES[foreign-$state-del]} fd=${RES[foreign-$state-fdel]}
  figure "ipam-first-del-after-write-$state" \
    "ipam first DEL after a Go write (it lists the directory), $state leases / our steady DEL $d ms (floor: steady DEL + listing; peer: host-local DEL)" \
    ms "$fd" "${RES[go-$state-del]}" "$(sum "$d" "$list")" "$(ratio "$fd" "$d")" - -
  if [ -n "${RES[cpu-$state-fadd]:-}" ]; then
    r=$(ratio "${RES[cpu-$state-fadd]}" "${RES[cpu-$state-add]}")
    figure "ipam-first-after-write-cpu-$state" \
      "ipam first ADD after a Go write, CPU time / steady ADD CPU time, $state leases" ms \
      "${RES[cpu-$state-fadd]}" - - "$r" "<= 2x steady ADD" "$(goal_le "$r" 2)"
  fi
done
figure ipam-par-5000 "100 concurrent ipam ADDs at 5000 leases, wall (ratio peer/ours)" ms \
  "${RES[ours-par]}" "${RES[go-par]}" - "$(ratio "${RES[go-par]}" "${RES[ours-par]}")" - -
