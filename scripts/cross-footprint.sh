#!/usr/bin/env bash
# cross-footprint.sh BUILD - the footprint of the cross-built daemons as a
# markdown section on stdout (scripts/bench.sh cross writes it to
# docs/bench/cross.md): stripped sizes and the shared libraries each needs
# for arm64, armhf and mipsel (build/cross-ARCH, from make cross), and the
# guest RSS of the 32-bit pair under qemu-user (tests/integration/
# cross_pair.sh with profile low-memory; see its header for the method).
set -euo pipefail
build=$1
# a build is an ARCH, or ARCH-static (make cross ARCH=... STATIC=1)
arches="arm64 armhf mipsel mipsel-static"
rss_arches="mipsel armhf mipsel-static"
triplet() {
	case ${1%-static} in
	arm64) echo aarch64-linux-gnu ;;
	armhf) echo arm-linux-gnueabihf ;;
	mipsel) echo mipsel-linux-gnu ;;
	esac
}
qemu_of() {
	case ${1%-static} in
	arm64) echo qemu-aarch64 ;;
	armhf) echo qemu-arm ;;
	mipsel) echo qemu-mipsel ;;
	esac
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for a in $rss_arches; do
	[ -d "build/cross-$a" ] || { rss_arches=${rss_arches/$a/}; continue; }
	CROSS_BUILD=build/cross-$a CROSS_RUN=$(qemu_of "$a") CROSS_FOOTPRINT=$tmp/$a.txt \
		BUILD=$build bash tests/integration/cross_pair.sh >"$tmp/$a.log" 2>&1 ||
		{
			cat "$tmp/$a.log" >&2
			echo "cross-footprint.sh: cross_pair.sh failed for $a" >&2
			exit 1
		}
done
val() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$tmp/$1.txt"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
kib() { awk -v b="$1" 'BEGIN { printf "%d", (b + 1023) / 1024 }'; }
verdict() { if [ "$1" -le "$2" ]; then echo met; else echo missed; fi; }

echo "## cross"
echo
echo "Command: \`make bench-cross\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo none))."
echo "Debian's cross compilers ($(mipsel-linux-gnu-gcc --version | head -n1)), multiarch libraries,"
echo "$(qemu-mipsel --version | head -n1 | sed 's/ (.*//'); docs/OPERATIONS.md, \"Building for a router\"."
echo
echo "### Binaries (-O2, stripped) and the shared libraries they need"
echo
echo "| arch | daemon | stripped | < 300 KiB | NEEDED (readelf -d) |"
echo "| --- | --- | ---: | --- | --- |"
for a in $arches; do
	t=$(triplet "$a")
	for d in kcpsocks-server kcpsocks-local; do
		f=build/cross-$a/$d
		[ -f "$f" ] || continue
		"$t-strip" -o "$tmp/s" "$f"
		sz=$(stat -c %s "$tmp/s")
		need=$(readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
		[ -n "$need" ] || need="none: static"
		echo "| $a | $d | $(kib "$sz") KiB | $(verdict "$sz" $((300 * 1024))) | ${need% } |"
	done
done
echo
echo "### Memory of the 32-bit daemons (profile low-memory, guest RSS under qemu-user)"
echo
echo "Guest RSS: the resident pages of the daemon's own 32-bit address space"
echo "(placed at a known host address with QEMU_GUEST_BASE and summed from"
echo "/proc/PID/smaps), i.e. what the process would have resident on a device"
echo "with these libraries: its binary, the shared libraries it maps (glibc"
echo "here; a router's musl is smaller), heap and stacks. Private is the"
echo "anonymous part (heap, stacks, .bss): the daemon's own memory. The"
echo "emulator's VmRSS (translator, code cache) is not the daemon's and is"
echo "given only for scale. Idle: the session up, no stream yet. Download: the"
echo "peak while 4 MiB pass through the relay at 1 % loss each way. After: idle"
echo "again once the stream has closed (the heap keeps its high-water mark)."
echo "mipsel-static: the same daemons linked with -static (make cross"
echo "ARCH=mipsel STATIC=1): no shared pages, only what they use of each library."
echo
echo "| arch | daemon | idle | idle private | download peak | download private | after | emulator VmRSS | idle <= 2 MiB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for a in $rss_arches; do
	for d in server local; do
		idle=$(val "$a" "${d}_idle_rss_kb")
		echo "| $a | $d | $(mib "$idle") MiB | $(mib "$(val "$a" "${d}_idle_anon_kb")") MiB" \
			"| $(mib "$(val "$a" "${d}_download_rss_kb")") MiB | $(mib "$(val "$a" "${d}_download_anon_kb")") MiB" \
			"| $(mib "$(val "$a" "${d}_after_rss_kb")") MiB | $(mib "$(val "$a" "emulator_vmrss_${d}_kb")") MiB" \
			"| $(verdict "$idle" 2048) (private: $(verdict "$(val "$a" "${d}_idle_anon_kb")" 2048)) |"
	done
done
echo
echo "Where the idle RSS is (KiB):"
echo
echo "| arch | daemon | binary | libc | libsodium | other libraries + ld.so | heap, stacks (unnamed) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for a in $rss_arches; do
	for d in server local; do
		echo "| $a | $d | $(val "$a" "${d}_idle_map_binary") | $(val "$a" "${d}_idle_map_libc")" \
			"| $(val "$a" "${d}_idle_map_libsodium") | $(val "$a" "${d}_idle_map_other_libs")" \
			"| $(val "$a" "${d}_idle_map_anon") |"
	done
done
echo
max_private=0
missed=
for a in $rss_arches; do
	for d in server local; do
		v=$(val "$a" "${d}_idle_anon_kb")
		[ "$v" -gt "$max_private" ] && max_private=$v
		[ "$(val "$a" "${d}_idle_rss_kb")" -le 2048 ] || missed="$missed $a/$d"
	done
done
echo "Targets: idle RSS at most 2 MiB per 32-bit daemon, a stripped binary"
echo "under 300 KiB (met/missed in the tables). Idle totals over 2 MiB:${missed:- none}."
echo "In the shared builds the largest part of the idle total is glibc's"
echo "libc.so, pages shared with every other glibc process on the box (a musl"
echo "router maps far less); the daemons' own private memory is at most"
echo "$max_private KiB idle. The file-backed columns are an upper bound: under"
echo "qemu more of a library's code is resident than on a CPU (libc's text"
echo "was about 80 % resident under qemu-mipsel, about 50 % for the native"
echo "x86-64 daemon); the private columns do not depend on the emulator."
