#!/bin/bash
# Runs one libFuzzer target for a bounded time from its seeds: real captures for the frame
# targets, a real migration session's messages for the protocol and engine targets (committed
# under tests/fuzz/seeds). Prints libFuzzer's final figures (executions, edges).
# usage: run.sh TARGET_BINARY TARGET SECONDS [libFuzzer options...]
set -euo pipefail
binary=$1 target=$2 seconds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
corpus=$(dirname "$binary")/corpus-$target
seeds=$(dirname "$binary")/seeds-$target
mkdir -p "$corpus" "$seeds"
case $target in
netif | switch)
	python3 "$here/seed_pcaps.py" "$target" "$seeds" "$here"/../../pcaps/real/*.pcap* \
		"$here"/../../pcaps/*.pcap >/dev/null ;;
*) cp "$here/seeds/$target"/* "$seeds"/ ;;
esac
# New inputs go to the first folder; the seeds are read from the second.
# A finding must fail the test: libFuzzer exits 77 by default, which meson reads as a skip.
exec "$binary" -max_total_time="$seconds" -print_final_stats=1 -error_exitcode=1 -timeout_exitcode=1 \
	"$@" "$corpus" "$seeds"
