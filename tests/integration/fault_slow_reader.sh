#!/usr/bin/env bash
# fault_slow_reader.sh - one stream whose reader stops: backpressure must
# hold the data back end to end instead of buffering it in the daemons.
#
# Through kcpsocks-local -> impair (clean) -> kcpsocks-server, two streams
# ask nginx for a 256 MiB file: one reads 64 KiB and then nothing for
# SLOW_HOLD_S (20 s; kstool.py slowread, small receive buffer), one is
# curl --limit-rate 2k. While they sit there:
#   - each daemon's RSS stays within SLOW_RSS_KB of its value before they
#     started: what the two stalled streams' credit lets the local hold
#     (2 x the default profile's stream_window, 8 MiB: docs/CONFIG.md) plus
#     4 MiB (a daemon that buffered the file would grow by hundreds of MiB:
#     nginx sends as fast as loopback allows). The local returns a grown
#     stream buffer to the system when it frees it (daemon_malloc_policy);
#     without that, glibc kept the freed halves and the local grew ~23 MiB;
#   - small requests on other streams still complete, each within
#     SLOW_PROMPT_MS (2000 ms);
# and after the slow streams are gone, both daemons still serve.
. "$(dirname "$0")/lib.sh"
lib_init fault_slow_reader
require_daemons

SLOW_HOLD_S=${SLOW_HOLD_S:-20}
SLOW_RSS_KB=${SLOW_RSS_KB:-$((2 * 8192 + 4096))}
SLOW_PROMPT_MS=${SLOW_PROMPT_MS:-2000}

start_nginx 1K 64K 1M
truncate -s 256M "$WWW/f_256M" # sparse: costs no disk, contents unchecked
start_stack default
for _ in 1 2 3; do fetch_verify 1M >/dev/null || die "warm-up fetch failed"; done
base_l=$(rss_kb "$LOCAL_PID")
base_s=$(rss_kb "$SERVER_PID")

python3 "$KSTOOL" slowread "$LOCAL_PORT" 127.0.0.1 "$NGINX_PORT" f_256M 65536 "$SLOW_HOLD_S" \
	"$T/slow.ready" 2>"$T/slow.err" &
SLOW_PID=$!
lib_track "$SLOW_PID" slowread "$T/slow.err"
curl -sS --max-time $((SLOW_HOLD_S + 30)) --limit-rate 2k --socks5-hostname "127.0.0.1:$LOCAL_PORT" \
	-o /dev/null "$(url 256M)" 2>"$T/trickle.err" &
TRICKLE_PID=$!
lib_track "$TRICKLE_PID" trickle "$T/trickle.err"
poll 15 test -e "$T/slow.ready" || die "the slow reader got no data"
note "slow reader stalled after 64 KiB; trickle at 2 KB/s; RSS before: local $base_l kB, server $base_s kB"

max_l=$base_l
max_s=$base_s
worst=0
end=$(($(now_ms) + (SLOW_HOLD_S - 4) * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
	t0=$(now_ms)
	fetch_verify 1K >/dev/null || die "a small request failed beside the stalled streams"
	fetch_verify 64K >/dev/null || die "a 64 KiB request failed beside the stalled streams"
	ms=$(($(now_ms) - t0))
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$ms" -le "$SLOW_PROMPT_MS" ] || die "small requests took $ms ms beside the stalled streams"
	l=$(rss_kb "$LOCAL_PID")
	s=$(rss_kb "$SERVER_PID")
	[ "$l" -gt "$max_l" ] && max_l=$l
	[ "$s" -gt "$max_s" ] && max_s=$s
	sleep 0.5 # sampling period
done
note "small requests: slowest pair $worst ms; RSS max: local $max_l kB (+$((max_l - base_l))), server $max_s kB (+$((max_s - base_s)))"
[ $((max_l - base_l)) -le "$SLOW_RSS_KB" ] || die "kcpsocks-local grew by $((max_l - base_l)) kB"
[ $((max_s - base_s)) -le "$SLOW_RSS_KB" ] || die "kcpsocks-server grew by $((max_s - base_s)) kB"
alive "$TRICKLE_PID" || die "the trickling curl ended early: $(cat "$T/trickle.err")"

poll $((SLOW_HOLD_S + 10)) not_alive "$SLOW_PID" || die "the slow reader did not finish"
stop_pid "$TRICKLE_PID" 5 || true
fetch_verify 1M >/dev/null || die "a request after the slow streams failed"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note ok
