#!/usr/bin/env bash
# The overlay's figures, side by side in one run, all inside namespaces this script creates
# and removes (an underlay netns with a bridge, simulated host netns joined to it by veth,
# container netns attached by cni-run through conf/flannel.conflist); every process it starts
# is ended by its PID, and no traffic leaves these namespaces.
#
#  (a) iperf3 TCP throughput container → container across two hosts: over the overlay
#      (VXLAN) and over the same underlay veths routed without encapsulation (a policy rule
#      sends the pod-to-pod traffic via the peer's underlay address), alternating rounds.
#  (b) convergence: from a new host's `overlayd` start, through ADD of its first container
#      (as soon as subnet.env appears), until a container on another host gets a ping answer
#      from it; p50/p95 over TRIALS new hosts, on the embedded store and on etcd.
#  (c) 1,000 peers written straight into the store (embedded, then etcd), then one daemon
#      started: time until its flannel.1 routes number 1,000, and its peak RSS (VmHWM).
#
# Usage: scripts/bench-overlay.sh        (needs root; iperf3 and etcd-server from scripts/setup.sh)
#   ROUNDS=R   throughput rounds per path (default 3, 5 s each)
#   TRIALS=T   convergence trials per store (default 20)
#   PEERS=P    peers for (c) (default 1000)
#   BIN=DIR    use the products in DIR instead of building release ones
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

ROUNDS=${ROUNDS:-3}
TRIALS=${TRIALS:-20}
PEERS=${PEERS:-1000}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
ETCD_URL=http://198.18.0.254:2379
CONFIG='{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'
for tool in iperf3 etcd python3 curl; do
    command -v "$tool" >/dev/null || { echo "bench-overlay: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

if [ -z "${BIN:-}" ]; then
    echo "building release products..." >&2
    for p in overlayd cni-run flannel bridge host-local loopback portmap; do
        swift build -c release --static-swift-stdlib --product "$p" >/dev/null
    done
    BIN=$(swift build -c release --show-bin-path)
fi
BIN=$(cd "$BIN" && pwd)

TAG="nlov$$"
WORK=$(mktemp -d "/tmp/${TAG}.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in $(ip netns list | awk '{print $1}' | grep "^${TAG}-" || true); do ip netns del "$ns" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

now_ns() { date +%s%N; }
in_ns() { local ns=$1; shift; ip netns exec "${TAG}-$ns" "$@"; }

# new_world NAME: the underlay netns NAME-u with bridge br0 (198.18.0.254/24).
new_world() {
    local u="${TAG}-$1-u"
    mkdir -p "$WORK/$1"
    ip netns add "$u"
    ip -n "$u" link set lo up
    ip -n "$u" link add br0 type bridge
    ip -n "$u" addr add 198.18.0.254/24 dev br0
    ip -n "$u" link set br0 up
}

# new_host WORLD NAME N: host netns WORLD-NAME, eth0 198.18.0.N/24 on the world's bridge.
new_host() {
    local u="${TAG}-$1-u" h="${TAG}-$1-$2"
    ip netns add "$h"
    ip -n "$h" link set lo up
    ip -n "$u" link add "v$2" type veth peer name eth0 netns "$h"
    ip -n "$u" link set "v$2" master br0 up
    ip -n "$h" addr add "198.18.0.$3/24" dev eth0
    ip -n "$h" link set eth0 up
    mkdir -p "$WORK/$1/$2"
}

# start_daemon WORLD NAME STORE-FLAGS...: overlayd in the host netns; its PID in DAEMON_PID.
start_daemon() {
    local w=$1 n=$2; shift 2
    ip netns exec "${TAG}-$w-$n" "$BIN/overlayd" "$@" --iface eth0 --subnet-file "$WORK/$w/$n/subnet.env" \
        --state-dir "$WORK/$w/$n/state" >"$WORK/$w/$n/overlayd.log" 2>&1 &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# wait_for SECONDS COMMAND...: polls every 5 ms; fails loudly on timeout.
wait_for() {
    local limit=$(( $(now_ns) + $1 * 1000000000 )); shift
    until "$@"; do
        if [ "$(now_ns)" -gt "$limit" ]; then echo "bench-overlay: timed out waiting for: $*" >&2; return 1; fi
        sleep 0.005
    done
}

# conflist WORLD NAME: conf/flannel.conflist with the host's subnet.env and data directories.
conflist() {
    python3 - "$WORK/$1/$2" > "$WORK/$1/$2/flannel.conflist" <<'PY'
import json, sys
d = sys.argv[1]
c = json.load(open("conf/flannel.conflist"))
for p in c["plugins"]:
    if p["type"] == "flannel":
        p["subnetFile"] = d + "/subnet.env"
        p["dataDir"] = d + "/flannel"
        p["ipam"] = {"dataDir": d + "/ipam"}
print(json.dumps(c))
PY
}

# attach WORLD NAME: a container netns WORLD-NAME-c added by cni-run; its IPv4 address in ADDR.
attach() {
    local w=$1 n=$2 c="${TAG}-$1-$2-c"
    ip netns add "$c"
    [ -f "$WORK/$w/$n/flannel.conflist" ] || conflist "$w" "$n"
    local out
    out=$(ip netns exec "${TAG}-$w-$n" env CNI_PATH="$BIN" "$BIN/cni-run" add "$WORK/$w/$n/flannel.conflist" \
        "ctr-$n" "/run/netns/$c" "$WORK/$w/$n/cache") || { echo "cni-run add on $w/$n failed: $out" >&2; return 1; }
    ADDR=$(printf '%s' "$out" | grep -o '"address" *: *"[0-9.]*/' | head -1 | grep -o '[0-9.]*/' | tr -d /)
    [ -n "$ADDR" ] || { echo "no IPv4 address in: $out" >&2; return 1; }
}

# start_etcd WORLD: etcd in the world's underlay netns on $ETCD_URL.
start_etcd() {
    local peer=http://127.0.0.1:2380
    ip netns exec "${TAG}-$1-u" etcd --name b --data-dir "$WORK/$1/etcd" --listen-client-urls "$ETCD_URL" \
        --advertise-client-urls "$ETCD_URL" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "b=$peer" --logger zap --log-level warn >"$WORK/$1/etcd.log" 2>&1 &
    PIDS+=("$!")
    wait_for 20 etcd_healthy "$1"
}
etcd_healthy() { ip netns exec "${TAG}-$1-u" curl -s --max-time 1 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; }

# put_config WORLD CONFIG STORE-FLAGS...
put_config() {
    local w=$1 cfg=$2; shift 2
    printf '%s' "$cfg" | ip netns exec "${TAG}-$w-u" "$BIN/overlayd" config put - "$@" >/dev/null
}

tx_packets() { in_ns "$1" cat /sys/class/net/flannel.1/statistics/tx_packets; }

# ---------------------------------------------------------------- (a) throughput
throughput() {
    new_world tp
    local store=(--store-path "$WORK/tp/leases.db")
    put_config tp "$CONFIG" "${store[@]}"
    new_host tp h1 11; new_host tp h2 12
    start_daemon tp h1 "${store[@]}"; start_daemon tp h2 "${store[@]}"
    wait_for 15 test -f "$WORK/tp/h1/subnet.env"; wait_for 15 test -f "$WORK/tp/h2/subnet.env"
    attach tp h1; local a1=$ADDR
    attach tp h2; local a2=$ADDR
    local s1 s2
    s1=$(. "$WORK/tp/h1/subnet.env"; python3 -c "import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)" "$FLANNEL_SUBNET")
    s2=$(. "$WORK/tp/h2/subnet.env"; python3 -c "import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)" "$FLANNEL_SUBNET")
    wait_for 10 in_ns tp-h1-c ping -c 1 -W 1 "$a2" >/dev/null
    # The unencapsulated path: table 100 on each host routes the peer's pod subnet via the
    # peer's underlay address; a rule selects it for pod-to-pod traffic only while it is in place.
    in_ns tp-h1 ip route add "$s2" via 198.18.0.12 dev eth0 table 100
    in_ns tp-h2 ip route add "$s1" via 198.18.0.11 dev eth0 table 100
    in_ns tp-h2-c iperf3 -s >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_for 5 in_ns tp-h2-c sh -c "ss -Htln | grep -q ':5201'"
    local r path rate before after overlay=() routed=()
    for r in $(seq "$ROUNDS"); do
        for path in overlay routed; do
            if [ "$path" = routed ]; then
                in_ns tp-h1 ip rule add from "$s1" to "$s2" lookup 100 pref 100
                in_ns tp-h2 ip rule add from "$s2" to "$s1" lookup 100 pref 100
            fi
            before=$(tx_packets tp-h1)
            rate=$(in_ns tp-h1-c iperf3 -c "$a2" -t "$SECONDS_PER_ROUND" -J |
                python3 -c "import json,sys; print('%.0f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second'] / 1e6))")
            after=$(tx_packets tp-h1)
            if [ "$path" = routed ]; then
                in_ns tp-h1 ip rule del pref 100
                in_ns tp-h2 ip rule del pref 100
                routed+=("$rate")
            else
                overlay+=("$rate")
            fi
            printf '  round %d %-8s %6d Mbit/s   (flannel.1 tx packets during the round: %d)\n' "$r" "$path" "$rate" $((after - before))
        done
    done
    python3 - "${overlay[*]}" "${routed[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
r = [float(x) for x in sys.argv[2].split()]
mo, mr = statistics.median(o), statistics.median(r)
print(f"  median: overlay {mo:.0f} Mbit/s, routed {mr:.0f} Mbit/s, ratio {mo / mr:.2f}x (goal >= 0.95x)")
PY
}

# ---------------------------------------------------------------- (b) convergence
# convergence STORE-NAME: TRIALS new hosts joining a running one, each timed.
convergence() {
    local w="cv$1" store
    new_world "$w"
    if [ "$1" = etcd ]; then start_etcd "$w"; store=(--etcd-endpoints "$ETCD_URL"); else store=(--store-path "$WORK/$w/leases.db"); fi
    put_config "$w" "$CONFIG" "${store[@]}"
    new_host "$w" a 11
    start_daemon "$w" a "${store[@]}"
    wait_for 15 test -f "$WORK/$w/a/subnet.env"
    attach "$w" a
    local t times=() envs=() adds=() start target pid
    for t in $(seq "$TRIALS"); do
        new_host "$w" "n$t" $((20 + t))
        start=$(now_ns)
        start_daemon "$w" "n$t" "${store[@]}"
        pid=$DAEMON_PID
        wait_for 10 test -f "$WORK/$w/n$t/subnet.env"
        envs+=($(( ($(now_ns) - start) / 1000000 )))
        attach "$w" "n$t"
        adds+=($(( ($(now_ns) - start) / 1000000 )))
        target=$ADDR
        # One probe every 10 ms until the first answer (-c 1 with a deadline ends at the first reply).
        in_ns "$w-a-c" ping -n -q -i 0.01 -c 1 -w 10 "$target" >/dev/null ||
            { echo "bench-overlay: $target never answered (trial $t)" >&2; return 1; }
        times+=($(( ($(now_ns) - start) / 1000000 )))
        stop_pid "$pid"
        ip netns del "${TAG}-$w-n$t-c"
        ip netns del "${TAG}-$w-n$t"
    done
    python3 - "$1" "${times[*]}" "${envs[*]}" "${adds[*]}" <<'PY'
import math, sys
def pct(v, p):
    v = sorted(int(x) for x in v.split())
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]   # nearest rank
t = sys.argv[2]
print(f"  {sys.argv[1]:<8} n={len(t.split())}  p50 {pct(t, 50)} ms  p95 {pct(t, 95)} ms  max {pct(t, 100)} ms"
      f"  (goal p95 < 1000 ms; p50 of the steps: subnet.env {pct(sys.argv[3], 50)} ms, ADD done {pct(sys.argv[4], 50)} ms)")
PY
}

# ---------------------------------------------------------------- (c) 1,000 peers
# The leases, as overlayd writes them: subnet 10.<i/256+1>.<i%256>.0/24, PublicIP
# 198.19.<i/250>.<i%250+1>, VTEP MAC 0e:00:00:00:hi:lo.
LEASES_PY='
import json, sys
def leases(n, prefix="/coreos.com/network"):
    for i in range(n):
        hi, lo = i >> 8, i & 0xff
        key = f"{prefix}/subnets/10.{hi + 1}.{lo}.0-24"
        value = json.dumps({"PublicIP": f"198.19.{i // 250}.{i % 250 + 1}", "PublicIPv6": None, "BackendType": "vxlan",
                            "BackendData": {"VNI": 1, "VtepMAC": f"0e:00:00:00:{hi:02x}:{lo:02x}"}},
                           separators=(",", ":"))
        yield key, value
'

# Into the embedded store's SQLite file, in its one way of writing: every put at the next
# revision with its event, the revision stored, one transaction.
write_embedded() {
    python3 - "$1" "$PEERS" <<PY
$LEASES_PY
import sqlite3, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
rev = db.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()[0]
ttl = 24 * 3600 * 1000
expires = int(time.time() * 1000) + ttl
for key, value in leases(int(sys.argv[2])):
    rev += 1
    k, v = key.encode(), value.encode()
    db.execute("INSERT INTO kv(key, value, create_revision, mod_revision, ttl_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
               (k, v, rev, rev, ttl, expires))
    db.execute("INSERT INTO events(revision, kind, key, value, create_revision) VALUES (?, 0, ?, ?, ?)", (rev, k, v, rev))
db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (rev,))
db.execute("COMMIT")
PY
}

# Into etcd through its v3 JSON gateway (from the world's underlay netns), every key on one 24 h lease.
write_etcd() {
    in_ns "$1-u" python3 - "$ETCD_URL" "$PEERS" <<PY
$LEASES_PY
import base64, urllib.request
def call(path, body):
    req = urllib.request.Request(sys.argv[1] + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
b64 = lambda s: base64.b64encode(s.encode()).decode()
lease = call("/v3/lease/grant", {"TTL": 24 * 3600})["ID"]
for key, value in leases(int(sys.argv[2])):
    call("/v3/kv/put", {"key": b64(key), "value": b64(value), "lease": lease})
PY
}

route_count() { in_ns "$1" ip route show dev flannel.1 2>/dev/null | wc -l; }
routes_reached() { [ "$(route_count "$1")" -ge "$PEERS" ]; }

# many_peers STORE-NAME
many_peers() {
    local w="mp$1" store
    new_world "$w"
    if [ "$1" = etcd ]; then start_etcd "$w"; store=(--etcd-endpoints "$ETCD_URL"); else store=(--store-path "$WORK/$w/leases.db"); fi
    put_config "$w" '{"Network": "10.0.0.0/8", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}' "${store[@]}"
    if [ "$1" = etcd ]; then write_etcd "$w"; else write_embedded "$WORK/$w/leases.db"; fi
    new_host "$w" h 11
    local start elapsed
    start=$(now_ns)
    start_daemon "$w" h "${store[@]}"
    wait_for 60 routes_reached "$w-h"
    elapsed=$(( ($(now_ns) - start) / 1000000 ))
    local hwm
    hwm=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$DAEMON_PID/status")
    printf '  %-8s %d peers: %d routes after %d ms, peak RSS (VmHWM) %s MiB (goal <= 2000 ms, <= 50 MB)\n' \
        "$1" "$PEERS" "$(route_count "$w-h")" "$elapsed" "$hwm"
    stop_pid "$DAEMON_PID"
}

echo "overlay benchmark ($(nproc) CPUs, products from $BIN)"
echo "(a) iperf3 TCP, container -> container across two hosts, ${ROUNDS} x ${SECONDS_PER_ROUND} s per path, alternating"
[ "${SKIP_A:-0}" = 1 ] || throughput
echo "(b) convergence: new host's overlayd start -> its first container answers a peer container's ping"
[ "${SKIP_B:-0}" = 1 ] || convergence embedded
[ "${SKIP_B:-0}" = 1 ] || convergence etcd
echo "(c) ${PEERS} peers written into the store, then one overlayd started"
many_peers embedded
many_peers etcd
