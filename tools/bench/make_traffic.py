#!/usr/bin/env python3
"""Writes the forwarding benchmark's traffic: pcap files of Ethernet/IPv4/UDP frames of one size
between N host pairs. Direction "a" goes from the 02:aa:.. hosts to the 02:bb:.. hosts; "b" is
the mirror image, so with both replayed every frame is known unicast once the switch is warm.

usage: make_traffic.py OUT.pcap SIZE MACS a|b [FRAMES] [PAIR]

FRAMES (default: MACS, at least 1,024) sets the capture's length apart from the MACs it cycles
through, to tell the replaying PMD's cost of a long capture from the switch's of a big table.
PAIR (default 0) goes in each MAC's third byte: the captures of different port pairs then come
from different hosts, which the switch learns each on its own port."""
import struct
import sys


def main():
    out, size, macs, direction = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    frames = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else max(macs, 1024)
    pair = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    if not 0 <= pair < 256:
        sys.exit("make_traffic: pairs are 0 to 255")
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(frames):
            host = (i % macs).to_bytes(3, "big")
            a, b = b"\x02\xaa" + bytes([pair]) + host, b"\x02\xbb" + bytes([pair]) + host
            src, dst = (a, b) if direction == "a" else (b, a)
            ip_len = size - 14
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0,
                             bytes([10, 1]) + host[1:], bytes([10, 2]) + host[1:])
            udp = struct.pack("!HHHH", 1024, 1024, ip_len - 20, 0)
            frame = (dst + src + b"\x08\x00" + ip + udp).ljust(size, b"\x00")
            f.write(struct.pack("<IIII", i, 0, size, size))
            f.write(frame)


main()
