#!/usr/bin/env python3
"""A TCP stream through a ferry VM's echo service (port 7): the client's own kernel TCP sends a
known byte pattern at a steady rate for a duration and reads it back, comparing every byte. Then
it reads the kernel's count of retransmissions for the connection (`ss -ti`), closes, and prints a
JSON summary: bytes sent and echoed, whether they matched, whether the connection was reset, the
retransmissions, and the longest silence between echoes."""
import json
import re
import select
import socket
import subprocess
import sys
import time


def pattern(offset, length):
    return bytes((offset + i) * 7 % 251 for i in range(length))


def retransmissions(local_port):
    out = subprocess.run(["ss", "-tin", "sport", "= :%d" % local_port],
                         capture_output=True, text=True).stdout
    found = re.search(r"retrans:\d+/(\d+)", out)
    return int(found.group(1)) if found else 0


def main():
    if len(sys.argv) < 3:
        print("usage: tcp_stream.py <ip> <port> [bytes-per-second] [seconds]", file=sys.stderr)
        return 2
    address = (sys.argv[1], int(sys.argv[2]))
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 200000.0
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    chunk = 512
    sock = socket.create_connection(address, timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    local_port = sock.getsockname()[1]
    sent = echoed = 0
    matched = True
    reset = False
    longest_gap = 0.0
    last_echo = None
    start = time.monotonic()

    def receive():
        nonlocal echoed, matched, reset, longest_gap, last_echo
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            reset = True
            return False
        if not data:
            return False
        now = time.monotonic()
        if data != pattern(echoed, len(data)):
            matched = False
        echoed += len(data)
        if last_echo is not None:
            longest_gap = max(longest_gap, now - last_echo)
        last_echo = now
        return True

    while time.monotonic() - start < duration and not reset:
        due = int((time.monotonic() - start) * rate)
        while sent + chunk <= due:
            try:
                n = sock.send(pattern(sent, chunk))
            except BlockingIOError:
                break
            except (ConnectionResetError, BrokenPipeError):
                reset = True
                break
            sent += n
            if n < chunk:
                break
        ready, _, _ = select.select([sock], [], [], 0.001)
        if ready and not receive():
            break
    deadline = time.monotonic() + 5
    while echoed < sent and time.monotonic() < deadline and not reset:
        ready, _, _ = select.select([sock], [], [], 0.05)
        if ready and not receive():
            break
    retrans = retransmissions(local_port)
    closed_cleanly = False
    if not reset:
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(True)
            sock.settimeout(5)
            closed_cleanly = sock.recv(1) == b""
        except OSError:
            reset = True
    sock.close()
    print(json.dumps({
        "sent": sent,
        "echoed": echoed,
        "byte_exact": matched and echoed == sent,
        "reset": reset,
        "closed_cleanly": closed_cleanly,
        "client_retransmissions": retrans,
        "longest_silence_ms": round(longest_gap * 1000, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
