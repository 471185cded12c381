#!/bin/bash
# Sourced by the lab's tests after tap.sh: the helpers they share. The test sets $lab (the lab
# script) and $dir (its scratch folder) first.

# Runs a command in one of the lab's namespaces (client, tor, host-a, ...).
in_ns() { ip netns exec "ferry-lab-$1" "${@:2}"; }
# ferryctl on a host: ctl host-a <command...>
ctl() { "$lab" ctl "$@"; }
# The UDP counter of the VM at an address, as the client reads it (one request, one count). From
# a fixed source port that Wireshark knows no protocol on (LAB_UDP_SOURCE_PORT): an ephemeral one
# can be, say, 54328, which tshark dissects as Elasticsearch and calls the reply malformed.
LAB_UDP_SOURCE_PORT=41777
counter() {
	echo x | in_ns client socat -t 2 - "UDP:$1:7777,sourceport=$LAB_UDP_SOURCE_PORT" |
		od -An -tu8 --endian=big | tr -d ' '
}
# True if the VM runs on the host: runs_on <vm> <host>.
runs_on() { ctl "$2" vm show "$1" | grep -q "state: *running"; }
# migrate <host> <migrate start arguments...>: waits for the end, shows ferryctl's report, and
# keeps it in $dir/migrate.out.
migrate() {
	ctl "$1" migrate start "${@:2}" --wait >"$dir/migrate.out" 2>&1
	local s=$?
	cat "$dir/migrate.out"
	return $s
}
# The client's ping log in $dir/ping.out answered at least 9 times in 10.
answered() {
	local sent received
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$dir/ping.out")
	received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$dir/ping.out")
	echo "# ping: $received of $sent answered"
	[ -n "$sent" ] && [ "$received" -ge $((sent * 9 / 10)) ]
}
