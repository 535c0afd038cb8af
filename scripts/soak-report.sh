#!/usr/bin/env bash
# soak-report.sh CSV PNG - plot a soak run's samples and print a summary.
#
# CSV is what tests/integration/lib.sh's sampler writes, one row a second:
#   t_s,local_rtt_ms,server_rtt_ms,local_retrans,server_retrans,
#   local_rss_kb,server_rss_kb,local_fds,server_fds
# (NaN where a daemon did not export the metric; retrans are counters).
# PNG gets three panels over time: RTT of both daemons; retransmissions per
# second (the counters' differences; a restart's drop to 0 is not
# negative); RSS in MiB with open fds on the second axis. Needs gnuplot
# (gnuplot-nox: scripts/deps.sh realistic).
set -euo pipefail
[ $# -eq 2 ] || {
	echo "usage: soak-report.sh CSV PNG" >&2
	exit 2
}
csv=$1
png=$2
command -v gnuplot >/dev/null || {
	echo "soak-report.sh: gnuplot not installed (scripts/deps.sh realistic)" >&2
	exit 1
}
[ "$(wc -l <"$csv")" -ge 3 ] || {
	echo "soak-report.sh: $csv has fewer than two samples" >&2
	exit 1
}

# Derived table: t, rtts, retransmissions per second, RSS in MiB, fds.
dat=$(mktemp)
trap 'rm -f "$dat"' EXIT
awk -F, '
	function rate(col,   d) {
		if ($col == "NaN" || prev[col] == "" || prev[col] == "NaN") d = "NaN"
		else if ($col + 0 < prev[col] + 0) d = $col / dt   # counter restarted
		else d = ($col - prev[col]) / dt
		prev[col] = $col
		return d
	}
	NR == 1 { next }
	{
		dt = (NR > 2 && $1 > pt) ? $1 - pt : 1; pt = $1
		lr = rate(4); sr = rate(5)
		printf "%s %s %s %s %s %.2f %.2f %s %s\n", $1, $2, $3, lr, sr, $6 / 1024, $7 / 1024, $8, $9
	}' "$csv" >"$dat"

gnuplot <<EOF
set terminal pngcairo size 1000,900 font ",10" noenhanced
set output "$png"
set datafile missing "NaN"
set multiplot layout 3,1 title "kcpsocks soak: $(basename "$(dirname "$csv")")"
set grid
set key top left opaque box
set xlabel "time (s)"
set ylabel "RTT (ms)"
plot "$dat" using 1:2 with lines lw 2 title "local", \
     "" using 1:3 with lines lw 2 title "server"
set ylabel "retransmissions / s"
plot "$dat" using 1:4 with lines lw 2 title "local", \
     "" using 1:5 with lines lw 2 title "server"
set ylabel "RSS (MiB)"
set y2label "open fds"
set y2tics
plot "$dat" using 1:6 with lines lw 2 title "local RSS", \
     "" using 1:7 with lines lw 2 title "server RSS", \
     "" using 1:8 axes x1y2 with lines dt 2 title "local fds", \
     "" using 1:9 axes x1y2 with lines dt 2 title "server fds"
unset multiplot
EOF

awk -F, 'NR == 1 { next }
	function mx(c) { if ($c != "NaN" && (!(c in m) || $c + 0 > m[c])) m[c] = $c + 0 }
	{ n++; for (c = 2; c <= 9; c++) mx(c); last = $0 }
	END {
		split(last, l, ",")
		printf "samples=%d rtt_ms max local=%s server=%s\n", n, v(2), v(3)
		printf "retrans total local=%s server=%s\n", l[4], l[5]
		printf "rss_kb max local=%s server=%s; fds max local=%s server=%s\n", v(6), v(7), v(8), v(9)
	}
	function v(c) { return (c in m) ? m[c] : "NaN" }' "$csv"
echo "plot: $png"
