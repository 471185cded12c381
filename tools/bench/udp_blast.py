#!/usr/bin/env python3
"""Sends UDP datagrams to a VM's counter port (7777) as fast as one socket can for a while, and
counts the answers: the rate at which a ferryd switches the VM's traffic there and back. Prints
the answers per second. A window of datagrams in flight keeps the sender from flooding queues.

usage: udp_blast.py <ip> <seconds> [--after <seconds>]"""
import select
import socket
import sys
import time

ip, seconds = sys.argv[1], float(sys.argv[2])
if len(sys.argv) > 4 and sys.argv[3] == "--after":
    time.sleep(float(sys.argv[4]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.connect((ip, 7777))
sock.setblocking(False)
window = 64
in_flight = answered = 0
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    while in_flight < window:
        sock.send(b"x")
        in_flight += 1
    ready, _, _ = select.select([sock], [], [], 0.01)
    if not ready:
        in_flight = 0  # lost or late: open the window again
        continue
    while True:
        try:
            sock.recv(64)
        except BlockingIOError:
            break
        answered += 1
        in_flight = max(0, in_flight - 1)
print(f"{answered / seconds:.0f}")
