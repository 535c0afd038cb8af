#!/usr/bin/env bash
# demo.sh BUILD - the loopback demo: server and local daemon with a fresh key.
set -euo pipefail
build=$1
if [ ! -x "$build/kcpsocks-server" ] || [ ! -x "$build/kcpsocks-local" ]; then
	echo "make run: the daemons (issue 6) are not built yet; see the README status table." >&2
	exit 1
fi
exec scripts/loopback-demo.sh "$build"
