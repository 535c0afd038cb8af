#!/usr/bin/env bash
# fault_rebind.sh - NAT rebinding every REBIND_S (5 s) during a long
# download: the relay moves its upstream socket to a new source port, so
# the server sees the client's datagrams come from a new address (and its
# replies to the old one are lost, as behind a real NAT). The download
# (24 MiB at REBIND_RATE bytes/s, so about 16 s: at least 2 rebinds) must
# complete intact, and the session must survive: the server's handshake
# counter (METRIC_HANDSHAKES, $METRIC_HANDSHAKES) stays at 1.
. "$(dirname "$0")/lib.sh"
lib_init fault_rebind
require_daemons

REBIND_S=${REBIND_S:-5}
REBIND_RATE=${REBIND_RATE:-1500000}

start_nginx 1K 24M
start_stack default --delay 5 --rate "$REBIND_RATE" --rebind-every "$REBIND_S"
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"

# handshakes: the server's handshake count now (must be 1 and stay 1).
handshakes() {
	local v
	v=$(metric_value "$SERVER_METRICS" sum METRIC_HANDSHAKES)
	if [ -z "$v" ]; then
		scrape "$SERVER_METRICS" >"$T/metrics.txt"
		die "the server exports no $METRIC_HANDSHAKES (set METRIC_HANDSHAKES);" \
			"handshake-like families: $(metric_guess "$T/metrics.txt" 'hands|hs_|session' | tr '\n' ' ')"
	fi
	echo "${v%.*}"
}
[ "$(handshakes)" = 1 ] || die "handshakes before the download: $(handshakes), want 1"

FETCH_TIMEOUT=120 fetch_verify 24M || die "download across rebinds failed"
n=$(grep -c ' from 127' "$IMPAIR_LOG")
[ "$n" -ge 3 ] || die "only $((n - 1)) rebinds happened during the download; make it longer"
hs=$(handshakes)
[ "$hs" = 1 ] || die "the server counted $hs handshakes: a rebind cost a new session"
note "24 MiB intact across $((n - 1)) rebinds, still one handshake"
fetch_verify 1K >/dev/null || die "a new request after the rebinds failed"
stop_impair
note "relay: $(sed -n 's/^relay //p' "$IMPAIR_STATS")"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note ok
