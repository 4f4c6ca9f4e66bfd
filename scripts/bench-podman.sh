#!/usr/bin/env bash
# podman on netlab's plugins against podman on the reference Go plugins (Debian's
# containernetworking-plugins, /usr/lib/cni), side by side in one run:
#   1. median wall time of `podman run --rm --network bench IMAGE true`, on the conflist podman
#      itself writes (`podman network create`: bridge, portmap, firewall, tuning), the two
#      suites called alternately; and the same minus `--network none` (podman and runc alone),
#      which leaves what the network costs: the plugins' ADD and DEL and podman's netns work;
#   2. installed size of the plugin set (ours: the multi-call netlab-cni with its hard links,
#      as scripts/install.sh installs it; the reference: the same names in /usr/lib/cni);
#   3. VERSION start-up of each plugin name against the reference binary of that name.
# Each suite's podman runs in a sandbox of its own: a host netns and a private mount namespace
# holding podman's configuration, storage and CNI state (the machine's own netns and podman
# state are never touched). Needs root, podman, runc and busybox-static.
#
# Usage: scripts/bench-podman.sh [RUNS] [VERSION_CALLS]     (defaults 21 and 200)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

RUNS=${1:-21}
CALLS=${2:-200}
REF=/usr/lib/cni
for tool in podman runc nsenter unshare python3; do
  command -v "$tool" >/dev/null || { echo "bench-podman.sh: $tool is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "bench-podman.sh: busybox-static is needed" >&2; exit 1; }
[ -x "$REF/bridge" ] || { echo "bench-podman.sh: the reference plugins are needed (containernetworking-plugins)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/netlab-bench-podman.XXXXXX)
TAG=nlbp$$
# The sandboxes mount over these; the ones the machine lacks are made, and removed at the end.
made_dirs=()
for d in /etc/containers /var/lib/containers /run/containers /run/libpod /var/lib/cni /run/cni /etc/cni/net.d /run/netns; do
  p=$d chain=()
  while [ "$p" != / ] && [ ! -e "$p" ]; do chain=("$p" "${chain[@]}"); p=$(dirname "$p"); done
  for c in "${chain[@]}"; do [[ " ${made_dirs[*]} " == *" $c "* ]] || made_dirs+=("$c"); done
done
cleanup() {
  for f in "$WORK"/*/holder.pid; do
    [ -e "$f" ] || continue
    h=$(cat "$f")
    nsenter -t "$h" -m -n podman rm --all --force --time 0 >/dev/null 2>&1 || true
    kill "$h" 2>/dev/null || true
  done
  for ns in "$TAG-ours" "$TAG-ref"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK"
  for ((i = ${#made_dirs[@]} - 1; i >= 0; i--)); do rmdir "${made_dirs[i]}" || true; done
}
trap cleanup EXIT INT TERM

echo "building and installing the release plugins (scripts/install.sh)..." >&2
scripts/install.sh --prefix "$WORK/install" >/dev/null
OURS=$WORK/install/opt/cni/bin

# The busybox-static image.
mkdir -p "$WORK/rootfs/bin"
cp /bin/busybox "$WORK/rootfs/bin/"
ln -s busybox "$WORK/rootfs/bin/true"
ln -s busybox "$WORK/rootfs/bin/sh"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .

# sandbox NAME PLUGIN_DIR: starts the holder of its namespaces; prints its pid.
sandbox() {
  local name=$1 plugins=$2 dir=$WORK/$1
  mkdir -p "$dir"/{etc,storage,run,runlibpod,cni,runcni,netd}
  cat > "$dir/etc/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["$plugins"]
network_config_dir = "/etc/cni/net.d"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  printf '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/containers/storage"\nrunroot = "/run/containers/storage"\n' > "$dir/etc/storage.conf"
  cp /etc/containers/policy.json "$dir/etc/"
  ip netns add "$TAG-$name"
  nsenter --net="/run/netns/$TAG-$name" unshare --mount --propagation private /bin/sh -c "
    set -e
    mount --bind $dir/etc /etc/containers
    mkdir -p /var/lib/containers /run/containers /run/libpod /var/lib/cni /run/cni /etc/cni/net.d /run/netns
    mount --bind $dir/storage /var/lib/containers
    mount --bind $dir/run /run/containers
    mount --bind $dir/runlibpod /run/libpod
    mount --bind $dir/cni /var/lib/cni
    mount --bind $dir/runcni /run/cni
    mount --bind $dir/netd /etc/cni/net.d
    mount -t tmpfs -o mode=0755 netlab-bench-netns /run/netns
    ip link set lo up
    touch $dir/ready
    exec sleep infinity" </dev/null >"$dir/holder.log" 2>&1 &   # not our stdout, which $(sandbox …) reads to its end
  local pid=$!
  echo "$pid" > "$dir/holder.pid"
  for _ in $(seq 100); do [ -e "$dir/ready" ] && break; sleep 0.05; done
  [ -e "$dir/ready" ] || { echo "bench-podman.sh: sandbox $name did not start" >&2; exit 1; }
  nsenter -t "$pid" -m -n podman import --quiet "$WORK/rootfs.tar" localhost/bench:latest >/dev/null
  nsenter -t "$pid" -m -n podman network create --subnet 10.89.77.0/24 bench >/dev/null
  echo "$pid"
}
ours_pid=$(sandbox ours "$OURS")
ref_pid=$(sandbox ref "$REF")
if ! cmp -s "$WORK/ours/netd/bench.conflist" "$WORK/ref/netd/bench.conflist"; then
  echo "bench-podman.sh: podman wrote different conflists for the two suites" >&2; exit 1
fi
NAMES=$("$OURS/netlab-cni" --list)

python3 - "$ours_pid" "$ref_pid" "$RUNS" "$CALLS" "$OURS" "$REF" "$WORK/ours/netd/bench.conflist" $NAMES <<'PY'
import json, os, statistics, subprocess, sys, time
ours_pid, ref_pid, runs, calls, ours, ref, conflist = sys.argv[1:8]
names = sys.argv[8:]
runs, calls = int(runs), int(calls)

def timed(argv, env=None):
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"bench-podman.sh: {' '.join(argv)} failed: {r.stderr.decode()}")
    return elapsed

def podman_run(pid, network="bench"):
    return timed(["nsenter", "-t", pid, "-m", "-n", "podman", "run", "--rm", "--network", network, "localhost/bench", "true"])

def ratio(a, b):
    return f"{a / b:.2f}×"

podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[-1]
plugin_types = [p["type"] for p in json.load(open(conflist))["plugins"]]
print(f"conflist written by podman {podman_version}: {' → '.join(plugin_types)}")
# One warm-up run each (image layers, the bridge, the nftables table).
podman_run(ours_pid); podman_run(ref_pid)
o, r, n = [], [], []
for i in range(runs):
    # Alternate which suite goes first, so neither always follows the other. The same run
    # with --network none (no plugin called) is what podman and runc cost by themselves.
    if i % 2 == 0:
        o.append(podman_run(ours_pid)); r.append(podman_run(ref_pid))
    else:
        r.append(podman_run(ref_pid)); o.append(podman_run(ours_pid))
    n.append(podman_run(ours_pid if i % 2 else ref_pid, "none"))
mo, mr, mn = statistics.median(o), statistics.median(r), statistics.median(n)
print()
print(f"podman run --rm --network bench … true, median of {runs}")
print(f"  {'':28} {'netlab':>9} {'reference':>9} {'ratio':>7}")
print(f"  {'wall time':28} {mo*1000:6.0f} ms {mr*1000:6.0f} ms {ratio(mo, mr):>7}")
print(f"  {'minus --network none (' + format(mn*1000, '.0f') + ' ms)':28} {(mo-mn)*1000:6.0f} ms {(mr-mn)*1000:6.0f} ms {ratio(mo - mn, mr - mn):>7}")

# Installed size: every distinct file (inode) once, as the disk holds it.
def installed(directory, wanted):
    seen, total, files = set(), 0, 0
    for n in wanted:
        st = os.stat(os.path.join(directory, n))
        if st.st_ino not in seen:
            seen.add(st.st_ino); total += st.st_size; files += 1
    return total, files
common = [n for n in names if os.path.exists(os.path.join(ref, n))]
missing = [n for n in names if n not in common]
ours_size, ours_files = installed(ours, names + ["netlab-cni"])
ref_size, ref_files = installed(ref, common)
print()
print(f"installed size of the plugin set ({len(common)} names: {' '.join(common)})")
print(f"  netlab    {ours_size/1e6:6.1f} MB in {ours_files} file (netlab-cni + {len(names)} hard links)")
print(f"  reference {ref_size/1e6:6.1f} MB in {ref_files} files   ratio {ratio(ours_size, ref_size)}")
if missing:
    print(f"  (not in the reference package: {' '.join(missing)}; counted in netlab's size only)")

print()
print(f"VERSION start-up, median of {calls} alternating calls")
print(f"  {'plugin':12} {'netlab':>9} {'reference':>9} {'ratio':>7}")
env = {"CNI_COMMAND": "VERSION"}
for n in common:
    a, b = [], []
    for _ in range(calls):
        a.append(timed([os.path.join(ours, n)], env)); b.append(timed([os.path.join(ref, n)], env))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"  {n:12} {ma*1000:6.2f} ms {mb*1000:6.2f} ms {ratio(ma, mb):>7}")
PY
