#!/bin/bash
# Live migration of a 1 GiB VM between two ferryd hosts in one process (ring PMD, one core for
# both), at 0, 1,000 and 20,000 dirty pages/s; each line beside a memcpy of the same memory in
# the same run. Usage: tools/bench/migrate-inproc.sh [--memory MiB] [--mtu N] [--bandwidth R]
set -euo pipefail
cd "$(dirname "$0")/../.."
memory=1024
mtu=9000
bandwidth=unlimited
while [ $# -gt 0 ]; do
	case "$1" in
	--memory) memory=$2; shift 2 ;;
	--mtu) mtu=$2; shift 2 ;;
	--bandwidth) bandwidth=$2; shift 2 ;;
	*) echo "usage: $0 [--memory MiB] [--mtu N] [--bandwidth R]" >&2; exit 2 ;;
	esac
done
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

. tools/bench/hugepages.sh
reserve_hugepages 1024

# EAL's runtime folders go with the run, not to /var/run/dpdk.
RUNTIME_DIRECTORY=$(mktemp -d /tmp/ferry-bench-run-XXXXXX)
export RUNTIME_DIRECTORY
trap 'rm -rf "$RUNTIME_DIRECTORY"' EXIT
for rate in 0 1000 20000; do
	./build/bench/ferry-migrate-inproc --file-prefix ferry-bench-mig-$$ -m 1024 --no-pci \
		--no-telemetry --log-level='*:error' -- --memory "$memory" --rate "$rate" \
		--mtu "$mtu" --bandwidth "$bandwidth" --fill 100
done
