#!/usr/bin/env python3
"""A UDP stream through a ferry VM's echo service (port 7, RFC 862): datagrams numbered from 0 at
a steady rate, each echoed back by the VM. Runs until SIGTERM or SIGINT (or for a duration), then
waits half a second for stragglers and prints a JSON summary: sent, echoed, lost, duplicated,
reordered (an echo numbered below one already seen) and the longest silence between echoes."""
import json
import select
import signal
import socket
import struct
import sys
import time


def main():
    if len(sys.argv) < 3:
        print("usage: udp_stream.py <ip> <port> [rate-per-second] [seconds]", file=sys.stderr)
        return 2
    address = (sys.argv[1], int(sys.argv[2]))
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 10000.0
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    seen = {}
    highest = -1
    reordered = 0
    longest_gap = 0.0
    last_echo = None
    start = time.monotonic()
    sent = 0

    def receive():
        nonlocal highest, reordered, longest_gap, last_echo
        while True:
            try:
                data = sock.recv(64)
            except BlockingIOError:
                return
            if len(data) < 8:
                continue
            now = time.monotonic()
            (number,) = struct.unpack("!Q", data[:8])
            seen[number] = seen.get(number, 0) + 1
            if number < highest:
                reordered += 1
            highest = max(highest, number)
            if last_echo is not None:
                longest_gap = max(longest_gap, now - last_echo)
            last_echo = now

    # Several datagrams per wake-up when the scheduler is late: the rate holds on average.
    while not stop and (duration is None or time.monotonic() - start < duration):
        due = int((time.monotonic() - start) * rate) + 1
        while sent < due:
            try:
                sock.sendto(struct.pack("!Q", sent) + b"ferry-stream", address)
            except BlockingIOError:
                break
            sent += 1
        select.select([sock], [], [], 0.0002)
        receive()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        select.select([sock], [], [], 0.05)
        receive()
    echoed = sum(1 for n in seen if n < sent)
    print(json.dumps({
        "sent": sent,
        "echoed": echoed,
        "lost": sent - echoed,
        "duplicated": sum(c - 1 for c in seen.values() if c > 1),
        "reordered": reordered,
        "longest_silence_ms": round(longest_gap * 1000, 3),
        "seconds": round(time.monotonic() - start - 0.5, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
