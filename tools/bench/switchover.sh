#!/bin/bash
# The switchover benchmark: 20 live migrations of a running VM back and forth on the lab while the
# client pings it every 1 ms, streams UDP through its echo at 10,000 datagrams/s and holds a TCP
# echo stream, all from its own kernel through tor (the Linux bridge). Per run: pings lost,
# datagrams lost, duplicated and reordered, the TCP stream's exactness and the client kernel's
# retransmissions, the longest silence the client saw, the downtime, and when tor's fdb entry
# moved, from the destination's resume.
#
# References in the same invocation: the same traffic for as long with no migration (the
# machine's own silences: 2 shared cores run the client, tor and both ferryd), and the same
# migrations with `forward off`, which drops what reaches the source after the pause, as QEMU
# does.
# usage: tools/bench/switchover.sh [runs]   (as root; default 20 runs each way of counting)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
[ "$(id -u)" -eq 0 ] || { echo "switchover: run as root" >&2; exit 1; }
tools/setup.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
. tools/bench/hugepages.sh
reserve_hugepages 1200
warm_hugepages
export FERRY_LAB_HUGEPAGES=1

work=$(mktemp -d /tmp/ferry-switchover-XXXXXX)
key=/run/ferry/lab-vmotion.key
mac=02:00:00:00:05:01
ip=10.0.0.90
ctl() { tools/lab/ctl "$@"; }
monitor=
cleanup() {
	[ -n "$monitor" ] && kill "$monitor" 2>/dev/null || true
	tools/lab/down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
tools/lab/up >/dev/null
ctl host-a vm create web05 mem 256 mac $mac ip $ip/24 portgroup "VM Network" \
	workload hotcold,rate=2000,fill=50 hugepages on
ip netns exec ferry-lab-client ping -c 2 -i 0.2 -W 2 $ip >/dev/null
ip netns exec ferry-lab-tor bridge -timestamp monitor fdb >"$work/fdb.log" 2>&1 &
monitor=$!

# run <name> <from> <to-ip> [migrate options...]: 3 s of traffic, the migration (if any) half a
# second in; the figures in $work/<name>.*
run() {
	local name=$1 from=$2 to=$3
	shift 3
	ip netns exec ferry-lab-client ping -D -i 0.001 -c 3000 -W 1 $ip >"$work/$name.ping" 2>&1 &
	local p=$!
	ip netns exec ferry-lab-client python3 tools/lab/udp_stream.py $ip 7 10000 3 \
		>"$work/$name.udp" &
	local u=$!
	ip netns exec ferry-lab-client python3 tools/lab/tcp_stream.py $ip 7 200000 3 \
		>"$work/$name.tcp" &
	local t=$!
	sleep 0.5 # the traffic runs before the migration: part of the scenario
	if [ "$from" != none ]; then
		ctl "$from" migrate start web05 to "$to" key $key "$@" --wait >/dev/null
		ctl "$from" -j migrate status >"$work/$name.src.json"
		local other=host-a
		[ "$from" = host-a ] && other=host-b
		ctl "$other" -j migrate status >"$work/$name.dst.json"
	fi
	wait $p $u $t
}

echo "== references: the traffic alone (3 s, no migration), then $runs migrations each way"
run idle none none
# Back and forth: the VM is where the last migration left it.
where=host-a
move() {
	if [ $where = host-a ]; then run "$1" host-a 50.50.50.2 "${@:2}"; where=host-b
	else run "$1" host-b 50.50.50.1 "${@:2}"; where=host-a; fi
}
for i in $(seq 1 "$runs"); do move "on$i"; done
for i in $(seq 1 "$runs"); do move "off$i" forward off; done
kill "$monitor" 2>/dev/null || true
monitor=

python3 - "$work" "$runs" "$mac" <<'PY'
import json, re, statistics, sys, time
work, runs, mac = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return {}

# tor's fdb moves for the VM's MAC, from `bridge -timestamp monitor fdb`: (time, port).
moves, stamp = [], None
for line in open(f"{work}/fdb.log"):
    t = re.match(r"Timestamp: (.*) (\d+) usec", line)
    if t:
        stamp = time.mktime(time.strptime(t.group(1).strip(), "%a %b %d %H:%M:%S %Y")) + int(t.group(2)) / 1e6
    elif line.startswith(mac) and "Deleted" not in line and stamp is not None:
        port = re.search(r" dev (\S+)", line)
        moves.append((stamp, port.group(1) if port else "?"))

def figures(name):
    ping = open(f"{work}/{name}.ping").read()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", ping)
    udp, tcp = load(f"{work}/{name}.udp"), load(f"{work}/{name}.tcp")
    src = [s for s in load(f"{work}/{name}.src.json").get("migrations", []) if s["role"] == "source"]
    dst = [s for s in load(f"{work}/{name}.dst.json").get("migrations", []) if s["role"] == "destination"]
    # ping -D stamps each reply as it came: the longest gap between two is ping's silence.
    stamps = [float(t) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", ping, re.M)]
    ping_gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0) * 1000
    row = {
        "ping_silence_ms": ping_gap,
        "pings_lost": int(m.group(1)) - int(m.group(2)) if m else None,
        "udp_lost": udp.get("lost"), "udp_dup": udp.get("duplicated"), "udp_reordered": udp.get("reordered"),
        "tcp_exact": tcp.get("byte_exact"), "tcp_reset": tcp.get("reset"),
        "tcp_retrans": tcp.get("client_retransmissions"),
        "silence_ms": max(udp.get("longest_silence_ms") or 0, tcp.get("longest_silence_ms") or 0),
        "downtime_ms": None, "relearn_ms": None, "status": None, "held": None,
    }
    if src and dst:
        s, d = src[-1], dst[-1]
        row["status"], row["downtime_ms"], row["held"] = s["status"], s.get("downtime_ms"), s.get("frames_held")
        resumed = d.get("ended_at")
        target = "host-b" if s.get("peer", "").startswith("50.50.50.2") else "host-a"
        after = [t for t, port in moves if port == target and t >= resumed - 0.5]
        if resumed is not None and after:
            row["relearn_ms"] = 1000 * (after[0] - resumed)
    return row

def table(title, names):
    print(f"\n{title}")
    print(f"  {'run':>4} {'status':>9} {'downtime':>9} {'held':>5} {'pings':>5} {'udp lost':>8} {'dup':>4} "
          f"{'reord':>5} {'tcp':>6} {'retr':>4} {'silence':>8} {'ping gap':>8} {'tor moved':>10}")
    rows = []
    for i, n in enumerate(names, 1):
        r = figures(n)
        rows.append(r)
        f = lambda v, fmt: ("-" if v is None else format(v, fmt))
        print(f"  {i:>4} {f(r['status'], '>9')} {f(r['downtime_ms'], '>8.3f')}m {f(r['held'], '>5')} "
              f"{f(r['pings_lost'], '>5')} {f(r['udp_lost'], '>8')} {f(r['udp_dup'], '>4')} {f(r['udp_reordered'], '>5')} "
              f"{('exact' if r['tcp_exact'] and not r['tcp_reset'] else 'BROKEN'):>6} {f(r['tcp_retrans'], '>4')} "
              f"{r['silence_ms']:>7.2f}m {r['ping_silence_ms']:>7.2f}m {f(r['relearn_ms'], '>+9.3f')}m")
    return rows

idle = table("the traffic alone, no migration (reference: the machine's own silences)", ["idle"])[0]
on = table(f"{runs} migrations with forwarding (the default)", [f"on{i}" for i in range(1, runs + 1)])
off = table(f"{runs} migrations with forward off (as QEMU: dropped at the source)", [f"off{i}" for i in range(1, runs + 1)])

def total(rows, key):
    return sum(r[key] or 0 for r in rows)

def summary(rows, name):
    relearn = [r["relearn_ms"] for r in rows if r["relearn_ms"] is not None]
    lost = total(rows, "pings_lost") + total(rows, "udp_lost")
    print(f"  {name:<18} completed {sum(r['status'] == 'completed' for r in rows)}/{len(rows)}; pings lost "
          f"{total(rows, 'pings_lost')}, datagrams lost {total(rows, 'udp_lost')}, duplicated {total(rows, 'udp_dup')}, "
          f"reordered {total(rows, 'udp_reordered')}; TCP exact {sum(bool(r['tcp_exact']) and not r['tcp_reset'] for r in rows)}/{len(rows)}, "
          f"client retransmissions {total(rows, 'tcp_retrans')}; longest silence {max(r['silence_ms'] for r in rows):.2f} ms "
          f"(median {statistics.median(r['silence_ms'] for r in rows):.2f}), between pings {max(r['ping_silence_ms'] for r in rows):.2f} ms "
          f"(median {statistics.median(r['ping_silence_ms'] for r in rows):.2f}); tor moved at "
          f"{(statistics.median(relearn) if relearn else float('nan')):+.3f} ms from the resume (median; max {max(relearn) if relearn else float('nan'):+.3f})")
    return lost

print("\nsummary")
print(f"  {'no migration':<18} longest silence {idle['silence_ms']:.2f} ms, between pings {idle['ping_silence_ms']:.2f} ms, pings lost {idle['pings_lost']}, datagrams lost {idle['udp_lost']}")
lost_on = summary(on, "forwarding")
lost_off = summary(off, "forward off")
print(f"  frames lost, forwarding / forward off: {lost_on} / {lost_off}")
PY
