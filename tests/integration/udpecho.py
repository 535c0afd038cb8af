#!/usr/bin/env python3
"""udpecho.py PORTFILE [ADDRESS] - a UDP echo server for tests on a loopback
address (127.0.0.1 by default, or ::1).

Binds ADDRESS port 0, writes the port to PORTFILE and sends every datagram
back to where it came from, unchanged, until killed. Counts what it
echoed into PORTFILE.count when it gets SIGTERM."""
import signal
import socket
import sys

addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
if addr not in ("127.0.0.1", "::1"):
    sys.exit("loopback only")
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((addr, 0))
n = 0


def done(*_):
    with open(sys.argv[1] + ".count", "w") as f:
        f.write("%d\n" % n)
    sys.exit(0)


signal.signal(signal.SIGTERM, done)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    d, a = s.recvfrom(65535)
    n += 1
    s.sendto(d, a)
