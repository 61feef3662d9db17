#!/bin/bash
# examples/install.sh — install the plugins into $PREFIX (default /opt/cni/bin).
#
#   sudo examples/install.sh                 build (static, release) and install eni, branch-eni,
#                                            bridge, ipam, loopback
#   sudo ECS_NAMES=1 examples/install.sh     also link them under the names the ECS agent uses:
#                                            ecs-eni, vpc-eni -> eni; vpc-branch-eni -> branch-eni;
#                                            ecs-ipam -> ipam; ecs-bridge -> bridge
#                                            (packaging/task-cni-ecs-names: it refuses to replace a
#                                            file that is not its own link; ECS_NAMES=force does)
#   PREFIX=/usr/libexec/cni BIN=dir ...      another target directory / prebuilt binaries in dir
# A binary called by an ECS name reads that plugin's config dialect (it looks at its own name).
#
# Safe on a live node: each binary is copied to a temporary name in $PREFIX and renamed over the
# old one (mv -T within one file system is rename(2), atomic), so a runtime calling a plugin
# meanwhile executes the old or the new binary, never a missing or half-written one. The links
# are made the same way.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PREFIX=${PREFIX:-/opt/cni/bin}
if [ -z "${BIN:-}" ]; then
  BIN=$(cd "$ROOT" && cargo xtask release | tail -n 1)
fi
install -d -m 0755 "$PREFIX"
tmp=
trap '[ -z "$tmp" ] || rm -f "$tmp"' EXIT
for p in eni branch-eni bridge ipam loopback; do
  if [ -x "$BIN/$p" ]; then
    tmp="$PREFIX/.$p.install-new"
    install -m 0755 "$BIN/$p" "$tmp"
    mv -fT "$tmp" "$PREFIX/$p"
    tmp=
    echo "installed $PREFIX/$p"
  else
    echo "install: $BIN/$p not built, skipped" >&2
  fi
done
case ${ECS_NAMES:-} in
  "") ;;
  force) sh "$ROOT/packaging/task-cni-ecs-names" install --dir "$PREFIX" --force ;;
  *) sh "$ROOT/packaging/task-cni-ecs-names" install --dir "$PREFIX" ;;
esac
