#!/usr/bin/env bash
# fault_servers.sh - several servers (issue 15, docs/OPERATIONS.md
# "Several servers").
#
# Two kcpsocks-server processes with the same key and users, S1 (first in
# the list: preferred) and S2; one kcpsocks-local with
# `@127.0.0.1:P1,127.0.0.1:P2` in its connection string, dead_path_ms
# SRV_DEAD_MS (4 s) and server_return_ms SRV_RETURN_MS (3 s).
#   1. It starts on S1 (the first that answers).
#   2. S1 is SIGKILLed: new connections go through S2 within SRV_FAILOVER_S
#      (10 s) of the kill (dead path, then one handshake with S2).
#   3. While S1 stays down past server_return_ms, the client stays on S2
#      and every request works (the return probe costs no outage).
#   4. S1 comes back: within SRV_RETURN_S (15 s) the client is on S1 again
#      (its probe answered, no stream open): S1 lists its session, S2 none
#      (the client closed it), and requests work.
. "$(dirname "$0")/lib.sh"
lib_init fault_servers
require_daemons

SRV_DEAD_MS=${SRV_DEAD_MS:-4000}
SRV_RETURN_MS=${SRV_RETURN_MS:-3000}
SRV_FAILOVER_S=${SRV_FAILOVER_S:-10}
SRV_RETURN_S=${SRV_RETURN_S:-15}

start_nginx 1K
make_keys
start_server
P1=$SERVER_PORT M1=$SERVER_METRICS S1_PID=$SERVER_PID
SERVER_PORT='' SERVER_METRICS=''
start_server
P2=$SERVER_PORT M2=$SERVER_METRICS S2_PID=$SERVER_PID
# start_server again (S1's restart) must use S1's ports
SERVER_PORT=$P1 SERVER_METRICS=$M1

LOCAL_PORT=$(free_port) LOCAL_METRICS=$(free_port)
cs=$(local_connstr "$P1" default | sed "s#@127.0.0.1:$P1?#@127.0.0.1:$P1,127.0.0.1:$P2?#")
LOCAL_LOG=$T/local.log
"$KS_LOCAL" --connect "$cs" --listen "127.0.0.1:$LOCAL_PORT" \
	--metrics_listen "127.0.0.1:$LOCAL_METRICS" --log_level "$KS_LOG_LEVEL" \
	--dead_path_ms "$SRV_DEAD_MS" --server_return_ms "$SRV_RETURN_MS" >"$LOCAL_LOG" 2>&1 &
LOCAL_PID=$!
lib_track "$LOCAL_PID" kcpsocks-local "$LOCAL_LOG"
wait_for_tcp_port "$LOCAL_PORT" 20 "$LOCAL_PID"
wait_session

sessions_on() { [ "$(metric "$1" kcpsocks_sessions)" = "$2" ]; }
# 1. on the first server
time_to_fetch 5 1K >/dev/null
wait_until "the session on S1" 5 sessions_on "$M1" 1
sessions_on "$M2" 0 || die "S2 has a session while S1 answers"

# 2. S1 killed: new connections through S2
t0=$(now_ms)
kill_hard "$S1_PID"
poll "$SRV_FAILOVER_S" fetch_try 1K ||
	die "no request went through S2 within $SRV_FAILOVER_S s of S1's kill"
note "S1 killed: requests through S2 again $(($(now_ms) - t0)) ms after the kill"
sessions_on "$M2" 1 || die "the request did not go through S2"
grep -q "trying 127.0.0.1:$P2" "$LOCAL_LOG" || die "the client did not log its failover"

# 2b. S1 still down past server_return_ms: the probe finds nothing, the
# client stays on S2 and keeps serving (no outage)
until_ms=$(($(now_ms) + SRV_RETURN_MS + 2000))
while [ "$(now_ms)" -lt "$until_ms" ]; do
	fetch_try 1K || die "a request failed on S2 while S1 was down (the return probe must cost no outage)"
done
sessions_on "$M2" 1 || die "the client left S2 while S1 was down"

# 3. S1 back: the client probes it, then returns to it
start_server
t0=$(now_ms)
wait_until "the client back on S1" "$SRV_RETURN_S" sessions_on "$M1" 1
note "S1 restarted: the client was back on it $(($(now_ms) - t0)) ms later"
wait_until "S2's session closed" 5 sessions_on "$M2" 0
grep -q "answers again and no stream is open: going back" "$LOCAL_LOG" ||
	die "the client did not log its return"
time_to_fetch 5 1K >/dev/null
sessions_on "$M1" 1 || die "the request after the return did not go through S1"
alive "$S2_PID" || die "S2 died"
note ok
