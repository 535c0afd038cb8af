#!/usr/bin/env python3
"""profile-report.py DIR - the markdown report of scripts/profile-bulk.sh.

Reads the raw files profile-bulk.sh left in DIR and prints:
  - throughput (median MB/s of the downloads) and CPU s/GB per daemon;
  - system calls per datagram per daemon, by kind (perf stat tracepoints);
  - the cpu-clock sample profile per daemon split into categories
    (crypto, copies, KCP, mux, session/envelope, I/O glue, libev,
    allocator, kernel: syscall entry, UDP/IP, TCP, copies to/from user,
    epoll, scheduler) and its top symbols;
  - callgrind per daemon: user-space instructions per byte, by category
    and top functions.
MB and GB are 10^6 and 10^9 bytes, as in docs/bench/peers.md.
"""
import glob
import os
import re
import statistics
import sys

D = sys.argv[1]
DAEMONS = ("server", "local")
COMM = {"server": "kcpsocks-serve", "local": "kcpsocks-local"}


def read(name):
    p = os.path.join(D, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return f.read()


def kv(name):
    t = read(name) or ""
    return dict(l.split(None, 1) for l in t.splitlines() if " " in l)


def metrics(name):
    """Sum of every sample of each family (labels dropped)."""
    out = {}
    for line in (read(name) or "").splitlines():
        if not line or line[0] == "#":
            continue
        parts = line.split()
        fam = parts[0].split("{")[0]
        try:
            out[fam] = out.get(fam, 0.0) + float(parts[-1])
        except ValueError:
            pass
    return out


def delta(d, fam):
    a = metrics("%s.metrics.0" % d).get(fam, 0.0)
    b = metrics("%s.metrics.1" % d).get(fam, 0.0)
    return b - a


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt(v, digits=3):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    return "%.*g" % (digits, v)


# ---- categories ----------------------------------------------------------

USER_RULES = [
    ("crypto", r"chacha|poly1305|crypto_|sodium|salsa|blake2|x25519|curve25519"),
    ("copies (memcpy/memmove/memset)", r"^_*(mem(cpy|move|set)|__mem(cpy|move|set))"),
    ("KCP", r"^(kcp_|src/core/kcp\.c)"),
    ("mux", r"^(mux_|src/core/mux\.c)"),
    ("session/envelope/server", r"^src/core/(session|sessions|envelope|server|replay|handshake)\.c"),
    ("I/O glue (peer/udp/tcp/relay/daemon)", r"^src/(io|local|server)/"),
    ("libev", r"libev|^ev_|epoll_wait"),
    ("allocator", r"^_*(malloc|free|calloc|realloc|_int_malloc|_int_free|cfree)"),
    ("syscall wrappers (libc)", r"^_*(libc_)?(recvmmsg|sendmmsg|recv|send|recvfrom|sendto|sendmsg|read|write|epoll_ctl|epoll_pwait|syscall)$"),
]
# Kernel leaf symbols that copy between user and kernel memory.
KERNEL_COPY = r"copy_user|copy_to_user|copy_from_user|_copy_to_iter|_copy_from_iter|copyin|copyout|rep_movs|memcpy|memmove|csum_partial_copy"


FILE_OF = {}  # function -> source file (src/...), from the callgrind dumps


def categorise(sym, dso):
    """Category of a user-space symbol (dso: its object's file name)."""
    name = FILE_OF[sym] + ":" + sym if sym in FILE_OF else sym
    key = name + " " + (dso or "")
    if "libsodium" in (dso or ""):
        return "crypto"
    if "libev" in (dso or ""):
        return "libev"
    for cat, rx in USER_RULES:
        if re.search(rx, sym) or re.search(rx, name) or re.search(rx, key):
            return cat
    return "other (user)"


# ---- throughput and CPU ----------------------------------------------------

def throughput():
    runs = []
    for line in (read("downloads") or "").splitlines():
        b, s = line.split()
        runs.append((int(b), float(s)))
    return runs


def section_rate(md):
    runs = throughput()
    if not runs:
        return 0
    rates = [b / s / 1e6 for b, s in runs]
    total = sum(b for b, _ in runs)
    cpu = kv("cpu")
    tck = float(cpu.get("clk_tck", 100))
    md.append("### Throughput and CPU (stat pass)\n")
    md.append("%d downloads of %s: %s MB/s (median %s).\n" % (
        len(runs), kv("meta").get("size", "?"), ", ".join(fmt(r) for r in rates),
        fmt(statistics.median(rates))))
    rows = []
    both = 0.0
    for name in ("server", "local", "relay"):
        if name not in cpu:
            continue
        sec = int(cpu[name]) / tck
        if name != "relay":
            both += sec
        rows.append([name, fmt(sec), fmt(sec / (total / 1e9))])
    rows.append(["server + local", fmt(both), fmt(both / (total / 1e9))])
    md.append(table(["process", "CPU s", "CPU s/GB"], rows))
    md.append("")
    return total


# ---- syscalls ----------------------------------------------------------------

def syscalls(d):
    out = {}
    for line in (read("%s.syscalls" % d) or "").splitlines():
        f = line.split(",")
        if len(f) < 3 or not f[0].strip().isdigit():
            continue
        ev = f[2].split(":")[-1].replace("sys_enter_", "")
        out["all" if ev == "sys_enter" else ev] = int(f[0])
    return out


def section_syscalls(md):
    data = {d: syscalls(d) for d in DAEMONS}
    if not any(data.values()):
        return
    md.append("### System calls per datagram (stat pass, perf syscall tracepoints, the "
              "download under perf)\n")
    kinds = ["all", "recvmmsg", "sendmmsg", "recvfrom", "sendto", "sendmsg", "read", "write",
             "epoll_wait", "epoll_pwait", "epoll_ctl"]
    rows = []
    for d in DAEMONS:
        rx = delta(d, "kcpsocks_udp_received_datagrams_total")
        tx = delta(d, "kcpsocks_udp_sent_datagrams_total")
        n = rx + tx
        sc = data[d]
        row = [d, "%d in + %d out" % (rx, tx)]
        for k in kinds:
            c = sc.get(k, 0)
            row.append("%s (%s)" % (fmt(c / n if n else None), c))
        rows.append(row)
        rmm = delta(d, "kcpsocks_udp_recvmmsg_calls_total")
        smm = delta(d, "kcpsocks_udp_sendmmsg_calls_total")
        md.append("- %s: %s datagrams per recvmmsg call that returned some, %s per "
                  "sendmmsg call; %s timer wakeups." % (
                      d, fmt(rx / rmm if rmm else None), fmt(tx / smm if smm else None),
                      fmt(delta(d, "kcpsocks_timer_wakeups_total"))))
    md.append("")
    md.append("Per datagram (count in brackets):\n")
    md.append(table(["daemon", "datagrams"] + kinds, rows))
    md.append("")


# ---- perf samples ----------------------------------------------------------------

KERNEL_CONTEXT = [
    ("kernel: context switches", r"^(finish_task_switch|__schedule$|schedule$)"),
    ("kernel: waking another process", r"^(try_to_wake_up|__wake_up|sock_def_readable|ep_poll_callback)"),
    ("kernel: loopback delivery (softirq)", r"^(handle_softirqs|net_rx_action|process_backlog)"),
    ("kernel: page faults", r"^asm_exc_page_fault"),
    ("kernel: preemption (reschedule IPI)", r"^asm_sysvec_reschedule_ipi"),
    ("kernel: sendmmsg (UDP output)", r"^__x64_sys_sendmmsg"),
    ("kernel: recvmmsg (UDP input)", r"^__x64_sys_recvmmsg"),
    ("kernel: TCP send/recv", r"^__x64_sys_(sendto|recvfrom|sendmsg|read|write)$"),
    ("kernel: epoll", r"^__x64_sys_epoll"),
    ("kernel: other syscalls", r"^__x64_sys_"),
    ("kernel: syscall entry/exit", r"^(do_syscall_64|entry_SYSCALL)"),
]


def kernel_category(stack):
    """Category of a kernel sample from its call chain, leaf first: copies
    by the leaf, the rest by the innermost frame that says what it was."""
    if re.search(KERNEL_COPY, stack[0]):
        return "kernel: copies to/from user"
    for sym in stack:
        for cat, rx in KERNEL_CONTEXT:
            if re.search(rx, sym):
                return cat
    return "kernel: other (interrupts, timers)"


def perf_samples():
    """{daemon: {category: samples}}, {daemon: {(dso, leaf symbol): samples}}."""
    t = read("perf.script")
    if not t:
        return None, None
    cats = {d: {} for d in DAEMONS}
    leaves = {d: {} for d in DAEMONS}

    def add(comm, stack):
        d = next((d for d in DAEMONS if comm and comm.startswith(COMM[d])), None)
        if not d or not stack:
            return
        sym, dso = stack[0]
        kernel = "kernel" in dso
        cat = kernel_category([f[0] for f in stack]) if kernel else categorise(sym, dso)
        cats[d][cat] = cats[d].get(cat, 0) + 1
        leaves[d][(dso, sym, cat)] = leaves[d].get((dso, sym, cat), 0) + 1

    comm, stack = None, []
    for line in t.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            add(comm, stack)
            comm, stack = line.split()[0], []
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            stack.append((m.group(1), os.path.basename(m.group(2))))
    add(comm, stack)
    return cats, leaves


def perf_rate():
    t = (read("perf.download") or "").split()
    return fmt(int(t[0]) / float(t[1]) / 1e6) if len(t) == 2 and float(t[1]) > 0 else "?"


def section_perf(md):
    cats, leaves = perf_samples()
    if not cats:
        return
    total = sum(sum(c.values()) for c in cats.values())
    md.append("### Where the CPU time goes (stat pass, perf record -e cpu-clock, user + kernel)\n")
    md.append("%d samples at 1999 Hz over both daemons, one download of %s (%s MB/s with "
              "perf attached). Shares are of each daemon's own samples. A kernel sample "
              "is filed by its call chain: copies by the leaf, the rest by the innermost "
              "frame that names the work (this paravirtualised guest books irq-off time "
              "at `pvm_irq_enable`, so the leaf alone says little).\n" % (
                  total, kv("meta").get("size", "?"), perf_rate()))
    share = {d: {k: v * 100.0 / (sum(cats[d].values()) or 1) for k, v in cats[d].items()}
             for d in DAEMONS}
    names = sorted(set(k for c in share.values() for k in c),
                   key=lambda k: -sum(c.get(k, 0) for c in share.values()))
    md.append(table(["category"] + ["%s %%" % d for d in DAEMONS],
                    [[k] + [fmt(share[d].get(k, 0), 3) for d in DAEMONS] for k in names]))
    md.append("")
    for d in DAEMONS:
        n = sum(cats[d].values()) or 1
        top = sorted(leaves[d].items(), key=lambda x: -x[1])[:15]
        md.append("Top leaf symbols, %s:\n" % d)
        md.append(table(["%", "object", "symbol", "category"],
                        [[fmt(c * 100.0 / n), dso, sym.replace("|", "\\|"), cat]
                         for (dso, sym, cat), c in top]))
        md.append("")


# ---- callgrind -----------------------------------------------------------------

def cg_names(kind, tok, table):
    """Resolve callgrind's name compression: "(id) name" defines, "(id)" refers."""
    m = re.match(r"\((\d+)\)\s*(.*)", tok)
    if not m:
        return tok
    if m.group(2):
        table[(kind, m.group(1))] = m.group(2)
    return table.get((kind, m.group(1)), tok)


def callgrind(d):
    """(total Ir, [(self Ir, file, function, object)]) of the last dump of
    daemon d: self cost is every cost line not right after a calls= line."""
    dumps = [p for p in glob.glob(os.path.join(D, "callgrind.%s.out.*" % d))
             if p.rsplit(".", 1)[1].isdigit()]
    if not dumps:
        return None
    path = max(dumps, key=lambda p: int(p.rsplit(".", 1)[1]))
    names, cost, calls = {}, {}, {}
    ob = fl = fn = cfn = ""
    skip = False
    total = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip:
                    skip = False
                    parts = line.split()
                    if len(parts) > 1:
                        key = (fn, cfn)
                        calls[key] = calls.get(key, 0) + int(parts[1])
                    continue
                parts = line.split()
                if len(parts) > 1:
                    key = (fl, fn, ob)
                    cost[key] = cost.get(key, 0) + int(parts[1])
                continue
            k, _, v = line.partition("=")
            if k == "ob":
                ob = cg_names("ob", v, names)
            elif k == "fl":
                fl = cg_names("fl", v, names)
            elif k == "fn":
                fn = cg_names("fn", v, names)
            elif k in ("fi", "fe"):
                cg_names("fl", v, names)
            elif k == "cfn":
                cfn = cg_names("fn", v, names)
            elif k in ("cob", "cfi", "cfl"):
                cg_names({"cob": "ob", "cfi": "fl", "cfl": "fl"}[k], v, names)
            elif k == "calls":
                skip = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    # Source paths are absolute (the build dir's); keep them from src/ on.
    funcs = [(ir, re.sub(r"^.*?/(src|tests|tools)/", r"\1/", fl_), fn_, ob_)
             for (fl_, fn_, ob_), ir in cost.items()]
    CALLS[d] = calls
    for _, fl_, fn_, _ in funcs:
        if fl_.startswith("src/"):
            FILE_OF[fn_] = fl_
    return total or sum(f[0] for f in funcs), funcs


CALLS = {}
RES = {}


def cg_category(fil, fn, obj):
    if "libsodium" in obj:
        return "crypto"
    if "libev" in obj:
        return "libev"
    for cat, rx in USER_RULES:
        if re.search(rx, fn) or re.search(rx, fil):
            return cat
    return "other (user)"


def section_callgrind(md):
    res = {d: callgrind(d) for d in DAEMONS}
    if not any(res.values()):
        return
    RES.update(res)
    md.append("### Instructions per byte (callgrind, user space only)\n")
    rows = []
    cats = {}
    for d in DAEMONS:
        if not res[d]:
            continue
        total, funcs = res[d]
        b = int((read("callgrind.%s.download" % d) or "0 0").split()[0]) or 1
        rows.append([d, "%.3g M" % (total / 1e6), b, fmt(total / b)])
        c = {}
        for ir, fil, fn, obj in funcs:
            k = cg_category(fil, fn, obj)
            c[k] = c.get(k, 0) + ir
        cats[d] = (c, b)
    md.append(table(["daemon", "instructions", "bytes downloaded", "instructions/byte"], rows))
    md.append("")
    names = sorted(set(k for c, _ in cats.values() for k in c),
                   key=lambda k: -sum(c.get(k, 0) for c, _ in cats.values()))
    md.append(table(["category"] + ["%s instr/byte" % d for d in cats],
                    [[k] + [fmt(cats[d][0].get(k, 0) / cats[d][1]) for d in cats]
                     for k in names]))
    md.append("")
    for d in DAEMONS:
        if not res[d]:
            continue
        total, funcs = res[d]
        b = cats[d][1]
        md.append("Top functions, %s (instructions per byte, share):\n" % d)
        md.append(table(["instr/byte", "%", "function", "object"],
                        [[fmt(ir / b), fmt(ir / total * 100), ("%s:%s" % (fil, fn)) if fil and fil != "???" else fn,
                          os.path.basename(obj)]
                         for ir, fil, fn, obj in sorted(funcs, key=lambda f: -f[0])[:15]]))
        md.append("")


def section_copies(md, res):
    """Who calls memcpy/memmove/memset, in instructions per byte (inclusive)."""
    rows = []
    for d in DAEMONS:
        if not res.get(d):
            continue
        b = int((read("callgrind.%s.download" % d) or "0 0").split()[0]) or 1
        agg = {}
        for (caller, callee), ir in CALLS.get(d, {}).items():
            if re.search(USER_RULES[1][1], callee):
                agg[caller] = agg.get(caller, 0) + ir
        for caller, ir in sorted(agg.items(), key=lambda x: -x[1])[:8]:
            if ir / b >= 0.01:
                rows.append([d, caller, fmt(ir / b)])
    if rows:
        md.append("Callers of memcpy/memmove/memset (instructions per byte, inclusive):\n")
        md.append(table(["daemon", "caller", "instr/byte"], rows))
        md.append("")


def main():
    meta = kv("meta")
    md = ["## Bulk-path profile (`make profile`)\n",
          "Commit %s, %s; kcpsocks profile `%s`, relay %s; stat pass %s x %s, "
          "callgrind pass %s.\n" % (meta.get("commit", "?"), meta.get("date", "?"),
                                     meta.get("kcp_profile", "?"),
                                     "build/impair" if meta.get("relay") == "1" else "none",
                                     meta.get("runs", "?"), meta.get("size", "?"),
                                     meta.get("cg_size", "?"))]
    for d in DAEMONS:  # fills FILE_OF for the perf section
        callgrind(d)
    section_rate(md)
    section_syscalls(md)
    section_perf(md)
    section_callgrind(md)
    section_copies(md, RES)
    print("\n".join(md))


main()
