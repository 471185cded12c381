#!/bin/bash
# Lab switchover without loss (TAP, root): while a VM moves between the lab's hosts, the client
# pings it every millisecond, streams UDP through its echo service at 10,000 datagrams/s and holds
# a TCP echo stream (its own kernel's TCP against the VM's, whose connection moves in the VM's
# memory), all through tor (the Linux bridge). With forwarding (the default) nothing is
# lost or duplicated, pre-copy and in the default hybrid mode; with `forward off` the frames that
# reach the source after the pause are lost, which shows the forwarding does the work (over a
# vMotion link 5 ms long each way, so the pause lasts a 10 ms round trip; the same link with
# forwarding loses nothing).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
stream=$here/../../tools/lab/udp_stream.py
tcp_stream=$here/../../tools/lab/tcp_stream.py
dir=$(mktemp -d /tmp/ferry-lab-switchover-XXXXXX)
key=/run/ferry/lab-vmotion.key

trap lab_cleanup EXIT

"$lab" up >"$dir/up.log" 2>&1 || { echo "Bail out! the lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }

mac=02:00:00:00:04:01
ip=10.0.0.80
check "a 128 MiB VM on host-a, writing 2,000 pages/s" ctl host-a vm create web04 mem 128 \
	mac $mac ip $ip/24 portgroup "VM Network" workload hotcold,rate=2000,fill=50
check "it answers ping" in_ns client ping -c 2 -i 0.2 -W 2 $ip

# traffic <name> <ip> <migrate arguments...>: 3 s of pings every 1 ms and 10,000 datagrams/s to
# the VM at ip, the migration started half a second in; the figures land in $dir/<name>.*.
traffic() {
	local name=$1 to=$2
	shift
	in_ns client ping -q -i 0.001 -c 3000 -W 1 $to >"$dir/$name.ping" 2>&1 &
	local ping=$!
	in_ns client python3 "$stream" $to 7 10000 3 >"$dir/$name.udp" 2>&1 &
	local udp=$!
	in_ns client python3 "$tcp_stream" $to 7 200000 3 >"$dir/$name.tcp" 2>&1 &
	local tcp=$!
	sleep 0.5 # the traffic runs before the migration starts: part of the scenario
	migrate "${@:2}" >"$dir/$name.migrate" 2>&1
	local s=$?
	wait $ping
	wait $udp
	wait $tcp
	sed 's/^/# /' "$dir/$name.ping" "$dir/$name.udp"
	grep -E 'frames_|hold_ms|announce_after|downtime_ms' "$dir/$name.migrate" | sed 's/^/# /'
	return $s
}
pings_lost() { awk '/packets transmitted/ { print $1 - $4 }' "$dir/$1.ping"; }
udp_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/$1.udp" "$2"; }
tcp_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/$1.tcp" "$2"; }
# The TCP stream went on byte for byte through the move, never reset, and closed cleanly.
tcp_whole() {
	[ "$(tcp_field "$1" byte_exact)" = True ] && [ "$(tcp_field "$1" reset)" = False ] &&
		[ "$(tcp_field "$1" closed_cleanly)" = True ] && [ "$(tcp_field "$1" sent)" -gt 100000 ]
}
report() {
	echo "pings: $(grep 'packets transmitted' "$dir/$1.ping"); udp: $(cat "$dir/$1.udp"); tcp: $(cat "$dir/$1.tcp")"
	grep -E 'downtime_ms|frames_|hold_ms|last_frame|announce_after|duplicate|hold_full' \
		"$dir/$1.migrate" | tr -s ' ' | tr '\n' ' '
	echo
	# The VM's own TCP, wherever it runs now: what a failure needs to be understood.
	local h
	for h in host-a host-b; do
		ctl "$h" vm show web04 2>/dev/null | grep -E '^(tcp_|rx_dropped|state)' | tr -s ' ' |
			tr '\n' ' ' | sed "s/^/$h: /"
	done
	echo
}
nothing_lost() {
	report "$1"
	[ "$(pings_lost "$1")" = 0 ] && [ "$(udp_field "$1" lost)" = 0 ] &&
		[ "$(udp_field "$1" duplicated)" = 0 ] && [ "$(udp_field "$1" sent)" -gt 20000 ] &&
		tcp_whole "$1"
}
something_lost() { report "$1"; tcp_whole "$1" && [ $(($(pings_lost "$1") + $(udp_field "$1" lost))) -gt 0 ]; }
held_and_forwarded() { ctl "$1" -j migrate status | grep -q '"frames_forwarded": [1-9]'; }

check "pre-copy host-a -> host-b under traffic" traffic precopy $ip host-a web04 to 50.50.50.2 \
	key $key mode precopy min-bandwidth 100M rtt-limit 50
check "pre-copy: no ping lost, no datagram lost or duplicated, TCP byte-exact" nothing_lost precopy
sed 's/^/# /' "$dir/out" # the figures, pass or fail
check "the default (hybrid) host-b -> host-a under traffic" traffic hybrid $ip host-b web04 \
	to 50.50.50.1 key $key min-bandwidth 100M rtt-limit 50
check "hybrid: no ping lost, no datagram lost or duplicated, TCP byte-exact" nothing_lost hybrid
sed 's/^/# /' "$dir/out" # the figures, pass or fail
# Without forwarding: the vMotion link made 5 ms long each way (host-a's own link emulation), so
# the VM stays paused at least one 10 ms round trip; what reaches the source meanwhile is lost.
check "host-a's vMotion uplink delays 5 ms" ctl host-a port set vmo0 impair delay 5
check "forward off: host-a -> host-b under traffic" traffic off $ip host-a web04 \
	to 50.50.50.2 key $key mode precopy forward off min-bandwidth 100M rtt-limit 50
check "forward off: frames that reached the source after the pause are lost (TCP recovers)" something_lost off
sed 's/^/# /' "$dir/out" # the figures, pass or fail
check "link emulation off" ctl host-a port set vmo0 impair off
check "back to host-a" migrate host-b web04 to 50.50.50.1 key $key min-bandwidth 100M rtt-limit 50
check "host-a's vMotion uplink delays 5 ms again" ctl host-a port set vmo0 impair delay 5
check "forward on: host-a -> host-b over the same 5 ms link" traffic delayed $ip host-a web04 \
	to 50.50.50.2 key $key mode precopy min-bandwidth 100M rtt-limit 50
check "over 5 ms: no ping lost, no datagram lost or duplicated, TCP byte-exact" nothing_lost delayed
sed 's/^/# /' "$dir/out" # the figures, pass or fail
# A 10 ms pause at 10,000 datagrams/s: the source certainly held some (a sub-millisecond pause on
# the normal link may catch none).
check "over 5 ms: the source held frames and forwarded them" held_and_forwarded host-a
check "link emulation off, again" ctl host-a port set vmo0 impair off
check "it answers ping on host-b" in_ns client ping -c 2 -i 0.2 -W 2 $ip

tap_finish
