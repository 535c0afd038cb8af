/* fuzz_kcp_pair.c - fuzz bytes drive a whole two-endpoint session.
 *
 * Byte 0 picks the mode and flags, byte 1..4 the initial sn. Then each byte
 * is an operation (low 4 bits) with an argument (the next byte where
 * needed): send n bytes or one message, deliver / drop / duplicate /
 * reorder the next datagram in either direction, advance time, read. After
 * every operation: engine invariants hold; what B has delivered is a prefix
 * of what A sent, in order (message mode: the same messages, whole). At the
 * end the path heals: unless a side declared the link dead, everything
 * sent must arrive.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/rd.h"
#include "core/kcp.h"

enum { QCAP = 64, DMAX = 512, MTU = 120, MAXMSG = 1024, HEAL_STEPS = 20000, RBUF = 2048 };

struct queue { /* datagrams on the wire in one direction */
	uint8_t d[QCAP][DMAX];
	size_t len[QCAP];
	size_t n;
};

struct session {
	struct kcp *a, *b;
	struct queue ab, ba;
	uint64_t now;
	bool stream;
	uint64_t sent, got;     /* bytes (stream) or messages (message mode) */
	uint32_t msize[MAXMSG]; /* message mode: sizes sent, by index */
};

static int out_queue(const uint8_t *dgram, size_t len, void *user)
{
	struct queue *q = user;

	if (len == 0 || len > MTU)
		abort();
	if (q->n == QCAP)
		return 0; /* the wire is full: lost */
	memcpy(q->d[q->n], dgram, len);
	q->len[q->n++] = len;
	return 0;
}

static uint8_t byte_at(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static void pop(struct queue *q, uint8_t *out, size_t *len)
{
	*len = q->len[0];
	memcpy(out, q->d[0], *len);
	memmove(q->d[0], q->d[1], (q->n - 1) * sizeof q->d[0]);
	memmove(q->len, q->len + 1, (q->n - 1) * sizeof q->len[0]);
	q->n--;
}

static void deliver(struct session *s, struct queue *q, struct kcp *to, bool keep)
{
	static uint8_t buf[DMAX];
	size_t len;
	int rc;

	if (!q->n)
		return;
	pop(q, buf, &len);
	if (keep && q->n < QCAP) { /* a duplicate stays for later */
		memcpy(q->d[q->n], buf, len);
		q->len[q->n++] = len;
	}
	rc = kcp_input(to, buf, len, s->now);
	if (rc != 0 && rc != KS_ERR_DEAD)
		abort(); /* the peer only ever sends well-formed datagrams */
}

static void do_send(struct session *s, uint32_t arg)
{
	static uint8_t buf[MTU * 8];
	size_t n = s->stream ? (size_t)arg * 3 + 1 : (size_t)arg * 3;
	ssize_t w;

	if (!s->stream && s->sent == MAXMSG)
		return;
	for (size_t i = 0; i < n; i++)
		buf[i] = byte_at(s->stream ? s->sent + i : s->sent * 1000 + i);
	w = kcp_send(s->a, buf, n, s->now);
	if (w == KS_ERR_FULL || w == KS_ERR_DEAD)
		return;
	if (w < 0 || (size_t)w > n || (!s->stream && (size_t)w != n))
		abort();
	if (s->stream) {
		s->sent += (uint64_t)w;
	} else {
		s->msize[s->sent++] = (uint32_t)n;
	}
}

static void do_read(struct session *s, size_t cap)
{
	static uint8_t buf[RBUF];
	ssize_t r = kcp_recv(s->b, buf, cap);

	if (r == KS_ERR_AGAIN || r == KS_ERR_TOOBIG)
		return;
	if (r < 0)
		abort();
	if (s->stream) {
		if (s->got + (uint64_t)r > s->sent)
			abort();
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != byte_at(s->got + (uint64_t)i))
				abort();
		s->got += (uint64_t)r;
		return;
	}
	if (s->got >= s->sent || (size_t)r != s->msize[s->got])
		abort();
	for (ssize_t i = 0; i < r; i++)
		if (buf[i] != byte_at(s->got * 1000 + (uint64_t)i))
			abort();
	s->got++;
}

static void tick(struct session *s, uint64_t dt)
{
	s->now += dt;
	kcp_update(s->a, s->now);
	kcp_update(s->b, s->now);
	if (kcp_next_deadline(s->a, s->now) <= s->now || kcp_next_deadline(s->b, s->now) <= s->now)
		abort(); /* kcp_update did what was due */
}

static void op(struct session *s, uint8_t code, uint8_t arg)
{
	switch (code & 15) {
	case 0: do_send(s, arg); break;
	case 1: deliver(s, &s->ab, s->b, false); break;
	case 2: deliver(s, &s->ba, s->a, false); break;
	case 3: /* drop */
		if (s->ab.n) {
			uint8_t tmp[DMAX];
			size_t len;
			pop(&s->ab, tmp, &len);
		}
		break;
	case 4:
		if (s->ba.n) {
			uint8_t tmp[DMAX];
			size_t len;
			pop(&s->ba, tmp, &len);
		}
		break;
	case 5: deliver(s, &s->ab, s->b, true); break;
	case 6: deliver(s, &s->ba, s->a, true); break;
	case 7: /* reorder: the first datagram goes to the back */
		if (s->ab.n > 1) {
			uint8_t tmp[DMAX];
			size_t len;
			pop(&s->ab, tmp, &len);
			out_queue(tmp, len, &s->ab);
		}
		break;
	case 8: tick(s, arg); break;
	case 9: tick(s, (uint64_t)arg * 250); break;
	case 10: do_read(s, (size_t)arg * 4 + 1); break;
	case 11: do_read(s, RBUF); break;
	default: deliver(s, &s->ab, s->b, false); break;
	}
}

static bool drained(const struct session *s) { return s->got == s->sent; }

/* heal: a perfect path from here on; run to quiet or death. */
static void heal(struct session *s)
{
	for (int i = 0; i < HEAL_STEPS && !drained(s); i++) {
		uint64_t t, tb;
		while (s->ab.n || s->ba.n) {
			deliver(s, &s->ab, s->b, false);
			deliver(s, &s->ba, s->a, false);
		}
		while (!drained(s) && kcp_peek_size(s->b) >= 0)
			do_read(s, RBUF);
		if (drained(s) || kcp_is_dead(s->a) || kcp_is_dead(s->b))
			return;
		t = kcp_next_deadline(s->a, s->now);
		tb = kcp_next_deadline(s->b, s->now);
		t = tb < t ? tb : t;
		if (t == KS_NEVER)
			abort(); /* data outstanding but nobody will act */
		tick(s, t - s->now + 1);
	}
	if (!drained(s) && !kcp_is_dead(s->a) && !kcp_is_dead(s->b))
		abort();
}

static int setup(struct session *s, uint8_t flags, uint32_t isn)
{
	struct kcp_config c;

	kcp_config_default(&c);
	c.mtu = MTU;
	c.stream = s->stream = flags & 1;
	c.ack_immediate = flags & 2;
	c.flush_on_send = flags & 4;
	c.nc = flags & 8;
	c.nodelay = (flags >> 4) % 3;
	c.resend = flags >> 6;
	c.snd_wnd = 8;
	c.interval = 10;
	c.initial_sn = isn;
	c.pace = isn & 1;     /* K10: the flags byte is full; the sn's parity is free */
	c.dup_thin = isn & 2; /* K11: the next bit of the sn */
	c.bundle = isn & 4;   /* K13: and the next two */
	c.ack_lazy = isn & 8;
	s->now = 0xfffff000u;
	if (kcp_new(&s->a, 9, &c, s->now, out_queue, &s->ab) != 0 ||
	    kcp_new(&s->b, 9, &c, s->now, out_queue, &s->ba) != 0)
		return -1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session *s = calloc(1, sizeof *s);
	struct rd r = rd_init(data, size);
	uint8_t flags = 0, code, arg;
	uint32_t isn = 0;

	if (!s)
		return 0;
	rd_u8(&r, &flags);
	rd_u32le(&r, &isn);
	if (setup(s, flags, isn) != 0)
		abort();
	while (rd_u8(&r, &code)) {
		arg = 0;
		rd_u8(&r, &arg);
		op(s, code, arg);
		if (!kcp_check(s->a) || !kcp_check(s->b))
			abort();
	}
	heal(s);
	kcp_free(s->a);
	kcp_free(s->b);
	free(s);
	return 0;
}
