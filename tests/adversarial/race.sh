#!/usr/bin/env bash
# race.sh - issue 14 attack 4: a man-on-the-side races copies of the
# client's datagrams to the server from an address of its own (build/racer,
# between kcpsocks-local and kcpsocks-server on loopback). Three phases on
# one session: a copy of one datagram in 64 ahead of its original, a copy
# of every datagram ahead of the originals, then copies with every original
# dropped. Must hold: each download arrives intact (sha256), the
# session is never rebuilt or moved to the attacker (one handshake, zero
# roams), and the server sends the attacker's address at most 3x the bytes
# the attacker sent it (path validation's anti-amplification limit). Before
# path validation the session followed the first copy and the server sent
# the attacker hundreds of times what it sent (and the racing phases cut
# the download off).
#   RACE_MB   size of each download in MiB (default 8)
set -euo pipefail
KS_LOG_LEVEL=info
. "$(dirname "$0")/../integration/lib.sh"
lib_init adversarial_race
require_daemons
RACER=${RACER:-$BUILD/racer}
[ -x "$RACER" ] || die "$RACER not built (make $RACER)"
RACE_MB=${RACE_MB:-8}
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT RACER_PORT

make_keys alice
start_http
head -c $((RACE_MB * 1048576)) /dev/urandom >"$HTTP_DIR/big.bin"
want=$(sha256sum <"$HTTP_DIR/big.bin")
start_server
RACER_LOG=$T/racer.log
RACER_STATS=$T/racer.stats
"$RACER" --listen "127.0.0.1:$RACER_PORT" --upstream "127.0.0.1:$SERVER_PORT" \
	--stats-file "$RACER_STATS" 2>"$RACER_LOG" &
RACER_PID=$!
lib_track "$RACER_PID" racer "$RACER_LOG"
wait_for_udp_port "$RACER_PORT" 10 "$RACER_PID"
start_local "$RACER_PORT"
wait_session
tcurl -o /dev/null "http://127.0.0.1:$HTTP_PORT/" || die "no fetch before the race"

stat_of() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" "$RACER_STATS"; }
next_mode() { # WANT: SIGUSR1 steps the racer's mode
	kill -USR1 "$RACER_PID"
	wait_until "racer mode $1" 10 grep -q "mode $1\$" "$RACER_LOG"
}
fetch_intact() { # WHAT
	tcurl -m 120 -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" || die "$1: download failed"
	[ "$(sha256sum <"$T/got.bin")" = "$want" ] || die "$1: download differs"
	ok "$1: $RACE_MB MiB intact"
}

# phase_report WHAT: the attacker's bytes in the phase just ended (the
# stats file is rewritten at every mode step).
last_sent=0
last_got=0
phase_report() {
	local sent got
	sent=$(stat_of attacker_sent_bytes)
	got=$(stat_of attacker_recv_bytes)
	note "$1: the attacker sent $((sent - last_sent)) bytes, the server sent it $((got - last_got))"
	last_sent=$sent
	last_got=$got
}
next_mode sparse
fetch_intact "a copy of one datagram in 64 raced ahead"
next_mode race
phase_report sparse
fetch_intact "copies raced ahead of every original"
next_mode race+drop
phase_report race
fetch_intact "copies raced, every original dropped"
next_mode off
phase_report race+drop
stop_pid "$RACER_PID" 10 || die "racer did not exit on SIGTERM"

sent=$(stat_of attacker_sent_bytes)
got=$(stat_of attacker_recv_bytes)
raced=$(stat_of raced)
note "attacker sent $sent bytes in $raced datagrams, the server sent it $got bytes"
[ "${raced:-0}" -gt 100 ] || die "the racer raced only ${raced:-0} datagrams"
[ "$got" -le $((3 * sent)) ] || die "the server sent the attacker $got bytes > 3 x $sent"
ok "server -> attacker $got bytes <= 3 x $sent (anti-amplification)"
hs=$(metric "$SERVER_METRICS" "$METRIC_HANDSHAKES")
roamed=$(metric "$SERVER_METRICS" kcpsocks_sessions_roamed_total)
[ "$hs" = 1 ] || die "handshakes: want 1 (the session survived the race), got $hs"
[ "$roamed" = 0 ] || die "the session moved $roamed time(s)"
ok "one session throughout, never moved to the attacker"
ch=$(metric "$SERVER_METRICS" kcpsocks_path_challenges_total)
kept=$(metric "$SERVER_METRICS" kcpsocks_path_kept_total)
[ "${ch:-0}" -gt 0 ] || die "the server sent no PATH_CHALLENGE to the racer"
note "server: $ch challenges to the racer's address, $kept candidates dropped by the proven path"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
ok "all checks passed"
