#!/usr/bin/env bash
# fast_keepalive.sh - an idle session outlives its idle window because the
# client's keepalive PINGs keep it alive: idle_timeout_ms = 5000 and
# keepalive_ms = 1000 on both sides, 8 s without any traffic, then the same
# session (same id, no new handshake, nothing lost) still carries a
# download. The idle daemons' timer wakeups stay few (no fast tick): the
# client's keepalive timer fires about once a second (so the counter is
# live), the server is woken by the PINGs and its idle deadline moves on.
set -euo pipefail
KS_LOG_LEVEL=debug
. "$(dirname "$0")/lib.sh"
lib_init fast_keepalive
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys
start_http
head -c 100000 /dev/urandom >"$HTTP_DIR/f.bin"
start_server --idle_timeout_ms 5000 --keepalive_ms 1000
start_local "$SERVER_PORT" "" --idle_timeout_ms 5000 --keepalive_ms 1000
wait_session
sid=$(sed -n 's/.*session \([0-9a-f]*\) established.*/\1/p' "$LOCAL_LOG" | head -n 1)
w0=$(metric "$SERVER_METRICS" kcpsocks_timer_wakeups_total)
lw0=$(metric "$LOCAL_METRICS" kcpsocks_timer_wakeups_total)

deadline=$(($(date +%s) + 8))
while [ "$(date +%s)" -lt $deadline ]; do
	grep -q 'session lost' "$LOCAL_LOG" && die "the session was lost while idle"
	sleep 0.5
done
w1=$(metric "$SERVER_METRICS" kcpsocks_timer_wakeups_total)
lw1=$(metric "$LOCAL_METRICS" kcpsocks_timer_wakeups_total)
ka=$(metric "$LOCAL_METRICS" kcpsocks_session_keepalives_total)
[ "${ka:-0}" -ge 3 ] || die "keepalives sent: ${ka:-none}"
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" || die "fetch after idling"
cmp -s "$T/got.bin" "$HTTP_DIR/f.bin" || die "f.bin differs"
[ "$(metric "$SERVER_METRICS" kcpsocks_handshakes_ok_total)" = 1 ] || die "a new handshake happened"
grep -q "session $sid of user alice ended" "$SERVER_LOG" && die "the server ended the session"
grep -q 'session lost' "$LOCAL_LOG" && die "the client lost the session"
ok "session $sid alive after 8 s idle with a 5 s window ($ka keepalives)"
ok "timer wakeups while idle in 8 s: server $((w1 - w0)), local $((lw1 - lw0))"
[ $((lw1 - lw0)) -ge 3 ] || die "the local keepalive timer fired $((lw1 - lw0)) times"
[ $((w1 - w0)) -lt 100 ] || die "too many server wakeups while idle"
[ $((lw1 - lw0)) -lt 100 ] || die "too many local wakeups while idle"
