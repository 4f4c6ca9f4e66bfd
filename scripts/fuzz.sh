#!/usr/bin/env bash
# Builds one libFuzzer target (or all) with AddressSanitizer and runs it for SECONDS.
#   scripts/fuzz.sh TARGET SECONDS      e.g. scripts/fuzz.sh CNIConfig 60
#   scripts/fuzz.sh all SECONDS         every target in turn
#   scripts/fuzz.sh list                the target names
# The modules a target needs are compiled from Sources/ by swiftc into .build-fuzz/ (the normal
# `swift build` never sees Fuzz/). Seeds: Fuzz/corpus/TARGET; the corpus libFuzzer grows goes to
# .build-fuzz/corpus/TARGET. A crash is copied to Fuzz/crashes/TARGET and the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ROOT=$PWD
OUT=$ROOT/.build-fuzz
SAN=(-sanitize=fuzzer,address)

# Target → the modules it imports, in build order (dependencies first).
modules_of() {
  case "$1" in
    CNIConfig|CNIResult|CNIArgs) echo "SystemKit NetTypes CNI" ;;
    CIDR) echo "SystemKit NetTypes CNI IPAM" ;;
    NetlinkAck) echo "SystemKit" ;;
    NFTElements) echo "SystemKit NetTypes NFTables" ;;
    Overlay) echo "SystemKit NetTypes Overlay" ;;
    *) echo "unknown fuzz target: $1 (scripts/fuzz.sh list)" >&2; exit 2 ;;
  esac
}
TARGETS="CNIConfig CNIResult CIDR CNIArgs NetlinkAck NFTElements Overlay"

# The C shim SystemKit imports, as a clang module with its own module map.
build_shims() {
  local dir=$OUT/CNetlabShims
  [ -f "$dir/shims.a" ] && [ -z "$(find Sources/CNetlabShims -newer "$dir/shims.a")" ] && return
  mkdir -p "$dir"
  printf 'module CNetlabShims {\n  umbrella header "%s"\n  export *\n}\n' \
    "$ROOT/Sources/CNetlabShims/include/CNetlabShims.h" > "$dir/module.modulemap"
  for c in Sources/CNetlabShims/*.c; do
    clang -c -fPIC -O1 -I Sources/CNetlabShims/include "$c" -o "$dir/$(basename "$c" .c).o"
  done
  ar rcs "$dir/shims.a" "$dir"/*.o
}

# One Swift module: a .swiftmodule and one object, instrumented for coverage and ASan.
build_module() {
  local name=$1 obj=$OUT/modules/$1.o
  mkdir -p "$OUT/modules"
  if [ -f "$obj" ] && [ -z "$(find "Sources/$name" -newer "$obj")" ]; then return; fi
  echo "fuzz: compiling $name" >&2
  local extra=()
  # NFTElements reaches the internal element decoder through @testable import.
  [ "$name" = NFTables ] && extra+=(-enable-testing -I Sources/CNFTables)
  swiftc -swift-version 6 -package-name netlab -parse-as-library -wmo -O -g "${SAN[@]}" -module-name "$name" \
    -I "$OUT/modules" -I "$OUT/CNetlabShims" "${extra[@]}" \
    -emit-module -emit-module-path "$OUT/modules/$name.swiftmodule" \
    -c Sources/"$name"/*.swift -o "$obj"
}

build_target() {
  local target=$1 objs=()
  build_shims
  for m in $(modules_of "$target"); do build_module "$m"; objs+=("$OUT/modules/$m.o"); done
  echo "fuzz: linking $target" >&2
  swiftc -swift-version 6 -package-name netlab -parse-as-library -O -g "${SAN[@]}" -module-name "Fuzz$target" \
    -I "$OUT/modules" -I "$OUT/CNetlabShims" -I Sources/CNFTables \
    Fuzz/"$target"/*.swift "${objs[@]}" "$OUT/CNetlabShims/shims.a" -lnftnl -lmnl \
    -o "$OUT/bin/$target" 2>&1 | grep -v "Cannot export local symbol '__asan" >&2 || true
  [ -x "$OUT/bin/$target" ]
}

run_target() {
  local target=$1 seconds=$2
  mkdir -p "$OUT/bin" "$OUT/corpus/$target" "$OUT/artifacts/$target"
  rm -f "$OUT/bin/$target"
  build_target "$target"
  local log=$OUT/$target.log status=0
  # Without SWIFT_BACKTRACE=enable=no Swift's crash handler holds a crashing run open.
  SWIFT_BACKTRACE=enable=no "$OUT/bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$target/" \
    "$OUT/corpus/$target" "Fuzz/corpus/$target" > "$log" 2>&1 || status=$?
  local execs
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  if [ "$status" -ne 0 ]; then
    mkdir -p "Fuzz/crashes/$target"
    cp "$OUT/artifacts/$target"/* "Fuzz/crashes/$target/" 2>/dev/null || true
    grep -E "ERROR|Fatal error|SUMMARY" "$log" | head -5 >&2
    echo "fuzz: $target FAILED after $execs execs (log $log; input kept in Fuzz/crashes/$target)"
    return 1
  fi
  echo "fuzz: $target ok: ${seconds}s, $execs execs, $(ls "$OUT/corpus/$target" | wc -l) corpus files"
}

case "${1:-}" in
  list) echo "$TARGETS" ;;
  all)
    failed=0
    for t in $TARGETS; do run_target "$t" "${2:?seconds}" || failed=1; done
    exit "$failed" ;;
  "") echo "usage: scripts/fuzz.sh TARGET|all SECONDS" >&2; exit 2 ;;
  *) modules_of "$1" > /dev/null; run_target "$1" "${2:?seconds}" ;;
esac
