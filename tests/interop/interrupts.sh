#!/bin/bash
# Interop test (TAP): interrupt-mode idle. A real ferryd with a net_tap uplink (rx interrupts) and
# a vmk sleeps on the tap's interrupt when idle, and a real Linux ping through the tap wakes it;
# a port without interrupts (af_packet) puts it back on the timed back-off, and removing that
# port returns it to interrupts. Needs root (CI is root).
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
id=$$
sw=fq$id-sw peer=fq$id-peer
dir=$(mktemp -d /tmp/ferry-interrupts-XXXXXX)
sock=$dir/ferryd.sock
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del "$sw" 2>/dev/null
	ip netns del "$peer" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ctl() { "$ferryctl" -s "$sock" "$@"; }
# A field of worker 0 in `show loop`.
worker0() { ctl -j show loop | python3 -c "import json, sys; print(json.load(sys.stdin)['forwarding_workers'][0]['$1'])"; }
idle_is() { [ "$(worker0 idle)" = "$1" ]; }
slept_since() { [ "$(worker0 sleeps)" -gt "$1" ]; }
ip netns add "$sw" && ip netns add "$peer" || { echo "Bail out! cannot create namespaces"; exit 1; }
ip netns exec "$peer" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

ip netns exec "$sw" "$ferryd" -s "$sock" -- --no-huge --no-shconf -m 256 \
	--no-pci --no-telemetry --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
within 20 ctl show version >/dev/null 2>&1 || { echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }

check "a net_tap uplink" ctl port add up0 "net_tap_fq$id,iface=fq$id" role uplink
# ferryd made the tap in its namespace; the peer takes the other end (the PMD keeps its fd).
ip -n "$sw" link set "fq$id" netns "$peer"
ip -n "$peer" link set "fq$id" up
ip -n "$peer" addr add 10.0.9.2/24 dev "fq$id"
check "a port group" ctl portgroup add Management
check "a vmk on it" ctl vmk add vmk0 portgroup Management ip 10.0.9.1 netmask 255.255.255.0
check "the tap has rx interrupts: worker 0 idles on them" idle_is interrupts
check "a ping through the tap is answered" ip netns exec "$peer" ping -c 3 -i 0.2 -W 2 10.0.9.1

# Let it fall asleep, then wake it with one ping: that wake-up is an event, not a timeout.
before=$(worker0 event_wakeups)
sleeps=$(worker0 sleeps)
check "idle, it sleeps" within 5 slept_since "$sleeps"
check "a ping after idling is answered" ip netns exec "$peer" ping -c 1 -W 2 10.0.9.1
after=$(worker0 event_wakeups)
check "and the frame woke the worker ($before then $after event wake-ups)" test "$after" -gt "$before"

# A port whose PMD has no interrupts: the worker cannot sleep on events any more.
ip netns exec "$sw" ip link add "fq${id}a" type veth peer name "fq${id}b"
ip -n "$sw" link set "fq${id}a" up
check "an af_packet port" ctl port add p1 "net_af_packet_fq$id,iface=fq${id}a" role vnic portgroup Management
check "with it, worker 0 keeps the timed back-off" idle_is back-off
check "still answering" ip netns exec "$peer" ping -c 1 -W 2 10.0.9.1
check "the af_packet port removed" ctl port del p1
check "interrupts again" idle_is interrupts
check "and answering" ip netns exec "$peer" ping -c 1 -W 2 10.0.9.1

tap_finish
