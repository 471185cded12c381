#!/bin/bash
# Interop test (TAP): a VMkernel port of a real ferryd answers real Linux peers on a veth into a
# network namespace: ping, arping, vmkping from the vmk, link emulation on the port, a socat UDP client against the vmk's UDP
# echo service, a closed port answered with port unreachable. Every frame ferryd sent must dissect
# in tshark with no malformed-packet or checksum warning. Needs root (CI is root).
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
id=$$
sw=fi$id-sw peer=fi$id-peer
dir=$(mktemp -d /tmp/ferry-interop-XXXXXX)
sock=$dir/ferryd.sock
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "${dump:-}" ] && kill "$dump" 2>/dev/null
	ip netns del "$sw" 2>/dev/null
	ip netns del "$peer" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT


# Waits for a condition with a deadline (tenths of a second).
wait_for() {
	local tries=$1
	shift
	for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

ctl() { "$ferryctl" -s "$sock" "$@"; }

ip netns add "$sw" && ip netns add "$peer" || { echo "Bail out! cannot create namespaces"; exit 1; }
ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$peer" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add "fi${id}s" type veth peer name eth0 netns "$peer"
ip link set "fi${id}s" netns "$sw"
ip -n "$sw" link set "fi${id}s" up
ip -n "$peer" link set eth0 up
ip -n "$peer" addr add 10.0.0.2/24 dev eth0
ip netns exec "$peer" ethtool -K eth0 tx off >/dev/null

ip netns exec "$sw" "$ferryd" -s "$sock" -- --no-huge --no-shconf -m 256 \
	--no-pci --no-telemetry --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
wait_for 200 ctl show version || { echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }

# Capture everything that reaches the peer, i.e. everything ferryd sent it.
ip netns exec "$peer" tcpdump -i eth0 -Q in -w "$dir/sent.pcap" -U >/dev/null 2>"$dir/tcpdump.err" &
dump=$!
wait_for 50 grep -q listening "$dir/tcpdump.err"

check "portgroup and port" ctl portgroup add Management
check "af_packet port" ctl port add p0 "net_af_packet0,iface=fi${id}s" role vnic portgroup Management
check "vmk add, the vSphere netmask form" ctl vmk add vmk0 portgroup Management ip 10.0.0.1 \
	netmask 255.255.255.0
check "UDP echo on port 7" ctl vmk udp-echo vmk0 7

check "Linux ping to the vmk" ip netns exec "$peer" ping -c 3 -i 0.2 -W 2 10.0.0.1
check "Linux ping of a full 1500-byte frame, don't fragment" ip netns exec "$peer" ping -M do -s 1472 -c 2 -i 0.2 -W 2 10.0.0.1
check "Linux arping to the vmk" ip netns exec "$peer" arping -c 2 -w 3 -I eth0 10.0.0.1
udp_echo() { [ "$(echo ferry-udp | ip netns exec "$peer" socat -t 2 - UDP:10.0.0.1:7)" = ferry-udp ]; }
check "socat UDP client against the vmk's echo service" udp_echo
refused() { echo x | ip netns exec "$peer" socat -t 2 - UDP:10.0.0.1:9 2>&1 | grep -q "Connection refused"; }
check "a closed UDP port answers port unreachable" refused
check "vmkping from the vmk to the Linux peer" ctl vmkping 10.0.0.2 -c 3 -i 0.2
check "vmkping of a full 1500-byte frame, don't fragment" ctl vmkping 10.0.0.2 -c 2 -s 1472 -d -i 0.2
no_answer() { ! ctl vmkping 10.0.0.3 -c 2 -i 0.1 -W 0.5; }
check "vmkping to a silent address reports 100% loss and fails" no_answer
too_big() { ! ctl vmkping 10.0.0.2 -s 1473 -d && ctl vmkping 10.0.0.2 -s 1473 -d 2>&1 | grep -q "do not fit"; }
check "vmkping larger than the MTU is refused with the reason" too_big
# The vmk's buffers were sized for MTU 1500 when it was added: a jumbo MTU needs it added again.
no_jumbo() { ! ctl vmk set vmk0 mtu 9000 && ctl vmk set vmk0 mtu 9000 2>&1 | grep -q "sized for its MTU when it was added"; }
check "raising a vmk's MTU past its buffers is refused with what to do" no_jumbo
delayed() {
	ctl port set p0 impair delay 20 || return 1
	local avg
	avg=$(ip netns exec "$peer" ping -c 3 -i 0.2 -W 2 10.0.0.1 | awk -F/ '/^rtt/ {print $5}')
	echo "average RTT with 20 ms emulated delay: $avg ms"
	awk -v a="$avg" 'BEGIN { exit !(a >= 20 && a < 100) }'
}
check "emulated delay on the port shows in Linux ping's RTT" delayed
lossy() { ctl port set p0 impair loss 100% && ! ip netns exec "$peer" ping -c 2 -i 0.2 -W 1 10.0.0.1; }
check "emulated 100% loss stops Linux ping" lossy
restored() { ctl port set p0 impair off && ip netns exec "$peer" ping -c 2 -i 0.2 -W 2 10.0.0.1; }
check "impair off restores the link" restored
arp_entry() { ctl show arp | grep -E "10\.0\.0\.2 .* reachable"; }
check "the vmk learned the peer in its ARP cache" arp_entry
readdress() {
	ctl vmk set vmk0 ip 10.0.0.5/24 arp-reachable 20 &&
		ip netns exec "$peer" ping -c 2 -i 0.2 -W 2 10.0.0.5 &&
		! ip netns exec "$peer" ping -c 1 -W 1 10.0.0.1
}
check "vmk set moves the address: the new one answers, the old one is gone" readdress
mac_entry() { ctl show mac | grep -q vmk0; }
check "the vswitch learned the vmk's MAC on its port" mac_entry

kill "$dump" 2>/dev/null
wait "$dump" 2>/dev/null
dump=
frames=$(tshark -r "$dir/sent.pcap" 2>/dev/null | wc -l)
dissects_clean() {
	[ "$frames" -ge 10 ] || { echo "only $frames frames captured"; return 1; }
	tshark -r "$dir/sent.pcap" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
		-Y "_ws.malformed || _ws.expert.severity >= warning" 2>/dev/null | tee "$dir/bad"
	[ ! -s "$dir/bad" ]
}
check "every frame ferryd sent ($frames) dissects clean in tshark" dissects_clean

tap_finish
