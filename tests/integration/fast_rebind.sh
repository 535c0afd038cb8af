#!/usr/bin/env bash
# fast_rebind.sh - NAT rebinding: the client's datagrams reach the server
# through tools/impair, which moves its upstream source port every second
# (--rebind-every 1) and twice more on SIGUSR1, during a rate-limited 4 MiB
# download (about 4 s). The bytes arrive
# identical, with no new handshake (server metrics: one handshake, the
# session's address moved each time).
set -euo pipefail
KS_LOG_LEVEL=debug
. "$(dirname "$0")/lib.sh"
lib_init fast_rebind
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys
start_http
head -c 4194304 /dev/urandom >"$HTTP_DIR/big.bin"
start_server
start_impair "$SERVER_PORT" --rebind-every 1 --rate 1000000 --queue 4194304
start_local "$IMPAIR_PORT"
wait_session

tcurl -m 60 -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" &
cpid=$!
lib_track "$cpid" curl
sleep 0.8
kill -USR1 "$IMPAIR_PID"
sleep 1.5
kill -USR1 "$IMPAIR_PID"
reap "$cpid" || die "download through the rebinding path failed"
cmp -s "$T/got.bin" "$HTTP_DIR/big.bin" || die "bytes differ after rebinding"
hs=$(metric "$SERVER_METRICS" kcpsocks_handshakes_ok_total)
moved=$(metric "$SERVER_METRICS" kcpsocks_sessions_roamed_total)
[ "$hs" = 1 ] || die "handshakes: want 1, got $hs"
[ "${moved:-0}" -ge 4 ] || die "the session's address moved ${moved:-0} times, want >= 4"
ok "4 MiB identical across $moved source-port changes, one handshake"
