#!/usr/bin/env bash
# fast_restart.sh - restarts on either side of the tunnel:
#   server restarted mid-session: the client notices (restart detection),
#   handshakes again, and new connections succeed within 5 s;
#   client restarted (killed hard): with sessions_per_user = 1 the server
#   replaces the user's old session with the new one (superseded), and
#   traffic flows. (With the default, 8, both stay until the old one
#   idles out: several devices of one user coexist.)
set -euo pipefail
KS_LOG_LEVEL=debug
. "$(dirname "$0")/lib.sh"
lib_init fast_restart
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys
start_http
head -c 300000 /dev/urandom >"$HTTP_DIR/f.bin"
start_server --sessions_per_user 1
start_local "$SERVER_PORT"
wait_session

fetch() { tcurl -m 10 -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" 2>/dev/null &&
	cmp -s "$T/got.bin" "$HTTP_DIR/f.bin"; }
fetch || die "first fetch"
ok "tunnel up"

# 1. server restart
stop_daemon "$SERVER_PID"
start_server --sessions_per_user 1
t0=$(date +%s%N)
until fetch; do
	elapsed=$((($(date +%s%N) - t0) / 1000000))
	[ $elapsed -lt 5000 ] || die "no successful connection within 5 s of the server's restart"
	sleep 0.1
done
elapsed=$((($(date +%s%N) - t0) / 1000000))
[ $elapsed -lt 5000 ] || die "first success after ${elapsed} ms (> 5 s)"
grep -q 'session lost' "$LOCAL_LOG" || die "the client did not log the lost session"
ok "server restarted: new connections succeed after ${elapsed} ms"

# 2. client restart (SIGKILL: no goodbye reaches the server)
kill_hard "$LOCAL_PID"
start_local "$SERVER_PORT"
wait_session
fetch || die "fetch after the client's restart"
sup=$(metric "$SERVER_METRICS" kcpsocks_sessions_lost_total 'reason="superseded"')
live=$(metric "$SERVER_METRICS" kcpsocks_sessions)
[ "$sup" = 1 ] || die "superseded sessions: want 1, got $sup"
[ "$live" = 1 ] || die "live sessions: want 1, got $live"
ok "client restarted: the server replaced its session (1 superseded, 1 live)"
