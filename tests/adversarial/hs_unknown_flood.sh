#!/usr/bin/env bash
# hs_unknown_flood.sh - issue 14, attack 2: anyone with only the server's
# public key sends init-shaped datagrams that pass the cheap checks and
# name no user, as fast as hsflood goes (target 50,000/s) for 10 s, from
# 100 loopback addresses (so both the per-source and the total X25519
# budget are hit). Before the fix each cost an X25519, the server sat at
# 96 % CPU and an established session's 1 MiB fetch took 7.6 s. Now: the
# established session fetches 1 MiB during the flood (time reported, not
# asserted), a new client of another user connects and fetches, and not
# one byte goes back to the flood. HS_FLOOD_RATE (50000) and
# HS_FLOOD_SOURCES (100) change the flood.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/hs_lib.sh"
lib_init hs_unknown_flood
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys alice
add_user bob
BOB_CONNSTR=$USER_CONNSTR
start_http
head -c 1048576 /dev/urandom >"$HTTP_DIR/f.bin"
start_server
start_local "$SERVER_PORT"
wait_session
ALICE_PORT=$LOCAL_PORT

fetch() { # fetch SOCKS_PORT: 1 MiB through that local daemon, intact
	curl -sS -m 30 --socks5-hostname "127.0.0.1:$1" -o "$T/got.$1" \
		"http://127.0.0.1:$HTTP_PORT/f.bin" && cmp -s "$T/got.$1" "$HTTP_DIR/f.bin"
}
fetch "$ALICE_PORT" || die "fetch before the flood"
t0=$(now_ms)
fetch "$ALICE_PORT" || die "fetch before the flood"
quiet_ms=$(($(now_ms) - t0))
ok "alice's session up; 1 MiB in $quiet_ms ms without a flood"

"$HSFLOOD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --kind unknown \
	--count 0 --duration 10 --rate "${HS_FLOOD_RATE:-50000}" --sources "${HS_FLOOD_SOURCES:-100}" --wait 1000 \
	>"$T/flood.out" 2>&1 &
FLOOD=$!
lib_track "$FLOOD" hsflood "$T/flood.out"
sleep 2 # let the flood reach its rate; everything below is bounded

t0=$(now_ms)
fetch "$ALICE_PORT" || die "alice's 1 MiB fetch during the flood failed"
flood_ms=$(($(now_ms) - t0))
ok "during the flood: alice's established session fetched 1 MiB in $flood_ms ms"

# A new client (bob) connects during the flood.
CONNSTR=$BOB_CONNSTR
LOCAL_PORT='' LOCAL_METRICS=''
t0=$(now_ms)
start_local "$SERVER_PORT"
wait_session 8
bob_ms=$(($(now_ms) - t0))
fetch "$LOCAL_PORT" || die "bob's fetch during the flood failed"
alive "$FLOOD" || die "the flood ended before bob connected: the test proves nothing"
ok "during the flood: a new client (bob) connected in $bob_ms ms and fetched 1 MiB"

reap "$FLOOD" || die "hsflood failed: $(cat "$T/flood.out")"
line=$(cat "$T/flood.out")
note "flood: $line"
[ "$(field "$line" bytes_in)" = 0 ] || die "bytes went back to the flood: $line"
m() { metric "$SERVER_METRICS" kcpsocks_handshake_inits_total "result=\"$1\""; }
over=$(m over_budget)
dh=$(($(m unknown_user) + $(m bad_dh)))
[ "$over" -gt 0 ] || die "no init was over the X25519 budget: the test proves nothing"
ok "server: $dh X25519 spent on the flood (budget 2000/s, 100/host), $over inits over budget"
ok "flood of $(field "$line" sent) inits at $(field "$line" rate)/s: 0 bytes back; 1 MiB in $flood_ms ms during it (vs $quiet_ms ms before)"
