#!/usr/bin/env bash
# fault_devices.sh - several devices of one user (issue 15,
# docs/PROTOCOL.md secure 6.3, docs/OPERATIONS.md "Several devices").
#
# Two kcpsocks-local processes, A and B, with the same user and keys
# (a laptop and a phone): A through the impairment relay, B straight to
# the server.
#   1. Both download 16 MiB at the same time: both bodies intact, two
#      sessions on the server (metric kcpsocks_sessions), none superseded.
#   2. A's path goes dark (relay blackhole, SIGUSR2) under a request: A
#      declares its session down (dead path, 10 s), and when the path is
#      back it handshakes again with the same instance id. Its first
#      request on the new session makes the server replace A's old
#      session, and only that one: one "superseded", two sessions again,
#      B's session untouched (B established once, B still serves).
. "$(dirname "$0")/lib.sh"
lib_init fault_devices
require_daemons

DEV_DEAD_S=${DEV_DEAD_S:-20}

start_nginx 1K 16M
make_keys
start_server
server_sessions() { metric "$SERVER_METRICS" kcpsocks_sessions; }
sessions_are() { [ "$(server_sessions)" = "$1" ]; }

# A: through the relay.
start_impair "$SERVER_PORT"
start_local "$IMPAIR_PORT" default
wait_session
A_PORT=$LOCAL_PORT A_METRICS=$LOCAL_METRICS A_LOG=$LOCAL_LOG
# B: its own ports, straight to the server.
LOCAL_PORT='' LOCAL_METRICS=''
start_local "$SERVER_PORT" default
wait_session
B_PORT=$LOCAL_PORT B_METRICS=$LOCAL_METRICS B_LOG=$LOCAL_LOG
wait_until "two sessions on the server" 5 sessions_are 2

# 1. two devices download at once
LOCAL_PORT=$A_PORT fetch_verify 16M >"$T/a.out" &
a_pid=$!
lib_track "$a_pid" fetch-a
LOCAL_PORT=$B_PORT fetch_verify 16M >"$T/b.out" &
b_pid=$!
lib_track "$b_pid" fetch-b
a_rc=0 b_rc=0
reap "$a_pid" || a_rc=$?
reap "$b_pid" || b_rc=$?
[ "$a_rc" -eq 0 ] || die "device A's download failed while B downloaded"
[ "$b_rc" -eq 0 ] || die "device B's download failed while A downloaded"
note "A $(cat "$T/a.out"); B $(cat "$T/b.out")"
sessions_are 2 || die "the server lists $(server_sessions) sessions for two devices, not 2"
grep -q "superseded" "$SERVER_LOG" && die "a device's session was superseded by the other's"

# 2. A loses its path, handshakes again: only A's old session goes
up_is() { [ "$(metric "$A_METRICS" kcpsocks_local_session_up)" = "$1" ]; }
kill -USR2 "$IMPAIR_PID" # dark
curl -s -m 30 --socks5-hostname "127.0.0.1:$A_PORT" -o /dev/null "$(url 1K)" 2>/dev/null &
req_pid=$!
lib_track "$req_pid" request-a
wait_until "A's session to be declared down" "$DEV_DEAD_S" up_is 0
kill -USR2 "$IMPAIR_PID" # light
reap "$req_pid" || true
wait_until "A's new session" 10 up_is 1
sessions_are 3 || note "before A's first payload the server lists $(server_sessions) sessions"
LOCAL_PORT=$A_PORT time_to_fetch 10 1K >/dev/null
wait_until "A's old session to be replaced" 5 sessions_are 2
n=$(grep -c "superseded" "$SERVER_LOG" || true)
[ "$n" = 1 ] || die "expected one superseded session on the server, saw $n"
[ "$(grep -c 'session .* established' "$B_LOG")" = 1 ] || die "device B handshook again"
LOCAL_PORT=$B_PORT fetch_verify 1K >/dev/null || die "device B no longer serves"
note "A's new session replaced only A's old one: $(server_sessions) sessions, B untouched"
note ok
