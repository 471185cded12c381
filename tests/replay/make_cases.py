#!/usr/bin/env python3
"""Writes the pcap replay cases: each folder gets in-<port>.pcap inputs and the
expect-<port>.pcap files that the switching rules (README, "vswitch") say each port sends.
The expectations are written out by hand here, frame by frame, from those rules; nothing is
taken from ferryd's output. Run it after changing a case: python3 tests/replay/make_cases.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def mac(n):
    return bytes([0x02, 0, 0, 0, 0, n])


BCAST = b"\xff" * 6
MCAST = bytes([0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB])


def eth(dst, src, payload=b"", ethertype=0x0800, size=60):
    frame = dst + src + struct.pack("!H", ethertype) + payload
    return frame.ljust(size, b"\x00")


def tagged(frame, vlan):
    """The same frame with an 802.1Q tag after the MAC addresses."""
    return frame[:12] + struct.pack("!HH", 0x8100, vlan) + frame[12:]


def rarp(src):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 3) + src + b"\0" * 4 + src + b"\0" * 4
    return eth(BCAST, src, body, 0x8035)


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)


def case(name, config, inputs, expects, steps=None, counters=None):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.endswith(".pcap") or f in ("steps", "expect-counters"):
            os.remove(os.path.join(d, f))
    with open(os.path.join(d, "ferryd.conf"), "w") as f:
        f.write(config.strip() + "\n")
    for port, frames in inputs.items():
        write_pcap(os.path.join(d, "in-%s.pcap" % port), frames)
    for port, frames in expects.items():
        write_pcap(os.path.join(d, "expect-%s.pcap" % port), frames)
    if steps:
        with open(os.path.join(d, "steps"), "w") as f:
            f.write(steps.strip() + "\n")
    if counters:
        with open(os.path.join(d, "expect-counters"), "w") as f:
            f.write(counters.strip() + "\n")


A, B, C, D, Q1, Q2, V = mac(0xA), mac(0xB), mac(0xC), mac(0xD), mac(0x51), mac(0x52), mac(0x99)

# 1. A broadcast from A is flooded and teaches the switch where A is; B's answer goes to A only.
f1 = eth(BCAST, A, b"who-has")
f2 = eth(A, B, b"is-at")
case("learn-then-unicast", """
portgroup add pg
port add vnic1 @pcap@ role vnic portgroup pg
port add vnic2 @pcap@ role vnic portgroup pg
port add vnic3 @pcap@ role vnic portgroup pg
port add up1 @pcap@ role uplink
""", {"vnic1": [f1], "vnic2": [f2]},
    {"vnic1": [f2], "vnic2": [f1], "vnic3": [f1], "up1": [f1]},
    counters="""
port vnic1 rx_forwarded 1
port vnic2 rx_forwarded 1
mac learned 2
""")

# 2. Broadcast, multicast and unknown unicast reach every port of the VLAN (tagged on the
#    uplink), and no port of another port group.
g = [eth(BCAST, A, b"b"), eth(MCAST, A, b"m"), eth(D, A, b"u")]
case("flood-within-portgroup", """
portgroup add web vlan 10
portgroup add db vlan 20
port add a1 @pcap@ role vnic portgroup web
port add a2 @pcap@ role vnic portgroup web
port add b1 @pcap@ role vnic portgroup db
port add up1 @pcap@ role uplink
""", {"a1": g}, {"a2": g, "up1": [tagged(x, 10) for x in g]})

# 3. Tags come off toward VMs and go on toward the uplink; a VLAN the uplink doesn't carry is
#    dropped; the untagged port group rides the uplink untagged.
t10 = eth(D, B, b"to-vlan10")
t0 = eth(D, C, b"to-untagged")
t30 = eth(D, C, b"vlan30")
reply10 = eth(B, A, b"back")
case("vlan-push-pop", """
portgroup add v10 vlan 10
portgroup add native
port add up1 @pcap@ role uplink
port add vm10 @pcap@ role vnic portgroup v10
port add vm0 @pcap@ role vnic portgroup native
""", {"up1": [tagged(t10, 10), t0, tagged(t30, 30)], "vm10": [reply10]},
    {"vm10": [t10], "vm0": [t0], "up1": [tagged(reply10, 10)]},
    counters="port up1 vlan_not_carried 1")

# 4. Never from one uplink to another: not flooded, not even to a MAC learned on the other.
m_from_up2 = eth(BCAST, D, b"from-up2")
to_d = eth(D, A, b"to-d")
bc_up1 = eth(BCAST, A, b"from-up1")
case("no-uplink-to-uplink", """
portgroup add pg
port add up2 @pcap@ role uplink
port add up1 @pcap@ role uplink
port add vnic1 @pcap@ role vnic portgroup pg
""", {"up2": [m_from_up2], "up1": [to_d, bc_up1]},
    {"vnic1": [m_from_up2, bc_up1]},
    counters="port up1 uplink_to_uplink 1")

# 5. A RARP from a known MAC on another port moves its entry (what a migrated VM sends).
hello = eth(BCAST, A, b"hello")
announce = rarp(A)
to_a = eth(A, C, b"to-a")
case("mac-move-by-rarp", """
portgroup add pg
port add vnic1 @pcap@ role vnic portgroup pg
port add vnic2 @pcap@ role vnic portgroup pg
port add vnic3 @pcap@ role vnic portgroup pg
""", {"vnic1": [hello], "vnic2": [announce], "vnic3": [to_a]},
    {"vnic1": [announce], "vnic2": [hello, to_a], "vnic3": [hello, announce]},
    counters="mac moved 1")

# 6. Aging on the driven clock: after the aging time A is forgotten, so a frame to A floods.
case("aging", """
mac aging 10
portgroup add pg
port add vnic1 @pcap@ role vnic portgroup pg
port add vnic2 @pcap@ role vnic portgroup pg
""", {"vnic1": [hello], "late": [to_a]},
    {"vnic2": [hello, to_a], "vnic1": [to_a]},
    steps="""
debug clock advance 11
port add late @pcap@ role vnic portgroup pg
""", counters="mac expired 1")

# 7. A full table (5 entries) evicts fairly: a port flooding new MACs loses its own oldest,
#    the quiet port keeps its entries.
quiet = [eth(BCAST, Q1, b"q1"), eth(BCAST, Q2, b"q2")]
flooder = [eth(BCAST, mac(0x60 + i), b"f") for i in range(10)]
probes = [eth(Q1, V, b"to-q1"), eth(mac(0x60), V, b"to-f0"), eth(mac(0x69), V, b"to-f9")]
case("full-table-fair-eviction", """
mac limit 5
portgroup add pg
port add quiet @pcap@ role vnic portgroup pg
port add flood @pcap@ role vnic portgroup pg
port add probe @pcap@ role vnic portgroup pg
""", {"quiet": quiet, "flood": flooder, "probe": probes},
    {"quiet": flooder + probes[:2], "flood": quiet + probes[1:], "probe": quiet + flooder},
    counters="mac evicted 8")

# 8. Malformed frames are dropped and counted by reason; the good frame still goes through.
runt = (BCAST + A)[:10]
cut_tag = BCAST + A + b"\x81\x00\x00"
oversize = eth(BCAST, A, b"x" * 1600, size=1614)
tagged_on_access = tagged(eth(BCAST, A, b"t"), 5)
good = eth(BCAST, A, b"good")
case("malformed-dropped-and-counted", """
portgroup add pg
port add vnic1 @pcap@ role vnic portgroup pg
port add vnic2 @pcap@ role vnic portgroup pg
""", {"vnic1": [runt, cut_tag, oversize, tagged_on_access, good]},
    {"vnic2": [good]},
    counters="""
port vnic1 runt 1
port vnic1 vlan_truncated 1
port vnic1 oversize 1
port vnic1 vlan_not_carried 1
port vnic1 rx_forwarded 1
""")

# 9. One flow keeps its order: 300 numbered frames from A to B (B learned first, from its own
#    broadcast) leave in the order they came, over ten bursts, with one worker or several (a
#    port's queue is one worker's: a flow is never split between two).
hello = eth(BCAST, B, b"hello")
flow = [eth(B, A, struct.pack("!I", n) + b"in-order") for n in range(300)]
case("one-flow-in-order", """
portgroup add pg
port add vnic2 @pcap@ role vnic portgroup pg
port add vnic1 @pcap@ role vnic portgroup pg
""", {"vnic2": [hello], "vnic1": flow},
    {"vnic1": [hello], "vnic2": flow},
    counters="""
port vnic1 rx_forwarded 300
port vnic2 rx_forwarded 1
""")
