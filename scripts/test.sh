#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run every test: the format check, the
# release build's suite, then the whole suite again under AddressSanitizer + UndefinedBehavior-
# Sanitizer (a second build directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
"$root/scripts/bootstrap.sh"

echo "== format check" >&2
"$root/scripts/check-format.sh"

echo "== release build and tests" >&2
"$root/scripts/build.sh" "$root/build" -DEPLB_WERROR=ON
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests" >&2
"$root/scripts/build.sh" "$root/build-asan" -DEPLB_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEPLB_SANITIZE=address,undefined -DEPLB_WITH_CUDA=OFF -DEPLB_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"
