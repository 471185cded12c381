#!/bin/bash
# Measures link emulation through a real ferryd: 20,000 numbered frames replayed into one port
# leave by a port with `impair loss L dup D reorder R delay 0.1ms`. The output capture gives the
# measured loss, duplication and reordering, printed beside the configured rates with a 3-sigma
# binomial tolerance.
#
# usage: tools/bench/impair.sh [loss% dup% reorder%]   (default 2 1 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
loss=${1:-2} dup=${2:-1} reorder=${3:-1}
frames=20000
tools/setup.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
work=$(mktemp -d /tmp/ferry-impair-XXXXXX)
export RUNTIME_DIRECTORY=$work # EAL's runtime folders go with the run
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/in.pcap" "$frames" <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(n):
        frame = (b"\x02\xbb\x00\x00\x00\x01" + b"\x02\xaa\x00\x00\x00\x01" + b"\x88\xb5" +
                 struct.pack("!I", i)).ljust(60, b"\x00")
        f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)))
        f.write(frame)
PY
sock=$work/ferryd.sock
cat >"$work/ferryd.conf" <<CONF
portgroup add pg
port add out net_pcap_out,tx_pcap=$work/out.pcap role vnic portgroup pg
port set out impair delay 0.1 loss $loss% dup $dup% reorder $reorder% seed 42
port add in net_pcap_in,rx_pcap=$work/in.pcap role vnic portgroup pg
CONF
build/ferryd/ferryd -s "$sock" -c "$work/ferryd.conf" --mbufs 65536 -- --no-huge --no-shconf \
	-m 512 --no-pci --no-telemetry --log-level='*:error' >"$work/ferryd.log" 2>&1 &
pid=$!
ctl() { build/ferryctl/ferryctl -s "$sock" "$@"; }
for _ in $(seq 200); do ctl show version >/dev/null 2>&1 && break; sleep 0.05; done
# Wait until every frame went in and the emulated link has drained (nothing left waiting).
for _ in $(seq 600); do
	rx=$(ctl -j show port in stats | tools/json-get rx_packets)
	[ "$rx" -ge "$frames" ] && break
	sleep 0.05
done
# The delay queue drains in 0.1 ms: wait until the output count stops moving (with a deadline).
tx() { ctl -j show port out stats | tools/json-get tx_packets; }
last=-1
for _ in $(seq 100); do
	now=$(tx)
	[ "$now" = "$last" ] && break
	last=$now
	sleep 0.02
done
full=$(ctl -j show port out stats | tools/json-get drops_by_reason.impair_queue_full)
echo "emulation queue overflows: $full (must be 0 for the loss figure to be the emulated loss)"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

python3 - "$work/out.pcap" "$frames" "$loss" "$dup" "$reorder" <<'PY'
import math, struct, sys
path, n, loss, dup, reorder = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6])
seqs = []
with open(path, "rb") as f:
    f.read(24)
    while True:
        h = f.read(16)
        if len(h) < 16:
            break
        caplen = struct.unpack("<IIII", h)[2]
        data = f.read(caplen)
        seqs.append(struct.unpack("!I", data[14:18])[0])
seen = set(seqs)
lost = n - len(seen)
dups = len(seqs) - len(seen)
# A frame is reordered if it arrives before one sent earlier that is still to come.
reordered, highest = 0, -1
for s in seqs:
    if s < highest:
        reordered += 1
    highest = max(highest, s)
def row(name, configured, count, base):
    measured = 100.0 * count / base
    p = configured / 100.0
    tolerance = 300.0 * math.sqrt(p * (1 - p) / base)
    ok = abs(measured - configured) <= tolerance
    print("%-9s configured %5.2f%%  measured %5.2f%%  (%d of %d)  tolerance ±%.2f%%  %s"
          % (name, configured, measured, count, base, tolerance, "ok" if ok else "OUT"))
    return ok
print("link emulation through ferryd: %d frames, delay 0.1 ms, seed 42" % n)
good = row("loss", loss, lost, n)
good &= row("dup", dup, dups, n - lost)
# A frame overtook others if some frame sent before it arrives after it: walk from the end,
# keeping the smallest number still to come.
overtakers, smallest_after = 0, float("inf")
for s in reversed(seqs):
    if s > smallest_after:
        overtakers += 1
    smallest_after = min(smallest_after, s)
good &= row("reorder", reorder, overtakers, len(seqs))
sys.exit(0 if good else 1)
PY
