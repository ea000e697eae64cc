#!/usr/bin/env bash
# Installs what orbitrain needs from Debian 12's packages (only when something
# is missing) and builds it into build/ (or $ORBITRAIN_BUILD_DIR).
# Extra arguments go to the CMake configure step, e.g.
#   scripts/setup.sh -DORBITRAIN_SANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config ccache clang-format
  libcaf-dev                      # CAF 0.17.6: actors, remote spawn, middleman
  libdnnl-dev ocl-icd-opencl-dev  # oneDNN 2.6 (its CMake config wants OpenCL)
  capnproto libcapnp-dev          # Cap'n Proto 0.9: wire and disk formats
  librocksdb-dev                  # RocksDB 7.8: chunk and checkpoint stores
  libssl-dev                      # OpenSSL: SHA-256, TLS
  libtomlplusplus-dev             # constellation files
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

BUILD_DIR="${ORBITRAIN_BUILD_DIR:-build}"
echo "== building in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD_DIR" -j"$(nproc)"
