#!/usr/bin/env bash
# fuzz-run.sh SECONDS FUZZER... - run each libFuzzer target for SECONDS on a
# scratch copy of its corpus (the checked-in corpus is never modified here).
set -uo pipefail
secs=$1
shift
pass=0
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	seed="tests/fuzz/corpus/${name#fuzz_}"
	work=$(mktemp -d)
	cp -r "$seed"/. "$work"/ 2>/dev/null || true
	if timeout $((secs + 60)) "$bin" -max_total_time="$secs" -rss_limit_mb=2048 \
		-artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
		pass=$((pass + 1))
		echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" || tail -n1 "$work.log"))"
	else
		fail=$((fail + 1))
		echo "fuzz: $name FAILED; log follows" >&2
		tail -n 60 "$work.log" >&2
		ls "$work"/crash-* "$work"/leak-* 2>/dev/null >&2
	fi
	rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]
