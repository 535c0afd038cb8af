#!/usr/bin/env bash
# fast_impair.sh - tools/impair between a python3 UDP client and echo server
# on 127.0.0.1: datagrams pass and come back, --loss 1 drops all, --delay
# delays, SIGUSR1 moves the upstream source port, SIGUSR2 blackholes, the
# exit counters are right, the scheduled blackhole and rebinding work;
# then a short throughput figure.
# Every port is ephemeral, every wait bounded, every child killed by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fast_impair
[ -x "$IMPAIR" ] || die "$IMPAIR not built"

cat >"$T/udp.py" <<'EOF'
# udp.py MODE ... - small UDP endpoints for fast_impair.sh (loopback only).
import socket, sys, time

def echo(portfile):
    # Reply to each datagram with its payload + b"|" + the sender's port.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os; os.rename(portfile + ".tmp", portfile)
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d + b"|" + str(a[1]).encode(), a)

def ping(port, n, timeout):
    # Send n numbered datagrams one at a time; print replies got, the server
    # ports seen (in order, deduplicated), the largest and the smallest
    # round trip in ms.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(float(timeout))
    got, ports, rtt, low = 0, [], 0.0, 1e9
    for i in range(int(n)):
        msg = b"ping %d" % i
        t0 = time.monotonic()
        s.sendto(msg, ("127.0.0.1", int(port)))
        try:
            while True:
                d, _ = s.recvfrom(65535)
                body, _, p = d.rpartition(b"|")
                if body == msg:
                    break
        except socket.timeout:
            continue
        got += 1
        rtt = max(rtt, (time.monotonic() - t0) * 1000)
        low = min(low, (time.monotonic() - t0) * 1000)
        if not ports or ports[-1] != int(p):
            ports.append(int(p))
    print(got, ",".join(map(str, ports)) or "-", int(rtt), int(low))

def burst(port, n):
    # Send n datagrams back to back, in runs of equal sizes (so the relay
    # batches them with UDP GSO) with odd sizes and empty ones between; each
    # must come back whole. Print replies got and replies that were wrong.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sizes = [1200] * 7 + [0, 700, 0, 3000, 3000, 1, 64000, 20, 20, 0, 19]
    want = {}
    for i in range(int(n)):
        size = sizes[i % len(sizes)]
        tag = b"%d:" % i
        d = (tag + bytes((i + k) & 255 for k in range(size)))[:size] if size >= len(tag) else bytes(size)
        want.setdefault(d, 0)
        want[d] += 1
        s.sendto(d, ("127.0.0.1", int(port)))
    s.settimeout(5)
    got = bad = 0
    try:
        while got < int(n):
            d, _ = s.recvfrom(65535)
            body = d.rpartition(b"|")[0]
            if want.get(body, 0) > 0:
                want[body] -= 1
                got += 1
            else:
                bad += 1
    except socket.timeout:
        pass
    print(got, bad)

def sink(portfile, seconds):
    # Count bytes for `seconds` after the first datagram; print bytes/s.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os; os.rename(portfile + ".tmp", portfile)
    s.settimeout(10)
    buf = bytearray(65535)
    n = s.recv_into(buf)
    total, t0, end = n, time.monotonic(), time.monotonic() + float(seconds)
    s.settimeout(0.5)
    try:
        while time.monotonic() < end:
            total += s.recv_into(buf)
    except socket.timeout:
        pass
    print(int(total / (time.monotonic() - t0)))

def blast(port, seconds, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", int(port)))
    d = b"x" * int(size)
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        for _ in range(256):
            try:
                s.send(d)
            except (BlockingIOError, ConnectionRefusedError):
                pass

{"echo": echo, "ping": ping, "burst": burst, "sink": sink, "blast": blast}[sys.argv[1]](*sys.argv[2:])
EOF

# wait_file FILE PATTERN: poll (bounded, 10 s) until FILE contains PATTERN.
wait_file() { wait_until "'$2' in $1" 10 grep -q "$2" "$1"; }

python3 "$T/udp.py" echo "$T/echo.port" &
lib_track "$!" echo
wait_file "$T/echo.port" .
eport=$(cat "$T/echo.port")

# start_relay ARGS...: lib.sh's start_impair in front of the echo server
# ($eport); sets IMPAIR_PID, IMPAIR_PORT, IMPAIR_LOG, IMPAIR_STATS.
start_relay() { start_impair "$eport" "$@"; }

# stop_relay: stop_impair (a clean exit on SIGTERM, bounded) and its stats file.
stop_relay() {
	stop_impair
	[ -s "$IMPAIR_STATS" ] || die "no stats file"
}

pings() { python3 "$T/udp.py" ping "$IMPAIR_PORT" "$@"; }

# 1. clean path: every datagram comes back, and the counters agree.
start_relay
read -r got ports rtt _ < <(pings 200 2)
[ "$got" = 200 ] || die "clean path: $got/200 replies"
echo "clean path: 200/200 replies, max rtt ${rtt} ms, server saw port $ports"
first_port=$ports

# 1b. a burst of mixed sizes keeps every datagram whole, with and without
# UDP GSO batching on the relay's sends.
read -r got bad < <(python3 "$T/udp.py" burst "$IMPAIR_PORT" 400)
if [ "$got" != 400 ] || [ "$bad" != 0 ]; then die "burst: $got/400 back, $bad wrong"; fi
echo "burst: 400/400 datagrams of mixed sizes back intact"

# 2. SIGUSR1: the server sees the client move to a new source port.
kill -USR1 "$IMPAIR_PID"
moved=
tries=0
for _ in $(seq 50); do
	tries=$((tries + 1))
	read -r got p _ _ < <(pings 1 2)
	if [ "$got" = 1 ] && [ "$p" != "$first_port" ]; then moved=$p; break; fi
done
[ -n "$moved" ] || die "SIGUSR1 did not change the upstream source port"
echo "rebind: upstream source port $first_port -> $moved"

# 3. SIGUSR2: blackhole on drops everything, off lets it through again.
kill -USR2 "$IMPAIR_PID"
wait_file "$IMPAIR_LOG" 'blackhole on'
read -r got _ _ < <(pings 20 0.1)
[ "$got" = 0 ] || die "blackhole: $got replies"
kill -USR2 "$IMPAIR_PID"
wait_file "$IMPAIR_LOG" 'blackhole off'
read -r got _ _ < <(pings 20 2)
[ "$got" = 20 ] || die "after blackhole: $got/20 replies"
stop_relay
[ "$(impair_counter relay rebinds)" = 1 ] || die "rebinds counter: $(impair_counter relay rebinds)"
[ "$(impair_counter up lost_blackhole)" = 20 ] || die "up lost_blackhole=$(impair_counter up lost_blackhole)"
# a reply in flight to the old port at the rebind is lost, as behind a NAT
up=$(impair_counter up delivered)
down=$(impair_counter down delivered)
[ "$up" = $((620 + tries)) ] || die "up delivered=$up, want $((620 + tries))"
if [ "$down" -lt 620 ] || [ "$down" -gt "$up" ]; then die "down delivered=$down (up $up)"; fi
echo "blackhole: 20/20 dropped, then 20/20 through; counters agree"

start_relay --no-gso
read -r got bad < <(python3 "$T/udp.py" burst "$IMPAIR_PORT" 400)
if [ "$got" != 400 ] || [ "$bad" != 0 ]; then die "burst --no-gso: $got/400 back, $bad wrong"; fi
stop_relay
echo "burst --no-gso: 400/400 back intact"

# 4. --loss 1 drops everything.
start_relay --loss 1
read -r got _ _ < <(pings 100 0.02)
[ "$got" = 0 ] || die "--loss 1: $got replies"
stop_relay
[ "$(impair_counter up lost_random)" = 100 ] || die "--loss 1: up lost_random=$(impair_counter up lost_random)"
echo "--loss 1: 100/100 dropped"

# 4b. --only down: the same loss on the way back only.
start_relay --loss 1 --only down
read -r got _ _ < <(pings 50 0.02)
[ "$got" = 0 ] || die "--loss 1 --only down: $got replies"
stop_relay
[ "$(impair_counter up delivered)" = 50 ] || die "--only down: up delivered=$(impair_counter up delivered)"
[ "$(impair_counter down lost_random)" = 50 ] || die "--only down: down lost=$(impair_counter down lost_random)"
echo "--loss 1 --only down: 50/50 reached the server, 50/50 replies dropped"

# 5. --delay applies to each direction.
start_relay --delay 60 --seed 7
read -r got _ high low < <(pings 5 2)
[ "$got" = 5 ] || die "--delay: $got/5 replies"
# The relay keeps time in whole milliseconds (netsim's now): a datagram
# that arrives at 1000.9 ms is stamped 1000 and leaves at 1060, so each
# direction may be up to 1 ms short of the delay.
[ "$low" -ge 118 ] || die "--delay 60: a round trip took only ${low} ms"
stop_relay
echo "--delay 60: round trips between ${low} and ${high} ms (>= 118: 2 x 60, less 1 ms clock granularity each way)"

# 6. the scheduled forms: --blackhole START,DURATION and --rebind-every.
# A long blackhole, so that a slow start of python cannot outlast it...
start_relay --blackhole 0,600
wait_file "$IMPAIR_LOG" 'blackhole on'
read -r got _ _ < <(pings 3 0.05)
[ "$got" = 0 ] || die "--blackhole 0,600: $got replies while on"
stop_relay
[ "$(impair_counter up lost_blackhole)" = 3 ] || die "--blackhole: lost_blackhole=$(impair_counter up lost_blackhole)"
# ...and a short one, checked after it ended.
start_relay --blackhole 0,0.2 --rebind-every 0.3
wait_file "$IMPAIR_LOG" 'blackhole off'
# The relay also moves its upstream port every 0.3 s, and a reply in flight
# to the old port at a move is lost (as behind a NAT): on a loaded machine
# a round trip can straddle a move, so at least 3 of 6 must come back.
read -r got _ _ < <(pings 6 2)
[ "$got" -ge 3 ] || die "--blackhole 0,0.2: $got/6 replies after it ended"
for _ in $(seq 200); do
	[ "$(grep -c ' from 127' "$IMPAIR_LOG")" -ge 4 ] && break
	sleep 0.05
done
stop_relay
[ "$(impair_counter relay rebinds)" -ge 3 ] || die "--rebind-every: rebinds=$(impair_counter relay rebinds)"
echo "--blackhole and --rebind-every 0.3: ok (rebinds=$(impair_counter relay rebinds))"

# 7. throughput, unimpaired, 1400-byte datagrams (python endpoints bound it).
python3 "$T/udp.py" sink "$T/sink.port" 2 >"$T/sink.out" &
spid=$!
lib_track "$spid" sink
wait_file "$T/sink.port" .
eport=$(cat "$T/sink.port")
start_relay
python3 "$T/udp.py" blast "$IMPAIR_PORT" 2.5 1400 &
bpid=$!
lib_track "$bpid" blast
reap "$spid" || die "sink failed"
reap "$bpid" || true
stop_relay
rate=$(cat "$T/sink.out")
echo "throughput: $((rate / 1000000)) MB/s through impair (python sender and sink)," \
	"up tx=$(impair_counter up tx) tx_dropped=$(impair_counter up tx_dropped)"
[ "$rate" -gt 1000000 ] || die "throughput below 1 MB/s"
echo "fast_impair: ok"
