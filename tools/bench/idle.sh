#!/bin/bash
# Measures the idle back-off: the CPU an idle ferryd with a few ports uses (from /proc/PID/stat,
# as a percentage of one core), and how long a frame that arrives after a long idle spell waits
# before ferryd forwards it (kernel timestamps on the two veths it crosses).
#
# --tap makes the two ports net_tap (rx interrupts: the idle worker sleeps on them) instead of
# af_packet on veths, and leaves out the ring and null ports (which cannot wake a worker).
#
# usage: tools/bench/idle.sh [--cpu-seconds N] [--idle-seconds N] [--max-sleep-us N] [--tap]
set -euo pipefail
cd "$(dirname "$0")/../.."

cpu_seconds=10
idle_seconds=60
max_sleep_us=1000
tap=0
while [ $# -gt 0 ]; do
	case "$1" in
	--cpu-seconds) cpu_seconds=$2; shift 2 ;;
	--idle-seconds) idle_seconds=$2; shift 2 ;;
	--max-sleep-us) max_sleep_us=$2; shift 2 ;;
	--tap) tap=1; shift ;;
	*) echo "usage: $0 [--cpu-seconds N] [--idle-seconds N] [--max-sleep-us N] [--tap]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "idle: run as root (network namespaces)" >&2; exit 1; }
tools/setup.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

sw=ferry-idle-sw
sock=/run/ferry/idle-bench.sock
log=$(mktemp /tmp/ferry-idle-XXXXXX.log)
cap=$(mktemp -d /tmp/ferry-idle-cap-XXXXXX)
export RUNTIME_DIRECTORY=$cap # EAL's runtime folders go with the run
ferryd_pid=
cleanup() {
	[ -n "$ferryd_pid" ] && kill "$ferryd_pid" 2>/dev/null && wait "$ferryd_pid" 2>/dev/null
	for ns in $sw ferry-idle-a ferry-idle-b; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$log" "$cap"
	rmdir /run/ferry 2>/dev/null || true # made by ferryd for its socket, if nothing else is there
}
trap cleanup EXIT
for ns in $sw ferry-idle-a ferry-idle-b; do ip netns del "$ns" 2>/dev/null || true; done

ip netns add "$sw"
for h in a b; do ip netns add "ferry-idle-$h"; done
ip netns exec "$sw" build/ferryd/ferryd -s "$sock" --max-sleep-us "$max_sleep_us" -- \
	--no-huge --no-shconf -m 256 --no-pci --lcores='0@(0-1)' >"$log" 2>&1 &
ferryd_pid=$!
ctl() { build/ferryctl/ferryctl -s "$sock" "$@"; }
for _ in $(seq 100); do ctl show version >/dev/null 2>&1 && break; sleep 0.1; done
ctl portgroup add pg >/dev/null
i=1
for h in a b; do
	if [ "$tap" = 1 ]; then
		# ferryd makes the tap in the switch's namespace; its peer's end is moved out to
		# the host (the PMD keeps its file descriptor).
		ctl port add "$h" "net_tap_idle_$h,iface=idle-$h" role vnic portgroup pg >/dev/null
		ip -n "$sw" link set "idle-$h" netns "ferry-idle-$h"
		ip -n "ferry-idle-$h" link set "idle-$h" name eth0
	else
		ip link add "idle-$h" type veth peer name eth0 netns "ferry-idle-$h"
		ip link set "idle-$h" netns "$sw"
		ip -n "$sw" link set "idle-$h" up
		ctl port add "$h" "net_af_packet_idle_$h,iface=idle-$h" role vnic portgroup pg >/dev/null
	fi
	ip -n "ferry-idle-$h" addr add "10.0.0.$i/24" dev eth0
	ip -n "ferry-idle-$h" link set eth0 up
	i=$((i + 1))
done
# Static neighbours: nothing but our one probe crosses the switch while it idles.
ip -n ferry-idle-a neigh add 10.0.0.2 lladdr "$(ip -n ferry-idle-b -br link show eth0 | awk '{print $3}')" dev eth0
ip -n ferry-idle-b neigh add 10.0.0.1 lladdr "$(ip -n ferry-idle-a -br link show eth0 | awk '{print $3}')" dev eth0
for h in a b; do
	ip netns exec "ferry-idle-$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done

if [ "$tap" = 0 ]; then
	ctl port add r net_ring_idle0 role vnic portgroup pg >/dev/null
	ctl port add n net_null_idle0,no-rx=1 role vnic portgroup pg >/dev/null
fi
sleep 1

# utime + stime from /proc/PID/stat (whole process, all threads; tick-sampled), and the
# scheduler's exact run time from /proc/PID/schedstat as a cross-check.
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$ferryd_pid/stat"; }
run_ns() { cat /proc/"$ferryd_pid"/task/*/schedstat | awk '{s += $1} END {print s}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }
# Prints "<% from stat> <% from schedstat>" for a process over cpu_seconds.
measure() {
	local t0 r0 t1 r1
	t0=$(cpu_ticks "$1"); r0=$(run_ns "$1")
	sleep "$cpu_seconds"
	t1=$(cpu_ticks "$1"); r1=$(run_ns "$1")
	awk -v t=$((t1 - t0)) -v r=$((r1 - r0)) -v hz="$ticks" -v s="$cpu_seconds" \
		'BEGIN { printf "%.2f %.2f\n", 100 * t / hz / s, 100 * r / 1e9 / s }'
}
read -r cpu run < <(measure "$ferryd_pid")
build/bench/ferry-sleep-floor "$max_sleep_us" &
floor_pid=$!
read -r floor_cpu floor_run < <(measure "$floor_pid")
kill "$floor_pid"
wait "$floor_pid" 2>/dev/null || true
echo "idle CPU: ${cpu}% of one core over ${cpu_seconds} s from /proc/PID/stat (${run}% from schedstat)"
if [ "$tap" = 1 ]; then
	echo "          2 net_tap ports, idle mode: $(ctl -j show loop | python3 -c 'import json, sys; print(json.load(sys.stdin)["forwarding_workers"][0]["idle"])')"
else
	echo "          4 ports (2 af_packet, ring, null), maximum sleep ${max_sleep_us} us"
fi
echo "          reference, a bare ${max_sleep_us} us sleep loop: ${floor_cpu}% (${floor_run}%);" \
	"ferryd/reference = $(awk -v a="$run" -v b="$floor_run" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"

# One probe frame after an idle spell: when did it enter ferryd's ingress veth, and when did
# ferryd send it out of the egress veth? Both timestamps come from the kernel's clock.
remaining=$((idle_seconds - 2 * cpu_seconds - 1))
[ "$remaining" -gt 0 ] && sleep "$remaining"
# With veths, the switch's own ends; with taps, the hosts' (their ends are the taps).
if [ "$tap" = 1 ]; then
	in_at=(ip netns exec ferry-idle-a tcpdump -i eth0) out_at=(ip netns exec ferry-idle-b tcpdump -i eth0)
else
	in_at=(ip netns exec "$sw" tcpdump -i idle-a) out_at=(ip netns exec "$sw" tcpdump -i idle-b)
fi
"${in_at[@]}" -c 1 -tt -n -l icmp >"$cap/in" 2>"$cap/in.err" &
in_pid=$!
"${out_at[@]}" -c 1 -tt -n -l icmp >"$cap/out" 2>"$cap/out.err" &
out_pid=$!
# tcpdump says "listening on" once its capture is open.
for _ in $(seq 100); do
	grep -q listening "$cap/in.err" && grep -q listening "$cap/out.err" && break
	sleep 0.05
done
ip netns exec ferry-idle-a ping -c 1 -W 2 10.0.0.2 >/dev/null || true
wait "$in_pid" "$out_pid" 2>/dev/null || true
tin=$(awk 'NR==1 {print $1}' "$cap/in")
tout=$(awk 'NR==1 {print $1}' "$cap/out")
if [ -z "$tin" ] || [ -z "$tout" ]; then
	echo "wake-up: the probe frame was not seen on both veths" >&2
	exit 1
fi
latency=$(awk -v a="$tin" -v b="$tout" 'BEGIN { printf "%.0f", (b - a) * 1e6 }')
ratio=$(awk -v l="$latency" -v m="$max_sleep_us" 'BEGIN { printf "%.2f", l / m }')
echo "wake-up: a frame after ${idle_seconds} s idle was forwarded in ${latency} us = ${ratio} x the maximum sleep (${max_sleep_us} us)"
# The machine's own floor: a thread asleep in epoll_wait woken by an eventfd after 200 ms idle.
read -r floor_median floor_max < <(build/bench/ferry-wake-floor 20 200)
echo "          reference, a thread woken from epoll after 200 ms idle: ${floor_median} us median" \
	"(${floor_max} us worst of 20); ferryd/reference = $(awk -v l="$latency" -v f="$floor_median" 'BEGIN { printf "%.2f", (f > 0 ? l / f : 0) }')"
ctl show loop | grep -E "^(iterations|sleeps|event_wakeups|busy_percent|sleep_seconds)"
