#!/usr/bin/env python3
"""gen_mux_corpus.py - write the seed corpus of fuzz_mux_frames.

Each seed is a small script in the fuzz target's op format (see the comment
at the top of tests/fuzz/fuzz_mux_frames.c): a role/config byte, then ops
that feed well-formed frames, take events, write, produce, close.
Run from the repository root: tests/fuzz/gen_mux_corpus.py
"""
import os
import struct

OPEN, REPLY, DATA, FIN, RST, WINDOW, PING, PONG, DATA_AT, FIN_AT = range(1, 11)
SD = 16  # byte 0: per-stream delivery (step 10)
REQ = bytes([5, 1, 0, 1, 10, 0, 0, 1, 0, 80])
REP = bytes([5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
OUT = "tests/fuzz/corpus/mux_frames"


def frame(ftype, sid, payload=b""):
    return struct.pack(">BBHI", ftype, 0, len(payload), sid) + payload


def feed(data, chunk=256):
    out = b""
    for i in range(0, len(data), chunk):
        part = data[i:i + chunk]
        out += bytes([0, len(part) - 1]) + part
    return out


def early(data):
    """One message above a KCP hole, to mux_input_early (<= 256 bytes)."""
    return bytes([8, len(data) - 1]) + data


def data_at(sid, off, payload):
    return frame(DATA_AT, sid, struct.pack(">Q", off) + payload)


def produce(room=255):
    return bytes([1, room])


EVENTS = bytes([2])


def server_seed(chunk):
    s = bytes([1])
    s += feed(frame(OPEN, 1, struct.pack(">I", 262144) + REQ), chunk)
    s += EVENTS + produce()
    s += feed(frame(DATA, 1, b"GET / HTTP/1.0\r\n\r\n"), chunk) + EVENTS
    s += bytes([3, 0, 4]) + produce() + produce(3)
    s += feed(frame(PING, 0, bytes(range(8))), chunk) + produce()
    s += feed(frame(WINDOW, 1, struct.pack(">I", 4096)), chunk)
    s += feed(frame(FIN, 1), chunk) + EVENTS + bytes([4, 0]) + produce()
    s += feed(frame(OPEN, 2, struct.pack(">I", 4096) + REQ), chunk) + EVENTS + produce()
    s += feed(frame(RST, 2, bytes([0])), chunk) + EVENTS
    return s


def client_seed():
    s = bytes([0, 6, 6]) + produce()
    s += feed(frame(REPLY, 1, struct.pack(">I", 65536) + REP) + frame(DATA, 1, b"x" * 300))
    s += EVENTS + bytes([3, 0, 10]) + produce()
    s += feed(frame(REPLY, 2, struct.pack(">I", 4096) + REP) + frame(WINDOW, 2, struct.pack(">I", 100)))
    s += bytes([6]) + produce() + feed(frame(PONG, 0, struct.pack(">Q", 1)))
    s += feed(frame(FIN, 1)) + EVENTS + bytes([4, 0, 5, 1, 0]) + produce()
    s += feed(frame(RST, 2, bytes([1])) + frame(DATA, 2, b"late")) + EVENTS
    return s


def early_seed():
    """Early data: DATA and FIN right behind OPEN, before the REPLY, then a
    client that writes before its REPLY arrives."""
    s = bytes([1])
    s += feed(frame(OPEN, 1, struct.pack(">I", 4096) + REQ) +
              frame(DATA, 1, b"GET / HTTP/1.0\r\n\r\n") + frame(DATA, 1, b"y" * 200) +
              frame(FIN, 1))
    s += EVENTS + produce() + feed(frame(OPEN, 2, struct.pack(">I", 4096) + REQ) +
                                   frame(DATA, 2, b"z" * 100) + frame(RST, 2, bytes([0])))
    return s + EVENTS + produce()


def early_client_seed():
    s = bytes([0, 6, 3, 0, 20]) + produce() + produce(2)
    s += feed(frame(REPLY, 1, struct.pack(">I", 4096) + REP)) + EVENTS + bytes([3, 0, 200])
    return s + produce()


def bad_seed():
    return bytes([1]) + feed(frame(OPEN, 1, struct.pack(">I", 4096) + REQ) + frame(10, 1, b"?"))


def sd_server_seed():
    """Per-stream delivery, server: DATA_AT above a gap, then the gap
    in order, a WINDOW early, FIN_AT early before the last bytes."""
    s = bytes([1 | SD])
    s += feed(frame(OPEN, 1, struct.pack(">I", 65536) + REQ)) + EVENTS + produce()
    s += early(data_at(1, 100, b"b" * 100)) + early(data_at(1, 300, b"d" * 50))
    s += early(frame(WINDOW, 1, struct.pack(">I", 4096)) + data_at(1, 200, b"c" * 100))
    s += feed(data_at(1, 0, b"a" * 100)) + EVENTS + feed(data_at(1, 350, b"e" * 10))
    s += early(frame(FIN_AT, 1, struct.pack(">Q", 400))) + feed(data_at(1, 360, b"f" * 40))
    s += EVENTS + bytes([3, 0, 4]) + produce() + bytes([4, 0]) + produce()
    return s


def sd_client_seed():
    """Per-stream delivery, client: early frames before the REPLY are
    left, the REPLY and what follows it taken; an overlap is a session
    error."""
    s = bytes([SD, 6]) + produce() + early(data_at(1, 10, b"x" * 10))
    s += early(frame(REPLY, 1, struct.pack(">I", 65536) + REP)) + EVENTS
    s += early(data_at(1, 10, b"x" * 10)) + feed(data_at(1, 0, b"w" * 10)) + EVENTS
    s += bytes([3, 0, 10]) + produce() + early(data_at(1, 40, b"z" * 10))
    return s + early(data_at(1, 45, b"z" * 10)) + EVENTS + produce()


def limit_seed():
    s = bytes([1])
    for i in range(1, 12):
        s += feed(frame(OPEN, i, struct.pack(">I", 4096) + REQ))
    return s + EVENTS + produce()


def budget_seed():
    """Byte 0 = 13: a server with 7 streams and a 512 KiB budget (bit 3):
    the windows in its REPLYs shrink; each stream then gets DATA."""
    s = bytes([13])
    for i in range(1, 8):
        s += feed(frame(OPEN, i, struct.pack(">I", 262144) + REQ))
    s += EVENTS + produce() + produce()
    for i in range(1, 8):
        s += feed(frame(DATA, i, b"d" * 200))
    s += bytes([5, 0]) + produce() + feed(frame(OPEN, 8, struct.pack(">I", 4096) + REQ))
    return s + EVENTS + produce()


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "server_whole": server_seed(256),
        "server_split": server_seed(3),
        "client": client_seed(),
        "bad_type": bad_seed(),
        "limit": limit_seed(),
        "early": early_seed(),
        "early_client": early_client_seed(),
        "budget": budget_seed(),
        "sd_server": sd_server_seed(),
        "sd_client": sd_client_seed(),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
