#!/usr/bin/env bash
# Everything libeplb checks and measures on a GPU machine, in phases that each fit the device
# tool's 10-minute call: build the C++/CUDA part, run the GPU tests, run the parity tests under
# compute-sanitizer (memcheck, racecheck, synccheck, initcheck), and run the kernel benchmarks
# next to their PyTorch equivalents. Logs and a summary go to REPORT_DIR ($OUT on the device
# machine, so they come back).
#   scripts/gpu-check.sh PHASE... [--report REPORT_DIR]
#   PHASE: build | test | sanitize | bench | all
# From a machine without a GPU (the device tool carries the working tree and .gpu-deps):
#   scripts/gpu-bundle.sh
#   run(command="scripts/gpu-check.sh build test --report $OUT", carry=[".gpu-deps"])
#   run(command="scripts/gpu-check.sh sanitize bench --report $OUT", carry=[".gpu-deps"])
# Environment: EPLB_GPU_BUILD (build directory, default build-gpu), EPLB_CUDA_ARCH (default 90),
# EPLB_PYTHON (the Python with PyTorch, default python3).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EPLB_GPU_BUILD:-"$root/build-gpu"}
arch=${EPLB_CUDA_ARCH:-90}
python=${EPLB_PYTHON:-python3}
report="$build/gpu-report"
phases=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --report) report=$2; shift 2 ;;
    all) phases+=(build test sanitize bench); shift ;;
    build | test | sanitize | bench) phases+=("$1"); shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ ${#phases[@]} -gt 0 ]] || { echo "gpu-check: name a phase (see --help)" >&2; exit 2; }
mkdir -p "$report"
summary="$report/summary.txt"
failures=0

# step NAME COMMAND...: runs COMMAND with its output in $report/NAME.log and records the outcome.
step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "== $name" >&2
  if "$@" >"$report/$name.log" 2>&1; then
    printf '%-40s ok      %4ds\n' "$name" $((SECONDS - start)) | tee -a "$summary" >&2
  else
    printf '%-40s FAILED  %4ds  (see %s.log)\n' "$name" $((SECONDS - start)) "$name" |
      tee -a "$summary" >&2
    tail -n 30 "$report/$name.log" >&2
    failures=$((failures + 1))
  fi
}

export PATH="/usr/local/cuda/bin:$PATH"
# The GPU parity tests fail instead of skipping when libeplb cannot use the GPU this machine has.
export EPLB_REQUIRE_GPU=1
{
  echo "gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  nvcc --version 2>&1 | tail -n 1
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
} >>"$summary"

configure() {
  local prefix=()
  [[ -d $root/.gpu-deps ]] && prefix=(-DCMAKE_PREFIX_PATH="$root/.gpu-deps")
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DEPLB_BUILD_GO=OFF -DEPLB_BUILD_RUST=OFF -DEPLB_BUILD_PYTHON=OFF -DEPLB_BUILD_EXAMPLES=OFF \
    "${prefix[@]}"
}

gpu_tests='^(kernel_|split_kernel|waterfill_kernel|nccl_)'
# The binaries whose parity tests launch kernels, and their filters, for compute-sanitizer.
parity=(
  "kernel_routing_tests:*Parity*"
  "kernel_dispatch_tests:*Parity*"
  "split_kernel_tests:*Parity*"
  "waterfill_kernel_tests:*Parity*"
  "nccl_token_kernels_tests:*"
)

for phase in "${phases[@]}"; do
  case $phase in
    build)
      step configure configure
      step build cmake --build "$build" -j"$(nproc)"
      ;;
    test)
      # Every test, so a GPU machine's differences show; the GPU ones must not skip.
      step ctest-gpu ctest --test-dir "$build" -R "$gpu_tests" --output-on-failure -j4
      step ctest-all ctest --test-dir "$build" -E '^cli\.|pytest|python' --output-on-failure \
        -j"$(nproc)"
      if grep -q "Skipped" "$report/ctest-gpu.log"; then
        echo "note: some GPU tests skipped (see ctest-gpu.log)" | tee -a "$summary" >&2
      fi
      ;;
    sanitize)
      for entry in "${parity[@]}"; do
        binary=${entry%%:*}
        filter=${entry#*:}
        for tool in memcheck racecheck synccheck initcheck; do
          step "$tool-$binary" compute-sanitizer --tool "$tool" --error-exitcode 1 \
            "$build/bin/$binary" --gtest_filter="$filter"
        done
      done
      ;;
    bench)
      for bench in routing_kernels dispatch_kernels split_kernels; do
        step "bench-$bench" "$build/bin/eplb_bench_$bench"
      done
      step torch-routing "$python" "$root/bench/routing_kernels_torch.py" --lib "$build/lib/libeplb.so"
      step torch-dispatch "$python" "$root/bench/dispatch_kernels_torch.py" --lib "$build/lib/libeplb.so"
      step torch-split "$python" "$root/bench/split_kernels_torch.py"
      ;;
  esac
done
echo "gpu-check: $failures failed step(s); summary in $summary" >&2
cat "$summary"
[[ $failures -eq 0 ]]
