#!/usr/bin/env bash
# scripts/gpu-bundle.sh's prefix is enough to configure libeplb and compile its snapshot code where the
# -dev packages' CMake files are missing (zstd's package is disabled here to take the fallback),
# and scripts/gpu-check.sh parses its arguments. Runs in CI, where the packages are installed,
# so that the path the GPU machines take stays working.
#   gpu_bundle_test.sh SOURCE_DIR SCRATCH_DIR
set -euo pipefail
source=$1
scratch=$2
rm -rf "$scratch"
mkdir -p "$scratch"
"$source/scripts/gpu-bundle.sh" "$scratch/deps"
cmake -S "$source" -B "$scratch/build" -DEPLB_WITH_CUDA=OFF -DEPLB_BUILD_TESTS=OFF \
  -DEPLB_BUILD_BENCH=OFF -DEPLB_BUILD_GO=OFF -DEPLB_BUILD_RUST=OFF -DEPLB_BUILD_PYTHON=OFF \
  -DEPLB_BUILD_EXAMPLES=OFF -DCMAKE_PREFIX_PATH="$scratch/deps" \
  -DCMAKE_DISABLE_FIND_PACKAGE_zstd=ON >"$scratch/configure.log"
cache="$scratch/build/CMakeCache.txt"
for entry in "nlohmann_json_DIR:PATH=$scratch/deps/share/cmake/nlohmann_json" \
  "CLI11_DIR:PATH=$scratch/deps/share/cmake/CLI11" \
  "EPLB_XXHASH_INCLUDE_DIR:PATH=$scratch/deps/include" \
  "EPLB_ZSTD_INCLUDE_DIR:PATH=$scratch/deps/include"; do
  grep -qxF "$entry" "$cache" || { echo "not in the cache: $entry" >&2; exit 1; }
done
# The snapshot code is what needs both fallbacks (zstd and xxHash): compile its three files.
make -C "$scratch/build/core" snapshot_format.cpp.o snapshot_reader.cpp.o snapshot_writer.cpp.o \
  >"$scratch/build.log"
"$source/scripts/gpu-check.sh" --help | grep -q "PHASE: build"
if "$source/scripts/gpu-check.sh" bogus 2>/dev/null; then
  echo "gpu-check.sh accepted an unknown phase" >&2
  exit 1
fi
rm -rf "$scratch"
echo "gpu bundle: configured and compiled the snapshot code from the bundle alone"
