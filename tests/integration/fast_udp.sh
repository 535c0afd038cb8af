#!/usr/bin/env bash
# fast_udp.sh - UDP ASSOCIATE end to end (docs/PROTOCOL.md (UDP)), loopback
# only, real daemons, real clients:
#  1. DNS: dnsmasq (bound to 127.0.0.1, local --address entries) asked
#     through the tunnel by PySocks (python3-socks, socksocket(SOCK_DGRAM)):
#     the answers equal a direct query, A and AAAA.
#  2. Echo: 10,000 datagrams through build/impair at 1 % loss each way:
#     every one that arrives is intact, none twice, and the loss is the
#     link's (the server relayed exactly the datagrams the up link let
#     through: nothing retransmitted).
#  3. The association ends when its TCP control connection closes, at
#     both daemons, and its relay port answers nothing after; an idle
#     association ends at the server and its control connection closes.
#  4. Bad input (a stranger's datagram, FRAG != 0, a truncated header, a
#     bad ATYP, an oversize datagram) and a destination the policy denies get no answer and are
#     counted; the same destination over TCP gets REP 02; a name is
#     resolved by the server; an IPv6 destination ([::1]) answers with an
#     IPv6 header.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_udp
require_daemons
HERE=$(dirname "$0")
PY_DEB=/usr/bin/python3 # Debian's python3, with python3-socks
command -v dnsmasq >/dev/null || die "dnsmasq missing (scripts/deps.sh udp)"
"$PY_DEB" -c 'import socks' 2>/dev/null || die "python3-socks missing (scripts/deps.sh udp)"

pick_ports DNS_PORT DENIED_PORT
python3 "$HERE/udpecho.py" "$T/echo.port" 2>"$T/echo.log" &
ECHO_PID=$!
lib_track "$ECHO_PID" udpecho "$T/echo.log"
wait_until "the echo server" 10 test -s "$T/echo.port"
ECHO_PORT=$(cat "$T/echo.port")
python3 "$HERE/udpecho.py" "$T/echo6.port" ::1 2>"$T/echo6.log" &
lib_track "$!" udpecho6 "$T/echo6.log"
wait_until "the IPv6 echo server" 10 test -s "$T/echo6.port"
ECHO6_PORT=$(cat "$T/echo6.port")

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" --user="$(id -un)" \
	--pid-file= --log-facility=- --local-ttl=300 \
	--address=/kcps.test/192.0.2.53 --address=/kcps.test/2001:db8::53 \
	--address=/mail.kcps.test/192.0.2.25 >"$T/dnsmasq.log" 2>&1 &
DNS_PID=$!
lib_track "$DNS_PID" dnsmasq "$T/dnsmasq.log"
wait_for_udp_port "$DNS_PORT" 10 "$DNS_PID"

# Loopback is denied by default: allow exactly the DNS and echo ports,
# so DENIED_PORT stays denied (UDP and TCP alike).
SERVER_ALLOW="127.0.0.1:$DNS_PORT, 127.0.0.1:$ECHO_PORT, [::1]:$ECHO6_PORT"
make_keys alice
start_server --udp_rate 20000 --udp_idle_timeout_ms 3000
start_impair "$SERVER_PORT" --loss 0.01 --seed 7
start_local "$IMPAIR_PORT" "" --udp_rate 20000
wait_session

# 1. DNS through the tunnel equals DNS direct
"$PY_DEB" "$HERE/dnsq.py" "$LOCAL_PORT" "$DNS_PORT" kcps.test A >"$T/dig.txt" ||
	die "DNS A through the tunnel: $(cat "$T/dig.txt")"
cat "$T/dig.txt"
grep -q "IN	A	192.0.2.53" "$T/dig.txt" || die "no A answer"
"$PY_DEB" "$HERE/dnsq.py" "$LOCAL_PORT" "$DNS_PORT" kcps.test AAAA >"$T/dig6.txt" ||
	die "DNS AAAA through the tunnel"
grep -q "IN	AAAA	2001:db8::53" "$T/dig6.txt" || die "no AAAA answer"
"$PY_DEB" "$HERE/dnsq.py" "$LOCAL_PORT" "$DNS_PORT" mail.kcps.test A >/dev/null ||
	die "DNS mail.kcps.test"
ok "DNS (dnsmasq) through the tunnel with PySocks: A, AAAA, A; each equals the direct answer"

# 2. 10,000 echoes at 1 % loss each way
up0=$(metric "$SERVER_METRICS" kcpsocks_udp_assoc_up_datagrams_total)
res=$(python3 "$HERE/udpc.py" echo "$LOCAL_PORT" "$ECHO_PORT" 10000 16) || die "echo: $res"
note "echo: $res"
read -r sent received dup corrupt _ < <(echo "$res" | sed 's/[a-z]*=//g')
[ "$dup" = 0 ] || die "$dup duplicated datagrams"
[ "$corrupt" = 0 ] || die "$corrupt corrupted datagrams"
up=$(($(metric "$SERVER_METRICS" kcpsocks_udp_assoc_up_datagrams_total) - up0))
lost=$((sent - received))
# 1 % each way: about 2 % end to end; at least one lost, at most 5 %.
[ "$lost" -ge 1 ] && [ "$lost" -le $((sent / 20)) ] || die "loss $lost of $sent is not the link's"
[ "$up" -lt "$sent" ] || die "the server relayed $up of $sent: a lost datagram came again"
down=$(metric "$SERVER_METRICS" kcpsocks_udp_assoc_down_datagrams_total)
ldown=$(metric "$LOCAL_METRICS" kcpsocks_udp_assoc_down_datagrams_total)
note "server: $up relayed up, $down back; local: $ldown to the application; drops: $(scrape "$LOCAL_METRICS" | grep -E '^kcpsocks_udp_assoc_dropped_total' | grep -v ' 0$' | tr '\n' ' ')$(scrape "$SERVER_METRICS" | grep -E '^kcpsocks_udp_assoc_dropped_total' | grep -v ' 0$' | tr '\n' ' ')"
stop_impair
note "impair: $(sed -n 's/^\(up\|down\) \(rx=[0-9]*\) .*\(lost_random=[0-9]*\).*/\1 \2 \3/p' "$IMPAIR_STATS" | tr '\n' ' ')"
lost_up=$(impair_counter up lost_random)
# Every datagram the server missed was dropped by the link; a kernel
# socket buffer may overflow on a loaded machine, so allow 1 % more.
[ $((sent - up)) -le $((lost_up + sent / 100)) ] ||
	die "the server missed $((sent - up)) datagrams, the up link dropped only $lost_up"
ok "10,000 echoes at 1 % loss: $received intact, 0 duplicated, $lost lost ($((lost * 1000 / sent))/1000); server relayed $up (up link dropped $lost_up datagrams of all kinds)"
start_impair "$SERVER_PORT"
stop_daemon "$LOCAL_PID" 2>/dev/null || true
start_local "$IMPAIR_PORT" "" --udp_rate 20000
wait_session

# 3. the association lives as long as its control connection
mkdir -p "$T/hold"
python3 "$HERE/udpc.py" hold "$LOCAL_PORT" "$ECHO_PORT" "$T/hold" >"$T/hold.out" 2>&1 &
HOLD_PID=$!
lib_track "$HOLD_PID" udpc-hold "$T/hold.out"
wait_until "the association" 10 test -e "$T/hold/ready"
[ "$(metric "$SERVER_METRICS" kcpsocks_udp_assoc_active)" = 1 ] || die "server: no association"
[ "$(metric "$LOCAL_METRICS" kcpsocks_udp_assoc_active)" = 1 ] || die "local: no association"
touch "$T/hold/release"
reap "$HOLD_PID" || die "hold: $(cat "$T/hold.out")"
gone() { [ "$(metric "$1" kcpsocks_udp_assoc_active)" = 0 ]; }
wait_until "the local association to end" 5 gone "$LOCAL_METRICS"
wait_until "the server association to end" 5 gone "$SERVER_METRICS"
ok "closing the TCP control connection ends the association at both daemons"
res=$(python3 "$HERE/udpc.py" idle "$LOCAL_PORT" "$ECHO_PORT" 10 2>&1) || die "idle: $res"
wait_until "the local association to end" 5 gone "$LOCAL_METRICS"
ok "an association idle for udp_idle_timeout_ms (3 s) ends; its control connection $res"

# 4. bad input, the policy, a name
res=$(python3 "$HERE/udpc.py" bad "$LOCAL_PORT" "$ECHO_PORT" "$DENIED_PORT" "$ECHO6_PORT" 2>&1) ||
	die "bad: $res"
for r in stranger fragment truncated bad_atyp oversize; do
	[ "$(metric "$LOCAL_METRICS" kcpsocks_udp_assoc_dropped_total "reason=\"$r\"")" = 1 ] ||
		die "local: no $r drop counted"
done
[ "$(metric "$SERVER_METRICS" kcpsocks_udp_assoc_dropped_total 'reason="policy"')" = 1 ] ||
	die "server: the denied datagram was not counted"
out=$(tcurl -o /dev/null "http://127.0.0.1:$DENIED_PORT/" 2>&1) && die "TCP to the denied port worked"
case $out in *"(2)"*) ;; *) die "TCP to the denied port: want REP 2, curl said: $out" ;; esac
ok "stranger, FRAG, truncated, bad ATYP, oversize: dropped, counted, unanswered; denied port: UDP dropped (policy), TCP REP 02; localhost resolved by the server; [::1] echoed with an IPv6 header"
stop_daemon "$LOCAL_PID" || die "local did not stop cleanly"
stop_daemon "$SERVER_PID" || die "server did not stop cleanly"
ok "both daemons stopped cleanly"
