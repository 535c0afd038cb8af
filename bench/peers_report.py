#!/usr/bin/env python3
"""peers_report.py BENCH_OUT DOCDIR - tables and plots of bench/run-peers.sh.

Reads BENCH_OUT/meta and BENCH_OUT/results/SCENARIO.CONTENDER/ (raw files
written by run-peers.sh), writes DOCDIR/peers.md and, with gnuplot,
DOCDIR/peers-throughput.png, peers-ttfb.png and peers-latency.png. The
gnuplot data and scripts stay in BENCH_OUT/plot/.

Units: MB = 10^6 bytes, GB = 10^9 bytes; latencies in ms; percentiles are
nearest-rank over the samples of one run of the pair.
"""
import math
import os
import platform
import subprocess
import sys

SCENARIOS = ["clean", "loss1", "loss5", "burst"]
SCEN_TITLE = {
    "clean": "clean",
    "loss1": "1% loss, 10 ms",
    "loss5": "5% loss, 30 ms, 5 ms jitter, 1% reorder",
    "burst": "burst loss (Gilbert-Elliott), 10 ms",
}
CONTENDERS = ["direct", "ss-tcp", "kcpsocks-default", "kcpsocks-profile",
              "kcptun/microsocks", "kcptun/ss", "kcptun-fast3/microsocks",
              "kcptun-fast3/ss", "mkcp-default", "mkcp-tuned"]
KCPSOCKS = ["kcpsocks-default", "kcpsocks-profile"]
# One colour per contender in every figure; kcpsocks in warm colours.
COLOUR = {"direct": "#7f7f7f", "ss-tcp": "#8c564b", "kcpsocks-default": "#d62728",
          "kcpsocks-profile": "#ff7f0e", "kcptun/microsocks": "#1f77b4",
          "kcptun/ss": "#aec7e8", "kcptun-fast3/microsocks": "#2ca02c",
          "kcptun-fast3/ss": "#98df8a", "mkcp-default": "#9467bd", "mkcp-tuned": "#c5b0d5"}
KCPTUN = [c for c in CONTENDERS if c.startswith("kcptun")]


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return None
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


def median(xs):
    s = sorted(xs)
    n = len(s)
    if not n:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


class Pair:
    """The raw results of one contender in one scenario."""

    def __init__(self, d):
        self.c = read(os.path.join(d, "contender"))
        self.s = read(os.path.join(d, "scenario"))
        self.skipped = read(os.path.join(d, "skipped"))
        self.profile = read(os.path.join(d, "profile"))
        self.rates, self.timeout, self.fails, self.bytes = [], None, [], 0
        for line in (read(os.path.join(d, "bulk"), "") or "").splitlines():
            f = line.split()
            size, secs = int(f[1] or 0), float(f[2] or 0)
            self.bytes += size
            rate = size / 1e6 / secs if secs > 0 else 0.0
            if f[0] == "ok":
                self.rates.append(rate)
            elif f[0] == "timeout":
                self.timeout = rate
            else:
                self.fails.append((f[3] if len(f) > 3 else "?", size, rate))
        self.ttfb, self.ttfb_fail = self.samples(d, "ttfb")
        self.ka, self.ka_fail = self.samples(d, "ka")
        cpu = read(os.path.join(d, "cpu"))
        self.cpu_s = None
        if cpu:
            t, hz = cpu.split()
            self.cpu_s = int(t) / float(hz)
        rss = read(os.path.join(d, "rss_kb"))
        self.rss_mb = int(rss) / 1024.0 if rss else None
        retx = read(os.path.join(d, "retx"))
        self.retx = None
        if retx:
            r, s = (float(x) for x in retx.split())
            self.retx = (r, s)
        udp = read(os.path.join(d, "udp"))
        self.drops = None
        if udp:
            a = [int(x) for x in udp.split()]
            self.drops = (a[3] - a[1], a[2] - a[0])
        sd = read(os.path.join(d, "sockdrops"))
        dl = read(os.path.join(d, "delivered"))
        self.sockdrops = None
        if sd and dl and int(sd.split()[1]) > 0:
            self.sockdrops = (int(sd.split()[0]), int(dl))

    def drop_fraction(self):
        """(fraction, how): the contender's own socket drops per datagram
        the relay delivered when measured, else the host-wide counters."""
        if self.sockdrops and self.sockdrops[1]:
            return self.sockdrops[0] / float(self.sockdrops[1]), "socket"
        if self.drops and self.drops[1]:
            return self.drops[0] / float(self.drops[1]), "host-wide"
        return None, None

    @staticmethod
    def samples(d, name):
        xs, fails = [], 0
        for line in (read(os.path.join(d, name), "") or "").splitlines():
            v = line.split()[0]
            if v == "fail":
                fails += 1
            else:
                xs.append(float(v) * 1000.0)
        return xs, fails

    def ok(self):
        return not self.skipped

    def bulk_median(self):
        """Median MB/s of the completed runs, or None (timeout/skip/none)."""
        if self.timeout is not None or not self.rates:
            return None
        return median(self.rates)

    def bulk_floor(self):
        """A figure for comparisons: the median, else the rate a capped or
        broken transfer had reached."""
        if self.bulk_median() is not None:
            return self.bulk_median()
        if self.timeout is not None:
            return self.timeout
        return max((r for _, _, r in self.fails), default=None)

    def bulk_cell(self):
        if self.skipped:
            return "skipped"
        fails = "; ".join("broken: curl exit %s after %.0f MB (%.2f MB/s)"
                          % (rc, size / 1e6, rate) for rc, size, rate in self.fails)
        if self.timeout is not None:
            cell = "timeout (%.2f before the cap)" % self.timeout
        elif not self.rates:
            cell = "n/a"
        elif len(self.rates) == 1:
            cell = fmt(median(self.rates))
        else:
            cell = "%s (%s-%s)" % (fmt(median(self.rates)), fmt(min(self.rates)),
                                   fmt(max(self.rates)))
        if fails:
            cell = fails if cell == "n/a" else cell + "; " + fails
        return cell

    def cpu_per_gb(self):
        if self.cpu_s is None or self.bytes == 0:
            return None
        return self.cpu_s / (self.bytes / 1e9)


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return "%.0f" % x
    return ("%%.%dg" % digits) % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load(out):
    pairs = {}
    rdir = os.path.join(out, "results")
    for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
        p = Pair(os.path.join(rdir, name))
        if p.c and p.s:
            pairs[(p.s, p.c)] = p
    meta = {"rerun": []}
    for line in (read(os.path.join(out, "meta"), "") or "").splitlines():
        k, _, v = line.partition(" ")
        if k == "rerun":
            meta[k].append(v)
        else:
            meta[k] = v
    return pairs, meta


def present(pairs, s):
    return [c for c in CONTENDERS if (s, c) in pairs]


def label(pairs, s, c):
    p = pairs[(s, c)]
    if c == "kcpsocks-profile" and p.profile:
        return "kcpsocks-%s" % p.profile
    return c


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def best(pairs, s, names, key, lower=False):
    """(value, contender) of the best value of key among names in s."""
    vals = []
    for c in names:
        p = pairs.get((s, c))
        if p and p.ok():
            v = key(p)
            if v is not None:
                vals.append((v, c))
    if not vals:
        return None, None
    return min(vals) if lower else max(vals)


def kcptun_bulk_floor(pairs, s):
    """The best kcptun bulk figure: its median, or, when every kcptun variant
    timed out, the rate it reached before the cap (a floor)."""
    v, c = best(pairs, s, KCPTUN, lambda p: p.bulk_median())
    if v is not None:
        return v, c
    return best(pairs, s, KCPTUN, lambda p: p.bulk_floor())


def sections(pairs, meta):
    md = []
    scen = [s for s in SCENARIOS if any(k[0] == s for k in pairs)]
    md.append("### Bulk throughput, MB/s (median, min-max; %s runs of %s on the "
              "clean path, %s under impairment)\n"
              % (meta.get("bulk_runs", "?"), meta.get("bulk_size", "?"),
                 meta.get("bulk_runs_lossy", meta.get("bulk_runs", "?"))))
    rows = []
    for c in CONTENDERS:
        if not any((s, c) in pairs for s in scen):
            continue
        rows.append([c] + [pairs[(s, c)].bulk_cell() if (s, c) in pairs else "-"
                           for s in scen])
    md.append(table(["contender"] + scen, rows))
    md.append("\nA timeout shows the rate reached when the %s s cap ended the "
              "transfer (later runs of that pair are skipped). direct and ss-tcp "
              "are TCP: the UDP relay cannot impair them, so they run on the clean "
              "path only.\n" % meta.get("bulk_cap_s", "?"))
    md.append("### Bulk ratios: kcpsocks / contender\n")
    for s in scen:
        rows = []
        ks = [k for k in KCPSOCKS if (s, k) in pairs and pairs[(s, k)].ok()]
        for c in present(pairs, s):
            p = pairs[(s, c)]
            v = p.bulk_median()
            cells = [label(pairs, s, c), fmt(v) if v is not None else p.bulk_cell()]
            d = pairs.get(("clean", "direct"))
            cells.append(fmt(ratio(v, d.bulk_median() if d else None)))
            for k in ks:
                cells.append(fmt(ratio(pairs[(s, k)].bulk_median(), v)))
            rows.append(cells)
        md.append("**%s** (%s)\n" % (s, SCEN_TITLE[s]))
        md.append(table(["contender", "MB/s", "x direct (clean)"]
                        + ["%s / it" % label(pairs, s, k) for k in ks], rows))
        md.append("")
    for name, attr, what in (("Time to first byte, new connection", "ttfb",
                              "%s new connections, one curl each, 1 KiB file"
                              % meta.get("ttfb_n", "?")),
                             ("Small-request latency on a keep-alive connection", "ka",
                              "%s 1 KiB requests in one curl, the first (connect) dropped"
                              % meta.get("ka_n", "?"))):
        md.append("### %s, ms: p50 / p99\n\n%s; failures (no answer within 10 s) "
                  "in brackets.\n" % (name, what))
        rows = []
        for c in CONTENDERS:
            if not any((s, c) in pairs for s in scen):
                continue
            cells = [c]
            for s in scen:
                p = pairs.get((s, c))
                if not p or not p.ok():
                    cells.append("-" if not p else "skipped")
                    continue
                xs, fails = getattr(p, attr), getattr(p, attr + "_fail")
                cell = "%s / %s" % (fmt(pct(xs, 50)), fmt(pct(xs, 99)))
                if fails:
                    cell += " [%d]" % fails
                cells.append(cell)
            rows.append(cells)
        md.append(table(["contender"] + scen, rows))
        md.append("")
    md.append("### Resources\n\nCPU: utime+stime of the contender's own processes "
              "(both ends; not nginx, curl or the relay) over the bulk runs, per GB "
              "moved. RSS: VmHWM summed over those processes. Retransmissions: "
              "segments resent / segments sent by the sending end over the whole "
              "pair (kcpsocks: server metrics; kcptun: kcptun-server's snmp log). "
              "Socket drops: the drops column of /proc/net/udp summed over the "
              "contender's UDP sockets at the end of the pair, against the datagrams "
              "the relay delivered to them. Host: RcvbufErrors / InDatagrams deltas "
              "of /proc/net/snmp over the pair (host-wide: other programs on the "
              "machine count too).\n")
    rows = []
    for s in scen:
        for c in present(pairs, s):
            p = pairs[(s, c)]
            if not p.ok() or c == "direct":
                continue
            retx = "n/a"
            if p.retx and p.retx[1] > 0:
                retx = "%.2f%% (%d)" % (100.0 * p.retx[0] / p.retx[1], p.retx[0])
            cols = []
            for v in (p.sockdrops, p.drops):
                if not v:
                    cols.append("n/a")
                    continue
                d, n = v
                cols.append("%d / %d" % (d, n) + (" (%.3f%%)" % (100.0 * d / n) if n else ""))
            rows.append([s, label(pairs, s, c), fmt(p.cpu_per_gb()),
                         fmt(p.rss_mb), retx] + cols)
    md.append(table(["scenario", "contender", "CPU s/GB", "peak RSS MB",
                     "retransmitted", "socket drops / delivered",
                     "host rcvbuf errors / datagrams"], rows))
    md.append("")
    return md


def verdict(v, ok):
    return "met" if ok else "NOT met"


def targets(pairs):
    """The issue's targets; each row: target, measured, verdict."""
    rows = []

    def kbest(s, key, lower=False):
        return best(pairs, s, KCPSOCKS, key, lower)

    def lab(s, c):
        return label(pairs, s, c) if c else "-"

    def add(target, a, ac, b, bc, s, want, cmp_lower=False, scale=1.0):
        if a is None or b is None:
            rows.append([target, "kcpsocks %s, reference %s" % (fmt(a), fmt(b)), "not measured"])
            return
        r = a / b if b else float("inf")
        ok = r <= want if cmp_lower else r >= want
        rows.append([target, "%s %s vs %s %s: ratio %s" % (lab(s, ac), fmt(a), lab(s, bc),
                                                           fmt(b), fmt(r)),
                     verdict(r, ok)])

    bulk = lambda p: p.bulk_median()  # noqa: E731
    a, ac = kbest("clean", bulk)
    b, bc = kcptun_bulk_floor(pairs, "clean")
    add("bulk, clean: >= 5x kcptun's best", a, ac, b, bc, "clean", 5)
    p = pairs.get(("clean", "ss-tcp"))
    add("bulk, clean: >= shadowsocks-libev over TCP", a, ac,
        p.bulk_median() if p and p.ok() else None, "ss-tcp", "clean", 1)
    a, ac = kbest("loss1", bulk)
    b, bc = kcptun_bulk_floor(pairs, "loss1")
    add("bulk, 1% loss + 10 ms: >= 10x kcptun's best", a, ac, b, bc, "loss1", 10)
    p50 = lambda p: pct(p.ttfb, 50) if p.ttfb else None  # noqa: E731
    p99 = lambda p: pct(p.ttfb, 99) if p.ttfb else None  # noqa: E731
    a, ac = kbest("clean", p50, lower=True)
    p = pairs.get(("clean", "ss-tcp"))
    add("TTFB p50, clean: <= shadowsocks-libev over TCP", a, ac,
        p50(p) if p and p.ok() else None, "ss-tcp", "clean", 1, cmp_lower=True)
    for s in ("loss1", "loss5", "burst"):
        a, ac = kbest(s, p99, lower=True)
        b, bc = best(pairs, s, KCPTUN, p99, lower=True)
        add("TTFB p99, %s: <= 1/2 of kcptun's best" % s, a, ac, b, bc, s, 0.5, cmp_lower=True)
    cpu = lambda p: p.cpu_per_gb()  # noqa: E731
    a, ac = kbest("clean", cpu, lower=True)
    b, bc = best(pairs, "clean", KCPTUN, cpu, lower=True)
    add("CPU s/GB, clean: <= 1/3 of kcptun's best", a, ac, b, bc, "clean", 1 / 3.0,
        cmp_lower=True)
    rss = lambda p: p.rss_mb  # noqa: E731
    a, ac = kbest("clean", rss, lower=True)
    b, bc = best(pairs, "clean", KCPTUN, rss, lower=True)
    add("peak RSS, clean: <= 1/4 of kcptun's best", a, ac, b, bc, "clean", 0.25,
        cmp_lower=True)
    a, ac = kbest("loss1", bulk)
    p = pairs.get(("loss1", "mkcp-tuned"))
    b = p.bulk_floor() if p and p.ok() else None
    add("bulk, 1% loss + 10 ms: >= 4x mKCP tuned", a, ac, b, "mkcp-tuned", "loss1", 4)
    worst, wc = None, None
    for (s, c), p in pairs.items():
        f, how = p.drop_fraction() if c in KCPSOCKS and p.ok() else (None, None)
        if f is not None and (worst is None or f > worst):
            worst, wc = f, "%s/%s (%s counters)" % (s, label(pairs, s, c), how)
    if worst is None:
        rows.append(["UDP rcvbuf drops <= 0.1% of datagrams", "no kcpsocks run", "not measured"])
    else:
        rows.append(["UDP rcvbuf drops <= 0.1% of datagrams",
                     "worst %s: %.4f%%" % (wc, 100 * worst), verdict(worst, worst <= 0.001)])
    return table(["target", "measured", "verdict"], rows)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    except OSError:
        pass
    return "%d cores, %s, %s RAM, kernel %s" % (os.cpu_count() or 0, model, mem,
                                                platform.release())


def plots(pairs, out, docdir):
    pdir = os.path.join(out, "plot")
    os.makedirs(pdir, exist_ok=True)
    scen = [s for s in SCENARIOS if any(k[0] == s for k in pairs)]
    conts = [c for c in CONTENDERS if any((s, c) in pairs for s in scen)]
    # throughput: one row per scenario, median/min/max per contender
    with open(os.path.join(pdir, "bulk.dat"), "w") as f:
        f.write("# scenario " + " ".join("%s_med %s_min %s_max" % (c, c, c) for c in conts) + "\n")
        for s in scen:
            cells = [s]
            for c in conts:
                p = pairs.get((s, c))
                m = p.bulk_median() if p and p.ok() else None
                if m is None and p and p.ok() and p.bulk_floor() is not None:
                    cells += ["%g" % p.bulk_floor()] * 3
                elif m is None:
                    cells += ["NaN"] * 3
                else:
                    cells += ["%g" % m, "%g" % min(p.rates), "%g" % max(p.rates)]
            f.write(" ".join(cells) + "\n")
    gp = ["set terminal pngcairo size 1200,600 font ',10'",
          "set output '%s'" % os.path.join(docdir, "peers-throughput.png"),
          "set title 'Bulk download through each contender (median, min-max; timeouts: rate before the cap)'",
          "set style data histogram", "set style histogram errorbars gap 2 lw 1",
          "set style fill solid 0.8 border -1", "set logscale y", "set ylabel 'MB/s (log)'",
          "set key outside right", "set grid ytics", "set yrange [0.1:*]"]
    cmds = []
    for i, c in enumerate(conts):
        col = 2 + 3 * i
        cmds.append("'%s' using %d:%d:%d:xtic(1) title '%s' lc rgb '%s'"
                    % (os.path.join(pdir, "bulk.dat"), col, col + 1, col + 2, c, COLOUR[c]))
    gp.append("plot " + ", ".join(cmds))
    run_gnuplot(pdir, "bulk.gp", gp)
    for attr, fname, title in (("ttfb", "peers-ttfb.png", "Time to first byte, new connections"),
                               ("ka", "peers-latency.png", "1 KiB request on a keep-alive connection")):
        gp = ["set terminal pngcairo size 1200,900 font ',9'",
              "set output '%s'" % os.path.join(docdir, fname),
              "set multiplot layout 2,2 title '%s: distribution (CDF) by scenario'" % title,
              "set logscale x", "set xlabel 'ms (log)'", "set ylabel 'fraction'",
              "set key bottom right font ',8'", "set grid", "set yrange [0:1]"]
        for s in scen:
            cmds = []
            for c in conts:
                p = pairs.get((s, c))
                xs = sorted(getattr(p, attr)) if p and p.ok() else []
                if not xs:
                    continue
                dat = os.path.join(pdir, "%s.%s.%s.dat" % (attr, s, c.replace("/", "+")))
                with open(dat, "w") as f:
                    for i, x in enumerate(xs):
                        f.write("%g %g\n" % (max(x, 0.01), (i + 1) / float(len(xs))))
                cmds.append("'%s' using 1:2 with steps lw 2 lc rgb '%s' title '%s'"
                            % (dat, COLOUR[c], label(pairs, s, c)))
            gp.append("set title '%s'" % SCEN_TITLE[s])
            gp.append("plot " + ", ".join(cmds) if cmds else "clear")
        gp.append("unset multiplot")
        run_gnuplot(pdir, attr + ".gp", gp)


def run_gnuplot(pdir, name, lines):
    path = os.path.join(pdir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.stderr.write("gnuplot %s: %s\n" % (path, r.stderr.strip()))


def main():
    out, docdir = sys.argv[1], sys.argv[2]
    pairs, meta = load(out)
    os.makedirs(docdir, exist_ok=True)
    md = ["## peers", ""]
    quick = meta.get("quick") == "1"
    md.append("Command: `make bench-peers`%s (%s, commit %s). Machine: %s. Peers: %s."
              % (" with BENCH_QUICK=1 (smoke run: small download, one run)" if quick else "",
                 meta.get("date", "?"), meta.get("commit", "?"), machine(),
                 meta.get("versions", "?")))
    md.append("")
    md.append("Every contender is a SOCKS5 endpoint on 127.0.0.1 driven by curl "
              "(`--socks5-hostname`) to one nginx serving generated files; UDP "
              "contenders go through `build/impair` with the scenario's settings "
              "(seed 1), fresh processes per scenario. How it works: "
              "docs/benchmarking.md. Scenarios (impair arguments):")
    md.append("")
    for s in SCENARIOS:
        if "scen_" + s in meta:
            md.append("- `%s`: %s" % (s, meta["scen_" + s]))
    md.append("")
    for r in meta["rerun"]:
        md.append("Pairs rerun on %s (BENCH_KEEP=1; their earlier results replaced).\n" % r)
    skipped = [(s, c, p.skipped) for (s, c), p in sorted(pairs.items()) if p.skipped]
    if skipped:
        md.append("Skipped: " + "; ".join("%s/%s (%s)" % x for x in skipped) + ".")
        md.append("")
    md.append("### Targets (issue 8, and mKCP from issue 9)\n")
    md.append(targets(pairs))
    md.append("")
    md.append("kcpsocks: the better of its default profile and the profile suited to "
              "the scenario. kcptun's best: the best of its four set-ups.\n")
    md += sections(pairs, meta)
    plots(pairs, out, docdir)
    md.append("![throughput](bench/peers-throughput.png)\n")
    md.append("![ttfb](bench/peers-ttfb.png)\n")
    md.append("![latency](bench/peers-latency.png)\n")
    with open(os.path.join(docdir, "peers.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
