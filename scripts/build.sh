#!/usr/bin/env bash
# Configures and builds libeplb into a build directory.
#   scripts/build.sh [BUILD_DIR] [extra cmake arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$root/build"}
shift || true

# nvcc lives outside PATH on a stock CUDA install; let CMake find it.
if [[ -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# Ninja where installed (bootstrap.sh installs it): it keeps both cores busy across targets, where
# make's per-directory recursion idles one. A directory configured before keeps its generator.
generator=()
if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$build_dir" "${generator[@]}" -DPython3_EXECUTABLE=/usr/bin/python3 "$@" \
  >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
