#!/usr/bin/env bash
# replay-corpus.sh REPLAY_BINARY... - feed every checked-in corpus file to its
# fuzz target (built with a plain main, no libFuzzer): the corpus is a
# regression suite that runs in every `make test`.
set -uo pipefail
pass=0
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	dir="tests/fuzz/corpus/${name#fuzz_}"
	if [ ! -d "$dir" ] || [ -z "$(ls -A "$dir")" ]; then
		echo "replay: $name has no corpus in $dir" >&2
		fail=$((fail + 1))
		continue
	fi
	# TEST_WRAPPER: a command to run each binary with (make test-cross: qemu-user)
	if timeout 300 ${TEST_WRAPPER:-} "$bin" "$dir"/*; then
		pass=$((pass + 1))
	else
		echo "replay: $name failed" >&2
		fail=$((fail + 1))
	fi
done
echo "replay: $pass passed, $fail failed"
[ $fail -eq 0 ]
