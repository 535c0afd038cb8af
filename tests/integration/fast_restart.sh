#!/usr/bin/env bash
# fast_restart.sh - restarts on either side of the tunnel:
#   server restarted mid-session: the client notices (restart detection),
#   handshakes again, and new connections succeed within 5 s;
#   client restarted (killed hard): the server replaces the user's old
#   session with the new one (superseded), and traffic flows.
set -euo pipefail
NAME=fast_restart
. "$(dirname "$0")/daemons-lib.sh"

make_keys
start_http
head -c 300000 /dev/urandom >"$tmp/www/f.bin"
start_server
start_local

fetch() { tcurl -m 10 -o "$tmp/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" 2>/dev/null &&
	cmp -s "$tmp/got.bin" "$tmp/www/f.bin"; }
fetch || fail "first fetch"
ok "tunnel up"

# 1. server restart
stop_pid "$server_pid"
server_pid=
start_server
t0=$(date +%s%N)
until fetch; do
	elapsed=$((($(date +%s%N) - t0) / 1000000))
	[ $elapsed -lt 5000 ] || fail "no successful connection within 5 s of the server's restart"
	sleep 0.1
done
elapsed=$((($(date +%s%N) - t0) / 1000000))
[ $elapsed -lt 5000 ] || fail "first success after ${elapsed} ms (> 5 s)"
grep -q 'session lost' "$tmp/local.log.new" || fail "the client did not log the lost session"
ok "server restarted: new connections succeed after ${elapsed} ms"

# 2. client restart (SIGKILL: no goodbye reaches the server)
kill -KILL "$local_pid"
wait "$local_pid" 2>/dev/null || true
local_pid=
start_local
fetch || fail "fetch after the client's restart"
sup=$(metric_with "$SMETRICS_PORT" kcpsocks_sessions_lost_total 'reason="superseded"')
live=$(metric "$SMETRICS_PORT" kcpsocks_sessions)
[ "$sup" = 1 ] || fail "superseded sessions: want 1, got $sup"
[ "$live" = 1 ] || fail "live sessions: want 1, got $live"
ok "client restarted: the server replaced its session (1 superseded, 1 live)"
