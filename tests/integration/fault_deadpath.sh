#!/usr/bin/env bash
# fault_deadpath.sh - the server is SIGKILLed and left down, then started
# again (issue 15, docs/OPERATIONS.md "When the server goes away").
#
# kcpsocks-local talks straight to kcpsocks-server on loopback (no relay,
# so the kernel's "port unreachable" reaches the client, as on a real
# host). A rate-limited download of a large file is running when the
# server is killed. Then, with the server down:
#   - the download fails (curl exit code non-zero: the connection is
#     reset, never closed as if complete) within DEAD_DOWNLOAD_S (20 s);
#   - a new request fails within DEAD_REQUEST_S (10 s): SOCKS5 REP 1;
#   - the local /healthz is not 200 and says why; the metrics show the
#     session down and one outage;
# and once the server is started again, a new request succeeds within
# DEAD_RECOVER_S (3 s). Finally the server is killed again while the
# session is idle, and a request made DEAD_LATE_S (2 s) later, before the
# outage is detected, fails within DEAD_REQUEST_S of the request. Each bound is a documented product timeout
# (dead_path_ms, LOCAL_SESSION_WAIT_MS), checked by polling.
. "$(dirname "$0")/lib.sh"
lib_init fault_deadpath
require_daemons

DEAD_DOWNLOAD_S=${DEAD_DOWNLOAD_S:-20}
DEAD_REQUEST_S=${DEAD_REQUEST_S:-10}
DEAD_RECOVER_S=${DEAD_RECOVER_S:-3}
DEAD_LATE_S=${DEAD_LATE_S:-2}

start_nginx 1K
truncate -s 1G "$WWW/f_1G" # sparse: costs no disk, contents unchecked
make_keys
start_server
start_local "$SERVER_PORT" default
wait_session
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"

start_long_download
dl_out=$DL_OUT dl_pid=$DL_PID

t0=$(now_ms)
kill_hard "$SERVER_PID"
note "server killed (SIGKILL) with a download open"

# 1. the open download fails, with an error, in time
wait_until "the open download to end" "$DEAD_DOWNLOAD_S" not_alive "$dl_pid"
t_dl=$(($(now_ms) - t0))
dl_rc=0
reap "$dl_pid" || dl_rc=$?
note "download ended ${t_dl} ms after the kill: curl exit $dl_rc ($(head -c 200 "$T/dl.err"))," \
	"$(stat -c %s "$dl_out") bytes"
[ "$dl_rc" -ne 0 ] || die "the download of a killed server ended as if complete (curl exit 0)"

# 2. a new request fails in time (SOCKS5 REP 1: curl exit 97)
t1=$(now_ms)
rc=0
curl -sS -m 60 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null "$(url 1K)" \
	2>"$T/req.err" || rc=$?
t_req=$(($(now_ms) - t1))
note "new request during the outage: curl exit $rc after ${t_req} ms ($(head -c 200 "$T/req.err"))"
[ "$rc" -ne 0 ] || die "a request succeeded with the server down"
[ "$t_req" -le $((DEAD_REQUEST_S * 1000)) ] ||
	die "a new request took ${t_req} ms to fail (bound ${DEAD_REQUEST_S} s)"

# 3. health and metrics tell the truth
hz=$(curl -sS --max-time 2 -w ' %{http_code}' "http://127.0.0.1:$LOCAL_METRICS/healthz" || true)
note "healthz during the outage: $hz"
case "$hz" in *" 200") die "/healthz answers 200 with the server down" ;; esac
case "$hz" in *unhealthy:*) ;; *) die "/healthz gives no reason: $hz" ;; esac
up=$(metric "$LOCAL_METRICS" kcpsocks_local_session_up)
outages=$(metric "$LOCAL_METRICS" kcpsocks_local_outages_total)
[ "$up" = 0 ] || die "kcpsocks_local_session_up is '$up' with the server down"
[ "${outages:-0}" -ge 1 ] || die "kcpsocks_local_outages_total is '$outages'"
refusals=$(grep -c 'refuses datagrams' "$LOCAL_LOG" || true)
note "log: $refusals 'refuses datagrams' line(s), $(grep -c 'recvmmsg' "$LOCAL_LOG" || true) recvmmsg line(s)"
[ "$refusals" -le 1 ] || die "the refusal was logged $refusals times in one outage"

# 4. the server comes back: a new request works within DEAD_RECOVER_S
start_server
ms=$(FETCH_TRY_S=${FETCH_TRY_S:-2} time_to_fetch "$DEAD_RECOVER_S" 1K)
note "server back: a new request succeeded ${ms} ms after the restart"
healthz "$LOCAL_METRICS" || die "/healthz is not 200 after the recovery"

# 5. an outage not yet detected: the server is killed while the session
# is idle, and a request comes DEAD_LATE_S (2 s) later, while the client
# still counts the session as up. It must fail within DEAD_REQUEST_S of
# the request, not dead_path_ms after it (L6 counts the silence before).
fetch_verify 1K >/dev/null || die "a fetch after the recovery failed"
tk=$(now_ms)
kill_hard "$SERVER_PID"
since_kill() { [ $(($(now_ms) - tk)) -ge $((DEAD_LATE_S * 1000)) ]; }
wait_until "${DEAD_LATE_S} s since the second kill" $((DEAD_LATE_S + 5)) since_kill
up=$(metric "$LOCAL_METRICS" kcpsocks_local_session_up)
[ "$up" = 1 ] || note "warning: the session was already down ${DEAD_LATE_S} s after the kill"
t2=$(now_ms)
rc2=0
curl -sS -m 60 --socks5-hostname "127.0.0.1:$LOCAL_PORT" -o /dev/null "$(url 1K)" \
	2>"$T/req2.err" || rc2=$?
t_req2=$(($(now_ms) - t2))
note "request $((t2 - tk)) ms after the kill (outage not yet detected): curl exit $rc2 after" \
	"${t_req2} ms, $(($(now_ms) - tk)) ms after the kill ($(head -c 200 "$T/req2.err"))"
[ "$rc2" -ne 0 ] || die "a request succeeded with the server down"
[ "$t_req2" -le $((DEAD_REQUEST_S * 1000)) ] ||
	die "a request made during an undetected outage took ${t_req2} ms to fail" \
		"(bound ${DEAD_REQUEST_S} s)"

note "summary: download failed after ${t_dl} ms (curl $dl_rc), new request failed after" \
	"${t_req} ms (curl $rc), recovered in ${ms} ms; a request ${DEAD_LATE_S} s after a" \
	"kill failed after ${t_req2} ms"
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
note ok
