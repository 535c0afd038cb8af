#!/usr/bin/env python3
"""udpecho.py PORTFILE - a UDP echo server for tests on 127.0.0.1 only.

Binds 127.0.0.1:0, writes the port to PORTFILE and sends every datagram
back to where it came from, unchanged, until killed. Counts what it
echoed into PORTFILE.count when it gets SIGTERM."""
import signal
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
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
