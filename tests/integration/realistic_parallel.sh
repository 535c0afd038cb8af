#!/usr/bin/env bash
# realistic_parallel.sh - PAR_STREAMS (64) parallel curl downloads of one
# PAR_SIZE (1M) file each, all at once through kcpsocks-local -> impair
# (1% loss, 10 ms each way) -> kcpsocks-server -> nginx: many streams of one
# session over a lossy path (issue 19). Passes when every curl exits 0,
# every body's sha256 matches, and the whole round ends within
# PAR_BOUND_S (120 s: a behaviour bound against a collapse or a hung
# stream, not a speed assertion; each curl gives up after 15 s without a
# byte). Then both daemons must stop on SIGTERM with status 0. Knobs:
# PAR_STREAMS, PAR_SIZE, PAR_BOUND_S, SEED.
. "$(dirname "$0")/lib.sh"
lib_init realistic_parallel
require_daemons

PAR_STREAMS=${PAR_STREAMS:-64}
PAR_SIZE=${PAR_SIZE:-1M}
PAR_BOUND_S=${PAR_BOUND_S:-120}
SEED=${SEED:-20261125} # fixed by default so a failure reproduces

# shellcheck disable=SC2046  # a list of sizes
start_nginx $(printf "%s\n" "$PAR_SIZE" 64K | sort -u)
start_stack default --seed "$SEED" --loss 0.01 --delay 10
fetch_verify "$PAR_SIZE" >/dev/null || die "first fetch through the tunnel failed"
note "seed $SEED; $PAR_STREAMS parallel downloads of $PAR_SIZE over 1% loss, 10 ms"

# One curl per stream, each its own TCP connection to the SOCKS5 port (so
# one session carries PAR_STREAMS streams); its exit status goes to a file.
par_get() {
	local i=$1 rc=0
	curl -sS --fail --max-time "$PAR_BOUND_S" --speed-limit 1 --speed-time 15 \
		--socks5-hostname "127.0.0.1:$LOCAL_PORT" -o "$T/par.$i" \
		"$(url "$PAR_SIZE")" 2>"$T/par.$i.err" || rc=$?
	echo "$rc" >"$T/par.$i.rc"
}
pids=()
t0=$(now_ms)
for ((i = 0; i < PAR_STREAMS; i++)); do
	par_get "$i" &
	pids+=("$!")
	lib_track "$!" "curl$i"
done
all_done() {
	local p
	for p in "${pids[@]}"; do alive "$p" && return 1; done
	return 0
}
poll $((PAR_BOUND_S + 10)) all_done ||
	die "downloads still running after $((PAR_BOUND_S + 10)) s (a hung stream)"
ms=$(($(now_ms) - t0))
for p in "${pids[@]}"; do reap "$p" || true; done

bad=0
failed=0
for ((i = 0; i < PAR_STREAMS; i++)); do
	rc=$(cat "$T/par.$i.rc" 2>/dev/null || echo missing)
	if [ "$rc" != 0 ]; then
		failed=$((failed + 1))
		note "stream $i: curl exit $rc: $(cat "$T/par.$i.err" 2>/dev/null)" >&2
	elif ! check_file "$T/par.$i" "$PAR_SIZE"; then
		bad=$((bad + 1))
		note "stream $i: sha256 mismatch ($(stat -c %s "$T/par.$i") bytes)" >&2
	fi
done
if [ "$failed" -ne 0 ] || [ "$bad" -ne 0 ]; then
	die "$failed of $PAR_STREAMS downloads failed, $bad corrupted"
fi
ok "$PAR_STREAMS x $PAR_SIZE: every sha256 matches, in $ms ms" \
	"($(awk -v b="$(size_bytes "$PAR_SIZE")" -v n="$PAR_STREAMS" -v ms="$ms" \
		'BEGIN{printf "%.1f", b*n/1e3/ms}') MB/s in total)"

fetch_verify 64K >/dev/null || die "fetch after the parallel round failed"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM (status $?)"
stop_impair
note "relay up: $(sed -n 's/^up //p' "$IMPAIR_STATS" | cut -d' ' -f1-7)"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM (status $?)"
note ok
