#!/bin/bash
# Capture test (TAP): real captures replayed through a ferryd switch and captured on both of its
# ports to pcapng, read back by tshark (the interface names, the direction of each frame) and
# compared frame for frame with the input and with what the ports sent; a filter takes exactly
# what tcpdump's takes; a small ring counts what it drops.
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
real=${FERRY_SHARED_PCAPS:?}
dir=$(mktemp -d /tmp/ferry-capture-XXXXXX)
sock=$dir/ferryd.sock
pid=
# A real capture of ICMP in VLAN 123 between two hosts, split by host: the first host's frames
# come in tagged on the uplink, the second's untagged on the VM port (made here, tag popped), so
# every frame crosses the switch.
real_capture=$real/zeek--icmp_dot1q.pcap
tagged=$dir/tagged.pcap
plain=$dir/plain.pcap
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ctl() { "$ferryctl" -s "$sock" "$@"; }
capture_field() { ctl -j show capture | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
port_field() { ctl -j show port "$1" stats | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"; }

# Frames of one interface and direction (1 in, 2 out) of a pcapng, as a classic pcap.
extract() {
	tshark -r "$1" -Y "frame.interface_name == \"$2\" && frame.packet_flags_direction == $3" \
		-F pcap -w "$4" 2>/dev/null
}
# Compares the frames of two classic pcaps: same, or the second with an 802.1Q tag ($3) that the
# first lacks ("push"), or without the one it has ("pop").
same_frames() {
	python3 - "$@" <<'PY'
import struct, sys

def frames(path):
    data = open(path, "rb").read()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[at + 8:at + 12])[0]
        out.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    return out

a, b = frames(sys.argv[1]), frames(sys.argv[2])
how = sys.argv[3] if len(sys.argv) > 3 else "same"
if how == "push":
    tag = struct.pack(">HH", 0x8100, int(sys.argv[4]))
    a = [f[:12] + tag + f[12:] for f in a]
elif how == "pop":
    a = [f[:12] + f[16:] for f in a]
if a != b:
    print(f"{len(a)} frames against {len(b)}; first difference at",
          next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))))
    sys.exit(1)
print(f"{len(a)} frames equal")
PY
}
# Splits a classic pcap of tagged frames by source MAC: the first source's frames as they are,
# the others' with the tag popped.
split_capture() {
	python3 - "$@" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
header, at = data[:24], 24
first, out_a, out_b = None, [header], [header]
while at + 16 <= len(data):
    caplen = int.from_bytes(data[at + 8:at + 12], "little")
    record, frame = bytearray(data[at:at + 16]), data[at + 16:at + 16 + caplen]
    at += 16 + caplen
    first = first or frame[6:12]
    if frame[6:12] == first:
        out_a += [bytes(record), frame]
        continue
    frame = frame[:12] + frame[16:]
    for field in (8, 12):
        n = int.from_bytes(record[field:field + 4], "little") - 4
        record[field:field + 4] = n.to_bytes(4, "little")
    out_b += [bytes(record), frame]
open(sys.argv[2], "wb").write(b"".join(out_a))
open(sys.argv[3], "wb").write(b"".join(out_b))
PY
}
count_frames() { [ "$(capinfos -Mc "$1" 2>/dev/null | awk '/Number of packets/ { print $NF }')" = "$2" ]; }

start_ferryd() {
	cat >"$dir/ferryd.conf" <<CONF
portgroup add pg vlan 123
port add up net_pcap_cu$$,rx_pcap=$tagged,tx_pcap=$dir/up-out.pcap role uplink receive off
port add vm net_pcap_cv$$,rx_pcap=$plain,tx_pcap=$dir/vm-out.pcap role vnic portgroup pg receive off
CONF
	"$ferryd" -s "$sock" -c "$dir/ferryd.conf" -- --no-huge --no-shconf -m 128 --no-pci \
		--no-telemetry --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
	pid=$!
	within 20 ctl show version >/dev/null 2>&1 || { echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }
}
stop_ferryd() { kill "$pid"; wait "$pid" 2>/dev/null; pid=; }
# Every frame the ports captured received and sent ($want_rx and $want_tx name their counters)
# is counted by the capture: taken, dropped or filtered out.
want_rx="up vm" want_tx="up vm"
capture_settled() {
	local want=0 p
	for p in $want_rx; do want=$((want + $(port_field "$p" rx_packets))); done
	for p in $want_tx; do want=$((want + $(port_field "$p" tx_packets))); done
	local seen=$(($(capture_field captured) + $(capture_field dropped_ring_full) +
		$(capture_field filtered_out)))
	[ "$want" -gt 0 ] && [ "$seen" -eq "$want" ] && [ "$(capture_field written)" -eq "$(capture_field captured)" ]
}
replay() {
	ctl port set up receive on && ctl port set vm receive on &&
		within 20 capture_settled
}

split_capture "$real_capture" "$tagged" "$plain"

# 1. Both ports, both directions, the whole frames.
start_ferryd
check "capture start all, both directions" ctl capture start all both file "$dir/all.pcapng"
check "the replays reach both ports and every frame is captured" replay
check "capture stop" ctl capture stop
check "tshark reads the file and names both ports" \
	bash -c "tshark -r '$dir/all.pcapng' -T fields -e frame.interface_name 2>/dev/null | sort -u | tr '\n' ' ' | grep -qx 'up vm '"
extract "$dir/all.pcapng" up 1 "$dir/up-rx.pcap"
extract "$dir/all.pcapng" vm 1 "$dir/vm-rx.pcap"
extract "$dir/all.pcapng" up 2 "$dir/up-tx.pcap"
extract "$dir/all.pcapng" vm 2 "$dir/vm-tx.pcap"
check "up received exactly its part of the capture" same_frames "$tagged" "$dir/up-rx.pcap"
check "vm received exactly its part of the capture" same_frames "$plain" "$dir/vm-rx.pcap"
stop_ferryd # the pcap PMD's output files are complete once it is closed
check "up's captured output is what it sent" same_frames "$dir/up-out.pcap" "$dir/up-tx.pcap"
check "vm's captured output is what it sent" same_frames "$dir/vm-out.pcap" "$dir/vm-tx.pcap"
check "up sent vm's frames with the port group's tag pushed" \
	same_frames "$plain" "$dir/up-tx.pcap" push 123
check "vm sent up's frames with the tag popped" same_frames "$tagged" "$dir/vm-tx.pcap" pop

# 2. A filter takes exactly what tcpdump's takes: ICMP echo requests in VLAN 123.
filter='vlan 123 and icmp[icmptype] == icmp-echo'
want_rx=up want_tx=
start_ferryd
check "capture start with a filter, one port, rx" ctl capture start up rx file "$dir/filter.pcapng" \
	filter "$filter"
check "every frame is captured or filtered out" replay
check "some frames were filtered out" test "$(capture_field filtered_out)" -gt 0
check "capture stop" ctl capture stop
tcpdump -r "$tagged" -w "$dir/tcpdump.pcap" "$filter" 2>/dev/null
extract "$dir/filter.pcapng" up 1 "$dir/filtered.pcap"
check "the filtered capture is what tcpdump's filter takes" same_frames "$dir/tcpdump.pcap" "$dir/filtered.pcap"
check "a bad filter is refused with libpcap's reason" \
	bash -c "'$ferryctl' -s '$sock' capture start all file '$dir/x.pcapng' filter 'port port' 2>&1 | grep -q 'bad filter'"
check "and the connection is still usable" ctl show capture
stop_ferryd

# 3. A ring of 8 frames: the whole capture (15 frames) comes in on the uplink in one burst and
# overflows it; what it drops is counted, the rest written.
tagged=$real_capture
start_ferryd
check "capture start with a ring of 8" ctl capture start up rx file "$dir/ring.pcapng" ring 8
check "every frame is captured or dropped" replay
check "the full ring dropped frames and counted them" test "$(capture_field dropped_ring_full)" -gt 0
captured=$(capture_field captured)
check "capture stop" ctl capture stop
check "the file holds every frame captured" count_frames "$dir/ring.pcapng" "$captured"

# 4. A count: the capture completes by itself.
stop_ferryd
tagged=$dir/tagged.pcap
start_ferryd
check "capture start for 4 frames" ctl capture start all file "$dir/count.pcapng" count 4
ctl port set up receive on >/dev/null
check "it completes" within 20 bash -c "'$ferryctl' -s '$sock' show capture | grep -q 'state: *complete'"
check "with exactly 4 frames in its file" count_frames "$dir/count.pcapng" 4
check "a port captured may go once the capture is over" ctl port del vm
check "show capture still names it" bash -c "'$ferryctl' -s '$sock' show capture | grep -q vm"
stop_ferryd

tap_finish
