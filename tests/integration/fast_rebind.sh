#!/usr/bin/env bash
# fast_rebind.sh - NAT rebinding: the client's datagrams reach the server
# through tools/impair, which moves its upstream source port every second
# (--rebind-every 1) and once more on SIGUSR1, during a rate-limited 4 MiB
# download. The bytes arrive identical, with no new handshake (server
# metrics: one handshake, the session's address moved).
set -euo pipefail
NAME=fast_rebind
. "$(dirname "$0")/daemons-lib.sh"
IMPAIR=$BUILD/impair
[ -x "$IMPAIR" ] || fail "$IMPAIR not built"

make_keys
start_http
head -c 4194304 /dev/urandom >"$tmp/www/big.bin"
start_server
"$IMPAIR" --listen 127.0.0.1:0 --upstream "127.0.0.1:$UDP_PORT" --rebind-every 1 \
	--rate 1500000 --queue 262144 --stats-file "$tmp/impair.stats" 2>"$tmp/impair.log" &
ipid=$!
pids+=("$ipid")
wait_until "impair" 10 grep -q 'listening on' "$tmp/impair.log"
iport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/impair.log")
start_local --server "127.0.0.1:$iport"

tcurl -m 60 -o "$tmp/got.bin" "http://127.0.0.1:$HTTP_PORT/big.bin" &
cpid=$!
pids+=("$cpid")
sleep 1.5
kill -USR1 "$ipid"
wait "$cpid" || fail "download through the rebinding path failed"
cmp -s "$tmp/got.bin" "$tmp/www/big.bin" || fail "bytes differ after rebinding"
hs=$(metric "$SMETRICS_PORT" kcpsocks_handshakes_ok_total)
moved=$(metric "$SMETRICS_PORT" kcpsocks_sessions_roamed_total)
[ "$hs" = 1 ] || fail "handshakes: want 1, got $hs"
[ "${moved:-0}" -ge 2 ] || fail "the session's address moved ${moved:-0} times, want >= 2"
ok "4 MiB identical across $moved source-port changes, one handshake"
