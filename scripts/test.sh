#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run every test: the format check, the
# release build's suite, then the whole suite again under AddressSanitizer + UndefinedBehavior-
# Sanitizer (a second build directory, with clang), and the fuzzers it also builds over their seed
# corpora for a bounded time (scripts/fuzz.sh; EPLB_FUZZ_SECONDS per target, default 5); valgrind
# memcheck on the C programs and ThreadSanitizer on the concurrency tests (RELIABILITY.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
# Each phase's header says how long the run has taken so far (SECONDS counts from the start).
phase() { echo "== $1 (at ${SECONDS}s)" >&2; }
"$root/scripts/bootstrap.sh"

phase "format check"
"$root/scripts/check-format.sh"

phase "release build and tests"
# Tests and benchmarks ON explicitly: `build` may come from scripts/demo.sh, which turned them off.
"$root/scripts/build.sh" "$root/build" -DEPLB_WERROR=ON -DEPLB_BUILD_TESTS=ON -DEPLB_BUILD_BENCH=ON
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

phase "install, package, and consumers built against the installed copy only"
"$root/scripts/test-install.sh" "$root/build"

phase "valgrind memcheck: the C programs"
if command -v valgrind >/dev/null; then
  memcheck=(valgrind --quiet --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite,indirect)
  "${memcheck[@]}" "$root/build/bin/capi_c99_smoke" >/dev/null
  # The dlopen example (examples/c), when the examples are built.
  if [[ -x $root/build/bin/c_dlopen_example ]]; then
    scratch=$(mktemp -d)
    "${memcheck[@]}" "$root/build/bin/c_dlopen_example" "$root/build/lib/libeplb.so" \
      "$scratch/example.eplb" >/dev/null
    rm -rf "$scratch"
  fi
  # Every error path of the C API once (the bad-input matrix), also under memcheck.
  "${memcheck[@]}" "$root/build/bin/bad_input_matrix_test" \
    --gtest_filter='Matrix.EveryBadInput*' >/dev/null
else
  echo "skipped: valgrind not found" >&2
fi

phase "AddressSanitizer + UndefinedBehaviorSanitizer build and tests (clang; also the fuzzers)"
# Clang, so that the same build serves the fuzzers (libFuzzer's coverage instrumentation on all but
# the planners: core/CMakeLists.txt) and a second compiler checks every warning. -O1 with line
# tables only: what sanitizers need for their reports, and the build costs about a third less
# than -O2 -g on CI's two cores. Four UBSan checks are left out here (scripts/fuzz.sh's own build
# keeps all of them): vptr (dynamic types of polymorphic objects; ASan catches the use-after-free
# behind most bad casts), and null, alignment and pointer-overflow, which put a check and a static
# record at nearly every member access and pointer step of the JSON and CLI templates: without
# them a CLI file compiles in 12 s instead of 17 s. A null dereference still stops under ASan
# (SEGV with a stack), an access that wraps past an object is still out of bounds, and the
# binary formats are read with memcpy. (EPLB_NO_SANITIZE passes them after -fsanitize; before
# it, -fsanitize=undefined would turn them back on.)
# (A build-asan/ configured with another compiler, as before this build moved to clang, is redone.)
if [[ -f $root/build-asan/CMakeCache.txt ]] &&
  ! grep -qs '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' "$root/build-asan/CMakeCache.txt"; then
  rm -rf "$root/build-asan"
fi
CC=clang CXX=clang++ "$root/scripts/build.sh" "$root/build-asan" -DEPLB_WERROR=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DEPLB_SANITIZE=address,undefined \
  -DEPLB_NO_SANITIZE=vptr,null,alignment,pointer-overflow -DEPLB_BUILD_FUZZERS=ON \
  -DEPLB_WITH_CUDA=OFF -DEPLB_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"

phase "ThreadSanitizer: the concurrency tests"
# Only libeplb and the concurrency tests, in their own build directory. Not -Werror: GCC 12 warns
# falsely (-Wstringop-overflow) on TSan-instrumented code; the two builds above enforce warnings.
tsan_generator=()
if [[ ! -f $root/build-tsan/CMakeCache.txt ]] && command -v ninja >/dev/null; then
  tsan_generator=(-G Ninja)
fi
cmake -S "$root" -B "$root/build-tsan" "${tsan_generator[@]}" -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DEPLB_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DEPLB_SANITIZE=thread -DEPLB_WITH_CUDA=OFF \
  -DEPLB_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-tsan" -j"$jobs" --target concurrency_test
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$root/build-tsan" -R '^concurrency_' \
  --output-on-failure -j"$jobs"

phase "fuzzers: seed corpus replay and a bounded run per target"
# Built by the sanitizer build above. Four targets: 20 s of fuzzing in all (scripts/fuzz.sh
# SECONDS runs them longer, in their own build; RELIABILITY.md records the long runs).
EPLB_FUZZ_BUILD_DIR="$root/build-asan" "$root/scripts/fuzz.sh" "${EPLB_FUZZ_SECONDS:-5}"
phase "done"
