/* udpassoc.c - the datagram frame, the rate bucket and the drop reasons of
 * UDP ASSOCIATE (see udpassoc.h; docs/PROTOCOL.md (UDP)). */
#include "core/udpassoc.h"

#include <string.h>

#include "base/rd.h"
#include "base/wr.h"

ssize_t udpassoc_frame_write(uint8_t *out, size_t cap, uint32_t conv, uint32_t id, const uint8_t *p,
                             size_t n)
{
	struct wr w = wr_init(out, cap);

	if (cap < UDPASSOC_FRAME_HDR || n > cap - UDPASSOC_FRAME_HDR)
		return KS_ERR_FULL;
	(void)wr_u32le(&w, conv);
	(void)wr_u8(&w, UDPASSOC_FRAME_TYPE);
	(void)wr_u8(&w, 0);
	(void)wr_u16le(&w, 0);
	(void)wr_u32le(&w, id);
	if (n)
		(void)wr_bytes(&w, p, n);
	return (ssize_t)wr_len(&w);
}

bool udpassoc_is_frame(const uint8_t *p, size_t len)
{
	return len > 4 && p[4] == UDPASSOC_FRAME_TYPE;
}

int udpassoc_frame_read(const uint8_t *p, size_t len, uint32_t conv, uint32_t *id,
                        const uint8_t **body, size_t *body_len)
{
	struct rd r = rd_init(p, len);
	uint32_t c, i;
	uint8_t type, z8;
	uint16_t z16;

	if (!rd_u32le(&r, &c) || !rd_u8(&r, &type) || !rd_u8(&r, &z8) || !rd_u16le(&r, &z16) ||
	    !rd_u32le(&r, &i))
		return KS_ERR_PROTO;
	if (c != conv || type != UDPASSOC_FRAME_TYPE || z8 != 0 || z16 != 0)
		return KS_ERR_PROTO;
	*id = i;
	*body = r.p;
	*body_len = rd_left(&r);
	return 0;
}

size_t udpassoc_max_frame(uint16_t mtu)
{
	size_t m = mtu < ENVELOPE_MAX_DATAGRAM ? mtu : ENVELOPE_MAX_DATAGRAM;

	return m > ENVELOPE_OVERHEAD + UDPASSOC_FRAME_HDR
	               ? m - ENVELOPE_OVERHEAD - UDPASSOC_FRAME_HDR
	               : 0;
}

int udpassoc_check(const uint8_t *p, size_t len, struct socks5_udp_header *h,
                   enum udpassoc_drop *why)
{
	enum socks5_fault fault;
	ssize_t n = socks5_parse_udp_header(p, len, h, &fault);

	if (n < 0) {
		switch (fault) {
		case SOCKS5_FAULT_TRUNCATED: *why = UDPASSOC_DROP_TRUNCATED; break;
		case SOCKS5_FAULT_ATYP: *why = UDPASSOC_DROP_BAD_ATYP; break;
		default: *why = UDPASSOC_DROP_BAD_HDR; break;
		}
		return KS_ERR_PROTO;
	}
	if (h->frag != 0) {
		*why = UDPASSOC_DROP_FRAG;
		return KS_ERR_PROTO;
	}
	return 0;
}

bool udpassoc_bucket_take(struct udpassoc_bucket *b, uint32_t rate, uint64_t now)
{
	uint64_t cap = (uint64_t)rate * 1000;

	if (rate == 0)
		return true;
	if (!b->started) {
		b->started = true;
		b->milli = cap;
		b->last = now;
	}
	if (now > b->last) {
		uint64_t add = (now - b->last) * rate; /* ms x (tokens/s) = milli-tokens */

		b->milli = add >= cap - b->milli ? cap : b->milli + add;
		b->last = now;
	}
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

static const char *const drop_labels[UDPASSOC_DROP_REASONS] = {
	[UDPASSOC_DROP_TRUNCATED] = "truncated",
	[UDPASSOC_DROP_BAD_ATYP] = "bad_atyp",
	[UDPASSOC_DROP_BAD_HDR] = "bad_header",
	[UDPASSOC_DROP_FRAG] = "fragment",
	[UDPASSOC_DROP_STRANGER] = "stranger",
	[UDPASSOC_DROP_OVERSIZE] = "oversize",
	[UDPASSOC_DROP_RATE] = "rate",
	[UDPASSOC_DROP_QUEUE] = "queue",
	[UDPASSOC_DROP_POLICY] = "policy",
	[UDPASSOC_DROP_RESOLVE] = "resolve",
	[UDPASSOC_DROP_NO_ASSOC] = "no_association",
	[UDPASSOC_DROP_SEND] = "send",
};

const char *udpassoc_drop_label(enum udpassoc_drop r)
{
	return (unsigned)r < UDPASSOC_DROP_REASONS ? drop_labels[r] : "unknown";
}
