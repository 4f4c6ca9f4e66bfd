#!/usr/bin/env bash
# The main job: build and install the release binaries into out/bin, then run the end-to-end
# demo in network namespaces it creates and removes (never the machine's own).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install.sh out/bin
if [ -x out/bin/netlab ] && out/bin/netlab demo --help >/dev/null 2>&1; then
  exec out/bin/netlab demo --cni-path "$PWD/out/bin"
fi
# Until the runtime's demo exists: loopback through ADD/CHECK/DEL against a fresh netns.
NS="netlab-demo-$$"
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
CONF='{"cniVersion":"1.0.0","name":"demo-lo","type":"loopback"}'
run() { echo "\$ CNI_COMMAND=$1 loopback"; echo "$CONF" | CNI_COMMAND=$1 CNI_CONTAINERID=demo CNI_NETNS=/run/netns/$NS CNI_IFNAME=lo CNI_PATH=out/bin out/bin/loopback; echo "  exit $?"; }
ip -n "$NS" -br link show lo
run ADD; ip -n "$NS" -br link show lo
run CHECK
run DEL; ip -n "$NS" -br link show lo
