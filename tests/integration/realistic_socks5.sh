#!/usr/bin/env bash
# realistic_socks5.sh - real curl (--socks5-hostname) through
# kcpsocks-local -> impair -> kcpsocks-server to nginx, on four paths:
#   clean     no impairment
#   loss1     1% loss, 10 ms each way
#   loss5     5% loss, 30 ms each way, 10 ms jitter, 5% reordered by 20 ms
#   burst     Gilbert-Elliott bursts (1% good->bad, 30% bad->good: mean
#             burst about 3 datagrams, about 3% loss overall), 20 ms
# The lossy paths other than loss1 use the `lossy` profile, the one
# docs/CONFIG.md recommends there (with `default`, whose congestion window
# halves on every loss, 16 MiB over `burst` took more than 120 s).
# On each: every file size (1 KiB .. 16 MiB) alone, then all but the
# largest in one keep-alive curl, then a fetch by host name (the server
# resolves "localhost"); every body sha256-checked. Then both daemons must stop on
# SIGTERM within 10 s with status 0. A failure prints the daemons', the
# relay's and nginx's logs. Knobs: SCENARIOS (names above, space
# separated), SIZES, SEED.
. "$(dirname "$0")/lib.sh"
lib_init realistic_socks5
require_daemons

SIZES=${SIZES:-1K 64K 1M 16M} # ascending: the last is left out of the keep-alive batch
SCENARIOS=${SCENARIOS:-clean loss1 loss5 burst}
SEED=${SEED:-20261125} # fixed by default so a failure reproduces
note "seed $SEED (SEED=$SEED reproduces the relay's decisions, not the timing)"

# scenario NAME: "PROFILE IMPAIR_ARGS..." for that path.
scenario() {
	case $1 in
	clean) echo "default" ;;
	loss1) echo "default --loss 0.01 --delay 10" ;;
	loss5) echo "lossy --loss 0.05 --delay 30 --jitter 10 --reorder 0.05,20" ;;
	burst) echo "lossy --burst 0.01,0.3 --delay 20" ;;
	*) die "unknown scenario $1" ;;
	esac
}

# shellcheck disable=SC2086  # SIZES is a list
start_nginx $SIZES
make_keys
start_server

for sc in $SCENARIOS; do
	spec=$(scenario "$sc")
	read -r profile impair_args <<<"$spec"
	# shellcheck disable=SC2086  # impair_args is a list
	start_impair "$SERVER_PORT" --seed "$SEED" $impair_args
	start_local "$IMPAIR_PORT" "$profile"
	note "== $sc: profile $profile, impair $impair_args"
	for s in $SIZES; do
		fetch_verify "$s" || die "$sc: $s"
	done
	ka=${SIZES% *}
	# shellcheck disable=SC2086
	fetch_keepalive $ka || die "$sc: keep-alive"
	note "$sc: keep-alive fetch of $ka in one connection ok"
	if [ "$NGINX_V6" = 1 ]; then
		fetch_verify 64K localhost || die "$sc: by host name"
	fi
	stop_pid "$LOCAL_PID" 10 || die "$sc: kcpsocks-local did not stop cleanly on SIGTERM (status $?)"
	stop_impair
	note "$sc: relay up: $(sed -n 's/^up //p' "$IMPAIR_STATS" | cut -d' ' -f1-7)"
done

stop_pid "$SERVER_PID" 10 || die "kcpsocks-server did not stop cleanly on SIGTERM (status $?)"
note ok
