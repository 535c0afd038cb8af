#!/usr/bin/env bash
# fast_impair.sh - tools/impair between a python3 UDP client and echo server
# on 127.0.0.1: datagrams pass and come back, --loss 1 drops all, --delay
# delays, SIGUSR1 moves the upstream source port, SIGUSR2 blackholes, the
# exit counters are right, the scheduled blackhole and rebinding work;
# then a short throughput figure.
# Every port is ephemeral, every wait bounded, every child killed by PID.
set -euo pipefail
BUILD=${BUILD:-build}
IMPAIR=$BUILD/impair
[ -x "$IMPAIR" ] || { echo "fast_impair: $IMPAIR not built" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "fast_impair: FAIL: $*" >&2; [ -f "$tmp/impair.log" ] && cat "$tmp/impair.log" >&2; exit 1; }

cat >"$tmp/udp.py" <<'EOF'
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
wait_file() {
	for _ in $(seq 200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "timed out waiting for '$2' in $1"
}

python3 "$tmp/udp.py" echo "$tmp/echo.port" &
pids+=("$!")
wait_file "$tmp/echo.port" .
eport=$(cat "$tmp/echo.port")

# start_impair ARGS...: run impair in the background, set $ipid and $iport.
start_impair() {
	: >"$tmp/impair.log"
	"$IMPAIR" --listen 127.0.0.1:0 --upstream "127.0.0.1:$eport" --stats-file "$tmp/stats" \
		"$@" 2>"$tmp/impair.log" &
	ipid=$!
	pids+=("$ipid")
	wait_file "$tmp/impair.log" 'listening on'
	iport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/impair.log")
	[ -n "$iport" ] || fail "no port in impair's log"
}

# stop_impair: SIGTERM, bounded wait for a clean exit and the stats file.
stop_impair() {
	rm -f "$tmp/stats"
	kill -TERM "$ipid"
	for _ in $(seq 200); do
		kill -0 "$ipid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$ipid" 2>/dev/null && fail "impair did not exit on SIGTERM"
	wait "$ipid" || fail "impair exited with status $?"
	[ -s "$tmp/stats" ] || fail "no stats file"
}

# counter DIR NAME: a value from the stats file.
counter() { sed -n "s/^$1 .*\b$2=\([0-9]*\).*/\1/p" "$tmp/stats"; }

pings() { python3 "$tmp/udp.py" ping "$iport" "$@"; }

# 1. clean path: every datagram comes back, and the counters agree.
start_impair
read -r got ports rtt _ < <(pings 200 2)
[ "$got" = 200 ] || fail "clean path: $got/200 replies"
echo "clean path: 200/200 replies, max rtt ${rtt} ms, server saw port $ports"
first_port=$ports

# 1b. a burst of mixed sizes keeps every datagram whole, with and without
# UDP GSO batching on the relay's sends.
read -r got bad < <(python3 "$tmp/udp.py" burst "$iport" 400)
if [ "$got" != 400 ] || [ "$bad" != 0 ]; then fail "burst: $got/400 back, $bad wrong"; fi
echo "burst: 400/400 datagrams of mixed sizes back intact"

# 2. SIGUSR1: the server sees the client move to a new source port.
kill -USR1 "$ipid"
moved=
tries=0
for _ in $(seq 50); do
	tries=$((tries + 1))
	read -r got p _ _ < <(pings 1 2)
	if [ "$got" = 1 ] && [ "$p" != "$first_port" ]; then moved=$p; break; fi
done
[ -n "$moved" ] || fail "SIGUSR1 did not change the upstream source port"
echo "rebind: upstream source port $first_port -> $moved"

# 3. SIGUSR2: blackhole on drops everything, off lets it through again.
kill -USR2 "$ipid"
wait_file "$tmp/impair.log" 'blackhole on'
read -r got _ _ < <(pings 20 0.1)
[ "$got" = 0 ] || fail "blackhole: $got replies"
kill -USR2 "$ipid"
wait_file "$tmp/impair.log" 'blackhole off'
read -r got _ _ < <(pings 20 2)
[ "$got" = 20 ] || fail "after blackhole: $got/20 replies"
stop_impair
[ "$(counter relay rebinds)" = 1 ] || fail "rebinds counter: $(counter relay rebinds)"
[ "$(counter up lost_blackhole)" = 20 ] || fail "up lost_blackhole=$(counter up lost_blackhole)"
# a reply in flight to the old port at the rebind is lost, as behind a NAT
up=$(counter up delivered)
down=$(counter down delivered)
[ "$up" = $((620 + tries)) ] || fail "up delivered=$up, want $((620 + tries))"
if [ "$down" -lt 620 ] || [ "$down" -gt "$up" ]; then fail "down delivered=$down (up $up)"; fi
echo "blackhole: 20/20 dropped, then 20/20 through; counters agree"

start_impair --no-gso
read -r got bad < <(python3 "$tmp/udp.py" burst "$iport" 400)
if [ "$got" != 400 ] || [ "$bad" != 0 ]; then fail "burst --no-gso: $got/400 back, $bad wrong"; fi
stop_impair
echo "burst --no-gso: 400/400 back intact"

# 4. --loss 1 drops everything.
start_impair --loss 1
read -r got _ _ < <(pings 100 0.02)
[ "$got" = 0 ] || fail "--loss 1: $got replies"
stop_impair
[ "$(counter up lost_random)" = 100 ] || fail "--loss 1: up lost_random=$(counter up lost_random)"
echo "--loss 1: 100/100 dropped"

# 4b. --only down: the same loss on the way back only.
start_impair --loss 1 --only down
read -r got _ _ < <(pings 50 0.02)
[ "$got" = 0 ] || fail "--loss 1 --only down: $got replies"
stop_impair
[ "$(counter up delivered)" = 50 ] || fail "--only down: up delivered=$(counter up delivered)"
[ "$(counter down lost_random)" = 50 ] || fail "--only down: down lost=$(counter down lost_random)"
echo "--loss 1 --only down: 50/50 reached the server, 50/50 replies dropped"

# 5. --delay applies to each direction.
start_impair --delay 60 --seed 7
read -r got _ high low < <(pings 5 2)
[ "$got" = 5 ] || fail "--delay: $got/5 replies"
[ "$low" -ge 120 ] || fail "--delay 60: a round trip took only ${low} ms"
stop_impair
echo "--delay 60: round trips between ${low} and ${high} ms (>= 120)"

# 6. the scheduled forms: --blackhole START,DURATION and --rebind-every.
# A long blackhole, so that a slow start of python cannot outlast it...
start_impair --blackhole 0,600
wait_file "$tmp/impair.log" 'blackhole on'
read -r got _ _ < <(pings 3 0.05)
[ "$got" = 0 ] || fail "--blackhole 0,600: $got replies while on"
stop_impair
[ "$(counter up lost_blackhole)" = 3 ] || fail "--blackhole: lost_blackhole=$(counter up lost_blackhole)"
# ...and a short one, checked after it ended.
start_impair --blackhole 0,0.2 --rebind-every 0.3
wait_file "$tmp/impair.log" 'blackhole off'
read -r got _ _ < <(pings 3 2)
[ "$got" = 3 ] || fail "--blackhole 0,0.2: $got/3 replies after it ended"
for _ in $(seq 200); do
	[ "$(grep -c ' from 127' "$tmp/impair.log")" -ge 4 ] && break
	sleep 0.05
done
stop_impair
[ "$(counter relay rebinds)" -ge 3 ] || fail "--rebind-every: rebinds=$(counter relay rebinds)"
echo "--blackhole and --rebind-every 0.3: ok (rebinds=$(counter relay rebinds))"

# 7. throughput, unimpaired, 1400-byte datagrams (python endpoints bound it).
python3 "$tmp/udp.py" sink "$tmp/sink.port" 2 >"$tmp/sink.out" &
spid=$!
pids+=("$spid")
wait_file "$tmp/sink.port" .
eport=$(cat "$tmp/sink.port")
start_impair
python3 "$tmp/udp.py" blast "$iport" 2.5 1400 &
bpid=$!
pids+=("$bpid")
wait "$spid" || fail "sink failed"
wait "$bpid" || true
stop_impair
rate=$(cat "$tmp/sink.out")
echo "throughput: $((rate / 1000000)) MB/s through impair (python sender and sink)," \
	"up tx=$(counter up tx) tx_dropped=$(counter up tx_dropped)"
[ "$rate" -gt 1000000 ] || fail "throughput below 1 MB/s"
echo "fast_impair: ok"
