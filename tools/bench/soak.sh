#!/bin/bash
# The lab soak at full length: 50 migrations back and forth with 2 % loss and 2 % reorder on the
# vMotion links, memory verified each time, then no leaked buffers, sessions or descriptors.
# Usage: tools/bench/soak.sh [MIGRATIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
SOAK_MIGRATIONS=${1:-50} bash tests/lab/soak.sh
