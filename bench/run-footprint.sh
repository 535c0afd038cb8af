#!/usr/bin/env bash
# run-footprint.sh BUILD OUT - what idle sessions and idle streams cost the
# server (issue 19), for docs/bench/matrix.md: tools/kcpsocks-load opens
#   sessions: FOOT_SESSIONS (10,000) real sessions, handshakes only, held
#             FOOT_HOLD_S seconds (keepalives), then closed;
#   streams:  FOOT_STREAM_SESSIONS (10) sessions with FOOT_STREAMS (100)
#             idle streams each (a SOCKS5-style CONNECT to nginx that then
#             sends nothing), held, then closed;
# against a fresh kcpsocks-server each, sampling its RSS and CPU
# (--server-pid). One key=value line per part into OUT/footprint.sessions
# and OUT/footprint.streams (the tool's own output, plus the run's knobs).
# Loopback only. BENCH_QUICK=1: 2,000 sessions, 2 x 100 streams.
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
OUT=${2:?usage: run-footprint.sh BUILD OUT}
export BUILD
export KS_LOG_LEVEL=warn SERVER_ALLOW=127.0.0.0/8
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
lib_init bench-footprint
require_daemons
KS_LOAD=${KS_LOAD:-$BUILD/kcpsocks-load}
[ -x "$KS_LOAD" ] || die "kcpsocks-load not built ($KS_LOAD missing; make all)"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	FOOT_SESSIONS=${FOOT_SESSIONS:-2000} FOOT_STREAM_SESSIONS=${FOOT_STREAM_SESSIONS:-2}
else
	FOOT_SESSIONS=${FOOT_SESSIONS:-10000} FOOT_STREAM_SESSIONS=${FOOT_STREAM_SESSIONS:-10}
fi
FOOT_STREAMS=${FOOT_STREAMS:-100}
FOOT_HOLD_S=${FOOT_HOLD_S:-10}
PER_USER=5
mkdir -p "$OUT"

start_nginx 1K
NUSERS=$(((FOOT_SESSIONS + PER_USER - 1) / PER_USER))
make_keys alice "max_sessions = $((FOOT_SESSIONS + 64))" "sessions_per_user = $PER_USER"
add_load_users "$NUSERS" "$T/users.txt"

# part NAME SESSIONS [ARGS...]: a fresh server, the load, its line to OUT.
part() {
	local name=$1 n=$2 rc=0
	shift 2
	unset SERVER_PORT SERVER_METRICS
	start_server
	# the server's idle RSS settles once it has started
	"$KS_LOAD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --users "$T/users.txt" \
		--sessions "$n" --hold "$FOOT_HOLD_S" --timeout 120 --server-pid "$SERVER_PID" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" || rc=$?
	{
		printf 'rc=%s hold_s=%s ' "$rc" "$FOOT_HOLD_S"
		[ "$#" -gt 0 ] && printf 'streams_per_session=%s ' "$FOOT_STREAMS"
		cat "$T/$name.out"
	} >"$OUT/footprint.$name"
	note "$name: $(cat "$OUT/footprint.$name")"
	[ "$rc" = 0 ] || note "$name: kcpsocks-load exit $rc: $(tail -n 3 "$T/$name.err")"
	stop_pid "$SERVER_PID" 15 || true
}

part sessions "$FOOT_SESSIONS"
part streams "$FOOT_STREAM_SESSIONS" --streams "$FOOT_STREAMS" --target "127.0.0.1:$NGINX_PORT"
