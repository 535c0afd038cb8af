#!/usr/bin/env bash
# full_kcpcat.sh - the acceptance test: kcpcat carries a 100 MiB random file
# between two processes on loopback, with identical sha256 at both ends.
# Prints wall and CPU time of each end and the throughput. Not part of
# `make test` (it takes a while); `make test-all` runs it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init full_kcpcat

KCPCAT=$BUILD/kcpcat
SIZE_MIB=${SIZE_MIB:-100}
LIMIT=300 # seconds, per kcpcat process

# GNU time when present (CPU times of each end), else the shell's clock.
timed() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" -o "$1" "${@:2}"
	else
		"${@:2}"
	fi
}

head -c $((SIZE_MIB << 20)) /dev/urandom >"$T/in"

timed "$T/recv.time" timeout "$LIMIT" "$KCPCAT" -v -q -l 127.0.0.1:0 </dev/null \
	>"$T/out" 2>"$T/recv.log" &
pid=$!
lib_track "$pid" receiver "$T/recv.log"
lib_log sender "$T/send.log"
port=$(listen_port listener "$T/recv.log" "$pid")

start=$(date +%s.%N)
timed "$T/send.time" timeout "$LIMIT" "$KCPCAT" -q 127.0.0.1 "$port" <"$T/in" \
	2>"$T/send.log" || die "sender exited $?"
rc=0
reap "$pid" || rc=$?
end=$(date +%s.%N)
[ "$rc" -eq 0 ] || die "receiver exited $rc"

a=$(sha256sum <"$T/in" | cut -d' ' -f1)
b=$(sha256sum <"$T/out" | cut -d' ' -f1)
[ "$a" = "$b" ] || die "sha256 differs: $a vs $b"
echo "ok: $SIZE_MIB MiB over kcpcat on loopback, sha256 $a at both ends"
awk -v s="$start" -v e="$end" -v m="$SIZE_MIB" \
	'BEGIN { t = e - s; printf "transfer: %.2f s wall, %.1f MiB/s (%.0f Mbit/s)\n", t, m / t, m * 8.388608 / t }'
[ -e "$T/send.time" ] && echo "sender:   $(cat "$T/send.time")"
[ -e "$T/recv.time" ] && echo "receiver: $(cat "$T/recv.time")"
grep -h 'kcpcat stats' "$T/send.log" | sed 's/^/sender   /'
grep -h 'kcpcat stats' "$T/recv.log" | sed 's/^/receiver /'
