#!/bin/bash
# The evacuation benchmark: ferry-center puts a host of the 4-host lab into maintenance mode with
# eight 1 GiB VMs on it (every page written, 1,000 dirty pages/s each, hugepage-backed), and the
# time for the whole evacuation is set against, in the same run:
#   - the sum of the same VMs' single migrations (each moved alone by `vmotion`, before);
#   - the vMotion link's rate: the single migrations' own rate, and the pre-flight check's
#     measurement of the link (`migrate check`), so the report says how well concurrency fills it.
# usage: tools/bench/evacuate.sh [--vms N] [--mib M] [--concurrent C]   (default 8, 1024, 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
vms=8 mib=1024 concurrent=2
while [ $# -gt 0 ]; do
	case "$1" in
	--vms) vms=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--concurrent) concurrent=$2; shift 2 ;;
	*) echo "usage: $0 [--vms N] [--mib M] [--concurrent C]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "evacuate: run as root (namespaces, hugepages)" >&2; exit 1; }
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
out=$(mktemp -d /tmp/ferry-bench-evacuate-XXXXXX)
cleanup() {
	tools/lab/down >/dev/null 2>&1 || true
	rm -rf "$out"
	if declare -F restore_hugepages >/dev/null; then restore_hugepages; fi
}
trap cleanup EXIT

# The pool: four ferryd's 512 MiB of DPDK memory, every VM, and the copies in flight.
. tools/bench/hugepages.sh
reserve_hugepages $(((4 * 512 + (vms + concurrent + 1) * mib) / 2 + 64))
warm_hugepages
export FERRY_LAB_HUGEPAGES=1
export FERRY_LAB_CENTER_OPTIONS="--concurrent $concurrent"
tools/lab/up --hosts 4 >"$out/up.log" || { cat "$out/up.log"; exit 1; }
ctl() { tools/lab/ctl "$@"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

echo "evacuation benchmark: $vms x $mib MiB VMs (every page written, 1,000 dirty pages/s, hugepages), 4 hosts, $concurrent at once"
for i in $(seq 1 "$vms"); do
	ctl host-a vm create "vm$i" mem "$mib" mac "$(printf '02:00:00:00:0e:%02x' "$i")" \
		ip "10.0.0.$((150 + i))/24" portgroup "VM Network" workload "uniform,rate=1000,fill=100,seed=$i" \
		hugepages on >/dev/null
done
ctl center -w refresh >/dev/null
deadline=$((SECONDS + 60))
until [ "$(ctl center -j vm list | json 'sum(v["host"] == "host-a" for v in d["vms"])')" = "$vms" ]; do
	[ "$SECONDS" -lt "$deadline" ] || { echo "evacuate: ferry-center never listed the $vms VMs" >&2; exit 1; }
	sleep 0.2
done

# The link, as the pre-flight check measures it (host-a to host-b).
link_gbps=$(ctl host-a -j migrate check vm1 to 50.50.50.2 key /run/ferry/lab-vmotion.key min-bandwidth 100M rtt-limit 50 |
	json '[float(c["measured"].split()[0]) / 1e3 for c in d["checks"] if c["item"] == "bandwidth"][0]')

# A figure summed over the completed outgoing migrations of a host so far (bytes on the wire,
# pages sent again, window cuts).
sent() { ctl "$1" -j migrate status | json 'sum(m.get("'"${2:-bytes_transferred}"'", 0) for m in d["migrations"] if m["role"] == "source" and m["status"] == "completed")'; }
sent_bytes() { sent "$1"; }
# CPU seconds of every lab ferryd so far (user + system, from /proc).
cpu_seconds() {
	local total=0 pid
	for pid in $(cat /run/ferry/lab-host-*.pid); do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	python3 -c "print($total / $(getconf CLK_TCK))"
}

# Each VM alone, host-a to host-b, one after the other.
singles_ms=0
before=$(sent_bytes host-a)
resent_before=$(sent host-a pages_retransmitted)
cpu_before=$(cpu_seconds)
for i in $(seq 1 "$vms"); do
	result=$(ctl center -w -j vmotion "vm$i" host-b | json 'd["result"]')
	ms=$(sed -n 's/.* in \([0-9.]*\) ms.*/\1/p' <<<"$result")
	echo "  single: vm$i host-a -> host-b: $result"
	singles_ms=$(python3 -c "print($singles_ms + $ms)")
done
single_bytes=$(($(sent_bytes host-a) - before))
single_resent=$(($(sent host-a pages_retransmitted) - resent_before))
single_cpu=$(python3 -c "print($(cpu_seconds) - $cpu_before)")
single_gbps=$(python3 -c "print($single_bytes * 8 / ($singles_ms / 1e3) / 1e9)")

# All of them at once: host-b into maintenance.
before=$(sent_bytes host-b)
resent_before=$(sent host-b pages_retransmitted)
cuts_before=$(sent host-b window_cuts)
cpu_before=$(cpu_seconds)
start=$(date +%s.%N)
ctl center -w host maintenance host-b on >"$out/evacuation.txt"
end=$(date +%s.%N)
evac_bytes=$(($(sent_bytes host-b) - before))
evac_resent=$(($(sent host-b pages_retransmitted) - resent_before))
evac_cuts=$(($(sent host-b window_cuts) - cuts_before))
evac_cpu=$(python3 -c "print($(cpu_seconds) - $cpu_before)")
echo "  the singles: $single_resent pages sent again, ${single_cpu} CPU s in the four ferryd"
echo "  the evacuation: $evac_resent pages sent again, $evac_cuts window cuts, ${evac_cpu} CPU s in the four ferryd ($(nproc) cores)"
grep "result" "$out/evacuation.txt" | sed 's/^/  evacuation: /'
python3 - "$start" "$end" "$singles_ms" "$evac_bytes" "$single_gbps" "$link_gbps" "$vms" "$mib" "$concurrent" <<'PY'
import sys
start, end, singles_ms, evac_bytes, single_gbps, link_gbps = map(float, sys.argv[1:7])
vms, mib, concurrent = sys.argv[7:10]
evac_s = end - start
evac_gbps = evac_bytes * 8 / evac_s / 1e9
print(f"\n| {vms} x {mib} MiB, {concurrent} at once | seconds | Gbit/s on the wire | ratio |")
print("|---|---|---|---|")
print(f"| evacuation (maintenance on, as the task reports plus the client's wait) | {evac_s:.2f} | {evac_gbps:.2f} | 1 |")
print(f"| sum of the single migrations | {singles_ms / 1e3:.2f} | {single_gbps:.2f} | evacuation / sum = {evac_s / (singles_ms / 1e3):.2f} |")
print(f"| the vMotion link, pre-flight measurement | - | {link_gbps:.2f} | evacuation fills {evac_gbps / link_gbps * 100:.0f} % of it, one migration {single_gbps / link_gbps * 100:.0f} % |")
PY
