#!/usr/bin/env bash
# Collects the build dependencies a GPU machine may lack into .gpu-deps/ (git-ignored, a few MB),
# as a CMake prefix: nlohmann/json and CLI11 (headers and CMake packages), and the headers of
# xxHash and zstd. The GPU machines have nvcc, cmake, GoogleTest, zstd, NCCL and PyTorch but not
# necessarily these -dev packages, and cannot download them. Carry .gpu-deps to the machine with
# the working tree and pass -DCMAKE_PREFIX_PATH=$PWD/.gpu-deps (scripts/gpu-check.sh does).
#   scripts/gpu-bundle.sh [DIR]     default: .gpu-deps at the repository root
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/.gpu-deps"}
rm -rf "$out"
mkdir -p "$out/include" "$out/share/cmake"
copy_dir() {  # copy_dir SOURCE DESTINATION: fails naming the Debian package when absent
  [[ -d $1 ]] || { echo "gpu-bundle: $1 not found (install $3)" >&2; exit 1; }
  cp -r "$1" "$2"
}
copy_dir /usr/include/nlohmann "$out/include/" nlohmann-json3-dev
copy_dir /usr/share/cmake/nlohmann_json "$out/share/cmake/" nlohmann-json3-dev
copy_dir /usr/include/CLI "$out/include/" libcli11-dev
copy_dir /usr/share/cmake/CLI11 "$out/share/cmake/" libcli11-dev
for header in xxhash.h xxh3.h zstd.h zstd_errors.h zdict.h; do
  [[ -f /usr/include/$header ]] || { echo "gpu-bundle: /usr/include/$header not found" >&2; exit 1; }
  cp "/usr/include/$header" "$out/include/"
done
echo "gpu-bundle: $(du -sh "$out" | cut -f1) in $out" >&2
