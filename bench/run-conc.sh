#!/usr/bin/env bash
# run-conc.sh - parallel downloads through kcpsocks-local + kcpsocks-server on
# loopback (no relay, no impairment): total MB/s at each parallelism, and the
# server session's KCP counters after each round. Ratios between rounds of one
# run are what matter (the machine is shared): docs/bench/concurrency.md.
#   bench/run-conc.sh [SIZE [N...]]     defaults: 4M, 1 8 32
# CONC_PROFILE=name: the local daemon's profile; CONC_PERF=path: perf record
# both daemons during each parallel round (path.N); CONC_KEEP=dir: copy the
# daemons' logs there at the end.
set -euo pipefail
KS_LOG_LEVEL=info
SERVER_ALLOW=127.0.0.0/8
. "$(dirname "$0")/../tests/integration/lib.sh"
lib_init run_conc
require_daemons
SIZE=${1:-4M}
shift $(($# >= 1 ? 1 : 0))
NS=("$@")
[ $# -eq 0 ] && NS=(1 8 32)
make_keys alice
start_nginx "$SIZE"
start_server
start_local "$SERVER_PORT" "${CONC_PROFILE:-}"
wait_session
bytes=$(size_bytes "$SIZE")
counters() {
	local f=$T/m.txt
	scrape "$SERVER_METRICS" >"$f"
	for n in retransmits_timeout_total retransmits_fast_total retransmits_spurious_total \
		srtt_seconds segments_sent_total; do
		printf '%s=%s ' "${n%_total}" "$(metric_from "$f" sum "kcpsocks_session_$n")"
	done
}
[ -n "${CONC_KEEP:-}" ] && trap "cp \"\$SERVER_LOG\" \"\$LOCAL_LOG\" $CONC_KEEP/; lib_cleanup" EXIT
for n in "${NS[@]}"; do
	pids=()
	if [ -n "${CONC_PERF:-}" ] && [ "$n" -gt 1 ]; then
		perf record -q -g -o "$CONC_PERF.$n" -p "$SERVER_PID,$LOCAL_PID" >/dev/null 2>&1 &
		perfpid=$!
		sleep 0.3
	fi
	t0=$(now_ms)
	for i in $(seq "$n"); do
		curl -sS -m 300 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o "$T/out.$i" "$(url "$SIZE")" &
		pids+=("$!")
		lib_track "$!" "curl $i"
	done
	for p in "${pids[@]}"; do reap "$p" || die "curl failed"; done
	ms=$(($(now_ms) - t0))
	if [ -n "${perfpid:-}" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; perfpid=; fi
	for i in $(seq "$n"); do check_file "$T/out.$i" "$SIZE" || die "stream $i corrupt"; done
	rm -f "$T"/out.*
	echo "streams=$n size=$SIZE ms=$ms MB/s=$(awk -v b="$bytes" -v n="$n" -v ms="$ms" 'BEGIN{printf "%.1f", b*n/1e3/ms}') $(counters)"
done
