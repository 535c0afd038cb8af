#!/usr/bin/env bash
# run-integration.sh KIND BUILD - run every tests/integration/KIND_*.sh (for
# KIND adversarial: tests/adversarial/*.sh but *_lib.sh) with
# a time bound. Each script gets BUILD in its environment, starts only
# processes it owns, and cleans them up in a trap.
set -uo pipefail
kind=$1
export BUILD=$2
limit=${TEST_TIMEOUT:-600}
shopt -s nullglob
scripts=(tests/integration/"$kind"_*.sh)
# The adversarial suite has a directory of its own (helpers: *_lib.sh).
if [ "$kind" = adversarial ]; then
	scripts=()
	for s in tests/adversarial/*.sh; do
		[[ $s == *_lib.sh ]] || scripts+=("$s")
	done
fi
if [ ${#scripts[@]} -eq 0 ]; then
	echo "integration $kind: no tests of this kind exist yet" >&2
	[ "$kind" = fast ] || [ "$kind" = full ] && exit 0
	exit 1
fi
pass=0
fail=0
for s in "${scripts[@]}"; do
	echo "== $s"
	if timeout --kill-after=10 "$limit" bash "$s"; then
		pass=$((pass + 1))
	else
		echo "FAILED: $s (exit $?)"
		fail=$((fail + 1))
	fi
done
echo "integration-$kind: $pass passed, $fail failed"
[ $fail -eq 0 ]
