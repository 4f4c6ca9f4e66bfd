#!/bin/sh
# Side-by-side latency of conf/bridge.conflist without its portmap entry (loopback + bridge + host-local):
# netlab's plugins against the reference Go plugins (Debian containernetworking-plugins,
# /usr/lib/cni), both driven by the same runtime (cni-bench, i.e. netlab's CNIRuntime).
# Each suite runs in its own throw-away host netns with N container netns (never the
# machine's own netns); ADD for every container, then DEL for every container.
#
# Usage: scripts/bench-bridge.sh [N]     (default 50; needs root)
set -eu
cd "$(dirname "$0")/.."
. scripts/env.sh

N=${1:-${N:-50}}
REF_DIR=/usr/lib/cni

if [ ! -x "$REF_DIR/bridge" ] || [ ! -x "$REF_DIR/host-local" ]; then
    echo "installing the reference plugins (containernetworking-plugins)..." >&2
    apt-get install -y containernetworking-plugins >/dev/null
fi

echo "building release plugins..." >&2
for p in bridge host-local loopback cni-bench; do
    swift build -c release --static-swift-stdlib --product "$p" >/dev/null
done
BIN=$(swift build -c release --show-bin-path)

TAG="nlbench$$"
WORK=$(mktemp -d /tmp/${TAG}.XXXXXX)

cleanup() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^${TAG}-" || true); do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# run_suite NAME PLUGIN_DIRS -> prints "ADD med p95 n" and "DEL med p95 n"
run_suite() {
    name=$1 dirs=$2
    host="${TAG}-${name}-host"
    ip netns add "$host"
    ip -n "$host" link set lo up
    paths=""
    i=0
    while [ $i -lt "$N" ]; do
        ns="${TAG}-${name}-c$i"
        ip netns add "$ns"
        paths="$paths /run/netns/$ns"
        i=$((i + 1))
    done
    mkdir -p "$WORK/$name/data" "$WORK/$name/cache"
    # The shipped conflist, with a private data dir and network name.
    python3 - "$WORK/$name/data" "bench-$name" > "$WORK/$name/net.conflist" <<'PY'
import json, sys
c = json.load(open("conf/bridge.conflist"))
c["name"] = sys.argv[2]
# The shipped list ends with portmap; this benchmark measures loopback + bridge + host-local.
c["plugins"] = [p for p in c["plugins"] if p.get("type") != "portmap"]
for p in c["plugins"]:
    if p.get("type") == "bridge":
        p["ipam"]["dataDir"] = sys.argv[1]
print(json.dumps(c))
PY
    # shellcheck disable=SC2086
    ip netns exec "$host" "$BIN/cni-bench" "$WORK/$name/net.conflist" "$dirs" "$WORK/$name/cache" $paths
    for ns in $(ip netns list | awk '{print $1}' | grep "^${TAG}-${name}-" || true); do ip netns del "$ns"; done
}

echo "running $N containers per suite..." >&2
OURS=$(run_suite netlab "$BIN")
REF=$(run_suite reference "$REF_DIR")

python3 - "$OURS" "$REF" "$N" <<'PY'
import sys
def parse(text):
    out = {}
    for line in text.strip().splitlines():
        verb, med, p95, n = line.split()
        out[verb] = (float(med), float(p95), int(n))
    return out
ours, ref, n = parse(sys.argv[1]), parse(sys.argv[2]), sys.argv[3]
print(f"bridge + host-local + loopback (conf/bridge.conflist), {n} containers, driver: cni-bench (CNIRuntime)")
print(f"{'verb':<5} {'netlab median':>14} {'p95':>8} {'reference median':>17} {'p95':>8} {'ratio (median)':>15}")
for verb in ("ADD", "DEL"):
    o, r = ours[verb], ref[verb]
    print(f"{verb:<5} {o[0]:>11.2f} ms {o[1]:>5.2f} ms {r[0]:>14.2f} ms {r[1]:>5.2f} ms {o[0] / r[0]:>15.2f}")
PY
