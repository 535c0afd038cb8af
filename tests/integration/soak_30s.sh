#!/usr/bin/env bash
# soak_30s.sh - SOAK_CLIENTS (32) concurrent curl clients loop over mixed
# requests (1 KiB .. 8 MiB; new connections and keep-alive) through
# kcpsocks-local -> impair (2% loss, 10 ms +-5 ms, 2% reordered by 15 ms)
# -> kcpsocks-server -> nginx for SOAK_SECONDS (30). Passes when:
#   - not one request failed or came back corrupted, and there were some;
#   - after the load, each daemon's open fds return to within SOAK_FD_MARGIN
#     of their value after warm-up (the largest sample around SOAK_WARM_S),
#     and its RSS is within SOAK_RSS_PCT % + SOAK_RSS_KB of it.
# The profile is SOAK_PROFILE (lossy): with `default` at 2% loss the
# session's throughput collapsed to about 150 KB/s for all 32 clients
# together, and 8 MiB requests could not finish in LOAD_MAXTIME (90 s).
# Next to them, tools/kcpsocks-load holds SOAK_LOAD_SESSIONS (300) real
# sessions straight to the server (not through the relay), each with one
# idle stream to nginx, from 127.0.0.1..127.0.0.250 (the server's per-host
# handshake budget), for the soak's duration. Also required: every load
# session and stream came up and none was lost, and after they closed the
# server's RSS falls back: to within SOAK_LOAD_RSS_KB (16 MiB) of its value
# before they came up and at least 1 MiB below its value while they were
# held (SOAK_LOAD_SESSIONS=0 leaves the load out).
# Every second the RTT and retransmission metrics of both daemons and their
# RSS and fds go to a CSV; scripts/soak-report.sh plots it. The report
# directory (under build/reports/) is printed at the end, pass or fail.
. "$(dirname "$0")/lib.sh"
lib_init soak_30s
require_daemons

SOAK_CLIENTS=${SOAK_CLIENTS:-32}
SOAK_SECONDS=${SOAK_SECONDS:-30}
SOAK_WARM_S=${SOAK_WARM_S:-8}
SOAK_FD_MARGIN=${SOAK_FD_MARGIN:-4}
SOAK_RSS_PCT=${SOAK_RSS_PCT:-20}
SOAK_RSS_KB=${SOAK_RSS_KB:-4096}
SOAK_PROFILE=${SOAK_PROFILE:-lossy}
# Not with the stand-in daemons (KS_MOCK=1): they speak no KCP.
SOAK_LOAD_SESSIONS=${SOAK_LOAD_SESSIONS:-$([ "${KS_MOCK:-0}" = 1 ] && echo 0 || echo 300)}
SOAK_LOAD_RSS_KB=${SOAK_LOAD_RSS_KB:-16384}
SEED=${SEED:-20261125} # fixed by default so a failure reproduces; SEED=... to vary
REPORT=$(report_dir soak)
KS_LOAD=${KS_LOAD:-$BUILD/kcpsocks-load}
[ "$SOAK_LOAD_SESSIONS" -eq 0 ] || [ -x "$KS_LOAD" ] ||
	die "kcpsocks-load not built ($KS_LOAD missing; make all)"
PER_USER=8
NUSERS=$(((SOAK_LOAD_SESSIONS + PER_USER - 1) / PER_USER))

start_nginx 1K 4K 16K 64K 256K 1M 4M 8M
make_keys alice "max_sessions = $((SOAK_LOAD_SESSIONS + 64))" "sessions_per_user = $PER_USER"
add_load_users "$NUSERS" "$T/users.txt"
start_server
start_impair "$SERVER_PORT" --seed "$SEED" --loss 0.02 --delay 10 --jitter 5 --reorder 0.02,15
start_local "$IMPAIR_PORT" "$SOAK_PROFILE"
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"
note "seed $SEED; profile $SOAK_PROFILE; $SOAK_CLIENTS clients and $SOAK_LOAD_SESSIONS load" \
	"sessions for $SOAK_SECONDS s; report in $REPORT"

rss_pre_load=$(rss_kb "$SERVER_PID")
if [ "$SOAK_LOAD_SESSIONS" -gt 0 ]; then
	"$KS_LOAD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --users "$T/users.txt" \
		--sessions "$SOAK_LOAD_SESSIONS" --streams 1 --target "127.0.0.1:$NGINX_PORT" \
		--hold "$SOAK_SECONDS" --timeout 60 --server-pid "$SERVER_PID" \
		>"$REPORT/load.out" 2>"$REPORT/load.err" &
	KSLOAD_PID=$!
	lib_track "$KSLOAD_PID" kcpsocks-load "$REPORT/load.err"
fi
sampler_start "$REPORT/soak.csv"
load_start "$SOAK_CLIENTS" "$SOAK_SECONDS" "$REPORT/clients"
load_wait $((SOAK_SECONDS + ${LOAD_MAXTIME:-90} + 10))
# kcpsocks-load ends by itself: --timeout for the handshakes, --hold, the closes.
if [ "$SOAK_LOAD_SESSIONS" -gt 0 ]; then
	poll 90 not_alive "$KSLOAD_PID" || die "kcpsocks-load still running 90 s after the soak"
	ksload_rc=0
	reap "$KSLOAD_PID" || ksload_rc=$?
fi
end_s=$(tail -n 1 "$REPORT/soak.csv" | cut -d, -f1)

# After the load: wait (bounded) for the streams to close, then compare.
# warm COLUMN: the largest sample within 2 s of SOAK_WARM_S, else the
# first one after it (a loaded machine may sample late).
warm() {
	local v
	v=$(csv_max "$REPORT/soak.csv" "$1" $((SOAK_WARM_S - 2)) $((SOAK_WARM_S + 2)))
	[ -n "$v" ] || v=$(csv_first_after "$REPORT/soak.csv" "$1" "$SOAK_WARM_S")
	echo "$v"
}
wl_fd=$(warm local_fds)
ws_fd=$(warm server_fds)
if [ -z "$wl_fd" ] || [ -z "$ws_fd" ]; then die "no samples around ${SOAK_WARM_S}s"; fi
fds_settled() {
	[ "$(fd_count "$LOCAL_PID")" -le $((wl_fd + SOAK_FD_MARGIN)) ] &&
		[ "$(fd_count "$SERVER_PID")" -le $((ws_fd + SOAK_FD_MARGIN)) ]
}
poll 15 fds_settled || true
sleep 1 # one more sample row of the idle state for the plot
sampler_stop

load_count "$REPORT/clients"
{
	echo "seed=$SEED profile=$SOAK_PROFILE clients=$SOAK_CLIENTS seconds=$SOAK_SECONDS"
	echo "requests ok=$LOAD_OK bad=$LOAD_BAD failed=$LOAD_FAIL hung=$LOAD_HUNG bytes=$LOAD_BYTES"
	echo "local  fds warm=$wl_fd end=$(fd_count "$LOCAL_PID")" \
		"rss_kb warm=$(warm local_rss_kb) end=$(rss_kb "$LOCAL_PID")"
	echo "server fds warm=$ws_fd end=$(fd_count "$SERVER_PID")" \
		"rss_kb warm=$(warm server_rss_kb) end=$(rss_kb "$SERVER_PID")"
	[ "$SOAK_LOAD_SESSIONS" -eq 0 ] || echo "load exit=$ksload_rc $(cat "$REPORT/load.out")" \
		"server_rss_kb_pre_load=$rss_pre_load"
} | tee "$REPORT/summary.txt"
scripts/soak-report.sh "$REPORT/soak.csv" "$REPORT/soak.png" | tee -a "$REPORT/summary.txt" ||
	note "soak-report.sh failed (the CSV is still in $REPORT)"
stop_impair
sed 's/^/relay /' "$IMPAIR_STATS" >>"$REPORT/summary.txt"
note "report: $REPORT (load ended at ${end_s}s)"

if [ "$LOAD_BAD" -ne 0 ] || [ "$LOAD_FAIL" -ne 0 ]; then
	load_failures "$REPORT/clients" >&2
	die "$LOAD_FAIL failed and $LOAD_BAD corrupted requests of $((LOAD_OK + LOAD_FAIL + LOAD_BAD))"
fi
[ "$LOAD_OK" -ge "$SOAK_CLIENTS" ] || die "only $LOAD_OK requests completed"
# load_kv KEY: a value from kcpsocks-load's key=value line.
load_kv() { tr ' ' '\n' <"$REPORT/load.out" | sed -n "s/^$1=//p"; }
if [ "$SOAK_LOAD_SESSIONS" -gt 0 ]; then
	[ "$ksload_rc" -eq 0 ] || die "kcpsocks-load exit $ksload_rc: $(cat "$REPORT/load.out" "$REPORT/load.err")"
	[ "$(load_kv established)" = "$SOAK_LOAD_SESSIONS" ] ||
		die "only $(load_kv established) of $SOAK_LOAD_SESSIONS load sessions came up"
	[ "$(load_kv streams_ok)" = "$SOAK_LOAD_SESSIONS" ] ||
		die "only $(load_kv streams_ok) of $SOAK_LOAD_SESSIONS load streams came up"
	[ "$(load_kv lost)" = 0 ] || die "$(load_kv lost) load sessions were lost while held"
	held=$(load_kv server_rss_kb_held)
	rss_fell() {
		local r
		r=$(rss_kb "$SERVER_PID")
		[ "$r" -le $((rss_pre_load + SOAK_LOAD_RSS_KB)) ] && [ "$r" -le $((held - 1024)) ]
	}
	poll 20 rss_fell || die "server RSS $(rss_kb "$SERVER_PID") kB after the load sessions closed:" \
		"want <= $rss_pre_load kB before they came up + $SOAK_LOAD_RSS_KB kB and at least" \
		"1 MiB below the $held kB while they were held"
	note "ok: $SOAK_LOAD_SESSIONS load sessions up, none lost; server RSS" \
		"$rss_pre_load -> $(load_kv server_rss_kb_held) (held) -> $(rss_kb "$SERVER_PID") kB"
fi
fds_settled || die "open fds did not return within $SOAK_FD_MARGIN of warm-up" \
	"(local $(fd_count "$LOCAL_PID") vs $wl_fd, server $(fd_count "$SERVER_PID") vs $ws_fd)"
rss_ok() {
	local w
	w=$(warm "$1_rss_kb")
	[ "$(rss_kb "$2")" -le $((w + w * SOAK_RSS_PCT / 100 + SOAK_RSS_KB)) ] ||
		die "$1 RSS $(rss_kb "$2") kB vs $w kB after warm-up (margin $SOAK_RSS_PCT% + $SOAK_RSS_KB kB)"
}
rss_ok local "$LOCAL_PID"
rss_ok server "$SERVER_PID"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note "ok: $LOAD_OK requests, $((LOAD_BYTES / 1048576)) MiB, none failed"
