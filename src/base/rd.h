/* rd.h - the bounded reader every parser of outside bytes goes through.
 *
 * A struct rd is a view [p, end) into a buffer the caller owns. Each rd_*
 * call checks the bound before it touches memory; on a short read it returns
 * false and leaves the reader unchanged, so a parser can report "need more"
 * or "malformed" without having consumed anything. Byte order is in the name.
 */
#ifndef KCPSOCKS_RD_H
#define KCPSOCKS_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rd {
	const uint8_t *p;   /* borrowed: next unread byte */
	const uint8_t *end; /* borrowed: one past the last byte */
};

static inline struct rd rd_init(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	/* An empty view may have no buffer: never offset a NULL base. */
	return (struct rd){ b, len ? b + len : b };
}

static inline size_t rd_left(const struct rd *r) { return (size_t)(r->end - r->p); }

static inline bool rd_skip(struct rd *r, size_t n)
{
	if (rd_left(r) < n)
		return false;
	if (n)
		r->p += n;
	return true;
}

/* rd_view sets *v to a view of the next n bytes (valid as long as the
 * underlying buffer) and advances past them. */
static inline bool rd_view(struct rd *r, const uint8_t **v, size_t n)
{
	if (rd_left(r) < n)
		return false;
	*v = r->p;
	if (n)
		r->p += n;
	return true;
}

static inline bool rd_bytes(struct rd *r, void *out, size_t n)
{
	if (rd_left(r) < n)
		return false;
	if (n) {
		memcpy(out, r->p, n);
		r->p += n;
	}
	return true;
}

static inline bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = *r->p++;
	return true;
}

static inline bool rd_u16be(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)((uint16_t)r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return true;
}

static inline bool rd_u16le(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)((uint16_t)r->p[1] << 8 | r->p[0]);
	r->p += 2;
	return true;
}

static inline bool rd_u32be(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return true;
}

static inline bool rd_u32le(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[3] << 24 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[1] << 8 | r->p[0];
	r->p += 4;
	return true;
}

static inline bool rd_u64be(struct rd *r, uint64_t *v)
{
	uint32_t hi = 0, lo = 0;
	if (rd_left(r) < 8)
		return false;
	rd_u32be(r, &hi);
	rd_u32be(r, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

static inline bool rd_u64le(struct rd *r, uint64_t *v)
{
	uint32_t hi = 0, lo = 0;
	if (rd_left(r) < 8)
		return false;
	rd_u32le(r, &lo);
	rd_u32le(r, &hi);
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

#endif
