#!/bin/bash
# ferry's main job: a live migration on the lab. A 1 GiB VM on host-a, busy writing its memory
# and answering a client's pings every millisecond, a UDP echo stream at 10,000 datagrams/s, a TCP
# echo stream and a UDP counter, moves to host-b over the vMotion network while the physical
# switch (a Linux bridge) relearns where its MAC lives; host-a forwards what still reaches it.
# usage: tools/demo.sh [--backend synthetic|kvm]   (as root; it builds what it needs and tears
# the lab down at the end). With --backend kvm the VM is ferry's own guest on a KVM vCPU, its
# memory tracked by KVM's dirty log.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=synthetic
while [ $# -gt 0 ]; do
	case $1 in
	--backend)
		backend=${2:-}
		shift 2 || { echo "demo: --backend needs synthetic or kvm" >&2; exit 2; }
		;;
	*)
		echo "usage: tools/demo.sh [--backend synthetic|kvm]" >&2
		exit 2
		;;
	esac
done
case $backend in
synthetic | kvm) ;;
*)
	echo "demo: --backend $backend: synthetic or kvm" >&2
	exit 2
	;;
esac

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (the lab is made of network namespaces)" >&2
	exit 1
fi
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

vm=web01
mac=02:00:00:00:01:01
vm_ip=10.0.0.50
key=/run/ferry/lab-vmotion.key
work=$(mktemp -d /tmp/ferry-demo-XXXXXX)
pids=()
step="starting"
ctl() { tools/lab/ctl "$@"; }
in_ns() { local n=$1; shift; ip netns exec "ferry-lab-$n" "$@"; }

cleanup() {
	local status=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$status" -ne 0 ]; then
		echo >&2
		echo "demo: FAILED while $step (status $status)" >&2
		for h in host-a host-b; do
			[ -f "/run/ferry/lab-$h.log" ] || continue
			echo "--- the last lines of $h's ferryd log:" >&2
			tail -15 "/run/ferry/lab-$h.log" >&2
		done
	fi
	tools/lab/down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# The fdb entry of the VM's MAC in tor: "<port>" or "none".
fdb_port() {
	in_ns tor bridge fdb show br tor | awk -v m="$mac" '$1 == m { for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }' | grep . || echo none
}

step="reserving hugepages"
# The VM's memory and each ferryd's packet buffers live on 2 MiB hugepages, as a production
# host's would: both copies of the VM and 512 MiB per ferryd. They are written once here (a
# virtual machine's hypervisor backs a page on its first write; see tools/bench/hugepages.sh).
. tools/bench/hugepages.sh
reserve_hugepages 1600
warm_hugepages
export FERRY_LAB_HUGEPAGES=1

step="bringing the lab up"
echo "== the lab: client and two ESXi-like hosts on a Linux bridge (tor), vMotion on its own bridge"
tools/lab/up

step="creating the VM"
echo
echo "== a 1 GiB VM on host-a on hugepages, its memory written, writing 3,000 pages a second"
[ "$backend" = kvm ] && echo "   (ferry's guest on a KVM vCPU: KVM's dirty log tracks its writes)"
ctl host-a vm create "$vm" mem 1024 mac "$mac" ip "$vm_ip/24" portgroup "VM Network" \
	workload uniform,rate=3000,fill=100 hugepages on backend "$backend"
# The VM greets the network as a booted guest does; wait until tor has learned it.
for _ in $(seq 100); do [ "$(fdb_port)" = host-a ] && break; sleep 0.05; done
before=$(fdb_port)
echo "\$ bridge fdb show br tor | grep $mac    (before)"
in_ns tor bridge fdb show br tor | grep "$mac" || true

step="starting the client's traffic"
echo
echo "== the client pings the VM every 1 ms, streams UDP through its echo (10,000/s) and to its"
echo "   counter (port 7777), and holds a TCP echo stream (its kernel's TCP against the VM's)"
# Started directly (not through a function), so $! is the program itself: `ip netns exec`
# becomes it.
ip netns exec ferry-lab-tor bridge -timestamp monitor fdb >"$work/fdb.log" 2>&1 &
pids+=($!)
ip netns exec ferry-lab-client ping -q -i 0.001 -c 8000 -W 1 "$vm_ip" >"$work/ping.log" 2>&1 &
ping_pid=$!
pids+=($ping_pid)
ip netns exec ferry-lab-client python3 tools/lab/udp_stream.py "$vm_ip" 7 10000 8 \
	>"$work/stream.json" 2>&1 &
stream_pid=$!
pids+=($stream_pid)
ip netns exec ferry-lab-client python3 tools/lab/tcp_stream.py "$vm_ip" 7 200000 8 \
	>"$work/tcp.json" 2>&1 &
tcp_pid=$!
pids+=($tcp_pid)
ip netns exec ferry-lab-client python3 tools/lab/udp_counter.py "$vm_ip" 7777 0.01 \
	>"$work/udp.json" &
udp_pid=$!
pids+=($udp_pid)
sleep 1
ctl host-a vm show "$vm" | grep -E "udp_counter|dirty_rate|pages_touched"

step="running the pre-flight check"
echo
echo "== pre-flight check, as vCenter runs it before a vMotion"
echo "\$ ferryctl migrate check $vm to 50.50.50.2 key $key"
ctl host-a migrate check "$vm" to 50.50.50.2 key "$key" | sed -n '/^checks:/,$p'

step="migrating"
echo
echo "== live migration host-a -> host-b"
echo "\$ ferryctl migrate start $vm to 50.50.50.2 key $key --wait"
ctl host-a migrate start "$vm" to 50.50.50.2 key "$key" --wait >"$work/report.txt"
cat "$work/report.txt" | sed -n '1,/^checks:/p' | grep -v '^checks:'
ctl host-a -j migrate status >"$work/source.json"
ctl host-b -j migrate status >"$work/destination.json"
# The migration's timeline as a picture: rounds, pause, resume, announce frames.
timeline=${FERRY_DEMO_SVG:-/tmp/ferry-demo-timeline.svg}
id=$(python3 -c "import json, sys; print([s for s in json.load(open(sys.argv[1]))['migrations'] if s['role'] == 'source'][-1]['id'])" "$work/source.json")
ctl host-a migrate report "$id" --svg "$timeline"

step="checking the VM on host-b"
for _ in $(seq 100); do
	ctl host-b vm show "$vm" 2>/dev/null | grep -q "state: *running" && break
	sleep 0.05
done
ctl host-b vm show "$vm" | grep -E "^(name|state|backend|udp_counter|steps)"
if ctl host-a vm show "$vm" >/dev/null 2>&1; then
	echo "demo: the VM is still on host-a after the migration" >&2
	exit 1
fi
# The streams run their 8 s (well past the migration) and report; the counter client stops on
# SIGINT with its own summary.
step="waiting for the client's streams"
wait "$ping_pid" "$stream_pid" "$tcp_pid" 2>/dev/null || true
kill -INT "$udp_pid" 2>/dev/null || true
for _ in $(seq 60); do
	kill -0 "$udp_pid" 2>/dev/null || break
	sleep 0.05
done
kill -9 "$udp_pid" 2>/dev/null || true
wait "$udp_pid" 2>/dev/null || true

step="writing the report"
after=$(fdb_port)
python3 - "$work" "$mac" "$before" "$after" <<'PY'
import json, re, sys, time, datetime
work, mac, before, after = sys.argv[1:5]
def last_session(path, role):
    with open(path) as f:
        sessions = [s for s in json.load(f)["migrations"] if s["role"] == role]
    return sessions[-1]
src = last_session(f"{work}/source.json", "source")
dst = last_session(f"{work}/destination.json", "destination")
ping = open(f"{work}/ping.log").read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", ping)
sent, got = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
udp = json.loads(open(f"{work}/udp.json").read() or "{}")
def load(name):
    try:
        return json.loads(open(f"{work}/{name}").read())
    except ValueError:
        return {}
stream, tcp = load("stream.json"), load("tcp.json")
# When tor's entry for the MAC moved to host-b, from `bridge -timestamp monitor fdb`.
moved_at = None
stamp = None
for line in open(f"{work}/fdb.log"):
    t = re.match(r"Timestamp: (.*) (\d+) usec", line)
    if t:
        stamp = time.mktime(time.strptime(t.group(1).strip(), "%a %b %d %H:%M:%S %Y")) + int(t.group(2)) / 1e6
        continue
    if line.startswith(mac) and " dev host-b " in line and "Deleted" not in line and moved_at is None:
        moved_at = stamp
resumed_at = dst.get("ended_at")
print()
print("== report")
print(f"  migration      {src['status']}: total {src['total_time_ms']:.1f} ms, downtime {src.get('downtime_ms', 0):.3f} ms, "
      f"{src['rounds']} rounds, {src['pages_normal']} pages + {src['pages_zero']} zero, "
      f"{src['bytes_transferred'] / 1e6:.1f} MB at {src['mbps']:.0f} Mbit/s")
print(f"  pings          {sent} sent every 1 ms, {got} answered, {sent - got} lost")
print(f"  UDP echo       {stream.get('sent')} sent at 10,000/s, {stream.get('lost')} lost, {stream.get('duplicated')} duplicated, "
      f"{stream.get('reordered')} reordered, longest silence {stream.get('longest_silence_ms')} ms")
print(f"  TCP echo       {tcp.get('sent')} bytes, byte-exact {tcp.get('byte_exact')}, reset {tcp.get('reset')}, "
      f"client retransmissions {tcp.get('client_retransmissions')}, longest silence {tcp.get('longest_silence_ms')} ms")
print(f"  switchover     host-a held {src.get('frames_held')} frames for the VM and forwarded {src.get('frames_forwarded')} "
      f"(dropped {src.get('frames_dropped')}); host-b gave the VM {dst.get('frames_delivered')}; "
      f"its announce went {dst.get('announce_after_resume_us')} us after the resume")
print(f"  UDP counter    {udp.get('sent')} sent, {udp.get('received')} answered; counter {udp.get('first')} -> {udp.get('last')}, "
      f"went back {udp.get('went_back')} times, longest silence {udp.get('longest_gap_ms')} ms")
print(f"  tor fdb {mac}: before on {before}, after on {after}")
if moved_at is not None and resumed_at is not None:
    print(f"  tor relearned the MAC at {1000 * (moved_at - resumed_at):+.3f} ms from host-b's resume of the VM "
          f"(resume {datetime.datetime.fromtimestamp(resumed_at).strftime('%H:%M:%S.%f')}, "
          f"fdb move {datetime.datetime.fromtimestamp(moved_at).strftime('%H:%M:%S.%f')})")
problems = []
if src["status"] != "completed":
    problems.append(f"the migration {src['status']}: {src.get('reason', '')}")
if before != "host-a" or after != "host-b":
    problems.append(f"tor's entry did not move from host-a to host-b ({before} -> {after})")
if not udp.get("received") or udp.get("went_back") != 0 or (udp.get("first") or 0) > 100:
    problems.append("the UDP counter did not continue (it restarted, went back, or never answered)")
if got == 0:
    problems.append("no ping was answered")
if not tcp.get("byte_exact") or tcp.get("reset"):
    problems.append("the TCP stream did not survive the move byte for byte")
if problems:
    for p in problems:
        print("demo: " + p, file=sys.stderr)
    sys.exit(1)
print("== demo done: the VM moved while it ran; tor follows it on host-b, and its counter went on")
PY
