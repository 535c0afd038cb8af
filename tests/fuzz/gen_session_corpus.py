#!/usr/bin/env python3
"""gen_session_corpus.py - write the seed corpus of fuzz_session.

Format (see the comment at the top of tests/fuzz/fuzz_session.c): a mode
byte, then records of u16le length + bytes. Raw modes get random and
envelope-sized junk; sealed modes get KCP-looking bytes; PUSH-wrapped modes
get mux frames, so the seeds reach the mux through KCP.
Run from the repository root: tests/fuzz/gen_session_corpus.py
"""
import os
import random
import struct

OPEN, REPLY, DATA, FIN, RST, WINDOW, PING, PONG = range(1, 9)
REQ = bytes([5, 1, 0, 3, 4, ord("f"), ord("0"), ord("0"), ord("1"), 0, 80])
REP = bytes([5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
OUT = "tests/fuzz/corpus/session"

TO_SERVER, TO_CLIENT = 0, 1
RAW, SEALED, PUSH, PATH, CONV = 0, 2, 6, 10, 18
KCP_CLOSE = 85  # docs/PROTOCOL.md (session) L8


def frame(ftype, sid, payload=b""):
    return struct.pack(">BBHI", ftype, 0, len(payload), sid) + payload


def records(mode, recs):
    return bytes([mode]) + b"".join(struct.pack("<H", len(r)) + r for r in recs)


def main():
    rnd = random.Random(2026)
    os.makedirs(OUT, exist_ok=True)
    junk = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in (0, 13, 31, 32, 33, 100, 1400)]
    seeds = {
        "raw_server": records(RAW | TO_SERVER, junk),
        "raw_client": records(RAW | TO_CLIENT, junk),
        "sealed_server": records(SEALED | TO_SERVER, junk[1:]),
        "sealed_client": records(SEALED | TO_CLIENT, junk[1:]),
        "push_open_data_server": records(PUSH | TO_SERVER, [
            frame(OPEN, 1, struct.pack(">I", 262144) + REQ),
            frame(DATA, 1, b"GET / HTTP/1.1\r\n\r\n"),
            frame(WINDOW, 1, struct.pack(">I", 65536)),
            frame(PING, 0, struct.pack(">Q", 7)),
            frame(FIN, 1),
        ]),
        "push_open_rst_server": records(PUSH | TO_SERVER, [
            frame(OPEN, 1, struct.pack(">I", 4096) + REQ) + frame(OPEN, 3, struct.pack(">I", 4096) + REQ),
            frame(RST, 1, b"\x00"),
            frame(DATA, 3, b"x" * 1000),
        ]),
        "push_client": records(PUSH | TO_CLIENT, [
            frame(PING, 0, struct.pack(">Q", 1)),
            frame(REPLY, 1, struct.pack(">I", 65536) + REP),
            frame(DATA, 1, b"data"),
        ]),
        # A close (conv patched in by the harness), then traffic after it.
        "close_server": records(CONV | TO_SERVER, [
            struct.pack("<IBBHIIII", 0, KCP_CLOSE, 0, 0, 0, 0, 0, 0),
            struct.pack("<IBBHIIII", 0, 81, 0, 128, 0, 0, 0, 0),
        ]),
        "close_client": records(CONV | TO_CLIENT, [
            struct.pack("<IBBHIIII", 0, 81, 0, 128, 0, 0, 0, 0),
            struct.pack("<IBBHIIII", 0, KCP_CLOSE, 0, 0, 0, 0, 0, 0),
            struct.pack("<IBBHIIII", 0, KCP_CLOSE, 0, 0, 0, 0, 0, 0),
        ]),
        # path frames (mode bit 3): from the second address (bit 1 of the
        # first byte) a challenge-provoking frame, then responses with tokens
        "path_server": records(PATH | TO_SERVER, [
            b"\x02" + bytes(16), b"\x03" + bytes(range(16)), b"\x01" + bytes(16), b"\x02",
        ]),
        "path_client": records(PATH | TO_CLIENT, [
            b"\x00" + bytes(range(16)), b"\x01" + bytes(16), b"\x00",
        ]),
        "push_bad_frame_server": records(PUSH | TO_SERVER, [
            frame(DATA, 9, b"no such stream") + b"\xff\xff",
        ]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
