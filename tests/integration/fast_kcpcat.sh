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

BUILD=${BUILD:-build}
KCPCAT=$BUILD/kcpcat
LIMIT=60 # seconds, per kcpcat process
tmp=$(mktemp -d)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/*.log; do
		[ -e "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# listen NAME STDIN [kcpcat options...]: start a listener on 127.0.0.1:0
# with stdout to $tmp/NAME.out; sets PID and PORT.
listen() {
	local name=$1 input=$2
	shift 2
	timeout "$LIMIT" "$KCPCAT" -v "$@" -l 127.0.0.1:0 <"$input" >"$tmp/$name.out" \
		2>"$tmp/$name.log" &
	PID=$!
	pids+=("$PID")
	PORT=
	for _ in $(seq 200); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log")
		[ -n "$PORT" ] && return 0
		kill -0 "$PID" 2>/dev/null || fail "$name: listener exited early"
		sleep 0.05
	done
	fail "$name: listener never reported its port"
}

# expect_exit PID CODE WHAT
expect_exit() {
	local rc=0
	wait "$1" || rc=$?
	[ "$rc" -eq "$2" ] || fail "$3: exit status $rc, expected $2"
}

same() {
	local a b
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$2" | cut -d' ' -f1)
	[ "$a" = "$b" ] || fail "$3: sha256 differs ($a vs $b)"
	echo "ok: $3 ($(stat -c %s "$1") bytes, sha256 ${a:0:16}...)"
}

head -c $((16 << 20)) /dev/urandom >"$tmp/m16"
head -c $((2 << 20)) /dev/urandom >"$tmp/m2"
head -c $((3 << 20)) /dev/urandom >"$tmp/m3"
head -c 100000 /dev/urandom >"$tmp/small"

# 1. 16 MiB client -> listener, message mode (the default).
listen one /dev/null
timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$PORT" <"$tmp/m16" >"$tmp/one.back" 2>"$tmp/one-c.log" ||
	fail "16 MiB sender exited $?"
expect_exit "$PID" 0 "16 MiB receiver"
same "$tmp/m16" "$tmp/one.out" "16 MiB client -> listener"
[ ! -s "$tmp/one.back" ] || fail "the sender received data it was never sent"
grep -q 'kcpcat stats: .*srtt_ms=' "$tmp/one-c.log" || fail "-q printed no statistics"

# 2. The reverse: the listener sends, the client only receives.
listen two "$tmp/m2"
timeout "$LIMIT" "$KCPCAT" 127.0.0.1 "$PORT" </dev/null >"$tmp/two.in" 2>"$tmp/two-c.log" ||
	fail "reverse receiver exited $?"
expect_exit "$PID" 0 "reverse sender"
same "$tmp/m2" "$tmp/two.in" "listener -> client"

# 3. Both directions at once, other settings on both ends.
opts=(--preset fast3 --mtu 1200 --sndwnd 256 --rcvwnd 256)
listen three "$tmp/m2" "${opts[@]}"
timeout "$LIMIT" "$KCPCAT" "${opts[@]}" 127.0.0.1 "$PORT" <"$tmp/m3" >"$tmp/three.in" \
	2>"$tmp/three-c.log" || fail "duplex client exited $?"
expect_exit "$PID" 0 "duplex listener"
same "$tmp/m3" "$tmp/three.out" "duplex, client -> listener"
same "$tmp/m2" "$tmp/three.in" "duplex, listener -> client"

# 4. Raw stream mode: no end marker; the sender ends once acknowledged,
#    the receiver on -w.
listen four /dev/null --raw -w 1
timeout "$LIMIT" "$KCPCAT" --raw 127.0.0.1 "$PORT" <"$tmp/small" 2>"$tmp/four-c.log" ||
	fail "raw sender exited $?"
expect_exit "$PID" 0 "raw receiver ending on -w"
same "$tmp/small" "$tmp/four.out" "raw stream mode"
grep -q 'idle for 1 s: done' "$tmp/four.log" || fail "raw receiver did not end on -w"

# 5. Empty input both ways: the end markers alone.
listen five /dev/null
timeout "$LIMIT" "$KCPCAT" 127.0.0.1 "$PORT" </dev/null >"$tmp/five.in" 2>"$tmp/five-c.log" ||
	fail "empty sender exited $?"
expect_exit "$PID" 0 "empty receiver"
[ ! -s "$tmp/five.out" ] && [ ! -s "$tmp/five.in" ] || fail "data out of nothing"
echo "ok: empty input"

# 6. Nobody listening: -w bounds the wait and the exit status says failure.
#    Take a port that was just free by letting a listener pick it and end.
listen six /dev/null -w 1
expect_exit "$PID" 1 "listener with no peer and -w 1"
rc=0
timeout "$LIMIT" "$KCPCAT" -w 1 127.0.0.1 "$PORT" <"$tmp/small" 2>"$tmp/six-c.log" || rc=$?
[ "$rc" -eq 1 ] || fail "sender to nobody: exit status $rc, expected 1"
grep -q 'idle for 1 s before the transfer ended' "$tmp/six-c.log" || fail "no idle message"
echo "ok: no peer gives exit status 1 after -w"

# 7. A slow stdout: the receiver's buffer fills, its window closes and the
#    sender waits; nothing is lost and memory stays bounded.
if command -v python3 >/dev/null; then
	listen_slow() {
		(timeout "$LIMIT" "$KCPCAT" -v -q -l 127.0.0.1:0 </dev/null 2>"$tmp/slow.log" |
			python3 -c '
import hashlib, sys, time
h = hashlib.sha256()
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    h.update(b)
    time.sleep(0.005)
print(h.hexdigest())' >"$tmp/slow.sum") &
		PID=$!
		pids+=("$PID")
	}
	listen_slow
	PORT=
	for _ in $(seq 200); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/slow.log")
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	[ -n "$PORT" ] || fail "slow: listener never reported its port"
	timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$PORT" <"$tmp/m3" 2>"$tmp/slow-c.log" ||
		fail "sender to a slow reader exited $?"
	expect_exit "$PID" 0 "slow reader"
	[ "$(cat "$tmp/slow.sum")" = "$(sha256sum <"$tmp/m3" | cut -d' ' -f1)" ] ||
		fail "slow reader: sha256 differs"
	echo "ok: slow stdout (backpressure), $(grep -o 'rmt_wnd=[0-9]*' "$tmp/slow-c.log") at the end"
else
	echo "skip: slow stdout (no python3)"
fi

# 8. Usage errors are status 2 and name the input.
rc=0
"$KCPCAT" localhost 80 </dev/null 2>"$tmp/seven.log" || rc=$?
[ "$rc" -eq 2 ] && grep -q "bad address 'localhost'" "$tmp/seven.log" || fail "usage error"
echo "ok: usage errors"
