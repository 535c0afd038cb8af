#!/usr/bin/env bash
# run-conc.sh - parallel downloads through kcpsocks-local + kcpsocks-server on
# loopback (no relay, no impairment): total MB/s at each parallelism, and the
# server session's KCP counters after each round. Ratios between rounds of one
# run are what matter (the machine is shared): docs/bench/concurrency.md.
#   bench/run-conc.sh [SIZE [N...]]     defaults: 4M, 1 8 32
# CONC_PROFILE=name: the local daemon's profile; CONC_PERF=path: perf record
# both daemons during each parallel round (path.N); CONC_KEEP=dir: copy the
# daemons' logs there at the end.
# Small-request latency under bulk load (issue 19): CONC_PROBES=K fetches a
# 1 KiB file K times, one after another (a new curl and SOCKS5 stream each,
# CONC_PROBE_GAP_S apart, default 0.1), first with nothing else running, then
# during each round of N > 1 bulk downloads while they run; prints p50/p99
# of curl's time_total in ms (probes that ended after the bulk had finished
# are not counted). CONC_IMPAIR="--loss 0.01 --delay 10": the local daemon
# reaches the server through tools/impair with those arguments (seeded).
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
# shellcheck disable=SC2046 # a list of sizes
start_nginx $(printf '%s\n' "$SIZE" 1K | sort -u)
start_server
if [ -n "${CONC_IMPAIR:-}" ]; then
	# shellcheck disable=SC2086 # a list of arguments
	start_impair "$SERVER_PORT" --seed "${SEED:-20261125}" $CONC_IMPAIR
	start_local "$IMPAIR_PORT" "${CONC_PROFILE:-}"
else
	start_local "$SERVER_PORT" "${CONC_PROFILE:-}"
fi
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
# probe_round OUT PID...: CONC_PROBES 1 KiB fetches while any PID lives
# (all of them without PIDs); one "END_MS TIME_MS" line each to OUT.
probe_round() {
	local out=$1 k t
	shift
	: >"$out"
	for ((k = 0; k < CONC_PROBES; k++)); do
		if [ $# -gt 0 ]; then
			any_alive "$@" || break
		fi
		t=$(curl -sS --fail -m 30 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null \
			-w '%{time_total}' "$(url 1K)") || t=fail
		echo "$(now_ms) $t" >>"$out"
		sleep "${CONC_PROBE_GAP_S:-0.1}"
	done
}
not_any_alive() { ! any_alive "$@"; }
any_alive() {
	local p
	for p in "$@"; do alive "$p" && return 0; done
	return 1
}
# probe_stats OUT [UNTIL_MS]: "probes=K failed=F p50_ms=.. p99_ms=.." over
# the probes that ended by UNTIL_MS.
probe_stats() {
	local f
	f=$(awk -v until="${2:-0}" '(until == 0 || $1 <= until) && $2 == "fail"' "$1" | wc -l)
	awk -v until="${2:-0}" '(until == 0 || $1 <= until) && $2 != "fail" { print $2 * 1000 }' "$1" |
		sort -n | awk -v f="$f" '
		function rank(q, r) { r = int(q * n); if (r < q * n) r++; return r < 1 ? 1 : r } # nearest rank
		{ v[++n] = $1 }
		END {
			if (n == 0) { printf "probes=0 failed=%d", f; exit }
			printf "probes=%d failed=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f", n, f,
				v[rank(0.5)], v[rank(0.99)], v[n]
		}'
}
CONC_PROBES=${CONC_PROBES:-0}
if [ "$CONC_PROBES" -gt 0 ]; then
	probe_round "$T/probe.idle"
	echo "probe alone: $(probe_stats "$T/probe.idle")"
fi
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
	if [ "$CONC_PROBES" -gt 0 ] && [ "$n" -gt 1 ]; then
		probe_round "$T/probe.$n" "${pids[@]}"
		poll 600 not_any_alive "${pids[@]}" || die "bulk curls still running"
		bulk_end=$(now_ms)
	fi
	for p in "${pids[@]}"; do reap "$p" || die "curl failed"; done
	ms=$(($(now_ms) - t0))
	if [ -n "${perfpid:-}" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; perfpid=; fi
	for i in $(seq "$n"); do check_file "$T/out.$i" "$SIZE" || die "stream $i corrupt"; done
	rm -f "$T"/out.*
	if [ "$CONC_PROBES" -gt 0 ] && [ "$n" -gt 1 ]; then
		echo "probe during $n bulk: $(probe_stats "$T/probe.$n" "$bulk_end")"
	fi
	echo "streams=$n size=$SIZE ms=$ms MB/s=$(awk -v b="$bytes" -v n="$n" -v ms="$ms" 'BEGIN{printf "%.1f", b*n/1e3/ms}') $(counters)"
done
