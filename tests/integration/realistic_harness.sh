#!/usr/bin/env bash
# realistic_harness.sh - proves the harness itself (lib.sh), without the
# daemons: nginx serves generated files, direct curl fetches match their
# sha256 (also over ::1 and with keep-alive), the impairment relay starts,
# passes datagrams and stops with its counters, the metrics parser sums and
# maxes labelled samples, the resource samplers read a live PID, and
# stop_pid ends a process it started.
. "$(dirname "$0")/lib.sh"
lib_init realistic_harness

start_nginx 1K 64K 1M 4M
for f in 1K 64K 1M 4M; do fetch_direct "$f"; done
note "nginx on 127.0.0.1:$NGINX_PORT: 4 files fetched directly, sha256 ok"
if [ "$NGINX_V6" = 1 ]; then
	curl -sS --fail --max-time 10 -o "$T/v6" "http://[::1]:$NGINX_PORT/f_64K" || die "fetch over ::1"
	check_file "$T/v6" 64K || die "::1 fetch: sha256 mismatch"
	note "nginx on [::1]:$NGINX_PORT too"
fi

# keep-alive: one curl, three URLs over one reused connection.
curl -sS --fail --max-time 10 -o "$T/a" "$(url 1K)" -o "$T/b" "$(url 64K)" -o "$T/c" "$(url 1M)" ||
	die "keep-alive fetch"
if ! check_file "$T/a" 1K || ! check_file "$T/b" 64K || ! check_file "$T/c" 1M; then
	die "keep-alive: sha256"
fi
# a corrupted copy must be caught
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[1000] ^= 1
open(sys.argv[1], "wb").write(b)' "$T/c"
check_file "$T/c" 1M && die "check_file accepted a corrupted file"
note "keep-alive fetch ok; a flipped byte is detected"

# the relay: UDP through it both ways, then counters on SIGTERM.
ECHO_PORT=$(free_port)
python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $ECHO_PORT))
while True:
    d, a = s.recvfrom(65535); s.sendto(d, a)" &
lib_track $! echo
wait_for_udp_port "$ECHO_PORT" 5
start_impair "$ECHO_PORT" --delay 5
got=$(python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); n = 0
for i in range(20):
    s.sendto(b'ping%d' % i, ('127.0.0.1', $IMPAIR_PORT))
    try: n += s.recv(100) == b'ping%d' % i
    except OSError: pass
print(n)")
[ "$got" = 20 ] || die "relay: $got/20 echoes"
stop_impair
[ "$(impair_counter up delivered)" = 20 ] || die "relay counters: $(cat "$IMPAIR_STATS")"
note "impair relay: 20/20 echoes, counters read back"

# metrics parsing
cat >"$T/m.txt" <<'EOF'
# HELP kcpsocks_session_srtt_seconds smoothed RTT
# TYPE kcpsocks_session_srtt_seconds gauge
kcpsocks_session_srtt_seconds{user="a"} 12
kcpsocks_session_srtt_seconds{user="b"} 31
kcpsocks_session_retransmits_fast_total{session="1"} 5
kcpsocks_session_retransmits_timeout_total 7
kcpsocks_handshakes_ok_total 1
EOF
[ "$(metric_from "$T/m.txt" max kcpsocks_session_srtt_seconds)" = 31 ] || die "metric max"
# shellcheck disable=SC2086  # METRIC_RETRANS is a list of names
[ "$(metric_from "$T/m.txt" sum $METRIC_RETRANS)" = 12 ] || die "metric sum"
[ -z "$(metric_from "$T/m.txt" sum nope_total)" ] || die "absent metric not empty"
[ "$(metric_guess "$T/m.txt" 'retrans' | wc -l)" = 2 ] || die "metric_guess"
note "metrics parser: max, sum over names and labels, absent, guess"

# samplers and stop_pid
sleep 30 &
sp=$!
lib_track "$sp" sleeper
if [ "$(rss_kb "$sp")" -le 0 ] || [ "$(fd_count "$sp")" -lt 3 ]; then die "rss_kb/fd_count"; fi
rc=0
stop_pid "$sp" 5 || rc=$?
alive "$sp" && die "stop_pid left $sp running"
note "samplers: rss $(rss_kb "$NGINX_PID") kB, $(fd_count "$NGINX_PID") fds for nginx; stop_pid ok (rc $rc)"
note ok
