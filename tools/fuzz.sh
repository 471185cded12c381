#!/bin/bash
# Runs ferry's libFuzzer targets for longer than the test suite does, keeping a corpus.
# usage: tools/fuzz.sh [SECONDS]   (default 600; the test suite runs 30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
tools/setup.sh
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled \
	-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-fuzz >/dev/null
# EAL's runtime folder goes to the build tree, not /var/run/dpdk.
export RUNTIME_DIRECTORY=$PWD/build-fuzz
# Crashes land in build-fuzz/ as crash-<hash>: replay one with build-fuzz/tests/fuzz/<target> FILE.
for target in switch netif proto migration; do
	echo "== fuzz_$target for $seconds s"
	tests/fuzz/run.sh "build-fuzz/tests/fuzz/fuzz_$target" "$target" "$seconds" \
		-artifact_prefix=build-fuzz/ -rss_limit_mb=2048
done
