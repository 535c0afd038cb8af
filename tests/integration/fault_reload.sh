#!/usr/bin/env bash
# fault_reload.sh - SIGHUP reloads the server's users and destination
# policy (issue 17, docs/OPERATIONS.md "Reload").
#
# Users alice and bob with sessions up, alice downloading (rate-limited, so
# the download spans the reload). The config is edited: bob removed, carol
# added, the allow rule narrowed from 127.0.0.0/8 to the web server's port
# so that a second loopback port falls to the default deny. SIGHUP:
#   - alice's download completes intact on the same session (one
#     handshake, kcpsocks_handshakes_ok_total unchanged by the reload);
#   - bob's session is closed;
#   - carol connects;
#   - the second port gets SOCKS5 REP 02 (it got 05, refused, before);
#   - the log says "reloaded: 2 users (+1 -1), policy ..."
# Then a broken config and SIGHUP: the error is logged, nothing changes;
# a restart-only change (max_sessions) is logged as needing a restart.
. "$(dirname "$0")/lib.sh"
lib_init fault_reload
require_daemons

start_nginx 1K 8M
make_keys alice
ALICE_CS=$CONNSTR
# adduser_cs NAME: a new user's [user NAME] section into $T/NAME.section,
# its connection string on stdout.
adduser_cs() {
	local psk
	"$KS_SERVER" adduser "$1" --config "$SERVER_CONF" >"$T/$1.add" 2>&1 ||
		die "adduser $1: $(cat "$T/$1.add")"
	psk=$(sed -n 's/^psk = //p' "$T/$1.add" | head -n 1)
	[ -n "$psk" ] || die "adduser $1: no psk"
	printf '[user %s]\npsk = %s\n' "$1" "$psk" >"$T/$1.section"
	echo "kcpsocks://$1:$psk@127.0.0.1:1?key=$SERVER_PUB"
}
BOB_CS=$(adduser_cs bob)
cat "$T/bob.section" >>"$SERVER_CONF"
CAROL_CS=$(adduser_cs carol)
GOOD_CONF=$(cat "$SERVER_CONF")

start_server
server_metric() { metric "$SERVER_METRICS" "$1"; }
sessions_are() { [ "$(server_metric kcpsocks_sessions)" = "$1" ]; }
start_local "$SERVER_PORT" default
wait_session
A_PORT=$LOCAL_PORT A_LOG=$LOCAL_LOG
LOCAL_PORT='' LOCAL_METRICS=''
CONNSTR=$BOB_CS start_local "$SERVER_PORT" default
wait_session
B_LOG=$LOCAL_LOG
wait_until "two sessions on the server" 5 sessions_are 2
LOCAL_PORT=$A_PORT

# rep PORT: the SOCKS5 reply code alice's daemon gives for a CONNECT to
# 127.0.0.1:PORT (two hex digits).
rep() {
	local out
	out=$(python3 "$LIB_DIR/kstool.py" s5raw "$A_PORT" \
		"050100 05010001 7f000001 $(printf %04x "$1")" | sed -n 1p)
	echo "${out:6:2}"
}
P2=$(free_port)
r=$(rep "$P2")
[ "$r" = 05 ] || die "before the reload 127.0.0.1:$P2 (nothing listening) got REP $r, not 05"

hs_before=$(server_metric kcpsocks_handshakes_ok_total)
FETCH_TIMEOUT=60 fetch_verify 8M 127.0.0.1 --limit-rate 1M >"$T/a.out" 2>"$T/a.err" &
a_pid=$!
lib_track "$a_pid" fetch-alice
# Wait for the download to be under way before the reload.
dl_running() { [ -n "$(ss -Htn "dport = :$NGINX_PORT" 2>/dev/null || true)" ]; }
wait_until "alice's download to start" 10 dl_running

# The edit: bob out, carol in, the allow rule narrowed to the web server.
printf '%s\n' "$GOOD_CONF" |
	sed -e "s#^allow = .*#allow = 127.0.0.1:$NGINX_PORT, ::1#" -e '/^\[user bob\]/,+1d' \
		>"$SERVER_CONF.new"
cat "$T/carol.section" >>"$SERVER_CONF.new"
mv "$SERVER_CONF.new" "$SERVER_CONF"
kill -HUP "$SERVER_PID"
alive "$a_pid" || die "alice's download ended before the reload: $(cat "$T/a.out")"
wait_until "the reload" 10 grep -q 'reloaded: ' "$SERVER_LOG"
line=$(grep 'reloaded: ' "$SERVER_LOG" | tail -n 1)
note "server: ${line#*reloaded: }"
[[ $line =~ "reloaded: 2 users (+1 -1), policy "[0-9]+" rules, log level info" ]] ||
	die "unexpected reload line: $line"
alive "$SERVER_PID" || die "the server died on SIGHUP"

# bob's session is closed.
wait_until "bob's session to end" 10 grep -q 'session lost' "$B_LOG"
wait_until "one session on the server" 10 sessions_are 1

# alice's download completes on the same session.
reap "$a_pid" || die "alice's download failed across the reload: $(cat "$T/a.err")"
note "alice: $(cat "$T/a.out")"
[ "$(grep -c 'session .* established' "$A_LOG")" = 1 ] || die "alice handshook again"
# Its stream ended after the reload (the access log line comes at the end).
n_reload=$(grep -n 'reloaded: ' "$SERVER_LOG" | head -n 1 | cut -d: -f1)
n_stream=$(grep -n "stream user=alice .*dest=127.0.0.1:$NGINX_PORT " "$SERVER_LOG" | head -n 1 | cut -d: -f1)
[ -n "$n_stream" ] && [ "$n_stream" -gt "$n_reload" ] ||
	die "alice's download did not span the reload (log lines $n_stream, $n_reload)"

# the newly denied destination
r=$(rep "$P2")
[ "$r" = 02 ] || die "after the reload 127.0.0.1:$P2 got REP $r, not 02 (not allowed)"
fetch_verify 1K >/dev/null || die "alice's allowed destination no longer works"

# carol connects.
LOCAL_PORT='' LOCAL_METRICS=''
CONNSTR=$CAROL_CS start_local "$SERVER_PORT" default
wait_session
C_PORT=$LOCAL_PORT
LOCAL_PORT=$C_PORT fetch_verify 1K >/dev/null || die "carol cannot fetch after the reload"
hs_after=$(server_metric kcpsocks_handshakes_ok_total)
[ "$hs_after" = "$((hs_before + 1))" ] ||
	die "handshakes went from $hs_before to $hs_after: expected carol's alone"

# A broken config: logged, nothing changes.
echo "no_such_key = 1" >>"$SERVER_CONF"
kill -HUP "$SERVER_PID"
wait_until "the refused reload" 10 grep -q 'reload: .*keeping the running config' "$SERVER_LOG"
note "broken: $(grep 'keeping the running config' "$SERVER_LOG" | tail -n 1)"
alive "$SERVER_PID" || die "the server died on a broken config"
LOCAL_PORT=$A_PORT fetch_verify 1K >/dev/null || die "alice lost service after a broken reload"
LOCAL_PORT=$C_PORT fetch_verify 1K >/dev/null || die "carol lost service after a broken reload"
[ "$(rep "$P2")" = 02 ] || die "the policy changed on a broken reload"
sessions_are 2 || die "the server lists $(server_metric kcpsocks_sessions) sessions, not 2"

# A restart-only change is logged as such; the reload still applies.
sed -i -e '/^no_such_key/d' -e 's/^\[server\]$/[server]\nmax_sessions = 77/' "$SERVER_CONF"
n_before=$(grep -c 'reloaded: ' "$SERVER_LOG")
kill -HUP "$SERVER_PID"
reloads_are() { [ "$(grep -c 'reloaded: ' "$SERVER_LOG")" = "$1" ]; }
wait_until "the second reload" 10 reloads_are "$((n_before + 1))"
grep -q 'reload: session limits changed: that needs a restart' "$SERVER_LOG" ||
	die "no 'needs a restart' warning for a changed max_sessions"
grep 'reloaded: ' "$SERVER_LOG" | tail -n 1 | grep -q 'reloaded: 2 users (+0 -0)' ||
	die "the second reload: $(grep 'reloaded: ' "$SERVER_LOG" | tail -n 1)"
sessions_are 2 || die "a reload without user changes closed sessions"

# The local daemon reloads too (its log level; its session stays).
kill -HUP "$(cat "$T/local.pid")"
wait_until "the local reload" 10 grep -q 'reloaded: log level info' "$LOCAL_LOG"
LOCAL_PORT=$C_PORT fetch_verify 1K >/dev/null || die "carol lost service after the local's reload"
[ "$(grep -c 'session .* established' "$LOCAL_LOG")" = 1 ] || die "carol's daemon handshook again"
note ok
