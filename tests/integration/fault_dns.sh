#!/usr/bin/env bash
# fault_dns.sh - the client follows a DNS change of its server's name at
# the next new handshake (issue 15, docs/OPERATIONS.md "Several servers").
#
# A DNS responder the test controls (dnsd.py on 127.0.0.1, asked through
# the client's resolver_servers with resolver_lookups = b: nothing else is
# asked) answers kcps.test with 127.0.0.1, where S1 listens. S2, with the
# same key, listens on 127.0.0.2 (the same port). The answer is changed to
# 127.0.0.2 and S1 stopped (SIGTERM: its close tells the client at once):
# the client looks the name up again before its new handshake, and its new
# session is on S2 within DNS_FOLLOW_S (5 s); requests work.
. "$(dirname "$0")/lib.sh"
lib_init fault_dns
require_daemons

DNS_FOLLOW_S=${DNS_FOLLOW_S:-5}

start_nginx 1K
make_keys
start_server
S1_PID=$SERVER_PID M1=$SERVER_METRICS P=$SERVER_PORT
M2=$(free_port)
S2_LOG=$T/server2.log
"$KS_SERVER" --config "$SERVER_CONF" --listen "127.0.0.2:$P" \
	--metrics_listen "127.0.0.1:$M2" >"$S2_LOG" 2>&1 &
S2_PID=$!
lib_track "$S2_PID" kcpsocks-server-2 "$S2_LOG"
wait_for_tcp_port "$M2" 20 "$S2_PID"

zone=$T/zone
echo "kcps.test 127.0.0.1" >"$zone"
python3 "$(dirname "$0")/dnsd.py" "$T/dns.port" "$zone" 2>"$T/dnsd.log" &
DNS_PID=$!
lib_track "$DNS_PID" dnsd "$T/dnsd.log"
wait_until "the DNS responder" 10 test -s "$T/dns.port"
DNS_PORT=$(cat "$T/dns.port")

LOCAL_PORT=$(free_port) LOCAL_METRICS=$(free_port)
cs=$(local_connstr "$P" default | sed "s#@127.0.0.1:$P?#@kcps.test:$P?#")
LOCAL_LOG=$T/local.log
"$KS_LOCAL" --connect "$cs" --listen "127.0.0.1:$LOCAL_PORT" \
	--metrics_listen "127.0.0.1:$LOCAL_METRICS" --log_level "$KS_LOG_LEVEL" \
	--resolver_servers "127.0.0.1:$DNS_PORT" --resolver_lookups b >"$LOCAL_LOG" 2>&1 &
LOCAL_PID=$!
lib_track "$LOCAL_PID" kcpsocks-local "$LOCAL_LOG"
wait_for_tcp_port "$LOCAL_PORT" 20 "$LOCAL_PID"
wait_session
time_to_fetch 5 1K >/dev/null

sessions_on() { [ "$(metric "$1" kcpsocks_sessions)" = "$2" ]; }
wait_until "the session on S1 (127.0.0.1)" 5 sessions_on "$M1" 1
sessions_on "$M2" 0 || die "S2 (127.0.0.2) has a session before the DNS change"

echo "kcps.test 127.0.0.2" >"$zone"
t0=$(now_ms)
stop_pid "$S1_PID" 15 || die "S1 did not stop on SIGTERM"
wait_until "the session on S2 (127.0.0.2)" "$DNS_FOLLOW_S" sessions_on "$M2" 1
note "the client followed the name to 127.0.0.2 $(($(now_ms) - t0)) ms after S1 stopped"
grep -q "server kcps.test:$P is now 127.0.0.2:$P" "$LOCAL_LOG" ||
	die "the client did not log the new address"
time_to_fetch 5 1K >/dev/null
note ok
