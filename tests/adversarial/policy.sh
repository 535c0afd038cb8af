#!/usr/bin/env bash
# policy.sh - issue 14 attack 5: the default destination policy refuses the
# exit host's own interface addresses (`self`, kept current while the
# server runs) and every IANA special-purpose block, with SOCKS5 reply 02
# and before any connection is attempted.
#
# The script re-runs itself in a network namespace of its own (unshare -n:
# only a loopback device, no route out), gives that loopback two
# "public-looking" addresses as the host's own (SELF4, SELF6) and serves a
# page on them. Every datagram and connection stays inside the namespace,
# so even a broken policy could send nothing to the outside. Without
# network namespaces (not root, no user namespaces) it falls back to the
# host's own global addresses and checks only that they are refused (a
# refusal happens before connect(); the allowed control case is skipped
# there, since it would connect to a non-loopback address).
set -euo pipefail
if [ -z "${POLICY_IN_NETNS:-}" ] && unshare -n true 2>/dev/null; then
	exec unshare -n env POLICY_IN_NETNS=1 bash "$0" "$@"
fi
KS_LOG_LEVEL=debug
. "$(dirname "$0")/../integration/lib.sh"
lib_init adversarial_policy
require_daemons

SELF4=203.0.114.7
SELF6=2001:4860::7
LATE4=203.0.114.9
netns=${POLICY_IN_NETNS:-}
if [ -n "$netns" ]; then
	ip link set lo up
	ip addr add "$SELF4/32" dev lo
	ip addr add "$SELF6/128" dev lo nodad
	note "in a network namespace of our own; own addresses $SELF4 and $SELF6"
else
	SELF4=$(ip -o -4 addr show scope global | awk '{sub(/\/.*/, "", $4); print $4; exit}')
	SELF6=$(ip -o -6 addr show scope global | awk '{sub(/\/.*/, "", $4); print $4; exit}')
	[ -n "$SELF4$SELF6" ] || { note "SKIP: no network namespace and no non-loopback address"; exit 0; }
	note "no network namespace: using the host's own addresses ${SELF4:-none} ${SELF6:-none}"
fi
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

expect_rep() { # URL REP WHAT
	local out
	out=$(tcurl -o /dev/null "$1" 2>&1) && die "$3: curl succeeded"
	case $out in *"($2)"*) ok "$3 -> REP $2" ;; *) die "$3: want REP $2, curl said: $out" ;; esac
}
# http_hits: GET requests the web servers logged so far.
http_hits() { cat "$T"/http.*.log 2>/dev/null | grep -c '"GET ' || true; }
restart_pair() { # SERVER_ARGS...: both daemons again (same ports)
	stop_daemon "$LOCAL_PID"
	stop_daemon "$SERVER_PID"
	start_server "$@"
	start_local "$SERVER_PORT"
	wait_session
}

make_keys alice
start_http 127.0.0.1
[ -n "$netns" ] && start_http "$SELF4" && start_http "$SELF6"
start_server
start_local "$SERVER_PORT"
wait_session
tcurl -o /dev/null "http://127.0.0.1:$HTTP_PORT/" || die "the tunnel does not work (127.0.0.1 allowed)"
ok "the tunnel works to an allowed destination"
grep -q "own interface address" "$SERVER_LOG" || die "the server logged no own addresses"

# 1. the host's own addresses, refused by default with REP 02 and no
# connection (the web server on them logs nothing new).
hits=$(http_hits)
[ -n "$SELF4" ] && expect_rep "http://$SELF4:$HTTP_PORT/" 2 "own address $SELF4 (default deny)"
[ -n "$SELF6" ] && expect_rep "http://[$SELF6]:$HTTP_PORT/" 2 "own address $SELF6 (default deny)"
[ "$(http_hits)" = "$hits" ] || die "a refused destination reached the web server"
[ "$(grep -c 'destination policy' "$SERVER_LOG")" -ge 1 ] || die "no 'destination policy' in the server log"
ok "own addresses refused before any connection"
if [ -z "$netns" ]; then
	ok "fallback run done (special-purpose blocks are covered by test_config)"
	exit 0
fi

# 2. one address of each special-purpose block added by issue 14 (no
# route leaves this namespace: a policy miss would be REP 03, not 02).
for a in 192.0.0.8 192.0.2.1 198.18.0.1 198.19.255.254 198.51.100.1 203.0.113.1 \
	'[::102:304]' '[64:ff9b:1::1]' '[2002:c000:201::1]' '[fec0::1]' '[2001:db8::1]' \
	'[::ffff:198.51.100.1]'; do
	expect_rep "http://$a:$HTTP_PORT/" 2 "special-purpose $a"
done

# 3. `self` alone refuses them (not some block they happen to be in), and
# an address that appears while the server runs is refused from then on.
restart_pair --deny self
expect_rep "http://$SELF4:$HTTP_PORT/" 2 "own address with deny = self"
expect_rep "http://[$SELF6]:$HTTP_PORT/" 2 "own IPv6 address with deny = self"
ip addr add "$LATE4/32" dev lo
start_http "$LATE4"
late_refused() {
	local out
	out=$(tcurl -o /dev/null "http://$LATE4:$HTTP_PORT/" 2>&1) && return 1
	case $out in *"(2)"*) return 0 ;; *) return 1 ;; esac
}
wait_until "the address added at run time to be refused" 10 late_refused
ok "an own address added while the server runs is refused (re-read)"

# 4. control: a deny list without `self` lets the same request through, so
# what refused it above was the policy.
restart_pair --deny 10.0.0.0/8
tcurl -o "$T/got.html" "http://$SELF4:$HTTP_PORT/" || die "own address with self removed from deny"
ok "with self left out of deny the same destination connects (control)"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
ok "all checks passed"
