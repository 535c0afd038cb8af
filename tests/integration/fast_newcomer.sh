#!/usr/bin/env bash
# fast_newcomer.sh - README's "Using it" block, run as written on loopback.
#
# The first ```sh block under "## Using it" in README.md is taken verbatim;
# only its three ports (8443 the server, 1080 the SOCKS5 listener, 8000 the
# web server) become free ones. Each command runs in order in an empty
# directory with build/ first on PATH, the way a newcomer pastes them. A
# command ending in `&` is started in the background (tracked, so the exit
# trap stops it) and the test waits for the port it opens before the next
# command, as a person at a terminal would. Then: curl's output through the
# tunnel must be the page, the secret files must be owner-only, and nobody
# may have warned about them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_newcomer
require_daemons
pick_ports SP LP HP

TOP=$(cd "$LIB_DIR/../.." && pwd)
BIN=$(cd "$BUILD" && pwd)
[ -x "$BIN/kcpsocks-server" ] || die "no $BIN/kcpsocks-server: run make"
block=$(awk '/^## Using it/ {u = 1; next} u && /^## / {exit}
	u && /^```sh$/ {b = 1; next} b && /^```$/ {exit} b {print}' "$TOP/README.md")
[ -n "$block" ] || die "README.md has no \`\`\`sh block under '## Using it'"
block=$(printf '%s\n' "$block" | sed -E "s/\b8443\b/$SP/g; s/\b1080\b/$LP/g; s/\b8000\b/$HP/g")

# Split into commands: one per line, a heredoc with its body.
cmds=()
cur=""
delim=""
while IFS= read -r line; do
	if [ -n "$delim" ]; then
		cur+=$'\n'"$line"
		if [ "$line" = "$delim" ]; then
			cmds+=("$cur")
			cur=""
			delim=""
		fi
		continue
	fi
	[ -n "$line" ] || continue
	if [[ $line =~ \<\<\'?([A-Za-z_]+)\'? ]]; then
		delim=${BASH_REMATCH[1]}
		cur=$line
		continue
	fi
	cmds+=("$line")
done <<<"$block"
[ -z "$delim" ] || die "README block: heredoc $delim never ends"
[ ${#cmds[@]} -ge 6 ] || die "README block: only ${#cmds[@]} commands"

W=$T/newcomer
mkdir -p "$W"
cd "$W"
PATH=$BIN:$PATH
n=0
for c in "${cmds[@]}"; do
	n=$((n + 1))
	out=$T/cmd$n.log
	note "\$ $c"
	if [[ $c =~ \&[[:space:]]*(#.*)?$ ]]; then
		eval "$c" >"$out" 2>&1
		pid=$!
		lib_track "$pid" "readme-cmd$n" "$out"
		case $c in
		kcpsocks-server*) wait_for_udp_port "$SP" 10 "$pid" ;;
		kcpsocks-local*) wait_for_tcp_port "$LP" 10 "$pid" ;;
		*http.server*) wait_for_tcp_port "$HP" 20 "$pid" ;;
		*) die "README block: no known port for background command: $c" ;;
		esac
	else
		# In this shell, as in a terminal: umask and the like carry over.
		lib_log "readme-cmd$n" "$out"
		eval "$c" >"$out" 2>&1 || die "README command $n failed: $c"
	fi
done

# The last command is the curl through the tunnel: its output is the page.
grep -qx 'hello through kcpsocks' "$out" || die "curl through the tunnel did not print the page: $(cat "$out")"
ok "curl through the tunnel printed the page"
for f in server.key server.conf alice.conf; do
	[ -f "$f" ] || die "README did not create $f"
	[ "$(stat -c %a "$f")" = 600 ] || die "$f is mode $(stat -c %a "$f"), want 600"
done
ok "server.key, server.conf, alice.conf are mode 600"
grep -q '^\[user alice\]' server.conf || die "adduser did not append [user alice]"
if grep -h 'warn' "$T"/cmd*.log | grep -v 'running as root without run_as'; then
	die "a README command warned"
fi
ok "no warnings (besides running as root) from README's commands"
