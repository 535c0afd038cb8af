#!/usr/bin/env bash
# cross_pair.sh - the cross-built daemons (make cross ARCH=$CROSS32, 32-bit)
# under qemu-user, on 127.0.0.1 only:
#   1. a cross server + cross local pair, profile low-memory, through the
#      native impairment relay at 1 % loss each way: a 4 MiB download, sha256
#      checked; both daemons' guest RSS idle and at the peak of the download;
#   2. the native server with the cross local, and 3. the cross server with
#      the native local: the word size does not leak into the wire;
# and that neither daemon (cross or native) contains the link simulator.
# Run by `make test-cross-e2e` (part of test-all), which sets CROSS_BUILD
# (the cross build dir) and CROSS_RUN (the emulator, e.g. qemu-mipsel).
# CROSS_FOOTPRINT=FILE: the measurements as "key value" lines (make
# bench-cross turns them into docs/bench/cross.md).
#
# RSS under qemu-user: the emulator's own memory (translator, code cache,
# host libc) is in the process too, so VmRSS says little. The guest's
# address space is placed at a known host address (QEMU_GUEST_BASE) and the
# resident pages of the mappings inside that 4 GiB window are summed: what
# the daemon would have resident on a 32-bit device with the same libraries
# (its binary, the shared libraries it maps, heap, stacks).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init cross_pair

: "${CROSS_BUILD:?CROSS_BUILD (a make cross build dir) is not set: use make test-cross-e2e}"
CROSS_RUN=${CROSS_RUN:-qemu-mipsel}
GUEST_BASE=0x100000000
NATIVE_SERVER=$KS_SERVER
NATIVE_LOCAL=$KS_LOCAL
require_daemons
command -v "${CROSS_RUN%% *}" >/dev/null || die "${CROSS_RUN%% *} not installed (scripts/deps.sh cross)"
for b in kcpsocks-server kcpsocks-local; do
	[ -x "$CROSS_BUILD/$b" ] || die "$CROSS_BUILD/$b not built (make cross)"
	# lib.sh runs "$KS_SERVER" / "$KS_LOCAL": a wrapper that execs the
	# emulator, so the PID it tracks and signals is the emulated daemon.
	printf '#!/bin/sh\nQEMU_GUEST_BASE=%s exec %s %s "$@"\n' "$GUEST_BASE" "$CROSS_RUN" \
		"$(cd "$CROSS_BUILD" && pwd)/$b" >"$T/x-$b"
	chmod +x "$T/x-$b"
done
# The daemons link only what they use: the link simulator is not in them.
for b in "$CROSS_BUILD/kcpsocks-server" "$CROSS_BUILD/kcpsocks-local" "$NATIVE_SERVER" "$NATIVE_LOCAL"; do
	if readelf -Ws "$b" | grep -q 'netsim_'; then die "$b contains netsim symbols"; fi
done
CROSS_SERVER=$T/x-kcpsocks-server
CROSS_LOCAL=$T/x-kcpsocks-local
note "$($CROSS_RUN "$CROSS_BUILD/kcpsocks-local" --version) under $CROSS_RUN: $(file -b "$CROSS_BUILD/kcpsocks-local" | cut -d, -f1-2)"
# qemu starts slowly on a loaded machine (read by lib.sh's start_*)
# shellcheck disable=SC2034
DAEMON_START_S=40

# guest_rss PID: "TOTAL_KB ANON_KB" resident in the guest window of PID
# (GUEST_BASE up 4 GiB)
# (ANON: heap, stacks, .bss; the rest is the binary and shared libraries).
guest_rss() {
	# [0x100000000, 0x200000000): 9 hex digits, the first 1 (plain awk)
	awk '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); in_g = length(a[1]) == 9 && a[1] ~ /^1/; next }
		in_g && $1 == "Rss:" { t += $2 }
		in_g && $1 == "Anonymous:" { an += $2 }
		END { printf "%d %d\n", t, an }' "/proc/$1/smaps" 2>/dev/null || echo "0 0"
}

# guest_map PID: "LABEL KB" per kind of guest mapping: the daemon's binary,
# libc, libsodium, the other shared libraries (ld.so included), anonymous.
guest_map() {
	awk '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); in_g = length(a[1]) == 9 && a[1] ~ /^1/
			f = $6; k = "anon"
			if (f ~ /kcpsocks-/) k = "binary"
			else if (f ~ /\/libc\.so/) k = "libc"
			else if (f ~ /libsodium/) k = "libsodium"
			else if (f ~ /^\//) k = "other_libs"
			next }
		in_g && $1 == "Rss:" { kb[k] += $2 }
		END { for (k in kb) printf "%s %d\n", k, kb[k] }' "/proc/$1/smaps" 2>/dev/null | sort
}

FOOT=()
record() {
	FOOT+=("$1 $2")
	note "$1 = $2"
}

start_http
head -c $((4 * 1024 * 1024)) /dev/urandom >"$HTTP_DIR/big.bin"

# fetch NAME WHAT: NAME through the local daemon, sha256 checked.
fetch() {
	local t0 ms
	t0=$(now_ms)
	tcurl -m "${2:-120}" -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/$1" || die "curl $1 failed"
	ms=$(($(now_ms) - t0))
	[ "$(sha256sum <"$T/got.bin")" = "$(sha256sum <"$HTTP_DIR/$1")" ] || die "$1: sha256 mismatch"
	ok "$1: $(stat -c %s "$T/got.bin") bytes, sha256 ok, $ms ms"
	rm -f "$T/got.bin"
}

# ---- 1. the cross pair through the lossy relay ---------------------------
KS_SERVER=$CROSS_SERVER
KS_LOCAL=$CROSS_LOCAL
make_keys # keygen and adduser run emulated too
start_server --profile low-memory
start_impair "$SERVER_PORT" --loss 0.01 --seed 18
start_local "$IMPAIR_PORT" low-memory
wait_session 40

# sample_max PID...: the largest guest RSS of each PID over 5 samples, 0.2 s
# apart, as "TOTAL ANON" lines in PID order.
sample_max() {
	local p t a i
	for p in "$@"; do
		local mt=0 ma=0
		for i in 1 2 3 4 5; do
			read -r t a < <(guest_rss "$p")
			[ "$t" -gt "$mt" ] && mt=$t ma=$a
			[ "$i" = 5 ] || sleep 0.2
		done
		echo "$mt $ma"
	done
}

# idle: the session up, no stream opened yet
{ read -r idle_s idle_sa; read -r idle_l idle_la; } < <(sample_max "$SERVER_PID" "$LOCAL_PID")
if [ "$idle_s" -eq 0 ] || [ "$idle_l" -eq 0 ]; then
	die "no guest mappings found at $GUEST_BASE (QEMU_GUEST_BASE ignored?)"
fi
while read -r k v; do record "server_idle_map_$k" "$v"; done < <(guest_map "$SERVER_PID")
while read -r k v; do record "local_idle_map_$k" "$v"; done < <(guest_map "$LOCAL_PID")

# the download, sampled every 0.2 s
sample_peak() {
	local t a
	while :; do
		read -r t a < <(guest_rss "$SERVER_PID")
		echo "s $t $a"
		read -r t a < <(guest_rss "$LOCAL_PID")
		echo "l $t $a"
		sleep 0.2
	done >"$T/rss.samples"
}
sample_peak &
SAMPLER=$!
lib_track "$SAMPLER" rss-sampler
fetch big.bin 150
stop_pid "$SAMPLER" 5 || true
peak() { awk -v w="$1" -v c="$2" '$1 == w && $c > m { m = $c } END { print m + 0 }' "$T/rss.samples"; }
# and idle again once the stream is gone (the heap keeps its high-water mark)
{ read -r after_s after_sa; read -r after_l after_la; } < <(sample_max "$SERVER_PID" "$LOCAL_PID")

record server_idle_rss_kb "$idle_s"
record server_idle_anon_kb "$idle_sa"
record local_idle_rss_kb "$idle_l"
record local_idle_anon_kb "$idle_la"
record server_download_rss_kb "$(peak s 2)"
record server_download_anon_kb "$(peak s 3)"
record local_download_rss_kb "$(peak l 2)"
record local_download_anon_kb "$(peak l 3)"
record server_after_rss_kb "$after_s"
record server_after_anon_kb "$after_sa"
record local_after_rss_kb "$after_l"
record local_after_anon_kb "$after_la"
record emulator_vmrss_server_kb "$(rss_kb "$SERVER_PID")"
record emulator_vmrss_local_kb "$(rss_kb "$LOCAL_PID")"
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
stop_impair
lost=$(($(impair_counter up lost_random) + $(impair_counter down lost_random)))
[ "$lost" -gt 0 ] || die "the relay dropped nothing: was the loss applied?"
ok "cross pair: 4 MiB through 1 % loss each way ($lost datagrams dropped)"
record relay_dropped "$lost"

# ---- 2. native server, cross local ---------------------------------------
KS_SERVER=$NATIVE_SERVER
start_server --profile low-memory
KS_LOCAL=$CROSS_LOCAL
start_local "$SERVER_PORT" low-memory
wait_session 40
fetch big.bin 120
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
ok "native server <- cross local"

# ---- 3. cross server, native local ---------------------------------------
KS_SERVER=$CROSS_SERVER
start_server
KS_LOCAL=$NATIVE_LOCAL
start_local "$SERVER_PORT"
wait_session 40
fetch big.bin 120
stop_daemon "$LOCAL_PID"
stop_daemon "$SERVER_PID"
ok "cross server <- native local"

if [ -n "${CROSS_FOOTPRINT:-}" ]; then
	printf '%s\n' "${FOOT[@]}" >"$CROSS_FOOTPRINT"
fi
echo "cross_pair: ok"
