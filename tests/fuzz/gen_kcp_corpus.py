#!/usr/bin/env python3
"""gen_kcp_corpus.py - write the small seed corpora of fuzz_kcp_input and
fuzz_kcp_pair (tests/fuzz/corpus/kcp_input, kcp_pair). Run from the repo root.

kcp_input seeds: a flags byte, then datagrams as [len u16le][bytes], built
from the segment layout in docs/PROTOCOL.md (KCP) (conv 1, the engine has sn
0..9 in flight and expects sn 0).
kcp_pair seeds: flags byte, initial sn u32le, then (op, arg) byte pairs.
"""
import os
import struct

CONV = 1
PUSH, ACK, WASK, WINS = 81, 82, 83, 84


def seg(cmd, sn=0, una=0, ts=0, frg=0, wnd=128, data=b"", conv=CONV):
    return struct.pack("<IBBHIIII", conv, cmd, frg, wnd, ts, sn, una, len(data)) + data


def dgrams(flags, *ds):
    out = bytes([flags])
    for d in ds:
        out += struct.pack("<H", len(d)) + d
    return out


def write(dirname, name, blob):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(blob)


def input_corpus(d):
    nc = 8  # flags: no congestion window, so all ten segments are in flight
    write(d, "push_one", dgrams(0, seg(PUSH, sn=0, data=b"hello")))
    write(d, "push_stream", dgrams(1, seg(PUSH, sn=0, data=b"abc"), seg(PUSH, sn=1, data=b"de")))
    write(d, "push_fragments", dgrams(2, seg(PUSH, sn=1, frg=0, data=b"b" * 10),
                                      seg(PUSH, sn=0, frg=1, data=b"a" * 10)))
    write(d, "acks", dgrams(nc | 2 | 64, seg(ACK, sn=1, ts=1000), seg(ACK, sn=3, ts=1000),
                            seg(ACK, sn=4, ts=1000), seg(ACK, sn=0, una=1, ts=1000)))
    write(d, "una_all", dgrams(nc, seg(WINS, una=10)))
    write(d, "zero_window", dgrams(nc | 4, seg(ACK, sn=0, una=1, wnd=0), seg(WASK, una=1)))
    write(d, "packed", dgrams(nc | 2, seg(ACK, sn=2, ts=1000) + seg(PUSH, sn=0, una=1, data=b"x")
                              + seg(WASK, una=1)))
    write(d, "bad_conv", dgrams(0, seg(PUSH, conv=2, data=b"z")))
    write(d, "bad_len", dgrams(0, seg(PUSH, data=b"zz")[:-1]))
    write(d, "far_sn", dgrams(0, seg(PUSH, sn=10**6, data=b"z")))


def pair_corpus(d):
    def ops(*pairs):
        return b"".join(bytes([o, a]) for o, a in pairs)

    send, ab, ba, drop_ab, drop_ba, dup_ab, dup_ba, reo, tick, tick250, read, readall = range(12)
    basic = ops((send, 50), (ab, 0), (ba, 0), (readall, 0))
    write(d, "basic_stream", bytes([1 | 2 | 4]) + struct.pack("<I", 0) + basic)
    write(d, "basic_message", bytes([2 | 4]) + struct.pack("<I", 0) + basic)
    lossy = ops((send, 200), (send, 200), (drop_ab, 0), (ab, 0), (dup_ab, 0), (reo, 0),
                (ab, 0), (ab, 0), (ba, 0), (drop_ba, 0), (tick, 40), (tick250, 2),
                (ab, 0), (ba, 0), (read, 30), (readall, 0))
    write(d, "lossy_wrap", bytes([1 | 2 | 4 | 8 | 16 | 128]) + struct.pack("<I", 0xfffffffc) + lossy)
    write(d, "delayed", bytes([0]) + struct.pack("<I", 7) + lossy)
    stall = ops(*([(send, 255)] * 20 + [(ab, 0), (ba, 0)] * 30 + [(tick250, 40)] * 4
                  + [(readall, 0)] * 10))
    write(d, "stalled_reader", bytes([1 | 2 | 4 | 8]) + struct.pack("<I", 0) + stall)


if __name__ == "__main__":
    input_corpus("tests/fuzz/corpus/kcp_input")
    pair_corpus("tests/fuzz/corpus/kcp_pair")
