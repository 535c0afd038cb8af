#!/usr/bin/env bash
# fault_interop.sh - issue 13: this build against the previous release
# (ab6fdf8, wire version 1: no version extension), both ways.
#   this server, old local: the old client gets a session and fetches; the
#     server logs it as wire version 1 (an older client) and counts it;
#   old server, this local (profile fast, which asks for fast open): a
#     session and a fetch; the local logs wire version 1 and that fast open
#     is off because the server does not offer it (an old server would end
#     the session on early data it did not expect to be negotiated);
#   control: this local and this server agree on wire version 2 and fast
#     open, and use it.
# The old release is built from git history into $BUILD/interop-ab6fdf8
# (kept between runs). Without the history the test fails: it never skips.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fault_interop
require_daemons
pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT

OLD_REV=${INTEROP_REV:-ab6fdf8}
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) ||
	die "no git repository around $(dirname "$0"): the previous release cannot be built"
git -C "$REPO" cat-file -e "$OLD_REV^{commit}" 2>/dev/null ||
	die "commit $OLD_REV is not in $REPO's history: the previous release cannot be built"
OLD=$(cd "$BUILD" && pwd)/interop-$OLD_REV
if [ ! -x "$OLD/build/kcpsocks-server" ] || [ ! -x "$OLD/build/kcpsocks-local" ]; then
	note "building $OLD_REV into $OLD"
	rm -rf "$OLD"
	mkdir -p "$OLD"
	git -C "$REPO" archive "$OLD_REV" | tar -x -C "$OLD" || die "git archive $OLD_REV failed"
	make -C "$OLD" -j2 build/kcpsocks-server build/kcpsocks-local >"$T/old-build.log" 2>&1 ||
		die "building $OLD_REV failed: $(tail -20 "$T/old-build.log")"
fi
OLD_SERVER=$OLD/build/kcpsocks-server
OLD_LOCAL=$OLD/build/kcpsocks-local
NEW_SERVER=$KS_SERVER
NEW_LOCAL=$KS_LOCAL

make_keys alice
start_http
head -c 300000 /dev/urandom >"$HTTP_DIR/f.bin"
fetch() {
	tcurl -m 10 -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/f.bin" 2>/dev/null &&
		cmp -s "$T/got.bin" "$HTTP_DIR/f.bin"
}

# 1. this server, the old local (fast profile: fast open on its side).
start_server
KS_LOCAL=$OLD_LOCAL start_local "$SERVER_PORT" fast
wait_session
poll 10 fetch || die "old local -> this server: no fetch"
grep -qE 'established \(wire version 1, [a-z0-9-]+, an older client' "$SERVER_LOG" ||
	die "this server did not log the old client's wire version"
legacy=$(metric "$SERVER_METRICS" kcpsocks_handshake_legacy_clients_total)
[ "$legacy" -ge 1 ] || die "legacy clients counted: $legacy"
ok "old local ($OLD_REV) -> this server: session, 300 kB fetched; server logged wire version 1"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"

# 2. the old server, this local asking for fast open.
KS_SERVER=$OLD_SERVER start_server
KS_LOCAL=$NEW_LOCAL start_local "$SERVER_PORT" fast
wait_session
grep -qE 'established \(wire version 1, [a-z0-9-]+, an older server; fast open off' "$LOCAL_LOG" ||
	die "this local did not log the old server's wire version / fast open off: $(grep established "$LOCAL_LOG")"
for i in 1 2 3; do
	poll 10 fetch || die "this local -> old server: fetch $i failed"
done
fo=$(metric "$LOCAL_METRICS" kcpsocks_local_fast_open_streams_total)
[ "$fo" = 0 ] || die "this local used fast open ($fo streams) against a server that did not offer it"
! grep -q 'session lost' "$LOCAL_LOG" || die "the session was lost: $(grep 'session lost' "$LOCAL_LOG")"
ok "this local -> old server ($OLD_REV): session, 3 fetches, 0 fast-open streams, logged wire version 1"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"

# 3. Control: this local and this server agree on fast open and use it.
KS_SERVER=$NEW_SERVER start_server
KS_LOCAL=$NEW_LOCAL start_local "$SERVER_PORT" fast
wait_session
poll 10 fetch || die "this local -> this server: no fetch"
fo=$(metric "$LOCAL_METRICS" kcpsocks_local_fast_open_streams_total)
[ "$fo" -ge 1 ] || die "fast open not used between two current daemons"
grep -qE 'established \(wire version 2, [a-z0-9-]+(, per-stream delivery)?\)' "$LOCAL_LOG" || die "wire version 2 not logged"
ok "control: this local -> this server: wire version 2, $fo fast-open stream(s)"
