#!/usr/bin/env bash
# fault_stop.sh - clean stops (issue 15, docs/OPERATIONS.md "Stopping").
#
#   1. kcpsocks-local stopped with SIGTERM: its close datagram makes the
#      server drop the session within STOP_GONE_S (1 s; server metric
#      kcpsocks_sessions), not after the idle timeout.
#   2. kcpsocks-server stopped with SIGTERM: its close reaches the client,
#      whose session is down (metric kcpsocks_local_session_up 0) within
#      STOP_GONE_S of the server's exit.
#   3. kcpsocks-local restarted with a download open: SIGTERM closes the
#      old instance's SOCKS5 and metrics ports at once, a new instance on
#      the same ports starts and serves a request within STOP_SERVE_S
#      (3 s) while the old one drains; the old one exits within its drain
#      time (DAEMON_DRAIN_DEFAULT_MS, 10 s) plus STOP_EXIT_S, and the
#      download it could not finish ends with an error (reset), never as
#      complete. The two instances are one user: both sessions coexist
#      (sessions_per_user), the old download runs on through the drain.
. "$(dirname "$0")/lib.sh"
lib_init fault_stop
require_daemons

STOP_GONE_S=${STOP_GONE_S:-1}
STOP_SERVE_S=${STOP_SERVE_S:-3}
STOP_EXIT_S=${STOP_EXIT_S:-5}

start_nginx 1K 1M
truncate -s 1G "$WWW/f_1G" # sparse: costs no disk, contents unchecked
make_keys
start_server
start_local "$SERVER_PORT" default
wait_session
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"
server_sessions() { metric "$SERVER_METRICS" kcpsocks_sessions; }
sessions_are() { [ "$(server_sessions)" = "$1" ]; }
wait_until "one session on the server" 5 sessions_are 1

# 1. SIGTERM: the server's session is gone at once
t0=$(now_ms)
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
poll "$STOP_GONE_S" sessions_are 0 ||
	die "the server still lists $(server_sessions) session(s) ${STOP_GONE_S} s after the client stopped"
note "client stopped: its server session was gone $(($(now_ms) - t0)) ms after the SIGTERM"

# 2. the server stops: the client hears its close
start_local "$SERVER_PORT" default
wait_session
local_up() { [ "$(metric "$LOCAL_METRICS" kcpsocks_local_session_up)" = "$1" ]; }
wait_until "the local session up" 5 local_up 1
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
t0=$(now_ms)
poll "$STOP_GONE_S" local_up 0 || die "the client still has a session ${STOP_GONE_S} s after the server stopped"
note "server stopped: the client's session was down $(($(now_ms) - t0)) ms after the server exited"
grep -q "closed by the server" "$LOCAL_LOG" || die "the client did not log the server's close"
start_server
time_to_fetch 5 1K >/dev/null

# 3. restart kcpsocks-local under a download
old_pid=$LOCAL_PID
old_log=$LOCAL_LOG
start_long_download
dl_out=$DL_OUT dl_pid=$DL_PID
t0=$(now_ms)
kill -TERM "$old_pid"
port_free() { ! tcp_listening "$LOCAL_PORT" && ! tcp_listening "$LOCAL_METRICS"; }
poll 1 port_free || die "the old kcpsocks-local kept its ports after SIGTERM"
start_local "$SERVER_PORT" default
ms=$(time_to_fetch "$STOP_SERVE_S" 1K)
note "restart: the new instance served a request $(($(now_ms) - t0)) ms after the SIGTERM (fetch ${ms} ms)"
size_at=$(stat -c %s "$dl_out")
fetch_verify 1M >/dev/null || die "a 1 MiB fetch through the new instance failed"
poll $((10 + STOP_EXIT_S)) not_alive "$old_pid" || die "the old kcpsocks-local did not exit after its drain time"
reap "$old_pid" || true
wait_until "the old download to end" 10 not_alive "$dl_pid"
dl_rc=0
reap "$dl_pid" || dl_rc=$?
note "the download through the stopped instance: curl exit $dl_rc ($(head -c 120 "$T/dl.err"))"
[ "$dl_rc" -ne 0 ] || die "an unfinished download ended as if complete when its daemon stopped"
# Both instances are one user: their sessions coexist (sessions_per_user,
# default 8), so the old download kept going through the drain.
grep -q "drain time" "$old_log" || die "the old instance did not drain until its drain time"
grep -q "superseded" "$SERVER_LOG" && die "a session of the user was superseded"
grown=$(($(stat -c %s "$dl_out") - size_at))
note "the old instance's download got $grown more bytes while the new instance served"
[ "$grown" -gt 1000000 ] || die "the old instance's download stalled during its drain ($grown bytes)"

stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
note ok
