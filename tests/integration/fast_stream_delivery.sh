#!/usr/bin/env bash
# fast_stream_delivery.sh - per-stream delivery (docs/PROTOCOL.md mux
# section 10, feature bit 5) between real daemons: on by default, so two
# daemons left at the default agree it (both logs say so) and carry
# parallel downloads through 2% loss intact; a client that asks for it from
# a server set stream_delivery = off gets the ordered stream, intact too;
# a client set off is not given it by a server at the default.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_stream_delivery
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

make_keys
start_http
for i in 1 2 3 4; do
	head -c 400000 /dev/urandom >"$HTTP_DIR/f$i.bin"
done

# fetch_all TAG: the four files in parallel, each compared.
fetch_all() {
	local pids=() i
	for i in 1 2 3 4; do
		tcurl -o "$T/$1.$i.bin" "http://127.0.0.1:$HTTP_PORT/f$i.bin" &
		pids+=($!)
	done
	for i in 1 2 3 4; do
		wait "${pids[$((i - 1))]}" || die "$1: fetch f$i"
		cmp -s "$T/$1.$i.bin" "$HTTP_DIR/f$i.bin" || die "$1: f$i differs"
	done
}

# Client off, server at the default (on): not agreed.
start_server
start_local "$SERVER_PORT" "" --stream_delivery off
wait_session
grep 'session .* established' "$LOCAL_LOG" | grep -q 'per-stream delivery' &&
	die "per-stream delivery agreed although the client set it off"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"

# Both at the default (on), through 2% loss each way.
start_server
start_impair "$SERVER_PORT" --loss 0.02 --seed 7
start_local "$IMPAIR_PORT"
wait_session
grep -q 'session [0-9a-f]* established (wire version [0-9]*, [a-z0-9-]*, per-stream delivery' \
	"$LOCAL_LOG" || die "the local log does not name per-stream delivery"
fetch_all on
grep -q 'session [0-9a-f]* of user alice established (wire version [0-9]*, [a-z0-9-]*, per-stream delivery' \
	"$SERVER_LOG" || die "the server log does not name per-stream delivery"
ok "the default (on at both ends): agreed, 4 x 400 kB at 2% loss intact"

# Client at the default (on), server off: the ordered stream.
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
start_server --stream_delivery off
start_local "$IMPAIR_PORT"
wait_session
grep 'session .* established' "$LOCAL_LOG" | grep -q 'per-stream delivery' &&
	die "per-stream delivery agreed with a server that does not accept it"
fetch_all mixed
ok "client on, server off: not agreed, 4 x 400 kB intact"
