#!/usr/bin/env bash
# fault_probe.sh - hostile datagrams at the server's UDP port get no answer
# at all, and the server keeps serving.
#
# kcpsocks-local talks to the server through kstool.py tap, a plain UDP
# relay that records the first datagrams of each direction (the handshake
# and the first data). Then kstool.py probe sends, each batch from a fresh
# socket: random datagrams (edge and random sizes, 0..1500 bytes), prefixes
# of the captured client datagrams, one-bit flips of them, exact replays of
# them, and the server's own datagrams reflected back to it. Every reply
# is counted; the test wants zero. Afterwards the existing session still
# fetches, and a new kcpsocks-local (a new handshake) does too.
. "$(dirname "$0")/lib.sh"
lib_init fault_probe
require_daemons

SEED=${SEED:-20261125} # fixed by default so a failure reproduces
start_nginx 1K 64K 1M
make_keys
start_server
python3 "$KSTOOL" tap "$T/tap.port" "$SERVER_PORT" "$T/capture" 32 2>"$T/tap.err" &
lib_track "$!" tap "$T/tap.err"
poll 10 test -e "$T/tap.port" || die "the tap did not start"
start_local "$(cat "$T/tap.port")"
fetch_verify 1K >/dev/null || die "fetch through the tap failed"
fetch_verify 64K >/dev/null || die "fetch through the tap failed"
[ -s "$T/capture" ] || die "the tap captured nothing"

note "probing 127.0.0.1:$SERVER_PORT (seed $SEED)"
python3 "$KSTOOL" probe "$SERVER_PORT" "$T/capture" "$SEED" >"$T/probe.out" || die "probe failed"
sed "s/^/$LIB_NAME:   /" "$T/probe.out"
total=$(awk '{ split($3, a, "="); n += a[2] } END { print n + 0 }' "$T/probe.out")
sent=$(awk '{ split($2, a, "="); n += a[2] } END { print n + 0 }' "$T/probe.out")
[ "$(wc -l <"$T/probe.out")" -eq 5 ] || die "probe did not run every category"
[ "$total" -eq 0 ] || die "the server answered $total of $sent hostile datagrams"
alive "$SERVER_PID" || die "the server died under the probe"
scrape "$SERVER_METRICS" >"$T/metrics.txt"
note "server counted: dropped datagrams $(metric_from "$T/metrics.txt" sum kcpsocks_dropped_datagrams_total)," \
	"refused handshakes $(metric_from "$T/metrics.txt" sum kcpsocks_handshakes_failed_total)"

fetch_verify 1M >/dev/null || die "the existing session no longer fetches after the probe"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
start_local "$SERVER_PORT"
fetch_verify 1M >/dev/null || die "a new session after the probe does not fetch"
note "$sent hostile datagrams, 0 replies; old and new sessions fetch afterwards"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note ok
