#!/usr/bin/env bash
# Installs muspec's build dependencies (Debian bookworm packages) when any is missing, then
# configures and builds muspec in ./build. Idempotent: a second run installs nothing and only
# rebuilds what changed.
#
#   tools/setup.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libeigen3-dev liblapacke-dev libopenblas-dev
          libhdf5-dev libcli11-dev catch2 nlohmann-json3-dev zlib1g-dev libzstd-dev python3 python3-numpy
          hdf5-tools python3-h5py python3-pandas pybind11-dev python3-dev libdlpack-dev python3-venv python3-wheel)
# Extra packages a caller needs (tools/test.sh adds python3-torch for the trainer-adapter tests).
read -r -a extra <<< "${MUSPEC_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "muspec setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${MUSPEC_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
