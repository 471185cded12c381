#!/bin/bash
# Telemetry test (TAP): Debian's dpdk-telemetry.py reads each of ferryd's /ferry/... endpoints
# from its DPDK telemetry socket and finds the numbers ferryctl -j prints; show metrics passes
# promtool's check (Debian's Prometheus promtool, set up by tools/setup.sh) and carries the
# same counters.
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
real=${FERRY_SHARED_PCAPS:?}
promtool=${PROMTOOL:-/usr/local/lib/ferry/promtool}
dir=$(mktemp -d /tmp/ferry-telemetry-XXXXXX)
sock=$dir/ferryd.sock
prefix=ferry-telemetry-$$
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir" "${RUNTIME_DIRECTORY:-/var/run}/dpdk/$prefix"
}
trap cleanup EXIT

ctl() { "$ferryctl" -s "$sock" "$@"; }
telemetry() { echo "$1" | dpdk-telemetry.py -f "$prefix" 2>/dev/null | tail -n +1; }

# The telemetry socket goes to $RUNTIME_DIRECTORY/dpdk/<prefix> (/var/run without it), where
# dpdk-telemetry.py looks for it too.
cat >"$dir/ferryd.conf" <<CONF
portgroup add pg
port add a net_pcap_ta$$,rx_pcap=$real/zeek--cooper-grill-dvwa.pcapng,tx_pcap=/dev/null role vnic portgroup pg
port add b net_pcap_tb$$,rx_pcap=$real/zeek--communityid-arp.pcap,tx_pcap=/dev/null role vnic portgroup pg
vm create web01 mem 16 mac 00:50:56:00:00:2a ip 10.0.0.42/24 portgroup pg
CONF
"$ferryd" -s "$sock" -c "$dir/ferryd.conf" -- --no-huge --no-shconf -m 128 \
	--no-pci --file-prefix "$prefix" --lcores='0@(0-1)' >"$dir/ferryd.log" 2>&1 &
pid=$!
within 20 ctl show version >/dev/null 2>&1 || { echo "Bail out! ferryd did not start"; cat "$dir/ferryd.log"; exit 1; }

rx() { ctl -j show port "$1" stats | python3 -c "import json, sys; print(json.load(sys.stdin)['rx_packets'])"; }
# The replays are over when the counters stop moving.
settled() {
	local before
	before="$(rx a) $(rx b)"
	sleep 0.3
	[ "$before" = "$(rx a) $(rx b)" ] && [ "$(rx a)" -gt 0 ]
}
check "the replays run through the switch and end" within 30 settled
check "a capture runs, for /ferry/capture" ctl capture start all file "$dir/c.pcapng" count 1000000

# Compares an endpoint with a ferryctl -j command: every key of the command's answer (a list of
# objects is a dict keyed by the object's name, numbers with decimals are text) has the same
# value in the endpoint's, except the keys named after the command (they move by themselves).
same() {
	local endpoint=$1 command=$2
	shift 2
	telemetry "$endpoint" >"$dir/tel.json"
	ctl -j $command >"$dir/ctl.json"
	python3 - "$endpoint" "$dir/tel.json" "$dir/ctl.json" "$@" <<'PY'
import json, re, sys
endpoint, tel, ctl, volatile = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
tel = json.load(open(tel))[endpoint.split(",")[0]]
ctl = json.load(open(ctl))

def key(name):
    return re.sub(r"[^A-Za-z0-9_/]", "_", name)

def shape(value):
    if isinstance(value, dict):
        return {key(k): shape(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        out = {}
        for i, v in enumerate(value):
            name = v.get("name", v.get("vswitch", v.get("id", i)))
            out[key(str(name))] = shape(v)
        return out
    if isinstance(value, list):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return None  # rendered with its decimals: compared as text below is pointless
    return value

def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in volatile and v is not None}
    return value

want, got = strip(shape(ctl)), strip(tel)
def floats_out(w, g):
    if isinstance(w, dict) and isinstance(g, dict):
        return {k: floats_out(w[k], g.get(k)) for k in w}
    return g
got = floats_out(want, got)
if want != got:
    for k in want:
        if want[k] != got.get(k):
            print("differs at", k, ":", str(want[k])[:200], "against", str(got.get(k))[:200])
    sys.exit(1)
print("equal:", ", ".join(sorted(want))[:200])
PY
}
check "/ferry/ports equals show ports" same /ferry/ports "show ports"
check "/ferry/port/stats,a equals show port a stats" same /ferry/port/stats,a "show port a stats"
check "/ferry/port/stats,b equals show port b stats" same /ferry/port/stats,b "show port b stats"
check "/ferry/fdb/stats equals show mac stats" same /ferry/fdb/stats "show mac stats"
check "/ferry/vms equals vm list" same /ferry/vms "vm list" dirty_rate
check "/ferry/migrations equals migrate status" same /ferry/migrations "migrate status"
check "/ferry/capture equals show capture" same /ferry/capture "show capture"
# The loop's counters move with every iteration: its configuration and the frames moved do not.
check "/ferry/loop equals show loop" same /ferry/loop "show loop" iterations busy_iterations \
	idle_cycles sleep_cycles busy_cycles control_cycles sleeps event_wakeups timers_fired commands \
	forwarding_workers
check "a port that does not exist is an error, not a crash" \
	bash -c "echo '/ferry/port/stats,nosuch' | dpdk-telemetry.py -f '$prefix' 2>&1 | grep -q null"
check "a parameter that is not a port name is refused" \
	bash -c "echo '/ferry/port/stats,a stats; vm list' | dpdk-telemetry.py -f '$prefix' 2>&1 | grep -q null"
check "ferryd still answers" ctl show version

ctl show metrics >"$dir/metrics.txt"
check "show metrics passes promtool check metrics" "$promtool" check metrics <"$dir/metrics.txt"
metric() { awk -v m="$1" '$1 == m { print $2 }' "$dir/metrics.txt"; }
check "its port counters are show port's" \
	test "$(metric 'ferry_port_rx_packets_total{port="a"}')" = "$(rx a)"
check "its MAC table is show mac stats'" test "$(metric 'ferry_fdb_entries{vswitch="vSwitch0"}')" = \
	"$(ctl -j show mac stats | python3 -c "import json, sys; print(json.load(sys.stdin)['tables'][0]['entries'])")"
check "it counts the VM, running" test "$(metric 'ferry_vm_running{vm="web01"}')" = 1
check "a scraper takes it over the CLI socket in JSON too" \
	bash -c "'$ferryctl' -s '$sock' -j show metrics | python3 -c 'import json, sys; assert \"ferry_port_rx_packets_total\" in json.load(sys.stdin)[\"metrics\"]'"

tap_finish
