#!/usr/bin/env bash
# shellcheck disable=SC2086
# run-peers.sh BUILD - kcpsocks against its peers on loopback (make bench-peers).
#
# Every contender is a SOCKS5 endpoint on 127.0.0.1 that curl drives to the
# same nginx (generated files). UDP contenders go through the same
# impairment relay (BUILD/impair) in every scenario; TCP ones (direct, and
# shadowsocks-libev over TCP) cannot be impaired by it and run on the clean
# path only, as ceilings. Per contender and scenario, fresh processes:
#
#   bulk   BULK_SIZE download, BULK_RUNS times on the clean path and
#          BULK_RUNS_LOSSY times under impairment (kcpsocks-fastopen:
#          BULK_RUNS_FASTOPEN and BULK_RUNS_FASTOPEN_LOSSY; fast open only
#          changes how a connection opens). A transfer capped at BULK_CAP_S
#          is a "timeout"; one that stays for BULK_FLOOR_S below the rate
#          that would finish within the cap is cut as "slow"; either way the
#          pair's later runs are skipped. A peer's runs also stop once one
#          more of the last run's length would take the pair past
#          BULK_BUDGET_S (kcpsocks-default and -profile always get theirs).
#   ttfb   TTFB_N new connections (one curl, Connection: close), time to
#          first byte of a 1K file
#   ka     KA_N 1K requests on one keep-alive connection
#   cpu    utime+stime of the contender's own processes over the bulk runs
#   rss    VmHWM of those processes (summed) at the end
#   retx   retransmitted / sent segments of the sending side, if exposed
#   drops  receive-buffer drops of the contender's UDP sockets (/proc/net/udp)
#          against the datagrams the relay delivered; and the host-wide
#          RcvbufErrors / InDatagrams deltas of /proc/net/snmp
#
# Raw results go to $BENCH_OUT/results (one file per pair); bench/peers_report.py
# turns them into docs/bench/peers.md and docs/bench/*.png.
#
# Knobs (docs/benchmarking.md): the sizes and counts above,
# BENCH_QUICK=1 (smoke: small sizes, one run), BENCH_ONLY, BENCH_SKIP and
# BENCH_SCENARIOS (extended regexes on contender / scenario names),
# BENCH_KEEP=1 (keep earlier results, e.g. to rerun one contender),
# BENCH_OUT (default BUILD/bench-peers), KEEP_TMP=1.
set -euo pipefail

BUILD=${1:-${BUILD:-build}}
export BUILD
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
lib_init bench-peers

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	BULK_SIZE=${BULK_SIZE:-16M} BULK_RUNS=${BULK_RUNS:-1} BULK_RUNS_LOSSY=${BULK_RUNS_LOSSY:-1}
	BULK_CAP_S=${BULK_CAP_S:-30} BULK_BUDGET_S=${BULK_BUDGET_S:-30}
	TTFB_N=${TTFB_N:-10} KA_N=${KA_N:-20}
else
	BULK_SIZE=${BULK_SIZE:-256M} BULK_RUNS=${BULK_RUNS:-3} BULK_RUNS_LOSSY=${BULK_RUNS_LOSSY:-2}
	BULK_CAP_S=${BULK_CAP_S:-60} BULK_BUDGET_S=${BULK_BUDGET_S:-60}
	TTFB_N=${TTFB_N:-100} KA_N=${KA_N:-100}
fi
# The matrix (issue 20) and the concurrency section (issue 19):
# docs/benchmarking.md, "The matrix".
if [ "$QUICK" = 1 ]; then
	BULK_SIZE_SLOW=${BULK_SIZE_SLOW:-4M} PAGE_N=${PAGE_N:-5} LOADED_N=${LOADED_N:-20}
	CONC_SIZE=${CONC_SIZE:-1M} CONC_CAP_S=${CONC_CAP_S:-30} CONC_PROBES=${CONC_PROBES:-10}
else
	BULK_SIZE_SLOW=${BULK_SIZE_SLOW:-64M} PAGE_N=${PAGE_N:-20} LOADED_N=${LOADED_N:-50}
	CONC_SIZE=${CONC_SIZE:-4M} CONC_CAP_S=${CONC_CAP_S:-60} CONC_PROBES=${CONC_PROBES:-50}
fi
PAGE_OBJECTS=30 PAGE_TOTAL=1600000 PAGE_MIN=2048 PAGE_MAX=262144 PAGE_PARALLEL=6
PAGE_MAX_S=${PAGE_MAX_S:-60}          # one page load, at most
PAGE_BUDGET_S=${PAGE_BUDGET_S:-60}    # a pair's page loads: no further load past it
LOADED_RAMP_S=${LOADED_RAMP_S:-2}     # bulk running before the loaded probes start
CONC_SCENARIOS=${CONC_SCENARIOS:-clean loss1}
CONC_ONLY=${CONC_ONLY:-^(ss-tcp|kcpsocks-default|kcpsocks-default-nosd|kcptun-fast3/microsocks|mkcp-tuned)$}
CONC_NS=${CONC_NS:-1 8 32 128}
CONC_PROBE_STREAMS=32 CONC_PROBE_REPEAT=${CONC_PROBE_REPEAT:-8}
BULK_RUNS_FASTOPEN=${BULK_RUNS_FASTOPEN:-1} BULK_RUNS_FASTOPEN_LOSSY=${BULK_RUNS_FASTOPEN_LOSSY:-0}
BULK_FLOOR_S=${BULK_FLOOR_S:-15}
TTFB_MAX_S=10
# A contender that stalls every connection must not hold the run: the TTFB
# and keep-alive curls are killed after this long (what they measured so
# far is kept; the TTFB samples still missing count as failures).
PHASE_MAX_S=${PHASE_MAX_S:-180}
SMALL=1K
BENCH_OUT=${BENCH_OUT:-$BUILD/bench-peers}
RES=$BENCH_OUT/results
ONLY=${BENCH_ONLY:-.}
SKIP=${BENCH_SKIP:-} # contenders left out (an extended regex), after BENCH_ONLY
SCEN_ONLY=${BENCH_SCENARIOS:-.}
SS_METHOD=chacha20-ietf-poly1305
SS_PASS=bench-$RANDOM$RANDOM
KCPTUN_KEY=bench-$RANDOM$RANDOM
V2_UUID=$(python3 -c 'import uuid; print(uuid.uuid4())')
READY_S=20

# Scenarios: name, impair arguments, the kcpsocks profile suited to it.
# The first four are issue 8's; delay10, long and bottleneck are the paths
# issue 20 adds (the matrix). The bottleneck is a rate cap with a queue of
# BOTTLENECK_QUEUE_MS at that rate, in bytes (the relay's --queue).
BOTTLENECK_RATE=${BOTTLENECK_RATE:-20000000}
BOTTLENECK_QUEUE_MS=${BOTTLENECK_QUEUE_MS:-50}
SCENARIOS=(clean loss1 loss5 burst delay10 long bottleneck)
declare -A SCEN_ARGS=(
	[clean]=""
	[loss1]="--loss 0.01 --delay 10"
	[loss5]="--loss 0.05 --delay 30 --jitter 5 --reorder 0.01"
	[burst]="--burst 0.005,0.25 --delay 10"
	[delay10]="--delay 10"
	[long]="--loss 0.01 --delay 75"
	[bottleneck]="--rate $BOTTLENECK_RATE --queue $((BOTTLENECK_RATE * BOTTLENECK_QUEUE_MS / 1000)) --delay 10"
)
declare -A SCEN_PROFILE=([clean]=fast [loss1]=lossy [loss5]=lossy [burst]=lossy
	[delay10]=fast [long]=lossy [bottleneck]=default)
# The bulk file per scenario: the long path (150 ms RTT, 1% loss) moves a
# smaller one (BULK_SIZE_SLOW) so a slow contender still finishes a run.
declare -A SCEN_BULK=([long]=$BULK_SIZE_SLOW)

# Every profile the build ships (its --help lists them), each as shipped on
# both ends: kcpsocks-NAME (kcpsocks-default is the default profile).
ks_profiles() {
	"$KS_LOCAL" --help 2>/dev/null | sed -n '/^Profiles (/,$p' |
		awk '/^  [a-z][a-z0-9-]* / { print $1 }'
}
mapfile -t PROFILES < <(ks_profiles 2>/dev/null || true)
[ "${#PROFILES[@]}" -gt 0 ] || PROFILES=(default fast lossy mobile low-memory)
PROFILE_ROWS=()
for p in "${PROFILES[@]}"; do
	[ "$p" = default ] && continue
	PROFILE_ROWS+=("kcpsocks-$p")
	eval "start_kcpsocks-$p() { kcpsocks \"\$1\" $p; }"
done

# Contenders: name -> kind (tcp: clean path only; udp: through impair).
CONTENDERS=(direct ss-tcp kcpsocks-default kcpsocks-default-nosd kcpsocks-profile
	kcpsocks-fastopen "${PROFILE_ROWS[@]}"
	kcptun/microsocks kcptun/ss kcptun-fast3/microsocks kcptun-fast3/ss
	kcptun-w64/microsocks mkcp-default mkcp-tuned)
# The matrix-only paths run the profile rows beside kcptun fast3 (its best
# set-up in every earlier run), kcptun with low-memory's window and mKCP
# tuned: the rows the issue-20 targets read.
MATRIX_SCENARIOS=" delay10 long bottleneck "
MATRIX_CONTENDERS=" kcpsocks-default kcpsocks-default-nosd ${PROFILE_ROWS[*]} kcptun-fast3/microsocks kcptun-fast3/ss kcptun-w64/microsocks mkcp-tuned "
# runs_in CONTENDER SCENARIO: whether the pair is part of the run.
runs_in() {
	case $1 in direct | ss-tcp) [ "$2" = clean ] || return 1 ;; esac
	case $MATRIX_SCENARIOS in *" $2 "*) [[ $MATRIX_CONTENDERS == *" $1 "* ]] || return 1 ;; esac
	return 0
}

# ---- bookkeeping ----------------------------------------------------------

PEER_PIDS=() # the contender's own processes (CPU, RSS); stopped after each pair
AUX_PIDS=()  # the relay and the like: stopped too, not measured
PEER_SOCKS=  # the SOCKS5 port curl uses
PEER_RETX=   # command that prints "retransmitted sent" segment counts, or empty
PEER_DIR=    # scratch dir of the current pair

# spawn LABEL CMD...: start CMD in the background (cwd $PEER_DIR, log
# $PEER_DIR/LABEL.log); the PID is measured as part of the contender.
spawn() {
	local label=$1 pid
	shift
	(cd "$PEER_DIR" && exec "$@") >"$PEER_DIR/$label.log" 2>&1 &
	pid=$!
	lib_track "$pid" "$label" "$PEER_DIR/$label.log"
	PEER_PIDS+=("$pid")
}

# ready_tcp PORT / ready_udp PORT: poll for the listening socket, bounded;
# fails (does not exit) if a contender process died.
ready_tcp() { ready tcp_listening "$1"; }
ready_udp() { ready udp_bound "$1"; }
ready() {
	local p end=$(($(now_ms) + READY_S * 1000))
	until "$1" "$2"; do
		for p in "${PEER_PIDS[@]}"; do alive "$p" || return 1; done
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}

peer_stop() {
	local p
	for p in "${PEER_PIDS[@]}" "${AUX_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PEER_PIDS[@]}" "${AUX_PIDS[@]}"; do stop_pid "$p" 5 >/dev/null 2>&1 || true; done
	lib_untrack "${PEER_PIDS[@]}" "${AUX_PIDS[@]}"
	PEER_PIDS=() AUX_PIDS=() PEER_SOCKS='' PEER_RETX=''
}

# relay UDP_PORT SCENARIO: the impairment relay in front of UDP_PORT; sets
# RELAY_PORT.
relay() {
	start_impair "$1" --seed 1 ${SCEN_ARGS[$2]}
	mv "$IMPAIR_LOG" "$PEER_DIR/impair.log" # the open log follows the rename
	AUX_PIDS+=("$IMPAIR_PID")
	RELAY_PORT=$IMPAIR_PORT
	RELAY_STATS=$IMPAIR_STATS
}

# relay_delivered: datagrams the relay delivered, both directions (read
# after it stopped: it writes its counters on SIGTERM).
relay_delivered() {
	[ -n "$RELAY_STATS" ] && [ -s "$RELAY_STATS" ] || return 0
	awk '$1 == "up" || $1 == "down" { for (i = 2; i <= NF; i++)
		if (split($i, a, "=") == 2 && a[1] == "delivered") n += a[2] }
		END { print n + 0 }' "$RELAY_STATS"
}

# ---- contenders: each start_* takes the scenario, sets PEER_SOCKS ------------

start_direct() { PEER_SOCKS=; }

start_ss-tcp() {
	local sp lp
	sp=$(free_port) lp=$(free_port)
	spawn ss-server ss-server -s 127.0.0.1 -p "$sp" -k "$SS_PASS" -m "$SS_METHOD" --no-delay
	ready_tcp "$sp" || return 1
	spawn ss-local ss-local -s 127.0.0.1 -p "$sp" -b 127.0.0.1 -l "$lp" \
		-k "$SS_PASS" -m "$SS_METHOD" --no-delay
	ready_tcp "$lp" || return 1
	PEER_SOCKS=$lp
}

# backend KIND: the SOCKS5 server behind kcptun-server (microsocks, or
# ss-server whose client ss-local then sits in front of kcptun-client).
# Sets BACKEND_PORT.
backend() {
	BACKEND_PORT=$(free_port)
	if [ "$1" = microsocks ]; then
		spawn microsocks microsocks -i 127.0.0.1 -p "$BACKEND_PORT"
	else
		spawn ss-server ss-server -s 127.0.0.1 -p "$BACKEND_PORT" \
			-k "$SS_PASS" -m "$SS_METHOD" --no-delay
	fi
	ready_tcp "$BACKEND_PORT"
}

# kcptun SCENARIO BACKEND ARGS...: kcptun-server -> BACKEND, kcptun-client
# through the relay; ARGS go to both ends (they must agree).
kcptun() {
	local scen=$1 kind=$2 up cp
	shift 2
	backend "$kind" || return 1
	up=$(free_port) cp=$(free_port)
	spawn kcptun-server kcptun-server -l "127.0.0.1:$up" -t "127.0.0.1:$BACKEND_PORT" \
		--key "$KCPTUN_KEY" --quiet --snmplog snmp.csv --snmpperiod 1 "$@"
	ready_udp "$up" || return 1
	relay "$up" "$scen"
	spawn kcptun-client kcptun-client -l "127.0.0.1:$cp" -r "127.0.0.1:$RELAY_PORT" \
		--key "$KCPTUN_KEY" --quiet "$@"
	ready_tcp "$cp" || return 1
	PEER_RETX="kcptun_retx $PEER_DIR/snmp.csv"
	if [ "$kind" = microsocks ]; then
		PEER_SOCKS=$cp
	else
		PEER_SOCKS=$(free_port)
		spawn ss-local ss-local -s 127.0.0.1 -p "$cp" -b 127.0.0.1 -l "$PEER_SOCKS" \
			-k "$SS_PASS" -m "$SS_METHOD" --no-delay
		ready_tcp "$PEER_SOCKS"
	fi
}
FAST3=(--mode fast3 --nocomp --datashard 0 --parityshard 0 --sndwnd 1024 --rcvwnd 1024)
start_kcptun/microsocks() { kcptun "$1" microsocks; }
start_kcptun/ss() { kcptun "$1" ss; }
start_kcptun-fast3/microsocks() { kcptun "$1" microsocks "${FAST3[@]}"; }
start_kcptun-fast3/ss() { kcptun "$1" ss "${FAST3[@]}"; }
# kcptun fast3 held to the low-memory profile's ceiling: windows of 64
# segments, a 1 MiB socket and mux buffer (low-memory's session window).
# --streambuf acts with --smuxver 2 only: under the default smux v1 one
# stream may fill the 1 MiB mux buffer, so the 64-segment window is its
# flight (as low-memory's 128 KiB stream credit leaves it to its window).
W64=(--mode fast3 --nocomp --datashard 0 --parityshard 0 --sndwnd 64 --rcvwnd 64
	--sockbuf 1048576 --smuxbuf 1048576 --streambuf 65536)
start_kcptun-w64/microsocks() { kcptun "$1" microsocks "${W64[@]}"; }

# kcptun_retx SNMP_CSV: "RetransSegs OutSegs" of kcptun-server (the sender
# of the downloads), from the last row of its snmp log (one row of
# cumulative counters per second).
kcptun_retx() {
	[ -s "$1" ] || return 0
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{ r = $col["RetransSegs"]; o = $col["OutSegs"] }
		END { if (NR > 1) print r + 0, o + 0 }' "$1"
}

# mkcp SCENARIO KCPSETTINGS_JSON: v2ray with a SOCKS5 inbound, VMess
# (aes-128-gcm) over mKCP to a v2ray server with a freedom outbound. Mux
# is on: without it v2ray opens one mKCP connection (one UDP socket) per
# TCP connection, and the relay, which serves one client address at a
# time, would flap between a closing connection's socket and the new one.
mkcp() {
	local scen=$1 kcp=$2 up cp
	command -v v2ray >/dev/null || return 1
	up=$(free_port) cp=$(free_port)
	cat >"$PEER_DIR/server.json" <<-EOF
		{ "log": { "loglevel": "warning" },
		  "inbounds": [{ "listen": "127.0.0.1", "port": $up, "protocol": "vmess",
		    "settings": { "clients": [{ "id": "$V2_UUID", "alterId": 0 }] },
		    "streamSettings": { "network": "kcp", "kcpSettings": $kcp } }],
		  "outbounds": [{ "protocol": "freedom" }] }
	EOF
	cat >"$PEER_DIR/client.json" <<-EOF
		{ "log": { "loglevel": "warning" },
		  "inbounds": [{ "listen": "127.0.0.1", "port": $cp, "protocol": "socks",
		    "settings": { "auth": "noauth", "udp": false } }],
		  "outbounds": [{ "protocol": "vmess",
		    "settings": { "vnext": [{ "address": "127.0.0.1", "port": RELAY,
		      "users": [{ "id": "$V2_UUID", "alterId": 0, "security": "aes-128-gcm" }] }] },
		    "streamSettings": { "network": "kcp", "kcpSettings": $kcp },
		    "mux": { "enabled": true, "concurrency": 8 } }] }
	EOF
	spawn v2ray-server v2ray -config "$PEER_DIR/server.json"
	ready_udp "$up" || return 1
	relay "$up" "$scen"
	sed -i "s/RELAY/$RELAY_PORT/" "$PEER_DIR/client.json"
	spawn v2ray-client v2ray -config "$PEER_DIR/client.json"
	ready_tcp "$cp" || return 1
	PEER_SOCKS=$cp
}
start_mkcp-default() { mkcp "$1" '{}'; }
start_mkcp-tuned() {
	mkcp "$1" '{ "uplinkCapacity": 1000, "downlinkCapacity": 1000, "tti": 10,
		"congestion": false, "readBufferSize": 8, "writeBufferSize": 8 }'
}

# kcpsocks SCENARIO PROFILE [FAST_OPEN]: the lib.sh daemons (their command
# lines live there), the local one pointed at the relay. Both run PROFILE:
# the server applies its own profile's local settings (min_rto_ms,
# dead_link, dup_thin, mux limits), not the one the client proposes. FAST_OPEN (true or
# false) goes into the [transport] section of a local config file, which
# overrides the profile's own setting; without it the profile decides.
# KS_STREAM_DELIVERY (on or off), when set, goes to both daemons as
# --stream_delivery (per-stream delivery is used only when both ends say on).
kcpsocks() {
	local scen=$1 profile=$2 fo=${3:-} conf=() sd=()
	[ -z "${KS_STREAM_DELIVERY:-}" ] || sd=(--stream_delivery "$KS_STREAM_DELIVERY")
	[ -n "${CONNSTR:-}" ] || make_keys bench
	unset SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS
	start_server --profile "$profile" "${sd[@]}"
	PEER_PIDS+=("$SERVER_PID")
	mv "$SERVER_LOG" "$PEER_DIR/kcpsocks-server.log"
	relay "$SERVER_PORT" "$scen"
	if [ -n "$fo" ]; then
		printf '[transport]\nfast_open = %s\n' "$fo" >"$PEER_DIR/kcpsocks-local.conf"
		conf=(--config "$PEER_DIR/kcpsocks-local.conf")
		PEER_FASTOPEN=$fo
	fi
	start_local "$RELAY_PORT" "$profile" "${conf[@]}" "${sd[@]}"
	PEER_PIDS+=("$LOCAL_PID")
	mv "$LOCAL_LOG" "$PEER_DIR/kcpsocks-local.log"
	PEER_SOCKS=$LOCAL_PORT
	PEER_RETX="kcpsocks_retx $SERVER_METRICS"
	PEER_PROFILE=$profile
	PEER_METRICS="$SERVER_METRICS $LOCAL_METRICS"
}
start_kcpsocks-default() { kcpsocks "$1" default; }
# the default profile with per-stream delivery on at both ends (issue 19)
start_kcpsocks-default-nosd() { KS_STREAM_DELIVERY=off kcpsocks "$1" default; }
start_kcpsocks-profile() { kcpsocks "$1" "${SCEN_PROFILE[$1]}" false; }
start_kcpsocks-fastopen() { kcpsocks "$1" "${SCEN_PROFILE[$1]}" true; }

# fast_open_note: why this build's fast_open may not act (its --help says
# the key is reserved), or nothing.
fast_open_note() {
	if "$KS_LOCAL" --help 2>&1 | grep -A1 -- '--fast_open' | grep -q 'reserved'; then
		echo "this kcpsocks-local build parses fast_open but does not act on it yet (--help: reserved)"
	fi
	return 0
}

# kcpsocks_retx PORT: "retransmitted sent" segments of the server's sessions.
kcpsocks_retx() {
	local f=$PEER_DIR/metrics.txt r s
	scrape "$1" >"$f"
	r=$(metric_from "$f" sum kcpsocks_session_retransmits_timeout_total \
		kcpsocks_session_retransmits_fast_total)
	s=$(metric_from "$f" sum kcpsocks_session_segments_sent_total)
	[ -n "$r" ] && [ -n "$s" ] && echo "$r $s"
	return 0
}

# ---- measurements -----------------------------------------------------------

# proxy_opts: PROXY, curl's proxy options for the current contender (none
# for direct).
PROXY=()
proxy_opts() {
	PROXY=()
	[ -z "$PEER_SOCKS" ] || PROXY=(--socks5-hostname "127.0.0.1:$PEER_SOCKS")
}

# cpu_ticks: utime+stime of every contender process, in clock ticks.
cpu_ticks() {
	local p t=0 f
	for p in "${PEER_PIDS[@]}"; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

hwm_kb() {
	local p k v _ t=0
	for p in "${PEER_PIDS[@]}"; do
		while read -r k v _; do
			[ "$k" = VmHWM: ] && t=$((t + v))
		done <"/proc/$p/status" 2>/dev/null || true
	done
	echo "$t"
}

# sock_drops: "DROPS SOCKETS": the drops column of /proc/net/udp{,6}
# (datagrams the kernel discarded because the socket's receive buffer was
# full, counted from the socket's creation) summed over every UDP socket
# the contender's processes hold now.
sock_drops() {
	local p l
	for p in "${PEER_PIDS[@]}"; do
		for l in /proc/"$p"/fd/*; do
			l=$(readlink "$l" 2>/dev/null) || continue
			case $l in "socket:["*) l=${l#socket:[} && echo "${l%]}" ;; esac
		done
	done >"$PEER_DIR/inodes"
	awk 'NR == FNR { want[$1] = 1; next }
		FNR > 1 && ($10 in want) { d += $NF; n++ }
		END { print d + 0, n + 0 }' "$PEER_DIR/inodes" /proc/net/udp /proc/net/udp6
}

# udp_snmp: "InDatagrams RcvbufErrors" of the host.
udp_snmp() {
	awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
		print $c["InDatagrams"], $c["RcvbufErrors"] }' /proc/net/snmp
}

# warm: one small fetch must work within READY_S (kcptun and mKCP dial lazily).
warm() {
	local end=$(($(now_ms) + READY_S * 1000))
	until curl -s --fail --max-time 5 "${PROXY[@]}" -o /dev/null "$(url $SMALL)"; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# bulk OUT RUNS BUDGET_S: up to RUNS downloads; lines "ok BYTES SECONDS", "timeout
# BYTES SECONDS" (the cap hit), "slow BYTES SECONDS" (below the floor rate,
# BULK_SIZE / BULK_CAP_S, for BULK_FLOOR_S: it could not have finished
# within the cap) or "fail BYTES SECONDS CURL_EXIT". After a timeout or a
# slow cut the pair's remaining runs are skipped; after any run, they stop
# when one more of that run's length would take the pair past BUDGET_S of
# transfers.
bulk() {
	local i w rc want secs used=0 floor=()
	want=$(size_bytes "$PAIR_BULK")
	: >>"$1"
	[ "$BULK_FLOOR_S" -gt 0 ] &&
		floor=(--speed-limit $((want / BULK_CAP_S)) --speed-time "$BULK_FLOOR_S")
	for ((i = 0; i < $2; i++)); do
		rc=0
		w=$(curl -sS --fail --max-time "$BULK_CAP_S" "${floor[@]}" "${PROXY[@]}" -o /dev/null \
			-w '%{size_download} %{time_total}' "$(url "$PAIR_BULK")" 2>>"$PEER_DIR/curl.err") || rc=$?
		secs=${w#* }
		used=$(awk -v u="$used" -v s="${secs:-0}" 'BEGIN { print u + s }')
		if [ "$rc" = 0 ] && [ "${w% *}" = "$want" ]; then
			echo "ok $w" >>"$1"
		elif [ "$rc" = 28 ]; then
			if awk -v s="${secs:-0}" -v c="$BULK_CAP_S" 'BEGIN { exit !(s < c - 1) }'; then
				echo "slow $w" >>"$1"
			else
				echo "timeout $w" >>"$1"
			fi
			return 0
		else
			# A broken transfer (e.g. the contender reset the connection)
			# is recorded; the next run gets its chance.
			echo "fail $w $rc" >>"$1"
		fi
		awk -v u="$used" -v s="${secs:-0}" -v b="$3" 'BEGIN { exit !(u + s > b) }' &&
			break
	done
	return 0
}

# ttfb OUT: TTFB_N new connections, seconds to first byte; "fail" for one
# that did not answer 200 within TTFB_MAX_S. One curl fetches the file
# TTFB_N times with "Connection: close": nginx closes each connection, so
# every transfer opens a new one (a new SOCKS5 CONNECT; num_connects says
# so) without a curl process start per sample (tens of ms on a loaded
# machine, outside the measured time but not outside the run's).
ttfb() {
	local args=() i
	for ((i = 0; i < TTFB_N; i++)); do args+=(-o /dev/null "$(url $SMALL)"); done
	stdbuf -oL timeout "$PHASE_MAX_S" curl -s --max-time "$TTFB_MAX_S" -H 'Connection: close' "${PROXY[@]}" \
		-w '%{time_starttransfer} %{http_code} %{num_connects} %{exitcode}\n' \
		"${args[@]}" 2>/dev/null |
		awk '{ print ($2 == 200 && $4 == 0) ? $1 " " $3 : "fail" }' >"$1" || true
	# a curl that died early left samples unwritten: they failed
	i=$(wc -l <"$1")
	for (( ; i < TTFB_N; i++)); do echo fail >>"$1"; done
}

# ka OUT: KA_N+1 requests in one curl (one keep-alive connection); the
# first, which opens the connection, is dropped. Lines "SECONDS CONNECTS".
ka() {
	local args=() i
	for ((i = 0; i <= KA_N; i++)); do args+=(-o /dev/null "$(url $SMALL)"); done
	stdbuf -oL timeout "$PHASE_MAX_S" curl -s --max-time 60 "${PROXY[@]}" \
		-w '%{time_total} %{num_connects}\n' \
		"${args[@]}" | tail -n +2 >"$1" || true
}

# ---- the matrix and concurrency phases (issues 20 and 19) --------------------

# page_files: the page: PAGE_OBJECTS objects of fixed sizes (seeded, between
# PAGE_MIN and PAGE_MAX bytes, PAGE_TOTAL in all) under $WWW/page/; their
# sizes in $BENCH_OUT/page_sizes. PAGE_ARGS: curl's arguments to fetch them.
PAGE_ARGS=()
page_files() {
	local i sz
	mkdir -p "$WWW/page"
	python3 - "$PAGE_OBJECTS" "$PAGE_TOTAL" "$PAGE_MIN" "$PAGE_MAX" >"$BENCH_OUT/page_sizes" <<-'PY'
		import random, sys
		n, total, lo, hi = (int(x) for x in sys.argv[1:])
		rng = random.Random(20)  # fixed: every run fetches the same page
		w = [rng.lognormvariate(0, 1.5) for _ in range(n)]
		# scale to the total, clamp to [lo, hi], repeat until the sum holds
		for _ in range(50):
		    s = sum(w)
		    w = [min(hi, max(lo, x * total / s)) for x in w]
		sizes = [int(x) for x in w]
		sizes[sizes.index(max(s for s in sizes if s < hi))] += total - sum(sizes)
		print("\n".join(str(s) for s in sizes))
	PY
	i=0
	PAGE_ARGS=()
	while read -r sz; do
		head -c "$sz" /dev/urandom >"$WWW/page/o_$i"
		PAGE_ARGS+=(-o /dev/null "http://127.0.0.1:$NGINX_PORT/page/o_$i")
		i=$((i + 1))
	done <"$BENCH_OUT/page_sizes"
}

# page OUT: PAGE_N loads of the page, each one curl fetching the
# PAGE_OBJECTS objects over at most PAGE_PARALLEL parallel connections, new
# for each load (as a browser opening a site); lines "ok MS" (wall time of
# the load, curl's start included) or "fail MS OBJECTS_OK". Loads stop
# once the pair's loads have taken PAGE_BUDGET_S.
page() {
	local i t0 t1 n used=0
	: >"$1"
	for ((i = 0; i < PAGE_N; i++)); do
		t0=$(now_ms)
		n=$(timeout "$PAGE_MAX_S" curl -s --parallel --parallel-immediate \
			--parallel-max "$PAGE_PARALLEL" --max-time "$PAGE_MAX_S" "${PROXY[@]}" \
			-w '%{http_code}\n' "${PAGE_ARGS[@]}" 2>/dev/null | grep -c '^200$') || true
		t1=$(now_ms)
		if [ "${n:-0}" = "$PAGE_OBJECTS" ]; then
			echo "ok $((t1 - t0))"
		else
			echo "fail $((t1 - t0)) ${n:-0}"
		fi >>"$1"
		used=$((used + t1 - t0))
		[ "$used" -ge $((PAGE_BUDGET_S * 1000)) ] && break
	done
	return 0
}

# loaded OUT: a small request's latency while a bulk download runs (the
# bottleneck path): the bulk curl fetches the pair's bulk file
# CONC_PROBE_REPEAT times on one connection; after LOADED_RAMP_S one curl
# makes LOADED_N+1 1 KiB requests on one keep-alive connection (the first,
# which opens it, dropped). Lines "SECONDS CONNECTS"; OUT.state says
# whether the bulk was still running when the last request ended.
loaded() {
	local bpid args=() i
	for ((i = 0; i < CONC_PROBE_REPEAT; i++)); do args+=(-o /dev/null "$(url "$PAIR_BULK")"); done
	curl -s --max-time "$BULK_CAP_S" "${PROXY[@]}" "${args[@]}" >/dev/null 2>&1 &
	bpid=$!
	lib_track "$bpid" "loaded bulk"
	sleep "$LOADED_RAMP_S"
	args=()
	for ((i = 0; i <= LOADED_N; i++)); do args+=(-o /dev/null "$(url $SMALL)"); done
	stdbuf -oL timeout "$PHASE_MAX_S" curl -s --max-time 30 "${PROXY[@]}" \
		-w '%{time_total} %{num_connects}\n' "${args[@]}" | tail -n +2 >"$1" || true
	if alive "$bpid"; then echo during >"$1.state"; else echo "bulk ended first" >"$1.state"; fi
	kill -TERM "$bpid" 2>/dev/null || true
	stop_pid "$bpid" 5 >/dev/null 2>&1 || true
	lib_untrack "$bpid"
}

# conc DIR: issue 19's concurrency rounds. For each N of CONC_NS, N
# parallel downloads of CONC_SIZE (new curl and connection each, capped at
# CONC_CAP_S): DIR/conc.N holds "wall_ms" then one "BYTES SECONDS" line per
# stream. Then CONC_PROBE_STREAMS bulk downloads (each the file
# CONC_PROBE_REPEAT times) and, after a 1 s ramp, up to CONC_PROBES 1 KiB
# fetches one after another, each a new curl and connection, while the
# bulk runs: DIR/conc.probe, lines "SECONDS during|after" (after: the bulk
# had ended, not counted); DIR/conc.idle the same probes with no load.
conc() {
	local d=$1 n i t0 pids=() args=() w k
	for n in $CONC_NS; do
		pids=()
		t0=$(now_ms)
		for ((i = 0; i < n; i++)); do
			curl -s --max-time "$CONC_CAP_S" "${PROXY[@]}" -o /dev/null \
				-w '%{size_download} %{time_total}\n' "$(url "$CONC_SIZE")" \
				>"$PEER_DIR/conc.$n.$i" 2>/dev/null &
			pids+=("$!")
			lib_track "$!" "conc curl"
		done
		for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
		lib_untrack "${pids[@]}"
		{
			echo "$(($(now_ms) - t0))"
			cat "$PEER_DIR"/conc."$n".* 2>/dev/null || true
		} >"$d/conc.$n"
		rm -f "$PEER_DIR"/conc."$n".*
	done
	conc_probes "$d/conc.idle"
	pids=() args=()
	for ((i = 0; i < CONC_PROBE_REPEAT; i++)); do args+=(-o /dev/null "$(url "$CONC_SIZE")"); done
	for ((i = 0; i < CONC_PROBE_STREAMS; i++)); do
		curl -s --max-time "$CONC_CAP_S" "${PROXY[@]}" "${args[@]}" >/dev/null 2>&1 &
		pids+=("$!")
		lib_track "$!" "conc bulk"
	done
	sleep 1
	conc_probes "$d/conc.probe" "${pids[@]}"
	for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
	for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
	lib_untrack "${pids[@]}"
}

# conc_probes OUT [PID...]: CONC_PROBES 1 KiB fetches (a new curl and
# connection each, TTFB_MAX_S at most) one after another; with PIDs, only
# while one of them lives, and each line says whether one still did when
# the probe ended. A contender that fails CONC_PROBE_FAILS probes in a row
# (one wedged by the rounds before) gets no more: the rest are not run.
CONC_PROBE_FAILS=${CONC_PROBE_FAILS:-3}
conc_probes() {
	local out=$1 k t p state fails=0
	shift
	: >"$out"
	for ((k = 0; k < CONC_PROBES; k++)); do
		t=$(curl -s --fail --max-time "$TTFB_MAX_S" "${PROXY[@]}" -o /dev/null \
			-w '%{time_total}' "$(url $SMALL)" 2>/dev/null) || t=fail
		state=idle
		if [ $# -gt 0 ]; then
			state=after
			for p in "$@"; do alive "$p" && state=during && break; done
		fi
		echo "$t $state" >>"$out"
		[ "$state" = after ] && break
		if [ "$t" = fail ]; then fails=$((fails + 1)); else fails=0; fi
		[ "$fails" -ge "$CONC_PROBE_FAILS" ] && break
	done
	return 0
}

# pair CONTENDER SCENARIO: start, measure, stop; raw results in $RES/SCEN.NAME/.
pair() {
	local c=$1 s=$2 d t0 t1 u0 u1 retx runs budget m0 mw m1 m2 m3 m4 m5 m6 m7
	m0=$(now_ms) mw=$m0
	d=$RES/$s.${c//\//+}
	rm -rf "$d"
	mkdir -p "$d"
	PEER_DIR=$T/run.$s.${c//\//+}
	mkdir -p "$PEER_DIR"
	PEER_PROFILE='' PEER_FASTOPEN='' PEER_METRICS='' RELAY_STATS=''
	echo "$c" >"$d/contender"
	echo "$s" >"$d/scenario"
	note "$s / $c"
	if ! "start_$c" "$s" || ! proxy_opts || ! { mw=$(now_ms) && warm; }; then
		note "$s / $c: did not start or carry a first request; skipped"
		echo "contender did not start or carry a first request" >"$d/skipped"
		tail -n 5 "$PEER_DIR"/*.log >"$d/logs.tail" 2>/dev/null || true
		peer_stop
		return 0
	fi
	[ -n "$PEER_PROFILE" ] && echo "$PEER_PROFILE" >"$d/profile"
	if [ -n "$PEER_FASTOPEN" ]; then
		echo "$PEER_FASTOPEN" >"$d/fast_open"
		[ "$PEER_FASTOPEN" = true ] && fast_open_note >"$d/fast_open_note"
	fi
	runs=$BULK_RUNS budget=$BULK_BUDGET_S
	[ "$s" = clean ] || runs=$BULK_RUNS_LOSSY
	if [ "$c" = kcpsocks-fastopen ]; then
		runs=$BULK_RUNS_FASTOPEN
		[ "$s" = clean ] || runs=$BULK_RUNS_FASTOPEN_LOSSY
	fi
	# kcpsocks' own rows are what the targets measure: no budget cut
	case $c in kcpsocks-default | kcpsocks-default-nosd | kcpsocks-profile) budget=$((runs * BULK_CAP_S)) ;; esac
	echo "$runs" >"$d/bulk_planned"
	PAIR_BULK=${SCEN_BULK[$s]:-$BULK_SIZE}
	echo "$PAIR_BULK" >"$d/bulk_size"
	m1=$(now_ms)
	u0=$(udp_snmp) t0=$(cpu_ticks)
	bulk "$d/bulk" "$runs" "$budget"
	t1=$(cpu_ticks)
	echo "$((t1 - t0)) $(getconf CLK_TCK)" >"$d/cpu"
	m2=$(now_ms)
	ttfb "$d/ttfb"
	m3=$(now_ms)
	ka "$d/ka"
	m4=$(now_ms)
	# page loads: the matrix contenders and the TCP ceilings (PAGE_ALL=1: every pair)
	if [ "${PAGE_ALL:-0}" = 1 ] || [[ "$MATRIX_CONTENDERS ss-tcp direct " == *" $c "* ]]; then
		page "$d/page"
	fi
	[ "$s" = bottleneck ] && loaded "$d/loaded"
	m6=$(now_ms)
	if [[ " $CONC_SCENARIOS " == *" $s "* ]] && [[ $c =~ $CONC_ONLY ]]; then conc "$d"; fi
	m7=$(now_ms)
	u1=$(udp_snmp)
	hwm_kb >"$d/rss_kb"
	sock_drops >"$d/sockdrops"
	echo "$u0 $u1" >"$d/udp"
	if [ -n "$PEER_RETX" ]; then
		retx=$($PEER_RETX || true)
		[ -n "$retx" ] && echo "$retx" >"$d/retx"
	fi
	metrics_snapshot "$d"
	# what the kcpsocks session agreed (", per-stream delivery" when it is on)
	grep -h 'session .* established' "$PEER_DIR"/kcpsocks-*.log >"$d/session" 2>/dev/null || true
	note "$s / $c: bulk $(tr '\n' ' ' <"$d/bulk")"
	peer_stop
	relay_delivered >"$d/delivered"
	[ -n "$RELAY_STATS" ] && [ -s "$RELAY_STATS" ] && cp "$RELAY_STATS" "$d/relay_stats"
	m5=$(now_ms)
	# seconds spent: start, first request, bulk, ttfb, ka, page (and
	# loaded), concurrency, the rest (stop, counters)
	awk -v a="$m0" -v w="$mw" -v b="$m1" -v c="$m2" -v d="$m3" -v e="$m4" -v f="$m5" \
		-v g="$m6" -v h="$m7" 'BEGIN {
		printf "start %.1f warm %.1f bulk %.1f ttfb %.1f ka %.1f page %.1f conc %.1f stop %.1f total %.1f\n",
			(w - a) / 1e3, (b - w) / 1e3, (c - b) / 1e3, (d - c) / 1e3, (e - d) / 1e3,
			(g - e) / 1e3, (h - g) / 1e3, (f - h) / 1e3, (f - a) / 1e3 }' >"$d/timing"
}

# metrics_snapshot DIR: kcpsocks' /metrics of both ends at the end of the
# pair (DIR/metrics.server, DIR/metrics.local), so counters such as the
# fast-open ones can be read afterwards.
metrics_snapshot() {
	local ports
	read -r -a ports <<<"$PEER_METRICS"
	[ "${#ports[@]}" = 2 ] || return 0
	scrape "${ports[0]}" >"$1/metrics.server" 2>/dev/null || true
	scrape "${ports[1]}" >"$1/metrics.local" 2>/dev/null || true
}

# ---- main -----------------------------------------------------------------

missing_note() {
	local c=$1
	case $c in
	kcpsocks-*) [ -x "$KS_SERVER" ] && [ -x "$KS_LOCAL" ] || echo "$KS_SERVER or $KS_LOCAL not built" ;;
	kcptun*/microsocks) command -v kcptun-client >/dev/null && command -v microsocks >/dev/null ||
		echo "kcptun or microsocks not installed" ;;
	kcptun*/ss) command -v kcptun-client >/dev/null && command -v ss-server >/dev/null ||
		echo "kcptun or shadowsocks-libev not installed" ;;
	ss-tcp) command -v ss-server >/dev/null || echo "shadowsocks-libev not installed" ;;
	mkcp-*) command -v v2ray >/dev/null || echo "v2ray not installed" ;;
	esac
	return 0
}

# write_meta: the run's settings, date, commit and peer versions (BENCH_OUT/meta).
write_meta() {
	echo "quick $QUICK"
	echo "bulk_size $BULK_SIZE"
	echo "bulk_runs $BULK_RUNS"
	echo "bulk_runs_lossy $BULK_RUNS_LOSSY"
	echo "bulk_cap_s $BULK_CAP_S"
	echo "bulk_budget_s $BULK_BUDGET_S"
	echo "bulk_floor_s $BULK_FLOOR_S"
	echo "bulk_runs_fastopen $BULK_RUNS_FASTOPEN"
	echo "bulk_runs_fastopen_lossy $BULK_RUNS_FASTOPEN_LOSSY"
	echo "ttfb_n $TTFB_N"
	echo "ka_n $KA_N"
	echo "bulk_size_slow $BULK_SIZE_SLOW"
	echo "page_n $PAGE_N"
	echo "page $PAGE_OBJECTS objects, $PAGE_TOTAL bytes, $PAGE_MIN-$PAGE_MAX each, $PAGE_PARALLEL parallel"
	echo "loaded_n $LOADED_N"
	echo "conc_size $CONC_SIZE"
	echo "conc_ns $CONC_NS"
	echo "conc_probes $CONC_PROBES"
	echo "conc_scenarios $CONC_SCENARIOS"
	echo "bottleneck_rate $BOTTLENECK_RATE"
	echo "bottleneck_queue_ms $BOTTLENECK_QUEUE_MS"
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
	for s in "${SCENARIOS[@]}"; do echo "scen_$s ${SCEN_ARGS[$s]:-none}"; done
	echo "versions kcptun $(dpkg-query -W -f='${Version}' kcptun 2>/dev/null || echo -)," \
		"shadowsocks-libev $(dpkg-query -W -f='${Version}' shadowsocks-libev 2>/dev/null || echo -)," \
		"microsocks $(dpkg-query -W -f='${Version}' microsocks 2>/dev/null || echo -)," \
		"v2ray $(dpkg-query -W -f='${Version}' v2ray 2>/dev/null || echo -)," \
		"nginx-light $(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null || echo -)," \
		"curl $(dpkg-query -W -f='${Version}' curl 2>/dev/null || echo -)"
}

main() {
	local c s why start
	start=$(now_ms)
	[ -x "$IMPAIR" ] || die "$IMPAIR not built (make $IMPAIR)"
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$RES"
	mkdir -p "$RES"
	# shellcheck disable=SC2046 # a list of sizes
	start_nginx $(printf '%s\n' "$SMALL" "$BULK_SIZE" "$BULK_SIZE_SLOW" "$CONC_SIZE" | sort -u)
	page_files
	if [ "${BENCH_KEEP:-0}" = 1 ] && [ -s "$BENCH_OUT/meta" ]; then
		echo "rerun $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
			"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none):" \
			"contenders /$ONLY/, scenarios /$SCEN_ONLY/" >>"$BENCH_OUT/meta"
	else
		write_meta >"$BENCH_OUT/meta"
	fi
	for s in "${SCENARIOS[@]}"; do
		[[ $s =~ $SCEN_ONLY ]] || continue
		for c in "${CONTENDERS[@]}"; do
			[[ $c =~ $ONLY ]] || continue
			[ -n "$SKIP" ] && [[ $c =~ $SKIP ]] && continue
			runs_in "$c" "$s" || continue
			why=$(missing_note "$c")
			if [ -n "$why" ]; then
				mkdir -p "$RES/$s.${c//\//+}"
				echo "$c" >"$RES/$s.${c//\//+}/contender"
				echo "$s" >"$RES/$s.${c//\//+}/scenario"
				echo "$why" >"$RES/$s.${c//\//+}/skipped"
				note "$s / $c: skipped: $why"
				continue
			fi
			pair "$c" "$s"
		done
	done
	echo "elapsed_s $((($(now_ms) - start) / 1000)) contenders /$ONLY/ scenarios /$SCEN_ONLY/" \
		>>"$BENCH_OUT/meta"
}

main
