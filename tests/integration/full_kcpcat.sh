#!/usr/bin/env bash
# full_kcpcat.sh - the acceptance test: kcpcat carries a 100 MiB random file
# between two processes on loopback, with identical sha256 at both ends.
# Prints wall and CPU time of each end and the throughput. Not part of
# `make test` (it takes a while); `make test-all` runs it.
set -euo pipefail

BUILD=${BUILD:-build}
KCPCAT=$BUILD/kcpcat
SIZE_MIB=${SIZE_MIB:-100}
LIMIT=300 # seconds, per kcpcat process
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

# GNU time when present (CPU times of each end), else the shell's clock.
timed() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" -o "$1" "${@:2}"
	else
		"${@:2}"
	fi
}

head -c $((SIZE_MIB << 20)) /dev/urandom >"$tmp/in"

timed "$tmp/recv.time" timeout "$LIMIT" "$KCPCAT" -v -q -l 127.0.0.1:0 </dev/null \
	>"$tmp/out" 2>"$tmp/recv.log" &
pid=$!
pids+=("$pid")
port=
for _ in $(seq 200); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/recv.log")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || fail "listener exited early"
	sleep 0.05
done
[ -n "$port" ] || fail "listener never reported its port"

start=$(date +%s.%N)
timed "$tmp/send.time" timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$port" <"$tmp/in" \
	2>"$tmp/send.log" || fail "sender exited $?"
rc=0
wait "$pid" || rc=$?
end=$(date +%s.%N)
[ "$rc" -eq 0 ] || fail "receiver exited $rc"

a=$(sha256sum <"$tmp/in" | cut -d' ' -f1)
b=$(sha256sum <"$tmp/out" | cut -d' ' -f1)
[ "$a" = "$b" ] || fail "sha256 differs: $a vs $b"
echo "ok: $SIZE_MIB MiB over kcpcat on loopback, sha256 $a at both ends"
awk -v s="$start" -v e="$end" -v m="$SIZE_MIB" \
	'BEGIN { t = e - s; printf "transfer: %.2f s wall, %.1f MiB/s (%.0f Mbit/s)\n", t, m / t, m * 8.388608 / t }'
[ -e "$tmp/send.time" ] && echo "sender:   $(cat "$tmp/send.time")"
[ -e "$tmp/recv.time" ] && echo "receiver: $(cat "$tmp/recv.time")"
grep -h 'kcpcat stats' "$tmp/send.log" | sed 's/^/sender   /'
grep -h 'kcpcat stats' "$tmp/recv.log" | sed 's/^/receiver /'
