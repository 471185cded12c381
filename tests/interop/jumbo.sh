#!/bin/bash
# Interop test (TAP): jumbo frames in chains. net_tap ports with MTU 9000 scatter what they receive
# into chains of standard 2 KB buffers, and a vmk with MTU 9000 gets 8,000-byte datagrams from a
# real Linux host whole (its ring port wants one segment: the chain is made whole for it). DPDK
# 22.11's tap sends nothing over 1,522 bytes (it refuses an MTU above 1500), so jumbo frames out of
# a tap, host to host, need a NIC: not tested here. Needs root (CI is root).
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
id=$$
sw=fj$id-sw ha=fj$id-a hb=fj$id-b
dir=$(mktemp -d /tmp/ferry-jumbo-XXXXXX)
sock=$dir/ferryd.sock
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for ns in "$sw" "$ha" "$hb"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT

ctl() { "$ferryctl" -s "$sock" "$@"; }
# A field of a port in `show ports`.
port_field() {
	ctl -j show ports | python3 -c "import json, sys
print(next(p['$2'] for p in json.load(sys.stdin)['ports'] if p['name'] == '$1'))"
}
field_is() { [ "$(port_field "$1" "$2")" = "$3" ]; }

for ns in "$sw" "$ha" "$hb"; do
	ip netns add "$ns" || { echo "Bail out! cannot create namespaces"; exit 1; }
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip netns exec "$sw" "$ferryd" -s "$sock" -- --no-huge --no-shconf -m 256 \
	--no-pci --no-telemetry --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
within 20 ctl show version >/dev/null 2>&1 || { echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }

check "a port group" ctl portgroup add Management
check "tap uplink, MTU 9000" ctl port add up0 "net_tap_fja$id,iface=fja$id" role uplink mtu 9000
check "tap VM port, MTU 9000" ctl port add p1 "net_tap_fjb$id,iface=fjb$id" role vnic \
	portgroup Management mtu 9000
check "a vmk with MTU 9000" ctl vmk add vmk0 portgroup Management ip 10.0.8.3 \
	netmask 255.255.255.0 mtu 9000
check "its UDP echo on port 7" ctl vmk udp-echo vmk0 7
# Each tap's other end goes to its host (the PMD keeps its file descriptor).
i=1
for h in a b; do
	ns=fj$id-$h
	ip -n "$sw" link set "fj$h$id" netns "$ns"
	ip -n "$ns" link set "fj$h$id" mtu 9000 up
	ip -n "$ns" addr add "10.0.8.$i/24" dev "fj$h$id"
	i=$((i + 1))
done

check "the taps scatter jumbo frames into chains" field_is up0 jumbo chains
check "of standard buffers, not 9 KB ones" field_is up0 data_room 2176
check "a plain ping host to host" ip netns exec "$ha" ping -c 2 -i 0.2 -W 2 10.0.8.2
vmk_field() { ctl -j show vmk | python3 -c "import json, sys; print(json.load(sys.stdin)['vmks'][0]['$1'])"; }
rx_at_least() { [ "$(vmk_field rx_packets)" -ge "$1" ]; }
rx=$(vmk_field rx_packets)
drops=$(vmk_field drops)
# Three 8,000-byte datagrams, unfragmented (MTU 9000 on the host's side too), to the vmk.
check "host b sends three 8,000-byte datagrams" ip netns exec "$hb" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: never fragment
for _ in range(3):
    s.sendto(b'j' * 8000, ('10.0.8.3', 7))"
check "the vmk received them" within 5 rx_at_least $((rx + 3))
check "whole: its IPv4 stack dropped none of them" test "$(vmk_field drops)" = "$drops"
check "nothing dropped for want of a buffer" bash -c "[ \$(\"$ferryctl\" -s \"$sock\" -j show port up0 stats | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"drops_by_reason\"][\"no_mbuf\"])') = 0 ]"

tap_finish
