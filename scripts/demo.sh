#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and run `eplb demo`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh" "$root/build" -DEPLB_BUILD_TESTS=OFF -DEPLB_BUILD_BENCH=OFF >&2
exec "$root/build/bin/eplb" demo "$@"
