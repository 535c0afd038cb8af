#!/usr/bin/env bash
# fast_fastopen.sh - kcpsocks-local with fast_open on (issue 9): curl gets
# pages byte-exact; a CONNECT to a closed port, already answered SUCCEEDED,
# ends in a prompt connection reset (not a hang) that the metrics count;
# bytes a client sends with its request or right behind the SOCKS5 reply
# (early data) reach an echo server intact, more than the early allowance
# included.
set -euo pipefail
KS_LOG_LEVEL=debug
. "$(dirname "$0")/lib.sh"
lib_init fast_fastopen
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT ECHO_PORT

make_keys
start_http
head -c 1048576 /dev/urandom >"$HTTP_DIR/big.bin"
echo "small page" >"$HTTP_DIR/small.txt"
start_server
start_local "$SERVER_PORT" "" --fast_open true
wait_session

# 1. pages through the tunnel, byte-exact
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" || die "curl big.bin"
cmp -s "$T/got.bin" "$HTTP_DIR/big.bin" || die "big.bin differs"
tcurl -o "$T/got.txt" "http://localhost:$HTTP_PORT/small.txt" || die "curl small.txt by name"
cmp -s "$T/got.txt" "$HTTP_DIR/small.txt" || die "small.txt differs"
[ "$(metric "$LOCAL_METRICS" kcpsocks_local_fast_open_streams_total)" -ge 2 ] ||
	die "fast-open streams not counted"
grep -q "fast open" "$LOCAL_LOG" || die "no fast open in the local log"
ok "1 MiB and a small page with fast open, identical"

# 2. a closed port: SUCCEEDED was given, so the failure is a reset, promptly
closed=$(free_port)
start=$(date +%s%N)
rc=0
out=$(curl -sS -m 15 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null \
	"http://127.0.0.1:$closed/" 2>&1) || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ $rc -ne 0 ] || die "curl to a closed port succeeded"
[ $rc -ne 28 ] || die "curl to a closed port hung until its timeout"
[ $ms -lt 5000 ] || die "the reset took ${ms} ms"
# 52 empty reply, 55 send failure (the reset can come before curl's first
# write), 56 receive failure (connection reset by peer)
case $rc in 52 | 55 | 56) ;; *) die "closed port: curl exit $rc: $out" ;; esac
wait_until "the fast-open failure metric" 5 bash -c \
	"[ \"\$(curl -s http://127.0.0.1:$LOCAL_METRICS/metrics | grep -c '^kcpsocks_local_fast_open_failed_total{rep=\"5\"} 1')\" = 1 ]"
ok "closed port -> connection reset after ${ms} ms (curl exit $rc), counted as rep 5"

# 3. early data to an echo server: sent with the request, and right behind
# the reply; 200 KB is more than the early allowance, so the rest flows on
# the REPLY's credit.
cat >"$T/echo.py" <<'PY'
# echo.py PORT READYFILE: echo every connection until its EOF, then close.
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
open(sys.argv[2], "w").close()
def serve(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat >"$T/early.py" <<'PY'
# early.py SOCKS_PORT ECHO_PORT MODE: MODE "with" sends the first bytes in
# the same write as the request, "after" right behind the reply.
import os, socket, struct, sys, threading
sp, ep, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = os.urandom(200000)
s = socket.create_connection(("127.0.0.1", sp), timeout=10)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
req = b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", ep)
head, rest = data[:1500], data[1500:]
s.sendall(req + head if mode == "with" else req)
rep = b""
while len(rep) < 10:
    b = s.recv(10 - len(rep))
    assert b, "EOF in the reply"
    rep += b
assert rep[:2] == b"\x05\x00", rep
if mode != "with":
    s.sendall(head)
def send():
    s.sendall(rest)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
t.join()
assert bytes(got) == data, "echo differs: %d of %d bytes" % (len(got), len(data))
print("ok")
PY
python3 "$T/echo.py" "$ECHO_PORT" "$T/echo.ready" >"$T/echo.log" 2>&1 &
lib_track "$!" echo "$T/echo.log"
wait_until "the echo server" 10 test -e "$T/echo.ready"
for mode in with after; do
	[ "$(timeout 30 python3 "$T/early.py" "$LOCAL_PORT" "$ECHO_PORT" $mode)" = ok ] ||
		die "early data ($mode the request) did not come back intact"
done
ok "early data sent with the request and right behind the reply came back intact (200 KB)"
[ "$(metric "$SERVER_METRICS" kcpsocks_handshakes_ok_total)" = 1 ] || die "the session was replaced"
ok "one session throughout (no protocol error)"

# 4. fast_open_known (on in profile default, fast_open off): a destination
# gets fast open only once the server reached it; one that went away is
# reset once (fast open), then forgotten: the next CONNECT gets REP 5.
stop_daemon "$LOCAL_PID"
LOCAL_PORT=$(free_port) LOCAL_METRICS=$(free_port)
start_local "$SERVER_PORT" default
wait_session
tcurl -o "$T/got2.txt" "http://127.0.0.1:$HTTP_PORT/small.txt" || die "curl small.txt (default)"
[ "$(metric "$LOCAL_METRICS" kcpsocks_local_fast_open_streams_total)" = 0 ] ||
	die "fast open to a destination not reached before"
tcurl -o "$T/got3.txt" "http://127.0.0.1:$HTTP_PORT/small.txt" || die "curl small.txt again"
cmp -s "$T/got3.txt" "$HTTP_DIR/small.txt" || die "small.txt differs (known destination)"
[ "$(metric "$LOCAL_METRICS" kcpsocks_local_fast_open_streams_total)" = 1 ] ||
	die "no fast open to a destination reached before"
ok "default: the first CONNECT waits for the reply, the second to the same destination is fast"
gone=$(free_port)
python3 "$T/echo.py" "$gone" "$T/echo2.ready" >"$T/echo2.log" 2>&1 &
echo2=$!
lib_track "$echo2" echo2 "$T/echo2.log"
wait_until "the second echo server" 10 test -e "$T/echo2.ready"
[ "$(timeout 30 python3 "$T/early.py" "$LOCAL_PORT" "$gone" after)" = ok ] ||
	die "echo through the default profile"
stop_pid "$echo2" || true
for i in 1 2; do
	curl -sS -m 15 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null \
		"http://127.0.0.1:$gone/" >/dev/null 2>&1 && die "curl to a port gone ($i) succeeded"
done
wait_until "the reset, then the real reply" 5 bash -c \
	"m=\$(curl -s http://127.0.0.1:$LOCAL_METRICS/metrics) &&
	 grep -q '^kcpsocks_local_fast_open_failed_total{rep=\"5\"} 1\$' <<<\"\$m\" &&
	 grep -q '^kcpsocks_local_replies_total{rep=\"5\"} 1\$' <<<\"\$m\""
ok "a known destination that went away: one reset, then REP 5 (forgotten)"
