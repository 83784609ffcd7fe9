#!/usr/bin/env bash
# Installs the Debian packages libeplb needs that are missing on this machine. Idempotent: does
# nothing (and needs no network) when everything is there. Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libzstd-dev libxxhash-dev
  python3 python3-pytest python3-numpy
  clang clang-format libclang-rt-14-dev
  valgrind
  swig golang-go python3-dev bindgen python3-setuptools python3-wheel
  dpkg-dev python3-venv python3-pip
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "libeplb: installing missing packages: ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
