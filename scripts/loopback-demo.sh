#!/usr/bin/env bash
# loopback-demo.sh BUILD - `make run`: the whole tunnel on 127.0.0.1.
#
# Makes a fresh server key and user in a temp dir, starts kcpsocks-server
# (loopback destinations allowed) and kcpsocks-local on free loopback
# ports, serves a generated page with nginx (if installed, unless
# DEMO_WEB=python) or python3's http.server, fetches it through the tunnel with curl --socks5-hostname,
# prints what it measured, then keeps running until Ctrl-C / SIGTERM and
# stops both daemons cleanly. DEMO_ONESHOT=1 exits after the proof.
# Builds nothing (make did). Kills only the processes it started.
set -euo pipefail
build=${1:-build}
server_bin=$build/kcpsocks-server
local_bin=$build/kcpsocks-local
for t in curl python3 sha256sum; do
	command -v "$t" >/dev/null || { echo "loopback-demo: needs $t" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
http_pid= server_pid= local_pid=
cleanup() {
	local rc=$?
	for p in "$local_pid" "$server_pid"; do
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
	done
	for p in "$local_pid" "$server_pid"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

die() {
	echo "loopback-demo: $*" >&2
	for f in server local http; do
		[ -s "$tmp/$f.log" ] && { echo "--- $f log" >&2; tail -n 20 "$tmp/$f.log" >&2; }
	done
	exit 1
}

# free_ports KIND...: for each KIND (tcp or udp) a port the kernel has just
# handed out on 127.0.0.1 (all held until every one is picked, so they
# differ), one python start for all.
free_ports() {
	python3 -c 'import socket,sys
ss=[socket.socket(socket.AF_INET, socket.SOCK_STREAM if k=="tcp" else socket.SOCK_DGRAM) for k in sys.argv[1:]]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$@"
}

# wait_for WHAT CMD...: poll CMD for up to 10 s.
wait_for() {
	local what=$1
	shift
	for _ in $(seq 200); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "timed out waiting for $what"
}

# 1. keys and config
"$server_bin" keygen --out "$tmp/server.key" >"$tmp/keygen.out"
pub=$(sed -n 's/^public key: //p' "$tmp/keygen.out")
read -r udp_port socks_port smetrics_port lmetrics_port http_port < <(free_ports udp tcp tcp tcp tcp)
cat >"$tmp/server.conf" <<EOF
metrics_listen = 127.0.0.1:$smetrics_port
[server]
listen = 127.0.0.1:$udp_port
private_key_file = $tmp/server.key
allow = 127.0.0.0/8
EOF
chmod 600 "$tmp/server.conf" # it will hold the user's psk
# adduser appends the [user demo] section and writes the client's config.
"$server_bin" adduser demo -c "$tmp/server.conf" --host 127.0.0.1 \
	--client-config "$tmp/demo.conf" >>"$tmp/server.conf" 2>"$tmp/adduser.err" ||
	die "adduser failed: $(cat "$tmp/adduser.err")"

# 2. the page
mkdir -p "$tmp/www"
head -c 1048576 /dev/urandom >"$tmp/www/page.bin"
printf '<html><body><h1>kcpsocks loopback demo</h1><a href="page.bin">1 MiB</a></body></html>\n' \
	>"$tmp/www/index.html"
want=$(sha256sum <"$tmp/www/page.bin" | cut -d' ' -f1)
if command -v nginx >/dev/null 2>&1 && [ "${DEMO_WEB:-}" != python ]; then
	# nginx workers may run as another user: they must reach the page.
	chmod 711 "$tmp"
	chmod -R a+rX "$tmp/www"
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx.conf" <<EOF
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
	access_log off;
	client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx;
	fastcgi_temp_path $tmp/nginx; uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
	server { listen 127.0.0.1:$http_port; root $tmp/www; }
}
EOF
	nginx -e "$tmp/nginx/error.log" -c "$tmp/nginx.conf" -p "$tmp/nginx" >"$tmp/http.log" 2>&1 &
	web=nginx
else
	(cd "$tmp/www" && exec python3 -m http.server "$http_port" --bind 127.0.0.1) \
		>"$tmp/http.log" 2>&1 &
	web="python3 http.server"
fi
http_pid=$!
pids+=("$http_pid")

# 3. the daemons
"$server_bin" --config "$tmp/server.conf" >"$tmp/server.log" 2>&1 &
server_pid=$!
wait_for "kcpsocks-server" grep -q 'kcpsocks-server .*: UDP' "$tmp/server.log"
"$local_bin" -c "$tmp/demo.conf" --listen "127.0.0.1:$socks_port" \
	--metrics_listen "127.0.0.1:$lmetrics_port" >"$tmp/local.log" 2>&1 &
local_pid=$!
wait_for "the session" grep -q 'established' "$tmp/local.log"
wait_for "$web" curl -sf -o /dev/null "http://127.0.0.1:$http_port/index.html"

# 4. the proof
page="http://127.0.0.1:$http_port/page.bin"
direct=$(curl -s -o /dev/null -w '%{time_starttransfer}' "$page")
read -r size ttfb total < <(curl -s --socks5-hostname "127.0.0.1:$socks_port" -o "$tmp/got.bin" \
	-w '%{size_download} %{time_starttransfer} %{time_total}\n' "$page") ||
	die "curl through the tunnel failed"
got=$(sha256sum <"$tmp/got.bin" | cut -d' ' -f1)
srtt=$(curl -s "http://127.0.0.1:$smetrics_port/metrics" |
	awk '/^kcpsocks_session_srtt_seconds\{/ { printf "%d\n", $2 * 1000; exit }')
[ "$got" = "$want" ] || die "sha256 mismatch: got $got, want $want"
cat <<EOF
kcpsocks loopback demo ($web on 127.0.0.1:$http_port)
  fetched           $size bytes through the tunnel, sha256 ok
  time to 1st byte  ${ttfb}s (direct, no tunnel: ${direct}s)
  total time        ${total}s
  session srtt      ${srtt:-?} ms (server metrics)

Try it:
  curl --socks5-hostname 127.0.0.1:$socks_port http://127.0.0.1:$http_port/
  curl -s http://127.0.0.1:$smetrics_port/metrics   # server metrics
  curl -s http://127.0.0.1:$lmetrics_port/metrics   # local metrics
EOF
if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
	exit 0
fi
echo "Running; Ctrl-C stops both daemons."
wait "$local_pid" "$server_pid" || true
