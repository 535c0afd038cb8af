#!/usr/bin/env bash
# fast_cipher.sh - the envelope cipher (docs/PROTOCOL.md secure layer 2.7)
# between real daemons: with cipher = auto on both ends a session agrees
# AES-256-GCM where this CPU has it (else ChaCha20-Poly1305) and carries a
# download; both daemons log the cipher and count it in
# kcpsocks_sessions_by_cipher_total. A client started with --cipher chacha20
# then gets a ChaCha20-Poly1305 session from the same server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_cipher
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys
start_http
head -c 300000 /dev/urandom >"$HTTP_DIR/f.bin"
start_server
start_local "$SERVER_PORT"
wait_session

# What this machine offers: the server says so at start.
if grep -q 'server: offering aes-256-gcm' "$SERVER_LOG"; then
	want=aes-256-gcm
else
	want=chacha20-poly1305
	grep -q 'server: chacha20-poly1305 only (no AES-256-GCM on this CPU)' "$SERVER_LOG" ||
		die "the server did not say which cipher it offers"
	note "this CPU has no AES-256-GCM: checking the ChaCha20-Poly1305 fallback only"
fi
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" || die "fetch"
cmp -s "$T/got.bin" "$HTTP_DIR/f.bin" || die "f.bin differs"
grep -q "session [0-9a-f]* established (wire version [0-9]*, $want" "$LOCAL_LOG" ||
	die "the local log does not name $want"
grep -q "session [0-9a-f]* of user alice established (wire version [0-9]*, $want" "$SERVER_LOG" ||
	die "the server log does not name $want"
[ "$(metric "$LOCAL_METRICS" kcpsocks_sessions_by_cipher_total "cipher=\"$want\"")" = 1 ] ||
	die "local metric: no $want session"
[ "$(metric "$SERVER_METRICS" kcpsocks_sessions_by_cipher_total "cipher=\"$want\"")" = 1 ] ||
	die "server metric: no $want session"
ok "cipher = auto on both ends: $want, 300 kB intact"

# A client that turns AES-256-GCM off: ChaCha20-Poly1305 with the same server.
stop_daemon "$LOCAL_PID"
start_local "$SERVER_PORT" "" --cipher chacha20
wait_session
grep -q 'local: chacha20-poly1305 only (cipher = chacha20)' "$LOCAL_LOG" ||
	die "the local daemon did not log its cipher choice"
tcurl -o "$T/got2.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" || die "fetch with chacha20"
cmp -s "$T/got2.bin" "$HTTP_DIR/f.bin" || die "f.bin differs (chacha20)"
grep -q "session [0-9a-f]* established (wire version [0-9]*, chacha20-poly1305" "$LOCAL_LOG" ||
	die "the local log does not name chacha20-poly1305"
# The server counts it too (its second session: one more chacha20 one).
n=1
[ "$want" = chacha20-poly1305 ] && n=2
server_chacha_is() {
	[ "$(metric "$SERVER_METRICS" kcpsocks_sessions_by_cipher_total 'cipher="chacha20-poly1305"')" = "$1" ]
}
wait_until "the server's chacha20-poly1305 count at $n" 10 server_chacha_is "$n"
ok "cipher = chacha20 on the client: chacha20-poly1305, 300 kB intact"
