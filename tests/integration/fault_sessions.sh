#!/usr/bin/env bash
# fault_sessions.sh - many sessions at once (issue 19): tools/kcpsocks-load
# opens LOAD_SESSIONS (1000) real sessions, each with one idle stream to
# nginx, from 127.0.0.1..127.0.0.250, and holds them while
#   - a kcpsocks-local next to them still fetches and verifies files;
#   - the server's /metrics answers HTTP 200 with every sample, and its
#     sessions gauge counts the load's sessions.
# Then every load session must have come up with its stream, and after the
# load closed them the server's RSS must fall back (malloc_trim after a
# burst) below LOAD_RSS_AFTER_KB.
. "$(dirname "$0")/lib.sh"
lib_init fault_sessions
require_daemons
KS_LOAD=${KS_LOAD:-$BUILD/kcpsocks-load}
[ -x "$KS_LOAD" ] || die "kcpsocks-load not built ($KS_LOAD missing; make all)"

LOAD_SESSIONS=${LOAD_SESSIONS:-1000}
LOAD_HOLD_S=${LOAD_HOLD_S:-10}
LOAD_RSS_AFTER_KB=${LOAD_RSS_AFTER_KB:-65536}
PER_USER=8
NUSERS=$(((LOAD_SESSIONS + PER_USER - 1) / PER_USER))

start_nginx 1K 64K 1M
make_keys alice "max_sessions = $((LOAD_SESSIONS + 64))" "sessions_per_user = $PER_USER"
add_load_users "$NUSERS" "$T/users.txt"
start_server
start_local "$SERVER_PORT"
fetch_verify 1K >/dev/null || die "first fetch failed"

"$KS_LOAD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --users "$T/users.txt" \
	--sessions "$LOAD_SESSIONS" --streams 1 --target "127.0.0.1:$NGINX_PORT" \
	--hold "$LOAD_HOLD_S" --timeout 60 --server-pid "$SERVER_PID" >"$T/load.out" 2>"$T/load.err" &
LOAD_PID=$!
lib_track "$LOAD_PID" kcpsocks-load "$T/load.err"

scrape() { curl -sS --max-time 10 -o "$T/metrics.out" -w '%{http_code}' \
	"http://127.0.0.1:$SERVER_METRICS/metrics" 2>"$T/metrics.err"; }
live_sessions() {
	scrape >/dev/null || return 1
	awk '$1 == "kcpsocks_sessions" {print $2}' "$T/metrics.out"
}
all_up() { [ "$(live_sessions || echo 0)" -ge "$LOAD_SESSIONS" ] 2>/dev/null; }
poll 60 all_up || die "the server never held $LOAD_SESSIONS load sessions (last: $(live_sessions))"
note "server holds $(live_sessions) sessions, RSS $(rss_kb "$SERVER_PID") KiB"

code=$(scrape) || die "scraping /metrics failed: $(cat "$T/metrics.err")"
[ "$code" = 200 ] || die "/metrics answered HTTP $code with $LOAD_SESSIONS sessions"
lines=$(wc -l <"$T/metrics.out")
tail -c 1 "$T/metrics.out" | od -c | grep -q '\\n' || die "/metrics body is cut"
grep -q '^# TYPE kcpsocks_sessions gauge' "$T/metrics.out" || die "/metrics lacks the sessions gauge"
ok "/metrics: HTTP 200, $lines lines, $(wc -c <"$T/metrics.out") bytes with $LOAD_SESSIONS sessions"

for f in 1K 64K 1M; do
	fetch_verify "$f" >/dev/null || die "fetch of $f failed next to $LOAD_SESSIONS sessions"
done
ok "kcpsocks-local fetched 1K, 64K, 1M next to the load"

# Bounded by the tool itself: --timeout, then --hold, then the closes.
wait "$LOAD_PID" && rc=0 || rc=$?
lib_untrack "$LOAD_PID"
cat "$T/load.out"
[ "$rc" -eq 0 ] || die "kcpsocks-load exit $rc: $(cat "$T/load.out" "$T/load.err")"
up=$(tr ' ' '\n' <"$T/load.out" | sed -n 's/^streams_ok=//p')
[ "$up" = "$LOAD_SESSIONS" ] || die "only $up of $LOAD_SESSIONS load streams came up"

rss_back() { [ "$(rss_kb "$SERVER_PID")" -le "$LOAD_RSS_AFTER_KB" ]; }
poll 20 rss_back || die "server RSS $(rss_kb "$SERVER_PID") KiB after the load closed (want <= $LOAD_RSS_AFTER_KB)"
fetch_verify 64K >/dev/null || die "fetch after the load failed"
ok "$LOAD_SESSIONS sessions up and closed; server RSS back to $(rss_kb "$SERVER_PID") KiB"
