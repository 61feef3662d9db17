#!/bin/bash
# scripts/build-ecs-ipam-go.sh [DEST_DIR]   (also: cargo xtask ecs-ipam-go [DEST_DIR])
#
# Build netns-fixtures/ecs-ipam-go (a test double of Amazon's ecs-ipam BoltDB lease store, on Go's
# bbolt) and install it as DEST_DIR/ecs-ipam-go (default: .cache/ecs-ipam-go/bin, which .gitignore
# ignores). Prints the binary's path on the last line of stdout; apt and go output go to
# stderr. Cached: rebuilt only when main.go or the Go/bbolt package versions change (FORCE=1 rebuilds).
#   - Debian packages only: golang-go and golang-github-coreos-bbolt-dev (go.etcd.io/bbolt, with its
#     dependency golang.org/x/sys from golang-golang-x-sys-dev), installed when missing;
#   - GOPATH mode against Debian's /usr/share/gocode, offline (GOPROXY=off), like build-cnitool.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SRC=$ROOT/netns-fixtures/ecs-ipam-go/main.go
CACHE=${ECS_IPAM_GO_CACHE:-$ROOT/.cache/ecs-ipam-go}
DEST=${1:-$CACHE/bin}

log() { echo "build-ecs-ipam-go: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/lib-apt.sh
source "$ROOT/scripts/lib-apt.sh"
apt_install_missing golang-go golang-github-coreos-bbolt-dev

stamp=$(
  sha256sum "$SRC" | cut -d' ' -f1
  dpkg-query -W -f='${Version}\n' golang-go golang-github-coreos-bbolt-dev
)
if [ -x "$DEST/ecs-ipam-go" ] && [ "${FORCE:-0}" != 1 ] && [ -f "$DEST/.stamp" ] &&
  [ "$(cat "$DEST/.stamp")" = "$stamp" ]; then
  echo "$DEST/ecs-ipam-go"
  exit 0
fi

mkdir -p "$DEST" "$CACHE/build/ecs-ipam-go"
cp "$SRC" "$CACHE/build/ecs-ipam-go/main.go"
(cd "$CACHE/build/ecs-ipam-go" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$CACHE/gocache \
  GOPROXY=off GOFLAGS='' go build -o "$DEST/ecs-ipam-go.new" .) >&2
mv -f "$DEST/ecs-ipam-go.new" "$DEST/ecs-ipam-go"
printf '%s\n' "$stamp" > "$DEST/.stamp"
log "built $(stat -c %s "$DEST/ecs-ipam-go") bytes against bbolt $(dpkg-query -W -f='${Version}' golang-github-coreos-bbolt-dev)"
echo "$DEST/ecs-ipam-go"
