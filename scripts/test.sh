#!/usr/bin/env bash
# Builds everything and runs every test (unit and integration). Needs root: the integration
# tests build their own network namespaces (never touching the machine's own).
# Extra arguments go to `swift test` (e.g. --filter BridgeTests).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
swift build --build-tests
LOG=$(mktemp /tmp/netlab-test.XXXXXX)
trap 'rm -f "$LOG"' EXIT
# The tests are XCTest; Swift Testing would only add an empty run of its own.
set +e
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
# One plain closing line with the totals of XCTest's last summary.
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with" "$LOG" | tail -1)
executed=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
failures=$(echo "$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
skipped=$(echo "$summary" | grep -oE '[0-9]+ tests? skipped' | grep -oE '^[0-9]+' || echo 0)
if [ -n "$summary" ]; then
  echo "tests: $((executed - failures - skipped)) passed, $failures failed, $skipped skipped"
fi
exit "$status"
