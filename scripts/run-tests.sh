#!/usr/bin/env bash
# run-tests.sh KIND BINARY... - run each test binary with a time bound, print
# its output, and end with one "KIND: N passed, N failed" line.
set -uo pipefail
kind=$1
shift
limit=${TEST_TIMEOUT:-600}
pass=0
fail=0
failed=()
for t in "$@"; do
	# TEST_WRAPPER: a command to run each binary with (make test-cross: qemu-user)
	if timeout --kill-after=10 "$limit" ${TEST_WRAPPER:-} "$t"; then
		pass=$((pass + 1))
	else
		rc=$?
		fail=$((fail + 1))
		failed+=("$(basename "$t") (exit $rc)")
	fi
done
[ $fail -gt 0 ] && printf 'FAILED: %s\n' "${failed[@]}"
echo "$kind: $pass passed, $fail failed"
[ $fail -eq 0 ]
