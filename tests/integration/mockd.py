#!/usr/bin/env python3
"""mockd.py - stand-ins for kcpsocks-server and kcpsocks-local, to test the
integration HARNESS (lib.sh and the suites' own logic) before or without the
real daemons: `KS_MOCK=1 bash tests/integration/soak_30s.sh`.

They speak the daemons' command-line contract (keygen, adduser, --config,
--connect, --listen, --metrics_listen, SIGTERM) but carry nothing over UDP:
the mock local is a plain SOCKS5 proxy that connects to the destination
itself and only sends one small datagram to the "server" per new
connection, so the relay sees traffic. The mock server reads datagrams and
never answers. Metrics: /metrics with the METRIC_* names lib.sh expects,
/healthz. A pass with the mocks says nothing about the real daemons.
"""
import base64
import hashlib
import http.server
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def opts(argv):
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            out[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            out.setdefault("_", []).append(argv[i])
            i += 1
    return out


class Stats:
    lock = threading.Lock()
    conns = 0
    dgrams = 0


def metrics_server(addr):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz":
                body = b"ok\n"
            elif self.path == "/metrics":
                body = ("# TYPE kcpsocks_session_srtt_seconds gauge\n"
                        "kcpsocks_session_srtt_seconds %.3f\n"
                        "kcpsocks_session_retransmits_fast_total %d\nkcpsocks_handshakes_ok_total 1\n"
                        "kcpsocks_datagrams_in_total %d\n"
                        % (random.randint(10, 40) / 1000.0, Stats.conns * 3, Stats.dgrams)).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(hostport(addr), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise EOFError
        buf += c
    return buf


def socks_client(c, udp, server):
    try:
        ver, n = recv_exact(c, 2)
        recv_exact(c, n)
        c.sendall(b"\x05\x00")
        _, cmd, _, atyp = recv_exact(c, 4)
        if atyp == 1:
            host = socket.inet_ntoa(recv_exact(c, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
        else:
            host = recv_exact(c, recv_exact(c, 1)[0]).decode()
        port = struct.unpack(">H", recv_exact(c, 2))[0]
        udp.sendto(os.urandom(64), server)
        d = socket.create_connection((host, port), timeout=10)
        d.settimeout(None)
        c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
        with Stats.lock:
            Stats.conns += 1
        t = threading.Thread(target=pump, args=(d, c), daemon=True)
        t.start()
        pump(c, d)
        t.join()
        d.close()
    except (OSError, EOFError, ValueError):
        pass
    c.close()


def run_local(o):
    m = re.match(r"kcpsocks://[^@]+@([^?]+)\?", o["connect"])
    server = hostport(m.group(1))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(hostport(o["listen"]))
    lst.listen(256)
    metrics_server(o["metrics_listen"])
    while True:
        c, _ = lst.accept()
        threading.Thread(target=socks_client, args=(c, udp, server), daemon=True).start()


def run_server(o):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(hostport(o["listen"]))
    metrics_server(o["metrics_listen"])
    while True:
        select.select([udp], [], [])
        udp.recvfrom(65535)
        Stats.dgrams += 1


def server_cmd(argv):
    o = opts(argv)
    pos = o.get("_", [])
    if pos[:1] == ["keygen"]:
        priv = os.urandom(32)
        fd = os.open(o["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(b64(priv) + "\n")
        print("public key: " + b64(hashlib.sha256(priv).digest()))
    elif pos[:1] == ["adduser"]:
        conf = open(o["config"]).read()
        keyfile = re.search(r"private_key_file = (\S+)", conf).group(1)
        priv = base64.urlsafe_b64decode(open(keyfile).read().strip() + "=")
        psk = b64(os.urandom(32))
        print("psk: " + psk)
        print("kcpsocks://%s:%s@127.0.0.1:8443?key=%s" % (pos[1], psk, b64(hashlib.sha256(priv).digest())))
    else:
        run_server(o)


def main():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    role, argv = sys.argv[1], sys.argv[2:]
    if role == "server":
        server_cmd(argv)
    else:
        run_local(opts(argv))


if __name__ == "__main__":
    main()
