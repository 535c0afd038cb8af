#!/usr/bin/env bash
# fast_socks5.sh - curl through kcpsocks-local + kcpsocks-server on loopback:
# content verified by sha256 (one large file, then 50 parallel downloads),
# a domain name resolved by the server, the SOCKS5 reply of every error
# path (refused 05, unknown name 04, denied destination 02, BIND and UDP
# ASSOCIATE 07), RFC 1929 (right password works, wrong one refused),
# --check-config, and a clean SIGTERM stop of both daemons.
set -euo pipefail
NAME=fast_socks5
. "$(dirname "$0")/daemons-lib.sh"

make_keys
start_http
head -c 4194304 /dev/urandom >"$tmp/www/big.bin"
for i in $(seq 50); do head -c $((20000 + i * 997)) /dev/urandom >"$tmp/www/f$i.bin"; done
start_server
start_local

"$SERVER_BIN" --config "$tmp/server.conf" --check-config >/dev/null || fail "server --check-config"
"$LOCAL_BIN" --connect "$URL" --check-config >/dev/null || fail "local --check-config"
"$LOCAL_BIN" --connect "$URL" --mtu 70000 --check-config 2>/dev/null && fail "bad --mtu accepted"

# 1. one large file, by IP address and by name
tcurl -o "$tmp/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" || fail "curl big.bin"
cmp -s "$tmp/got.bin" "$tmp/www/big.bin" || fail "big.bin differs"
[ "$(sha256sum <"$tmp/got.bin")" = "$(sha256sum <"$tmp/www/big.bin")" ] || fail "sha256"
ok "4 MiB through the tunnel, sha256 identical"
tcurl -o "$tmp/got.bin" "http://localhost:$HTTP_PORT/big.bin" || fail "curl by name"
cmp -s "$tmp/got.bin" "$tmp/www/big.bin" || fail "big.bin by name differs"
ok "domain name resolved by the server (hosts file)"

# 2. 50 parallel connections, each verified
for i in $(seq 50); do
	tcurl -o "$tmp/p$i.bin" "http://127.0.0.1:$HTTP_PORT/f$i.bin" 2>"$tmp/p$i.err" &
	pids+=("$!")
done
bad=0
for i in $(seq 50); do
	wait "${pids[-1]}" 2>/dev/null || true
	unset 'pids[-1]'
done
for i in $(seq 50); do
	cmp -s "$tmp/p$i.bin" "$tmp/www/f$i.bin" || { bad=$((bad + 1)); cat "$tmp/p$i.err" >&2; }
done
[ $bad -eq 0 ] || fail "$bad of 50 parallel downloads differ"
ok "50 parallel downloads identical"

# 3. error paths: curl reports the server's REP code in parentheses
expect_rep() { # URL REP WHAT
	local out
	out=$(tcurl -o /dev/null "$1" 2>&1) && fail "$3: curl succeeded"
	case $out in *"($2)"*) ok "$3 -> REP $2" ;; *) fail "$3: want REP $2, curl said: $out" ;; esac
}
closed=$(free_ports tcp)
expect_rep "http://127.0.0.1:$closed/" 5 "closed port"
expect_rep "http://no-such-host.invalid/" 4 "unresolvable name"
expect_rep "http://10.9.8.7/" 2 "denied destination (default deny list)"
expect_rep "http://[::1]:$HTTP_PORT/" 2 "denied destination (IPv6 loopback)"

cat >"$tmp/s5.py" <<'PY'
# s5.py PORT CMD ATYP: one raw SOCKS5 request; prints the REP byte.
import socket, struct, sys
port, cmd, atyp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
addr = {1: b"\x7f\x00\x00\x01", 4: b"\x00" * 15 + b"\x01", 3: b"\x09localhost"}[atyp]
if atyp == 3:
    addr = addr[1:]
    addr = bytes([len(addr)]) + addr
s.sendall(bytes([5, cmd, 0, atyp]) + addr + struct.pack(">H", 9))
r = s.recv(4)
print(r[1] if len(r) >= 2 and r[0] == 5 else "bad")
PY
[ "$(python3 "$tmp/s5.py" "$SOCKS_PORT" 2 1)" = 7 ] || fail "BIND: want REP 7"
[ "$(python3 "$tmp/s5.py" "$SOCKS_PORT" 3 1)" = 7 ] || fail "UDP ASSOCIATE: want REP 7"
ok "BIND and UDP ASSOCIATE -> REP 7"
[ "$(python3 "$tmp/s5.py" "$SOCKS_PORT" 1 3)" = 5 ] || fail "CONNECT localhost:9: want REP 5"
ok "CONNECT by domain to a closed port -> REP 5"
[ "$(metric "$SMETRICS_PORT" kcpsocks_handshakes_ok_total)" = 1 ] || fail "more than one handshake"

# 4. RFC 1929 on a second local daemon
stop_pid "$local_pid"
local_pid=
start_local --socks_user bob --socks_password 's3cret pass'
curl -sS -m 20 -o "$tmp/got.bin" --proxy "socks5h://bob:s3cret%20pass@127.0.0.1:$SOCKS_PORT" \
	"http://127.0.0.1:$HTTP_PORT/f1.bin" || fail "right password refused"
cmp -s "$tmp/got.bin" "$tmp/www/f1.bin" || fail "f1.bin with auth differs"
out=$(curl -sS -m 20 -o /dev/null --proxy "socks5h://bob:wrong@127.0.0.1:$SOCKS_PORT" \
	"http://127.0.0.1:$HTTP_PORT/f1.bin" 2>&1) && fail "wrong password accepted"
case $out in *rejected*) ;; *) fail "wrong password: curl said: $out" ;; esac
tcurl -o /dev/null "http://127.0.0.1:$HTTP_PORT/f1.bin" 2>/dev/null && fail "no password accepted"
ok "RFC 1929: right password works, wrong and missing ones refused"

# 5. clean stop
stop_pid "$local_pid"
local_pid=
stop_pid "$server_pid"
server_pid=
grep -q 'stopped' "$tmp/server.log" || fail "server did not log its stop"
ok "both daemons stopped on SIGTERM"
