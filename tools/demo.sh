#!/bin/bash
# ferry's main job, for now: ferryd switches real Linux traffic between three hosts (network
# namespaces on veth links, attached through DPDK's af_packet PMD), shown through ferryctl.
# The live-migration demo on the lab replaces this once the migration engine exists.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (it creates network namespaces)" >&2
	exit 1
fi
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

sw=ferry-demo-sw
hosts=(a b c)
sock=/run/ferry/demo.sock
log=$(mktemp /tmp/ferry-demo-XXXXXX.log)
ferryd_pid=
ctl() { build/tools/ferryctl -s "$sock" "$@"; }

cleanup() {
	local status=$?
	[ -n "$ferryd_pid" ] && kill "$ferryd_pid" 2>/dev/null && wait "$ferryd_pid" 2>/dev/null
	for h in "${hosts[@]}"; do ip netns del "ferry-demo-$h" 2>/dev/null || true; done
	ip netns del "$sw" 2>/dev/null || true
	if [ "$status" -ne 0 ]; then
		echo "demo: FAILED (status $status); ferryd's log:" >&2
		cat "$log" >&2
	fi
	rm -f "$log"
}
trap cleanup EXIT

# Idempotent: remove what an interrupted run may have left.
for h in "${hosts[@]}"; do ip netns del "ferry-demo-$h" 2>/dev/null || true; done
ip netns del "$sw" 2>/dev/null || true

echo "== building three hosts on veth links to a switch namespace"
ip netns add "$sw"
ip -n "$sw" link set lo up
# The switch side of each link is a wire, not a host: it must send nothing of its own.
ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
i=1
for h in "${hosts[@]}"; do
	ns="ferry-demo-$h"
	ip netns add "$ns"
	ip link add "demo-$h" type veth peer name eth0 netns "$ns"
	ip link set "demo-$h" netns "$sw"
	ip -n "$sw" link set "demo-$h" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.0.0.1$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	# Frames cross a userspace switch: checksums must be complete when they leave the host.
	ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
	echo "   host $h: 10.0.0.1$i on eth0 <-> demo-$h (switch side)"
	i=$((i + 1))
done

echo "== starting ferryd (no hugepages, 256 MB, idle back-off)"
ip netns exec "$sw" build/tools/ferryd -s "$sock" -- \
	--no-huge --no-shconf -m 256 --no-pci --lcores='0@(0-1)' >"$log" 2>&1 &
ferryd_pid=$!
for _ in $(seq 100); do ctl show version >/dev/null 2>&1 && break; sleep 0.1; done
ctl show version

echo "== a port group, and one af_packet VM port per host in it"
ctl portgroup add "VM Network" >/dev/null
for h in "${hosts[@]}"; do
	ctl port add "$h" "net_af_packet_$h,iface=demo-$h" role vnic portgroup "VM Network" >/dev/null
done
echo "\$ ferryctl show ports"
ctl show ports

echo "== Linux ping between the hosts, through ferryd"
fail=0
for pair in a:2 b:3 c:1; do
	from=${pair%%:*}
	to=10.0.0.1${pair##*:}
	if out=$(ip netns exec "ferry-demo-$from" ping -c 5 -i 0.2 -W 2 "$to"); then
		echo "   $from -> $to: $(echo "$out" | grep -E 'packets transmitted')"
	else
		echo "   $from -> $to: FAILED"
		echo "$out"
		fail=1
	fi
done

echo "== the MAC table ferryd learned"
echo "\$ ferryctl show mac"
ctl show mac

echo "== counters"
for h in "${hosts[@]}"; do
	echo "\$ ferryctl show port $h stats"
	ctl show port "$h" stats | head -6
done
echo "\$ ferryctl show loop"
ctl show loop | head -14

if [ "$fail" -ne 0 ]; then
	echo "demo: some pings got no reply" >&2
	exit 1
fi
echo "== demo done: every ping was switched by ferryd"
