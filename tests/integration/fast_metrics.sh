#!/usr/bin/env bash
# fast_metrics.sh - what an operator reads: both daemons' /metrics after a
# fetch pass `promtool check metrics` (Prometheus conventions: base units,
# _total counters, label values without spaces), relay_up_bytes means
# client -> destination on both daemons, the server accounts bytes per
# user, session series carry no session id; the access log has one line per
# stream on both daemons (user, client address, destination, result, bytes
# each way, duration); refusals are logged with their reason (destination
# policy, SOCKS5 login, a wrong psk); a client whose handshakes go
# unanswered lists the likely causes once; `status` shows both daemons.
set -euo pipefail
KS_LOG_LEVEL=info
# 127.0.0.2 is not allowed: a destination the policy refuses.
SERVER_ALLOW=127.0.0.1/32
. "$(dirname "$0")/lib.sh"
lib_init fast_metrics
require_daemons
command -v promtool >/dev/null || die "promtool missing: run scripts/deps.sh metrics"
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT BAD1_PORT BAD2_PORT

make_keys alice
start_http
head -c 300000 /dev/urandom >"$HTTP_DIR/f.bin"
start_server
start_local "$SERVER_PORT" "" --socks_user bob --socks_password pw
wait_session

proxy="socks5h://bob:pw@127.0.0.1:$LOCAL_PORT"
curl -sS -m 20 -o "$T/got.bin" --proxy "$proxy" "http://127.0.0.1:$HTTP_PORT/f.bin" ||
	die "fetch through the tunnel"
cmp -s "$T/got.bin" "$HTTP_DIR/f.bin" || die "f.bin differs"
curl -sS -m 20 -o /dev/null --proxy "$proxy" "http://127.0.0.2:$HTTP_PORT/f.bin" 2>/dev/null &&
	die "a destination the policy refuses was reached"
curl -sS -m 20 -o /dev/null --proxy "socks5h://bob:wrong@127.0.0.1:$LOCAL_PORT" \
	"http://127.0.0.1:$HTTP_PORT/f.bin" 2>/dev/null && die "a wrong SOCKS5 password was accepted"

# 1. the access log: one line per stream on each side (the client's line
# comes when its application closes; wait for it).
dest="127.0.0.1:$HTTP_PORT"
line_re="stream user=alice client=127\.0\.0\.1:[0-9]+ dest=$dest result=\"succeeded\" up=[0-9]+ down=[0-9]+ duration=[0-9]+\.[0-9]{3}s"
wait_until "the client's access log line" 10 grep -qE "$line_re" "$LOCAL_LOG"
wait_until "the server's access log line" 10 grep -qE "$line_re" "$SERVER_LOG"
for f in "$LOCAL_LOG" "$SERVER_LOG"; do
	down=$(grep -E "$line_re" "$f" | head -n 1 | sed -E 's/.* down=([0-9]+) .*/\1/')
	up=$(grep -E "$line_re" "$f" | head -n 1 | sed -E 's/.* up=([0-9]+) .*/\1/')
	[ "$down" -gt 300000 ] && [ "$up" -gt 0 ] && [ "$up" -lt 10000 ] ||
		die "access log bytes: up=$up down=$down in $f"
done
ok "access log: one line per stream on both daemons, bytes each way"
grep -qE "stream user=alice client=127\.0\.0\.1:[0-9]+ dest=127\.0\.0\.2:$HTTP_PORT result=\"not allowed by ruleset\" reason=\"destination policy\"" \
	"$SERVER_LOG" || die "no access log line for the refused destination"
grep -qE "socks5 client=127\.0\.0\.1:[0-9]+ refused: wrong username or password" "$LOCAL_LOG" ||
	die "no log line for the wrong SOCKS5 password"
ok "refusals logged with reasons: destination policy, SOCKS5 login"

# 2. promtool, and what the figures mean.
scrape "$SERVER_METRICS" >"$T/server.prom"
scrape "$LOCAL_METRICS" >"$T/local.prom"
for d in server local; do
	[ -s "$T/$d.prom" ] || die "$d: empty scrape"
	promtool check metrics <"$T/$d.prom" >"$T/$d.promtool" 2>&1 ||
		die "$d: promtool check metrics: $(cat "$T/$d.promtool")"
	grep -qE '^[a-z_]+_ms[{ ]|sid="' "$T/$d.prom" && die "$d: a _ms metric or a sid label"
	grep -qE '\{[^}]*="[^"]* [^"]*"' "$T/$d.prom" && die "$d: a label value with a space"
done
ok "promtool check metrics: both daemons clean"
for d in server local; do
	up=$(metric_from "$T/$d.prom" sum kcpsocks_relay_up_bytes_total)
	down=$(metric_from "$T/$d.prom" sum kcpsocks_relay_down_bytes_total)
	[ "${down:-0}" -gt 300000 ] && [ "${up:-0}" -gt 0 ] && [ "${up:-0}" -lt 10000 ] ||
		die "$d: relay_up_bytes_total=${up:-none} relay_down_bytes_total=${down:-none}"
done
ok "relay_up_bytes_total is client -> destination on both daemons"
udown=$(grep '^kcpsocks_user_down_bytes_total{user="alice"}' "$T/server.prom" | cut -d' ' -f2)
ustreams=$(grep '^kcpsocks_user_streams_total{user="alice"}' "$T/server.prom" | cut -d' ' -f2)
usess=$(grep '^kcpsocks_user_sessions_total{user="alice"}' "$T/server.prom" | cut -d' ' -f2)
[ "${udown:-0}" -gt 300000 ] && [ "${ustreams:-0}" = 2 ] && [ "${usess:-0}" = 1 ] ||
	die "per-user counters: down=${udown:-none} streams=${ustreams:-none} sessions=${usess:-none}"
grep -qE '^kcpsocks_session_srtt_seconds\{user="alice"\} [0-9.e-]+$' "$T/server.prom" ||
	die "no srtt in seconds keyed by user"
ok "per-user accounting on the server: $udown bytes down, 2 streams, 1 session"

# 3. status: the live view from the daemons' own metrics endpoints.
"$KS_SERVER" status --config "$SERVER_CONF" --metrics_listen "127.0.0.1:$SERVER_METRICS" \
	>"$T/status.server" 2>&1 || die "server status: $(cat "$T/status.server")"
grep -q '^sessions   1 established' "$T/status.server" &&
	grep -qE '^alice +[0-9.]+ +[0-9.]+ +[0-9.]+% +0 .* 2 +1$' "$T/status.server" ||
	die "server status: $(cat "$T/status.server")"
"$KS_LOCAL" status --connect "$(local_connstr "$SERVER_PORT")" \
	--metrics_listen "127.0.0.1:$LOCAL_METRICS" >"$T/status.local" 2>&1 ||
	die "local status: $(cat "$T/status.local")"
grep -q '^sessions   1 established' "$T/status.local" && grep -q '^alice ' "$T/status.local" ||
	die "local status: $(cat "$T/status.local")"
"$KS_LOCAL" status --connect "$(local_connstr "$SERVER_PORT")" >"$T/status.none" 2>&1 &&
	die "status without metrics_listen succeeded"
grep -q 'metrics_listen is not set' "$T/status.none" || die "status without metrics_listen: $(cat "$T/status.none")"
ok "status: both daemons' live view ($(grep -c . "$T/status.server") lines on the server)"

# 3. a wrong psk: the server says why, the client lists the likely causes.
bad=$(local_connstr "$SERVER_PORT")
first=$(printf '%s' "$bad" | sed -E 's#^kcpsocks://[^:]*:(.).*#\1#')
[ "$first" = A ] && sub=B || sub=A
bad=$(printf '%s' "$bad" | sed -E "s#^(kcpsocks://[^:]*:).#\\1$sub#")
bad_log=$T/local-badpsk.log
"$KS_LOCAL" --connect "$bad" --listen "127.0.0.1:$BAD1_PORT" --log_level info >"$bad_log" 2>&1 &
lib_track $! kcpsocks-local-badpsk "$bad_log"
# and one with another server's key (the last character of ?key= changed)
badkey=$(local_connstr "$SERVER_PORT" | sed -E 's#(key=[^&]*)(.)(&|$)#\1\2\3#')
last=$(printf '%s' "$badkey" | sed -E 's#.*key=([^&]*).*#\1#' | cut -c43)
[ "$last" = A ] && sub=E || sub=A
badkey=$(printf '%s' "$badkey" | sed -E "s#(key=[^&]{42}).#\1$sub#")
"$KS_LOCAL" --connect "$badkey" --listen "127.0.0.1:$BAD2_PORT" --log_level info \
	>"$T/local-badkey.log" 2>&1 &
lib_track $! kcpsocks-local-badkey "$T/local-badkey.log"
wait_until "the server's refusal line" 20 grep -q "refused: wrong psk for the user" "$SERVER_LOG"
wait_until "the client's likely causes" 30 grep -q "does not answer. Likely causes" "$bad_log"
wait_until "a second unanswered handshake" 30 \
	sh -c "[ \$(grep -c 'no answer; retrying' '$bad_log') -ge 2 ]"
[ "$(grep -c 'Likely causes' "$bad_log")" = 1 ] || die "the likely causes were printed more than once"
wait_until "the server's wrong-key line" 10 grep -q "matches no session: .* another server's public key" "$SERVER_LOG"
ok "wrong psk, wrong key: the server logs the reason, the client the likely causes (once)"
