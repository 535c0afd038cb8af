/* fuzz_socks5_udp.c - the UDP ASSOCIATE datagram path on both sides
 * (docs/PROTOCOL.md (UDP)): the input is first read as a datagram frame
 * (what a session hands up), then its body, and the input itself, as an
 * RFC 1928 section 7 UDP request (what kcpsocks-local reads from an
 * application and kcpsocks-server from the tunnel). Checks, beyond "no
 * crash":
 *   - a header that passes udpassoc_check re-encodes to exactly its bytes,
 *     its FRAG is 0, its data is the rest of the input;
 *   - every shorter prefix of a header that passed is refused as truncated;
 *   - a frame that reads back re-writes to the same bytes.
 * Public headers only; any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks5.h"
#include "core/udpassoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void socks_side(const uint8_t *p, size_t len)
{
	struct socks5_udp_header h;
	enum udpassoc_drop why = UDPASSOC_DROP_REASONS;
	uint8_t enc[UDPASSOC_SOCKS_HDR_MAX];
	size_t hdr;
	ssize_t w;

	if (udpassoc_check(p, len, &h, &why) != 0) {
		check(why < UDPASSOC_DROP_REASONS);
		return;
	}
	check(h.frag == 0);
	check(h.data >= p && h.data + h.data_len == p + len);
	hdr = (size_t)(h.data - p);
	check(hdr <= UDPASSOC_SOCKS_HDR_MAX);
	w = socks5_encode_udp_header(enc, sizeof enc, 0, &h.dst);
	check(w == (ssize_t)hdr && memcmp(enc, p, hdr) == 0);
	for (size_t k = 0; k < hdr; k++) {
		struct socks5_udp_header t;

		check(udpassoc_check(p, k, &t, &why) != 0 && why == UDPASSOC_DROP_TRUNCATED);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[ENVELOPE_MAX_DATAGRAM + UDPASSOC_FRAME_HDR];
	const uint8_t *body;
	size_t body_len;
	uint32_t id, conv = 0;

	socks_side(data, size);
	if (size >= 4)
		conv = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
		       (uint32_t)data[3] << 24;
	if (udpassoc_frame_read(data, size, conv, &id, &body, &body_len) == 0) {
		ssize_t w;

		check(udpassoc_is_frame(data, size));
		check(body == data + UDPASSOC_FRAME_HDR && body_len == size - UDPASSOC_FRAME_HDR);
		if (size <= sizeof out) {
			w = udpassoc_frame_write(out, sizeof out, conv, id, body, body_len);
			check(w == (ssize_t)size && memcmp(out, data, size) == 0);
		}
		socks_side(body, body_len);
	}
	return 0;
}
