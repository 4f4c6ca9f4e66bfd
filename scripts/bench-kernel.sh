#!/usr/bin/env bash
# Micro benchmarks of the kernel core, each in network namespaces it creates and removes:
#   netlink-bench: veth pair create+delete into a netns, address add+delete, netns switch costs
#   nft-bench:     one map element add/delete into an empty map vs a 10,000-element map
# Usage: scripts/bench-kernel.sh   (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
swift build -c release --static-swift-stdlib --product netlink-bench >&2
swift build -c release --static-swift-stdlib --product nft-bench >&2
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)
echo "== netlink-bench (N=200)"
"$BIN/netlink-bench" 200
echo "== nft-bench (500 samples, 10,000-element map)"
"$BIN/nft-bench" 500 10000
