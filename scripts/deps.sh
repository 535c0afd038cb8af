#!/usr/bin/env bash
# deps.sh SET... - make sure the Debian packages a task needs are installed.
# SET is one of: build (compile + unit tests), realistic (curl, nginx, the
# realistic and soak suites), bench (the peers make bench compares against),
# package (make test-package: build, lint and install the Debian package;
# systemd for systemd-analyze and systemd-sysusers, man-db for its man check,
# strace for the system calls the daemons make),
# udp (dnsmasq-base: the DNS server fast_udp.sh starts; python3-socks: PySocks,
# its independent SOCKS5 UDP client; bind9-dnsutils: dig for the direct query),
# metrics (prometheus, for its promtool: the fast integration suite checks
# both daemons' /metrics with `promtool check metrics`; the server is not
# started, see policy-rc.d below),
# cross (Debian's cross compilers, the multiarch -dev libraries for arm64,
# armhf and mipsel, and qemu-user to run what they build: make cross,
# make test-cross).
# As root, missing packages are installed with apt-get; otherwise the exact
# apt-get line is printed and the script fails.
set -euo pipefail

pkgs_build="gcc make python3 curl iproute2 procps clang libclang-rt-14-dev pkg-config libsodium-dev libev-dev libc-ares-dev libcmocka-dev libinih-dev clang-format"
pkgs_realistic="curl nginx-light gnuplot-nox iproute2 procps"
pkgs_metrics="prometheus"
pkgs_udp="dnsmasq-base python3-socks bind9-dnsutils"
pkgs_package="build-essential debhelper dpkg-dev lintian systemd man-db strace"
pkgs_bench="curl nginx-light gnuplot-nox kcptun microsocks shadowsocks-libev v2ray valgrind"
cross_arches="arm64 armhf mipsel"
pkgs_cross="make pkg-config qemu-user gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-mipsel-linux-gnu"
# The libraries come as multiarch packages (pkg:ARCH). libc is the cross
# toolchain's libc6-dev-ARCH-cross: bookworm's multiarch libc6-dev:ARCH needs
# linux-libc-dev:ARCH at exactly the native version, which mipsel lags.
# libc6:ARCH is the run-time libc qemu-user loads (make test-cross).
for a in $cross_arches; do
	pkgs_cross+=" libc6-dev-$a-cross libc6:$a"
	for l in libsodium-dev libev-dev libc-ares-dev libinih-dev libcmocka-dev; do
		pkgs_cross+=" $l:$a"
	done
done

want=()
for set in "$@"; do
	var="pkgs_$set"
	if [ -z "${!var:-}" ]; then
		echo "deps.sh: unknown set '$set' (build, realistic, bench, package, metrics, udp, cross)" >&2
		exit 2
	fi
	want+=(${!var})
done

missing=()
for p in "${want[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing+=("$p") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

# pkg:ARCH needs ARCH known to dpkg (multiarch) before apt-get update.
new_arches=()
for p in "${missing[@]}"; do
	case "$p" in
	*:*) a=${p##*:}
		[ "$a" = "$(dpkg --print-architecture)" ] && continue
		dpkg --print-foreign-architectures | grep -qx "$a" && continue
		[[ " ${new_arches[*]} " == *" $a "* ]] || new_arches+=("$a") ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages; run as root:" >&2
	for a in "${new_arches[@]}"; do echo "  dpkg --add-architecture $a" >&2; done
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
for a in "${new_arches[@]}"; do
	echo "deps.sh: dpkg --add-architecture $a" >&2
	dpkg --add-architecture "$a"
done
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# nginx (and prometheus) must not start a system instance: the tests start
# their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
