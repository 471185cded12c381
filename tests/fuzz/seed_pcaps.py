#!/usr/bin/env python3
"""Seeds the frame fuzzers from real captures: every Ethernet frame of the pcap and pcapng
files given, a few frames to a seed, in fuzz_netif's and fuzz_switch's record formats.

usage: seed_pcaps.py netif|switch OUT_DIR CAPTURE...
"""
import os
import struct
import sys


def frames(path):
    """The frames of a pcap or pcapng file with Ethernet links; nothing for other links."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = "<" if magic[0] in (0xD4, 0x4D) else ">"
        if struct.unpack(order + "I", data[20:24])[0] != 1:
            return
        at = 24
        while at + 16 <= len(data):
            caplen = struct.unpack(order + "I", data[at + 8:at + 12])[0]
            yield data[at + 16:at + 16 + caplen]
            at += 16 + caplen
    elif magic == b"\x0a\x0d\x0d\x0a":
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        links, at = [], 0
        while at + 12 <= len(data):
            kind, length = struct.unpack(order + "II", data[at:at + 8])
            if length < 12 or at + length > len(data):
                return
            body = data[at + 8:at + length - 4]
            if kind == 1:
                links.append(struct.unpack(order + "H", body[:2])[0])
            elif kind == 6 and len(body) >= 20:
                iface, _, _, caplen = struct.unpack(order + "IIII", body[:16])
                if iface < len(links) and links[iface] == 1:
                    yield body[20:20 + caplen]
            elif kind == 3 and links and links[0] == 1:
                yield body[4:]
            at += length


def main():
    target, out, captures = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    count = 0
    for capture in captures:
        batch = []
        for frame in frames(capture):
            frame = frame[:2048]
            if target == "netif":
                # Steered at the interface (bit 14), checksums made right by the harness.
                batch.append(struct.pack("<H", len(frame) | 0x4000) + frame)
            else:
                batch.append(bytes([len(batch) % 4]) + struct.pack("<H", len(frame)) + frame)
            if len(batch) == 8:
                open(os.path.join(out, "pcap-%05d" % count), "wb").write(b"".join(batch))
                count += 1
                batch = []
        if batch:
            open(os.path.join(out, "pcap-%05d" % count), "wb").write(b"".join(batch))
            count += 1
    print("%d seeds from %d captures" % (count, len(captures)))


if __name__ == "__main__":
    main()
