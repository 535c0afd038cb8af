# hs_lib.sh - shared by the handshake scripts of the adversarial suite
# (sourced after tests/integration/lib.sh). HSFLOOD is tools/hsflood.c.
HSFLOOD=${HSFLOOD:-$BUILD/hsflood}
[ -x "$HSFLOOD" ] || die "hsflood not built ($HSFLOOD missing; make all)"

# user_psk NAME: the PSK of [user NAME] in $SERVER_CONF.
user_psk() {
	awk -v u="[user $1]" '$0 == u {f = 1; next} /^\[/ {f = 0} f && $1 == "psk" {print $3; exit}' \
		"$SERVER_CONF"
}

# add_user NAME: a second user in $SERVER_CONF (before the server starts).
# Sets USER_CONNSTR (a connection string for it, as lib.sh's CONNSTR).
add_user() {
	local cs psk
	"$KS_SERVER" adduser "$1" --config "$SERVER_CONF" >"$T/adduser.$1.out" 2>&1 ||
		die "adduser $1: $(cat "$T/adduser.$1.out")"
	# adduser prints a connection string, or (newer) config snippets.
	cs=$(grep -oE "kcpsocks://[^[:space:]'\"]+" "$T/adduser.$1.out" | head -n 1 || true)
	if [ -n "$cs" ]; then
		psk=${cs#kcpsocks://*:}
		psk=${psk%%@*}
	else
		psk=$(sed -n 's/^psk = //p' "$T/adduser.$1.out" | head -n 1)
	fi
	[ -n "$psk" ] || die "no psk for $1 in adduser's output: $(cat "$T/adduser.$1.out")"
	grep -q "^\[user $1\]" "$SERVER_CONF" || printf '[user %s]\npsk = %s\n' "$1" "$psk" >>"$SERVER_CONF"
	[ "$(user_psk "$1")" = "$psk" ] || die "the psk of $1 in $SERVER_CONF is not the one adduser gave"
	USER_CONNSTR="kcpsocks://$1:$psk@127.0.0.1:1?key=$SERVER_PUB"
}

# hs KIND [ARGS...]: run hsflood at the server; prints its key=value line.
hs() {
	local kind=$1
	shift
	"$HSFLOOD" --server "127.0.0.1:$SERVER_PORT" --key "$SERVER_PUB" --kind "$kind" "$@"
}

# hs_as USER KIND [ARGS...]: hs with that user's name and PSK.
hs_as() {
	local u=$1 kind=$2
	shift 2
	hs "$kind" --user "$u" --psk "$(user_psk "$u")" "$@"
}

# field LINE KEY: the value of KEY=... in an hsflood line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
