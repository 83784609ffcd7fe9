#!/usr/bin/env bash
# Fails if any C, C++ or CUDA source differs from .clang-format. `--fix` rewrites them instead.
# Generated code (SWIG's Go wrapper, checked by go_generated_code_fresh) is left as generated.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' '*.cu' '*.cuh' | grep -v -e '^bindings/.*/generated/' -e '^bindings/go/internal/capi/capi_wrap\.c$')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
fi
