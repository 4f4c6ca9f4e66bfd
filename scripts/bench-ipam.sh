#!/bin/sh
# host-local ADD latency on a /16 holding 10,000 reservations against the same /16 empty,
# side by side in one run: the two data dirs take turns call by call, so load on the machine
# falls on both alike. Each round is one ADD and its DEL per data dir; only the ADD is timed.
# The 10,000 reservations are scattered at random over the /16 (as containers come and go),
# with last_reserved_ip where a plugin would have left it.
#
# Usage: scripts/bench-ipam.sh [ROUNDS] [RESERVATIONS]    (defaults 200 and 10000)
#   BIN=<dir> picks the host-local to measure (default: a release build, made here).
# host-local needs no netns and touches nothing but the temporary data dirs.
set -eu
cd "$(dirname "$0")/.."
. scripts/env.sh

ROUNDS=${1:-200}
RESERVATIONS=${2:-10000}
if [ -z "${BIN:-}" ]; then
    echo "building release host-local..." >&2
    swift build -c release --static-swift-stdlib --product host-local >/dev/null
    BIN=$(swift build -c release --show-bin-path)
fi
WORK=$(mktemp -d /tmp/nlbench-ipam.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$BIN/host-local" "$WORK" "$ROUNDS" "$RESERVATIONS" <<'PY'
import os, random, statistics, subprocess, sys, time
plugin, work, rounds, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
network, subnet = "bench", "10.200.0.0/16"

def config(data_dir):
    return ('{"cniVersion":"1.0.0","name":"%s","type":"host-local","ipam":{"type":"host-local",'
            '"dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}' % (network, data_dir, subnet)).encode()

def call(command, data_dir, cid):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/proc/self/ns/net",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent", "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    r = subprocess.run([plugin], input=config(data_dir), env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit("host-local %s failed: %s" % (command, r.stdout.decode()))
    return elapsed

empty, full = os.path.join(work, "empty"), os.path.join(work, "full")
os.makedirs(os.path.join(full, network))
hosts = ["10.200.%d.%d" % (i >> 8, i & 255) for i in range(2, 65534)]
taken = random.Random(1).sample(hosts, count)
for i, ip in enumerate(taken):
    with open(os.path.join(full, network, ip), "w") as f:
        f.write("filler-%d\r\neth0" % i)
with open(os.path.join(full, network, "last_reserved_ip.0"), "w") as f:
    f.write(taken[-1])

times = {empty: [], full: []}
for r in range(rounds):
    order = (empty, full) if r % 2 == 0 else (full, empty)
    for d in order:
        times[d].append(call("ADD", d, "bench-%d" % r))
        call("DEL", d, "bench-%d" % r)
reserved = len([n for n in os.listdir(os.path.join(full, network)) if n[0].isdigit()])
assert reserved == count, reserved
m0, m1 = statistics.median(times[empty]) * 1000, statistics.median(times[full]) * 1000
print("host-local ADD, median of %d (each followed by its DEL, untimed), %s" % (rounds, plugin))
print("  0 reservations:      %.2f ms" % m0)
print("  %d reservations: %.2f ms" % (count, m1))
print("  ratio: %.2fx (target <= 1.20x)" % (m1 / m0))
PY
