#!/bin/bash
# tests/run-all.sh [--install-only | --dry-run]
#
# THE command that runs every test of the suite on a fresh machine of this project's kind (Debian 12,
# root, Rust toolchain present, nothing else). `.ci/run` executes exactly this.
#
#  1. prerequisites, idempotent: the Debian packages below are installed with apt-get only when missing
#     (one `apt-get update` first, only if something is missing); rustfmt and clippy are added with rustup
#     only when `rustup component list --installed` lacks them, the musl target likewise;
#  2. bash -n on every shell script of the repository, and `cargo xtask shellcheck`
#     (shellcheck -S warning on every tracked shell script);
#  3. cargo fmt --all -- --check
#  4. cargo clippy --locked --workspace --all-targets -- -D warnings, and again without
#     --all-targets (and without fuzz-replay, which turns the test hooks on): what ships is built
#     without the test-only features (dead code shows there)
#  5. cargo xtask unused-deps                      (every declared dependency is named in its crate)
#  6. cargo build --locked --workspace --bins      (the black-box tests run these binaries)
#  7. cargo xtask dist --check                     (the release artifacts in dist/: static build,
#                                                   tarball, .deb, SHA256SUMS, then verified: members,
#                                                   static, --version, dpkg-deb -c, binaries run after
#                                                   dpkg-deb -x, install/remove into a scratch root)
#  8. cargo xtask test all --locked               (the three tiers of README.md "Tests", in order:
#                                                   unit (no root), netns (namespaces, root), system
#                                                   (podman, cnitool, containerd, user-mode-linux);
#                                                   nothing is skipped; the verbs x versions x plugins
#                                                   matrix is in the plugins' namespace tests)
#  9. a short summary.
# Fails fast: the first failing step stops the run with a message naming it and its exit code.
# Non-interactive: stdin is /dev/null, so it behaves the same under CI=true without a terminal.
#
#   --install-only  do step 1 only
#   --dry-run       report which prerequisites are missing and list the steps, change nothing
# Honours CARGO_TARGET_DIR (default: target/ in the repository).
set -euo pipefail
exec < /dev/null
unset SKIP_UML # every test runs here; the user-mode-linux tests may only be skipped in ad-hoc runs

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

# Debian packages, by name. kmod: the user-mode-linux runner loads the guest's modules with modprobe.
# golang-go, golang-github-appc-cni-dev, dpkg-dev: scripts/build-cnitool.sh builds cnitool for
# tests/system/tests/cnitool.rs. podman, runc, catatonit, busybox-static: the runtime and rootfs of
# tests/system/tests/podman.rs. golang-github-coreos-bbolt-dev: Go's bbolt, for
# scripts/build-ecs-ipam-go.sh (tests/netns/tests/ipam/ecs_store.rs, Amazon's ecs-ipam store on the
# other side). util-linux: unshare/nsenter for its private /data. python3: the demo's endpoints
# (tests/system/tests/awsvpc_demo.rs). xz-utils: fuzz-replay/tests/replay.rs unpacks
# fuzz/corpus.tar.xz. shellcheck: the shellcheck step. containerd, protobuf-compiler, python3-grpcio,
# python3-protobuf: tests/system/tests/containerd (containerd's CRI plugin, driven by its cri.py
# with the module scripts/build-cri-client.sh generates; Debian's python, no pip), with runc and
# portmap above. strace, time: benches/startup.sh (system calls and peak RSS per verb). linux-perf:
# the rcu_barrier() figures of benches/eni.sh, scale.sh and tasks.sh (optional there).
PACKAGES=(user-mode-linux kmod containernetworking-plugins iproute2 iputils-ping nftables iptables
  util-linux python3 xz-utils shellcheck strace time linux-perf
  golang-go golang-github-appc-cni-dev dpkg-dev golang-github-coreos-bbolt-dev
  podman runc catatonit busybox-static
  containerd protobuf-compiler python3-grpcio python3-protobuf)
COMPONENTS=(rustfmt clippy)
# Rust targets: the release build (`cargo xtask release`, `dist --check`, the system tests) is static
# musl (xtask/src/release.rs); where the target cannot be added it falls back to static glibc.
TARGETS=(x86_64-unknown-linux-musl)

MODE=run
case ${1:-} in
  "") ;;
  --install-only) MODE=install ;;
  --dry-run) MODE=dry ;;
  *) echo "usage: tests/run-all.sh [--install-only | --dry-run]" >&2; exit 2 ;;
esac

say() { printf '\n==> run-all: %s\n' "$*" >&2; }
fail() { printf '\nrun-all: FAILED: %s\n' "$*" >&2; exit 1; }

T0=$SECONDS
STEPS=()
# step NAME CMD... : run one step, time it, stop the whole run on failure.
step() {
  local name=$1 t=$SECONDS rc=0
  shift
  say "$name: $*"
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\nrun-all: FAILED at step "%s" (exit %d): %s\n' "$name" "$rc" "$*" >&2
    exit "$rc"
  fi
  STEPS+=("$(printf '%-12s ok  %5ds' "$name" $((SECONDS - t)))")
}

# --- 1. prerequisites --------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "must run as root (the tests create network namespaces; apt-get)"
command -v cargo > /dev/null || fail "cargo not found on PATH (a Rust toolchain is required)"

# rust-toolchain.toml pins the toolchain of this machine kind (`rustc --version` of its stable). Where rustup
# knows that toolchain only as "stable", the pinned name is made a link to it (as rustup's own layout has
# it), so rustup never downloads what is installed already; a machine with another stable downloads it.
PIN=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' rust-toolchain.toml 2> /dev/null)
pinned_toolchain_missing() {
  [ -n "$PIN" ] && command -v rustup > /dev/null || return 1
  local host dir
  host=$(cd / && rustc -vV 2> /dev/null | sed -n 's/^host: //p')
  dir=${RUSTUP_HOME:-$HOME/.rustup}/toolchains
  [ -n "$host" ] && [ ! -e "$dir/$PIN-$host" ] &&
    [ "$(cd / && rustc +stable --version 2> /dev/null | cut -d' ' -f2)" = "$PIN" ] &&
    [ -d "$dir/stable-$host" ] && PIN_LINK=("$dir/stable-$host" "$dir/$PIN-$host")
}
PIN_LINK=()
pinned_toolchain_missing || true

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q 'install ok installed'; }
missing_pkgs=()
for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing_pkgs+=("$p"); done
# A C compiler: the Rust toolchain links with cc, and the user-mode-linux runner builds its xstate shim.
command -v cc > /dev/null || missing_pkgs+=(gcc)

missing_comps=()
missing_targets=()
if command -v rustup > /dev/null; then
  # (before the pinned toolchain is linked, ask its twin, stable)
  comp_tc=()
  [ ${#PIN_LINK[@]} = 0 ] || comp_tc=(--toolchain stable)
  installed_comps=$(rustup component list --installed "${comp_tc[@]}" 2> /dev/null) ||
    fail "'rustup component list --installed' failed"
  for c in "${COMPONENTS[@]}"; do
    grep -q "^$c\(-\|$\)" <<< "$installed_comps" || missing_comps+=("$c")
  done
  installed_targets=$(rustup target list --installed "${comp_tc[@]}" 2> /dev/null) ||
    fail "'rustup target list --installed' failed"
  for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<< "$installed_targets" || missing_targets+=("$t")
  done
else
  # No rustup: the toolchain must already carry the tools.
  cargo fmt --version > /dev/null 2>&1 || fail "cargo fmt unavailable and no rustup to add rustfmt"
  cargo clippy --version > /dev/null 2>&1 || fail "cargo clippy unavailable and no rustup to add clippy"
  [ -d "$(rustc --print sysroot)/lib/rustlib/${TARGETS[0]}" ] ||
    echo "run-all: WARNING: no Rust target ${TARGETS[0]} and no rustup to add it: the release build falls back to glibc" >&2
fi

install_prerequisites() {
  if [ ${#PIN_LINK[@]} = 2 ]; then
    ln -s "${PIN_LINK[0]}" "${PIN_LINK[1]}" || fail "cannot link the pinned toolchain $PIN to stable"
  fi
  if [ ${#missing_pkgs[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -q -o Dpkg::Use-Pty=0)
    "${apt[@]}" update || fail "apt-get update failed"
    "${apt[@]}" install --no-install-recommends "${missing_pkgs[@]}" ||
      fail "apt-get install ${missing_pkgs[*]} failed"
  fi
  if [ ${#missing_comps[@]} -gt 0 ]; then
    rustup component add "${missing_comps[@]}" || fail "rustup component add ${missing_comps[*]} failed"
  fi
  if [ ${#missing_targets[@]} -gt 0 ]; then
    # not fatal: without it `cargo xtask release` builds static glibc binaries (and says so)
    rustup target add "${missing_targets[@]}" ||
      echo "run-all: WARNING: rustup target add ${missing_targets[*]} failed: the release build falls back to glibc" >&2
  fi
  [ -x /usr/bin/linux.uml ] || fail "/usr/bin/linux.uml still missing after installing user-mode-linux"
  [ -x /usr/lib/cni/loopback ] || fail "/usr/lib/cni/loopback still missing after installing containernetworking-plugins"
}

list_scripts() {
  [ ! -f .ci/run ] || echo ./.ci/run
  find . -path ./target -prune -o -path ./.git -prune -o -path '*/.cache' -prune -o -name '*.sh' -type f -print | sort
}

if [ "$MODE" = dry ]; then
  echo "run-all (dry run) in $ROOT"
  echo "  missing Debian packages: ${missing_pkgs[*]:-none} (of: ${PACKAGES[*]})"
  echo "  missing rustup components: ${missing_comps[*]:-none} (of: ${COMPONENTS[*]})"
  echo "  missing Rust targets: ${missing_targets[*]:-none} (of: ${TARGETS[*]})"
  echo "  pinned toolchain $PIN: ${PIN_LINK[1]:+to be linked to ${PIN_LINK[0]}}${PIN_LINK[1]:-present (or rustup installs it)}"
  echo "  steps: bash -n on $(list_scripts | wc -l) shell scripts"
  echo "         cargo xtask shellcheck"
  echo "         cargo fmt --all -- --check"
  echo "         cargo clippy --locked --workspace --all-targets -- -D warnings"
  echo "         cargo clippy --locked --workspace --exclude fuzz-replay -- -D warnings"
  echo "         cargo xtask unused-deps"
  echo "         cargo build --locked --workspace --bins"
  echo "         cargo xtask dist --check"
  echo "         cargo xtask test all --locked   (unit, netns, system)"
  echo "  target dir: ${CARGO_TARGET_DIR:-$ROOT/target}; cores: $(nproc)"
  exit 0
fi

step prereqs install_prerequisites
[ "$MODE" = install ] && { say "prerequisites ready"; exit 0; }

# --- 2-8. checks, build, artifacts, tests ---------------------------------------------------------
shell_syntax() {
  local f n=0 bad=0
  while IFS= read -r f; do
    n=$((n + 1))
    bash -n "$f" || { echo "syntax error in $f" >&2; bad=1; }
  done < <(list_scripts)
  echo "checked $n shell scripts"
  return $bad
}
step shell-syntax shell_syntax
step shellcheck cargo xtask shellcheck
step fmt cargo fmt --all -- --check
step clippy cargo clippy --locked --workspace --all-targets -- -D warnings
step clippy-shipped cargo clippy --locked --workspace --exclude fuzz-replay -- -D warnings
step unused-deps cargo xtask unused-deps
step build cargo build --locked --workspace --bins
step dist cargo xtask dist --check

TEST_LOG=$(mktemp "${TMPDIR:-/tmp}/run-all-test.XXXXXX")
trap 'rm -f "$TEST_LOG"' EXIT
run_tests() {
  set -o pipefail
  cargo xtask test all --locked 2>&1 | tee "$TEST_LOG"
}
step test run_tests

# --- 9. summary --------------------------------------------------------------------------------------
counts=$(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i }
    r++ }
  END { printf "%d test binaries/doc-test runs: %d passed, %d failed, %d ignored", r, p, f, g }' "$TEST_LOG")
printf '\n==> run-all: summary (%s)\n' "$ROOT"
printf '  %s\n' "${STEPS[@]}"
printf '  tests: %s\n' "$counts"
printf '  total: %ds. ALL PASSED\n' $((SECONDS - T0))
