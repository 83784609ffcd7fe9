#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (in build-fuzz/, instrumented with AddressSanitizer and
# every UndefinedBehaviorSanitizer check), replays each target's committed seed corpus
# (tests/fuzz/corpus/), then fuzzes each target for a bounded time.
#   scripts/fuzz.sh            20 s per target (scripts/test.sh passes EPLB_FUZZ_SECONDS, default 5)
#   scripts/fuzz.sh 600        ten minutes per target (the longer runs RELIABILITY.md records)
#   scripts/fuzz.sh 60 fuzz_cli_args   one target only
#   scripts/fuzz.sh build      only build the targets
# EPLB_FUZZ_BUILD_DIR overrides the build directory (default build-fuzz/). A directory already
# configured with EPLB_BUILD_FUZZERS=ON keeps its configuration: scripts/test.sh runs the fuzzers
# from its sanitizer build (build-asan/), which builds them too.
# New interesting inputs go to build-fuzz/corpus/<target>/ (the committed corpus is not touched);
# a crashing input is saved as build-fuzz/artifacts/<target>-crash-* and fails the script (under
# build-asan/ in scripts/test.sh).
# Copy small inputs worth keeping into tests/fuzz/corpus/<target>/ by hand.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
build_only=false
if [[ $seconds == build ]]; then
  build_only=true
fi
build=${EPLB_FUZZ_BUILD_DIR:-"$root/build-fuzz"}
targets=(fuzz_snapshot_load fuzz_json_readers fuzz_cli_load_counts fuzz_cli_args)
if [[ $# -ge 2 ]]; then
  targets=("${@:2}")
fi

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found; the fuzzers need clang (libFuzzer)" >&2
  exit 1
fi

echo "== building the fuzzers in $build" >&2
if ! grep -qisE '^EPLB_BUILD_FUZZERS:BOOL=(ON|1|TRUE|YES|Y)$' "$build/CMakeCache.txt"; then
  generator=()
  if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then
    generator=(-G Ninja)
  fi
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" -DEPLB_BUILD_FUZZERS=ON \
    -DEPLB_SANITIZE=address,undefined -DEPLB_BUILD_TESTS=OFF -DEPLB_BUILD_BENCH=OFF \
    -DEPLB_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
if $build_only; then
  exit 0
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/artifacts"
for target in "${targets[@]}"; do
  binary="$build/bin/$target"
  seeds="$root/tests/fuzz/corpus/$target"
  if [[ ! -d $seeds ]]; then
    echo "fuzz.sh: no seed corpus for $target (expected $seeds)" >&2
    exit 1
  fi
  work="$build/corpus/$target"
  mkdir -p "$work"
  options=(-artifact_prefix="$build/artifacts/$target-" -timeout=10 -rss_limit_mb=2048)
  if [[ -f "$root/tests/fuzz/$target.dict" ]]; then
    options+=(-dict="$root/tests/fuzz/$target.dict")
  fi

  echo "== $target: replaying $(find "$seeds" -type f | wc -l) seed inputs" >&2
  mapfile -t files < <(find "$seeds" -type f | sort)
  "$binary" "${options[@]}" "${files[@]}" 2>"$build/$target.replay.log" ||
    { cat "$build/$target.replay.log" >&2; exit 1; }

  echo "== $target: fuzzing for $seconds s" >&2
  "$binary" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work" "$seeds" \
    2>"$build/$target.log" || { tail -n 60 "$build/$target.log" >&2; exit 1; }
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$target.log")
  coverage=$(grep -o 'cov: [0-9]*' "$build/$target.log" | tail -n 1 || true)
  echo "$target: $executions executions in $seconds s, $coverage, corpus $(find "$work" -type f | wc -l) inputs" >&2
done
