#!/bin/bash
# The migration benchmark on the lab: VMs of 1 and 4 GiB at 0, 1,000 and 20,000 dirty pages/s,
# over the vMotion bridge paced at 1 and 10 Gbit/s (MTU 9000, and 1 GiB at MTU 1500), and
# unpaced over memif; plus the "hot" case (a sweep over a 100 MiB range at 175,000 page
# writes/s) at 1 Gbit/s. Each line: total time, downtime, bytes sent, goodput (page data over
# the transfer time) as a fraction of the pacer, and for memif beside a memcpy of the same
# memory measured in the same run. The ferryd run on hugepages, which the script reserves.
# usage: tools/bench/migrate.sh [--quick]   (--quick: 1 GiB only)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes="1024 4096"
[ "${1:-}" = --quick ] && sizes=1024
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
. tools/bench/hugepages.sh
reserve_hugepages 1024
export FERRY_LAB_HUGEPAGES=1
key=/run/ferry/lab-vmotion.key
out=$(mktemp -d /tmp/ferry-bench-migrate-XXXXXX)
trap 'tools/lab/down >/dev/null 2>&1; rm -rf "$out"' EXIT
ctl() { tools/lab/ctl "$@"; }

# GB/s of a memcpy of n MiB into memory already faulted in, the reference for the unpaced case.
memcpy_gbps() {
	python3 - "$1" <<'PY'
import sys, time
n = int(sys.argv[1]) << 20
src = bytearray(b"\x5a") * n
dst = bytearray(n)
dst[:] = src  # faults the destination in, as a VM's memory is after its first copy
t = time.perf_counter(); dst[:] = src; t = time.perf_counter() - t
print(f"{n * 8 / t / 1e9:.1f}")
PY
}

# case <label> <MiB> <workload> <max-bandwidth> <pacer bps or 0> [memcpy Gbit/s]
run_case() {
	local label=$1 mb=$2 workload=$3 bw=$4 pacer=$5 reference=${6:-}
	ctl host-a vm create bench mem "$mb" mac 02:00:00:00:0b:01 ip 10.0.0.90/24 \
		portgroup "VM Network" workload "$workload" >/dev/null
	sleep 1
	ctl host-a -j migrate start bench to 50.50.50.2 key $key max-bandwidth "$bw" \
		min-bandwidth 100M --wait >"$out/case.json" || true
	ctl host-b vm destroy bench >/dev/null 2>&1 || ctl host-a vm destroy bench >/dev/null 2>&1 || true
	python3 - "$out/case.json" "$label" "$mb" "$workload" "$pacer" "$reference" <<'PY'
import json, sys
path, label, mb, workload, pacer, reference = sys.argv[1:7]
s = json.load(open(path))
pacer = float(pacer)
transfer = s.get("transfer_time_ms", 0) / 1e3
goodput = s["pages_normal"] * 4096 * 8 / transfer / 1e9 if transfer > 0 else 0
ratio = f"{goodput * 1e9 / pacer:.3f} of pacer" if pacer > 0 else f"{goodput / float(reference):.3f} of memcpy ({reference} Gbit/s)"
status = s["status"] if s["status"] == "completed" else f"{s['status']}: {s.get('reason', '')}"
print(f"| {label} | {int(mb) // 1024} GiB | {workload.split(',rate=')[1].split(',')[0]} | {status} | "
      f"{s['total_time_ms']:.0f} ms | {s.get('downtime_ms', 0):.3f} ms | {s['rounds']} | {s['throttle_percent']} % | "
      f"{s['bytes_transferred'] / 1e6:.0f} MB | {goodput:.2f} Gbit/s | {ratio} |", flush=True)
PY
}

header() {
	echo "| link | VM | dirty pages/s | status | total | downtime | rounds | throttle | bytes sent | goodput | goodput ratio |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
}

header
for link in bridge memif; do
	FERRY_LAB_VMOTION_LINK=$link tools/lab/up >/dev/null
	for mb in $sizes; do
		if [ $link = bridge ]; then
			for bw in 1G 10G; do
				pacer=$([ $bw = 1G ] && echo 1e9 || echo 1e10)
				for rate in 0 1000 20000; do
					run_case "bridge, MTU 9000, paced $bw" "$mb" "uniform,rate=$rate,fill=100" $bw $pacer
				done
			done
		else
			reference=$(memcpy_gbps "$mb")
			for rate in 0 1000 20000; do
				run_case "memif, MTU 9000, unpaced" "$mb" "uniform,rate=$rate,fill=100" unlimited 0 "$reference"
			done
		fi
	done
	if [ $link = bridge ]; then
		run_case "bridge, MTU 9000, paced 1G, hot" 1024 "sequential,ws=25600,rate=175000,fill=100" 1G 1e9
	fi
done
FERRY_LAB_VMOTION_MTU=1500 tools/lab/up >/dev/null
for rate in 0 1000 20000; do
	run_case "bridge, MTU 1500, paced 1G" 1024 "uniform,rate=$rate,fill=100" 1G 1e9
done
