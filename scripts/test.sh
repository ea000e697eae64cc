#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: unit tests and localhost
# cluster integration tests (real `orbitrain node` processes on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR="${ORBITRAIN_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 900
