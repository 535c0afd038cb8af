/* fuzz_mux_frames.c - a mux fed arbitrary peer bytes, split anywhere, while
 * an application drives it; public API only.
 *
 * Input: byte 0 picks the role (bit 0), the configuration (bits 1-3) and
 * per-stream delivery (bit 4, step 10: DATA_AT, FIN_AT); the rest is a list of operations,
 * each an op byte and its arguments:
 *   0 n bytes...  feed the next n+1 bytes to mux_input (op bit 3 set: to
 *                 mux_input_early, as a message above a KCP hole)
 *   1 r           mux_produce into 16*r+8 bytes of room
 *   2             take every event: reply to OPENs, read what is readable
 *   3 s l         write 32*l+1 bytes to stream s
 *   4 s           shut stream s down
 *   5 s           reset stream s
 *   6             open a stream (client) or ping
 *   7 s           read stream s
 * A stream argument names one of the ids seen so far, or a raw id.
 * Checked: no crash, no leak, memory within the configured bound, and once
 * mux_input failed every later call reports the same error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "core/mux.h"

enum { IDS = 16, BUF = 8192 };

struct fz {
	struct mux *m;
	struct mux_config cfg;
	enum mux_role role;
	uint32_t ids[IDS];
	size_t nids;
	int err;
	uint8_t buf[BUF];
};

static const uint8_t req[] = { 5, 1, 0, 1, 10, 0, 0, 1, 0, 80 };
static const uint8_t rep[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

static void remember(struct fz *z, uint32_t id)
{
	z->ids[z->nids % IDS] = id;
	z->nids++;
}

static uint32_t pick(const struct fz *z, uint8_t b)
{
	size_t n = z->nids < IDS ? z->nids : IDS;
	return (b & 0x80) || n == 0 ? (uint32_t)(b & 0x7f) : z->ids[b % n];
}

static void take_events(struct fz *z)
{
	struct mux_event ev;

	while (mux_next_event(z->m, &ev) == 0) {
		if (ev.type == MUX_EV_OPEN) {
			if (ev.len == 0 || !ev.data)
				abort();
			remember(z, ev.id);
			if (mux_stream_reply(z->m, ev.id, rep, sizeof rep) > 0)
				abort();
		} else if (ev.type == MUX_EV_READABLE || ev.type == MUX_EV_FIN) {
			while (mux_stream_read(z->m, ev.id, z->buf, sizeof z->buf) > 0)
				;
		}
	}
}

/* A server stream's receive buffer may hold the early allowance even when
 * its window is smaller (docs/PROTOCOL.md (mux) 4.4.3); all receive buffers
 * together hold at most budget + max_streams x floor (4.5). */
static size_t bound(const struct mux_config *c)
{
	size_t n = c->max_streams;
	size_t rx = c->window > MUX_EARLY_DATA_MAX ? c->window : MUX_EARLY_DATA_MAX;
	size_t rx_all = (size_t)c->budget + n * MUX_WINDOW_FLOOR;

	if (rx_all > n * rx)
		rx_all = n * rx;
	return rx_all + n * (c->send_buffer + 2 * MUX_RING_INITIAL + 4096) + (1u << 20);
}

/* produce checks that the output is whole, well-formed frames. */
static void produce(struct fz *z, size_t room)
{
	ssize_t n = mux_produce(z->m, z->buf, room, 0), k;
	struct mux_frame f;

	if (n < 0 && n != z->err)
		abort();
	if (n > (ssize_t)room)
		abort();
	for (ssize_t off = 0; off < n; off += k) {
		k = mux_frame_decode(z->buf + off, (size_t)(n - off), &f);
		if (k <= 0)
			abort();
	}
}

static void check(struct fz *z)
{
	if (mux_mem_bytes(z->m) > bound(&z->cfg))
		abort();
	if (z->err)
		produce(z, sizeof z->buf); /* session errors are sticky */
}

/* op runs one operation; returns the bytes of arguments it used. */
static size_t op(struct fz *z, const uint8_t *d, size_t n)
{
	uint8_t a = n > 1 ? d[1] : 0, b = n > 2 ? d[2] : 0;
	size_t len, i;
	uint32_t id;

	switch (d[0] & 7) {
	case 0:
		len = n > 2 ? n - 2 : 0; /* what is left after the length byte */
		len = (size_t)a + 1 < len ? (size_t)a + 1 : len;
		if (len) {
			int rc = d[0] & 8 ? mux_input_early(z->m, d + 2, len, 0)
			                  : mux_input(z->m, d + 2, len, 0);
			if (rc > 1 || (rc == 1 && !(d[0] & 8)) || (z->err && rc != z->err))
				abort();
			z->err = rc < 0 ? rc : 0;
		}
		return 1 + len;
	case 1: produce(z, (size_t)a * 16 + 8); return 1;
	case 2: take_events(z); return 0;
	case 3:
		len = (size_t)b * 32 + 1;
		memset(z->buf, 0x5a, len);
		if (mux_stream_write(z->m, pick(z, a), z->buf, len) > (ssize_t)len)
			abort();
		return 2;
	case 4:
		if (mux_stream_shutdown(z->m, pick(z, a)) > 0)
			abort();
		return 1;
	case 5: (void)mux_stream_reset(z->m, pick(z, a), b); return 2;
	case 6:
		if (z->role == MUX_CLIENT && mux_open_stream(z->m, req, sizeof req, &id) == 0)
			remember(z, id);
		else if (mux_ping(z->m) > 0)
			abort();
		return 0;
	default:
		for (i = 0; i < 2 && mux_stream_read(z->m, pick(z, a), z->buf, 100) > 0; i++)
			;
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz z;
	size_t off = 1;

	if (size < 1)
		return 0;
	memset(&z, 0, sizeof z);
	mux_config_default(&z.cfg);
	z.cfg.max_streams = 1 + (data[0] >> 1 & 3) * 3;
	if (data[0] & 2)
		z.cfg.window = MUX_WINDOW_MIN;
	if (data[0] & 4)
		z.cfg.send_buffer = MUX_SNDBUF_MIN;
	if (data[0] & 8)
		z.cfg.budget = 8 * MUX_WINDOW_FLOOR; /* windows shrink from the second */
	z.role = data[0] & 1 ? MUX_SERVER : MUX_CLIENT;
	if (mux_new(&z.m, z.role, &z.cfg) != 0)
		return 0;
	if (data[0] & 16)
		mux_stream_delivery(z.m);
	while (off < size) {
		size_t used = op(&z, data + off, size - off);
		off += 1 + used;
		check(&z);
	}
	take_events(&z);
	mux_free(z.m);
	return 0;
}
