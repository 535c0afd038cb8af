#!/usr/bin/env bash
# pkg_deb.sh - the Debian package, end to end (make test-package; as root):
#   1. dpkg-buildpackage -us -uc (source + binary) from a copy of this tree,
#      nocheck and parallel=2, so the tests are not run a second time;
#   2. lintian on the .changes: no error, no warning (overrides are listed);
#   3. dpkg -i: the kcpsocks user exists (sysusers.d), /etc/kcpsocks is
#      root:kcpsocks 0750 (tmpfiles.d), no unit is enabled, no daemon runs;
#   4. a key and config in /etc/kcpsocks as an operator makes them
#      (root:kcpsocks 0640), --check-config and a loopback fetch through the
#      installed /usr/bin daemons running as the kcpsocks user, as the units
#      run them, under strace: every system call they made must pass the
#      units' SystemCallFilter (no CI machine runs systemd to enforce it);
#   5. systemd-analyze security --offline=true (exposure <= 2.0) and
#      systemd-analyze verify of every installed unit;
#   6. dpkg --purge: no file of the package, no /etc/kcpsocks left.
# Debian keeps system users on purge, and so does the package; this test
# removes the kcpsocks user afterwards when it created it. Whatever fails,
# the EXIT trap stops the daemons and purges the package.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init pkg_deb

ROOT=$(cd "$LIB_DIR/../.." && pwd)
PKG=kcpsocks
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

[ "$(id -u)" = 0 ] || die "needs root (dpkg -i, the kcpsocks user); make test-package as root"
for t in dpkg-buildpackage dh lintian systemd-analyze systemd-sysusers setpriv strace; do
	command -v "$t" >/dev/null || die "$t missing (scripts/deps.sh package)"
done
# Never touch an operator's installation or configs.
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'ok installed'; then
	die "$PKG is installed on this machine; this test installs and purges its own"
fi
[ ! -e /etc/kcpsocks ] || die "/etc/kcpsocks exists; purging the package would remove it"
USER_EXISTED=0
getent passwd kcpsocks >/dev/null && USER_EXISTED=1
INSTALLED=0

# children PID: the PIDs of PID's children (a traced daemon under strace).
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# stop_traced PID: SIGTERM to the daemon strace (PID) runs, then a bounded
# wait for both; strace ignores SIGTERM itself and would leave the daemon.
stop_traced() {
	local c
	for c in $(children "$1"); do kill -TERM "$c" 2>/dev/null || true; done
	if ! poll 15 not_alive "$1"; then
		for c in $(children "$1"); do kill -KILL "$c" 2>/dev/null || true; done
		stop_pid "$1" 5 >/dev/null 2>&1 || true
		die "pid $1's daemon did not exit within 15 s of SIGTERM"
	fi
	stop_pid "$1" 5 >/dev/null 2>&1 || true
}

pkg_cleanup() {
	local p c
	for p in "${LIB_PIDS[@]}"; do
		for c in $(children "$p"); do kill -TERM "$c" 2>/dev/null || true; done
	done
	for p in "${LIB_PIDS[@]}"; do stop_pid "$p" 5 >/dev/null 2>&1 || true; done
	if [ "$INSTALLED" = 1 ]; then
		dpkg --purge "$PKG" >"$T/purge-on-exit.log" 2>&1 ||
			echo "$LIB_NAME: dpkg --purge $PKG failed: $(cat "$T/purge-on-exit.log")" >&2
		INSTALLED=0
	fi
	if [ "$USER_EXISTED" = 0 ] && getent passwd kcpsocks >/dev/null; then
		userdel kcpsocks 2>/dev/null || true
		if getent group kcpsocks >/dev/null; then groupdel kcpsocks 2>/dev/null || true; fi
	fi
	return 0
}
# lib_cleanup reads the exit status from $?: hand it on.
pkg_exit() {
	local rc=$?
	pkg_cleanup
	(exit "$rc")
	lib_cleanup
}
trap pkg_exit EXIT

# ---- 1. build -------------------------------------------------------------
SRC=$T/src/$PKG
mkdir -p "$SRC"
# The tree as git sees it (tracked and new files, none it ignores: no
# build/, no leftovers of an earlier package build); all of it without git.
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -z -co --exclude-standard |
		tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$SRC" -xf -
else
	tar -C "$ROOT" --exclude=./build --exclude=./debian/build --exclude=./debian/.debhelper \
		--exclude="./debian/$PKG" -cf - . | tar -C "$SRC" -xf -
fi
[ -x "$SRC/debian/rules" ] || die "copy of the tree in $SRC has no debian/rules"
lib_log dpkg-buildpackage "$T/build.log"
t0=$(now_ms)
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc) \
	>"$T/build.log" 2>&1 || die "dpkg-buildpackage failed"
DEB=$(find "$T/src" -maxdepth 1 -name "${PKG}_*.deb" | head -n 1)
CHANGES=$(find "$T/src" -maxdepth 1 -name "${PKG}_*.changes" | head -n 1)
[ -n "$DEB" ] && [ -n "$CHANGES" ] || die "no .deb or .changes in $T/src"
ok "dpkg-buildpackage -us -uc: $(basename "$DEB") in $((($(now_ms) - t0) / 1000)) s"

# ---- 2. lintian -----------------------------------------------------------
lintian --pedantic --display-info --show-overrides "$CHANGES" >"$T/lintian.log" 2>&1 || true
lib_log lintian "$T/lintian.log"
grep -E '^[EW]: ' "$T/lintian.log" && die "lintian: errors or warnings (above)"
ok "lintian: no error or warning; $(grep -c '^I: ' "$T/lintian.log" || true) info, $(grep -c '^O: ' "$T/lintian.log" || true) overridden:"
grep -E '^[IPO]: ' "$T/lintian.log" | sed 's/^/    /' || true

# ---- 3. install -----------------------------------------------------------
INSTALLED=1
dpkg -i "$DEB" >"$T/install.log" 2>&1 || die "dpkg -i: $(cat "$T/install.log")"
dpkg -L "$PKG" >"$T/files.list"
getent passwd kcpsocks >/dev/null || die "no kcpsocks user after install (sysusers.d)"
[ "$(stat -c '%a %U %G' /etc/kcpsocks)" = "750 root kcpsocks" ] ||
	die "/etc/kcpsocks is $(stat -c '%a %U %G' /etc/kcpsocks), want 750 root kcpsocks"
ls /etc/systemd/system/*.wants/kcpsocks* >/dev/null 2>&1 && die "a kcpsocks unit was enabled on install"
for exe in /proc/[0-9]*/exe; do
	case $(readlink "$exe" 2>/dev/null) in /usr/bin/kcpsocks-*) die "a daemon runs after install: $exe" ;; esac
done
for f in /usr/bin/kcpsocks-server /usr/bin/kcpsocks-local; do
	[ -x "$f" ] || die "$f not installed"
done
UNITS=$(grep -E '/systemd/system/kcpsocks-.*\.service$' "$T/files.list" | sort)
[ "$(echo "$UNITS" | wc -l)" = 3 ] || die "want 3 units, got: $UNITS"
cmp -s "$ROOT/examples/kcpsocks-server.conf" /usr/share/doc/kcpsocks/examples/kcpsocks-server.conf ||
	die "the installed example server config differs from examples/"
ok "installed: user $(getent passwd kcpsocks | cut -d: -f1,3,4,6,7), /etc/kcpsocks 0750 root:kcpsocks, nothing enabled or running"

# ---- 4. configure as an operator, check and fetch -------------------------
# The daemons run as kcpsocks, like the units (User=kcpsocks), under
# strace (one trace file per process in $TR), through wrappers whose exec
# keeps the PID the harness tracks (strace's; the daemon is its child).
TR=$T/trace
mkdir -p "$TR"
chown kcpsocks "$TR"
chmod 0711 "$T" # kcpsocks may pass through to $TR, not list $T
for d in server local; do
	printf '#!/bin/sh\nexec setpriv --reuid=kcpsocks --regid=kcpsocks --init-groups strace -ff -qq -o %s/%s /usr/bin/kcpsocks-%s "$@"\n' \
		"$TR" "$d" "$d" >"$T/as-kcpsocks-$d"
	chmod 0755 "$T/as-kcpsocks-$d"
done
KS_SERVER=$T/as-kcpsocks-server
KS_LOCAL=$T/as-kcpsocks-local
SERVER_CONF=/etc/kcpsocks/server.conf
/usr/bin/kcpsocks-server keygen --out /etc/kcpsocks/server.key >"$T/keygen.out" 2>&1 ||
	die "keygen: $(cat "$T/keygen.out")"
cat >"$SERVER_CONF" <<-EOF
	log_level = info
	log_target = stderr
	[server]
	private_key_file = /etc/kcpsocks/server.key
	allow = 127.0.0.0/8
	resolver_lookups = files
EOF
/usr/bin/kcpsocks-server adduser alice --config "$SERVER_CONF" --host 127.0.0.1 >"$T/adduser.out" 2>&1 ||
	die "adduser: $(cat "$T/adduser.out")"
CONNSTR=$(grep -oE "kcpsocks://[^[:space:]'\"]+" "$T/adduser.out" | head -n 1 || true)
[ -n "$CONNSTR" ] || die "no connection string from adduser: $(cat "$T/adduser.out")"
if ! grep -q '^\[user alice\]' "$SERVER_CONF"; then
	psk=${CONNSTR#kcpsocks://*:}
	printf '[user alice]\npsk = %s\n' "${psk%%@*}" >>"$SERVER_CONF"
fi
chgrp kcpsocks "$SERVER_CONF" /etc/kcpsocks/server.key
chmod 0640 "$SERVER_CONF" /etc/kcpsocks/server.key
"$KS_SERVER" --config "$SERVER_CONF" --check-config >"$T/check.out" 2>&1 ||
	die "kcpsocks-server --check-config as kcpsocks: $(cat "$T/check.out")"
ok "installed kcpsocks-server --check-config, as the kcpsocks user, on /etc/kcpsocks/server.conf"

pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT
start_http
head -c 1048576 /dev/urandom >"$HTTP_DIR/page.bin"
start_server
start_local "$SERVER_PORT"
"$KS_LOCAL" --connect "$(local_connstr "$SERVER_PORT")" --check-config >"$T/check.out" 2>&1 ||
	die "kcpsocks-local --check-config: $(cat "$T/check.out")"
wait_session 20
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/page.bin" || die "curl through the installed daemons"
cmp -s "$T/got.bin" "$HTTP_DIR/page.bin" || die "the fetched page differs"
for p in $(children "$SERVER_PID") $(children "$LOCAL_PID"); do
	[ "$(stat -c %U "/proc/$p")" = kcpsocks ] || die "pid $p does not run as kcpsocks"
done
ok "1 MiB through /usr/bin/kcpsocks-local -> /usr/bin/kcpsocks-server (both as kcpsocks), identical"
stop_traced "$LOCAL_PID"
stop_traced "$SERVER_PID"

# Every call either daemon made (start, --check-config, the fetch, the
# drain on SIGTERM) against the units' filter: allowed by @system-service,
# not in the ~@privileged @resources the units take away.
systemd-analyze syscall-filter >"$T/filter-sets.txt" 2>&1 || die "systemd-analyze syscall-filter"
python3 - "$T/filter-sets.txt" "$TR" >"$T/syscalls.out" <<-'PY' || { cat "$T/syscalls.out" >&2; die "a system call outside the units' SystemCallFilter"; }
	import glob, re, sys
	groups, cur = {}, None
	for line in open(sys.argv[1]):
	    s = line.strip()
	    if not s or s.startswith("#"):
	        continue
	    if not line[0].isspace() and s.startswith("@"):
	        cur = groups.setdefault(s, [])
	    elif cur is not None:
	        cur.append(s)
	def expand(g):
	    out = set()
	    for m in groups.get(g, []):
	        out |= expand(m) if m.startswith("@") else {m}
	    return out
	allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
	used = {}
	for f in glob.glob(sys.argv[2] + "/*"):
	    for line in open(f, errors="replace"):
	        m = re.match(r"([a-z_0-9]+)\(", line)
	        if m:
	            used.setdefault(m.group(1), f.rsplit("/", 1)[1].split(".")[0])
	bad = sorted(c for c in used if c not in allowed)
	if not used:
	    sys.exit("no system calls traced")
	for c in bad:
	    print(f"  {used[c]}: {c}")
	print(f"{len(used)} distinct system calls traced")
	sys.exit(1 if bad else 0)
PY
ok "strace of both daemons: $(tail -n 1 "$T/syscalls.out"), all allowed by the units' SystemCallFilter"

# ---- 5. the units ---------------------------------------------------------
for u in $UNITS; do
	systemd-analyze security --offline=true --threshold="${MAX_EXPOSURE/./}" "$u" \
		>"$T/security.out" 2>&1 || {
		cat "$T/security.out" >&2
		die "systemd-analyze security: $(basename "$u") above $MAX_EXPOSURE"
	}
	ok "$(basename "$u"): $(grep -o 'exposure level.*' "$T/security.out")"
done
verify_flags=()
command -v man >/dev/null || verify_flags=(--man=false)
# shellcheck disable=SC2086
systemd-analyze verify "${verify_flags[@]}" $UNITS >"$T/verify.out" 2>&1 || {
	cat "$T/verify.out" >&2
	die "systemd-analyze verify"
}
[ ! -s "$T/verify.out" ] || {
	cat "$T/verify.out" >&2
	die "systemd-analyze verify printed warnings"
}
man_note="man pages checked"
[ ${#verify_flags[@]} -eq 0 ] || man_note="no man command: --man=false"
ok "systemd-analyze verify: clean for $(echo "$UNITS" | wc -l) units ($man_note)"

# ---- 6. purge -------------------------------------------------------------
dpkg --purge "$PKG" >"$T/purge.log" 2>&1 || die "dpkg --purge: $(cat "$T/purge.log")"
INSTALLED=0
left=()
while read -r f; do
	[ -e "$f" ] && [ ! -d "$f" ] && left+=("$f")
done <"$T/files.list"
[ ${#left[@]} -eq 0 ] || die "left after purge: ${left[*]}"
[ ! -e /etc/kcpsocks ] || die "/etc/kcpsocks left after purge"
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'ok installed' && die "$PKG still installed"
kept="the kcpsocks user is kept (Debian keeps system users)"
[ "$USER_EXISTED" = 0 ] && kept="$kept; this test removes it now"
ok "purged: no file of the package, no /etc/kcpsocks; $kept"
echo "pkg_deb: passed"
