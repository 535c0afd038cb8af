#!/usr/bin/env bash
# pkg_install.sh - make install / make uninstall into a DESTDIR (make
# test-package): the files land under PREFIX, the units call the binaries in
# BINDIR, the units pass systemd-analyze security (<= 2.0) and verify, the
# installed binary runs, and uninstall removes every file install wrote.
# Nothing outside the temp dir is touched (DESTDIR: no user is created).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init pkg_install

ROOT=$(cd "$LIB_DIR/../.." && pwd)
D=$T/root
PREFIX=/opt/kcpsocks
BUILD_ABS=$(cd "$ROOT" && mkdir -p "$BUILD" && cd "$BUILD" && pwd)

make -s -C "$ROOT" BUILD="$BUILD_ABS" DESTDIR="$D" PREFIX="$PREFIX" install >"$T/install.log" 2>&1 ||
	die "make install: $(cat "$T/install.log")"
lib_log make-install "$T/install.log"
(cd "$D" && find . -type f | sort) >"$T/files"
want="./opt/kcpsocks/bin/kcpsocks-local
./opt/kcpsocks/bin/kcpsocks-server
./opt/kcpsocks/lib/systemd/system/kcpsocks-local.service
./opt/kcpsocks/lib/systemd/system/kcpsocks-local@.service
./opt/kcpsocks/lib/systemd/system/kcpsocks-server.service
./opt/kcpsocks/lib/sysusers.d/kcpsocks.conf
./opt/kcpsocks/lib/tmpfiles.d/kcpsocks.conf
./opt/kcpsocks/share/doc/kcpsocks/CONFIG.md
./opt/kcpsocks/share/doc/kcpsocks/METRICS.md
./opt/kcpsocks/share/doc/kcpsocks/OPERATIONS.md
./opt/kcpsocks/share/doc/kcpsocks/README.md
./opt/kcpsocks/share/doc/kcpsocks/examples/kcpsocks-local.conf
./opt/kcpsocks/share/doc/kcpsocks/examples/kcpsocks-server.conf
./opt/kcpsocks/share/man/man1/kcpsocks-local.1
./opt/kcpsocks/share/man/man1/kcpsocks-server.1"
[ "$(cat "$T/files")" = "$want" ] || die "installed files differ: $(diff <(echo "$want") "$T/files" || true)"
[ ! -e "$D/etc" ] || die "make install with DESTDIR wrote to etc: $(find "$D/etc")"
ok "make install DESTDIR PREFIX=$PREFIX: $(wc -l <"$T/files") files, none in /etc"

"$D$PREFIX/bin/kcpsocks-server" --version >/dev/null || die "installed kcpsocks-server --version"
# ExecReload is /bin/kill -HUP $MAINPID: not a binary of ours.
grep -h '^Exec' "$D$PREFIX"/lib/systemd/system/*.service | grep -v '^ExecReload=/bin/kill -HUP \$MAINPID$' >"$T/exec"
grep -qv "^Exec[A-Za-z]*=$PREFIX/bin/kcpsocks-" "$T/exec" && die "a unit calls a binary outside $PREFIX/bin: $(cat "$T/exec")"
ok "the units call $PREFIX/bin/kcpsocks-*"

# verify wants the binaries where the units say: check copies whose paths
# point into DESTDIR.
mkdir -p "$T/units"
for u in "$D$PREFIX"/lib/systemd/system/*.service; do
	sed "s|$PREFIX/bin/|$D$PREFIX/bin/|g" "$u" >"$T/units/$(basename "$u")"
	systemd-analyze security --offline=true --threshold=20 "$T/units/$(basename "$u")" >"$T/sec" 2>&1 ||
		die "$(basename "$u"): exposure above 2.0: $(tail -n 1 "$T/sec")"
done
systemd-analyze verify --man=false "$T"/units/*.service >"$T/verify" 2>&1 || true
[ ! -s "$T/verify" ] || die "systemd-analyze verify: $(cat "$T/verify")"
ok "units: exposure <= 2.0, verify clean"

make -s -C "$ROOT" BUILD="$BUILD_ABS" DESTDIR="$D" PREFIX="$PREFIX" uninstall >"$T/uninstall.log" 2>&1 ||
	die "make uninstall: $(cat "$T/uninstall.log")"
left=$(find "$D" -type f)
[ -z "$left" ] || die "left after make uninstall: $left"
ok "make uninstall removed every file"
echo "pkg_install: passed"
