#!/usr/bin/env bash
# Builds everything and runs every test (unit and integration). Needs root: the integration
# tests build their own network namespaces (never touching the machine's own).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
swift build --build-tests
swift test --skip-build "$@"
