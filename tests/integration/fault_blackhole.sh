#!/usr/bin/env bash
# fault_blackhole.sh - the path goes silent for BLACKHOLE_S (7 s) in the
# middle of a download, in both directions, then comes back: the download
# must complete intact, within BLACKHOLE_RECOVER_S (90 s) of the link's
# return, and a new request must work afterwards. 7 s stays clear of the
# dead-path window (dead_path_ms, 10 s, whose last probe goes out 1 s
# before its end): a longer silence is a dead path, and the client resets
# its streams (fault_deadpath.sh).
#
# kcpsocks-local -> impair (--rate BLACKHOLE_RATE bytes/s, 10 ms each way)
# -> kcpsocks-server -> nginx. The relay's rate makes the 16 MiB download
# take several seconds; the blackhole starts (SIGUSR2) once 2 MiB have
# arrived and ends (SIGUSR2) BLACKHOLE_S later.
. "$(dirname "$0")/lib.sh"
lib_init fault_blackhole
require_daemons

BLACKHOLE_S=${BLACKHOLE_S:-7}
BLACKHOLE_RECOVER_S=${BLACKHOLE_RECOVER_S:-90}
BLACKHOLE_RATE=${BLACKHOLE_RATE:-2000000}

start_nginx 1K 16M
start_stack default --delay 10 --rate "$BLACKHOLE_RATE" --queue 1048576
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"

curl -sS --fail --max-time $((BLACKHOLE_S + BLACKHOLE_RECOVER_S + 60)) \
	--socks5-hostname "127.0.0.1:$LOCAL_PORT" -o "$T/big" "$(url 16M)" 2>"$T/curl.err" &
CURL_PID=$!
lib_track "$CURL_PID" curl "$T/curl.err"
got_2m() { [ "$(stat -c %s "$T/big" 2>/dev/null || echo 0)" -ge $((2 << 20)) ]; }
poll 30 got_2m || die "download did not reach 2 MiB in 30 s"

kill -USR2 "$IMPAIR_PID"
poll 5 grep -q 'blackhole on' "$IMPAIR_LOG" || die "the relay did not report the blackhole"
at=$(stat -c %s "$T/big")
note "blackhole on at $at bytes for ${BLACKHOLE_S}s"
sleep "$BLACKHOLE_S" # the fault's duration, not a synchronisation
alive "$CURL_PID" || die "the download ended during the blackhole ($(cat "$T/curl.err"))"
kill -USR2 "$IMPAIR_PID"
poll 5 grep -q 'blackhole off' "$IMPAIR_LOG" || die "the relay did not end the blackhole"
back=$(now_ms)
during=$(($(stat -c %s "$T/big") - at))
note "link back; $during bytes arrived while it was dark (buffered before it)"

poll "$BLACKHOLE_RECOVER_S" not_alive "$CURL_PID" ||
	die "download not finished ${BLACKHOLE_RECOVER_S}s after the link returned" \
		"($(stat -c %s "$T/big") bytes)"
rc=0
wait "$CURL_PID" || rc=$?
[ "$rc" -eq 0 ] || die "download failed after the blackhole: curl exit $rc: $(cat "$T/curl.err")"
check_file "$T/big" 16M || die "download after the blackhole: sha256 mismatch"
note "download complete and intact $(($(now_ms) - back)) ms after the link returned"
fetch_verify 1K >/dev/null || die "a new request after the blackhole failed"
stop_impair
note "relay: $(grep -o 'lost_blackhole=[0-9]*' "$IMPAIR_STATS" | tr '\n' ' ')"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note ok
