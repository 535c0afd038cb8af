# shellcheck shell=bash disable=SC2034,SC2119,SC2120,SC2086
# lib.sh - the one harness of the integration tests: the fast_*.sh tests,
# the realistic, soak and fault suites, and bench/run-peers.sh.
#
# Source it, then call lib_init NAME:
#
#   . "$(dirname "$0")/lib.sh"
#   lib_init realistic_socks5
#
# What it gives:
#   - a private temp dir $T, removed at exit (KEEP_TMP=1 keeps it);
#   - a record of every process started through it (lib_track); the EXIT
#     trap stops exactly those PIDs (SIGTERM, bounded wait, then SIGKILL),
#     also when the test fails, and on failure prints the tail of every
#     registered log (daemons, relay, nginx);
#   - free ports, readiness by polling with a deadline (never fixed sleeps);
#   - nginx serving generated files of known sha256, curl fetches through
#     the SOCKS5 daemon with sha256 checks; python3's http.server for the
#     fast tests (start_http: no nginx needed) and tcurl;
#   - the daemons and the impairment relay: start_server, start_local,
#     make_keys and start_impair are the ONLY places that know their
#     command lines, so a changed flag is a one-line fix here;
#   - RSS / fd sampling of a PID and Prometheus metrics scraping.
#
# Network: 127.0.0.1 and ::1 only. Environment knobs: BUILD (default build),
# KEEP_TMP=1, KEEP_LOGS=DIR (every registered log copied to DIR at exit,
# e.g. to grep sanitizer reports; on failure the daemons' metrics too),
# KS_LOG_LEVEL (daemons' log_level, default info), LOG_LINES (lines of each
# log printed on failure, default 60), SERVER_ALLOW (the server's allow
# list), and the METRIC_* names below.

set -euo pipefail

BUILD=${BUILD:-build}
KS_SERVER=${KS_SERVER:-$BUILD/kcpsocks-server}
KS_LOCAL=${KS_LOCAL:-$BUILD/kcpsocks-local}
IMPAIR=${IMPAIR:-$BUILD/impair}
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KSTOOL=$LIB_DIR/kstool.py
KS_LOG_LEVEL=${KS_LOG_LEVEL:-info}
SERVER_ALLOW=${SERVER_ALLOW:-127.0.0.0/8, ::1}
LOG_LINES=${LOG_LINES:-60}

# Metric names of the daemons' /metrics (src/io/smetrics.c, the server's
# exitd.c; each may be a space-separated list, summed). RTT is a gauge per user,
# in seconds: the largest sample is taken (the sampler's CSV shows it in ms). When none of the names is exported,
# metric_value falls back to the first family matching METRIC_*_GUESS (an
# extended regex) and says so once on stderr; the handshake count has no
# fallback, a test that needs it fails and lists the candidates.
METRIC_RTT=${METRIC_RTT:-kcpsocks_session_srtt_seconds}
METRIC_RTT_GUESS=${METRIC_RTT_GUESS:-'s?rtt(_ms|_seconds)?$'}
METRIC_RETRANS=${METRIC_RETRANS:-kcpsocks_session_retransmits_timeout_total kcpsocks_session_retransmits_fast_total}
METRIC_RETRANS_GUESS=${METRIC_RETRANS_GUESS:-'retx|retrans|resen'}
METRIC_HANDSHAKES=${METRIC_HANDSHAKES:-kcpsocks_handshakes_ok_total}

LIB_NAME="test"
LIB_PIDS=()     # every PID we started and have not reaped, in order
LIB_STARTED=0   # how many were tracked so far (numbers the logs)
LIB_LOGS=()     # "label=path" pairs printed on failure
LIB_TMPROOT=${TMPDIR:-/tmp}

# ---- lifecycle -------------------------------------------------------------

# lib_init NAME: temp dir, traps.
lib_init() {
	LIB_NAME=$1
	T=$(mktemp -d "$LIB_TMPROOT/ks-$LIB_NAME.XXXXXX")
	trap lib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# KS_MOCK=1: the stand-in daemons of mockd.py (harness tests only).
	if [ "${KS_MOCK:-0}" = 1 ]; then
		KS_SERVER=$T/mock-server
		KS_LOCAL=$T/mock-local
		printf '#!/bin/sh\nexec python3 %s server "$@"\n' "$LIB_DIR/mockd.py" >"$KS_SERVER"
		printf '#!/bin/sh\nexec python3 %s local "$@"\n' "$LIB_DIR/mockd.py" >"$KS_LOCAL"
		chmod +x "$KS_SERVER" "$KS_LOCAL"
		echo "$LIB_NAME: KS_MOCK=1: stand-in daemons, this run tests the harness only" >&2
	fi
}

note() { echo "$LIB_NAME: $*"; }
ok() { note "ok: $*"; }
die() {
	echo "$LIB_NAME: FAIL: $*" >&2
	exit 1
}

# lib_track PID LABEL [LOG]: remember a process we started (and its log).
lib_track() {
	LIB_PIDS+=("$1")
	LIB_STARTED=$((LIB_STARTED + 1))
	[ $# -ge 3 ] && LIB_LOGS+=("$2=$3")
	return 0
}

# lib_untrack PID...: forget reaped PIDs, so the exit trap never signals a
# number the kernel may since have given to another process. stop_pid,
# kill_hard and reap call it.
lib_untrack() {
	local p keep=()
	for p in "${LIB_PIDS[@]}"; do
		[[ " $* " == *" $p "* ]] || keep+=("$p")
	done
	LIB_PIDS=("${keep[@]}")
}

# lib_log LABEL PATH: print this file on failure too.
lib_log() { LIB_LOGS+=("$1=$2"); }

lib_dump_logs() {
	local entry label path
	for entry in "${LIB_LOGS[@]}"; do
		label=${entry%%=*}
		path=${entry#*=}
		[ -s "$path" ] || continue
		echo "---- $label: last $LOG_LINES lines of $path" >&2
		tail -n "$LOG_LINES" "$path" >&2 || true
	done
}

lib_cleanup() {
	local rc=$? p
	trap - EXIT
	if [ "$rc" -ne 0 ]; then
		echo "$LIB_NAME: failed (exit $rc); logs follow" >&2
		lib_dump_logs
		[ -n "${KEEP_LOGS:-}" ] && lib_scrape_daemons
	fi
	for p in "${LIB_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${LIB_PIDS[@]}"; do stop_pid "$p" 5 >/dev/null 2>&1 || true; done
	[ -n "${KEEP_LOGS:-}" ] && lib_copy_logs "$KEEP_LOGS" "$LIB_NAME-"
	[ "$rc" -ne 0 ] && lib_save_logs
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "$LIB_NAME: temp dir kept: $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}

# lib_save_logs: copy every registered log to a report dir (printed), so a
# failure can be read after the temp dir is gone.
lib_save_logs() {
	local dir
	[ ${#LIB_LOGS[@]} -gt 0 ] || return 0
	dir=$(report_dir "$LIB_NAME-failed") || return 0
	lib_copy_logs "$dir" ""
	echo "$LIB_NAME: logs saved in $dir" >&2
}

# lib_copy_logs DIR PREFIX: every registered log to DIR/PREFIXLABEL.FILE.
lib_copy_logs() {
	local entry
	for entry in "${LIB_LOGS[@]}"; do
		[ -f "${entry#*=}" ] && cp "${entry#*=}" "$1/$2${entry%%=*}.$(basename "${entry#*=}")"
	done
	return 0
}

# lib_scrape_daemons: both daemons' /metrics into registered logs (KEEP_LOGS).
lib_scrape_daemons() {
	if [ -n "${SERVER_METRICS:-}" ]; then
		scrape "$SERVER_METRICS" >"$T/server-metrics.log"
		lib_log server-metrics "$T/server-metrics.log"
	fi
	if [ -n "${LOCAL_METRICS:-}" ]; then
		scrape "$LOCAL_METRICS" >"$T/local-metrics.log"
		lib_log local-metrics "$T/local-metrics.log"
	fi
}

# report_dir NAME: a new directory $REPORT_ROOT/NAME-YYYYmmdd-HHMMSS (printed).
report_dir() {
	local d
	d=${REPORT_ROOT:-$BUILD/reports}/$1-$(date -u +%Y%m%d-%H%M%S)
	mkdir -p "$d" && echo "$d"
}

# alive PID: the process exists (and is not a zombie of ours).
alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ]
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for the
# exit, then SIGKILL. Returns the process's exit status, or 124 when it had
# to be killed. Only for PIDs this shell started.
stop_pid() {
	local pid=$1 secs=${2:-10} rc=0
	kill -TERM "$pid" 2>/dev/null || true
	if ! poll "$secs" not_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		lib_untrack "$pid"
		return 124
	fi
	wait "$pid" 2>/dev/null || rc=$?
	lib_untrack "$pid"
	return "$rc"
}
not_alive() { ! alive "$1"; }

# stop_daemon PID [SECONDS]: SIGTERM and a bounded wait (default 15 s); the
# test fails if PID had to be killed. Its exit status is not checked.
stop_daemon() {
	local rc=0
	stop_pid "$1" "${2:-15}" || rc=$?
	[ "$rc" -ne 124 ] || die "pid $1 did not exit within ${2:-15} s of SIGTERM"
}

# kill_hard PID: SIGKILL and reap (a crash, for the fault suites).
kill_hard() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	lib_untrack "$1"
}

# reap PID: wait for a child that ends by itself (no signal; bound it with
# timeout or curl -m) and forget it. Returns its exit status.
reap() {
	local rc=0
	wait "$1" || rc=$?
	lib_untrack "$1"
	return "$rc"
}

# ---- waiting ---------------------------------------------------------------

now_ms() {
	local us=${EPOCHREALTIME//[!0-9]/}
	echo $((us / 1000))
}

# poll SECONDS CMD ARGS...: run CMD every 50 ms until it succeeds (0) or
# SECONDS pass (1).
poll() {
	local secs=$1 end
	shift
	end=$(($(now_ms) + $(awk -v s="$secs" 'BEGIN{printf "%d", s*1000}')))
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# wait_until WHAT SECONDS CMD ARGS...: poll CMD (output discarded) until it
# succeeds; after SECONDS the test fails, naming WHAT.
wait_until() {
	local what=$1 secs=$2
	shift 2
	poll "$secs" lib_quiet "$@" || die "timed out after ${secs}s waiting for $what"
}
lib_quiet() { "$@" >/dev/null 2>&1; }

# free_port: print a port that no TCP or UDP socket on the host uses, below
# the ephemeral range (32768 up, so no outgoing connection takes it in the
# meantime), never the same twice in one test (the counter is a file:
# callers use $(free_port)). One ss call, not a Python start (half a second
# on a loaded 2-core machine). Like any such pick it can race with a
# program that binds the port later.
free_port() {
	local p i
	[ -s "$T/next-port" ] || echo $((20000 + RANDOM % 8000)) >"$T/next-port"
	read -r p <"$T/next-port"
	for ((i = 0; i < 512; i++, p++)); do
		[ "$p" -lt 32768 ] || p=20000
		[ -z "$(ss -Htuan "sport = :$p" 2>/dev/null)" ] || continue
		echo $((p + 1)) >"$T/next-port"
		echo "$p"
		return 0
	done
	die "no free port below 32768"
}

# pick_ports VAR...: set each of the named variables that is empty to a
# free port, e.g. SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS
# HTTP_PORT before the start_* functions, which pick only the empty ones.
pick_ports() {
	local _v _p
	for _v in "$@"; do
		[ -z "${!_v:-}" ] || continue
		_p=$(free_port) || die "no free port for $_v"
		printf -v "$_v" '%s' "$_p"
	done
}

# listen_port WHAT LOG PID [SECONDS]: wait (default 10 s) for "listening on
# 127.0.0.1:PORT" in LOG (our tools bind port 0 and say so) and print PORT;
# fails the test if PID exits first or after SECONDS.
listen_port() {
	local what=$1 log=$2 pid=$3 secs=${4:-10} port end
	end=$(($(now_ms) + secs * 1000))
	while :; do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" 2>/dev/null | head -n 1)
		[ -n "$port" ] && echo "$port" && return 0
		alive "$pid" || die "$what exited before it reported its port"
		[ "$(now_ms)" -ge "$end" ] && die "$what did not report its port within ${secs}s"
		sleep 0.05
	done
}

tcp_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null || true)" ]; }
udp_bound() { [ -n "$(ss -Huan "sport = :$1" 2>/dev/null || true)" ]; }

# wait_for_tcp_port PORT [SECONDS] [PID] / wait_for_udp_port ...: poll for
# a listening socket; fail at once if PID (the process that should open
# it) has died.
wait_for_tcp_port() { wait_port tcp_listening "$@"; }
wait_for_udp_port() { wait_port udp_bound "$@"; }
wait_port() {
	local check=$1 port=$2 secs=${3:-10} pid=${4:-} end
	end=$(($(now_ms) + secs * 1000))
	while ! "$check" "$port"; do
		if [ -n "$pid" ] && ! alive "$pid"; then
			die "process $pid exited before it listened on port $port"
		fi
		[ "$(now_ms)" -ge "$end" ] && die "nothing listening on port $port after ${secs}s"
		sleep 0.05
	done
}

# ---- files and nginx -------------------------------------------------------

# size_bytes 16M -> 16777216 (K, M suffixes are powers of 1024).
size_bytes() {
	local s=$1
	case $s in
	*K) echo $((${s%K} * 1024)) ;;
	*M) echo $((${s%M} * 1024 * 1024)) ;;
	*) echo "$s" ;;
	esac
}

# gen_files DIR SIZE...: DIR/f_SIZE of random bytes each, and their sha256
# in DIR/SHA256SUMS ("HASH  f_SIZE"). sha_of NAME reads it back.
gen_files() {
	local dir=$1 s
	shift
	mkdir -p "$dir"
	for s in "$@"; do
		head -c "$(size_bytes "$s")" /dev/urandom >"$dir/f_$s"
	done
	(cd "$dir" && sha256sum f_* >SHA256SUMS)
}
sha_of() { awk -v n="f_$1" '$2 == n {print $1}' "$WWW/SHA256SUMS"; }

# start_nginx SIZE...: nginx (master_process off: one PID) as the current
# user under $T/nginx, serving f_SIZE files on 127.0.0.1:$NGINX_PORT (and
# [::1] on the same port when it can bind there: NGINX_V6=1). Sets WWW,
# NGINX_PORT, NGINX_PID. Extra files: add them to $WWW before fetching and
# run `(cd "$WWW" && sha256sum f_* >SHA256SUMS)`.
start_nginx() {
	local dir=$T/nginx user_line=
	command -v nginx >/dev/null || die "nginx not installed (scripts/deps.sh realistic)"
	WWW=$dir/www
	mkdir -p "$dir/logs" "$dir/tmp"
	gen_files "$WWW" "$@"
	NGINX_PORT=$(free_port)
	NGINX_V6=0
	python3 -c "import socket; s=socket.socket(socket.AF_INET6); s.bind(('::1', $NGINX_PORT))" \
		2>/dev/null && NGINX_V6=1
	# As root, workers would become 'nobody' and could not read $T (0700).
	[ "$(id -u)" = 0 ] && user_line='user root root;'
	cat >"$dir/nginx.conf" <<-EOF
		$user_line
		master_process off;
		worker_rlimit_nofile 4096;
		pid $dir/nginx.pid;
		error_log $dir/logs/error.log warn;
		events { worker_connections 1024; }
		http {
		    access_log $dir/logs/access.log;
		    client_body_temp_path $dir/tmp/body;
		    proxy_temp_path $dir/tmp/proxy;
		    fastcgi_temp_path $dir/tmp/fastcgi;
		    uwsgi_temp_path $dir/tmp/uwsgi;
		    scgi_temp_path $dir/tmp/scgi;
		    default_type application/octet-stream;
		    sendfile on;
		    keepalive_requests 10000;
		    keepalive_timeout 60s;
		    server {
		        listen 127.0.0.1:$NGINX_PORT;
		        $([ "$NGINX_V6" = 1 ] && echo "listen [::1]:$NGINX_PORT;")
		        root $WWW;
		    }
		}
	EOF
	nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/logs/stdout.log" 2>&1 &
	NGINX_PID=$!
	lib_track "$NGINX_PID" nginx "$dir/logs/error.log"
	lib_log nginx-stdout "$dir/logs/stdout.log"
	wait_for_tcp_port "$NGINX_PORT" 10 "$NGINX_PID"
}

url() { echo "http://${2:-127.0.0.1}:$NGINX_PORT/f_$1"; }

# check_file PATH NAME: PATH holds exactly f_NAME's bytes.
check_file() {
	local got want
	want=$(sha_of "$2")
	[ -n "$want" ] || die "no sha256 for $2"
	got=$(sha256sum <"$1" | cut -d' ' -f1)
	[ "$got" = "$want" ]
}

# fetch_direct NAME: curl straight from nginx (proves the harness).
fetch_direct() {
	local out=$T/direct.$$
	curl -sS --fail --max-time 30 -o "$out" "$(url "$1")" || die "direct fetch of $1 failed"
	check_file "$out" "$1" || die "direct fetch of $1: sha256 mismatch"
	rm -f "$out"
}

# fetch_verify NAME [HOST] [CURL_OPTS...]: curl --socks5-hostname through
# the local daemon ($LOCAL_PORT) for f_NAME (URL host HOST, default
# 127.0.0.1; "localhost" makes the server resolve a name), sha256 checked.
# Prints "NAME: BYTES bytes in SECONDS s" and returns 0, or says what went
# wrong and returns 1. FETCH_TIMEOUT bounds it (default 120 s).
fetch_verify() {
	local name=$1 host=${2:-127.0.0.1} out=$T/fetch.$BASHPID.$RANDOM rc=0 w
	shift $(($# >= 2 ? 2 : 1))
	w=$(curl -sS --fail --max-time "${FETCH_TIMEOUT:-120}" \
		--socks5-hostname "127.0.0.1:$LOCAL_PORT" -o "$out" \
		-w '%{size_download} %{time_total}' "$@" "$(url "$name" "$host")" 2>"$out.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "$LIB_NAME: fetch $name via $host: curl exit $rc: $(cat "$out.err")" >&2
		rm -f "$out" "$out.err"
		return 1
	fi
	if ! check_file "$out" "$name"; then
		echo "$LIB_NAME: fetch $name via $host: sha256 mismatch ($(stat -c %s "$out") bytes)" >&2
		rm -f "$out" "$out.err"
		return 1
	fi
	rm -f "$out" "$out.err"
	echo "$name: ${w% *} bytes in ${w#* } s"
}

# fetch_keepalive NAME...: one curl, several URLs, one reused connection;
# every body sha256 checked. Returns 0 or 1 like fetch_verify.
fetch_keepalive() {
	local args=() n i=0 rc=0 dir=$T/ka.$BASHPID.$RANDOM
	mkdir -p "$dir"
	for n in "$@"; do args+=(-o "$dir/$i.$n" "$(url "$n")") && i=$((i + 1)); done
	curl -sS --fail --max-time "${FETCH_TIMEOUT:-120}" \
		--socks5-hostname "127.0.0.1:$LOCAL_PORT" "${args[@]}" 2>"$dir/err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "$LIB_NAME: keep-alive fetch of $*: curl exit $rc: $(cat "$dir/err")" >&2
		rm -rf "$dir"
		return 1
	fi
	i=0
	for n in "$@"; do
		if ! check_file "$dir/$i.$n" "$n"; then
			echo "$LIB_NAME: keep-alive fetch: $n sha256 mismatch" >&2
			rm -rf "$dir"
			return 1
		fi
		i=$((i + 1))
	done
	rm -rf "$dir"
}

# start_http [ADDRESS]: python3's http.server (no nginx needed) serving
# $HTTP_DIR ($T/www) on ADDRESS (default 127.0.0.1), port $HTTP_PORT (chosen
# on the first call and kept: a second call with ::1 serves the same files
# there). Waits until it answers.
start_http() {
	local addr=${1:-127.0.0.1} host=${1:-127.0.0.1} log=$T/http.$LIB_STARTED.log
	[[ $addr == *:* ]] && host="[$addr]"
	HTTP_DIR=$T/www
	HTTP_PORT=${HTTP_PORT:-$(free_port)}
	mkdir -p "$HTTP_DIR"
	(cd "$HTTP_DIR" && exec python3 -m http.server "$HTTP_PORT" --bind "$addr") >"$log" 2>&1 &
	lib_track "$!" http "$log"
	wait_until "the web server on $host" 20 curl -sf -o /dev/null "http://$host:$HTTP_PORT/"
}

# tcurl CURL_ARGS...: curl through the local daemon ($LOCAL_PORT; names
# resolved by the server), bounded to 20 s (a later -m wins).
tcurl() { curl -sS -m 20 --socks5-hostname "127.0.0.1:$LOCAL_PORT" "$@"; }

# ---- the impairment relay --------------------------------------------------

# start_impair UPSTREAM_PORT [IMPAIR_ARGS...]: build/impair from a free
# port to 127.0.0.1:UPSTREAM_PORT. Sets IMPAIR_PID, IMPAIR_PORT,
# IMPAIR_LOG, IMPAIR_STATS.
start_impair() {
	local up=$1
	shift
	[ -x "$IMPAIR" ] || die "$IMPAIR not built (make $IMPAIR)"
	IMPAIR_LOG=$T/impair.$LIB_STARTED.log
	IMPAIR_STATS=$IMPAIR_LOG.stats
	"$IMPAIR" --listen 127.0.0.1:0 --upstream "127.0.0.1:$up" --stats-file "$IMPAIR_STATS" \
		"$@" 2>"$IMPAIR_LOG" &
	IMPAIR_PID=$!
	lib_track "$IMPAIR_PID" impair "$IMPAIR_LOG"
	IMPAIR_PORT=$(listen_port impair "$IMPAIR_LOG" "$IMPAIR_PID") || exit 1
}

# stop_impair: SIGTERM, wait for its counters (in $IMPAIR_STATS).
stop_impair() {
	stop_pid "$IMPAIR_PID" 10 || die "impair did not exit cleanly on SIGTERM"
}

# impair_counter DIR NAME: a counter from the stats file (after stop_impair).
impair_counter() { sed -n "s/^$1 .*\b$2=\([0-9]*\).*/\1/p" "$IMPAIR_STATS"; }

# ---- the daemons (their command lines live here and nowhere else) -------

# require_daemons: fail clearly when the daemons are not built yet.
require_daemons() {
	local b
	for b in "$KS_SERVER" "$KS_LOCAL"; do
		[ -x "$b" ] || die "$(basename "$b") not built ($b missing; make all)"
	done
}

b64key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
key_token() { grep -oE '(^|[^A-Za-z0-9_-])[A-Za-z0-9_-]{43}([^A-Za-z0-9_-]|$)' | grep -oE '[A-Za-z0-9_-]{43}' | head -n 1; }

# make_keys [USER [LINE...]]: server key pair, server config and one user.
# Sets SERVER_KEY, SERVER_CONF, SERVER_PUB, KS_USER, CONNSTR (the connection
# string made from the client config adduser printed; start_local points it
# elsewhere). Server config:
# allow list $SERVER_ALLOW (loopback only; the default deny holds loopback,
# where the web servers are), each LINE (e.g. "allow = [::1]:8080") in the
# [server] section, and a resolver that reads the hosts file only
# (resolver_lookups = files), so no DNS query leaves the machine. Fails if
# the key file is not mode 0600.
make_keys() {
	local user=${1:-alice} d=$T/keys out priv line psk
	shift $(($# >= 1 ? 1 : 0))
	mkdir -p "$d"
	KS_USER=$user
	SERVER_KEY=$d/server.key
	"$KS_SERVER" keygen --out "$d/server.key" >"$d/keygen.out" 2>&1 ||
		die "kcpsocks-server keygen failed: $(cat "$d/keygen.out")"
	[ "$(stat -c %a "$d/server.key")" = 600 ] || die "key file mode is not 0600"
	# The public key: a line naming it on stdout, or a .pub file beside.
	line=$(grep -i 'pub' "$d/keygen.out" "$d/server.key" "$d/server.key.pub" 2>/dev/null || true)
	SERVER_PUB=$(printf '%s\n' "$line" | key_token || true)
	[ -n "$SERVER_PUB" ] || die "no public key in keygen's output: $(cat "$d/keygen.out")"
	# The private key: the file holds it alone, or on a line naming it.
	priv=$(grep -i 'priv' "$d/server.key" 2>/dev/null | key_token || true)
	SERVER_CONF=$T/server.conf
	{
		echo "log_level = $KS_LOG_LEVEL"
		echo "log_target = stderr"
		echo "[server]"
		if [ -n "$priv" ]; then echo "private_key = $priv"; else echo "private_key_file = $d/server.key"; fi
		echo "allow = $SERVER_ALLOW"
		echo "resolver_lookups = files"
		for line in "$@"; do echo "$line"; done
	} >"$SERVER_CONF"
	"$KS_SERVER" adduser "$user" --config "$SERVER_CONF" >"$d/adduser.out" 2>&1 ||
		die "kcpsocks-server adduser failed: $(cat "$d/adduser.out")"
	CONNSTR=$(grep -oE "kcpsocks://[^[:space:]'\"]+" "$d/adduser.out" | head -n 1 || true)
	# adduser prints the client's config file (no connection string): the
	# tests still pass one on the command line, made from its keys.
	if [ -z "$CONNSTR" ]; then
		psk=$(sed -n 's/^psk = //p' "$d/adduser.out" | head -n 1)
		line=$(sed -n 's/^server_public_key = //p' "$d/adduser.out" | head -n 1)
		[ -n "$psk" ] && [ -n "$line" ] && CONNSTR="kcpsocks://$user:$psk@127.0.0.1:1?key=$line"
	fi
	[ -n "$CONNSTR" ] || die "no keys in adduser's output: $(cat "$d/adduser.out")"
	# adduser prints the user; add the section ourselves if it did not.
	if ! grep -q "^\[user $user\]" "$SERVER_CONF"; then
		psk=${CONNSTR#kcpsocks://*:}
		psk=${psk%%@*}
		printf '[user %s]\npsk = %s\n' "$user" "$psk" >>"$SERVER_CONF"
	fi
}

# start_long_download: a 1 GiB fetch through the tunnel, rate-limited so it
# runs for minutes (bounded by -m 120), into $T/dl.out; sets DL_OUT and
# DL_PID (tracked) and returns once 100 kB have arrived.
start_long_download() {
	DL_OUT=$T/dl.out
	curl -sS -m 120 --limit-rate 3M --socks5-hostname "127.0.0.1:$LOCAL_PORT" \
		-o "$DL_OUT" "$(url 1G)" 2>"$T/dl.err" &
	DL_PID=$!
	lib_track "$DL_PID" download
	wait_until "the download to start" 10 long_download_started
}
long_download_started() { [ -s "$DL_OUT" ] && [ "$(stat -c %s "$DL_OUT")" -gt 100000 ]; }

# add_load_users N FILE: N users load0..load(N-1) with fresh PSKs for
# kcpsocks-load: "NAME PSK" lines into FILE (its --users) and a [user]
# section each appended to $SERVER_CONF (after make_keys).
add_load_users() {
	python3 - "$1" "$2" >>"$SERVER_CONF" <<'PY'
import base64, os, sys
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[1])):
        psk = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        f.write("load%d %s\n" % (i, psk))
        print("[user load%d]\npsk = %s" % (i, psk))
PY
}

# start_server [EXTRA_ARGS...]: kcpsocks-server on 127.0.0.1:$SERVER_PORT
# (UDP; chosen on the first call and kept, so a restart uses the same
# port), metrics on 127.0.0.1:$SERVER_METRICS. Sets SERVER_PID, SERVER_LOG.
start_server() {
	SERVER_PORT=${SERVER_PORT:-$(free_port)}
	SERVER_METRICS=${SERVER_METRICS:-$(free_port)}
	SERVER_LOG=$T/server.$LIB_STARTED.log
	"$KS_SERVER" --config "$SERVER_CONF" --listen "127.0.0.1:$SERVER_PORT" \
		--metrics_listen "127.0.0.1:$SERVER_METRICS" "$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	echo "$SERVER_PID" >"$T/server.pid"
	lib_track "$SERVER_PID" kcpsocks-server "$SERVER_LOG"
	wait_for_udp_port "$SERVER_PORT" "${DAEMON_START_S:-20}" "$SERVER_PID"
	wait_for_tcp_port "$SERVER_METRICS" "${DAEMON_START_S:-20}" "$SERVER_PID"
}

# local_connstr UDP_PORT [PROFILE]: the connection string adduser printed,
# pointed at 127.0.0.1:UDP_PORT, with PROFILE (when given) for its own.
local_connstr() {
	local cs
	cs=$(printf '%s' "$CONNSTR" | sed -e "s#@[^?]*?#@127.0.0.1:$1?#" -e 's#&profile=[^&]*##')
	[ -n "${2:-}" ] && cs="$cs&profile=$2"
	echo "$cs"
}

# start_local UDP_PORT [PROFILE] [EXTRA_ARGS...]: kcpsocks-local whose
# connection string points at 127.0.0.1:UDP_PORT (the relay, or the server
# itself), SOCKS5 on 127.0.0.1:$LOCAL_PORT (chosen once, kept across
# restarts), metrics on 127.0.0.1:$LOCAL_METRICS. Sets LOCAL_PID, LOCAL_LOG
# (this instance's log alone). Waits for its ports, not for its session
# (wait_session).
start_local() {
	local target=$1 profile=${2:-} cs
	shift $(($# >= 2 ? 2 : 1))
	LOCAL_PORT=${LOCAL_PORT:-$(free_port)}
	LOCAL_METRICS=${LOCAL_METRICS:-$(free_port)}
	LOCAL_LOG=$T/local.$LIB_STARTED.log
	cs=$(local_connstr "$target" "$profile")
	"$KS_LOCAL" --connect "$cs" --listen "127.0.0.1:$LOCAL_PORT" \
		--metrics_listen "127.0.0.1:$LOCAL_METRICS" --log_level "$KS_LOG_LEVEL" \
		"$@" >"$LOCAL_LOG" 2>&1 &
	LOCAL_PID=$!
	echo "$LOCAL_PID" >"$T/local.pid"
	lib_track "$LOCAL_PID" kcpsocks-local "$LOCAL_LOG"
	wait_for_tcp_port "$LOCAL_PORT" "${DAEMON_START_S:-20}" "$LOCAL_PID"
	wait_for_tcp_port "$LOCAL_METRICS" "${DAEMON_START_S:-20}" "$LOCAL_PID"
}

# wait_session [SECONDS]: wait (default 10 s) until the local daemon
# started last logs its session as established.
wait_session() {
	wait_until "the local session" "${1:-10}" grep -q 'session .* established' "$LOCAL_LOG"
}

# start_stack [PROFILE] [IMPAIR_ARGS...]: keys, server, relay, local.
start_stack() {
	local profile=${1:-}
	shift $(($# >= 1 ? 1 : 0))
	make_keys
	start_server
	start_impair "$SERVER_PORT" "$@"
	start_local "$IMPAIR_PORT" "$profile"
}

# fetch_try NAME: one quick attempt (FETCH_TRY_S, default 1.5 s) to fetch
# f_NAME through the tunnel intact; quiet. For polling after a fault.
fetch_try() {
	local out=$T/try.$BASHPID
	curl -s --fail --max-time "${FETCH_TRY_S:-1.5}" --socks5-hostname "127.0.0.1:$LOCAL_PORT" \
		-o "$out" "$(url "$1")" 2>/dev/null && check_file "$out" "$1"
	local rc=$?
	rm -f "$out"
	return "$rc"
}

# time_to_fetch SECONDS NAME: poll fetch_try until it works; prints the ms
# it took, or fails the test after SECONDS.
time_to_fetch() {
	local t0
	t0=$(now_ms)
	poll "$1" fetch_try "$2" || die "no fetch of $2 through the tunnel within $1 s"
	echo $(($(now_ms) - t0))
}

# ---- resources and metrics ---------------------------------------------------

# rss_kb PID, fd_count PID: VmRSS in kB and open fds (0 when PID is gone).
# Builtins only: the sampler calls them every second on a loaded machine.
rss_kb() {
	local k v _
	if [ -r "/proc/$1/status" ]; then
		while read -r k v _; do
			[ "$k" = VmRSS: ] && echo "$v" && return 0
		done <"/proc/$1/status" 2>/dev/null
	fi
	echo 0
}
fd_count() {
	local fds
	fds=("/proc/$1/fd"/*)
	[ -e "${fds[0]}" ] || fds=()
	echo "${#fds[@]}"
}

# scrape PORT: the /metrics text (empty on failure, bounded to 2 s).
scrape() { curl -sS --max-time "${SCRAPE_TIMEOUT:-2}" "http://127.0.0.1:$1/metrics" 2>/dev/null || true; }
healthz() { curl -sS --fail --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

# metric PORT NAME [LABEL]: the first sample of NAME scraped now, as
# exported (labels ignored, or the first whose labels contain LABEL, e.g.
# 'reason="superseded"'); empty if none.
metric() {
	scrape "$1" | awk -v n="$2" -v l="${3:-}" '
		{ split($1, a, "{") } !d && a[1] == n && (l == "" || index($1, l)) { print $2; d = 1 }'
}

# metric_from TEXT_FILE AGG NAMES...: sum (AGG=sum) or max (AGG=max) of
# every sample of the named families (labels ignored); empty if none.
metric_from() {
	local file=$1 agg=$2
	shift 2
	awk -v agg="$agg" -v names="$*" '
		BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		/^#/ { next }
		{ name = $1; sub(/\{.*/, "", name)
		  if (!(name in want)) next
		  v = $NF + 0; found = 1
		  if (agg == "max") { if (!seen || v > r) r = v; seen = 1 } else r += v }
		END { if (found) printf "%.17g\n", r }' "$file"
}

# metric_guess TEXT_FILE REGEX: names of the families matching REGEX.
metric_guess() {
	awk '/^#/ {next} {n = $1; sub(/\{.*/, "", n); print n}' "$1" | grep -E "$2" | sort -u
}

# metric_value PORT AGG VAR: the value of the family list in variable VAR
# (e.g. METRIC_RTT), scraped now; see metric_value_in.
metric_value() {
	local f=$T/scrape.$BASHPID
	scrape "$1" >"$f"
	metric_value_in "$f" "$2" "$3"
	rm -f "$f"
}

# metric_value_in TEXT_FILE AGG VAR: the same from a saved scrape; falls
# back to the families matching ${VAR}_GUESS (see above), saying so once.
declare -A LIB_GUESSED=()
metric_value_in() {
	local f=$1 agg=$2 var=$3 v guess names
	v=$(metric_from "$f" "$agg" ${!var})
	guess=${var}_GUESS
	if [ -z "$v" ] && [ -n "${!guess:-}" ]; then
		names=$(metric_guess "$f" "${!guess}" | grep -v -E 'var|min|max' | tr '\n' ' ' || true)
		if [ -n "$names" ]; then
			[ -z "${LIB_GUESSED[$var]:-}" ] &&
				echo "$LIB_NAME: note: $var (${!var}) not exported; using $names" >&2
			LIB_GUESSED[$var]=1
			v=$(metric_from "$f" "$agg" $names)
		fi
	fi
	echo "$v"
}

# ---- load: concurrent curl clients -----------------------------------------

# The request mix of load_start: file sizes drawn uniformly from this list
# (repeats weight it towards small files). start_nginx must serve them all.
LOAD_MIX=${LOAD_MIX:-1K 1K 4K 16K 16K 64K 256K 1M 4M 8M}
LOAD_PIDS=()

# load_start CLIENTS SECONDS DIR: CLIENTS background loops, each until
# SECONDS from now or load_stop DIR: pick 1 to 3 files from LOAD_MIX and fetch them in one
# curl through the SOCKS5 daemon (one file: a new connection; several: one
# reused keep-alive connection), then check every body's sha256. Each
# client appends "START_MS END_MS RESULT FILES" lines to DIR/cN.log, RESULT
# ok, bad (a body of the right size did not match: corruption), short (curl
# said 0 but a body is short) or curl=EXIT (the first failed transfer's,
# --fail-early). A curl that moves less than
# 1 byte/s for LOAD_STALL_S (default 15) seconds gives up with exit 28:
# that is what a hung stream looks like. LOAD_MAXTIME (default 90) bounds
# each curl.
load_start() {
	local n=$1 end i
	end=$(($(now_ms) + $2 * 1000))
	mkdir -p "$3"
	for ((i = 0; i < n; i++)); do
		load_client "$i" "$end" "$3" &
		LOAD_PIDS+=("$!")
		lib_track "$!" "client$i"
	done
}

load_client() {
	local id=$1 end=$2 dir=$3 mix k j rc t0 names args res
	read -r -a mix <<<"$LOAD_MIX"
	RANDOM=$((id * 7919 + ${SEED:-1}))
	while [ "$(now_ms)" -lt "$end" ] && [ ! -e "$dir/stop" ]; do
		k=$((RANDOM % 2 ? 1 : 2 + RANDOM % 2))
		names=()
		args=()
		for ((j = 0; j < k; j++)); do
			names+=("${mix[RANDOM % ${#mix[@]}]}")
			args+=(-o "$dir/c$id.$j" "$(url "${names[j]}")")
		done
		t0=$(now_ms)
		rc=0
		curl -sS --fail --fail-early --max-time "${LOAD_MAXTIME:-90}" --speed-limit 1 \
			--speed-time "${LOAD_STALL_S:-15}" --socks5-hostname "127.0.0.1:$LOCAL_PORT" \
			"${args[@]}" 2>>"$dir/c$id.err" || rc=$?
		res=ok
		if [ "$rc" -ne 0 ]; then
			res=curl=$rc
		else
			for ((j = 0; j < k; j++)); do
				if [ "$(stat -c %s "$dir/c$id.$j" 2>/dev/null)" != "$(size_bytes "${names[j]}")" ]; then
					res=short
				elif ! check_file "$dir/c$id.$j" "${names[j]}"; then
					res=bad
				fi
			done
		fi
		rm -f "$dir/c$id".[0-9]
		echo "$t0 $(now_ms) $res ${names[*]}" >>"$dir/c$id.log"
	done
}

# load_stop DIR: the clients of DIR start no new request (see load_wait).
load_stop() { touch "$1/stop"; }

# load_wait SECONDS: wait for every client loop to end (bounded). Fails if
# one is still running after SECONDS.
load_wait() {
	local p
	for p in "${LOAD_PIDS[@]}"; do
		poll "$1" not_alive "$p" || die "load client $p still running after $1 s (a hung transfer)"
		wait "$p" 2>/dev/null || true
	done
	LOAD_PIDS=()
}

# load_count DIR [FROM_MS TO_MS]: sets LOAD_OK, LOAD_BAD, LOAD_FAIL,
# LOAD_HUNG (curl exit 28) over the requests that started at or after FROM
# and ended at or before TO (default: all), and LOAD_BYTES (bytes of the
# ok ones).
load_count() {
	local r
	r=$(cat "$1"/c*.log 2>/dev/null | awk -v from="${2:-0}" -v to="${3:-99999999999999}" '
		function bytes(s) { n = s + 0; if (s ~ /K$/) n *= 1024; if (s ~ /M$/) n *= 1048576; return n }
		$1 < from || $2 > to { next }
		$3 == "ok" { ok++; for (i = 4; i <= NF; i++) b += bytes($i); next }
		$3 == "bad" { bad++; next }
		$3 == "curl=28" { hung++ }
		{ fail++ }
		END { printf "%d %d %d %d %d\n", ok, bad, fail, hung, b }')
	read -r LOAD_OK LOAD_BAD LOAD_FAIL LOAD_HUNG LOAD_BYTES <<<"$r"
}

# load_failures DIR: the lines of failed requests and curl's messages.
load_failures() {
	grep -h -v ' ok ' "$1"/c*.log 2>/dev/null | head -n 20 || true
	cat "$1"/c*.err 2>/dev/null | sort | uniq -c | sort -rn | head -n 10 || true
}

# ---- sampling ------------------------------------------------------------

SAMPLE_HEADER=t_s,local_rtt_ms,server_rtt_ms,local_retrans,server_retrans,local_rss_kb,server_rss_kb,local_fds,server_fds

# sampler_start CSV: every second, one row of SAMPLE_HEADER (NaN for a
# metric the daemon does not export) until sampler_stop. Reads
# LOCAL_PID/SERVER_PID and the metrics ports when each row is taken, so
# a restarted daemon is followed.
sampler_start() {
	echo "$SAMPLE_HEADER" >"$1"
	sampler_loop "$1" &
	SAMPLER_PID=$!
	lib_track "$SAMPLER_PID" sampler
}
sampler_loop() {
	local csv=$1 t0 t lp sp lm=$T/sample.local sm=$T/sample.server vals
	t0=$(now_ms)
	while :; do
		t=$(($(now_ms) - t0))
		lp=$(<"$T/local.pid")
		sp=$(<"$T/server.pid")
		: >"$lm"
		: >"$sm"
		curl -s --parallel --max-time 0.8 -o "$lm" "http://127.0.0.1:$LOCAL_METRICS/metrics" \
			-o "$sm" "http://127.0.0.1:$SERVER_METRICS/metrics" 2>/dev/null || true
		vals=$(sample_metrics "$lm" "$sm")
		printf '%d.%03d,%s,%s,%s,%s,%s\n' $((t / 1000)) $((t % 1000)) "$vals" \
			"$(rss_kb "$lp")" "$(rss_kb "$sp")" "$(fd_count "$lp")" "$(fd_count "$sp")" >>"$csv"
		t=$(($(now_ms) - t0))
		sleep "0.$(printf %03d $((999 - t % 1000)))"
	done
}

# sample_metrics LOCAL_SCRAPE SERVER_SCRAPE: "rtt_l,rtt_s,retx_l,retx_s"
# in one awk (the sampler's budget is one second), the same names and
# fallbacks as metric_value_in; NaN where absent.
sample_metrics() {
	awk -v rtt="$METRIC_RTT" -v rttg="$METRIC_RTT_GUESS" -v retx="$METRIC_RETRANS" \
		-v retxg="$METRIC_RETRANS_GUESS" '
		BEGIN { split(rtt, a, " "); for (i in a) W["rtt", a[i]] = 1
			split(retx, a, " "); for (i in a) W["retx", a[i]] = 1 }
		{ f = (FILENAME == ARGV[1]) ? 1 : 2 }
		/^#/ { next }
		{ n = $1; sub(/\{.*/, "", n); v = $NF + 0
		  add(f, "rtt", n, n ~ /_seconds$/ ? v * 1000 : v, rttg, "max")
		  add(f, "retx", n, v, retxg, "sum") }
		function add(f, k, n, v, g, agg) {
			if ((k, n) in W) { put(f, k, "x", v, agg); return }
			if (n ~ g && n !~ /var|min|max/) put(f, k, "g", v, agg)
		}
		function put(f, k, how, v, agg) {
			if (!((f, k, how) in R)) R[f, k, how] = v
			else if (agg == "max") { if (v > R[f, k, how]) R[f, k, how] = v }
			else R[f, k, how] += v
		}
		function get(f, k) {
			if ((f, k, "x") in R) return R[f, k, "x"]
			if ((f, k, "g") in R) return R[f, k, "g"]
			return "NaN"
		}
		END { printf "%s,%s,%s,%s\n", get(1, "rtt"), get(2, "rtt"), get(1, "retx"), get(2, "retx") }
	' "$1" "$2"
}
sampler_stop() { stop_pid "$SAMPLER_PID" 5 || true; }
nan() { if [ -n "$1" ]; then echo "$1"; else echo NaN; fi; }

# csv_max CSV COLUMN FROM_S TO_S: the largest value of COLUMN (a name from
# SAMPLE_HEADER) in rows with FROM_S <= t_s <= TO_S; empty if none.
csv_max() {
	awk -F, -v col="$2" -v from="$3" -v to="$4" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		$1 + 0 >= from && $1 + 0 <= to && $c != "NaN" && $c != "" {
			if (!seen || $c + 0 > m) m = $c + 0; seen = 1 }
		END { if (seen) print m }' "$1"
}

# csv_first_after CSV COLUMN T_S: COLUMN of the first row at or after T_S.
csv_first_after() {
	awk -F, -v col="$2" -v from="$3" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		$1 + 0 >= from && $c != "NaN" { print $c; exit }' "$1"
}
