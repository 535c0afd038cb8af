#!/usr/bin/env python3
"""udpc.py - a small SOCKS5 UDP ASSOCIATE client (RFC 1928 sections 4-7),
written for fast_udp.sh; independent of kcpsocks' code.

  udpc.py echo SOCKS_PORT ECHO_PORT N SEED   10,000-datagram echo run; prints
                                             "sent=N received=R dup=D corrupt=C"
  udpc.py hold SOCKS_PORT ECHO_PORT DIR      associate, one echo, touch DIR/ready,
                                             wait for DIR/release, close the TCP
                                             connection, then check the relay
                                             port answers nothing; prints "ok"
  udpc.py dnstime SOCKS_PORT DNS_PORT N      N DNS queries in a row (SOCKS_PORT 0:
                                             direct); prints p50 and p99 in ms
  udpc.py idle SOCKS_PORT ECHO_PORT SECS  one echo, then the control connection
                                             must close within SECS (server idle)
  udpc.py bad SOCKS_PORT ECHO_PORT DENIED_PORT ECHO6_PORT
                                             bad input and a denied destination:
                                             no answer to any; a name (localhost)
                                             is resolved by the server; [::1] is
                                             reached; prints "ok"
Every wait is bounded."""
import os
import random
import socket
import struct
import sys
import time


def associate(port, want=("0.0.0.0", 0)):
    t = socket.create_connection(("127.0.0.1", port), timeout=10)
    t.sendall(b"\x05\x01\x00")
    if t.recv(2) != b"\x05\x00":
        sys.exit("no method")
    t.sendall(b"\x05\x03\x00\x01" + socket.inet_aton(want[0]) + struct.pack(">H", want[1]))
    r = b""
    while len(r) < 10:
        c = t.recv(10 - len(r))
        if not c:
            sys.exit("control connection closed before the reply")
        r += c
    if r[1] != 0 or r[3] != 1:
        sys.exit("UDP ASSOCIATE refused: REP %d" % r[1])
    return t, (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])


def hdr4(ip, port, frag=0):
    return b"\x00\x00" + bytes([frag]) + b"\x01" + socket.inet_aton(ip) + struct.pack(">H", port)


def hdr6(ip, port):
    return b"\x00\x00\x00\x04" + socket.inet_pton(socket.AF_INET6, ip) + struct.pack(">H", port)


def hdr_name(name, port):
    n = name.encode()
    return b"\x00\x00\x00\x03" + bytes([len(n)]) + n + struct.pack(">H", port)


def payload(seed, i):
    r = random.Random(seed * 1000003 + i)
    return struct.pack(">I", i) + bytes(r.getrandbits(8) for _ in range(32 + i % 200))


def quiet(u, secs):
    """True when nothing arrives on u within secs."""
    u.settimeout(secs)
    try:
        u.recvfrom(65535)
        return False
    except (socket.timeout, ConnectionRefusedError):
        return True


def echo(port, echo_port, n, seed):
    t, relay = associate(port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.bind(("127.0.0.1", 0))
    u.setblocking(False)
    h = hdr4("127.0.0.1", echo_port)
    seen, dup, corrupt = set(), 0, 0
    last = time.monotonic()

    def drain():
        nonlocal dup, corrupt, last
        while True:
            try:
                d, _ = u.recvfrom(65535)
            except BlockingIOError:
                return
            last = time.monotonic()
            if not d.startswith(h):
                corrupt += 1
                continue
            body = d[len(h):]
            i = struct.unpack(">I", body[:4])[0] if len(body) >= 4 else -1
            if i < 0 or i >= n or body != payload(seed, i):
                corrupt += 1
            elif i in seen:
                dup += 1
            else:
                seen.add(i)

    # 25 datagrams every 10 ms: 2,500 per second, paced so the loopback
    # socket buffers do not overflow on a loaded machine (a loss should be
    # the link's).
    start = time.monotonic()
    for i in range(n):
        u.sendto(h + payload(seed, i), relay)
        if i % 25 == 24:
            drain()
            delay = start + (i + 1) / 2500.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    end = time.monotonic() + 3
    while time.monotonic() < end and len(seen) + dup < n:
        drain()
        time.sleep(0.01)
    drain()
    t.close()
    # secs: from the first send to the last datagram received
    print("sent=%d received=%d dup=%d corrupt=%d secs=%.2f bytes=%d" %
          (n, len(seen), dup, corrupt, last - start,
           sum(len(payload(seed, i)) for i in seen)))


def hold(port, echo_port, d):
    t, relay = associate(port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    h = hdr4("127.0.0.1", echo_port)
    u.sendto(h + b"hello", relay)
    got, _ = u.recvfrom(65535)
    if got != h + b"hello":
        sys.exit("echo differs: %r" % got)
    open(os.path.join(d, "ready"), "w").close()
    end = time.monotonic() + 20
    while not os.path.exists(os.path.join(d, "release")):
        if time.monotonic() > end:
            sys.exit("no release within 20 s")
        time.sleep(0.02)
    t.close()
    # The relay socket goes with the control connection: poll until a
    # datagram to it gets no echo (bounded).
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            u.sendto(h + b"after", relay)
        except ConnectionRefusedError:
            pass
        if quiet(u, 0.3):
            print("ok")
            return
    sys.exit("the relay still answers after the control connection closed")


def bad(port, echo_port, denied_port, echo6_port):
    t, relay = associate(port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    h = hdr4("127.0.0.1", echo_port)
    # The first datagram fixes the client's port.
    u.sendto(h + b"first", relay)
    u.settimeout(5)
    if u.recvfrom(65535)[0] != h + b"first":
        sys.exit("no echo")
    # A stranger (another port of the same host) gets nothing back.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.sendto(h + b"stranger", relay)
    for d in (hdr4("127.0.0.1", echo_port, frag=1) + b"frag",  # FRAG != 0
              h[:7],                                           # truncated
              b"\x00\x00\x00\x05" + h[4:] + b"atyp",           # bad ATYP
              h + b"x" * 1400,                                 # oversize
              hdr4("127.0.0.1", denied_port) + b"denied"):     # policy
        u.sendto(d, relay)
    if not quiet(s, 0.5):
        sys.exit("the stranger got an answer")
    if not quiet(u, 0.5):
        sys.exit("bad input got an answer")
    # A name: the server looks it up; the reply names the source address.
    u.sendto(hdr_name("localhost", echo_port) + b"byname", relay)
    u.settimeout(5)
    got = u.recvfrom(65535)[0]
    if got != h + b"byname":
        sys.exit("by name: %r" % got)
    # IPv6: the reply carries ATYP 4 and the source [::1]:port.
    h6 = hdr6("::1", echo6_port)
    u.sendto(h6 + b"six", relay)
    got = u.recvfrom(65535)[0]
    if got != h6 + b"six":
        sys.exit("IPv6: %r" % got)
    t.close()
    print("ok")


def idle(port, echo_port, secs):
    """The server ends an idle association: the control connection closes."""
    t, relay = associate(port)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    h = hdr4("127.0.0.1", echo_port)
    u.sendto(h + b"once", relay)
    if u.recvfrom(65535)[0] != h + b"once":
        sys.exit("no echo")
    t0 = time.monotonic()
    t.settimeout(secs)
    try:
        if t.recv(1) != b"":
            sys.exit("data on the control connection")
    except ConnectionResetError:
        pass
    except socket.timeout:
        sys.exit("the control connection stayed open %.0f s" % secs)
    print("closed after %.1f s idle" % (time.monotonic() - t0))


def dns_query(ident, name):
    q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return q + struct.pack(">HH", 1, 1)


def dnstime(port, dns_port, n):
    """n DNS queries one after another (port 0: direct); prints
    "n=N answered=A p50=MS p99=MS" (a query unanswered in 1 s counts)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    t = None
    if port:
        t, relay = associate(port)
        h = hdr4("127.0.0.1", dns_port)
    times = []
    for i in range(n):
        q = dns_query(i & 0xFFFF, "kcps.test")
        t0 = time.monotonic()
        if port:
            u.sendto(h + q, relay)
        else:
            u.sendto(q, ("127.0.0.1", dns_port))
        u.settimeout(1)
        try:
            while True:
                d = u.recvfrom(65535)[0]
                if port:
                    d = d[len(h):]
                if d[:2] == q[:2]:
                    break
            times.append((time.monotonic() - t0) * 1000)
        except socket.timeout:
            pass
        time.sleep(0.005)
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(len(times) * p))] if times else -1
    print("n=%d answered=%d p50=%.2f p99=%.2f" % (n, len(times), pct(0.5), pct(0.99)))
    if t:
        t.close()


if __name__ == "__main__":
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "echo":
        echo(int(a[0]), int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "hold":
        hold(int(a[0]), int(a[1]), a[2])
    elif cmd == "dnstime":
        dnstime(int(a[0]), int(a[1]), int(a[2]))
    elif cmd == "idle":
        idle(int(a[0]), int(a[1]), float(a[2]))
    elif cmd == "bad":
        bad(int(a[0]), int(a[1]), int(a[2]), int(a[3]))
    else:
        sys.exit(__doc__)
