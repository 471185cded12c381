#!/bin/bash
# Dissector test (TAP, root): a real migration on the lab (vMotion at MTU 1500, so pages travel in
# fragments), captured by both hosts on their vMotion uplinks with ferry's own capture, then read
# by tshark with the Lua dissector (dist/wireshark/ferry.lua): no malformed message, every field
# there, pages reassembled, and the messages each host received, type by type, equal that host's
# `migrate counters`.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dissector=$here/../../dist/wireshark/ferry.lua
dir=$(mktemp -d /tmp/ferry-lab-dissect-XXXXXX)
key=/run/ferry/lab-vmotion.key

trap lab_cleanup EXIT

# tools/setup.sh installs the dissector where tshark loads it by itself; FERRY_DISSECTOR makes
# every copy but this checkout's (given with -X) stand aside.
export FERRY_DISSECTOR=$dissector

FERRY_LAB_VMOTION_MTU=1500 "$lab" up >"$dir/up.log" 2>&1 ||
	{ echo "Bail out! the lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }

check "a 32 MiB VM on host-a, its memory written" ctl host-a vm create web01 mem 32 \
	mac 02:00:00:00:03:01 ip 10.0.0.70/24 portgroup "VM Network" workload uniform,rate=2000,fill=100
# The capture files are written by each host's ferryd, in its own namespace: /tmp is shared.
for h in host-a host-b; do
	check "$h captures what its vMotion uplink receives" \
		ctl "$h" capture start vmo0 rx file "$dir/$h.pcapng" ring 32768
done
check "migrate host-a -> host-b, verify on" migrate host-a web01 to 50.50.50.2 key $key verify on \
	min-bandwidth 50M rtt-limit 50
# Frames for the VM that reach host-a after the pause follow it to host-b (FRAME messages) until
# the network has relearned its MAC, after the migration reports: the captures stop once both
# engines have received nothing more for a second.
received() { ctl host-a -j migrate counters | tools_json rx_messages; ctl host-b -j migrate counters | tools_json rx_messages; }
tools_json() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
quiet() {
	local before
	before=$(received)
	sleep 1
	[ "$before" = "$(received)" ]
}
check "the engines go quiet after the migration" within 15 quiet
for h in host-a host-b; do
	# A full ring (the writer starved of CPU for a second) would lose frames the counts need.
	check "$h's capture lost nothing" \
		bash -c "'$lab' ctl $h show capture | grep -q 'dropped_ring_full: *0$'"
	check "$h's capture stops" ctl "$h" capture stop
	ctl "$h" -j migrate counters >"$dir/$h.counters"
done

# Every frame the dissector takes as ferry's, and what it says of them.
dissect() {
	tshark -2 -X "lua_script:$dissector" -r "$1" -Y ferry -T fields -E separator=, \
		-e ferry.type -e _ws.expert.severity -e ferry.reassembled_length "${@:2}" 2>"$dir/tshark.err"
}
for h in host-a host-b; do
	dissect "$dir/$h.pcapng" >"$dir/$h.fields"
	check "tshark with the dissector reads $h's capture" test -s "$dir/$h.fields"
	check "no ferry message in it is malformed" \
		bash -c "! tshark -2 -X 'lua_script:$dissector' -r '$dir/$h.pcapng' -Y '_ws.malformed || ferry.malformed || _ws.expert.severity >= 8388608' 2>/dev/null | grep -q ."
done
check "host-b received the handshake, pages, zero runs and the state" bash -c \
	"for t in 1 3 6 9; do cut -d, -f1 '$dir/host-b.fields' | grep -qx \$t || { echo \"no type \$t\"; exit 1; }; done"
check "pages at MTU 1500 came in fragments, reassembled into whole pages" \
	bash -c "cut -d, -f3 '$dir/host-b.fields' | grep -qx 4096"

# The dissector's count of each type, against the engine's own.
compare() {
	python3 - "$1" "$2" <<'PY'
import collections, json, sys
names = {1: "hello", 2: "challenge", 3: "auth", 4: "accept", 5: "refuse", 6: "pages",
         7: "zero-run", 8: "ack", 9: "state", 10: "confirm", 11: "cancel", 12: "probe",
         13: "query", 14: "regions", 15: "absent", 16: "demand", 17: "complete",
         18: "no-session", 19: "frame"}
seen = collections.Counter(int(line.split(",")[0]) for line in open(sys.argv[1]) if line.strip())
received = json.load(open(sys.argv[2]))["received"]
bad = [f"{names[t]}: dissected {seen.get(t, 0)}, engine {received[names[t]]}"
       for t in names if seen.get(t, 0) != received[names[t]]]
print("\n".join(bad) if bad else "equal: " + ", ".join(f"{names[t]} {n}" for t, n in sorted(seen.items())))
sys.exit(1 if bad else 0)
PY
}
for h in host-a host-b; do
	check "$h: each type dissected as many times as its engine received it" \
		compare "$dir/$h.fields" "$dir/$h.counters"
done
# The same migration's timeline: well-formed SVG, a bar per round of the source's round log, the
# pause, the resume and the announce frames.
check "migrate report --svg draws the migration" ctl host-a migrate report 1 --svg "$dir/timeline.svg"
ctl host-a -j migrate status 1 >"$dir/status.json"
timeline_holds() {
	python3 - "$dir/timeline.svg" "$dir/status.json" <<'PY'
import json, sys, xml.etree.ElementTree as ET
svg = ET.parse(sys.argv[1]).getroot()
status = json.load(open(sys.argv[2]))
ns = "{http://www.w3.org/2000/svg}"
def marks(tag, cls):
    return [e for e in svg.iter(ns + tag) if e.get("class") == cls]
rounds = marks("rect", "round")
want = len(status["round_log"])
problems = []
if want < 2 or len(rounds) != want:
    problems.append(f"{len(rounds)} round bars for {want} rounds in the log")
if [int(r.get("data-round")) for r in rounds] != [r["round"] for r in status["round_log"]]:
    problems.append("the bars are not the log's rounds in order")
for cls, tag in (("paused", "line"), ("resumed", "line"), ("pause", "rect")):
    if len(marks(tag, cls)) != 1:
        problems.append(f"no {cls} mark")
if len(marks("path", "announce")) != status["announce_rounds"]:
    problems.append(f"{len(marks('path', 'announce'))} announce marks for {status['announce_rounds']} frames")
print("\n".join(problems) or f"{want} rounds, pause, resume, {status['announce_rounds']} announce frames")
sys.exit(1 if problems else 0)
PY
}
check "the timeline is well-formed and holds every round, the pause, the resume and the announces" \
	timeline_holds
[ -n "${FERRY_KEEP_TIMELINE:-}" ] && cp "$dir/timeline.svg" "$FERRY_KEEP_TIMELINE"
tshark -2 -X "lua_script:$dissector" -r "$dir/host-b.pcapng" -Y ferry -V -c 40 2>/dev/null |
	grep -m 1 -A 30 "ferry migration" | sed 's/^/# /' | head -30

tap_finish
