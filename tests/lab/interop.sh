#!/bin/bash
# Lab interop test (TAP): the namespace lab (tools/lab) with two ferryd hosts, a Linux bridge as
# the physical switch and a private vMotion bridge (MTU 9000), against real Linux peers: ping to
# every vmk, vmkping between the hosts and to a Linux peer at MTU 1500 and 9000, arping, socat against a vmk's UDP echo, the
# physical switch's fdb, and every frame the hosts sent dissected clean by tshark.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dir=$(mktemp -d /tmp/ferry-lab-test-XXXXXX)
dumps=()

cleanup() {
	for p in "${dumps[@]}"; do kill "$p" 2>/dev/null; done
	lab_cleanup
}
trap cleanup EXIT


"$lab" up >"$dir/up.log" 2>&1 || { echo "Bail out! the lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }

# What the hosts send, as the Linux bridges receive it.
for spot in tor:host-a tor:host-b vmnet:host-a vmnet:host-b; do
	n=${spot%%:*} ifc=${spot##*:}
	in_ns "$n" tcpdump -i "$ifc" -Q in -U -w "$dir/$n-$ifc.pcap" >/dev/null 2>"$dir/$n-$ifc.err" &
	dumps+=($!)
done
for f in "$dir"/*.err; do
	for _ in $(seq 50); do grep -q listening "$f" && break; sleep 0.1; done
done

check "Linux ping from the vMotion network to host-a's vmk1" in_ns vmnet ping -c 2 -i 0.2 -W 2 50.50.50.1
check "Linux ping from the vMotion network to host-b's vmk1" in_ns vmnet ping -c 2 -i 0.2 -W 2 50.50.50.2
check "Linux ping from the client to host-a's management vmk0" in_ns client ping -c 2 -i 0.2 -W 2 10.0.0.11
check "Linux ping from the client to host-b's management vmk0" in_ns client ping -c 2 -i 0.2 -W 2 10.0.0.12
check "vmkping host-a -> host-b over the vMotion network" ctl host-a vmkping 50.50.50.2 -c 3 -i 0.2
check "vmkping host-b -> host-a, full 1500-byte frames, don't fragment" ctl host-b vmkping 50.50.50.1 -c 2 -s 1472 -d -i 0.2
check "vmkping host-a -> the Linux peer on the vMotion network" ctl host-a vmkping 50.50.50.3 -c 2 -i 0.2
check "Linux ping at MTU 9000, don't fragment, to host-a's vmk1" in_ns vmnet ping -M do -s 8972 -c 2 -i 0.2 -W 2 50.50.50.1
check "vmkping host-a -> host-b at MTU 9000, don't fragment" ctl host-a vmkping 50.50.50.2 -c 2 -s 8972 -d -i 0.2
check "vmkping host-b -> the Linux peer at MTU 9000, don't fragment" ctl host-b vmkping 50.50.50.3 -c 2 -s 8972 -d -i 0.2
check "Linux arping to host-b's vmk1" in_ns vmnet arping -c 2 -w 3 -I vmotion-net 50.50.50.2
udp_echo() { [ "$(echo lab-udp | in_ns vmnet socat -t 2 - "UDP:50.50.50.1:7,sourceport=$LAB_UDP_SOURCE_PORT")" = lab-udp ]; }
check "socat UDP client against host-a's vmk1 echo service" udp_echo
fdb_has() { # host, vmk: the tor bridge learned that vmk's MAC on the host's port
	local mac
	mac=$(ctl "$1" -j show vmk 2>/dev/null | grep -o "\"name\": \"$2\"[^}]*\"mac\": \"[^\"]*\"" | grep -o '[0-9A-F:]\{17\}' | tr 'A-F' 'a-f')
	[ -n "$mac" ] && in_ns tor bridge fdb show br tor | grep -q "^$mac dev $1 "
}

check "tor's bridge fdb has host-a's vmk0 MAC on port host-a" fdb_has host-a vmk0
check "tor's bridge fdb has host-b's vmk0 MAC on port host-b" fdb_has host-b vmk0

# An emulated VM on host-a's "VM Network": it answers the client, keeps its UDP counter in its
# own memory, and goes silent while paused.
check "vm create on host-a" ctl host-a vm create web01 mem 1024 mac 00:50:56:00:00:01 \
	ip 10.0.0.50/24 portgroup "VM Network" workload hotcold,rate=2000
check "the client pings the VM" in_ns client ping -c 2 -i 0.2 -W 2 10.0.0.50
counting() { [ "$(counter 10.0.0.50)" = 1 ] && [ "$(counter 10.0.0.50)" = 2 ] && [ "$(counter 10.0.0.50)" = 3 ]; }
check "the VM's UDP counter counts 1, 2, 3" counting
in_memory() { ctl host-a -j vm show web01 | grep -q '"udp_counter": 3'; }
check "the counter lives in the VM's memory" in_memory
paused_silent() { ctl host-a vm pause web01 && ! in_ns client ping -c 1 -W 1 10.0.0.50; }
check "a paused VM answers nothing" paused_silent
resumed() { ctl host-a vm resume web01 && in_ns client ping -c 2 -i 0.2 -W 2 10.0.0.50 && [ "$(counter 10.0.0.50)" = 4 ]; }
check "resumed, it answers again and its counter goes on at 4" resumed
vm_fdb() { in_ns tor bridge fdb show br tor | grep -q "^00:50:56:00:00:01 dev host-a "; }
check "tor learned the VM's MAC on host-a's port" vm_fdb

for p in "${dumps[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
dumps=()
clean_capture() {
	local f=$1 n
	n=$(tshark -r "$f" 2>/dev/null | wc -l)
	[ "$n" -gt 0 ] || { echo "$f: no frames"; return 1; }
	tshark -r "$f" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
		-Y "_ws.malformed || _ws.expert.severity >= warning" 2>/dev/null | tee "$dir/bad"
	echo "$f: $n frames"
	[ ! -s "$dir/bad" ]
}
for f in "$dir"/*.pcap; do
	check "every frame in $(basename "$f") dissects clean in tshark" clean_capture "$f"
done

# The same two hosts with a memif vMotion link (shared memory between the two ferryd).
memif_up() { "$lab" down && FERRY_LAB_VMOTION_LINK=memif "$lab" up; }
check "the lab with a memif vMotion link comes up" memif_up
check "vmkping host-a -> host-b over memif" ctl host-a vmkping 50.50.50.2 -c 3 -i 0.2
check "vmkping host-b -> host-a over memif at MTU 9000, don't fragment" ctl host-b vmkping 50.50.50.1 -c 2 -s 8972 -d -i 0.2

tap_finish
