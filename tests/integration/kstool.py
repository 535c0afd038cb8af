#!/usr/bin/env python3
"""kstool.py - small loopback helpers for the integration suites (lib.sh).

Subcommands (every socket is on 127.0.0.1 or ::1, every wait bounded):

  tap PORTFILE UPSTREAM_PORT RECORD MAX
      A plain UDP relay: the client sends to our port (written to PORTFILE
      once bound), we forward to 127.0.0.1:UPSTREAM_PORT and relay replies
      back. The first MAX datagrams of each direction are appended to RECORD
      as records of: direction byte (b'u' client->server, b'd' back), 4-byte
      big-endian length, the bytes. Runs until SIGTERM.
  probe TARGET_PORT RECORD SEED
      Send hostile datagrams to 127.0.0.1:TARGET_PORT, each category from a
      fresh socket, and count every reply within a quiet window. Categories:
      random (random bytes, random and edge sizes), truncated (prefixes of
      captured client datagrams), bitflip (captured client datagrams with
      one bit flipped), replay (captured client datagrams as they were),
      reflect (captured server datagrams sent back to the server). Prints
      one line per category: "NAME sent=N replies=M"; exit 0.
  slowread SOCKS_PORT HOST PORT PATH READ_BYTES HOLD_S READYFILE
      A SOCKS5 client (no auth, domain address type) that asks for
      http://HOST:PORT/PATH, reads READ_BYTES of the answer, writes READYFILE,
      then holds the connection open for HOLD_S seconds WITHOUT reading,
      with a small receive buffer, and closes. Exit 0 if it got the bytes.
  s5raw SOCKS_PORT HEX
      Send the bytes HEX (spaces allowed) to 127.0.0.1:SOCKS_PORT in one
      write, read until the daemon closes (at most 10 s), and print every
      byte received as hex (an empty line for none), then "closed" or
      "open" on a second line.
"""
import os
import random
import select
import signal
import socket
import struct
import sys
import time

LOOPBACK = "127.0.0.1"
QUIET_S = 1.5  # a reply later than this after the last probe is not counted


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def tap(portfile, upstream_port, record, maxn):
    maxn = int(maxn)
    lst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lst.bind((LOOPBACK, 0))
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.connect((LOOPBACK, int(upstream_port)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write_atomic(portfile, str(lst.getsockname()[1]))
    client, counts = None, {b"u": 0, b"d": 0}
    with open(record, "ab", buffering=0) as rec:
        while True:
            ready, _, _ = select.select([lst, up], [], [], 1.0)
            for s in ready:
                try:
                    d, a = s.recvfrom(65535)
                except OSError:
                    continue  # ICMP refusal from a server that went away
                direction = b"u" if s is lst else b"d"
                if direction == b"u":
                    client = a
                if counts[direction] < maxn:
                    counts[direction] += 1
                    rec.write(direction + struct.pack(">I", len(d)) + d)
                try:
                    if direction == b"u":
                        up.send(d)
                    elif client is not None:
                        lst.sendto(d, client)
                except OSError:
                    pass


def load_record(record):
    out = {b"u": [], b"d": []}
    if not os.path.exists(record):
        return out
    with open(record, "rb") as f:
        data = f.read()
    i = 0
    while i + 5 <= len(data):
        direction, n = data[i:i + 1], struct.unpack(">I", data[i + 1:i + 5])[0]
        if i + 5 + n > len(data):
            break
        out[direction].append(data[i + 5:i + 5 + n])
        i += 5 + n
    return out


def send_and_count(port, datagrams):
    """Send each datagram from one fresh socket, then count the replies
    until QUIET_S has passed with none."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOPBACK, 0))
    replies = 0
    for d in datagrams:
        s.sendto(d, (LOOPBACK, port))
        time.sleep(0.002)  # pacing, so the server's socket buffer never drops
    deadline = time.monotonic() + QUIET_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        try:
            s.recvfrom(65535)
            replies += 1
            deadline = time.monotonic() + QUIET_S
        except OSError:
            pass  # ICMP port unreachable: not a reply
    s.close()
    return replies


def probe(port, record, seed):
    port, rng = int(port), random.Random(int(seed))
    cap = load_record(record)
    ups, downs = cap[b"u"][:24], cap[b"d"][:24]
    cats = []
    edge = [0, 1, 2, 15, 16, 31, 32, 47, 48, 63, 64, 100, 128, 148, 200, 1200, 1350, 1400, 1472]
    sizes = edge + [rng.randrange(0, 1501) for _ in range(300)]
    cats.append(("random", [rng.randbytes(n) for n in sizes]))
    trunc = []
    for d in ups:
        for n in sorted({1, 8, 16, 24, 32, len(d) // 2, len(d) - 16, len(d) - 1}):
            if 0 < n < len(d):
                trunc.append(d[:n])
    cats.append(("truncated", trunc))
    flips = []
    for d in ups:
        for _ in range(8):
            b = bytearray(d)
            i = rng.randrange(len(b) * 8) if b else 0
            if b:
                b[i // 8] ^= 1 << (i % 8)
            flips.append(bytes(b))
    cats.append(("bitflip", flips))
    cats.append(("replay", ups + ups))
    cats.append(("reflect", downs))
    for name, dgs in cats:
        print("%s sent=%d replies=%d" % (name, len(dgs), send_and_count(port, dgs)), flush=True)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def slowread(socks_port, host, port, path, read_bytes, hold_s, readyfile):
    read_bytes, hold_s = int(read_bytes), float(hold_s)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect((LOOPBACK, int(socks_port)))
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        sys.exit("slowread: SOCKS5 method refused")
    h = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", int(port)))
    rep = recv_exact(s, 4)
    if rep[1] != 0:
        sys.exit("slowread: SOCKS5 CONNECT refused, REP=%d" % rep[1])
    alen = {1: 4, 4: 16}.get(rep[3])
    alen = alen if alen is not None else recv_exact(s, 1)[0]
    recv_exact(s, alen + 2)
    s.sendall(("GET /%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (path, host, port)).encode())
    got = 0
    while got < read_bytes:
        chunk = s.recv(min(65536, read_bytes - got))
        if not chunk:
            sys.exit("slowread: closed after %d bytes" % got)
        got += len(chunk)
    write_atomic(readyfile, str(got))
    time.sleep(hold_s)  # the point of the test: hold the stream, read nothing
    s.close()


def s5raw(socks_port, hexbytes):
    s = socket.create_connection((LOOPBACK, int(socks_port)), timeout=10)
    s.sendall(bytes.fromhex(hexbytes))
    got, state = b"", "open"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        except ConnectionResetError:
            state = "closed"
            break
        if not chunk:
            state = "closed"
            break
        got += chunk
    s.close()
    print(got.hex())
    print(state)


def main():
    cmds = {"tap": tap, "probe": probe, "slowread": slowread, "s5raw": s5raw}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit("usage: kstool.py tap|probe|slowread|s5raw ARGS (see the file's header)")
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
