#!/bin/bash
# build-release.sh [CARGO-BUILD-ARGS...]
#
# Build the release plugin binaries statically linked against glibc (`-C target-feature=+crt-static`:
# no dynamic loader work at start-up, ~0.25 ms less per exec) and print the directory holding them on
# the last line of stdout. Cargo's own output goes to stderr.
#
# Default: every binary of the workspace (`--workspace --bins`). Any arguments replace that selection,
# e.g. `build-release.sh -p loopback`.
#
# The flag is given through CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS together with an explicit
# `--target x86_64-unknown-linux-gnu`: with --target, cargo does not apply target rustflags to build
# scripts and proc-macros, which must stay dynamic (a static proc-macro cannot be loaded by rustc).
# RUSTFLAGS would override the target variable, so its content is moved into it.
#
# Every produced plugin binary (loopback ipam bridge eni branch-eni) is checked to be static with ldd
# (and file, when installed); a dynamic one is an error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TRIPLE=x86_64-unknown-linux-gnu
PLUGINS=(loopback ipam bridge eni branch-eni)

die() { echo "build-release: $*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported (target $TRIPLE)"
command -v cargo > /dev/null || die "cargo not found on PATH"
[ -z "${CARGO_ENCODED_RUSTFLAGS:-}" ] ||
  die "CARGO_ENCODED_RUSTFLAGS is set; it would override the static-linking flag: unset it"

flags="-C target-feature=+crt-static"
if [ -n "${RUSTFLAGS:-}" ]; then
  echo "build-release: moving RUSTFLAGS='$RUSTFLAGS' into CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS" >&2
  flags="$RUSTFLAGS $flags"
  unset RUSTFLAGS
fi
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:+$CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS }$flags"

cd "$ROOT"
if [ $# -eq 0 ]; then set -- --workspace --bins; fi
cargo build --locked --release --target "$TRIPLE" "$@" >&2

# Where cargo put them: `cargo metadata` knows about CARGO_TARGET_DIR and build.target-dir in configs.
target_dir=$(cargo metadata --locked --format-version 1 --no-deps 2> /dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
case $target_dir in /*) ;; *) target_dir=$ROOT/$target_dir ;; esac
OUT=$target_dir/$TRIPLE/release
[ -d "$OUT" ] || die "no output directory $OUT"

found=0
for p in "${PLUGINS[@]}"; do
  b=$OUT/$p
  [ -f "$b" ] || continue
  found=$((found + 1))
  ldd_out=$(LC_ALL=C ldd "$b" 2>&1 || true)
  case $ldd_out in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *) die "$b is dynamically linked:
$ldd_out" ;;
  esac
  if command -v file > /dev/null; then
    f=$(file -b "$b")
    case $f in
      *"static-pie linked"* | *"statically linked"*) ;;
      *) die "$b is not static according to file(1): $f" ;;
    esac
    echo "build-release: $p: static ($(stat -c %s "$b") bytes; ${f%%, BuildID*})" >&2
  else
    echo "build-release: $p: static ($(stat -c %s "$b") bytes; ldd: ${ldd_out//$'\n'/ })" >&2
  fi
done
[ "$found" -gt 0 ] || die "no plugin binary (${PLUGINS[*]}) in $OUT"
echo "$OUT"
