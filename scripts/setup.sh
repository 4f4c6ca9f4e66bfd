#!/usr/bin/env bash
# Installs what netlab needs to build, test and run its demo on a fresh Debian 12 machine.
# Run as root. Idempotent.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  pkg-config libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev   # build: the C libraries
  iproute2 nftables iputils-ping netcat-openbsd tcpdump conntrack procps python3 curl  # tests and doc examples read state back with these
  containernetworking-plugins  # the reference Go plugins: interop tests and benchmarks compare against them
  libsqlite3-dev  # build: the overlay's embedded lease store (SQLite)
  etcd-server curl openssl  # tests: a real etcd v3 (/usr/bin/etcd) for the overlay's etcd lease store, started and stopped by the tests; curl checks its health, openssl makes its TLS certificates
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ] || [ "${NETLAB_APT_UPDATE:-0}" = 1 ]; then
  apt-get update
  apt-get install -y "${PKGS[@]}"
fi
if [ -z "$(command -v swift || true)" ] && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "setup.sh: Swift 6.1 or newer is required (expected at /opt/swift)" >&2; exit 1
fi
