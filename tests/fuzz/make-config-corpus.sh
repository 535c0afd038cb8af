#!/usr/bin/env bash
# make-config-corpus.sh - (re)write the seed corpus of fuzz_config from the
# example configs and a few bad files. Run from the top of the tree.
set -euo pipefail
d=tests/fuzz/corpus/config
mkdir -p "$d"
k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8
k2=ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM
cp examples/kcpsocks-local.conf "$d/example-local"
cp examples/kcpsocks-server.conf "$d/example-server"
printf '[local]\nconnect = kcpsocks://alice:%s@[::1]:8443?key=%s&profile=mobile\n[transport]\nmtu = 1300\nnc = on\n' "$k1" "$k2" >"$d/connect-overrides"
printf 'kcpsocks://bob:%s@vpn.example.org:443?key=%s' "$k2" "$k1" >"$d/connstr"
printf '2001:db8::/32:443-444' >"$d/rule-v6"
printf '[server]\nallow = 127.0.0.0/8:1-65535, [::1]:80, *:25\ndeny =\n[user a]\npsk = %s\n' "$k1" >"$d/rules"
printf '[local]\nmtuu = 1\n' >"$d/bad-unknown-key"
printf '[transport]\nmtu = 70000\nmtu = 1\n' >"$d/bad-range-dup"
printf '[foo\ngarbage\n[user bad name]\npsk=x\n' >"$d/bad-syntax"
printf 'mtu 1300\n[transport]\nidle_timeout_ms = 5000\n' >"$d/option-line"
printf '[local]\npsk_file = /etc/kcpsocks/alice.psk\nconnect_file = -\npsk = PASTE_PSK_HERE\n' >"$d/secret-files"
printf 'kcpsocks://alice:%s@[::1?key=%s' "$k1" "$k2" >"$d/connstr-bad-bracket"
printf 'kcpsocks://alice:%s@h:1' "$k1" >"$d/connstr-no-key"
printf '\xef\xbb\xbf[common]\nprofile = lossy\x00\n' >"$d/bom-nul"
