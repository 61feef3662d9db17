#!/bin/bash
# uml-run.sh CMD [ARGS...]
#
# Run CMD as root inside a throwaway User-Mode-Linux guest (Debian's `user-mode-linux`, kernel 6.1) and
# propagate its exit code. The guest kernel has what the host kernel lacks: 802.1Q VLANs, dummy, ipvlan,
# bridge VLAN filtering; plus macvlan, veth, tun/tap and macvtap. Use it for functional tests only: every
# syscall in the guest goes through ptrace (an exec costs ~33 ms), so benchmark on the host.
#
# The guest:
#   - root = the host's `/` over hostfs, READ-ONLY; nothing the command does reaches the host except
#     through the read-write mounts listed below;
#   - private tmpfs on /run /tmp /var/lib /mnt, a private devtmpfs on /dev (so /dev/net/tun and the
#     /dev/tapN nodes of macvtap links appear by themselves), proc and sysfs, /run/netns ready;
#   - modules loaded: dummy (numdummies=0), 8021q, ipvlan, macvlan, veth, bridge, tun, tap, macvtap; the
#     kernel's module auto-loading and `modprobe` (first on PATH) use /usr/lib/uml/modules/<kver>;
#   - `lo` of the guest's root namespace is up; nothing else exists (no uplink, no host interfaces);
#   - the command runs in the caller's current directory with the caller's environment (minus shell
#     internals), stdin = /dev/null; its stdout and stderr come back on our stdout and stderr after the
#     guest has finished (not streamed).
#
# Read-write host directories visible at the same path inside the guest:
#   - the current directory (unless it is `/`); when it lies below /tmp, /run, /var/lib, /mnt or
#     /dev/shm, the top directory below that prefix (a whole checkout in /tmp/x, target/ included);
#   - $CARGO_TARGET_DIR, if set (it is typically under /tmp, which the guest covers with its own tmpfs);
#   - if CMD is an absolute path below /tmp, /run, /var/lib, /mnt or /dev/shm, the top directory below it
#     (so `CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=uml-run.sh` works with a target dir in /tmp);
#   - every directory in $UML_MOUNTS (colon-separated absolute or relative paths; each must exist).
# Everything else of the host is visible read-only, except what the guest's tmpfs mounts cover.
# (A CMD directly in /tmp, e.g. /tmp/prog, is not reachable: put it in a subdirectory.)
# This isolates tests from the host's network and files by construction, but it is no security boundary:
# root in the guest can mount any host directory through hostfs.
#
# As a cargo runner (one guest boot per test binary):
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/netns-fixtures/uml-run.sh cargo test --test vlan
#
# Environment:
#   UML_TIMEOUT      seconds before the guest is killed (default 300); then the exit code is 124
#   UML_MEM          guest memory (default 512M)
#   UML_MOUNTS       extra read-write host directories, colon-separated
#   UML_CONSOLE      1 = always copy the guest console (kernel log) to stderr
#   UML_KERNEL       the UML binary (default /usr/bin/linux.uml)
#   UML_CACHE        where the compiled xstate shim is kept (default netns-fixtures/.cache)
#   UML_XSTATE_SHIM  0 = do not preload xstate-shim.c (see "boot" below; needed on AVX-512/AMX hosts)
#
# Requires: user-mode-linux, kmod (its modprobe loads the guest's modules), cc (builds xstate-shim.c once).
# Exit code: CMD's exit code; 124 on timeout; 255 if the guest did not finish for another reason (then the
# tail of the guest console is printed to stderr); 2 on usage errors or a missing requirement.
set -euo pipefail

die() { echo "uml-run: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: uml-run.sh CMD [ARGS...]"
UML=${UML_KERNEL:-/usr/bin/linux.uml}
[ -x "$UML" ] || die "$UML not found: install user-mode-linux (apt-get install -y user-mode-linux)"
[ -x /sbin/modprobe ] || die "/sbin/modprobe not found (the guest loads its modules with the host's kmod): apt-get install -y kmod"
TIMEOUT=${UML_TIMEOUT:-300}
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "UML_TIMEOUT must be a number of seconds, got '$TIMEOUT'"

CWD=$(pwd -P)
W=$(mktemp -d "${TMPDIR:-/tmp}/uml-run.XXXXXX")
W=$(cd "$W" && pwd -P)
UML_PID=
cleanup() {
  if [ -n "$UML_PID" ]; then kill -TERM "$UML_PID" 2>/dev/null || true; wait "$UML_PID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- read-write mounts -------------------------------------------------------------------------------
shadowed_top() { # print the top directory of $1 below a prefix the guest covers with tmpfs, if any
  local p=$1 pre rest
  for pre in /tmp /run /var/run /var/lib /mnt /dev/shm; do
    case $p in
      "$pre"/?*) rest=${p#"$pre"/}; echo "$pre/${rest%%/*}"; return 0 ;;
    esac
  done
  return 1
}
MOUNTS=()
add_mount() { # add_mount PATH [strict]
  local p
  if ! p=$(cd "$1" 2>/dev/null && pwd -P); then
    [ "${2:-}" = strict ] && die "UML_MOUNTS entry '$1' is not a directory"
    return 0
  fi
  [ "$p" = / ] && return 0
  [[ $p == *$'\n'* ]] && die "cannot mount a path containing a newline: '$p'"
  MOUNTS+=("$p")
}
# Below a prefix the guest covers with tmpfs (a checkout in /tmp/x), the whole top directory, so
# that the checkout's target/ is visible too when the command runs in a subdirectory (cargo runs
# integration tests in their package directory).
if top=$(shadowed_top "$CWD"); then add_mount "$top"; else add_mount "$CWD"; fi
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || true
  add_mount "$CARGO_TARGET_DIR"
fi
if [[ $1 == /* ]] && [ -e "$1" ]; then
  cmd_dir=$(cd "$(dirname "$1")" && pwd -P)
  if top=$(shadowed_top "$cmd_dir"); then add_mount "$top"; fi
fi
if [ -n "${UML_MOUNTS:-}" ]; then
  IFS=: read -r -a extra <<< "$UML_MOUNTS"
  for m in "${extra[@]}"; do [ -z "$m" ] || add_mount "$m" strict; done
fi
# Shortest first, so a directory is mounted before anything nested in it; drop duplicates and paths
# already inside another read-write mount (they are visible read-write through it).
sorted=()
while IFS= read -r p; do
  skip=
  for q in "${sorted[@]}"; do
    case $p in "$q" | "$q"/*) skip=1 ;; esac
  done
  [ -n "$skip" ] || sorted+=("$p")
done < <(printf '%s\n' "${MOUNTS[@]}" | awk '{ print length($0) "\t" $0 }' | sort -n -s | cut -f2-)
printf '%s\n' "${sorted[@]}" > "$W/mounts"

# --- command and environment -------------------------------------------------------------------------
printf '%q ' "$@" > "$W/cmd"
printf '%s\n' "$CWD" > "$W/cwd"
while IFS= read -r -d '' kv; do
  k=${kv%%=*}
  [[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
  case $k in PWD | OLDPWD | SHLVL | _ | SHELLOPTS | BASHOPTS | BASH_* | COLUMNS | LINES) continue ;; esac
  printf 'export %s=%q\n' "$k" "${kv#*=}"
done < <(env -0) > "$W/env"

# --- guest init ----------------------------------------------------------------------------------------
cat > "$W/init" <<'INIT'
#!/bin/bash
# PID 1 of the guest. $0 lives in the host work dir, which is mounted at /run/uml-run/w below.
W=${0%/*}
unset $(compgen -e)   # the kernel passes unknown boot parameters (mem=..., uml_dir=...) as environment
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
log() { echo "uml-run-init: $*" > /dev/console 2>/dev/null || true; }
mount -t proc proc /proc
mount -t sysfs sys /sys
for d in /run /var/lib /mnt; do mount -t tmpfs -o mode=755 tmp "$d"; done
mount -t tmpfs -o mode=1777 tmp /tmp
# /dev: the kernel's own devtmpfs (CONFIG_DEVTMPFS_MOUNT mounts it at boot): nodes such as /dev/net/tun
# and macvtap's /dev/tapN appear when their drivers create them. tmpfs + mknod if it is not there.
if ! grep -q '^[^ ]* /dev devtmpfs ' /proc/mounts; then
  mount -t devtmpfs dev /dev 2>/dev/null || mount -t tmpfs -o mode=755 dev /dev
fi
mk() { [ -e "$1" ] || mknod -m "$2" "$1" c "$3" "$4"; }
mk /dev/null 666 1 3; mk /dev/zero 666 1 5; mk /dev/full 666 1 7; mk /dev/random 666 1 8
mk /dev/urandom 666 1 9; mk /dev/tty 666 5 0; mk /dev/console 600 5 1
mkdir -p /dev/pts /dev/shm /dev/net /run/netns /run/uml-run/w /run/uml-run/bin /run/uml-run/mods /var/tmp 2>/dev/null
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for i in 0 1 2; do n=(stdin stdout stderr); [ -e /dev/${n[$i]} ] || ln -s /proc/self/fd/$i /dev/${n[$i]}; done
mount -t hostfs -o "$W" none /run/uml-run/w || { log "cannot mount the work dir $W"; echo o > /proc/sysrq-trigger; }
W=/run/uml-run/w

# Modules: the host's /lib/modules may not exist, so keep the UML tree under /run and point modprobe
# (both the kernel's auto-loader and the one on PATH) at it.
KV=$(uname -r)
mkdir -p /run/uml-run/mods/lib/modules/$KV
mount -t hostfs -o /usr/lib/uml/modules/$KV none /run/uml-run/mods/lib/modules/$KV
printf '#!/bin/sh\nexec /sbin/modprobe -d /run/uml-run/mods "$@"\n' > /run/uml-run/bin/modprobe
chmod 755 /run/uml-run/bin/modprobe
echo /run/uml-run/bin/modprobe > /proc/sys/kernel/modprobe
if [ -d /lib/modules ]; then   # also the standard place, for callers of /sbin/modprobe
  mount -t tmpfs -o mode=755 tmp /lib/modules && mkdir -p /lib/modules/$KV &&
    mount -t hostfs -o /usr/lib/uml/modules/$KV none /lib/modules/$KV
fi
failed=
/run/uml-run/bin/modprobe dummy numdummies=0 || failed="$failed dummy"
MODS="8021q ipvlan macvlan veth bridge tun tap macvtap"
if ! /run/uml-run/bin/modprobe -a $MODS; then
  for m in $MODS; do /run/uml-run/bin/modprobe "$m" || failed="$failed $m"; done
fi
mk /dev/net/tun 666 10 200; chmod 666 /dev/net/tun
[ -z "$failed" ] || { log "modprobe failed:$failed"; echo "$failed" > $W/modfail; }
ip link set lo up 2>/dev/null

# Read-write host directories, at their own paths (shortest first).
while IFS= read -r p; do
  [ -n "$p" ] || continue
  mkdir -p "$p" 2>/dev/null
  mount -t hostfs -o "$p" none "$p" || log "cannot mount host $p"
done < $W/mounts

C=$(cat $W/cwd)
(
  set +e
  unset $(compgen -e)
  source $W/env
  export PATH=/run/uml-run/bin:${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}
  [ -z "${TMPDIR:-}" ] || [ -d "$TMPDIR" ] || unset TMPDIR
  cd "$C" || exit 255
  eval "$(cat $W/cmd)"
) < /dev/null > $W/out 2> $W/err
echo $? > $W/rc.tmp
sync
mv $W/rc.tmp $W/rc
sync
umount $W 2>/dev/null
echo o > /proc/sysrq-trigger
sleep 5
poweroff -f
INIT
chmod 755 "$W/init"

# --- boot --------------------------------------------------------------------------------------------
# UML 6.1 switches the FPU state of guest processes with PTRACE_{GET,SET}REGSET(NT_X86_XSTATE) and a
# fixed 832-byte buffer (x87/SSE + AVX). Hosts with AVX-512/PKU/AMX have a bigger XSAVE area; the host
# kernel then rejects SETREGSET with EFAULT and init dies at once ("userspace - ptrace set fp regs
# failed, errno = 14"; fixed upstream only after 6.1). xstate-shim.c, preloaded into linux.uml, turns
# those two calls into full-size ones: the full state is kept per guest thread (keyed by UML's buffer)
# and UML's 832 bytes are laid over it. So AVX, AVX-512 and opmask registers survive syscalls, page
# faults and thread switches in the guest. UML_XSTATE_SHIM=0 disables it (only for hosts with an
# 832-byte XSAVE area).
SHIM=
if [ "${UML_XSTATE_SHIM:-1}" != 0 ]; then
  command -v cc > /dev/null || die "cc not found (needed to build xstate-shim.c for linux.uml): apt-get install -y gcc"
  HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
  SRC=$HERE/xstate-shim.c
  [ -f "$SRC" ] || die "$SRC is missing"
  CACHE=${UML_CACHE:-$HERE/.cache}
  mkdir -p "$CACHE" 2> /dev/null && [ -w "$CACHE" ] || CACHE=$W
  SHIM=$CACHE/xstate-shim-$(sha256sum "$SRC" | cut -c1-16).so
  if [ ! -f "$SHIM" ]; then
    cc -shared -fPIC -O2 -Wall -Werror -o "$SHIM.$$" "$SRC" -ldl || die "cannot build $SRC"
    mv -f "$SHIM.$$" "$SHIM"
  fi
fi
mkdir -p "$W/uml"
timeout -k 10 "$TIMEOUT" env ${SHIM:+LD_PRELOAD="$SHIM"} "$UML" mem="${UML_MEM:-512M}" rootfstype=hostfs rootflags=/ ro \
  init="$W/init" uml_dir="$W/uml" umid=run con=null ssl=null con0=null,fd:2 \
  < /dev/null > /dev/null 2> "$W/console" &
UML_PID=$!
set +e
wait "$UML_PID"
uml_rc=$?
set -e
UML_PID=

cat "$W/out" 2>/dev/null || true
cat "$W/err" >&2 2>/dev/null || true
[ "${UML_CONSOLE:-0}" = 1 ] && cat "$W/console" >&2
if [ -f "$W/modfail" ]; then echo "uml-run: warning: modprobe failed in the guest:$(cat "$W/modfail")" >&2; fi
if [ -f "$W/rc" ]; then
  rc=$(cat "$W/rc")
else
  if [ "$uml_rc" = 124 ]; then
    echo "uml-run: guest timed out after ${TIMEOUT}s (UML_TIMEOUT); console tail:" >&2
    rc=124
  else
    echo "uml-run: guest did not finish (linux.uml exit status $uml_rc); console tail:" >&2
    rc=255
  fi
  tail -n 25 "$W/console" >&2 || true
fi
exit "$rc"
