#!/bin/bash
# scripts/build-cnitool.sh [DEST_DIR]   (also: cargo xtask cnitool [DEST_DIR])
#
# Build cnitool (the CNI project's reference client, from libcni 1.1.2) from Debian's *source* package and
# install it as DEST_DIR/cnitool (default /usr/local/bin). Prints the installed path on the last line of
# stdout; apt and go output goes to stderr. Idempotent: an existing DEST_DIR/cnitool is kept (FORCE=1
# rebuilds). Recipe: reference/test-environment.md §2.
#   - the binary package golang-github-appc-cni-dev has libcni but no cnitool, the source package has
#     cnitool/cnitool.go (stdlib + libcni only);
#   - the source comes through apt's own client: a deb-src twin of the Debian entry, `apt-get source`;
#   - GOPATH mode against Debian's /usr/share/gocode (module mode would need ginkgo v2, not packaged);
#     offline apart from Debian's archive (GOPROXY=off).
# Installs (only when missing): golang-go, golang-github-appc-cni-dev, dpkg-dev.
set -euo pipefail

DEST=${1:-/usr/local/bin}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${CNITOOL_CACHE:-$ROOT/.cache/cnitool}

log() { echo "build-cnitool: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -x "$DEST/cnitool" ] && [ "${FORCE:-0}" != 1 ]; then
  log "$DEST/cnitool already installed (FORCE=1 rebuilds)"
  echo "$DEST/cnitool"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root (apt-get)"

# shellcheck source=scripts/lib-apt.sh
source "$ROOT/scripts/lib-apt.sh"
apt_install_missing golang-go golang-github-appc-cni-dev dpkg-dev

ensure_deb_src

# The source version matching the installed libcni.
ver=$(dpkg-query -W -f='${source:Version}' golang-github-appc-cni-dev)
mkdir -p "$CACHE"
src_go=$(find "$CACHE" -maxdepth 3 -path "*/golang-github-appc-cni-*/cnitool/cnitool.go" -print -quit 2> /dev/null || true)
if [ -z "$src_go" ] || [ ! -f "$CACHE/version" ] || [ "$(cat "$CACHE/version")" != "$ver" ]; then
  rm -rf "${CACHE:?}"/*
  apt_source_retry "$CACHE" "golang-github-appc-cni=$ver"
  echo "$ver" > "$CACHE/version"
  src_go=$(find "$CACHE" -maxdepth 3 -path "*/golang-github-appc-cni-*/cnitool/cnitool.go" -print -quit)
fi
[ -n "$src_go" ] || die "cnitool/cnitool.go not found in the source package under $CACHE"

# GOPATH-mode build of the single package, against /usr/share/gocode's libcni.
build=$CACHE/build/cnitool
rm -rf "$CACHE/build"
mkdir -p "$build"
cp "$src_go" "$build/"
mkdir -p "$DEST"
(cd "$build" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$CACHE/gocache GOPROXY=off GOFLAGS='' \
  go build -o "$DEST/cnitool.new" .) >&2
mv -f "$DEST/cnitool.new" "$DEST/cnitool"
log "built from golang-github-appc-cni $ver: $(stat -c %s "$DEST/cnitool") bytes"
echo "$DEST/cnitool"
