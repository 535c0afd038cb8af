#!/usr/bin/env python3
"""dnsd.py - a tiny DNS responder for tests, on a loopback address only.

    dnsd.py PORTFILE ZONEFILE

Binds 127.0.0.1:0 (UDP), writes the port to PORTFILE, and answers every A
query for a name listed in ZONEFILE ("NAME ADDRESS" lines, re-read on each
query, so a test changes an answer by rewriting the file) with that
address, TTL 0. Other names: NXDOMAIN; other types: no data. Written for
fault_dns.sh from RFC 1035 section 4 (header, question, answer RR).
"""
import socket
import struct
import sys


def read_zone(path):
    zone = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    zone[parts[0].lower().rstrip(".")] = parts[1]
    except OSError:
        pass
    return zone


def parse_question(msg):
    labels, i = [], 12
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[i + 1:i + 5])
    return ".".join(labels).lower(), qtype, qclass, i + 5


def answer(msg, zone):
    if len(msg) < 17:
        return None
    qid, flags = struct.unpack("!HH", msg[:4])
    name, qtype, qclass, end = parse_question(msg)
    question = msg[12:end]
    addr = zone.get(name)
    rcode = 0 if addr else 3
    rr = b""
    if addr and qtype == 1 and qclass == 1:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4) + socket.inet_aton(addr)
    head = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, 1 if rr else 0, 0, 0)
    return head + question + rr


def main():
    portfile, zonefile = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    while True:
        msg, peer = s.recvfrom(512)
        try:
            out = answer(msg, read_zone(zonefile))
        except (struct.error, IndexError):
            out = None
        if out:
            s.sendto(out, peer)


if __name__ == "__main__":
    main()
