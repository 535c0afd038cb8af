#!/usr/bin/env bash
# fast_kcpcat.sh - kcpcat on loopback: 16 MiB one way with identical sha256
# at both ends, the reverse direction, both directions at once, raw stream
# mode ending on -w, an empty input, a peer that never answers, a slow
# stdout (backpressure) and usage errors.
#
# Listeners bind port 0 and we read the port the kernel chose from their
# log ("listening on 127.0.0.1:PORT"), so there is no port race and no fixed
# sleep. Every process runs under timeout; the trap kills what is left.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_kcpcat

KCPCAT=$BUILD/kcpcat
LIMIT=60 # seconds, per kcpcat process

# listen NAME STDIN [kcpcat options...]: start a listener on 127.0.0.1:0
# with stdout to $T/NAME.out; sets PID and PORT. Its log and its client's
# ($T/NAME-c.log) are printed on failure.
listen() {
	local name=$1 input=$2
	shift 2
	timeout "$LIMIT" "$KCPCAT" -v "$@" -l 127.0.0.1:0 <"$input" >"$T/$name.out" \
		2>"$T/$name.log" &
	PID=$!
	lib_track "$PID" "$name" "$T/$name.log"
	lib_log "$name-c" "$T/$name-c.log"
	PORT=$(listen_port "$name: listener" "$T/$name.log" "$PID") || exit 1
}

# expect_exit PID CODE WHAT
expect_exit() {
	local rc=0
	reap "$1" || rc=$?
	[ "$rc" -eq "$2" ] || die "$3: exit status $rc, expected $2"
}

same() {
	local a b
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$2" | cut -d' ' -f1)
	[ "$a" = "$b" ] || die "$3: sha256 differs ($a vs $b)"
	echo "ok: $3 ($(stat -c %s "$1") bytes, sha256 ${a:0:16}...)"
}

head -c $((16 << 20)) /dev/urandom >"$T/m16"
head -c $((2 << 20)) /dev/urandom >"$T/m2"
head -c $((3 << 20)) /dev/urandom >"$T/m3"
head -c 100000 /dev/urandom >"$T/small"

# 1. 16 MiB client -> listener, message mode (the default).
listen one /dev/null
timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$PORT" <"$T/m16" >"$T/one.back" 2>"$T/one-c.log" ||
	die "16 MiB sender exited $?"
expect_exit "$PID" 0 "16 MiB receiver"
same "$T/m16" "$T/one.out" "16 MiB client -> listener"
[ ! -s "$T/one.back" ] || die "the sender received data it was never sent"
grep -q 'kcpcat stats: .*srtt_ms=' "$T/one-c.log" || die "-q printed no statistics"

# 2. The reverse: the listener sends, the client only receives.
listen two "$T/m2"
timeout "$LIMIT" "$KCPCAT" 127.0.0.1 "$PORT" </dev/null >"$T/two.in" 2>"$T/two-c.log" ||
	die "reverse receiver exited $?"
expect_exit "$PID" 0 "reverse sender"
same "$T/m2" "$T/two.in" "listener -> client"

# 3. Both directions at once, other settings on both ends.
opts=(--preset fast3 --mtu 1200 --sndwnd 256 --rcvwnd 256)
listen three "$T/m2" "${opts[@]}"
timeout "$LIMIT" "$KCPCAT" "${opts[@]}" 127.0.0.1 "$PORT" <"$T/m3" >"$T/three.in" \
	2>"$T/three-c.log" || die "duplex client exited $?"
expect_exit "$PID" 0 "duplex listener"
same "$T/m3" "$T/three.out" "duplex, client -> listener"
same "$T/m2" "$T/three.in" "duplex, listener -> client"

# 4. Raw stream mode: no end marker; the sender ends once acknowledged,
#    the receiver on -w.
listen four /dev/null --raw -w 1
timeout "$LIMIT" "$KCPCAT" --raw 127.0.0.1 "$PORT" <"$T/small" 2>"$T/four-c.log" ||
	die "raw sender exited $?"
expect_exit "$PID" 0 "raw receiver ending on -w"
same "$T/small" "$T/four.out" "raw stream mode"
grep -q 'idle for 1 s: done' "$T/four.log" || die "raw receiver did not end on -w"

# 5. Empty input both ways: the end markers alone.
listen five /dev/null
timeout "$LIMIT" "$KCPCAT" 127.0.0.1 "$PORT" </dev/null >"$T/five.in" 2>"$T/five-c.log" ||
	die "empty sender exited $?"
expect_exit "$PID" 0 "empty receiver"
[ ! -s "$T/five.out" ] && [ ! -s "$T/five.in" ] || die "data out of nothing"
echo "ok: empty input"

# 6. Nobody listening: -w bounds the wait and the exit status says failure.
#    Take a port that was just free by letting a listener pick it and end.
listen six /dev/null -w 1
expect_exit "$PID" 1 "listener with no peer and -w 1"
rc=0
timeout "$LIMIT" "$KCPCAT" -w 1 127.0.0.1 "$PORT" <"$T/small" 2>"$T/six-c.log" || rc=$?
[ "$rc" -eq 1 ] || die "sender to nobody: exit status $rc, expected 1"
grep -q 'idle for 1 s before the transfer ended' "$T/six-c.log" || die "no idle message"
echo "ok: no peer gives exit status 1 after -w"

# 7. A slow stdout: the receiver's buffer fills, its window closes and the
#    sender waits; nothing is lost and memory stays bounded.
if command -v python3 >/dev/null; then
	listen_slow() {
		(timeout "$LIMIT" "$KCPCAT" -v -q -l 127.0.0.1:0 </dev/null 2>"$T/slow.log" |
			python3 -c '
import hashlib, sys, time
h = hashlib.sha256()
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    h.update(b)
    time.sleep(0.005)
print(h.hexdigest())' >"$T/slow.sum") &
		PID=$!
		lib_track "$PID" slow "$T/slow.log"
		lib_log slow-c "$T/slow-c.log"
	}
	listen_slow
	PORT=$(listen_port "slow: listener" "$T/slow.log" "$PID")
	timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$PORT" <"$T/m3" 2>"$T/slow-c.log" ||
		die "sender to a slow reader exited $?"
	expect_exit "$PID" 0 "slow reader"
	[ "$(cat "$T/slow.sum")" = "$(sha256sum <"$T/m3" | cut -d' ' -f1)" ] ||
		die "slow reader: sha256 differs"
	echo "ok: slow stdout (backpressure), $(grep -o 'rmt_wnd=[0-9]*' "$T/slow-c.log") at the end"
else
	echo "skip: slow stdout (no python3)"
fi

# 8. Usage errors are status 2 and name the input.
rc=0
lib_log seven "$T/seven.log"
"$KCPCAT" localhost 80 </dev/null 2>"$T/seven.log" || rc=$?
[ "$rc" -eq 2 ] && grep -q "bad address 'localhost'" "$T/seven.log" || die "usage error"
echo "ok: usage errors"
