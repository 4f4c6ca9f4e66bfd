#!/usr/bin/env bash
# The main job: build and install the release binaries into out/bin, then run `netlab demo`:
# every network mode (none, host, container, bridge with masquerade and a published port) on
# two simulated hosts it creates and removes (network namespaces; never the machine's own).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install.sh --force out/bin  # --force: out/bin may hold binaries of an older layout
exec out/bin/netlab demo --cni-path "$PWD/out/bin" "$@"
