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
import re
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
              "kcpsocks-fastopen", "kcptun/microsocks", "kcptun/ss", "kcptun-fast3/microsocks",
              "kcptun-fast3/ss", "mkcp-default", "mkcp-tuned"]
KCPSOCKS = ["kcpsocks-default", "kcpsocks-profile", "kcpsocks-fastopen"]
# The rows with the full bulk run count and fast open off: bulk, CPU and
# RSS targets use these; latency targets may use any kcpsocks row.
KCPSOCKS_FULL = ["kcpsocks-default", "kcpsocks-profile"]
KCPSOCKS_NO_FO = ["kcpsocks-default", "kcpsocks-profile"]
MKCP = ["mkcp-default", "mkcp-tuned"]
# One colour per contender in every figure; kcpsocks in warm colours.
COLOUR = {"direct": "#7f7f7f", "ss-tcp": "#8c564b", "kcpsocks-default": "#d62728",
          "kcpsocks-profile": "#ff7f0e", "kcpsocks-fastopen": "#e6ab02",
          "kcptun/microsocks": "#1f77b4",
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
        self.dir = d
        self.c = read(os.path.join(d, "contender"))
        self.s = read(os.path.join(d, "scenario"))
        self.skipped = read(os.path.join(d, "skipped"))
        self.profile = read(os.path.join(d, "profile"))
        self.fast_open = read(os.path.join(d, "fast_open"))
        planned = read(os.path.join(d, "bulk_planned"))
        self.planned = int(planned) if planned and planned.isdigit() else None
        self.fast_open_note = read(os.path.join(d, "fast_open_note"))
        self.timing = {}
        f = (read(os.path.join(d, "timing"), "") or "").split()
        for k, v in zip(f[0::2], f[1::2]):
            self.timing[k] = float(v)
        self.rates, self.timeout, self.cut, self.fails, self.bytes = [], None, None, [], 0
        for line in (read(os.path.join(d, "bulk"), "") or "").splitlines():
            f = line.split()
            if len(f) < 3:
                continue
            size, secs = int(f[1] or 0), float(f[2] or 0)
            self.bytes += size
            rate = size / 1e6 / secs if secs > 0 else 0.0
            if f[0] == "ok":
                self.rates.append(rate)
            elif f[0] in ("timeout", "slow"):
                self.timeout, self.cut = rate, f[0]
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
        if self.timeout is not None and self.cut == "slow":
            cell = "cut slow (%.2f)" % self.timeout
        elif self.timeout is not None:
            cell = "timeout (%.2f before the cap)" % self.timeout
        elif self.planned == 0:
            cell = "not run"
        elif not self.rates:
            cell = "n/a"
        elif len(self.rates) == 1:
            cell = fmt(median(self.rates))
        else:
            cell = "%s (%s-%s)" % (fmt(median(self.rates)), fmt(min(self.rates)),
                                   fmt(max(self.rates)))
        done = len(self.rates) + len(self.fails)
        if self.rates and self.timeout is None and self.planned and done < self.planned:
            cell += " (%d of %d runs)" % (done, self.planned)
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
    p = pairs.get((s, c))
    if p and c == "kcpsocks-profile" and p.profile:
        return "kcpsocks-%s" % p.profile
    if p and c == "kcpsocks-fastopen" and p.profile:
        return "kcpsocks-%s+fastopen" % p.profile
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
    md.append("### Bulk throughput, MB/s (median, min-max; %s run(s) of %s on the "
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
              "transfer; \"cut slow\" one that stayed below the rate needed to finish "
              "within the cap (%s / %s s) for %s s, and the rate it had reached. Either "
              "way the pair's later runs are skipped. \"(1 of 3 runs)\": one more run "
              "as long as the last would have taken the pair's transfers past %s s, so "
              "the pair stopped there (peers only; kcpsocks-default and -profile always "
              "get their runs). kcpsocks-fastopen runs %s bulk transfer(s) on the clean "
              "path and %s under impairment: fast open changes only how a connection "
              "opens. direct and ss-tcp are TCP: the UDP relay "
              "cannot impair them, so they run on the clean path only.\n"
              % (meta.get("bulk_cap_s", "?"), meta.get("bulk_size", "?"),
                 meta.get("bulk_cap_s", "?"), meta.get("bulk_floor_s", "?"),
                 meta.get("bulk_budget_s", "?"), meta.get("bulk_runs_fastopen", "?"),
                 meta.get("bulk_runs_fastopen_lossy", "?")))
    md.append("### Bulk ratios: kcpsocks / contender\n")
    for s in scen:
        rows = []
        ks = [k for k in KCPSOCKS if (s, k) in pairs and pairs[(s, k)].ok()
              and pairs[(s, k)].bulk_median() is not None]
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
                              "%s fetches of a 1 KiB file, each on a new connection "
                              "(one curl, `Connection: close`)" % meta.get("ttfb_n", "?")),
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


def one_rtt_ms(meta, s):
    """The round trip the relay adds in scenario s (twice its one-way
    --delay), or None when the scenario's arguments are not known."""
    args = meta.get("scen_" + s)
    if args is None:
        return None
    a = args.split()
    for i, w in enumerate(a[:-1]):
        if w == "--delay":
            try:
                return 2 * float(a[i + 1])
            except ValueError:
                return None
    return 0.0


class Targets:
    """The targets of issues 8 and 9, each a row: issue, target, kcpsocks
    (row and value), reference (row and value), measured, required,
    verdict. Every figure comes from this run's pairs."""

    HEAD = ["issue", "target", "kcpsocks", "reference", "measured", "required", "verdict"]

    def __init__(self, pairs, meta):
        self.pairs, self.meta, self.rows = pairs, meta, []

    def pick(self, s, names, key, lower=False):
        """(value, label, how) of the best of names in s for key."""
        v, c = best(self.pairs, s, names, key, lower)
        if v is None:
            return None, None, ""
        live = [n for n in names if (s, n) in self.pairs and self.pairs[(s, n)].ok()]
        how = " (best of %d)" % len(live) if len(live) > 1 else ""
        return v, label(self.pairs, s, c), how

    def kcptun_bulk(self, s):
        """kcptun's best bulk figure in s as (value, label, how); a rate
        before the cap when no kcptun row completed a transfer."""
        v, c = kcptun_bulk_floor(self.pairs, s)
        if v is None:
            return None, None, ""
        live = [n for n in KCPTUN if (s, n) in self.pairs and self.pairs[(s, n)].ok()]
        how = " (best of %d)" % len(live) if len(live) > 1 else ""
        if self.pairs[(s, c)].bulk_median() is None:
            how += ", rate before the cap"
        return v, label(self.pairs, s, c), how

    def one(self, s, c, key):
        p = self.pairs.get((s, c))
        if not p or not p.ok():
            return None, None, ""
        return key(p), label(self.pairs, s, c), ""

    def add(self, issue, target, k, r, unit, op, want, note="", kname="kcpsocks"):
        """k, r: (value, label, how) of kcpsocks and the reference. op:
        'ge' (k/r >= want), 'le' (k/r <= want) or 'plus' (k - r <= want)."""
        kv, kl, _ = k
        rv, rl, rhow = r
        kcell = "%s %s %s" % (kl, fmt(kv), unit) if kv is not None else "n/a"
        rcell = "%s %s %s%s" % (rl, fmt(rv), unit, rhow) if rv is not None else "n/a"
        if note:
            kcell += " (%s)" % note
        if op == "plus":
            req = "<= reference + %s %s" % (fmt(want), unit)
        else:
            req = "%s %sx" % (">=" if op == "ge" else "<=", fmt(want))
        if kv is None or rv is None:
            missing = ("no %s figure" % kname) if kv is None else "no reference figure"
            self.rows.append([issue, target, kcell, rcell, "-", req, "not measured (%s)" % missing])
            return
        if op == "plus":
            d = kv - rv
            measured = "%+.1f %s" % (d, unit)
            ok = d <= want
            gap = "missed by %.1f %s" % (d - want, unit)
        else:
            r = kv / rv if rv else float("inf")
            measured = "ratio %s" % fmt(r)
            ok = r >= want if op == "ge" else r <= want
            if not ok:
                f = want / r if op == "ge" and r > 0 else (r / want if op == "le" else float("inf"))
                gap = "missed: %sx %s" % (fmt(f), "short" if op == "ge" else "over")
        self.rows.append([issue, target, kcell, rcell, measured, req, "met" if ok else gap])

    def issue8(self):
        bulk = lambda p: p.bulk_median()  # noqa: E731
        p50 = lambda p: pct(p.ttfb, 50) if p.ttfb else None  # noqa: E731
        p99 = lambda p: pct(p.ttfb, 99) if p.ttfb else None  # noqa: E731
        cpu = lambda p: p.cpu_per_gb()  # noqa: E731
        rss = lambda p: p.rss_mb  # noqa: E731
        kt = self.kcptun_bulk
        k = self.pick("clean", KCPSOCKS_FULL, bulk)
        self.add("8", "bulk, clean, vs kcptun's best", k, kt("clean"), "MB/s", "ge", 5)
        self.add("8", "bulk, clean, vs shadowsocks-libev over TCP", k,
                 self.one("clean", "ss-tcp", bulk), "MB/s", "ge", 1)
        self.add("8", "bulk, 1% loss + 10 ms, vs kcptun's best",
                 self.pick("loss1", KCPSOCKS_FULL, bulk), kt("loss1"), "MB/s", "ge", 10)
        self.add("8", "TTFB p50, clean, vs shadowsocks-libev over TCP",
                 self.pick("clean", KCPSOCKS, p50, True),
                 self.one("clean", "ss-tcp", p50), "ms", "le", 1)
        for s in ("loss1", "loss5", "burst"):
            self.add("8", "TTFB p99, %s, vs kcptun's best" % s,
                     self.pick(s, KCPSOCKS, p99, True),
                     self.pick(s, KCPTUN, p99, True), "ms", "le", 0.5)
        self.add("8", "CPU s/GB, clean, vs kcptun's best",
                 self.pick("clean", KCPSOCKS_FULL, cpu, True),
                 self.pick("clean", KCPTUN, cpu, True), "s/GB", "le", 1 / 3.0)
        self.add("8", "peak RSS, clean, vs kcptun's best",
                 self.pick("clean", KCPSOCKS_FULL, rss, True),
                 self.pick("clean", KCPTUN, rss, True), "MB", "le", 0.25)

    def issue9(self):
        p50 = lambda p: pct(p.ttfb, 50) if p.ttfb else None  # noqa: E731
        bulk = lambda p: p.bulk_median()  # noqa: E731
        cpu = lambda p: p.cpu_per_gb()  # noqa: E731
        fo = self.pairs.get(("loss1", "kcpsocks-fastopen"))
        note = ""
        sums = fast_open_counters(fo) if fo and fo.ok() else {}
        used = sum(v for k, v in sums.items() if "stream" in k)
        if fo and fo.fast_open_note and not any(sums.values()):
            note = "fast_open not active in this build"
        elif sums:
            note = "%d streams opened with fast open" % used
        mk = self.pick("loss1", MKCP, p50, True)
        self.add("9", "TTFB p50, 1% loss + 10 ms, fast open, vs mKCP's best",
                 self.one("loss1", "kcpsocks-fastopen", p50), mk, "ms", "le", 1, note,
                 "kcpsocks-fastopen")
        rtt = one_rtt_ms(self.meta, "loss1")
        self.add("9", "TTFB p50, 1% loss + 10 ms, no fast open, vs mKCP's best + one RTT",
                 self.pick("loss1", KCPSOCKS_NO_FO, p50, True), mk, "ms", "plus",
                 rtt if rtt is not None else 20.0)
        k = self.pick("loss1", KCPSOCKS_FULL, bulk)
        p = self.pairs.get(("loss1", "mkcp-tuned"))
        self.add("9", "bulk, 1% loss + 10 ms, vs mKCP tuned", k,
                 (p.bulk_floor(), "mkcp-tuned", "") if p and p.ok() else (None, None, ""),
                 "MB/s", "ge", 4)
        self.add("9", "bulk, 1% loss + 10 ms, vs kcptun's best (as issue 8)", k,
                 self.kcptun_bulk("loss1"), "MB/s", "ge", 10)
        k = self.pick("loss1", KCPSOCKS_FULL, cpu, True)
        self.add("9", "CPU s/GB, 1% loss + 10 ms, vs kcptun's best", k,
                 self.pick("loss1", KCPTUN, cpu, True), "s/GB", "le", 1 / 3.0)
        self.drops()

    def drops(self):
        """UDP receive-buffer drops <= 0.1% of datagrams: the worst kcpsocks
        pair, with the worst mKCP pair beside it for contrast."""
        def worst(names):
            w = (None, None)
            for (s, c), p in sorted(self.pairs.items()):
                if c not in names or not p.ok():
                    continue
                f, how = p.drop_fraction()
                if f is not None and (w[0] is None or f > w[0]):
                    w = (f, "%s %s (%s counters)" % (s, label(self.pairs, s, c), how))
            return w
        f, where = worst(KCPSOCKS)
        mf, mwhere = worst(MKCP)
        ref = "%s %.3f%%" % (mwhere, 100 * mf) if mf is not None else "n/a"
        if f is None:
            self.rows.append(["9", "UDP rcvbuf drops, every scenario, worst kcpsocks pair",
                              "n/a", ref, "-", "<= 0.1% of datagrams",
                              "not measured (no kcpsocks counters)"])
            return
        self.rows.append(["9", "UDP rcvbuf drops, every scenario, worst kcpsocks pair",
                          where, ref, "%.4f%%" % (100 * f), "<= 0.1% of datagrams",
                          "met" if f <= 0.001 else "missed: %sx over" % fmt(f / 0.001)])

    def table(self):
        self.issue8()
        self.issue9()
        return table(self.HEAD, self.rows)


def targets(pairs, meta):
    return Targets(pairs, meta).table()


def fast_open_section(pairs):
    """Fast open beside the same profile without it: TTFB p50/p99."""
    scen = [s for s in SCENARIOS if (s, "kcpsocks-fastopen") in pairs]
    if not scen:
        return []
    md = ["### Fast open\n",
          "kcpsocks-PROFILE and kcpsocks-PROFILE+fastopen run the same profile "
          "with `fast_open = false` and `fast_open = true` in the `[transport]` "
          "section of the local config; kcpsocks-default is the default profile "
          "as shipped. Time to first byte, ms, p50 / p99:\n"]
    rows, notes = [], set()
    for s in scen:
        cells = [s]
        for c in KCPSOCKS:
            p = pairs.get((s, c))
            if not p or not p.ok() or not p.ttfb:
                cells.append("-" if not p else ("skipped" if not p.ok() else "n/a"))
                continue
            cells.append("%s: %s / %s" % (label(pairs, s, c), fmt(pct(p.ttfb, 50)),
                                          fmt(pct(p.ttfb, 99))))
        a, b = pairs.get((s, "kcpsocks-profile")), pairs.get((s, "kcpsocks-fastopen"))
        d = "n/a"
        if a and b and a.ok() and b.ok() and a.ttfb and b.ttfb:
            d = "%+.1f" % (pct(b.ttfb, 50) - pct(a.ttfb, 50))
        cells.append(d)
        cells.append(fast_open_cell(b) if b and b.ok() else "n/a")
        rows.append(cells)
        if b and b.ok() and b.fast_open_note and not any(fast_open_counters(b).values()):
            notes.add(b.fast_open_note)
    md.append(table(["scenario"] + KCPSOCKS + ["p50 change with fast open",
                                               "fast-open counters (local metrics)"], rows))
    md.append("")
    for n in sorted(notes):
        md.append("Note: %s, so the fast-open rows measure the profile without it.\n" % n)
    return md


def fast_open_counters(p):
    """The kcpsocks-local metric families whose name mentions fast open
    (fast_open or fastopen), each summed over its labels; {} if none."""
    text = read(os.path.join(p.dir, "metrics.local"), "") or ""
    sums = {}
    for line in text.splitlines():
        f = line.split()
        if line.startswith("#") or len(f) < 2:
            continue
        name = f[0].split("{")[0]
        if not re.search("fast_?open", name):
            continue
        try:
            sums[name] = sums.get(name, 0.0) + float(f[-1])
        except ValueError:
            continue
    return sums


def fast_open_cell(p):
    sums = fast_open_counters(p)
    if not sums:
        return "none exposed"
    return ", ".join("%s %s" % (k.replace("kcpsocks_", ""), fmt(v))
                     for k, v in sorted(sums.items()))


def time_section(pairs, meta):
    """Where the run's time went, from each pair's timing file."""
    tot, n = {}, 0
    for p in pairs.values():
        if not p.timing:
            continue
        n += 1
        for k, v in p.timing.items():
            tot[k] = tot.get(k, 0.0) + v
    if not n:
        return []
    el = meta.get("elapsed_s", "").split()
    wall = "?"
    if el and el[0].isdigit():
        wall = "%.1f min" % (int(el[0]) / 60.0)
        if len(el) > 1:
            wall += " (the last invocation: %s)" % " ".join(el[1:])
    md = ["### Run time\n",
          "Wall time %s. %d pairs; seconds summed over them (start, first request, "
          "bulk, TTFB, keep-alive, page loads and loaded latency, concurrency, stop "
          "and counters): %s.\n"
          % (wall, n, ", ".join("%s %.0f" % (k, tot[k]) for k in
                                ("start", "warm", "bulk", "ttfb", "ka", "page", "conc",
                                 "stop", "total")
                                if k in tot))]
    return md


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
    conts = [c for c in CONTENDERS
             if any((s, c) in pairs and pairs[(s, c)].ok() for s in scen)]
    bconts = [c for c in conts if any((s, c) in pairs and pairs[(s, c)].ok()
                                      and pairs[(s, c)].bulk_floor() is not None
                                      for s in scen)]
    # throughput: one row per scenario, median/min/max per contender
    with open(os.path.join(pdir, "bulk.dat"), "w") as f:
        f.write("# scenario " + " ".join("%s_med %s_min %s_max" % (c, c, c) for c in bconts) + "\n")
        for s in scen:
            cells = [s]
            for c in bconts:
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
    for i, c in enumerate(bconts):
        col = 2 + 3 * i
        cmds.append("'%s' using %d:%d:%d:xtic(1) title '%s' lc rgb '%s'"
                    % (os.path.join(pdir, "bulk.dat"), col, col + 1, col + 2, c, COLOUR[c]))
    if cmds:
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
    md.append("### Targets (issues 8 and 9)\n")
    md.append(targets(pairs, meta))
    md.append("")
    md.append("Every figure is from this run. kcpsocks: for bulk, CPU and RSS the "
              "better of kcpsocks-default and kcpsocks-PROFILE (the profile suited to "
              "the scenario, fast open off); for time to first byte the best of every "
              "kcpsocks row, fast open included, except where the target says "
              "otherwise. The cell names the row. kcptun's best: the best of its "
              "four set-ups (default and fast3, each behind microsocks and behind "
              "shadowsocks-libev) for that metric; mKCP's best: the better of "
              "mkcp-default and mkcp-tuned. Bulk references that never completed a "
              "transfer use the rate reached before the cap. One RTT at 1% loss + "
              "10 ms is 20 ms (the relay's delay both ways). \"missed: Nx\" is the "
              "factor by which the ratio falls short of the requirement.\n")
    md += fast_open_section(pairs)
    md += sections(pairs, meta)
    plots(pairs, out, docdir)
    md.append("![throughput](bench/peers-throughput.png)\n")
    md.append("![ttfb](bench/peers-ttfb.png)\n")
    md.append("![latency](bench/peers-latency.png)\n")
    md += time_section(pairs, meta)
    with open(os.path.join(docdir, "peers.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
