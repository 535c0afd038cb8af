#!/usr/bin/env bash
# fault_restart.sh - crash and restart each daemon under load.
#
# FAULT_CLIENTS (8) curl clients loop over mixed requests through
# kcpsocks-local -> impair (5 ms each way) -> kcpsocks-server. Then:
#   1. kcpsocks-server is SIGKILLed, stays down FAULT_DOWN_S (1 s), and is
#      started again on the same port with the same key;
#   2. later kcpsocks-local is SIGKILLed and started again on the same
#      SOCKS5 port (and the same down time).
# After each restart a new request must succeed within FAULT_RECOVER_S (5 s)
# of the restart. Requests in flight at a crash may fail, but none may hang
# (curl gives up on a transfer stalled for LOAD_STALL_S, and that fails the
# test), every client loop must end in time, and every request that
# started after a recovery and ended before the next fault must succeed.
. "$(dirname "$0")/lib.sh"
lib_init fault_restart
require_daemons

FAULT_CLIENTS=${FAULT_CLIENTS:-8}
FAULT_DOWN_S=${FAULT_DOWN_S:-1}
FAULT_RECOVER_S=${FAULT_RECOVER_S:-5}
PHASE_S=${PHASE_S:-8} # load between and after the faults
export LOAD_MIX="1K 16K 64K 1M 4M"
LOAD_STALL_S=${LOAD_STALL_S:-10}

start_nginx 1K 16K 64K 1M 4M
# sessions_per_user 1: the restarted kcpsocks-local's session replaces the
# killed one's at once, streams and all. With the default (8) the killed
# client's streams stay on the server until its idle timeout, and the final
# SIGTERM would wait its whole drain time for them (docs/OPERATIONS.md).
make_keys
start_server --sessions_per_user 1
start_impair "$SERVER_PORT" --delay 5
start_local "$IMPAIR_PORT" default
fetch_verify 1K >/dev/null || die "first fetch through the tunnel failed"

load_start "$FAULT_CLIENTS" 600 "$T/load" # until load_stop below
sleep "$PHASE_S" # load runs for one phase before the fault (not a synchronisation)

# 1. the server crashes
fault1=$(now_ms)
kill_hard "$SERVER_PID"
note "server killed (SIGKILL) under load"
sleep "$FAULT_DOWN_S"
start_server --sessions_per_user 1
restart1=$(now_ms)
ms=$(time_to_fetch "$FAULT_RECOVER_S" 1K)
recovered1=$(now_ms)
note "server restarted: a new request succeeded ${ms} ms after the restart"

sleep "$PHASE_S"

# 2. the client daemon crashes
fault2=$(now_ms)
kill_hard "$LOCAL_PID"
note "kcpsocks-local killed (SIGKILL) under load"
sleep "$FAULT_DOWN_S"
start_local "$IMPAIR_PORT" default
ms=$(time_to_fetch "$FAULT_RECOVER_S" 1K)
recovered2=$(now_ms)
note "kcpsocks-local restarted: a new request succeeded ${ms} ms after the restart"

sleep "$PHASE_S"
load_stop "$T/load"
load_wait $((${LOAD_MAXTIME:-90} + 10))
load_count "$T/load"
note "all: ok=$LOAD_OK failed=$LOAD_FAIL bad=$LOAD_BAD hung=$LOAD_HUNG" \
	"(server down $((restart1 - fault1)) ms; faults $(((fault2 - fault1) / 1000)) s apart)"
if [ "$LOAD_HUNG" -ne 0 ] || [ "$LOAD_BAD" -ne 0 ]; then
	load_failures "$T/load" >&2
	die "$LOAD_HUNG requests hung (stalled ${LOAD_STALL_S}s), $LOAD_BAD came back corrupted"
fi
for w in "$recovered1 $fault2" "$recovered2 99999999999999"; do
	# shellcheck disable=SC2086  # two numbers
	load_count "$T/load" $w
	if [ "$LOAD_FAIL" -ne 0 ]; then
		load_failures "$T/load" >&2
		die "$LOAD_FAIL requests failed after a recovery (window $w)"
	fi
	[ "$LOAD_OK" -gt 0 ] || die "no request completed in the window $w"
done
stop_pid "$LOCAL_PID" 10 || die "kcpsocks-local did not stop cleanly on SIGTERM"
stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM"
note ok
