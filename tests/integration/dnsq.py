#!/usr/bin/python3
"""dnsq.py SOCKS_PORT DNS_PORT NAME TYPE - one DNS query (RFC 1035) for NAME
(TYPE A or AAAA), asked twice: through kcpsocks-local with PySocks
(Debian python3-socks, an independent SOCKS5 UDP client) and directly.
Prints the answer dig-style and exits 0 only when both answers are the
same bytes. Runs Debian's python3 (/usr/bin/python3), where PySocks is."""
import socket
import struct
import sys
import time

import socks

port, dns_port, name, qtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
t = {"A": 1, "AAAA": 28}[qtype]
q = struct.pack(">HHHHHH", 0x4b53, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
q += struct.pack(">HH", t, 1)


def ask(s, addr):
    s.settimeout(5)
    t0 = time.monotonic()
    s.sendto(q, addr)
    r, src = s.recvfrom(4096)
    return r, src, (time.monotonic() - t0) * 1000


p = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
p.set_proxy(socks.SOCKS5, "127.0.0.1", port)
tun, src, ms = ask(p, ("127.0.0.1", dns_port))
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
direct, _, _ = ask(d, ("127.0.0.1", dns_port))


def show(r):
    ident, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", r[:12])
    print(";; ->>HEADER<<- opcode: QUERY, status: %s, id: %d" %
          ({0: "NOERROR", 3: "NXDOMAIN"}.get(flags & 15, str(flags & 15)), ident))
    print(";; flags: qr%s%s; QUERY: %d, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d" %
          (" aa" if flags & 0x400 else "", " rd ra" if flags & 0x180 == 0x180 else "",
           qd, an, ns, ar))
    i = 12
    while r[i]:
        i += 1 + r[i]
    i += 5
    print("\n;; QUESTION SECTION:\n;%s.\t\tIN\t%s\n\n;; ANSWER SECTION:" % (name, qtype))
    for _ in range(an):
        if r[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while r[i]:
                i += 1 + r[i]
            i += 1
        rt, _, ttl, rl = struct.unpack(">HHIH", r[i:i + 10])
        rd = r[i + 10:i + 10 + rl]
        i += 10 + rl
        if rt == 1:
            print("%s.\t\t%d\tIN\tA\t%s" % (name, ttl, socket.inet_ntop(socket.AF_INET, rd)))
        elif rt == 28:
            print("%s.\t\t%d\tIN\tAAAA\t%s" % (name, ttl, socket.inet_ntop(socket.AF_INET6, rd)))


show(tun)
print("\n;; Query time: %.1f msec\n;; SERVER: 127.0.0.1#%d(127.0.0.1) (UDP) via SOCKS5 "
      "127.0.0.1:%d, reply from %s#%d" % (ms, dns_port, port, src[0], src[1]))
if tun != direct:
    sys.exit("the answer through the tunnel differs from the direct one")
print(";; same %d bytes as the direct query" % len(tun))
