#!/usr/bin/env bash
# Installs a release build into a temporary prefix, moves the prefix (proving it relocatable),
# and builds and runs every consumer against that copy only -- never the build tree:
#   the layout (SONAME, header, eplb.pc, CMake package, CLI, man page); the header as C99 and C++
#   with warnings as errors; a C consumer through pkg-config; a CMake consumer through
#   find_package(eplb); the Go and Rust examples (Go and Rust skipped with a message when their
#   toolchain is missing); the Python wheel in a fresh venv; and the CPack .deb (unpacked with
#   dpkg-deb -x, its dependencies and files checked) and .tar.gz.
# Usage: scripts/test-install.sh [BUILD_DIR]   (default build/, configured and built already)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset LD_LIBRARY_PATH PYTHONPATH EPLB_LIB_DIR CGO_CFLAGS CGO_LDFLAGS PKG_CONFIG_PATH
fail() {
  echo "test-install: FAILED: $*" >&2
  exit 1
}
step() { echo "== test-install: $*" >&2; }
# The binary must load libeplb from $2 (the installed copy), not from the build tree.
uses_lib_from() {
  local resolved
  resolved=$(ldd "$1" | awk '/libeplb\.so/ {print $3}')
  [[ $(readlink -f "$resolved") == "$(readlink -f "$2")"/* ]] ||
    fail "$1 loads libeplb from '$resolved', not from $2"
}

version=$(sed -n 's/^#define EPLB_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  "$root/capi/include/eplb/eplb.h" | paste -sd.)
soname=libeplb.so.${version%.*}

step "cmake --install into a staging prefix, then moved"
cmake --install "$build" --prefix "$work/staging" >/dev/null
mv "$work/staging" "$work/prefix"
prefix=$work/prefix
pc=$(find "$prefix" -name eplb.pc)
[[ -n $pc ]] || fail "no eplb.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(readlink -f "$(pkg-config --variable=libdir eplb)")
[[ $libdir == "$(readlink -f "$prefix")"/* ]] || fail "eplb.pc's libdir $libdir is not in the moved prefix"
[[ $(pkg-config --modversion eplb) == "$version" ]] || fail "eplb.pc version is not $version"
for file in "$libdir/libeplb.so.$version" "$libdir/$soname" "$libdir/libeplb.so" \
  "$prefix/include/eplb/eplb.h" "$libdir/cmake/eplb/eplbConfig.cmake" \
  "$libdir/cmake/eplb/eplbConfigVersion.cmake" "$prefix/bin/eplb" "$prefix/share/man/man1/eplb.1"; do
  [[ -e $file ]] || fail "missing ${file#"$prefix"/}"
done
readelf -d "$libdir/libeplb.so.$version" | grep -q "Library soname: \[$soname\]" ||
  fail "the installed library's SONAME is not $soname"
cmp -s "$prefix/include/eplb/eplb.h" "$root/capi/include/eplb/eplb.h" || fail "installed header differs"
"$prefix/bin/eplb" --version | grep -qF "eplb $version" || fail "the installed eplb does not run"
uses_lib_from "$prefix/bin/eplb" "$prefix"
# The man page documents every command the CLI lists.
for command in $("$prefix/bin/eplb" --help | sed -n '/^\(SUBCOMMANDS\|Subcommands\):/,$ s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
  grep -q "^\.SS eplb $command\$" "$prefix/share/man/man1/eplb.1" || fail "eplb.1 lacks 'eplb $command'"
done

step "the installed header as C99 and C++ with warnings as errors"
cflags=$(pkg-config --cflags eplb)
# shellcheck disable=SC2086
echo '#include <eplb/eplb.h>' | cc -std=c99 -Wall -Wextra -Wpedantic -Werror -Wstrict-prototypes \
  $cflags -x c -fsyntax-only - || fail "the installed header is not clean C99"
# shellcheck disable=SC2086
echo '#include <eplb/eplb.h>' | c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -Wold-style-cast \
  $cflags -x c++ -fsyntax-only - || fail "the installed header is not clean C++"

step "C consumer through pkg-config"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags eplb) \
  "$root/tests/packaging/consumer.c" $(pkg-config --libs eplb) -Wl,-rpath,"$libdir" -o "$work/c_consumer"
uses_lib_from "$work/c_consumer" "$prefix"
"$work/c_consumer" "$work/c.eplb" | grep -q "consumer ok" || fail "the pkg-config consumer"

step "CMake consumer through find_package(eplb)"
cmake -S "$root/tests/packaging/cmake_consumer" -B "$work/cmake_consumer" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/cmake.log" ||
  { cat "$work/cmake.log" >&2; fail "configuring the CMake consumer"; }
grep -q "eplb_DIR=$prefix/" "$work/cmake.log" || fail "find_package(eplb) did not use the prefix"
cmake --build "$work/cmake_consumer" >/dev/null || fail "building the CMake consumer"
uses_lib_from "$work/cmake_consumer/consumer" "$prefix"
"$work/cmake_consumer/consumer" "$work/cmake.eplb" | grep -q "consumer ok" || fail "the CMake consumer"

go=$(command -v go || echo /usr/lib/go/bin/go)
if [[ -x $go ]]; then
  step "Go example (bindings/go) with CGO flags from pkg-config"
  mkdir -p "$work/go"
  # The build's Go cache is content-addressed: reusing it saves compiling the standard library.
  (cd "$root/examples/go" &&
    GOCACHE=$build/go-cache GOPATH=$work/go-path GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    CGO_ENABLED=1 CGO_CFLAGS="$(pkg-config --cflags eplb)" \
    CGO_LDFLAGS="$(pkg-config --libs eplb) -Wl,-rpath,$libdir" "$go" build -o "$work/go-example" .) ||
    fail "building the Go example against the install"
  uses_lib_from "$work/go-example" "$prefix"
  "$work/go-example" "$work/go" | grep -q "restart: loaded" || fail "the Go example"
else
  echo "skipped: Go example (no go; Debian: golang-go)" >&2
fi

cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
if [[ -x $cargo ]]; then
  step "Rust example (bindings/rust) finding libeplb through pkg-config"
  # The link search path comes from pkg-config (eplb-sys/build.rs); the rpath from the example's
  # own build.rs, which reads the directory eplb-sys found (DEP_EPLB_LIBDIR): no RUSTFLAGS.
  CARGO_TARGET_DIR=$work/cargo-target CARGO_HOME=$work/cargo-home \
    "$cargo" build --offline --quiet --manifest-path "$root/examples/rust/Cargo.toml" ||
    fail "building the Rust example against the install"
  uses_lib_from "$work/cargo-target/debug/eplb-serving-loop" "$prefix"
  mkdir -p "$work/rust"
  "$work/cargo-target/debug/eplb-serving-loop" "$work/rust" | grep -q "restart: loaded" ||
    fail "the Rust example"
else
  echo "skipped: Rust example (no cargo)" >&2
fi

if [[ -d $build/bindings/python/eplb ]]; then  # the binding was built (swig, python3-dev)
  step "Python wheel in a fresh virtual environment"
  rm -rf "$build/bindings/python/dist"
  cmake --build "$build" --target eplb_python_wheel >/dev/null || fail "building the wheel"
  /usr/bin/python3 -m venv --system-site-packages "$work/venv"
  "$work/venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check \
    "$build"/bindings/python/dist/eplb-*.whl || fail "pip install of the wheel"
  mkdir -p "$work/python"
  (cd "$work" && "$work/venv/bin/python" -c \
    "import eplb, sys; assert eplb.__file__.startswith(sys.prefix), eplb.__file__" &&
    "$work/venv/bin/python" "$root/examples/python/serving_loop.py" "$work/python") |
    grep -q "restart: loaded" || fail "the Python example in the venv"
else
  echo "skipped: Python wheel (the binding is not built; needs swig and python3-dev)" >&2
fi

step "CPack: .deb (dpkg-deb -x) and .tar.gz"
(cd "$build" && cpack -G "DEB;TGZ" -B "$work/cpack" >"$work/cpack.log") ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/cpack/*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
for package in libc6 libstdc++6 libgcc-s1 libzstd1; do
  [[ $depends == *"$package "* || $depends == *"$package" || $depends == *"$package,"* ]] ||
    fail "the .deb's Depends ($depends) lacks $package"
done
dpkg-deb -x "$deb" "$work/deb"
outside=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep -v '^\./usr/\|^\./$\|^\./usr/$' || true)
[[ -z $outside ]] || fail "the .deb installs outside /usr: $outside"
for file in usr/lib/libeplb.so.$version usr/lib/$soname usr/lib/libeplb.so usr/include/eplb/eplb.h \
  usr/lib/pkgconfig/eplb.pc usr/lib/cmake/eplb/eplbConfig.cmake usr/bin/eplb \
  usr/share/man/man1/eplb.1; do
  [[ -e $work/deb/$file ]] || fail "the .deb lacks /$file"
done
readelf -d "$work/deb/usr/lib/libeplb.so.$version" | grep -q "Library soname: \[$soname\]" ||
  fail "the .deb's library SONAME"
"$work/deb/usr/bin/eplb" --version | grep -qF "eplb $version" || fail "the .deb's eplb does not run"
PKG_CONFIG_PATH=$work/deb/usr/lib/pkgconfig pkg-config --libs eplb | grep -q -- "-L$work/deb/usr/" ||
  fail "the .deb's eplb.pc is not relocatable"
tgz=$(ls "$work"/cpack/*.tar.gz)
# List first: `tar | grep -q` would die of SIGPIPE when grep stops early, and pipefail reports it.
tar -tzf "$tgz" >"$work/tgz.list"
grep -q "/lib/libeplb.so.$version\$" "$work/tgz.list" || fail "the .tar.gz lacks the library"
grep -q "/bin/eplb\$" "$work/tgz.list" || fail "the .tar.gz lacks the CLI"
echo "test-install: every consumer works from the installed artefacts ($(basename "$deb"), $depends)"
