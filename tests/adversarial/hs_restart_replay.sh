#!/usr/bin/env bash
# hs_restart_replay.sh - issue 14, attack 3: an init recorded before a
# server restart is replayed after it: no reply, no session. (Before the
# fix the restarted server answered it and logged a session "established"
# for a user who never opened it.)
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/hs_lib.sh"
lib_init hs_restart_replay
require_daemons
pick_ports SERVER_PORT SERVER_METRICS

make_keys alice
start_server
line=$(hs_as alice valid --save "$T/capture.bin" --wait 2000)
[ "$(field "$line" accepted)" = 1 ] || die "the captured init was not answered: $line"
ok "captured a valid init that the server answered"

# Replayed to the same process: the replay cache.
line=$(hs replay --replay "$T/capture.bin" --count 5 --wait 500)
[ "$(field "$line" bytes_in)" = 0 ] || die "replay before the restart answered: $line"

stop_daemon "$SERVER_PID"
start_server
before=$(grep -c 'established' "$SERVER_LOG" || true)
line=$(hs replay --replay "$T/capture.bin" --count 20 --rate 10 --wait 1500)
[ "$(field "$line" replies)" = 0 ] || die "the restarted server answered the replay: $line"
[ "$(field "$line" bytes_in)" = 0 ] || die "bytes came back: $line"
after=$(grep -c 'established' "$SERVER_LOG" || true)
[ "$before" = "$after" ] || die "a session was established from the replay"
live=$(metric "$SERVER_METRICS" kcpsocks_sessions)
[ "$live" = 0 ] || die "live sessions after the replay: $live"
ok "replayed after the restart: 20 sends, 0 replies, 0 sessions"

# A fresh init after the restart still works.
line=$(hs_as alice valid --wait 2000)
[ "$(field "$line" accepted)" = 1 ] || die "a fresh init after the restart was not answered: $line"
ok "a fresh init after the restart is answered"
