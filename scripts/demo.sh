#!/usr/bin/env bash
# Sets up, builds and runs the main job: `orbitrain demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR="${ORBITRAIN_BUILD_DIR:-build}"
exec "$BUILD_DIR/bin/orbitrain" demo "$@"
