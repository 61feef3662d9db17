#!/bin/bash
# scripts/build-cri-client.sh [DEST_DIR]   (also: cargo xtask cri-client [DEST_DIR])
#
# Generate the Python protobuf module of the Kubernetes CRI API (runtime.v1) that
# tests/system/tests/containerd/cri.py drives containerd with, into DEST_DIR/api_pb2.py (default
# .cache/cri-client, which .gitignore ignores). Prints DEST_DIR on the last line of stdout; apt and
# protoc output go to stderr. Cached: regenerated only when the containerd source version changes
# (FORCE=1 regenerates).
#   - the .proto is a build input taken from a package registry, never committed: Debian's
#     containerd *source* package (the version of the installed containerd, else the candidate)
#     ships vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto; it comes through apt's own
#     client (a deb-src twin of the Debian entry, as scripts/build-cnitool.sh adds, then
#     `apt-get source --download-only`), and only that one file is taken out of the tarball;
#   - its gogoproto options (Go code-generation hints, file-level only) are dropped: gogo.proto is
#     not in the tarball, and the options do not change the wire format;
#   - Debian packages only: protobuf-compiler (protoc 3.21) for the messages, python3-grpcio and
#     python3-protobuf for the client at run time (cri.py builds its stubs from the service
#     descriptor, so no grpc code generator is needed); installed when missing. No pip.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DEST=${1:-$ROOT/.cache/cri-client}
PROTO=vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto

log() { echo "build-cri-client: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=scripts/lib-apt.sh
source "$ROOT/scripts/lib-apt.sh"
apt_install_missing protobuf-compiler python3-grpcio python3-protobuf

# The containerd source version: the installed binary package's, else the candidate's.
ver=$(dpkg-query -W -f='${source:Version}' containerd 2> /dev/null || true)
if [ -z "$ver" ]; then
  ver=$(apt-cache policy containerd | sed -n 's/^ *Candidate: *//p')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no containerd package known to apt"
fi

if [ -f "$DEST/api_pb2.py" ] && [ -f "$DEST/version" ] && [ "$(cat "$DEST/version")" = "$ver" ] &&
  [ "${FORCE:-0}" != 1 ]; then
  log "$DEST/api_pb2.py is from containerd $ver (FORCE=1 regenerates)"
  echo "$DEST"
  exit 0
fi

ensure_deb_src

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_source_retry "$work" --download-only "containerd=$ver"
orig=$(find "$work" -maxdepth 1 -name 'containerd_*.orig.tar.*' -print -quit)
[ -n "$orig" ] || die "no containerd orig tarball downloaded"
member=$(tar -tf "$orig" | grep -m1 "^[^/]*/$PROTO\$" || true)
[ -n "$member" ] || die "$PROTO is not in $(basename "$orig")"
tar -xf "$orig" -C "$work" "$member"

mkdir -p "$work/gen" "$DEST"
sed '/gogoproto/d' "$work/$member" > "$work/gen/api.proto"
grep -q '^service RuntimeService' "$work/gen/api.proto" || die "no RuntimeService in $member"
(cd "$work/gen" && protoc --python_out=. api.proto) >&2
mv -f "$work/gen/api_pb2.py" "$DEST/api_pb2.py"
echo "$ver" > "$DEST/version"
log "generated $DEST/api_pb2.py from containerd $ver ($member)"
echo "$DEST"
