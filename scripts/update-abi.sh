#!/usr/bin/env bash
# The ABI guard's symbol list, packaging/abi/libeplb.symbols: every symbol libeplb.so exports,
# with its version node, one per line, sorted.
#   scripts/update-abi.sh [LIBRARY]          rewrite the list from a built library (default
#                                            build/lib/libeplb.so); run it after adding an entry
#                                            point to eplb.h, and commit the list with the header
#   scripts/update-abi.sh --check [LIBRARY]  fail unless the library exports exactly the list
#                                            (CTest abi_exported_symbols)
# Both refuse a library exporting anything but eplb_* symbols of a version node EPLB_<n>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
list=$root/packaging/abi/libeplb.symbols
check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
library=${1:-$root/build/lib/libeplb.so}
if [[ ! -e $library ]]; then
  echo "update-abi: $library not found (build the eplb target first)" >&2
  exit 2
fi

# Defined dynamic symbols as name@@VERSION (the version node itself, EPLB_0, is listed too).
exported=$(nm --dynamic --defined-only --with-symbol-versions "$library" | awk '{print $3}' |
  LC_ALL=C sort -u)
stray=$(grep -Ev '^(eplb_[A-Za-z0-9_]+@@EPLB_[0-9_]+|EPLB_[0-9_]+)$' <<<"$exported" || true)
if [[ -n $stray ]]; then
  echo "update-abi: $library exports symbols outside the public API (only eplb_* with a version" >&2
  echo "node of capi/libeplb.map may be exported; check EPLB_API and the version script):" >&2
  echo "$stray" >&2
  exit 1
fi

if ((check == 0)); then
  printf '%s\n' "$exported" >"$list"
  echo "update-abi: wrote $(wc -l <"$list") symbols to ${list#"$root"/}" >&2
  exit 0
fi
if ! diff -u --label "packaging/abi/libeplb.symbols (committed)" --label "$library (built)" \
  "$list" <(printf '%s\n' "$exported") >&2; then
  cat >&2 <<MESSAGE
update-abi: the exported symbols differ from packaging/abi/libeplb.symbols.
  '-' lines: symbols the library no longer exports -- an ABI break: restore them (a removal or
             rename needs a new SONAME and a new version node in capi/libeplb.map).
  '+' lines: new symbols -- fine if intended: run scripts/update-abi.sh and commit the list.
MESSAGE
  exit 1
fi
echo "update-abi: $library exports exactly the $(wc -l <"$list") committed symbols"
