#!/bin/bash
# Scaling benchmark: netlab portmap vs the reference Go portmap (Debian containernetworking-plugins).
#
#  1. ADD latency for one more container with one mapping when 0, 100, 500, 1000 containers
#     already have mappings (portmap alone, synthetic prevResults; median of SAMPLES ADDs, each
#     undone again with an untimed DEL so the population stays exact).
#  2. Datapath: new TCP connections per second from an "outside" netns through a published port
#     to a real container, with no other mappings and with 1000 other mappings (two host netns
#     side by side, measured in alternating rounds).
#
# Each implementation runs in its own fresh netns ("host", "outside", one real container);
# nothing touches the machine's own network namespace. Usage:
#   scripts/bench-portmap.sh [path/to/netlab/portmap]    (default: release build)
# Env: POINTS="0 100 500 1000" SAMPLES=7 CONN_SECONDS=3 CONN_ROUNDS=3 IMPLS="netlab reference"
#      BASELINE=path/to/another/netlab/portmap adds it as a third implementation, "baseline"
#      (an earlier build: a change's effect measured in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
OURS=${1:-}
if [ -z "$OURS" ]; then
    export PATH=/opt/swift/usr/bin:$PATH
    # As shipped: static Swift stdlib, so start-up does not pay for loading Swift's .so files.
    swift build -c release --static-swift-stdlib --product portmap >&2
    OURS="$(swift build -c release --static-swift-stdlib --show-bin-path)/portmap"
fi
REF=/usr/lib/cni/portmap
if [ ! -x "$REF" ]; then
    apt-get install -y containernetworking-plugins >&2
fi
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

exec python3 - "$OURS" "$REF" <<'PY'
import json, os, signal, socket, statistics, subprocess, sys, time

OURS, REF = sys.argv[1], sys.argv[2]
POINTS = [int(x) for x in os.environ.get("POINTS", "0 100 500 1000").split()]
SAMPLES = int(os.environ.get("SAMPLES", "7"))
CONN_SECONDS = float(os.environ.get("CONN_SECONDS", "3"))
CONN_ROUNDS = int(os.environ.get("CONN_ROUNDS", "3"))
BASELINE = os.environ.get("BASELINE", "")
IMPLS = os.environ.get("IMPLS", "netlab baseline reference" if BASELINE else "netlab reference").split()
TAG = "nlbench%d" % os.getpid()

def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit("failed: %s\n%s%s" % (cmd, r.stdout, r.stderr))
    return r

class World:
    def __init__(self, impl, role):
        self.impl = impl
        base = TAG + impl[:3] + role
        self.host, self.out, self.ctr = base + "h", base + "o", base + "c"
        self.servers = []
        for ns in (self.host, self.out, self.ctr):
            sh("ip netns add %s && ip -n %s link set lo up" % (ns, ns))
        h, o, c = self.host, self.out, self.ctr
        sh(f"""set -e
        ip -n {h} link add br0 type bridge; ip -n {h} addr add 10.1.0.1/16 dev br0; ip -n {h} link set br0 up
        ip -n {h} link add up0 type veth peer name eth0 netns {o}
        ip -n {h} addr add 192.168.77.2/24 dev up0; ip -n {h} link set up0 up
        ip -n {o} addr add 192.168.77.1/24 dev eth0; ip -n {o} link set eth0 up
        ip -n {h} link add vc0 type veth peer name eth0 netns {c}
        ip -n {h} link set vc0 master br0 up
        ip -n {c} addr add 10.1.200.2/16 dev eth0; ip -n {c} link set eth0 up
        ip -n {c} route add default via 10.1.0.1
        ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1""")

    def cleanup(self):
        for p in self.servers:
            try:
                os.kill(p.pid, signal.SIGKILL); p.wait()
            except ProcessLookupError:
                pass
        for ns in (self.ctr, self.out, self.host):
            sh("ip netns del " + ns, check=False)

    def conf(self, cid, ip, host_port, netns):
        prev = {"cniVersion": "1.0.0",
                "interfaces": [{"name": "br0"}, {"name": "veth" + cid[-6:]}, {"name": "eth0", "sandbox": netns}],
                "ips": [{"address": ip + "/16", "gateway": "10.1.0.1", "interface": 2}]}
        return json.dumps({"cniVersion": "1.0.0", "name": "benchnet", "type": "portmap",
                           "capabilities": {"portMappings": True},
                           "runtimeConfig": {"portMappings": [{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
                           "prevResult": prev})

    def plugin(self, cmd, k, ip=None, host_port=None):
        exe = {"netlab": OURS, "baseline": BASELINE, "reference": REF}[self.impl]
        cid = "bench%06d" % k
        netns = "/run/netns/" + self.ctr
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": cmd, "CNI_CONTAINERID": cid,
               "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": os.path.dirname(exe)}
        ip = ip or "10.1.%d.%d" % (1 + k // 250, 2 + k % 250)
        host_port = host_port or 10000 + k
        t0 = time.perf_counter()
        r = subprocess.run(["ip", "netns", "exec", self.host, exe], input=self.conf(cid, ip, host_port, netns),
                           env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit("%s %s %s failed: %s %s" % (self.impl, cmd, cid, r.stdout, r.stderr))
        return dt

    def serve(self):
        py = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
              "s.bind(('0.0.0.0',80)); s.listen(4096)\nwhile True:\n c,_=s.accept(); c.sendall(b'x'); c.close()\n")
        p = subprocess.Popen(["ip", "netns", "exec", self.ctr, "python3", "-c", py])
        self.servers.append(p)
        time.sleep(0.5)

    def conns_per_second(self):
        # Start each measurement from an empty conntrack table in this host netns, so the
        # second one does not run against the first one's closing flows.
        sh("ip netns exec %s conntrack -F" % self.host, check=False)
        time.sleep(1)
        py = ("import socket,time,sys\nend=time.time()+float(sys.argv[1]); n=0; t0=time.time()\n"
              "while time.time()<end:\n s=socket.create_connection(('192.168.77.2',8080),timeout=2)\n"
              " s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')\n"
              " s.recv(1); s.close(); n+=1\nprint(n/(time.time()-t0))\n")
        r = sh("ip netns exec %s python3 -c \"%s\" %s" % (self.out, py.replace('"', '\\"'), CONN_SECONDS))
        return float(r.stdout.strip())

def latency(impl):
    # w: the latency world, which ends with 1000 mappings; bare: the same host with only the
    # one real mapping. Both stay up for the datapath rounds below.
    w, bare = World(impl, "w"), World(impl, "b")
    try:
        for x in (w, bare):
            x.serve()
            x.plugin("ADD", 999999, ip="10.1.200.2", host_port=8080)   # the real container, port 8080
        lat, have = {}, 0
        for point in POINTS:
            while have < point:
                w.plugin("ADD", have); have += 1
            samples = []
            for s in range(SAMPLES):
                k = 5000 + s
                samples.append(w.plugin("ADD", k))
                w.plugin("DEL", k)
            lat[point] = statistics.median(samples) * 1000
            print("  %-9s ADD with %4d existing: median %7.1f ms (min %.1f, max %.1f)" %
                  (impl, point, lat[point], min(samples) * 1000, max(samples) * 1000), file=sys.stderr, flush=True)
        return w, bare, lat, have
    except BaseException:
        w.cleanup(); bare.cleanup()
        raise

results, worlds = {}, {}
try:
    for impl in IMPLS:
        print("running %s ..." % impl, file=sys.stderr, flush=True)
        worlds[impl] = latency(impl)
    # The datapath of every world, in alternating rounds across implementations, so load
    # changes on the machine hit every series alike.
    dp = {impl: ([], []) for impl in IMPLS}
    for _ in range(CONN_ROUNDS):
        for impl in IMPLS:
            w, bare, _, _ = worlds[impl]
            dp[impl][0].append(bare.conns_per_second())
            dp[impl][1].append(w.conns_per_second())
    for impl in IMPLS:
        w, bare, lat, have = worlds[impl]
        print("  %-9s conn/s rounds: none %s, %d others %s" % (impl, [round(x) for x in dp[impl][0]], have,
              [round(x) for x in dp[impl][1]]), file=sys.stderr, flush=True)
        results[impl] = (lat, statistics.median(dp[impl][0]), statistics.median(dp[impl][1]), have)
finally:
    for w, bare, _, _ in worlds.values():
        w.cleanup(); bare.cleanup()

print("\nportmap ADD latency (median of %d, ms) by containers already mapped" % SAMPLES)
print("%-10s" % "existing" + "".join("%12s" % i for i in IMPLS))
for p in POINTS:
    print("%-10d" % p + "".join("%12.1f" % results[i][0][p] for i in IMPLS))
for i in IMPLS:
    lat = results[i][0]
    print("%s: ADD at %d / ADD at %d = %.2f" % (i, POINTS[-1], POINTS[0], lat[POINTS[-1]] / lat[POINTS[0]]))
print("\nnew TCP connections/s through a published port (outside -> host:8080 -> container:80), median of %d rounds alternating across all worlds" % CONN_ROUNDS)
for i in IMPLS:
    _, dp0, dpN, n = results[i]
    print("%-10s no other mappings: %8.0f/s   %d other mappings: %8.0f/s   ratio %.2f" % (i, dp0, n, dpN, dpN / dp0))
PY
