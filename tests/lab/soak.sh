#!/bin/bash
# Lab soak (TAP, root): migrations back and forth between the lab's two ferryd hosts with 2 % loss
# and 2 % reorder on both vMotion links, the memory verified by hash every time, then nothing
# leaked: packet buffers, sessions and file descriptors as before. SOAK_MIGRATIONS sets how many
# (the suite runs 10; tools/bench/soak.sh runs 50).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dir=$(mktemp -d /tmp/ferry-lab-soak-XXXXXX)
key=/run/ferry/lab-vmotion.key
count=${SOAK_MIGRATIONS:-10}

trap lab_cleanup EXIT

json() { ctl "$1" -j "${@:2}"; }
in_use() { json "$1" show pools | python3 -c 'import json,sys; print(sum(p["in_use"] for p in json.load(sys.stdin)["pools"]))'; }
fds() { ls "/proc/$(cat /run/ferry/lab-$1.pid)/fd" | wc -l; }
running_sessions() {
	json "$1" migrate status | python3 -c '
import json, sys
print(sum(m["status"] in ("setup", "pre-flight", "active", "switchover", "unknown-outcome")
          for m in json.load(sys.stdin)["migrations"]))'
}
settled() { [ "$(in_use "$1")" = "$2" ]; }

"$lab" up >"$dir/up.log" 2>&1 || { echo "Bail out! the lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }
check "a 64 MiB VM on host-a, memory written, 2,000 pages/s" ctl host-a vm create soak \
	mem 64 mac 02:00:00:00:03:01 ip 10.0.0.70/24 portgroup "VM Network" \
	workload uniform,rate=2000,fill=100
declare -A mbufs_before fds_before
impair() { ctl host-a port set vmo0 impair "$@" && ctl host-b port set vmo0 impair "$@"; }
check "impair both vMotion uplinks: loss 2 %, reorder 2 %" impair loss 2 reorder 2 seed 11
for h in host-a host-b; do
	mbufs_before[$h]=$(in_use $h)
	fds_before[$h]=$(fds $h)
done
echo "# before: mbufs in use ${mbufs_before[host-a]}/${mbufs_before[host-b]}, fds ${fds_before[host-a]}/${fds_before[host-b]}"

from=host-a to=host-b to_ip=50.50.50.2
failures=0
for i in $(seq "$count"); do
	if ! ctl $from migrate start soak to $to_ip key $key verify on min-bandwidth 10M \
		rtt-limit 100 --wait >"$dir/m.out" 2>&1 ||
		! grep -q "verified: *yes" "$dir/m.out" || ! runs_on soak $to; then
		failures=$((failures + 1))
		sed 's/^/# /' "$dir/m.out"
	fi
	if [ "$from" = host-a ]; then from=host-b to=host-a to_ip=50.50.50.1
	else from=host-a to=host-b to_ip=50.50.50.2; fi
done
check "$count migrations back and forth over the impaired links, each verified" [ "$failures" = 0 ]
check "link emulation off" impair off
for h in host-a host-b; do
	check "$h: no session left running" [ "$(running_sessions $h)" = 0 ]
	check "$h: packet buffers in use as before (${mbufs_before[$h]})" \
		within 5 settled $h "${mbufs_before[$h]}"
	check "$h: file descriptors as before (${fds_before[$h]})" [ "$(fds $h)" = "${fds_before[$h]}" ]
done
echo "# after: mbufs in use $(in_use host-a)/$(in_use host-b), fds $(fds host-a)/$(fds host-b)"
tap_finish
