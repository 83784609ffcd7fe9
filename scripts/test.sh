#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run every test: the format check, the
# release build's suite, then the whole suite again under AddressSanitizer + UndefinedBehavior-
# Sanitizer (a second build directory), and the fuzzers over their seed corpora for a bounded time
# (scripts/fuzz.sh, when clang is installed; EPLB_FUZZ_SECONDS per target, default 20).
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

echo "== fuzzers: seed corpus replay and a bounded run per target" >&2
if command -v clang++ >/dev/null; then
  "$root/scripts/fuzz.sh" "${EPLB_FUZZ_SECONDS:-20}"
else
  echo "skipped: clang++ not found (the libFuzzer targets need clang)" >&2
fi
