#!/bin/sh
# Side-by-side latency of conf/bridge.conflist without its portmap entry (loopback + bridge + host-local):
# netlab's plugins against the reference Go plugins (Debian containernetworking-plugins,
# /usr/lib/cni), both driven by the same runtime (cni-bench, i.e. netlab's CNIRuntime).
# Each suite runs in its own throw-away host netns with N container netns (never the
# machine's own netns); ADD for every container, then DEL for every container.
#
# Usage: scripts/bench-bridge.sh [N]     (default 50; needs root)
#   BASELINE=DIR  also runs the plugins in DIR (another netlab build, e.g. an earlier commit's
#                 release products) as a third suite, to show a change's effect in one run.
#   ROUNDS=R      runs every suite R times, alternating (default 1), and reports the median
#                 of the rounds' medians, so a machine whose load drifts hits all suites alike.
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
ROUNDS=${ROUNDS:-1}
SUITES="netlab:$BIN reference:$REF_DIR"
[ -n "${BASELINE:-}" ] && SUITES="$SUITES baseline:$BASELINE"
OUT="$WORK/results"
: > "$OUT"
r=1
while [ $r -le "$ROUNDS" ]; do
    for s in $SUITES; do
        name=${s%%:*} dirs=${s#*:}
        run_suite "$name$r" "$dirs" | sed "s/^/$name /" >> "$OUT"
    done
    r=$((r + 1))
done

python3 - "$OUT" "$N" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    suite, verb, med, p95, n = line.split()
    rows.setdefault((suite, verb), []).append((float(med), float(p95)))
n, rounds = sys.argv[2], sys.argv[3]
suites = [s for s in ("netlab", "baseline", "reference") if (s, "ADD") in rows]
print(f"bridge + host-local + loopback (conf/bridge.conflist without portmap), {n} containers, "
      f"{rounds} round(s) alternating, driver: cni-bench (CNIRuntime); medians of the rounds' medians")
print(f"{'verb':<5}" + "".join(f"{s + ' median':>18}{'p95':>10}" for s in suites) + f"{'netlab/reference':>18}"
      + (f"{'netlab/baseline':>17}" if "baseline" in suites else ""))
for verb in ("ADD", "DEL"):
    med = {s: statistics.median(m for m, _ in rows[(s, verb)]) for s in suites}
    p95 = {s: statistics.median(p for _, p in rows[(s, verb)]) for s in suites}
    line = f"{verb:<5}" + "".join(f"{med[s]:>15.2f} ms{p95[s]:>7.2f} ms" for s in suites)
    line += f"{med['netlab'] / med['reference']:>18.2f}"
    if "baseline" in suites:
        line += f"{med['netlab'] / med['baseline']:>17.2f}"
    print(line)
PY
