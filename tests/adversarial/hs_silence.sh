#!/usr/bin/env bash
# hs_silence.sh - issue 14: nothing goes back to a sender without a valid
# PSK, whatever it sends; a valid init's response is no longer than the
# init (no reflection); a client of a newer wire version gets a clean,
# authenticated refusal and the server logs it; a client asking for a
# longer idle timeout than max_idle_timeout_ms gets the maximum.
set -euo pipefail
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/hs_lib.sh"
lib_init hs_silence
require_daemons
pick_ports SERVER_PORT SERVER_METRICS

make_keys alice "max_idle_timeout_ms = 300000"
start_server

# A captured valid init, for the replay kind.
line=$(hs_as alice valid --save "$T/init.bin")
[ "$(field "$line" accepted)" = 1 ] || die "a valid init was not answered: $line"

for kind in garbage badmac unknown wrongpsk data replay; do
	extra=()
	case $kind in
	wrongpsk) extra=(--user alice --psk "$(user_psk alice)") ;;
	replay) extra=(--replay "$T/init.bin") ;;
	esac
	line=$(hs "$kind" --count 300 --rate 3000 --wait 500 "${extra[@]}")
	[ "$(field "$line" sent)" = 300 ] || die "$kind: not all sent: $line"
	[ "$(field "$line" bytes_in)" = 0 ] || die "$kind: bytes came back: $line"
	ok "$kind: 300 datagrams ($(field "$line" bytes_out) bytes), 0 bytes back"
done

# Valid inits: the response is never longer than the init.
for i in 1 2 3 4 5 6 7 8; do
	line=$(hs_as alice valid --wait 2000)
	[ "$(field "$line" accepted)" = 1 ] || die "valid init $i not answered: $line"
	il=$(field "$line" init_len)
	rl=$(field "$line" resp_len)
	[ "$rl" -le "$il" ] || die "response $rl bytes > init $il bytes"
	echo "$il $rl" >>"$T/sizes"
done
ok "8 valid inits answered, response <= init each time: $(tr '\n' ',' <"$T/sizes")"
[ "$(field "$line" wire)" = 2 ] || die "wire version not 2: $line"
(( $(field "$line" features) & 1 )) || die "fast open not offered: $line"
ok "wire version 2, features 1 (fast open)"

# A client asking for an idle timeout of an hour gets max_idle_timeout_ms.
line=$(hs_as alice valid --idle 3600000 --wait 2000)
[ "$(field "$line" idle_ms)" = 300000 ] || die "idle timeout not clamped to 300000: $line"
ok "idle timeout 3600000 asked, 300000 (max_idle_timeout_ms) given"

# A newer client (wire versions 3..3): an authenticated refusal, no
# longer than its init, and a log line on the server.
line=$(hs_as alice valid --wire 3:3 --wait 2000)
[ "$(field "$line" refused)" = 1 ] || die "no refusal for wire version 3: $line"
[ "$(field "$line" resp_len)" -le "$(field "$line" init_len)" ] || die "refusal longer than init: $line"
[ "$(field "$line" server_wire)" = 1..2 ] || die "refusal does not name 1..2: $line"
wait_until "the server's refusal line" 5 grep -q 'refused: it speaks wire versions 3..3, this server 1..2' "$SERVER_LOG"
ok "wire version 3 client: authenticated refusal ($line), server logged it"

# And a wrong-PSK client of version 3 gets nothing.
line=$(hs wrongpsk --user alice --psk "$(user_psk alice)" --wire 3:3 --count 20 --wait 500)
[ "$(field "$line" bytes_in)" = 0 ] || die "a refusal went to a wrong PSK: $line"
ok "wrong PSK with wire version 3: 0 bytes back"
