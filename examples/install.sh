#!/bin/bash
# examples/install.sh — install the plugins into $PREFIX (default /opt/cni/bin).
#
#   sudo examples/install.sh                 build (static, release) and install eni, branch-eni,
#                                            bridge, ipam, loopback
#   sudo ECS_NAMES=1 examples/install.sh     also link them under the names the ECS agent uses:
#                                            ecs-eni, vpc-eni -> eni; vpc-branch-eni -> branch-eni;
#                                            ecs-ipam -> ipam; ecs-bridge -> bridge
#   PREFIX=/usr/libexec/cni BIN=dir ...      another target directory / prebuilt binaries in dir
# A binary called by an ECS name reads that plugin's config dialect (it looks at its own name).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PREFIX=${PREFIX:-/opt/cni/bin}
if [ -z "${BIN:-}" ]; then
  BIN=$(cd "$ROOT" && cargo xtask release | tail -n 1)
fi
install -d -m 0755 "$PREFIX"
for p in eni branch-eni bridge ipam loopback; do
  if [ -x "$BIN/$p" ]; then
    install -m 0755 "$BIN/$p" "$PREFIX/$p"
    echo "installed $PREFIX/$p"
  else
    echo "install: $BIN/$p not built, skipped" >&2
  fi
done
if [ -n "${ECS_NAMES:-}" ]; then
  for pair in eni:ecs-eni eni:vpc-eni branch-eni:vpc-branch-eni ipam:ecs-ipam bridge:ecs-bridge; do
    src=${pair%%:*} dst=${pair##*:}
    [ -x "$PREFIX/$src" ] || continue
    ln -sfn "$src" "$PREFIX/$dst"
    echo "linked  $PREFIX/$dst -> $src"
  done
fi
