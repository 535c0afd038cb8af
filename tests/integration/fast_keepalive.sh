#!/usr/bin/env bash
# fast_keepalive.sh - an idle session outlives its idle window because the
# client's keepalive PINGs keep it alive: idle_timeout_ms = 5000 and
# keepalive_ms = 1000 on both sides, 8 s without any traffic, then the same
# session (same id, no new handshake, nothing lost) still carries a
# download. The idle daemons' timer wakeups stay few (no fast tick).
set -euo pipefail
NAME=fast_keepalive
. "$(dirname "$0")/daemons-lib.sh"

make_keys
start_http
head -c 100000 /dev/urandom >"$tmp/www/f.bin"
start_server --idle_timeout_ms 5000 --keepalive_ms 1000
start_local --idle_timeout_ms 5000 --keepalive_ms 1000
sid=$(sed -n 's/.*session \([0-9a-f]*\) established.*/\1/p' "$tmp/local.log.new" | head -n 1)
w0=$(metric "$SMETRICS_PORT" kcpsocks_timer_wakeups_total)

deadline=$(($(date +%s) + 8))
while [ "$(date +%s)" -lt $deadline ]; do
	grep -q 'session lost' "$tmp/local.log.new" && fail "the session was lost while idle"
	sleep 0.5
done
w1=$(metric "$SMETRICS_PORT" kcpsocks_timer_wakeups_total)
ka=$(metric "$LMETRICS_PORT" kcpsocks_session_keepalives_total)
[ "${ka:-0}" -ge 3 ] || fail "keepalives sent: ${ka:-none}"
tcurl -o "$tmp/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" || fail "fetch after idling"
cmp -s "$tmp/got.bin" "$tmp/www/f.bin" || fail "f.bin differs"
[ "$(metric "$SMETRICS_PORT" kcpsocks_handshakes_ok_total)" = 1 ] || fail "a new handshake happened"
grep -q "session $sid of user alice ended" "$tmp/server.log" && fail "the server ended the session"
grep -q 'session lost' "$tmp/local.log.new" && fail "the client lost the session"
ok "session $sid alive after 8 s idle with a 5 s window ($ka keepalives)"
ok "server timer wakeups while idle: $((w1 - w0)) in 8 s"
[ $((w1 - w0)) -lt 100 ] || fail "too many wakeups while idle"
