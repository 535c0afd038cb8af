#!/usr/bin/env bash
# fast_socks5.sh - curl through kcpsocks-local + kcpsocks-server on loopback:
# content verified by sha256 (one large file, then 50 parallel downloads),
# a domain name resolved by the server, an IPv6 destination, the SOCKS5 reply of every error
# path (refused 05, unknown name 04, denied destination 02, BIND 07; UDP
# ASSOCIATE succeeds), exactly one answer per refused negotiation (raw bytes),
# RFC 1929 (right password works, wrong one refused),
# --check-config, and a clean SIGTERM stop of both daemons.
set -euo pipefail
KS_LOG_LEVEL=debug
# ::1 only on the web server's port (below), so another port there is denied
SERVER_ALLOW=127.0.0.0/8
. "$(dirname "$0")/lib.sh"
lib_init fast_socks5
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys alice "allow = [::1]:$HTTP_PORT"
start_http
# the same page on [::1] (same port number, another address)
start_http ::1
head -c 4194304 /dev/urandom >"$HTTP_DIR/big.bin"
for i in $(seq 50); do head -c $((20000 + i * 997)) /dev/urandom >"$HTTP_DIR/f$i.bin"; done
start_server
start_local "$SERVER_PORT"
wait_session

url=$(local_connstr "$SERVER_PORT")
"$KS_SERVER" --config "$SERVER_CONF" --check-config >/dev/null || die "server --check-config"
"$KS_LOCAL" --connect "$url" --check-config >/dev/null || die "local --check-config"
"$KS_LOCAL" --connect "$url" --mtu 70000 --check-config 2>/dev/null && die "bad --mtu accepted"

# 1. one large file, by IP address and by name
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" || die "curl big.bin"
cmp -s "$T/got.bin" "$HTTP_DIR/big.bin" || die "big.bin differs"
[ "$(sha256sum <"$T/got.bin")" = "$(sha256sum <"$HTTP_DIR/big.bin")" ] || die "sha256"
ok "4 MiB through the tunnel, sha256 identical"
tcurl -o "$T/got.bin" "http://localhost:$HTTP_PORT/big.bin" || die "curl by name"
cmp -s "$T/got.bin" "$HTTP_DIR/big.bin" || die "big.bin by name differs"
ok "domain name resolved by the server (hosts file)"
tcurl -o "$T/got.bin" "http://[::1]:$HTTP_PORT/big.bin" || die "curl to [::1]"
cmp -s "$T/got.bin" "$HTTP_DIR/big.bin" || die "big.bin over IPv6 differs"
ok "CONNECT to an IPv6 address ([::1], allowed for this port only)"
# 12 MiB went down: the server's datagrams and how it batched them.
sent=$(metric "$SERVER_METRICS" kcpsocks_udp_sent_datagrams_total)
calls=$(metric "$SERVER_METRICS" kcpsocks_udp_sendmmsg_calls_total)
gso=$(metric "$SERVER_METRICS" kcpsocks_udp_gso_messages_total)
[ "${sent:-0}" -gt 8000 ] && [ -n "$calls" ] && [ -n "$gso" ] && [ "$calls" -le "$sent" ] ||
	die "UDP counters: sent=${sent:-none} sendmmsg=${calls:-none} gso=${gso:-none}"
ok "server UDP: $sent datagrams in $calls sendmmsg calls, $gso GSO messages"

# 2. 50 parallel connections, each verified
curls=()
for i in $(seq 50); do
	tcurl -o "$T/p$i.bin" "http://127.0.0.1:$HTTP_PORT/f$i.bin" 2>"$T/p$i.err" &
	curls+=("$!")
	lib_track "$!" "curl $i"
done
bad=0
for p in "${curls[@]}"; do reap "$p" 2>/dev/null || true; done
for i in $(seq 50); do
	cmp -s "$T/p$i.bin" "$HTTP_DIR/f$i.bin" || { bad=$((bad + 1)); cat "$T/p$i.err" >&2; }
done
[ $bad -eq 0 ] || die "$bad of 50 parallel downloads differ"
ok "50 parallel downloads identical"

# 3. error paths: curl reports the server's REP code in parentheses
expect_rep() { # URL REP WHAT
	local out
	out=$(tcurl -o /dev/null "$1" 2>&1) && die "$3: curl succeeded"
	case $out in *"($2)"*) ok "$3 -> REP $2" ;; *) die "$3: want REP $2, curl said: $out" ;; esac
}
closed=$(free_port)
expect_rep "http://127.0.0.1:$closed/" 5 "closed port"
expect_rep "http://no-such-host.invalid/" 4 "unresolvable name"
expect_rep "http://10.9.8.7/" 2 "denied destination (default deny list)"
expect_rep "http://[::1]:$closed/" 2 "denied destination (IPv6 loopback, other port)"

cat >"$T/s5.py" <<'PY'
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
[ "$(python3 "$T/s5.py" "$LOCAL_PORT" 2 1)" = 7 ] || die "BIND: want REP 7"
[ "$(python3 "$T/s5.py" "$LOCAL_PORT" 3 1)" = 0 ] || die "UDP ASSOCIATE: want REP 0"
ok "BIND -> REP 7, UDP ASSOCIATE -> REP 0 (served: fast_udp.sh)"
[ "$(python3 "$T/s5.py" "$LOCAL_PORT" 1 3)" = 5 ] || die "CONNECT localhost:9: want REP 5"
ok "CONNECT by domain to a closed port -> REP 5"
[ "$(metric "$SERVER_METRICS" kcpsocks_handshakes_ok_total)" = 1 ] || die "more than one handshake"

# 3b. each refused negotiation gets exactly one answer, then the close
expect_bytes() { # PORT SEND_HEX WANT_HEX WHAT
	local got
	got=$(python3 "$KSTOOL" s5raw "$1" "$2" | tr '\n' ' ')
	[ "$got" = "$3 closed " ] || die "$4: sent $2, want '$3' then close, got '$got'"
	ok "$4: $2 -> ${3:-nothing}, closed"
}
rep() { echo "050005${1}0001000000000000"; } # method 00, then VER REP RSV 0.0.0.0:0
expect_bytes "$LOCAL_PORT" 0500 05ff "NMETHODS 0"
expect_bytes "$LOCAL_PORT" 040100507f00000100 "" "SOCKS4 greeting"
expect_bytes "$LOCAL_PORT" 050100050101017f0000010050 "$(rep 01)" "RSV 1"
expect_bytes "$LOCAL_PORT" 05010005010002 "$(rep 08)" "ATYP 2"
expect_bytes "$LOCAL_PORT" 05010005090001 "$(rep 07)" "CMD 9"
expect_bytes "$LOCAL_PORT" 050100050200017f0000010050 "$(rep 07)" "BIND"
expect_bytes "$LOCAL_PORT" 0501000501000300 "$(rep 01)" "empty domain"
expect_bytes "$LOCAL_PORT" 05010005010003036100620050 "$(rep 01)" "domain with NUL"
expect_bytes "$LOCAL_PORT" 050100050100030361620d0050 "$(rep 01)" "domain with CR"
expect_bytes "$LOCAL_PORT" 050100050100030361620a0050 "$(rep 01)" "domain with LF"

# 4. RFC 1929 on a second local daemon
stop_daemon "$LOCAL_PID"
start_local "$SERVER_PORT" "" --socks_user bob --socks_password 's3cret pass'
wait_session
curl -sS -m 20 -o "$T/got.bin" --proxy "socks5h://bob:s3cret%20pass@127.0.0.1:$LOCAL_PORT" \
	"http://127.0.0.1:$HTTP_PORT/f1.bin" || die "right password refused"
cmp -s "$T/got.bin" "$HTTP_DIR/f1.bin" || die "f1.bin with auth differs"
out=$(curl -sS -m 20 -o /dev/null --proxy "socks5h://bob:wrong@127.0.0.1:$LOCAL_PORT" \
	"http://127.0.0.1:$HTTP_PORT/f1.bin" 2>&1) && die "wrong password accepted"
case $out in *rejected*) ;; *) die "wrong password: curl said: $out" ;; esac
tcurl -o /dev/null "http://127.0.0.1:$HTTP_PORT/f1.bin" 2>/dev/null && die "no password accepted"
expect_bytes "$LOCAL_PORT" 0501020100 05020101 "RFC 1929 empty user"
expect_bytes "$LOCAL_PORT" 05010201026d6500 05020101 "RFC 1929 empty password"
expect_bytes "$LOCAL_PORT" 0501020103626f6203626164 05020101 "RFC 1929 wrong password"
expect_bytes "$LOCAL_PORT" 050100 05ff "RFC 1929 required, not offered"
ok "RFC 1929: right password works, wrong and missing ones refused"

# 5. clean stop
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
grep -q 'stopped' "$SERVER_LOG" || die "server did not log its stop"
ok "both daemons stopped on SIGTERM"
