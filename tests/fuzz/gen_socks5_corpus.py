#!/usr/bin/env python3
"""gen_socks5_corpus.py - write the seed corpus of fuzz_socks5 into
tests/fuzz/corpus/socks5/: one small file per SOCKS5 message shape (both
directions), whole client sessions, and a few refused inputs. Run from the
repository root; the output is deterministic."""
import os
import struct

OUT = "tests/fuzz/corpus/socks5"


def addr(atyp, body, port):
    if atyp == 3:
        return bytes([3, len(body)]) + body + struct.pack(">H", port)
    return bytes([atyp]) + body + struct.pack(">H", port)


V4 = addr(1, bytes([127, 0, 0, 1]), 80)
V6 = addr(4, bytes(15) + b"\x01", 443)
DN = addr(3, b"example.com", 8080)

SEEDS = {
    "greeting_noauth": b"\x05\x01\x00",
    "greeting_userpass": b"\x05\x02\x00\x02",
    "greeting_nmethods0": b"\x05\x00",
    "auth_request": b"\x01\x04user\x04pass",
    "auth_ulen0": b"\x01\x00\x04pass",
    "request_connect_v4": b"\x05\x01\x00" + V4,
    "request_connect_v6": b"\x05\x01\x00" + V6,
    "request_connect_domain": b"\x05\x01\x00" + DN,
    "request_bind": b"\x05\x02\x00" + V4,
    "request_udp_associate": b"\x05\x03\x00" + addr(1, bytes(4), 0),
    "request_cmd9": b"\x05\x09\x00" + V4,
    "request_atyp2": b"\x05\x01\x00\x02\x00",
    "request_domain_nul": b"\x05\x01\x00" + addr(3, b"a\x00b", 80),
    "udp_header_v4": b"\x00\x00\x00" + V4 + b"payload",
    "udp_header_domain": b"\x00\x00\x01" + DN + b"x",
    "method_reply_none": b"\x05\x00",
    "method_reply_unacceptable": b"\x05\xff",
    "auth_reply_ok": b"\x01\x00",
    "auth_reply_fail": b"\x01\x01",
    "reply_ok_v4": b"\x05\x00\x00" + addr(1, bytes([10, 0, 0, 1]), 1080),
    "reply_refused_v6": b"\x05\x05\x00" + V6,
    "reply_unreachable_domain": b"\x05\x04\x00" + DN,
    "session_noauth": b"\x05\x01\x00" + b"\x05\x01\x00" + DN + b"GET / HTTP/1.1\r\n\r\n",
    "session_userpass": b"\x05\x01\x02" + b"\x01\x04user\x04pass" + b"\x05\x01\x00" + V6,
    "session_badpass": b"\x05\x01\x02" + b"\x01\x04user\x04nope" + b"\x05\x01\x00" + V4,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
