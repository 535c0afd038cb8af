#!/usr/bin/env bash
# profile-bulk.sh BUILD - where the CPU goes on the bulk path (make profile).
#
# The set-up of `make bench-peers`' clean bulk run (nginx -> kcpsocks-server
# -> build/impair relay -> kcpsocks-local -> curl, all on 127.0.0.1, the
# "fast" profile), started through tests/integration/lib.sh, then three
# measurements of one download each:
#
#   stat      PROFILE_RUNS downloads of PROFILE_SIZE: wall MB/s (median) and
#             the daemons' CPU seconds per GB (utime+stime from /proc);
#             then one more with perf attached: the daemons' system calls
#             counted by perf's syscall tracepoints (per call kind, and per
#             datagram from their own kcpsocks_udp_*_datagrams_total
#             counters), and a cpu-clock sample profile (user and kernel,
#             kernel call chains) of both daemons.
#   callgrind one download of PROFILE_CG_SIZE with one daemon under
#             valgrind --tool=callgrind (counters zeroed after the warm-up
#             fetch, dumped after the download): user-space instructions
#             per byte, deterministic up to batching, and their split by
#             function. Server first, then local.
#
# scripts/profile-report.py turns the raw files into one markdown report
# (printed, and kept as PROFILE_OUT/report.md). Raw files stay in
# PROFILE_OUT (default BUILD/profile): perf.data, callgrind.*.out, *.syscalls.
#
# Knobs: PROFILE_SIZE (256M), PROFILE_RUNS (3), PROFILE_CG_SIZE (16M),
# PROFILE_PASSES ("stat callgrind"), PROFILE_KCP_PROFILE (fast),
# PROFILE_RELAY (1: through build/impair like the bench; 0: direct),
# PROFILE_CIPHER (auto: AES-256-GCM where both ends run it; chacha20).
# Needs perf (tracepoints and cpu-clock: run as root or with
# perf_event_paranoid <= 1) and valgrind; a missing one skips its pass.
set -euo pipefail

BUILD=${1:-${BUILD:-build}}
export BUILD
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$ROOT/tests/integration/lib.sh"
lib_init profile-bulk

SIZE=${PROFILE_SIZE:-256M}
RUNS=${PROFILE_RUNS:-3}
CG_SIZE=${PROFILE_CG_SIZE:-16M}
PASSES=${PROFILE_PASSES:-stat callgrind}
KPROF=${PROFILE_KCP_PROFILE:-fast}
USE_RELAY=${PROFILE_RELAY:-1}
CIPHER=${PROFILE_CIPHER:-auto}
OUT=${PROFILE_OUT:-$BUILD/profile}
REAL_SERVER=$KS_SERVER
REAL_LOCAL=$KS_LOCAL
SYSCALLS=(recvmmsg sendmmsg recvfrom sendto sendmsg read write epoll_wait epoll_pwait epoll_ctl)

# stack [SERVER_BIN LOCAL_BIN]: server, relay (PROFILE_RELAY=1), local; one
# warm-up fetch. Sets AUX (the relay; SERVER_PID and LOCAL_PID come from lib.sh).
stack() {
	KS_SERVER=${1:-$REAL_SERVER} KS_LOCAL=${2:-$REAL_LOCAL}
	unset SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS
	start_server
	AUX=()
	if [ "$USE_RELAY" = 1 ]; then
		start_impair "$SERVER_PORT"
		AUX=("$IMPAIR_PID")
		start_local "$IMPAIR_PORT" "$KPROF" --cipher "$CIPHER"
	else
		start_local "$SERVER_PORT" "$KPROF" --cipher "$CIPHER"
	fi
	poll "${DAEMON_START_S:-20}" fetch_try 1K || die "no first fetch through the tunnel"
	note "cipher $CIPHER: $(scrape "$LOCAL_METRICS" | grep '^kcpsocks_sessions_by_cipher' | tr '\n' ' ')"
}

stack_stop() {
	local p
	for p in "$LOCAL_PID" "${AUX[@]}" "$SERVER_PID"; do stop_pid "$p" 30 >/dev/null 2>&1 || true; done
}

# ticks PID: utime+stime in clock ticks.
ticks() {
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	f=${f##*) }
	# shellcheck disable=SC2086
	set -- $f
	echo $((${12} + ${13}))
}

# download SIZE: one curl through the tunnel; prints "BYTES SECONDS".
download() {
	curl -sS --fail --max-time 300 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null \
		-w '%{size_download} %{time_total}\n' "$(url "$1")"
}

have_perf() { command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; }

# perf_stat_start NAME PID: count the PID's system calls until perf_stop.
perf_stat_start() {
	local ev=raw_syscalls:sys_enter s
	for s in "${SYSCALLS[@]}"; do ev+=",syscalls:sys_enter_$s"; done
	perf stat -x, -e "$ev" -p "$2" -o "$OUT/$1.syscalls" &
	PERF_PIDS+=("$!")
	lib_track "$!" "perf-$1"
}

perf_stop() {
	local p
	for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${PERF_PIDS[@]}"; do poll 30 not_alive "$p" || true; done
	for p in "${PERF_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PERF_PIDS=()
}

pass_stat() {
	local i s0 l0 r0 w
	PERF_PIDS=()
	stack
	# Plain runs first: wall MB/s and CPU without perf attached.
	s0=$(ticks "$SERVER_PID") l0=$(ticks "$LOCAL_PID") r0=$(ticks "${AUX[0]:-0}")
	: >"$OUT/downloads"
	for ((i = 0; i < RUNS; i++)); do
		w=$(download "$SIZE") || die "download $i of $SIZE failed"
		echo "$w" >>"$OUT/downloads"
		note "download $((i + 1))/$RUNS: $w"
	done
	echo "server $(($(ticks "$SERVER_PID") - s0))" >"$OUT/cpu"
	echo "local $(($(ticks "$LOCAL_PID") - l0))" >>"$OUT/cpu"
	[ -n "${AUX[0]:-}" ] && echo "relay $(($(ticks "${AUX[0]}") - r0))" >>"$OUT/cpu"
	echo "clk_tck $(getconf CLK_TCK)" >>"$OUT/cpu"
	# Then one more download with perf counting syscalls and sampling.
	if have_perf; then
		scrape "$SERVER_METRICS" >"$OUT/server.metrics.0"
		scrape "$LOCAL_METRICS" >"$OUT/local.metrics.0"
		perf_stat_start server "$SERVER_PID"
		perf_stat_start local "$LOCAL_PID"
		perf record -q -e cpu-clock -F 1999 -g -p "$SERVER_PID,$LOCAL_PID" \
			-o "$OUT/perf.data" 2>"$OUT/perf-record.log" &
		PERF_PIDS+=("$!")
		lib_track "$!" perf-record "$OUT/perf-record.log"
		sleep 0.5 # perf attaches asynchronously; give it a moment
		w=$(download "$SIZE") || die "download of $SIZE under perf failed"
		echo "$w" >"$OUT/perf.download"
		note "download under perf: $w"
		perf_stop
		scrape "$SERVER_METRICS" >"$OUT/server.metrics.1"
		scrape "$LOCAL_METRICS" >"$OUT/local.metrics.1"
	else
		note "perf with syscall tracepoints not available: no syscall counts or samples"
	fi
	stack_stop
	if [ -s "$OUT/perf.data" ]; then
		perf script -i "$OUT/perf.data" -F comm,ip,sym,dso >"$OUT/perf.script" 2>/dev/null || true
	fi
}

# wrapper NAME BIN: a script that runs BIN under callgrind (the daemons'
# command lines stay in lib.sh).
wrapper() {
	local w=$T/cg-$1
	printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s "%s" "$@"\n' \
		"$OUT/callgrind.$1.out" "$2" >"$w"
	chmod +x "$w"
	echo "$w"
}

# pass_callgrind NAME: one daemon under callgrind for one download.
pass_callgrind() {
	local name=$1 pid w
	rm -f "$OUT/callgrind.$name.out"*
	if [ "$name" = server ]; then
		DAEMON_START_S=60 stack "$(wrapper server "$REAL_SERVER")" "$REAL_LOCAL"
		pid=$SERVER_PID
	else
		DAEMON_START_S=60 stack "$REAL_SERVER" "$(wrapper local "$REAL_LOCAL")"
		pid=$LOCAL_PID
	fi
	callgrind_control -z "$pid" >/dev/null
	w=$(download "$CG_SIZE") || die "callgrind download of $CG_SIZE failed"
	callgrind_control -d "$pid" >/dev/null
	echo "$w" >"$OUT/callgrind.$name.download"
	note "callgrind $name: $w"
	stack_stop
}

main() {
	local p
	require_daemons
	[ "$USE_RELAY" = 0 ] || [ -x "$IMPAIR" ] || die "$IMPAIR not built"
	rm -rf "$OUT"
	mkdir -p "$OUT"
	start_nginx 1K "$SIZE" "$CG_SIZE"
	make_keys profile
	for p in $PASSES; do
		case $p in
		stat) pass_stat ;;
		callgrind)
			if command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
				pass_callgrind server
				pass_callgrind local
			else
				note "valgrind not installed: no callgrind pass"
			fi
			;;
		*) die "unknown pass '$p' (stat, callgrind)" ;;
		esac
	done
	{
		echo "size $SIZE"
		echo "runs $RUNS"
		echo "cg_size $CG_SIZE"
		echo "kcp_profile $KPROF"
		echo "relay $USE_RELAY"
		echo "cipher $CIPHER"
		echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
		echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	} >"$OUT/meta"
	python3 "$HERE/profile-report.py" "$OUT" | tee "$OUT/report.md"
}

main
