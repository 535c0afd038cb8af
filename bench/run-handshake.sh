#!/usr/bin/env bash
# run-handshake.sh BUILD - the handshake under load, on loopback, with the
# real daemons (docs/PROTOCOL.md section 11): the handshakes per second the
# server completes, the server CPU a refused init costs, and an
# established session's 1 MiB fetch time during a flood of unknown-user
# inits. Writes markdown on stdout (scripts/bench.sh handshake BUILD).
set -euo pipefail
BUILD=${1:-build}
export BUILD
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/adversarial/hs_lib.sh"
lib_init bench_handshake
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT
SECS=${BENCH_HS_SECONDS:-5}
TCK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

make_keys alice >&2
add_user bob >&2
start_http >&2
head -c 1048576 /dev/urandom >"$HTTP_DIR/f.bin"
start_server >&2
start_local "$SERVER_PORT" >&2
wait_session >&2
fetch_ms() {
	local t0
	t0=$(now_ms)
	curl -sS -m 60 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o "$T/got" \
		"http://127.0.0.1:$HTTP_PORT/f.bin" && cmp -s "$T/got" "$HTTP_DIR/f.bin" || return 1
	echo $(($(now_ms) - t0))
}
fetch_ms >/dev/null
quiet=$(fetch_ms)

# 1. Valid handshakes from 40 addresses, as fast as the budget lets them.
c0=$(cpu_ticks "$SERVER_PID")
hs=$(hs_as bob valid --count 0 --duration "$SECS" --rate 4000 --sources 40 --wait 1000)
c1=$(cpu_ticks "$SERVER_PID")
ok_s=$(awk -v r="$(field "$hs" replies)" -v s="$SECS" 'BEGIN{printf "%.0f", r / s}')
hs_cpu=$(awk -v c=$((c1 - c0)) -v t="$TCK" -v s="$SECS" 'BEGIN{printf "%.0f", 100 * c / t / s}')

# 2. Unknown-user inits from one address, then from 100: server CPU per init.
flood() { # flood SOURCES: prints "inits cpu_us_per_init fetch_ms"
	local c0 c1 line f
	c0=$(cpu_ticks "$SERVER_PID")
	"$HSFLOOD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --kind unknown \
		--count 0 --duration "$SECS" --rate 50000 --sources "$1" --wait 0 >"$T/flood.out" &
	local pid=$!
	lib_track "$pid" hsflood
	sleep 1
	f=$(fetch_ms || echo failed)
	reap "$pid"
	c1=$(cpu_ticks "$SERVER_PID")
	line=$(cat "$T/flood.out")
	awk -v n="$(field "$line" sent)" -v c=$((c1 - c0)) -v t="$TCK" -v f="$f" -v r="$(field "$line" rate)" \
		'BEGIN{printf "%d %.0f %.2f %s\n", n, r, 1e6 * c / t / n, f}'
}
read -r n1 r1 us1 f1 < <(flood 1)
read -r n100 r100 us100 f100 < <(flood 100)
dh=$(($(metric "$SERVER_METRICS" kcpsocks_handshake_inits_total 'result="unknown_user"') + \
	$(metric "$SERVER_METRICS" kcpsocks_handshake_inits_total 'result="bad_dh"')))

cat <<MD
## Handshake under load (bench/run-handshake.sh)

Real daemons on loopback, ${SECS} s per run; hsflood (tools/hsflood.c) sends.
Server CPU from /proc (user + system), whole process.

| measure | value |
|---|---|
| handshakes completed (valid inits of one user from 40 addresses, offered at 4000/s) | ${ok_s}/s (X25519 budget 2000/s in total); server CPU ${hs_cpu} % of a core |
| unknown-user inits from 1 address | ${n1} sent at ${r1}/s: ${us1} µs of server CPU per init (50 X25519/s allowed for that host) |
| unknown-user inits from 100 addresses | ${n100} sent at ${r100}/s: ${us100} µs of server CPU per init (2000 X25519/s in total) |
| X25519 spent on unknown users, both floods | ${dh} |
| established session, 1 MiB fetch: quiet / 1-address flood / 100-address flood | ${quiet} ms / ${f1} ms / ${f100} ms |
MD
