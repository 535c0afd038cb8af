#!/usr/bin/env bash
# run-udp.sh BUILD - UDP ASSOCIATE on loopback with the real daemons
# (docs/PROTOCOL.md (UDP)); writes markdown on stdout (scripts/bench.sh udp
# BUILD, make bench-udp):
#  1. DNS query latency (dnsmasq, tests/integration/udpc.py dnstime):
#     direct, through the tunnel idle and during a bulk download, over
#     build/impair with 10 ms each way (one RTT = 20 ms). Target (issue
#     16): p99 during the bulk download <= p99 idle + one RTT.
#  2. A UDP echo, 10,000 datagrams of 36..235 bytes offered at 2,500/s,
#     through build/impair at 1 % loss each way: delivered, duplicated,
#     throughput; kcpsocks beside shadowsocks-libev's UDP relay
#     (ss-local -u / ss-server -u through the same relay) and v2ray's
#     socks UDP over mKCP (VMess + mux, as bench/run-peers.sh) when
#     installed.
# BENCH_UDP_QUERIES (default 300) queries per DNS row; BENCH_NOTE, when
# set, is printed with the machine's core count and load average.
set -euo pipefail
BUILD=${1:-build}
export BUILD
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/integration/lib.sh"
lib_init bench_udp
require_daemons
UDPC=$HERE/../tests/integration/udpc.py
N=${BENCH_UDP_QUERIES:-300}
pick_ports DNS_PORT
command -v dnsmasq >/dev/null || die "dnsmasq missing (scripts/deps.sh udp)"

python3 "$HERE/../tests/integration/udpecho.py" "$T/echo.port" 2>"$T/echo.log" &
lib_track "$!" udpecho "$T/echo.log"
wait_until "the echo server" 10 test -s "$T/echo.port"
ECHO_PORT=$(cat "$T/echo.port")
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" --user="$(id -un)" \
	--pid-file= --log-facility=- --address=/kcps.test/192.0.2.53 >"$T/dnsmasq.log" 2>&1 &
lib_track "$!" dnsmasq "$T/dnsmasq.log"
wait_for_udp_port "$DNS_PORT" 10

SERVER_ALLOW="127.0.0.1:$DNS_PORT, 127.0.0.1:$ECHO_PORT, 127.0.0.1"
make_keys alice >&2
start_http >&2
truncate -s 4G "$HTTP_DIR/big.bin"
start_server --udp_rate 0 >&2

row() { # NAME RESULT
	local r=$2
	echo "| $1 | $(echo "$r" | sed -n 's/.*answered=\([0-9]*\).*/\1/p')/$N | $(echo "$r" | sed -n 's/.*p50=\([0-9.]*\).*/\1/p') | $(echo "$r" | sed -n 's/.*p99=\([0-9.]*\).*/\1/p') |"
}

echo "Command: \`make bench-udp\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo none))"
echo
echo "Machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the start.${BENCH_NOTE:+ $BENCH_NOTE}"
echo
echo "### DNS through the tunnel (link: 10 ms each way, RTT 20 ms)"
echo
echo "| path | answered | p50 ms | p99 ms |"
echo "|---|---|---|---|"
row "direct (no tunnel, no link delay)" "$(python3 "$UDPC" dnstime 0 "$DNS_PORT" "$N")"
start_impair "$SERVER_PORT" --delay 10
start_local "$IMPAIR_PORT" "" --udp_rate 0 >&2
wait_session >&2
idle=$(python3 "$UDPC" dnstime "$LOCAL_PORT" "$DNS_PORT" "$N")
row "tunnel, idle" "$idle"
# under_bulk [CURL_ARGS...]: the DNS row during a download through the
# tunnel; sets BULK (the dnstime result) and RATE (Mbit/s meanwhile).
under_bulk() {
	local dl t0 s0 b0
	curl -sS -m 300 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null "$@" \
		"http://127.0.0.1:$HTTP_PORT/big.bin" 2>"$T/dl.err" &
	dl=$!
	lib_track "$dl" download
	b0=$(metric "$LOCAL_METRICS" kcpsocks_relay_down_bytes_total)
	dl_going() { [ "$(metric "$LOCAL_METRICS" kcpsocks_relay_down_bytes_total)" -gt $((b0 + 5000000)) ]; }
	wait_until "the download to move 5 MB" 30 dl_going
	t0=$(metric "$LOCAL_METRICS" kcpsocks_relay_down_bytes_total)
	s0=$(now_ms)
	BULK=$(python3 "$UDPC" dnstime "$LOCAL_PORT" "$DNS_PORT" "$N")
	RATE=$(( ($(metric "$LOCAL_METRICS" kcpsocks_relay_down_bytes_total) - t0) * 8 / 1000 / ($(now_ms) - s0 + 1) ))
	kill "$dl" 2>/dev/null || true
	reap "$dl" 2>/dev/null || true
}
under_bulk --limit-rate 2500K
row "tunnel, during a download limited to 20 Mbit/s (moved $RATE Mbit/s)" "$BULK"
p99l=$(echo "$BULK" | sed -n 's/.*p99=\([0-9.]*\).*/\1/p')
under_bulk
bulk=$BULK
row "tunnel, during an unlimited bulk download ($RATE Mbit/s: the relay saturated)" "$bulk"
p99i=$(echo "$idle" | sed -n 's/.*p99=\([0-9.]*\).*/\1/p')
p99b=$(echo "$bulk" | sed -n 's/.*p99=\([0-9.]*\).*/\1/p')
echo
echo "Target p99 during bulk <= p99 idle + 1 RTT (20 ms): limited download $p99l ms, $(awk -v b="$p99l" -v i="$p99i" 'BEGIN { print (b <= i + 20) ? "met" : "not met" }'); unlimited download $p99b ms, $(awk -v b="$p99b" -v i="$p99i" 'BEGIN { print (b <= i + 20) ? "met" : "not met" }') (p99 idle $p99i ms)."
echo "A datagram frame is sealed the moment it arrives and leaves in the UDP"
echo "socket's urgent lane, ahead of the bulk datagrams queued in the daemon"
echo "(docs/PROTOCOL.md (UDP) U2). During an unlimited download it still waits"
echo "behind the bulk datagrams already queued past the daemon, first come, first"
echo "served, as any UDP sharing a saturated path does: on loopback that is the"
echo "receiving socket buffers (kcpsocks-local's and the relay's), not the sender's"
echo "(a loopback send buffer never holds a datagram)."
echo "Load at the end: $(cut -d' ' -f1 /proc/loadavg)."
stop_daemon "$LOCAL_PID" >&2
stop_impair >&2

echo
echo "### UDP echo, 10,000 datagrams offered at 2,500/s, 1 % loss each way"
echo
echo "| relay | delivered | duplicated | corrupted | throughput | loss |"
echo "|---|---|---|---|---|---|"
erow() { # NAME RESULT
	local s r d c secs b
	read -r s r d c secs b < <(echo "$2" | sed 's/[a-z]*=//g')
	echo "| $1 | $r/$s | $d | $c | $(awk -v r="$r" -v t="$secs" -v b="$b" 'BEGIN { printf "%.0f datagrams/s, %.2f Mbit/s", r / t, b * 8 / t / 1e6 }') | $(awk -v r="$r" -v s="$s" 'BEGIN { printf "%.2f %%", (s - r) * 100 / s }') |"
}
start_impair "$SERVER_PORT" --loss 0.01 --seed 3
start_local "$IMPAIR_PORT" "" --udp_rate 0 >&2
wait_session >&2
erow "kcpsocks (datagram frames beside KCP)" "$(python3 "$UDPC" echo "$LOCAL_PORT" "$ECHO_PORT" 10000 16)"
stop_daemon "$LOCAL_PID" >&2
stop_impair >&2
if command -v ss-server >/dev/null && command -v ss-local >/dev/null; then
	pick_ports SS_PORT SS_LOCAL
	pass=bench-udp-$$
	ss-server -s 127.0.0.1 -p "$SS_PORT" -k "$pass" -m chacha20-ietf-poly1305 -u \
		>"$T/ss-server.log" 2>&1 &
	lib_track "$!" ss-server "$T/ss-server.log"
	wait_for_udp_port "$SS_PORT" 10
	start_impair "$SS_PORT" --loss 0.01 --seed 3
	ss-local -s 127.0.0.1 -p "$IMPAIR_PORT" -b 127.0.0.1 -l "$SS_LOCAL" -k "$pass" \
		-m chacha20-ietf-poly1305 -u >"$T/ss-local.log" 2>&1 &
	lib_track "$!" ss-local "$T/ss-local.log"
	wait_for_tcp_port "$SS_LOCAL" 10
	erow "shadowsocks-libev ss-local -u (chacha20-ietf-poly1305)" \
		"$(python3 "$UDPC" echo "$SS_LOCAL" "$ECHO_PORT" 10000 16)"
	stop_impair >&2
else
	echo "| shadowsocks-libev | not installed (scripts/deps.sh bench) | | | | |"
fi
# v2ray: a SOCKS5 inbound with UDP on, VMess (aes-128-gcm) with mux over
# mKCP with v2ray's default kcpSettings, through the same relay, to a v2ray
# server with a freedom outbound (as bench/run-peers.sh sets up mKCP).
if command -v v2ray >/dev/null; then
	pick_ports V2_PORT V2_LOCAL
	uuid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$T/v2-server.json" <<-EOF
		{ "log": { "loglevel": "warning" },
		  "inbounds": [{ "listen": "127.0.0.1", "port": $V2_PORT, "protocol": "vmess",
		    "settings": { "clients": [{ "id": "$uuid", "alterId": 0 }] },
		    "streamSettings": { "network": "kcp", "kcpSettings": {} } }],
		  "outbounds": [{ "protocol": "freedom" }] }
	EOF
	v2ray -config "$T/v2-server.json" >"$T/v2-server.log" 2>&1 &
	lib_track "$!" v2ray-server "$T/v2-server.log"
	wait_for_udp_port "$V2_PORT" 10
	start_impair "$V2_PORT" --loss 0.01 --seed 3
	cat >"$T/v2-client.json" <<-EOF
		{ "log": { "loglevel": "warning" },
		  "inbounds": [{ "listen": "127.0.0.1", "port": $V2_LOCAL, "protocol": "socks",
		    "settings": { "auth": "noauth", "udp": true, "ip": "127.0.0.1" } }],
		  "outbounds": [{ "protocol": "vmess",
		    "settings": { "vnext": [{ "address": "127.0.0.1", "port": $IMPAIR_PORT,
		      "users": [{ "id": "$uuid", "alterId": 0, "security": "aes-128-gcm" }] }] },
		    "streamSettings": { "network": "kcp", "kcpSettings": {} },
		    "mux": { "enabled": true, "concurrency": 8 } }] }
	EOF
	v2ray -config "$T/v2-client.json" >"$T/v2-client.log" 2>&1 &
	lib_track "$!" v2ray-client "$T/v2-client.log"
	wait_for_tcp_port "$V2_LOCAL" 10
	if v2=$(python3 "$UDPC" echo "$V2_LOCAL" "$ECHO_PORT" 10000 16 2>"$T/v2-udpc.err"); then
		erow "v2ray $(v2ray version 2>/dev/null | awk 'NR == 1 { print $2 }') socks UDP, VMess + mux over mKCP (default kcpSettings)" "$v2"
	else
		echo "| v2ray socks UDP over mKCP | failed: $(tail -1 "$T/v2-udpc.err") | | | | |"
	fi
	stop_impair >&2
else
	echo "| v2ray | not installed (scripts/deps.sh bench) | | | | |"
fi
echo
echo "kcpsocks and ss-local -u carry each datagram once: a datagram the link"
echo "drops is lost, as with UDP itself, and nothing else is. v2ray carries UDP"
echo "inside VMess over mux over mKCP, a reliable ordered stream: the link's losses"
echo "are retransmitted (late, holding back the datagrams behind them), and what its"
echo "loss column shows is v2ray's own: datagrams it dropped or that came later than"
echo "3 s after the last was sent; it varies from run to run on a loaded machine."
