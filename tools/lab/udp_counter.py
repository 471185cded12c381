#!/usr/bin/env python3
"""A UDP client of a ferry VM's counter service: one datagram every interval, each answered with
the count kept in the VM's memory. Runs until SIGTERM or SIGINT, then prints a JSON summary:
what was sent and answered, the first and last count, and whether the count ever went back
(a VM that restarted instead of moving would start again at 1)."""
import json
import signal
import socket
import struct
import sys
import time


def main():
    if len(sys.argv) < 3:
        print("usage: udp_counter.py <ip> <port> [interval-seconds]", file=sys.stderr)
        return 2
    address = (sys.argv[1], int(sys.argv[2]))
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(interval)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    sent = received = back = 0
    first = last = None
    longest_gap = 0.0
    last_reply_at = None
    next_send = time.monotonic()
    while not stop:
        now = time.monotonic()
        if now >= next_send:
            sock.sendto(b"count", address)
            sent += 1
            next_send += interval
        try:
            data = sock.recv(64)
        except (socket.timeout, InterruptedError):
            continue
        if len(data) != 8:
            continue
        value = struct.unpack("!Q", data)[0]
        received += 1
        at = time.monotonic()
        if last_reply_at is not None:
            longest_gap = max(longest_gap, at - last_reply_at)
        last_reply_at = at
        if first is None:
            first = value
        if last is not None and value <= last:
            back += 1
        last = value
    print(json.dumps({"sent": sent, "received": received, "first": first, "last": last,
                      "went_back": back, "longest_gap_ms": round(longest_gap * 1000, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
