# daemons-lib.sh - shared by the fast_*.sh tests of the daemons (sourced).
#
# Loopback only. Every port comes from the kernel (free_ports), every wait
# polls with a bound, and the EXIT trap kills only the PIDs started here.
# The server's resolver reads the hosts file only
# (resolver_lookups = files), so no DNS query leaves the machine.
# The caller sets NAME before sourcing.

BUILD=${BUILD:-build}
SERVER_BIN=$BUILD/kcpsocks-server
LOCAL_BIN=$BUILD/kcpsocks-local
[ -x "$SERVER_BIN" ] && [ -x "$LOCAL_BIN" ] || { echo "$NAME: daemons not built" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
server_pid= local_pid=
cleanup() {
	local p
	for p in "${pids[@]}" $server_pid $local_pid; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}" $server_pid $local_pid; do wait "$p" 2>/dev/null || true; done
	# KEEP_LOGS=DIR keeps the daemons' logs (e.g. to grep sanitizer reports).
	if [ -n "${KEEP_LOGS:-}" ]; then
		for f in "$tmp"/*.log; do cp "$f" "$KEEP_LOGS/$NAME-$(basename "$f")"; done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "$NAME: FAIL: $*" >&2
	local f
	if [ -n "${KEEP_LOGS:-}" ]; then
		curl -s -m 2 "http://127.0.0.1:$SMETRICS_PORT/metrics" >"$tmp/server-metrics.log" || true
		curl -s -m 2 "http://127.0.0.1:$LMETRICS_PORT/metrics" >"$tmp/local-metrics.log" || true
	fi
	for f in server local impair http; do
		[ -s "$tmp/$f.log" ] && { echo "--- $f.log" >&2; tail -n 25 "$tmp/$f.log" >&2; }
	done
	exit 1
}
ok() { echo "$NAME: ok: $*"; }

# free_ports KIND...: one kernel-picked 127.0.0.1 port per KIND (tcp/udp).
free_ports() {
	python3 -c 'import socket,sys
ss=[socket.socket(socket.AF_INET, socket.SOCK_STREAM if k=="tcp" else socket.SOCK_DGRAM) for k in sys.argv[1:]]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$@"
}

# wait_until WHAT SECONDS CMD...: poll CMD every 50 ms for SECONDS.
wait_until() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 20; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "timed out after ${secs}s waiting for $what"
}

read -r UDP_PORT SOCKS_PORT SMETRICS_PORT LMETRICS_PORT HTTP_PORT < <(free_ports udp tcp tcp tcp tcp)

# make_keys [KEY=VALUE lines for [server]...]: key, one user, server.conf.
make_keys() {
	"$SERVER_BIN" keygen --out "$tmp/server.key" >"$tmp/keygen.out" || fail "keygen"
	[ "$(stat -c %a "$tmp/server.key")" = 600 ] || fail "key file mode is not 0600"
	{
		echo "metrics_listen = 127.0.0.1:$SMETRICS_PORT"
		echo "[server]"
		echo "listen = 127.0.0.1:$UDP_PORT"
		echo "private_key_file = $tmp/server.key"
		echo "allow = 127.0.0.0/8"
		echo "resolver_lookups = files"
		for kv in "$@"; do echo "$kv"; done
	} >"$tmp/server.conf"
	"$SERVER_BIN" adduser alice --config "$tmp/server.conf" >"$tmp/adduser.out" || fail "adduser"
	sed -n '/^\[user alice\]/,/^psk/p' "$tmp/adduser.out" >>"$tmp/server.conf"
	URL=$(sed -n "s/^kcpsocks-local --connect '\(.*\)'$/\1/p" "$tmp/adduser.out")
	[ -n "$URL" ] || fail "adduser printed no connection string"
}

# start_server [OPTIONS...]: start (or restart) kcpsocks-server.
start_server() {
	"$SERVER_BIN" --config "$tmp/server.conf" --log_level debug "$@" >>"$tmp/server.log" 2>&1 &
	server_pid=$!
	wait_until "the server's metrics" 10 curl -sf "http://127.0.0.1:$SMETRICS_PORT/healthz"
}

# start_local [OPTIONS...]: start kcpsocks-local, wait for its session.
# Every instance appends to local.log; LOCAL_LOG_FROM is the line this one
# starts at (local_log shows only its lines).
start_local() {
	LOCAL_LOG_FROM=$(($({ wc -l <"$tmp/local.log"; } 2>/dev/null || echo 0) + 1))
	"$LOCAL_BIN" --connect "$URL" --listen "127.0.0.1:$SOCKS_PORT" \
		--metrics_listen "127.0.0.1:$LMETRICS_PORT" --log_level debug "$@" \
		>>"$tmp/local.log" 2>&1 &
	local_pid=$!
	wait_until "the local session" 10 bash -c "tail -n +$LOCAL_LOG_FROM '$tmp/local.log' | grep -q 'session .* established'"
}
local_log() { tail -n +"$LOCAL_LOG_FROM" "$tmp/local.log"; }
# local_has PATTERN: does this instance's log have a matching line?
local_has() { [ "$(local_log | grep -c -- "$1" || true)" -gt 0 ]; }

# stop PID: SIGTERM and a bounded wait for a clean exit.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	wait_until "pid $1 to exit" 15 bash -c "! kill -0 $1"
	wait "$1" 2>/dev/null || true
}

# start_http: python3 http.server on HTTP_PORT serving $tmp/www.
start_http() {
	mkdir -p "$tmp/www"
	(cd "$tmp/www" && exec python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1) \
		>"$tmp/http.log" 2>&1 &
	pids+=("$!")
	wait_until "the web server" 20 curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/"
}

# metric PORT NAME: the first sample of NAME (labels ignored).
metric() {
	curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '
		{ split($1, a, "{") } !d && a[1] == n { print $2; d = 1 }'
}

# tcurl ARGS...: curl through the tunnel, bounded.
tcurl() { curl -sS -m 20 --socks5-hostname "127.0.0.1:$SOCKS_PORT" "$@"; }

# metric_with PORT NAME LABEL: the sample of NAME whose labels contain LABEL
# (e.g. reason="superseded").
metric_with() {
	curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v l="$3" '
		{ split($1, a, "{") } !d && a[1] == n && index($1, l) { print $2; d = 1 }'
}
