#!/usr/bin/env bash
# run-idle.sh - memory of idle streams: N SOCKS5 connections through
# kcpsocks-local + kcpsocks-server on loopback to a destination that accepts
# and never sends, each after one 20 KiB exchange, then held idle; RSS of
# both daemons before and after (docs/bench/concurrency.md).
#   bench/run-idle.sh [N]     default 200 (the default profile's max_streams is 256)
set -euo pipefail
KS_LOG_LEVEL=info
SERVER_ALLOW=127.0.0.0/8
. "$(dirname "$0")/../tests/integration/lib.sh"
lib_init run_idle
require_daemons
N=${1:-200}
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS DEST_PORT
make_keys alice
start_server
start_local "$SERVER_PORT"
wait_session
cat >"$T/idle.py" <<'PY'
import socket, struct, sys, time, os
n, lport, dport, ready = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", dport)); srv.listen(4096)
held = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", lport))
    c.sendall(b"\x05\x01\x00"); assert c.recv(2) == b"\x05\x00"
    c.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", dport))
    rep = b""
    while len(rep) < 10: rep += c.recv(10 - len(rep))
    assert rep[1] == 0, rep
    d, _ = srv.accept()
    c.sendall(b"x" * 20480); got = 0
    while got < 20480: got += len(d.recv(65536))
    d.sendall(b"y" * 20480); got = 0
    while got < 20480: got += len(c.recv(65536))
    held += [c, d]
open(ready, "w").write("ok")
time.sleep(600)
PY
rss() { echo "server $(rss_kb "$SERVER_PID") kB, local $(rss_kb "$LOCAL_PID") kB"; }
note "before: $(rss)"
python3 "$T/idle.py" "$N" "$LOCAL_PORT" "$DEST_PORT" "$T/ready" &
PY_PID=$!
lib_track "$PY_PID" idle.py
wait_until "$N idle streams" 120 test -s "$T/ready"
sleep 1
note "$N idle streams: $(rss)"
scrape "$SERVER_METRICS" | grep -E '^kcpsocks_session_(memory_bytes|streams)' || true
