#!/usr/bin/env bash
# Builds the release binaries (Swift runtime linked statically, so one copied binary runs on a
# host without Swift; the host needs only libnl-3/libnl-route-3/libnftnl/libmnl) and installs
# the plugins and netlab into DEST (default: ./out/bin).
#   scripts/install.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
DEST=${1:-out/bin}
PRODUCTS=(loopback bridge host-local portmap firewall tuning macvlan ipvlan vxlan flannel netlab)
mkdir -p "$DEST"
# Only the shipped products: a plain `swift build` also builds TestSupport, which needs XCTest.
for p in "${PRODUCTS[@]}"; do
  swift build -c release --static-swift-stdlib --scratch-path .build-release --product "$p" >&2
done
for p in "${PRODUCTS[@]}"; do
  install -m 0755 -s ".build-release/release/$p" "$DEST/$p"
  echo "installed $DEST/$p"
done
