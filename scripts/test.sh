#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run every test: the format check, the
# release build's suite, then the whole suite again under AddressSanitizer + UndefinedBehavior-
# Sanitizer (a second build directory), and the fuzzers over their seed corpora for a bounded time
# (scripts/fuzz.sh, when clang is installed; EPLB_FUZZ_SECONDS per target, default 5); valgrind
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

phase "AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
# -O1 with line tables only: what sanitizers need for their reports, and the build costs about a
# third less than -O2 -g on CI's two cores. Four UBSan checks are left out here (the fuzzers'
# clang build keeps all of them): vptr (dynamic types of polymorphic objects; ASan catches the
# use-after-free behind most bad casts), and null, alignment and pointer-overflow, which put a
# check and a static record at nearly every member access and pointer step of the JSON and CLI
# templates: without them a CLI file compiles in 13 s instead of 23 s and each ASan process
# starts faster (a third of the relocations). A null dereference still stops under ASan (SEGV
# with a stack), an access that wraps past an object is still out of bounds, and the binary
# formats are read with memcpy. (EPLB_NO_SANITIZE passes them after -fsanitize; before it, as
# this script once did, -fsanitize=undefined turns them back on.)
"$root/scripts/build.sh" "$root/build-asan" -DEPLB_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DEPLB_SANITIZE=address,undefined -DEPLB_NO_SANITIZE=vptr,null,alignment,pointer-overflow \
  -DEPLB_WITH_CUDA=OFF -DEPLB_BUILD_BENCH=OFF
# The fuzzers' clang build runs alongside: the suite spends much of its time in one long test
# (cli.pytest drives the CLI under ASan), so a core is mostly free.
fuzz_build_log=$(mktemp)
fuzz_build_pid=
if command -v clang++ >/dev/null; then
  "$root/scripts/fuzz.sh" build >"$fuzz_build_log" 2>&1 &
  fuzz_build_pid=$!
fi
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"
if [[ -n $fuzz_build_pid ]] && ! wait "$fuzz_build_pid"; then
  cat "$fuzz_build_log" >&2
  echo "the fuzzers' build failed" >&2
  exit 1
fi
rm -f "$fuzz_build_log"

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
if command -v clang++ >/dev/null; then
  # Already built above. Four targets: 20 s of fuzzing in all (scripts/fuzz.sh SECONDS runs them
  # longer; RELIABILITY.md records the long runs).
  "$root/scripts/fuzz.sh" "${EPLB_FUZZ_SECONDS:-5}"
else
  echo "skipped: clang++ not found (the libFuzzer targets need clang)" >&2
fi
phase "done"
