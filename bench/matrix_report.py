#!/usr/bin/env python3
"""matrix_report.py BENCH_OUT DOCDIR - the matrix of bench/run-peers.sh.

Reads the same raw results as peers_report.py (BENCH_OUT/meta and
BENCH_OUT/results/SCENARIO.CONTENDER/) and writes DOCDIR/matrix.md: every
kcpsocks profile x every path beside kcptun, mKCP and shadowsocks-libev
(bulk, time to first byte, page loads), the bottleneck figures, the
concurrency section of issue 19, and the targets of issues 20 and 19, each
"met" or "missed by Nx" from this run's own numbers.

Units: MB = 10^6 bytes; latencies in ms; percentiles are nearest-rank.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_report as pr  # noqa: E402

PATHS = ["clean", "delay10", "loss1", "burst", "loss5", "long", "bottleneck"]
PATH_TITLE = {
    "clean": "clean",
    "delay10": "10 ms each way, no loss",
    "loss1": "1% loss + 10 ms each way",
    "burst": "burst loss (Gilbert-Elliott) + 10 ms each way",
    "loss5": "5% loss + 30 ms each way, jitter, reorder",
    "long": "150 ms RTT + 1% loss",
    "bottleneck": "20 MB/s cap, 50 ms queue, 10 ms each way",
}
PROFILE_ORDER = ["default", "fast", "lossy", "mobile", "low-memory"]
MKCP = ["mkcp-default", "mkcp-tuned"]
KCPTUN_LOWMEM = "kcptun-w64/microsocks"


def read(p, d=None):
    return pr.read(p, d)


def profiles(pairs):
    """kcpsocks-NAME rows present (one per shipped profile), in a fixed order."""
    names = set()
    for (_, c) in pairs:
        if c.startswith("kcpsocks-") and c not in ("kcpsocks-profile", "kcpsocks-fastopen"):
            names.add(c[len("kcpsocks-"):])
    order = [p for p in PROFILE_ORDER if p in names]
    return order + sorted(names - set(order))


def kcptun_rows(pairs):
    return sorted({c for (_, c) in pairs if c.startswith("kcptun") and c != KCPTUN_LOWMEM})


def ok(pairs, s, c):
    p = pairs.get((s, c))
    return p if p and p.ok() else None


def bulk(p):
    """Bulk figure of a pair: the median, else the rate a cut or broken
    transfer reached (marked by the caller)."""
    return p.bulk_floor() if p else None


def bulk_cell(p):
    if not p:
        return "-"
    v = p.bulk_median()
    if v is not None:
        return pr.fmt(v)
    f = p.bulk_floor()
    return "%s (cut)" % pr.fmt(f) if f is not None else "n/a"


def best_of(pairs, s, names, key, lower=False):
    vals = []
    for c in names:
        p = ok(pairs, s, c)
        v = key(p) if p else None
        if v is not None:
            vals.append((v, c))
    if not vals:
        return None, None
    return min(vals) if lower else max(vals)


def p99(xs):
    return pr.pct(xs, 99) if xs else None


def p50(xs):
    return pr.pct(xs, 50) if xs else None


def page(p):
    """(loads ok, failures, samples ms) of a pair's page loads."""
    xs, fails = [], 0
    for line in (read(os.path.join(p.dir, "page"), "") or "").splitlines():
        f = line.split()
        if f and f[0] == "ok":
            xs.append(float(f[1]))
        elif f:
            fails += 1
    return xs, fails


def page_median(p):
    if not p:
        return None
    xs, fails = page(p)
    if not xs or fails * 2 > len(xs) + fails:
        return None
    return pr.median(xs)


def relay(p):
    """{direction: {counter: value}} from the relay's exit counters."""
    out = {}
    for line in (read(os.path.join(p.dir, "relay_stats"), "") or "").splitlines():
        f = line.split()
        if not f:
            continue
        out[f[0]] = {}
        for w in f[1:]:
            k, _, v = w.partition("=")
            if v.isdigit():
                out[f[0]][k] = int(v)
    return out


def queue_drops(p):
    """(dropped at the rate limiter's queue, datagrams offered), both ways."""
    r = relay(p)
    d = sum(r.get(x, {}).get("queue_dropped", 0) for x in ("up", "down"))
    n = sum(r.get(x, {}).get("sent", 0) for x in ("up", "down"))
    return (d, n) if n else None


def loaded(p):
    """(samples ms, state) of the loaded-latency phase."""
    xs = []
    for line in (read(os.path.join(p.dir, "loaded"), "") or "").splitlines():
        f = line.split()
        if f:
            xs.append(float(f[0]) * 1000.0)
    return xs, read(os.path.join(p.dir, "loaded.state"), "")


def conc(p, n):
    """(total MB/s, Jain's index, streams complete, streams) of round n."""
    lines = (read(os.path.join(p.dir, "conc.%d" % n), "") or "").splitlines()
    if not lines:
        return None
    wall = float(lines[0]) / 1000.0
    rates, total, full = [], 0, 0
    want = pr_size(read(os.path.join(p.dir, "..", "..", "meta"), ""))
    for line in lines[1:]:
        f = line.split()
        if len(f) < 2:
            continue
        b, t = int(f[0]), float(f[1])
        total += b
        rates.append(b / t if t > 0 else 0.0)
        if want and b == want:
            full += 1
    if not rates or wall <= 0:
        return None
    s2 = sum(r * r for r in rates)
    jain = (sum(rates) ** 2) / (len(rates) * s2) if s2 else None
    return total / 1e6 / wall, jain, full, n


SIZE = {}


def pr_size(meta_text):
    """Bytes of one concurrency download (meta conc_size)."""
    if "v" not in SIZE:
        v = None
        for line in (meta_text or "").splitlines():
            k, _, x = line.partition(" ")
            if k == "conc_size":
                s = x.strip()
                mul = {"K": 1024, "M": 1024 * 1024}.get(s[-1:], 1)
                v = int(s.rstrip("KM")) * mul
        SIZE["v"] = v
    return SIZE["v"]


def probes(p, name):
    xs, fails = [], 0
    for line in (read(os.path.join(p.dir, name), "") or "").splitlines():
        f = line.split()
        if len(f) < 2 or f[1] == "after":
            continue
        if f[0] == "fail":
            fails += 1
        else:
            xs.append(float(f[0]) * 1000.0)
    return xs, fails


# The key exchanges of one handshake on the server, as issue 19 gives them:
# the yardstick of "a handshake within 2x the cost of its key exchanges".
KEX_MS = 0.15


def out_dir(pairs):
    for p in pairs.values():
        return os.path.dirname(os.path.dirname(p.dir))
    return ""


def footprint(out, name):
    """The key=value line bench/run-footprint.sh kept, as numbers."""
    text = read(os.path.join(out, "footprint." + name), "") or ""
    d = {}
    for w in text.split():
        k, _, x = w.partition("=")
        try:
            d[k] = float(x) if "." in x else int(x)
        except ValueError:
            pass
    return d


def rss_top(d):
    """The server's RSS with the load up: the larger of the samples once up
    and at the end of the hold."""
    return max(d.get("server_rss_kb_up", 0), d.get("server_rss_kb_held", 0))


def footprint_section(out):
    fs, ft = footprint(out, "sessions"), footprint(out, "streams")
    if not fs and not ft:
        return []
    md = ["### Idle cost and handshakes (issue 19)\n",
          "bench/run-footprint.sh: tools/kcpsocks-load opens real sessions "
          "(handshakes) against a fresh kcpsocks-server, holds them idle, closes "
          "them, and samples the server's RSS and CPU (/proc). Above idle: the larger "
          "of the up and held samples less the one before.\n"]
    rows = []
    for name, d in (("sessions", fs), ("streams", ft)):
        if not d:
            continue
        n_s = d.get("established", 0)
        n_t = d.get("streams_ok", 0)
        up = rss_top(d) - d.get("server_rss_kb_before", 0)
        per = "%.1f KiB per %s" % (up / float(n_t or n_s or 1), "stream" if n_t else "session")
        rows.append([name, "%d (of %d)" % (n_s, d.get("sessions", 0)), str(n_t),
                     "%s / %s / %s / %s" % tuple("%.1f" % (d.get(k, 0) / 1024.0) for k in (
                         "server_rss_kb_before", "server_rss_kb_up", "server_rss_kb_held",
                         "server_rss_kb_after")),
                     per, "%.1f" % d.get("hs_per_s", 0),
                     "%.3f" % (1000.0 * d.get("server_cpu_s_hs", 0) / n_s)
                     if n_s >= 100 else "n/a (too few)",
                     "%.2f s over %s s" % (d.get("server_cpu_s_hold", 0), d.get("hold_s", "?"))])
    md.append(pr.table(["part", "sessions up", "idle streams", "server RSS MiB: before / up / "
                        "held / after close", "above idle", "handshakes/s",
                        "server CPU ms per handshake", "server CPU while held"], rows))
    md.append("")
    return md


def conc_ns(meta):
    return [int(x) for x in meta.get("conc_ns", "1 8 32 128").split() if x.isdigit()]


def gap(x):
    """A "missed by" factor: two decimals, so a near miss is not "1x"."""
    return "%.2f" % x if x < 10 else pr.fmt(x)


def fmt_ratio(r):
    return "%sx" % pr.fmt(r) if r is not None else "n/a"


class Verdicts:
    HEAD = ["issue", "target", "kcpsocks", "reference", "measured", "required", "verdict"]

    def __init__(self):
        self.rows = []

    def ratio(self, issue, target, k, r, unit, op, want):
        """k, r: (value, label). op 'ge': k/r >= want; 'le': k/r <= want."""
        kv, kl = k
        rv, rl = r
        kc = "%s %s %s" % (kl, pr.fmt(kv), unit) if kv is not None else "n/a"
        rc = "%s %s %s" % (rl, pr.fmt(rv), unit) if rv is not None else "n/a"
        req = "%s %sx" % (">=" if op == "ge" else "<=", pr.fmt(want))
        if kv is None or rv is None or rv == 0:
            self.rows.append([issue, target, kc, rc, "-", req, "not measured (%s)" % (
                "no kcpsocks figure" if kv is None else "no reference figure")])
            return
        x = kv / rv
        good = x >= want if op == "ge" else x <= want
        if good:
            v = "met"
        elif op == "ge":
            v = "missed by %sx" % gap(want / x) if x > 0 else "missed (0)"
        else:
            v = "missed by %sx" % gap(x / want)
        self.rows.append([issue, target, kc, rc, "ratio %s" % pr.fmt(x), req, v])

    def absolute(self, issue, target, k, want_label, limit, unit, lower=True):
        """k: (value, label); met when value <= limit (lower) or >= limit."""
        kv, kl = k
        kc = "%s %s %s" % (kl, pr.fmt(kv), unit) if kv is not None else "n/a"
        req = "%s %s %s" % ("<=" if lower else ">=", pr.fmt(limit), unit)
        if kv is None or limit is None:
            self.rows.append([issue, target, kc, want_label, "-", req, "not measured"])
            return
        good = kv <= limit if lower else kv >= limit
        if good:
            v = "met"
        elif lower:
            v = "missed by %sx" % gap(kv / limit) if limit > 0 else "missed"
        else:
            v = "missed by %sx" % gap(limit / kv) if kv > 0 else "missed (0)"
        self.rows.append([issue, target, kc, want_label, pr.fmt(kv), req, v])

    def none(self, issue, target, why):
        self.rows.append([issue, target, "-", "-", "-", "-", "not measured (%s)" % why])


def main():
    out, docdir = sys.argv[1], sys.argv[2]
    pairs, meta = pr.load(out)
    SIZE.clear()
    pr_size(read(os.path.join(out, "meta"), ""))
    paths = [s for s in PATHS if any(k[0] == s for k in pairs)]
    profs = profiles(pairs)
    prow = ["kcpsocks-%s" % p for p in profs]
    kt = kcptun_rows(pairs)
    md = ["## matrix", ""]
    quick = meta.get("quick") == "1"
    md.append("Command: `%s`%s (%s, commit %s). Written by bench/matrix_report.py "
              "from the run's own numbers; how it works: docs/benchmarking.md, "
              "\"The matrix\"."
              % (os.environ.get("BENCH_COMMAND", "make bench-peers"),
                 " with BENCH_QUICK=1 (smoke run)" if quick else "",
                 meta.get("date", "?"), meta.get("commit", "?")))
    if os.environ.get("BENCH_NOTE"):
        md.append("")
        md.append(os.environ["BENCH_NOTE"])
    md.append("")
    knobs = ["bulk %s (%s on the long path)" % (meta.get("bulk_size", "?"),
                                                meta.get("bulk_size_slow", "?")),
             "page loads %s per pair (%s)" % (meta.get("page_n", "?"), meta.get("page", "?")),
             "TTFB samples %s" % meta.get("ttfb_n", "?"),
             "concurrency %s streams of %s, %s probes, paths %s" % (
                 meta.get("conc_ns", "?"), meta.get("conc_size", "?"),
                 meta.get("conc_probes", "?"), meta.get("conc_scenarios", "?"))]
    md.append("Knobs: " + "; ".join(knobs) + ".")
    for r in meta["rerun"]:
        md.append("\nPairs rerun on %s." % r)
    md.append("")
    md.append("Paths (impair arguments, one way; both directions):\n")
    for s in paths:
        md.append("- `%s` (%s): %s" % (s, PATH_TITLE[s], meta.get("scen_" + s, "?")))
    md.append("")

    v = Verdicts()
    # issue 20's targets read the shipped profiles: kcpsocks-default-nosd (the
    # default with per-stream delivery off) is a column of the tables only
    shipped = [c for c in prow if c != "kcpsocks-default-nosd"]
    issue20(v, pairs, meta, paths, [c[len("kcpsocks-"):] for c in shipped], shipped, kt)
    issue19(v, pairs, meta)
    md.append("### Targets (issues 20 and 19)\n")
    md.append(pr.table(Verdicts.HEAD, v.rows))
    md.append("")
    md.append("kcptun's best: the best of its set-ups in that path for that metric "
              "(%s); low-memory is held against %s (fast3 with windows of 64 and "
              "1 MiB buffers, its memory ceiling) instead. Best peer (page loads): "
              "the fastest of kcptun, mKCP and, on the clean path, shadowsocks-libev "
              "over TCP. A bulk figure marked \"(cut)\" is the rate a capped or cut "
              "transfer had reached. \"missed by Nx\": the factor between the "
              "figure and what the target allows.\n" % (", ".join(kt) or "none", KCPTUN_LOWMEM))

    md += bulk_matrix(pairs, paths, prow, kt)
    md += ttfb_matrix(pairs, paths, prow, kt)
    md += page_matrix(pairs, paths, prow, kt, meta)
    md += bottleneck(pairs, meta)
    md += concurrency(pairs, meta)
    md += footprint_section(out)
    md += pr.time_section(pairs, meta)
    with open(os.path.join(docdir, "matrix.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def peers_for(pairs, s, kt):
    return [c for c in kt + [KCPTUN_LOWMEM] + MKCP + ["ss-tcp"] if (s, c) in pairs]


def bulk_matrix(pairs, paths, prow, kt):
    md = ["### Bulk MB/s, every profile x every path\n",
          "Median of the pair's runs; in brackets each profile's ratio to kcptun's "
          "best on that path (low-memory: to %s).\n" % KCPTUN_LOWMEM]
    head = ["path"] + [c.replace("kcpsocks-", "") for c in prow] + [
        "kcptun's best", KCPTUN_LOWMEM, "mKCP's best", "ss-libev TCP",
        "default / best profile", "best profile / mKCP"]
    rows = []
    for s in paths:
        kv, kc = best_of(pairs, s, kt, bulk)
        lv = bulk(ok(pairs, s, KCPTUN_LOWMEM))
        mv, mc = best_of(pairs, s, MKCP, bulk)
        cells = [s]
        for c in prow:
            p = ok(pairs, s, c)
            ref = lv if c == "kcpsocks-low-memory" else kv
            cell = bulk_cell(p)
            if p and bulk(p) is not None and ref:
                cell += " (%s)" % fmt_ratio(bulk(p) / ref)
            cells.append(cell)
        cells.append("%s %s" % (pr.fmt(kv), kc) if kv is not None else "-")
        cells.append(bulk_cell(ok(pairs, s, KCPTUN_LOWMEM)))
        cells.append("%s %s" % (pr.fmt(mv), mc) if mv is not None else "-")
        cells.append(bulk_cell(ok(pairs, s, "ss-tcp")))
        bv, _ = best_of(pairs, s, prow, bulk)
        dv = bulk(ok(pairs, s, "kcpsocks-default"))
        cells.append(fmt_ratio(dv / bv) if dv is not None and bv else "n/a")
        cells.append(fmt_ratio(bv / mv) if bv is not None and mv else "n/a")
        rows.append(cells)
    md.append(pr.table(head, rows))
    md.append("")
    return md


def ttfb_matrix(pairs, paths, prow, kt):
    md = ["### Time to first byte p99, ms (new connection, 1 KiB)\n",
          "In brackets: the ratio to kcptun's best p99 on that path.\n"]
    head = ["path"] + [c.replace("kcpsocks-", "") for c in prow] + ["kcptun's best", "mKCP's best"]
    rows = []
    for s in paths:
        kv, kc = best_of(pairs, s, kt, lambda p: p99(p.ttfb), True)
        mv, mc = best_of(pairs, s, MKCP, lambda p: p99(p.ttfb), True)
        cells = [s]
        for c in prow:
            p = ok(pairs, s, c)
            x = p99(p.ttfb) if p else None
            cell = pr.fmt(x) if x is not None else "-"
            if p and p.ttfb_fail:
                cell += " [%d failed]" % p.ttfb_fail
            if x is not None and kv:
                cell += " (%s)" % fmt_ratio(x / kv)
            cells.append(cell)
        cells.append("%s %s" % (pr.fmt(kv), kc) if kv is not None else "-")
        cells.append("%s %s" % (pr.fmt(mv), mc) if mv is not None else "-")
        rows.append(cells)
    md.append(pr.table(head, rows))
    md.append("")
    return md


def page_matrix(pairs, paths, prow, kt, meta):
    md = ["### Page load, ms: median / p90\n",
          "%s, each load one curl (`--parallel --parallel-immediate --parallel-max "
          "6`) on new connections; wall time of the curl, its start included "
          "(direct on the clean path shows that floor). Failed loads (not every "
          "object with 200 within the cap) in square brackets; in round brackets each "
          "profile's median over the best peer's. Last column: the best "
          "profile's median over the best peer's.\n" % meta.get("page", "?")]
    cols = prow + [c for c in kt + [KCPTUN_LOWMEM] + MKCP + ["ss-tcp", "direct"]
                   if any((s, c) in pairs for s in paths)]
    head = ["path"] + [c.replace("kcpsocks-", "") for c in cols] + ["best profile / best peer"]
    rows = []
    for s in paths:
        cells = [s]
        pv, _ = best_of(pairs, s, peers_for(pairs, s, kt), page_median, True)
        for c in cols:
            p = ok(pairs, s, c)
            if not p:
                cells.append("-")
                continue
            xs, fails = page(p)
            cell = "%s / %s" % (pr.fmt(pr.median(xs)), pr.fmt(pr.pct(xs, 90))) if xs else "n/a"
            if fails:
                cell += " [%d]" % fails
            if c in prow and page_median(p) is not None and pv:
                cell += " (%s)" % fmt_ratio(page_median(p) / pv)
            cells.append(cell)
        bv, _ = best_of(pairs, s, prow, page_median, True)
        cells.append(fmt_ratio(bv / pv) if bv is not None and pv else "n/a")
        rows.append(cells)
    md.append(pr.table(head, rows))
    md.append("")
    return md


def bottleneck(pairs, meta):
    s = "bottleneck"
    if not any(k[0] == s for k in pairs):
        return []
    cap = float(meta.get("bottleneck_rate", "20000000")) / 1e6
    rtt = pr.one_rtt_ms(meta, s)
    md = ["### Bottleneck: %s MB/s cap, %s ms queue, %s ms RTT\n" % (
        pr.fmt(cap), meta.get("bottleneck_queue_ms", "?"), pr.fmt(rtt)),
        "Goodput: the bulk median against the cap. Loaded latency: %s 1 KiB "
        "requests on one keep-alive connection while a bulk download runs; idle: "
        "the keep-alive phase (no load), its minimum is the measured minimum RTT "
        "of a request. Queue drops: datagrams the relay's rate limiter tail-dropped "
        "(`queue_dropped`, both directions) against those offered to it, over the "
        "whole pair.\n" % meta.get("loaded_n", "?")]
    rows = []
    for c in sorted({c for (x, c) in pairs if x == s}):
        p = ok(pairs, s, c)
        if not p:
            continue
        b = bulk(p)
        xs, state = loaded(p)
        q = queue_drops(p)
        rows.append([c, bulk_cell(p), "%.0f%%" % (100 * b / cap) if b is not None else "n/a",
                     pr.fmt(min(p.ka)) if p.ka else "n/a",
                     "%s / %s" % (pr.fmt(p50(xs)), pr.fmt(p99(xs))) if xs else "n/a",
                     state or "-",
                     "%d / %d (%.2f%%)" % (q[0], q[1], 100.0 * q[0] / q[1]) if q else "n/a"])
    md.append(pr.table(["contender", "MB/s", "% of cap", "idle min ms", "loaded p50 / p99 ms",
                        "bulk during the probes", "queue drops / offered"], rows))
    md.append("")
    return md


def concurrency(pairs, meta):
    ns = conc_ns(meta)
    scen = [s for s in PATHS if any(os.path.exists(os.path.join(p.dir, "conc.%d" % ns[0]))
                                    for (x, _), p in pairs.items() if x == s)] if ns else []
    if not scen:
        return []
    md = ["### Concurrency (issue 19)\n",
          "N parallel downloads of %s (a new curl and connection each): total MB/s "
          "(bytes / wall time of the round) and Jain's fairness index over the "
          "streams' own rates; (k/N) when only k streams finished within the cap. "
          "\"32 streams / bulk\": the 32-stream total against the pair's single bulk "
          "download (the issue's single-stream rate). "
          "Small requests: %s 1 KiB fetches one after another (a new curl and "
          "connection each), idle and while 32 bulk downloads run.\n"
          % (meta.get("conc_size", "?"), meta.get("conc_probes", "?"))]
    head = ["path", "contender"] + ["%d streams MB/s (Jain)" % n for n in ns] + [
        "32 streams / bulk", "small idle p50 / p99", "small under 32 bulk p50 / p99"]
    rows = []
    for s in scen:
        for c in sorted({c for (x, c) in pairs if x == s}):
            p = ok(pairs, s, c)
            if not p or not os.path.exists(os.path.join(p.dir, "conc.%d" % ns[0])):
                continue
            cells = [s, c]
            for n in ns:
                r = conc(p, n)
                if not r:
                    cells.append("n/a")
                    continue
                cell = "%s (%s)" % (pr.fmt(r[0]), "%.3f" % r[1] if r[1] is not None else "n/a")
                if r[2] < r[3]:
                    cell += " (%d/%d)" % (r[2], r[3])
                cells.append(cell)
            b, one = conc(p, 32), p.bulk_median()
            cells.append(fmt_ratio(b[0] / one) if b and one else "n/a")
            for name in ("conc.idle", "conc.probe"):
                xs, fails = probes(p, name)
                cell = "%s / %s" % (pr.fmt(p50(xs)), pr.fmt(p99(xs))) if xs else "n/a"
                if fails:
                    cell += " [%d failed]" % fails
                cells.append(cell)
            rows.append(cells)
    md.append(pr.table(head, rows))
    md.append("")
    return md


def issue20(v, pairs, meta, paths, profs, prow, kt):
    d = "kcpsocks-default"
    for s in paths:
        bv, bc = best_of(pairs, s, prow, bulk)
        v.ratio("20", "bulk, %s: default within 10%% of the best profile" % s,
                (bulk(ok(pairs, s, d)), "default"), (bv, bc), "MB/s", "ge", 0.9)
    for s in paths:
        worst = None
        for c in prow:
            p = ok(pairs, s, c)
            if c == "kcpsocks-low-memory":
                rv, rc = bulk(ok(pairs, s, KCPTUN_LOWMEM)), KCPTUN_LOWMEM
            else:
                rv, rc = best_of(pairs, s, kt, bulk)
            kv = bulk(p)
            if kv is None or not rv:
                continue
            if worst is None or kv / rv < worst[0]:
                worst = (kv / rv, (kv, c), (rv, rc))
        if worst:
            v.ratio("20", "bulk, %s: every profile >= kcptun's best (the worst profile)" % s,
                    worst[1], worst[2], "MB/s", "ge", 1)
        else:
            v.none("20", "bulk, %s: every profile >= kcptun's best" % s, "no figures")
    kd = (bulk(ok(pairs, "clean", d)), "default")
    v.ratio("20", "bulk, clean: default vs kcptun's best", kd,
            best_of(pairs, "clean", kt, bulk), "MB/s", "ge", 5)
    v.ratio("20", "bulk, clean: default vs shadowsocks-libev over TCP", kd,
            (bulk(ok(pairs, "clean", "ss-tcp")), "ss-tcp"), "MB/s", "ge", 1)
    v.ratio("20", "bulk, 1% loss + 10 ms: default vs its own clean rate",
            (bulk(ok(pairs, "loss1", d)), "default"), (kd[0], "default clean"),
            "MB/s", "ge", 0.8)
    cap = float(meta.get("bottleneck_rate", "20000000")) / 1e6
    p = ok(pairs, "bottleneck", d)
    if p:
        v.ratio("20", "bottleneck: goodput vs the cap", (bulk(p), "default"),
                (cap, "cap"), "MB/s", "ge", 0.9)
        xs, _ = loaded(p)
        base = min(p.ka) if p.ka else None
        v.absolute("20", "bottleneck: small request during bulk (p50) <= min RTT + 20 ms",
                   (p50(xs), "default"),
                   "idle minimum %s ms" % pr.fmt(base) if base is not None else "n/a",
                   base + 20 if base is not None else None, "ms")
        q = queue_drops(p)
        v.absolute("20", "bottleneck: drops at the queue",
                   (100.0 * q[0] / q[1] if q else None, "default"), "relay counters",
                   1.0, "%")
    else:
        v.none("20", "bottleneck targets", "no kcpsocks-default pair on the bottleneck path")
    for s in paths:
        v.ratio("20", "TTFB p99, %s: default vs half kcptun's best" % s,
                (p99(ok(pairs, s, d).ttfb) if ok(pairs, s, d) else None, "default"),
                best_of(pairs, s, kt, lambda q: p99(q.ttfb), True), "ms", "le", 0.5)
    for s in paths:
        v.ratio("20", "page load median, %s: default vs the best peer" % s,
                (page_median(ok(pairs, s, d)), "default"),
                best_of(pairs, s, peers_for(pairs, s, kt), page_median, True), "ms", "le", 1)
    v.ratio("20", "page load median, 1% loss + 10 ms: default vs its own clean time",
            (page_median(ok(pairs, "loss1", d)), "default"),
            (page_median(ok(pairs, "clean", d)), "default clean"), "ms", "le", 3)
    v.none("20", "reference scenario (median average RTT <= 125 ms, max <= 350 ms)",
           "a simulator figure: docs/bench/kcp.md, make bench-kcp")


def issue19(v, pairs, meta):
    d = "kcpsocks-default"
    for s in ("clean", "loss1"):
        p = ok(pairs, s, d)
        b = conc(p, 32) if p else None
        v.ratio("19", "%s: 32 streams vs one stream (the bulk download), total MB/s" % s,
                (b[0] if b else None, "default, 32 streams"),
                (p.bulk_median() if p else None, "default, bulk"), "MB/s", "ge", 0.9)
        v.absolute("19", "%s: Jain's fairness over 32 streams" % s,
                   (b[1] if b else None, "default"), "-", 0.95, "", lower=False)
    p = ok(pairs, "clean", d)
    if p:
        idle, _ = probes(p, "conc.idle")
        busy, _ = probes(p, "conc.probe")
        base = p50(idle)
        v.absolute("19", "clean: small request under 32 bulk (p50) <= idle p50 + 5 ms",
                   (p50(busy), "default"),
                   "idle p50 %s ms" % pr.fmt(base) if base is not None else "n/a",
                   base + 5 if base is not None else None, "ms")
    kp = []
    for c in sorted({c for (x, c) in pairs if x == "loss1" and c.startswith("kcptun")}):
        q = ok(pairs, "loss1", c)
        xs, _ = probes(q, "conc.probe") if q else ([], 0)
        if xs:
            kp.append((p99(xs), c))
    p = ok(pairs, "loss1", d)
    xs, _ = probes(p, "conc.probe") if p else ([], 0)
    v.ratio("19", "1% loss: small request p99 under 32 bulk vs half kcptun's",
            (p99(xs), "default"), min(kp) if kp else (None, None), "ms", "le", 0.5)
    fs, ft = footprint(out_dir(pairs), "sessions"), footprint(out_dir(pairs), "streams")
    if ft and ft.get("streams_ok"):
        n = ft["streams_ok"]
        mib = (rss_top(ft) - ft["server_rss_kb_before"]) / 1024.0 * 1000.0 / n
        v.absolute("19", "1,000 idle streams: server RSS above idle%s" % (
            "" if n == 1000 else " (scaled from %d)" % n), (mib, "server"),
            "%d streams measured" % n, 16, "MiB")
    else:
        v.none("19", "1,000 idle streams <= 16 MiB", "no footprint run (bench/run-footprint.sh)")
    if fs and fs.get("established"):
        n = fs["established"]
        mib = (rss_top(fs) - fs["server_rss_kb_before"]) / 1024.0 * 10000.0 / n
        v.absolute("19", "10,000 idle sessions: server RSS above idle%s" % (
            "" if n == 10000 else " (scaled from %d)" % n), (mib, "server"),
            "%d sessions measured" % n, 64, "MiB")
        ms = 1000.0 * fs.get("server_cpu_s_hs", 0) / n
        v.absolute("19", "server CPU per handshake <= 2x its key exchanges (the issue's "
                   "0.15 ms)", (ms, "server"), "%d handshakes" % n, 2 * KEX_MS, "ms")
    else:
        v.none("19", "10,000 idle sessions <= 64 MiB; handshake CPU",
               "no footprint run (bench/run-footprint.sh)")


if __name__ == "__main__":
    main()
