#!/usr/bin/env bash
# pkg_deb.sh - the Debian package, end to end (make test-package; as root):
#   1. dpkg-buildpackage -us -uc (source + binary) from a copy of this tree,
#      nocheck and parallel=2, so the tests are not run a second time;
#   2. lintian on the .changes: no error, no warning (overrides are listed);
#   3. dpkg -i: the kcpsocks user exists (sysusers.d), /etc/kcpsocks is
#      root:kcpsocks 0750 (tmpfiles.d), no unit is enabled, no daemon runs;
#   4. a key and configs in /etc/kcpsocks as OPERATIONS.md's "Deploy" makes
#      them (kcpsocks, 0600), --check-config and a loopback fetch through the
#      installed /usr/bin daemons running as the kcpsocks user, as the units
#      run them, under strace: every system call and socket family they
#      used must pass their unit's SystemCallFilter and
#      RestrictAddressFamilies (no CI machine runs systemd to enforce them);
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
# The daemons run as kcpsocks with the units' open-files limit, like the
# units (User=kcpsocks, LimitNOFILE=), under
# strace (one trace file per process in $TR), through wrappers whose exec
# keeps the PID the harness tracks (strace's; the daemon is its child).
TR=$T/trace
mkdir -p "$TR"
chown kcpsocks "$TR"
chmod 0711 "$T" # kcpsocks may pass through to $TR, not list $T
UNITDIR=$(dirname "$(echo "$UNITS" | head -n 1)")
WARN_OK='^$' # warnings this machine causes, not the package
for d in server local; do
	# the unit's LimitNOFILE too (the example's max_fds asks for it)
	nofile=$(sed -n 's/^LimitNOFILE=//p' "$UNITDIR/kcpsocks-$d.service")
	[ -n "$nofile" ] || die "no LimitNOFILE in kcpsocks-$d.service"
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
		note "this machine caps open files at $hard, below the unit's $nofile: the $d runs with $hard"
		nofile=$hard
		WARN_OK='open files limit'
	fi
	printf '#!/bin/sh\nexec prlimit --nofile=%s setpriv --reuid=kcpsocks --regid=kcpsocks --init-groups strace -ff -qq -o %s/%s /usr/bin/kcpsocks-%s "$@"\n' \
		"$nofile" "$TR" "$d" "$d" >"$T/as-kcpsocks-$d"
	chmod 0755 "$T/as-kcpsocks-$d"
done
KS_SERVER=$T/as-kcpsocks-server
KS_LOCAL=$T/as-kcpsocks-local
# OPERATIONS.md's "Deploy", as written (the installed example, adduser
# writing the client's config), on loopback ports given on the command line.
SERVER_CONF=/etc/kcpsocks/server.conf
LOCAL_CONF=/etc/kcpsocks/local.conf
/usr/bin/kcpsocks-server keygen --out /etc/kcpsocks/server.key >"$T/keygen.out" 2>&1 ||
	die "keygen: $(cat "$T/keygen.out")"
install -m 0600 /usr/share/doc/kcpsocks/examples/kcpsocks-server.conf "$SERVER_CONF"
/usr/bin/kcpsocks-server adduser alice -c "$SERVER_CONF" --host 127.0.0.1 \
	--client-config "$LOCAL_CONF" >>"$SERVER_CONF" 2>"$T/adduser.err" ||
	die "adduser: $(cat "$T/adduser.err")"
grep -q '^\[user alice\]' "$SERVER_CONF" || die "adduser appended no [user alice] to server.conf"
[ -s "$LOCAL_CONF" ] || die "adduser wrote no client config: $(cat "$T/adduser.err")"
chown kcpsocks:kcpsocks /etc/kcpsocks/server.key "$SERVER_CONF" "$LOCAL_CONF"
"$KS_SERVER" -c "$SERVER_CONF" --check-config >"$T/check.out" 2>&1 ||
	die "kcpsocks-server --check-config as kcpsocks: $(cat "$T/check.out")"
"$KS_LOCAL" -c "$LOCAL_CONF" --check-config >>"$T/check.out" 2>&1 ||
	die "kcpsocks-local --check-config as kcpsocks: $(cat "$T/check.out")"
! grep -i 'warn' "$T/check.out" | grep -v "$WARN_OK" || die "--check-config warned (above)"
ok "installed daemons' --check-config as the kcpsocks user: /etc/kcpsocks/server.conf and local.conf, no warning"

pick_ports SERVER_PORT SERVER_METRICS LOCAL_PORT LOCAL_METRICS HTTP_PORT
start_http
head -c 1048576 /dev/urandom >"$HTTP_DIR/page.bin"
start_server --allow "127.0.0.1:$HTTP_PORT"
LOCAL_LOG=$T/local.log
"$KS_LOCAL" -c "$LOCAL_CONF" --server "127.0.0.1:$SERVER_PORT" --listen "127.0.0.1:$LOCAL_PORT" \
	--metrics_listen "127.0.0.1:$LOCAL_METRICS" >"$LOCAL_LOG" 2>&1 &
LOCAL_PID=$!
lib_track "$LOCAL_PID" kcpsocks-local "$LOCAL_LOG"
wait_for_tcp_port "$LOCAL_PORT" 20 "$LOCAL_PID"
wait_session 20
tcurl -o "$T/got.bin" "http://127.0.0.1:$HTTP_PORT/page.bin" || die "curl through the installed daemons"
cmp -s "$T/got.bin" "$HTTP_DIR/page.bin" || die "the fetched page differs"
for p in $(children "$SERVER_PID") $(children "$LOCAL_PID"); do
	[ "$(stat -c %U "/proc/$p")" = kcpsocks ] || die "pid $p does not run as kcpsocks"
done
! grep -i 'warn' "$SERVER_LOG" "$LOCAL_LOG" | grep -v "$WARN_OK" || die "a daemon warned (above)"
ok "1 MiB through /usr/bin/kcpsocks-local -> /usr/bin/kcpsocks-server (both as kcpsocks), identical, no warning"
stop_traced "$LOCAL_PID"
stop_traced "$SERVER_PID"

# Every system call and socket family either daemon used (start,
# --check-config, the fetch, the drain on SIGTERM) against its installed
# unit: SystemCallFilter= (allow lists minus ~deny lists, groups expanded by
# systemd-analyze) and RestrictAddressFamilies=.
systemd-analyze syscall-filter >"$T/filter-sets.txt" 2>&1 || die "systemd-analyze syscall-filter"
python3 - "$T/filter-sets.txt" "$TR" "$UNITDIR" >"$T/syscalls.out" <<-'PY' || {
	import glob, re, sys
	sets, trace_dir, unit_dir = sys.argv[1:4]
	groups, cur = {}, None
	for line in open(sets):
	    s = line.strip()
	    if not s or s.startswith("#"):
	        continue
	    if not line[0].isspace() and s.startswith("@"):
	        cur = groups.setdefault(s, [])
	    elif cur is not None:
	        cur.append(s)
	def expand(names):
	    out = set()
	    for n in names:
	        out |= expand(groups.get(n, [])) if n.startswith("@") else {n}
	    return out
	def unit_rules(path):
	    allow, deny, families = set(), set(), set()
	    for line in open(path):
	        key, _, val = line.strip().partition("=")
	        if key == "SystemCallFilter":
	            if val.startswith("~"):
	                deny |= expand(val[1:].split())
	            else:
	                allow |= expand(val.split())
	        elif key == "RestrictAddressFamilies":
	            families |= set(val.split())
	    return allow - deny, families
	bad, ncalls = [], 0
	for daemon in ("server", "local"):
	    calls, fams = unit_rules(f"{unit_dir}/kcpsocks-{daemon}.service")
	    used, used_fams = set(), set()
	    for f in glob.glob(f"{trace_dir}/{daemon}.*"):
	        for line in open(f, errors="replace"):
	            m = re.match(r"([a-z_0-9]+)\((AF_[A-Z0-9]+)?", line)
	            if m:
	                used.add(m.group(1))
	                if m.group(1) == "socket" and m.group(2):
	                    used_fams.add(m.group(2))
	    if not used:
	        sys.exit(f"no system calls traced for {daemon}")
	    ncalls = max(ncalls, len(used))
	    bad += [f"  {daemon}: system call {c}" for c in sorted(used - calls)]
	    bad += [f"  {daemon}: socket family {a}" for a in sorted(used_fams - fams)]
	    print(f"{daemon}: {len(used)} calls, families {' '.join(sorted(used_fams))}")
	print("\n".join(bad))
	sys.exit(1 if bad else 0)
PY
	cat "$T/syscalls.out" >&2
	die "a daemon used a system call or socket family its unit forbids"
}
ok "strace: $(grep -h '^[a-z]*: [0-9]* calls' "$T/syscalls.out" | paste -sd ';' -), all allowed by the units"

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
