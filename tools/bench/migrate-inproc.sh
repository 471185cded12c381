#!/bin/bash
# Live migration of a 1 GiB VM between two ferryd hosts in one process (ring PMD, one core for
# both), at 0, 1,000 and 20,000 dirty pages/s; each line beside a memcpy of the same memory in
# the same run. With --ciphers: the cost of sealing instead, at 0 pages/s: authenticated only
# (encryption disabled) and encrypted (required), with each cipher, beside `openssl speed -evp`
# for the same cipher at the same record size (8 KiB at MTU 9000, two pages a message; 4 KiB
# below), in the same run.
# Usage: tools/bench/migrate-inproc.sh [--memory MiB] [--mtu N] [--bandwidth R] [--ciphers]
set -euo pipefail
cd "$(dirname "$0")/../.."
memory=1024
mtu=9000
bandwidth=unlimited
ciphers=no
while [ $# -gt 0 ]; do
	case "$1" in
	--ciphers) ciphers=yes; shift ;;
	--memory) memory=$2; shift 2 ;;
	--mtu) mtu=$2; shift 2 ;;
	--bandwidth) bandwidth=$2; shift 2 ;;
	*) echo "usage: $0 [--memory MiB] [--mtu N] [--bandwidth R] [--ciphers]" >&2; exit 2 ;;
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
migrate() {
	./build/bench/ferry-migrate-inproc --file-prefix ferry-bench-mig-$$ --huge-unlink -m 1024 --no-pci \
		--no-telemetry --log-level='*:error' -- --memory "$memory" --mtu "$mtu" \
		--bandwidth "$bandwidth" --fill 100 "$@"
}
if [ "$ciphers" = yes ]; then
	# openssl's figure for a cipher at the record size of the MTU, in Gbit/s.
	record=4096
	[ "$mtu" -ge 9000 ] && record=8192
	openssl_gbps() {
		openssl speed -evp "$1" -bytes "$record" -seconds 3 2>/dev/null |
			awk -v c="$1" 'tolower($1) == c { v = $NF; sub(/k$/, "", v); printf "%.2f", v * 8 / 1e6 }'
	}
	# Three runs a case, interleaved, and the median: one run on this machine varies by half.
	declare -A runs
	for round in 1 2 3; do
		for cipher in chacha20-poly1305 aes-256-gcm; do
			for policy in disabled required; do
				line=$(migrate --rate 0 --encryption "$policy" --extra "cipher $cipher")
				echo "$line"
				runs[$cipher,$policy]+="$(sed -n 's/.* page_gbps=\([0-9.]*\).*/\1/p' <<<"$line") "
			done
		done
	done
	for cipher in chacha20-poly1305 aes-256-gcm; do
		ref=$(openssl_gbps "$cipher")
		for policy in disabled required; do
			# shellcheck disable=SC2086
			median=$(printf '%s\n' ${runs[$cipher,$policy]} | sort -n | sed -n 2p)
			echo "  $cipher, encryption $policy: median $median Gbit/s of pages (runs: ${runs[$cipher,$policy]% }); openssl speed -evp $cipher ($record bytes): $ref Gbit/s; ratio $(awk -v a="$median" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')"
		done
	done
	exit 0
fi
for rate in 0 1000 20000; do
	./build/bench/ferry-migrate-inproc --file-prefix ferry-bench-mig-$$ --huge-unlink -m 1024 --no-pci \
		--no-telemetry --log-level='*:error' -- --memory "$memory" --rate "$rate" \
		--mtu "$mtu" --bandwidth "$bandwidth" --fill 100
done
