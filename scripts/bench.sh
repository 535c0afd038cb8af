#!/usr/bin/env bash
# bench.sh NAME BUILD - run BUILD/bench/bench_NAME, keep its markdown report
# in docs/bench/NAME.md, and rebuild docs/BENCHMARKS.md from all reports with
# a description of the machine they ran on.
#
# bench.sh peers BUILD - kcpsocks against kcptun, shadowsocks-libev and v2ray
# mKCP on loopback (bench/run-peers.sh; docs/benchmarking.md): installs the
# peers (scripts/deps.sh bench) when it can, writes docs/bench/peers.md and
# the docs/bench/peers-*.png plots, and docs/bench/matrix.md (every profile
# x every path, page loads, the bottleneck, concurrency; bench/matrix_report.py),
# then rebuilds docs/BENCHMARKS.md.
# BENCH_QUICK=1 makes it a short smoke run.
#
# bench.sh matrix BUILD - the matrix alone (the same runner and report,
# without peers.md): BENCH_ONLY defaults to the matrix contenders and the
# TCP ceilings, so the issue-8/9 rows (kcpsocks-profile, -fastopen, kcptun's
# FEC modes, mkcp-default) are not run; writes docs/bench/matrix.md.
#
# bench.sh handshake BUILD - the daemons under handshake floods
# (bench/run-handshake.sh): docs/bench/handshake.md.
#
# bench.sh udp BUILD - UDP ASSOCIATE: DNS latency through the tunnel idle
# and during a bulk download, and a UDP echo at 1 % loss beside
# shadowsocks-libev's ss-local -u (bench/run-udp.sh): docs/bench/udp.md.
#
# bench.sh cross BUILD - the footprint of the cross-built daemons
# (scripts/cross-footprint.sh; make bench-cross builds them first).
set -euo pipefail
name=$1
build=$2
mkdir -p docs/bench
out=docs/bench/$name.md
if [ "$name" = handshake ]; then
	# The daemons under a handshake flood (bench/run-handshake.sh).
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	{
		echo "Command: \`make bench-handshake\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo none))"
		echo
		bench/run-handshake.sh "$build"
	} >"$tmp"
	mv "$tmp" "$out"
	cat "$out"
elif [ "$name" = udp ]; then
	# UDP ASSOCIATE: DNS latency idle and under bulk, echo at 1 % loss
	# beside ss-local -u (bench/run-udp.sh).
	scripts/deps.sh udp || true
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	{
		echo "## udp"
		echo
		bench/run-udp.sh "$build"
	} >"$tmp"
	mv "$tmp" "$out"
	cat "$out"
elif [ "$name" = peers ]; then
	scripts/deps.sh bench || echo "bench.sh: some peers are missing; they will be skipped" >&2
	export BENCH_OUT=${BENCH_OUT:-$build/bench-peers}
	bench/run-peers.sh "$build"
	# idle sessions and streams, handshakes (issue 19); BENCH_FOOTPRINT=0 skips
	[ "${BENCH_FOOTPRINT:-1}" = 0 ] || bench/run-footprint.sh "$build" "$BENCH_OUT"
	python3 bench/peers_report.py "$BENCH_OUT" docs/bench
	# the matrix, page loads, bottleneck and concurrency (issues 20, 19)
	python3 bench/matrix_report.py "$BENCH_OUT" docs/bench
	cat "$out" docs/bench/matrix.md
elif [ "$name" = matrix ]; then
	scripts/deps.sh bench || echo "bench.sh: some peers are missing; they will be skipped" >&2
	export BENCH_OUT=${BENCH_OUT:-$build/bench-matrix}
	export BENCH_ONLY=${BENCH_ONLY:-^(direct|ss-tcp|kcpsocks-[a-z-]+|kcptun-fast3/.*|kcptun-w64/.*|mkcp-tuned)$}
	export BENCH_SKIP=${BENCH_SKIP:-^kcpsocks-(profile|fastopen)$}
	bench/run-peers.sh "$build"
	[ "${BENCH_FOOTPRINT:-1}" = 0 ] || bench/run-footprint.sh "$build" "$BENCH_OUT"
	BENCH_COMMAND="make bench-matrix" python3 bench/matrix_report.py "$BENCH_OUT" docs/bench
	out=docs/bench/matrix.md
	cat "$out"
elif [ "$name" = cross ]; then
	# the cross-built daemons' sizes, libraries and RSS under qemu-user
	scripts/cross-footprint.sh "$build" >"$out.tmp" && mv "$out.tmp" "$out"
	cat "$out"
else
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	{
		echo "## $name"
		echo
		echo "Command: \`make bench-$name\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo none))"
		echo
		report=$("$build/bench/bench_$name")
		# shellcheck disable=SC2016 # the backquotes are markdown
		case "$report" in
		"#"* | "|"*) printf '%s\n' "$report" ;;
		*) printf '```text\n%s\n```\n' "$report" ;;
		esac
	} >"$tmp"
	mv "$tmp" "$out"
	cat "$out"
fi
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\`; do not edit by hand. Each section names the command"
	echo "that produced it. Numbers are from one shared 2-core machine and vary"
	echo "run to run; ratios measured in the same run are what count."
	echo
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "$(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r), $(cc --version | head -n1)."
	echo
	for f in docs/bench/*.md; do
		cat "$f"
		echo
	done
} >docs/BENCHMARKS.md
