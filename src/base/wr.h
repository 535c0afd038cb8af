/* wr.h - the bounded writer every encoder goes through.
 *
 * A struct wr is a window [p, end) into a buffer the caller owns. Each wr_*
 * call checks the room first; on overflow it returns false, writes nothing
 * and leaves the writer unchanged. Byte order is in the name.
 */
#ifndef KCPSOCKS_WR_H
#define KCPSOCKS_WR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wr {
	uint8_t *start; /* borrowed: first byte of the buffer */
	uint8_t *p;     /* borrowed: next byte to write */
	uint8_t *end;   /* borrowed: one past the last byte */
};

static inline struct wr wr_init(void *buf, size_t cap)
{
	uint8_t *b = buf;
	/* An empty window may have no buffer: never offset a NULL base. */
	return (struct wr){ b, b, cap ? b + cap : b };
}

static inline size_t wr_room(const struct wr *w) { return (size_t)(w->end - w->p); }
static inline size_t wr_len(const struct wr *w) { return (size_t)(w->p - w->start); }

static inline bool wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (wr_room(w) < n)
		return false;
	if (n) {
		memcpy(w->p, src, n);
		w->p += n;
	}
	return true;
}

static inline bool wr_u8(struct wr *w, uint8_t v)
{
	if (wr_room(w) < 1)
		return false;
	*w->p++ = v;
	return true;
}

static inline bool wr_u16be(struct wr *w, uint16_t v)
{
	if (wr_room(w) < 2)
		return false;
	w->p[0] = (uint8_t)(v >> 8);
	w->p[1] = (uint8_t)v;
	w->p += 2;
	return true;
}

static inline bool wr_u16le(struct wr *w, uint16_t v)
{
	if (wr_room(w) < 2)
		return false;
	w->p[0] = (uint8_t)v;
	w->p[1] = (uint8_t)(v >> 8);
	w->p += 2;
	return true;
}

static inline bool wr_u32be(struct wr *w, uint32_t v)
{
	if (wr_room(w) < 4)
		return false;
	w->p[0] = (uint8_t)(v >> 24);
	w->p[1] = (uint8_t)(v >> 16);
	w->p[2] = (uint8_t)(v >> 8);
	w->p[3] = (uint8_t)v;
	w->p += 4;
	return true;
}

static inline bool wr_u32le(struct wr *w, uint32_t v)
{
	if (wr_room(w) < 4)
		return false;
	w->p[0] = (uint8_t)v;
	w->p[1] = (uint8_t)(v >> 8);
	w->p[2] = (uint8_t)(v >> 16);
	w->p[3] = (uint8_t)(v >> 24);
	w->p += 4;
	return true;
}

static inline bool wr_u64be(struct wr *w, uint64_t v)
{
	if (wr_room(w) < 8)
		return false;
	wr_u32be(w, (uint32_t)(v >> 32));
	wr_u32be(w, (uint32_t)v);
	return true;
}

static inline bool wr_u64le(struct wr *w, uint64_t v)
{
	if (wr_room(w) < 8)
		return false;
	wr_u32le(w, (uint32_t)v);
	wr_u32le(w, (uint32_t)(v >> 32));
	return true;
}

#endif
