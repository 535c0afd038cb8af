/* test_kcp.c - the KCP engine: golden bytes, malformed input, two engines
 * wired together on virtual time, windows, dead link, wraparound, deadlines,
 * and random operations against a naive model (a byte FIFO). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "core/kcp.h"

/* ------------------------------------------------------------------ */
/* a wire: datagrams captured from one engine's output                */

enum { WIRE_CAP = 4096, WIRE_MTU = 2048 };

struct wire {
	uint8_t d[WIRE_CAP][WIRE_MTU];
	size_t len[WIRE_CAP];
	size_t n;       /* datagrams held */
	size_t total;   /* datagrams ever output */
	bool blackhole; /* drop everything */
};

static int wire_out(const uint8_t *dgram, size_t len, void *user)
{
	struct wire *w = user;

	assert_true(len > 0 && len <= WIRE_MTU);
	w->total++;
	if (w->blackhole || w->n == WIRE_CAP)
		return 0;
	memcpy(w->d[w->n], dgram, len);
	w->len[w->n++] = len;
	return 0;
}

/* wire_take removes datagram i into out (caller's buffer). */
static size_t wire_take(struct wire *w, size_t i, uint8_t *out)
{
	size_t len = w->len[i];

	memcpy(out, w->d[i], len);
	memmove(&w->d[i], &w->d[i + 1], (w->n - i - 1) * sizeof w->d[0]);
	memmove(&w->len[i], &w->len[i + 1], (w->n - i - 1) * sizeof w->len[0]);
	w->n--;
	return len;
}

static struct kcp *mk(uint32_t conv, const struct kcp_config *cfg, uint64_t now, struct wire *w)
{
	struct kcp *k = NULL;

	assert_int_equal(kcp_new(&k, conv, cfg, now, wire_out, w), 0);
	return k;
}

/* ------------------------------------------------------------------ */
/* a pair of engines and an impaired, zero-latency path between them  */

struct pair {
	struct kcp *a, *b;
	struct wire *ab, *ba; /* a's output, b's output */
	uint64_t now;
	struct prng g;
	uint32_t loss_pct, dup_pct;
	bool reorder;
};

static void pair_init(struct pair *p, const struct kcp_config *ca, const struct kcp_config *cb,
                      uint64_t now, uint64_t seed)
{
	memset(p, 0, sizeof *p);
	p->ab = calloc(1, sizeof *p->ab);
	p->ba = calloc(1, sizeof *p->ba);
	assert_non_null(p->ab);
	assert_non_null(p->ba);
	p->now = now;
	prng_seed(&p->g, seed);
	p->a = mk(7, ca, now, p->ab);
	p->b = mk(7, cb, now, p->ba);
}

static void pair_free(struct pair *p)
{
	kcp_free(p->a);
	kcp_free(p->b);
	free(p->ab);
	free(p->ba);
}

/* deliver_one moves one datagram from w into k, with the pair's impairments. */
static void deliver_one(struct pair *p, struct wire *w, struct kcp *k)
{
	static uint8_t buf[WIRE_MTU];
	size_t i = p->reorder ? prng_below(&p->g, (uint32_t)w->n) : 0;
	size_t len = wire_take(w, i, buf);

	if (prng_below(&p->g, 100) < p->loss_pct)
		return;
	if (prng_below(&p->g, 100) < p->dup_pct && w->n < WIRE_CAP)
		wire_out(buf, len, w);
	assert_int_equal(kcp_input(k, buf, len, p->now), 0);
	assert_true(kcp_check(k));
}

/* pair_step delivers what is on the wires, or else advances virtual time
 * to the earliest deadline. Returns false when nothing is left to happen. */
static bool pair_step(struct pair *p)
{
	uint64_t t;

	if (p->ab->n || p->ba->n) {
		if (p->ab->n)
			deliver_one(p, p->ab, p->b);
		if (p->ba->n)
			deliver_one(p, p->ba, p->a);
		return true;
	}
	t = kcp_next_deadline(p->a, p->now);
	if (kcp_next_deadline(p->b, p->now) < t)
		t = kcp_next_deadline(p->b, p->now);
	if (t == KS_NEVER)
		return false;
	assert_true(t >= p->now);
	p->now = t + (t == p->now); /* a deadline at now is served, then time moves */
	kcp_update(p->a, p->now);
	kcp_update(p->b, p->now);
	/* whatever was due has been done: no engine asks to run again now */
	assert_true(kcp_next_deadline(p->a, p->now) > p->now);
	assert_true(kcp_next_deadline(p->b, p->now) > p->now);
	return true;
}

/* fast3's timing with immediate ACKs and no K13 copies: most tests here
 * count datagrams and segments exactly. */
static void cfg_fast(struct kcp_config *c)
{
	kcp_config_default(c);
	assert_int_equal(kcp_config_preset(c, "fast3"), 0);
	c->ack_lazy = false;
	c->bundle = false;
}

/* ------------------------------------------------------------------ */
/* golden bytes                                                       */

static void golden_push_encoding(void **state)
{
	(void)state;
	static const uint8_t want[] = {
		0x44, 0x33, 0x22, 0x11, /* conv */
		0x51, 0x00,             /* cmd PUSH, frg 0 */
		0x80, 0x00,             /* wnd 128 */
		0x04, 0x03, 0x02, 0x01, /* ts = now mod 2^32 */
		0x0d, 0x0c, 0x0b, 0x0a, /* sn = initial_sn */
		0x0d, 0x0c, 0x0b, 0x0a, /* una = what we expect next */
		0x03, 0x00, 0x00, 0x00, /* len */
		'a',  'b',  'c',
	};
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;

	kcp_config_default(&c);
	c.initial_sn = 0x0a0b0c0d;
	k = mk(0x11223344, &c, 0x501020304ULL, w);
	assert_int_equal(kcp_send(k, "abc", 3, 0x501020304ULL), 3);
	assert_int_equal(w->n, 1);
	assert_int_equal(w->len[0], sizeof want);
	assert_memory_equal(w->d[0], want, sizeof want);
	kcp_free(k);
	free(w);
}

static void golden_fragments_count_down(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	uint8_t msg[100];

	kcp_config_default(&c);
	c.mtu = 50; /* mss 26: 100 bytes are 4 fragments */
	memset(msg, 'x', sizeof msg);
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send(k, msg, sizeof msg, 0), 100);
	/* cwnd starts at KCP_CWND_INIT (4) segments: one datagram each */
	assert_int_equal(w->n, KCP_CWND_INIT);
	assert_int_equal(w->d[0][5], 3); /* frg: fragments remaining */
	assert_int_equal(w->d[1][5], 2);
	assert_int_equal(w->d[0][20], 26); /* len */
	assert_int_equal(w->d[1][12], 1);  /* sn */
	kcp_free(k);
	free(w);
}

static void golden_push_decoding_and_ack(void **state)
{
	(void)state;
	static const uint8_t in[] = {
		0x07, 0x00, 0x00, 0x00, 0x51, 0x00, 0x20, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 'h',  'i',
	};
	static const uint8_t ack[] = {
		0x07, 0x00, 0x00, 0x00, /* conv */
		0x52, 0x00,             /* ACK */
		0x7f, 0x00,             /* wnd 127: one unread segment */
		0x78, 0x56, 0x34, 0x12, /* ts echoed */
		0x00, 0x00, 0x00, 0x00, /* sn acknowledged */
		0x01, 0x00, 0x00, 0x00, /* una: next expected */
		0x00, 0x00, 0x00, 0x00, /* len */
	};
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	struct kcp_stats st;
	char out[8];

	kcp_config_default(&c);
	k = mk(7, &c, 1000, w);
	assert_int_equal(kcp_input(k, in, sizeof in, 1000), 0);
	assert_int_equal(w->n, 1);
	assert_int_equal(w->len[0], sizeof ack);
	assert_memory_equal(w->d[0], ack, sizeof ack);
	assert_int_equal(kcp_peek_size(k), 2);
	assert_int_equal(kcp_recv(k, out, sizeof out), 2);
	assert_memory_equal(out, "hi", 2);
	kcp_stats(k, &st);
	assert_int_equal(st.rmt_wnd, 0x20);
	assert_int_equal(st.ack_sent, 1);
	assert_int_equal(st.seg_recv, 1);
	kcp_free(k);
	free(w);
}

/* An ACK and a PUSH in one datagram: the ACK's echoed ts gives the RTT. */
static void golden_packed_ack_and_push(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	struct kcp_stats st;
	uint8_t in[2 * 24 + 1] = {
		7, 0, 0, 0, 0x52, 0, 0x80, 0, 0xe8, 0x03, 0, 0,    0, 0,    0,   0,    1,
		0, 0, 0, 0, 0,    0, 0,    7, 0,    0,    0, 0x51, 0, 0x80, 0,   0x00, 0x00,
		0, 0, 0, 0, 0,    0, 1,    0, 0,    0,    1, 0,    0, 0,    'z',
	};
	char out[4];

	kcp_config_default(&c);
	k = mk(7, &c, 1000, w);
	assert_int_equal(kcp_send(k, "q", 1, 1000), 1); /* sn 0 sent at ts 1000 */
	w->n = 0;
	assert_int_equal(kcp_input(k, in, sizeof in, 1060), 0);
	kcp_stats(k, &st);
	assert_int_equal(st.ack_recv, 1);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.srtt, 60);
	assert_int_equal(st.rttvar, 30);
	assert_int_equal(st.rto, 180); /* srtt + 4 rttvar, above the 100 ms floor */
	assert_int_equal(kcp_recv(k, out, sizeof out), 1);
	assert_int_equal(out[0], 'z');
	assert_int_equal(kcp_next_deadline(k, 1060), KS_NEVER);
	kcp_free(k);
	free(w);
}

/* ------------------------------------------------------------------ */
/* malformed input: dropped whole, counted, nothing changes           */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* seg writes a header at p: conv 7, wnd 128, ts 0. */
static size_t seg(uint8_t *p, uint8_t cmd, uint8_t frg, uint32_t sn, uint32_t una, uint32_t len)
{
	memset(p, 0, 24 + len);
	put32(p, 7);
	p[4] = cmd;
	p[5] = frg;
	p[6] = 0x80;
	put32(p + 12, sn);
	put32(p + 16, una);
	put32(p + 20, len);
	memset(p + 24, 'd', len);
	return 24 + len;
}

/* K3: a copy of a segment the receiver still knows (held above a hole, or
 * delivered since and not yet overwritten) is acknowledged with the ts of
 * the first copy, so the sender can tell a resend for a lost ACK from one
 * for lost data (K7). */
static void duplicate_echoes_first_ts(void **state)
{
	static const uint32_t ts[] = { 0x100, 0x200, 0x300, 0x400 }, sns[] = { 1, 1, 0, 1 };
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	uint8_t d[64];
	unsigned acks = 0;

	(void)state;
	assert_non_null(w);
	kcp_config_default(&c);
	k = mk(7, &c, 1000, w);
	for (size_t i = 0; i < 4; i++) {
		size_t n = seg(d, 81, 0, sns[i], 0, 1);

		put32(d + 8, ts[i]);
		assert_int_equal(kcp_input(k, d, n, 1000 + i), 0);
	}
	kcp_flush(k, 1010);
	for (size_t i = 0; i < w->n; i++) {
		for (size_t off = 0; off + 24 <= w->len[i];) {
			const uint8_t *h = w->d[i] + off;
			uint32_t e = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
			             (uint32_t)h[11] << 24;
			uint32_t len = (uint32_t)h[20] | (uint32_t)h[21] << 8;

			if (h[4] == 82) {
				assert_int_equal(e, h[12] == 0 ? 0x300 : 0x100);
				acks++;
			}
			off += 24 + len;
		}
	}
	assert_true(acks >= 4);
	kcp_free(k);
	free(w);
}

struct bad_case {
	const char *name;
	enum kcp_drop why;
	bool stream;
	size_t (*build)(uint8_t *p);
};

static size_t b_empty(uint8_t *p)
{
	(void)p;
	return 0;
}
static size_t b_short(uint8_t *p) { return seg(p, 81, 0, 0, 0, 0) - 1; }
static size_t b_len_past_end(uint8_t *p) { return seg(p, 81, 0, 0, 0, 10) - 1; }
static size_t b_len_over_mss(uint8_t *p) { return seg(p, 81, 0, 0, 0, 1377); }
static size_t b_cmd_80(uint8_t *p) { return seg(p, 80, 0, 0, 0, 0); }
static size_t b_cmd_85(uint8_t *p) { return seg(p, 85, 0, 0, 0, 0); }
static size_t b_ack_with_data(uint8_t *p) { return seg(p, 82, 0, 0, 0, 1); }
static size_t b_conv(uint8_t *p)
{
	size_t n = seg(p, 81, 0, 0, 0, 1);
	p[0] = 8;
	return n;
}
static size_t b_frg_stream(uint8_t *p) { return seg(p, 81, 1, 0, 0, 1); }
static size_t b_frg_too_many(uint8_t *p) { return seg(p, 81, 128, 0, 0, 1); }
static size_t b_frg_on_wask(uint8_t *p) { return seg(p, 83, 1, 0, 0, 0); }
static size_t b_sn_far_ahead(uint8_t *p) { return seg(p, 81, 0, 1000000, 0, 1); }
static size_t b_sn_far_behind(uint8_t *p) { return seg(p, 81, 0, 0u - 1000000u, 0, 1); }
static size_t b_ack_never_sent(uint8_t *p) { return seg(p, 82, 0, 5, 0, 0); }
static size_t b_una_ahead(uint8_t *p) { return seg(p, 83, 0, 0, 3, 0); }
static size_t b_trailing(uint8_t *p) { return seg(p, 81, 0, 0, 0, 1) + 3; }
/* A valid first segment does not save a bad second one. */
static size_t b_good_then_bad(uint8_t *p)
{
	size_t n = seg(p, 81, 0, 0, 0, 4);
	return n + seg(p + n, 81, 0, 1, 0, 4) - 2;
}

static const struct bad_case bad_cases[] = {
	{ "empty", KCP_DROP_SHORT, false, b_empty },
	{ "short header", KCP_DROP_SHORT, false, b_short },
	{ "len past end", KCP_DROP_LEN, false, b_len_past_end },
	{ "len over mss", KCP_DROP_LEN, false, b_len_over_mss },
	{ "cmd 80", KCP_DROP_CMD, false, b_cmd_80 },
	{ "cmd 85", KCP_DROP_CMD, false, b_cmd_85 },
	{ "ack with data", KCP_DROP_CMD, false, b_ack_with_data },
	{ "wrong conv", KCP_DROP_CONV, false, b_conv },
	{ "frg in stream mode", KCP_DROP_FRG, true, b_frg_stream },
	{ "frg >= max fragments", KCP_DROP_FRG, false, b_frg_too_many },
	{ "frg on wask", KCP_DROP_FRG, false, b_frg_on_wask },
	{ "sn far ahead", KCP_DROP_SN, false, b_sn_far_ahead },
	{ "sn far behind", KCP_DROP_SN, false, b_sn_far_behind },
	{ "ack for sn never sent", KCP_DROP_ACK, false, b_ack_never_sent },
	{ "una ahead of snd_nxt", KCP_DROP_ACK, false, b_una_ahead },
	{ "trailing bytes", KCP_DROP_SHORT, false, b_trailing },
	{ "good then bad", KCP_DROP_LEN, false, b_good_then_bad },
};

static void malformed_dropped_whole_state_unchanged(void **state)
{
	(void)state;
	static uint8_t buf[4096];
	struct wire *w = calloc(1, sizeof *w);

	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct kcp_config c;
		struct kcp_stats before, after;
		struct kcp *k;
		size_t len;

		kcp_config_default(&c);
		c.stream = bc->stream;
		w->n = 0;
		k = mk(7, &c, 100, w);
		assert_int_equal(kcp_send(k, "x", 1, 100), 1); /* something in flight */
		w->n = w->total = 0;
		kcp_stats(k, &before);
		len = bc->build(buf);
		if (kcp_input(k, buf, len, 150) != KS_ERR_PROTO)
			fail_msg("case '%s' not rejected", bc->name);
		kcp_stats(k, &after);
		if (after.dropped[bc->why] != before.dropped[bc->why] + 1)
			fail_msg("case '%s' counted under the wrong reason", bc->name);
		after.dropped[bc->why]--;
		assert_memory_equal(&before, &after, sizeof before);
		assert_int_equal(w->total, 0);
		assert_int_equal(kcp_peek_size(k), KS_ERR_AGAIN);
		assert_int_equal(kcp_next_deadline(k, 150), 100 + 225); /* the RTO */
		assert_true(kcp_check(k));
		kcp_free(k);
	}
	free(w);
}

/* ------------------------------------------------------------------ */
/* two engines                                                        */

static void run_until_idle(struct pair *p, int max_steps)
{
	for (int i = 0; i < max_steps; i++)
		if (!pair_step(p))
			return;
	fail_msg("pair did not go idle in %d steps", max_steps);
}

static void pair_delivers_messages_with_boundaries(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 1375, 1376, 1377, 5000, 128 * 1376, 3 };
	static uint8_t msg[128 * 1376 + 16], out[128 * 1376 + 16];
	struct kcp_config c;
	struct pair p;

	kcp_config_default(&c);
	c.snd_wnd = 256;
	c.snd_queue = 256;
	c.rcv_wnd = 256;
	pair_init(&p, &c, &c, 0, 1);
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), KS_ERR_TOOBIG);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		assert_int_equal(kcp_send(p.a, msg + i, sizes[i], p.now), (ssize_t)sizes[i]);
	run_until_idle(&p, 100000);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		assert_int_equal(kcp_peek_size(p.b), (ssize_t)sizes[i]);
		if (sizes[i] > 0)
			assert_int_equal(kcp_recv(p.b, out, sizes[i] - 1), KS_ERR_TOOBIG);
		assert_int_equal(kcp_recv(p.b, out, sizeof out), (ssize_t)sizes[i]);
		assert_memory_equal(out, msg + i, sizes[i]);
	}
	assert_int_equal(kcp_recv(p.b, out, sizeof out), KS_ERR_AGAIN);
	assert_int_equal(kcp_waitsnd(p.a), 0);
	pair_free(&p);
}

/* Stream mode: 2 MiB in writes far larger than the window, limited by
 * kcp_send_room (backpressure), read in odd-sized pieces. */
static void pair_stream_large_writes(void **state)
{
	(void)state;
	enum { TOTAL = 2 << 20 };
	uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
	size_t sent = 0, got = 0;
	struct kcp_config c;
	struct pair p;

	cfg_fast(&c);
	c.stream = true;
	c.snd_wnd = 128;
	pair_init(&p, &c, &c, 5, 2);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i ^ (i >> 9));
	for (int step = 0; got < TOTAL && step < 1000000; step++) {
		if (sent < TOTAL) {
			size_t room = kcp_send_room(p.a), want = TOTAL - sent;
			ssize_t n = kcp_send(p.a, src + sent, want, p.now);
			if (room == 0) {
				assert_int_equal(n, KS_ERR_FULL);
			} else {
				assert_int_equal(n, (ssize_t)(want < room ? want : room));
				sent += (size_t)n;
			}
		}
		ssize_t r = kcp_recv(p.b, dst + got, 7777);
		if (r > 0)
			got += (size_t)r;
		else
			assert_int_equal(r, KS_ERR_AGAIN);
		if (!pair_step(&p) && sent == TOTAL && got < TOTAL && kcp_peek_size(p.b) < 0)
			fail_msg("stalled at %zu", got);
	}
	assert_int_equal(got, TOTAL);
	assert_memory_equal(src, dst, TOTAL);
	pair_free(&p);
	free(src);
	free(dst);
}

/* Loss: fast retransmit repairs a hole before the RTO. */
static void pair_fast_retransmit(void **state)
{
	(void)state;
	static uint8_t buf[WIRE_MTU];
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };
	char out[16];

	cfg_fast(&c); /* resend 2 */
	c.snd_wnd = 64;
	pair_init(&p, &c, &c, 0, 3);
	for (int i = 0; i < 6; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	assert_int_equal(p.ab->n, 6);
	wire_take(p.ab, 1, buf); /* sn 1 lost */
	p.now = 5;
	while (p.ab->n || p.ba->n) { /* one millisecond per exchange */
		p.now++;
		pair_step(&p);
	}
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_fast, 1);
	assert_int_equal(st.seg_retx_timeout, 0);
	assert_int_equal(st.inflight, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(kcp_recv(p.b, out, sizeof out), (ssize_t)sizeof msg);
	pair_free(&p);
}

/* Zero window: the receiver stops reading, the sender fills its window,
 * stops, probes with WASK; reading reopens it with a WINS. */
/* K3: the ACK of an out-of-order arrival is lost; its repeated copy in the
 * next ACK datagram retires the segment, so only the real hole is resent. */
static void lost_ack_repeated_no_retransmit(void **state)
{
	(void)state;
	static uint8_t buf[WIRE_MTU];
	struct kcp_config c;
	struct kcp_stats sa, sb;
	struct pair p;
	uint8_t msg[10] = { 0 };

	cfg_fast(&c); /* resend 2 */
	pair_init(&p, &c, &c, 0, 4);
	for (int i = 0; i < 6; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	wire_take(p.ab, 0, buf); /* sn 0 lost: sn 1.. arrive out of order */
	p.now = 1;
	deliver_one(&p, p.ab, p.b); /* sn 1 */
	assert_int_equal(p.ba->n, 1);
	wire_take(p.ba, 0, buf); /* ...and its ACK lost */
	while (p.ab->n || p.ba->n) {
		p.now++;
		pair_step(&p);
	}
	run_until_idle(&p, 1000);
	kcp_stats(p.a, &sa);
	kcp_stats(p.b, &sb);
	assert_true(sb.ack_repeated >= 1);
	assert_int_equal(sa.seg_retx_fast + sa.seg_retx_timeout, 1); /* sn 0 only */
	assert_int_equal(sa.data_bytes_retx, sizeof msg);
	assert_int_equal(sa.inflight, 0);
	pair_free(&p);
}

/* K7: 5% random loss on a path without queueing delay does not drive cwnd
 * down: loss episodes are counted as random and the window keeps growing. */
static void cwnd_survives_random_loss(void **state)
{
	(void)state;
	enum { TOTAL = 1 << 20 };
	static uint8_t src[4096], dst[8192];
	size_t sent = 0, got = 0;
	uint64_t cwnd_sum = 0, samples = 0;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;

	kcp_config_default(&c);
	assert_int_equal(kcp_config_preset(&c, "normal"), 0); /* nc off */
	c.stream = true;
	c.snd_wnd = c.rcv_wnd = 256;
	pair_init(&p, &c, &c, 1, 9);
	p.loss_pct = 5;
	for (int step = 0; got < TOTAL && step < 1000000; step++) {
		ssize_t r;
		if (sent < TOTAL && kcp_send_room(p.a) > 0) {
			ssize_t n = kcp_send(p.a, src, sizeof src, p.now);
			assert_true(n > 0);
			sent += (size_t)n;
		}
		while ((r = kcp_recv(p.b, dst, sizeof dst)) > 0)
			got += (size_t)r;
		pair_step(&p);
		if (got >= TOTAL / 2) { /* the second half: cwnd sampled per step */
			kcp_stats(p.a, &st);
			cwnd_sum += st.cwnd;
			samples++;
		}
	}
	assert_true(got >= TOTAL);
	kcp_stats(p.a, &st);
	assert_true(st.seg_retx_timeout > 0);
	assert_true(st.loss_random > 0);
	/* Reno halving once per episode averages under 20 segments here */
	assert_true(samples > 0 && cwnd_sum / samples >= 128);
	pair_free(&p);
}

static bool fast_resent(const struct kcp *k)
{
	struct kcp_stats st;
	kcp_stats(k, &st);
	return st.seg_retx_fast > 0;
}

/* step_ms delivers everything on both wires, advancing one ms per exchange. */
static void step_ms(struct pair *p)
{
	while (p->ab->n || p->ba->n) {
		p->now++;
		pair_step(p);
	}
}

/* K10: with pacing on, a window that opens all at once (here: 200 segments
 * queued with 256 allowed) leaves as a burst of at most the bucket, then at
 * about send limit / srtt x 1.25 per ms, and the deadline asks for the
 * calls in between. Everything still arrives. */
static void paced_window(void **state)
{
	(void)state;
	static uint8_t msg[KCP_MTU_DEFAULT - KCP_HEADER_LEN];
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint64_t rate, t0;

	cfg_fast(&c);
	c.pace = true;
	c.snd_wnd = c.rcv_wnd = 256;
	pair_init(&p, &c, &c, 0, 9);
	/* one exchange at RTT 20 ms gives the first RTT sample */
	assert_int_equal(kcp_send(p.a, msg, 10, p.now), 10);
	p.now += 10;
	deliver_one(&p, p.ab, p.b);
	p.now += 10;
	deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, 20);
	rate = 256 * 5 / 4 / 20; /* segments per ms: 16 */
	for (int i = 0; i < 200; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	assert_true(p.ab->n >= 16 && p.ab->n <= 2 * rate);
	assert_true(kcp_next_deadline(p.a, p.now) > p.now);
	t0 = p.now;
	while (p.ab->n < 200 && p.now < t0 + 100) {
		p.now = kcp_next_deadline(p.a, p.now);
		kcp_update(p.a, p.now);
		assert_true(p.ab->n <= 2 * rate + (p.now - t0) * rate);
	}
	assert_int_equal(p.ab->n, 200);
	assert_true(p.now - t0 >= (200 - 2 * rate) / rate);
	for (int i = 0; i < 100000 && pair_step(&p); i++)
		;
	kcp_stats(p.a, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.waitsnd, 0);
	pair_free(&p);
}

/* K7: a fast retransmission that reduced cwnd (the RTT shows queueing) is
 * proved spurious when the ACK echoes the original's ts (it was only late):
 * the reduction is undone. */
static void spurious_retransmit_undone(void **state)
{
	(void)state;
	static uint8_t held[WIRE_MTU];
	struct kcp_config c;
	struct kcp_stats before, mid, after;
	struct pair p;
	uint8_t msg[10] = { 0 };
	size_t held_len;

	cfg_fast(&c);
	c.nc = false;
	/* The jumps of 40 ms below stay short of every deadline of A's (an
	 * RTO expiry): A is not stalled (K4), its path is slow. */
	c.min_rto = 200;
	pair_init(&p, &c, &c, 0, 5);
	/* quick exchanges (min RTT 1 ms) grow cwnd in slow start; then slow
	 * ones raise srtt to ~40 ms: a queue, which holds cwnd where it is */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
		step_ms(&p);
		step_ms(&p);
	}
	for (int i = 0; i < 20; i++) {
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
		p.now++;
		deliver_one(&p, p.ab, p.b);
		p.now += 40;
		deliver_one(&p, p.ba, p.a);
	}
	kcp_stats(p.a, &before);
	assert_true(before.cwnd >= 8 && before.srtt >= 20);
	for (int i = 0; i < 8; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	assert_int_equal(p.ab->n, 8);
	held_len = wire_take(p.ab, 0, held); /* the first segment is late */
	p.now += 40; /* the queue is still there: the RTT floor shows it (K7) */
	for (int i = 0; i < 7; i++)
		deliver_one(&p, p.ab, p.b);
	assert_int_equal(p.ba->n, 7);
	while (p.ba->n && !fast_resent(p.a)) {
		p.now++;
		deliver_one(&p, p.ba, p.a);
	}
	kcp_stats(p.a, &mid);
	assert_int_equal(mid.seg_retx_fast, 1);
	assert_true(mid.cwnd < before.cwnd);
	p.ab->n = 0; /* the retransmission is lost; the original arrives */
	assert_int_equal(kcp_input(p.b, held, held_len, p.now), 0);
	while (p.ba->n)
		deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &after);
	assert_int_equal(after.seg_retx_spurious, 1);
	assert_int_equal(after.cwnd_undo, 1);
	assert_true(after.cwnd >= before.cwnd);
	pair_free(&p);
}

/* K4: the tail of a burst whose head is being acknowledged right now is
 * still queued: its RTO is deferred, then fires once ACKs stop. K12: the
 * ACKs have stopped, so the oldest segment alone probes the path; once its
 * answer comes, the other two (really lost) go at once, as isolated. */
static void burst_tail_rto_deferred(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };

	cfg_fast(&c); /* nodelay 1: first RTO = 200 ms after sending */
	pair_init(&p, &c, &c, 0, 6);
	for (int i = 0; i < 4; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	p.now = 199;
	deliver_one(&p, p.ab, p.b); /* sn 0 arrives late; sn 1..3 still queued */
	deliver_one(&p, p.ba, p.a);
	p.ab->n = 0;
	kcp_update(p.a, 200);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 0); /* deferred */
	assert_true(kcp_next_deadline(p.a, 200) > 200);
	p.now = kcp_next_deadline(p.a, 200);
	assert_true(p.now <= 199 + 199 / 4); /* a quarter RTT after the ACK */
	kcp_update(p.a, p.now);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 1);
	assert_int_equal(st.seg_retx_isolated, 1); /* sn 0, same flush, arrived */
	assert_int_equal(p.ab->n, 1);
	p.now++;
	deliver_one(&p, p.ab, p.b); /* the probe (sn 1) and its ACK */
	deliver_one(&p, p.ba, p.a);
	assert_int_equal(kcp_next_deadline(p.a, p.now), p.now); /* released */
	kcp_update(p.a, p.now);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 3);
	assert_int_equal(st.seg_retx_isolated, 3);
	pair_free(&p);
}

/* K4, K7: an RTO while later data is acknowledged is an isolated loss:
 * no backoff and no collapse; with the whole flight unanswered, both. */
static void isolated_timeout_vs_flight(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };
	uint64_t t;

	kcp_config_default(&c);
	assert_int_equal(kcp_config_preset(&c, "normal"), 0); /* resend 0, cc on */
	pair_init(&p, &c, &c, 0, 7);
	for (int i = 0; i < 2; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	p.ab->n--; /* sn 1 lost */
	p.now = 1;
	deliver_one(&p, p.ab, p.b); /* sn 0 */
	deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.cwnd, KCP_CWND_INIT + 1);
	t = kcp_next_deadline(p.a, p.now);
	kcp_update(p.a, t);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_isolated, 1);
	assert_int_equal(st.loss_random, 1);
	assert_int_equal(st.cwnd, KCP_CWND_INIT + 1);            /* no queueing delay: kept */
	assert_int_equal(kcp_next_deadline(p.a, t), t + st.rto); /* no backoff */
	p.now = t + 1;
	deliver_one(&p, p.ab, p.b); /* the resend arrives: all acknowledged */
	deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.inflight, 0);
	for (int i = 0; i < 2; i++) /* a new episode: both lost */
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	p.ab->n = 0;
	t = kcp_next_deadline(p.a, p.now);
	kcp_update(p.a, t);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 2); /* K12: one probe, one held */
	assert_int_equal(st.seg_retx_isolated, 1);
	assert_int_equal(st.cwnd, 1);
	/* backed off: the next expiry is at least 2 RTOs away (nodelay 0) */
	assert_true(kcp_next_deadline(p.a, t) >= t + 2 * (uint64_t)st.rto);
	pair_free(&p);
}

/* K4, E1: the handshake's round trip seeds the estimator as RFC 6298's
 * first sample, capped; an upper bound is taken only when it lowers the
 * RTO; the engine's own first sample starts the estimator over, and a seed
 * after it changes nothing. */
static void seeded_rtt(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };

	cfg_fast(&c); /* interval 10, min_rto 30 */
	pair_init(&p, &c, &c, 1000, 3);
	kcp_stats(p.a, &st);
	assert_int_equal(st.rto, KCP_RTO_INIT);
	kcp_seed_rtt(p.a, 400, true); /* a bound giving rto 1000: not taken */
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, 0);
	assert_int_equal(st.rto, KCP_RTO_INIT);
	kcp_seed_rtt(p.a, 20, false); /* 20 + max(10, 4 x 10) */
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, 20);
	assert_int_equal(st.rttvar, 10);
	assert_int_equal(st.rto, 60);
	kcp_seed_rtt(p.a, 2, true); /* a lower bound's rto: min_rto */
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, 2);
	assert_int_equal(st.rto, 30);
	kcp_seed_rtt(p.a, 30000, false); /* silly: capped */
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, KCP_SEED_MAX);
	assert_int_equal(st.rto, KCP_SEED_MAX);
	kcp_seed_rtt(p.a, 20, false);
	/* the first transmission expires after the seeded rto (nodelay) */
	assert_int_equal(kcp_send(p.a, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	p.ab->n = 0; /* lost */
	assert_int_equal(kcp_next_deadline(p.a, p.now), p.now + 60);
	p.now += 60;
	kcp_update(p.a, p.now);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 1);
	/* the resend's ACK, 4 ms later: the engine's own first sample */
	p.now += 4;
	deliver_one(&p, p.ab, p.b);
	deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.srtt, 4);
	assert_int_equal(st.rttvar, 2);
	kcp_seed_rtt(p.a, 500, false); /* too late: no-op */
	kcp_stats(p.a, &st);
	assert_int_equal(st.srtt, 4);
	pair_free(&p);
}

/* K12: a receiver that stops reading (everything arrives, nothing is
 * answered) past the RTO gets one probe, the oldest segment, not the whole
 * flight again; when it reads again its ACKs retire everything, the held
 * segments are never sent twice, and the probe shows itself spurious. */
static void silent_receiver_one_probe(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };
	uint64_t t;

	cfg_fast(&c);
	pair_init(&p, &c, &c, 0, 9);
	for (int i = 0; i < 8; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	assert_int_equal(p.ab->n, 8);
	t = kcp_next_deadline(p.a, 0);
	kcp_update(p.a, t);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 1);
	assert_int_equal(p.ab->n, 9);
	/* Still silent at the next expiry: the probe backs off alone. */
	t = kcp_next_deadline(p.a, t);
	kcp_update(p.a, t);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_retx_timeout, 2);
	assert_int_equal(p.ab->n, 10);
	p.now = t + 1;
	while (p.ab->n)
		deliver_one(&p, p.ab, p.b);
	while (p.ba->n)
		deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.seg_retx_spurious, 1);
	assert_int_equal(kcp_next_deadline(p.a, p.now), KS_NEVER);
	pair_free(&p);
}

/* K12 wake: the flight is lost and its probe has backed off; then the peer
 * is heard (its own data, no ACK of ours). A copy of the oldest segment
 * goes out at once, stamped now, not a transmission (xmit and the timeout
 * count unchanged), at most once per base RTO however often the peer is
 * heard; its ACK releases the held flight at once. A peer never heard
 * draws no copy. */
static void silent_wake_on_peer_heard(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;
	uint8_t msg[10] = { 0 };
	uint64_t t = 0;

	cfg_fast(&c);
	pair_init(&p, &c, &c, 0, 9);
	for (int i = 0; i < 8; i++)
		assert_int_equal(kcp_send(p.a, msg, sizeof msg, 0), (ssize_t)sizeof msg);
	kcp_stats(p.a, &st);
	while (st.seg_retx_timeout < 3) { /* the flight, then its probes: lost */
		p.ab->n = 0;
		t = kcp_next_deadline(p.a, t);
		kcp_update(p.a, t);
		kcp_stats(p.a, &st);
	}
	p.ab->n = 0;
	assert_int_equal(st.seg_wake, 0);
	/* the peer speaks, one base RTO after the last probe */
	p.now = t + st.rto;
	assert_int_equal(kcp_send(p.b, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	kcp_flush(p.b, p.now);
	assert_int_equal(p.ba->n, 1);
	deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_wake, 1);
	assert_int_equal(st.seg_retx_timeout, 3);
	assert_true(p.ab->n >= 1);
	/* heard again at once: no second copy */
	assert_int_equal(kcp_send(p.b, msg, sizeof msg, p.now), (ssize_t)sizeof msg);
	kcp_flush(p.b, p.now);
	while (p.ba->n)
		deliver_one(&p, p.ba, p.a);
	kcp_stats(p.a, &st);
	assert_int_equal(st.seg_wake, 1);
	/* the copy's ACK releases the held flight now, not at the probe's RTO */
	p.now++;
	while (p.ab->n)
		deliver_one(&p, p.ab, p.b);
	kcp_flush(p.b, p.now);
	while (p.ba->n)
		deliver_one(&p, p.ba, p.a);
	assert_true(kcp_next_deadline(p.a, p.now) <= p.now);
	run_until_idle(&p, 1000);
	kcp_stats(p.a, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.seg_wake, 1);
	pair_free(&p);
}

/* Issue 19: a burst's segment buffers go back once the engine is idle
 * (nothing queued, in flight or unread); an engine that never needed more
 * than KCP_IDLE_BUFS keeps them. */
static void idle_engine_returns_buffers(void **state)
{
	(void)state;
	struct kcp_config c;
	struct pair p;
	static uint8_t msg[1000], out[2000];
	size_t a0, b0, mss;
	int sent = 0, got = 0;

	cfg_fast(&c);
	mss = c.mtu - KCP_HEADER_LEN;
	pair_init(&p, &c, &c, 0, 10);
	a0 = kcp_mem_bytes(p.a);
	b0 = kcp_mem_bytes(p.b);
	for (int round = 0; got < 300; round++) {
		assert_true(round < 1000);
		while (sent < 300 && kcp_send(p.a, msg, sizeof msg, p.now) > 0)
			sent++;
		/* Buffers, and ring slots grown for the burst (a few
		 * hundred bytes of bookkeeping a slot, all rings). */
		assert_true(kcp_mem_bytes(p.a) <= a0 + (size_t)(2 * c.snd_wnd) * (mss + 256));
		p.now++;
		while (p.ab->n)
			deliver_one(&p, p.ab, p.b);
		while (kcp_recv(p.b, out, sizeof out) > 0)
			got++;
		kcp_flush(p.b, p.now);
		while (p.ba->n)
			deliver_one(&p, p.ba, p.a);
		kcp_flush(p.a, p.now);
	}
	assert_int_equal(kcp_waitsnd(p.a), 0);
	assert_true(kcp_check(p.a) && kcp_check(p.b));
	assert_int_equal(kcp_mem_bytes(p.a), a0); /* a burst of 64 buffers: all back */
	assert_true(kcp_mem_bytes(p.b) <= b0 + KCP_IDLE_BUFS * mss);
	/* And it still works afterwards. */
	assert_true(kcp_send(p.a, msg, sizeof msg, p.now) > 0);
	p.now++;
	deliver_one(&p, p.ab, p.b);
	assert_int_equal(kcp_recv(p.b, out, sizeof out), (ssize_t)sizeof msg);
	pair_free(&p);
}

/* Rings start small and grow with use (issue 19): an engine with 2048-
 * segment windows costs a few KiB until a burst, grows for it, and is back
 * at its first size once the burst is acknowledged and read. */
static void rings_grow_with_use_and_shrink(void **state)
{
	(void)state;
	struct kcp_config c;
	struct pair p;
	static uint8_t msg[1000], out[2000];
	size_t a0, b0;
	int sent = 0, got = 0;
	size_t peak = 0;

	cfg_fast(&c);
	c.snd_wnd = c.rcv_wnd = 2048;
	pair_init(&p, &c, &c, 0, 10);
	a0 = kcp_mem_bytes(p.a);
	b0 = kcp_mem_bytes(p.b);
	assert_true(a0 <= 16 * 1024);
	assert_true(b0 <= 16 * 1024);
	for (int round = 0; got < 3000; round++) {
		assert_true(round < 5000);
		while (sent < 3000 && kcp_send(p.a, msg, sizeof msg, p.now) > 0)
			sent++;
		peak = kcp_mem_bytes(p.a) > peak ? kcp_mem_bytes(p.a) : peak;
		assert_true(kcp_check(p.a));
		p.now++;
		while (p.ab->n)
			deliver_one(&p, p.ab, p.b);
		while (kcp_recv(p.b, out, sizeof out) > 0)
			got++;
		assert_true(kcp_check(p.b));
		kcp_flush(p.b, p.now);
		while (p.ba->n)
			deliver_one(&p, p.ba, p.a);
		kcp_flush(p.a, p.now);
	}
	assert_true(peak > a0 + 64 * 1024); /* it did grow */
	assert_int_equal(kcp_waitsnd(p.a), 0);
	assert_true(kcp_check(p.a) && kcp_check(p.b));
	assert_int_equal(kcp_mem_bytes(p.a), a0);
	assert_int_equal(kcp_mem_bytes(p.b), b0);
	assert_true(kcp_send(p.a, msg, sizeof msg, p.now) > 0);
	p.now++;
	deliver_one(&p, p.ab, p.b);
	assert_int_equal(kcp_recv(p.b, out, sizeof out), (ssize_t)sizeof msg);
	pair_free(&p);
}

static void pair_zero_window_probe(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats sa, sb;
	struct pair p;
	uint8_t msg[100] = { 1 };
	char out[200];
	int queued = 0, read = 0;

	cfg_fast(&c);
	c.snd_wnd = 256;
	c.snd_queue = 64;
	pair_init(&p, &c, &c, 0, 4);
	while (kcp_send(p.a, msg, sizeof msg, p.now) > 0)
		queued++;
	while (p.now < 40000) /* probes at 7 s, 17.5 s, 33.25 s */
		assert_true(pair_step(&p));
	kcp_stats(p.a, &sa);
	kcp_stats(p.b, &sb);
	assert_int_equal(sb.rcv_free, 0);
	assert_int_equal(sa.rmt_wnd, 0);
	assert_true(kcp_waitsnd(p.a) > 0);
	assert_true(sa.probe_sent >= 2); /* probes went out while it waited */
	/* nothing more arrives while the application does not read */
	assert_int_equal(sb.seg_recv, 128);
	while (kcp_recv(p.b, out, sizeof out) > 0)
		read++;
	assert_int_equal(read, 128);
	assert_true(kcp_next_deadline(p.b, p.now) == p.now); /* window tell due */
	for (int i = 0; i < 100000 && read < queued; i++) {
		pair_step(&p);
		while (kcp_recv(p.b, out, sizeof out) > 0)
			read++;
	}
	assert_int_equal(read, queued);
	kcp_stats(p.b, &sb);
	assert_true(sb.tell_sent >= 1);
	pair_free(&p);
}

/* ------------------------------------------------------------------ */
/* dead link, deadlines, wraparound                                   */

static void dead_link_after_n_transmissions(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp_stats st;
	struct kcp *k;
	uint64_t now = 0;
	int steps = 0;

	kcp_config_default(&c);
	c.dead_link = 5;
	w->blackhole = true;
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send(k, "x", 1, 0), 1);
	while (!kcp_is_dead(k) && steps++ < 100) {
		now = kcp_next_deadline(k, now);
		assert_true(now != KS_NEVER);
		kcp_update(k, now);
	}
	assert_true(kcp_is_dead(k));
	kcp_stats(k, &st);
	assert_int_equal(st.seg_sent, 1);
	assert_int_equal(st.seg_retx_timeout, 4); /* 5 transmissions in all */
	assert_int_equal(w->total, 5);
	assert_int_equal(kcp_next_deadline(k, now), KS_NEVER);
	assert_int_equal(kcp_send(k, "y", 1, now), KS_ERR_DEAD);
	assert_int_equal(kcp_send_room(k), 0);
	kcp_free(k);
	free(w);
}

static void deadline_exact(void **state)
{
	(void)state;
	static uint8_t buf[WIRE_MTU];
	struct kcp_config c;
	struct pair p;
	size_t len;

	kcp_config_default(&c);
	c.flush_on_send = false;
	c.ack_immediate = false;
	c.interval = 40;
	pair_init(&p, &c, &c, 1000, 5);
	assert_int_equal(kcp_next_deadline(p.a, 1000), KS_NEVER);
	assert_int_equal(kcp_next_deadline(p.b, 1000), KS_NEVER);
	assert_int_equal(kcp_send(p.a, "abc", 3, 1010), 3);
	assert_int_equal(p.ab->n, 0);
	assert_int_equal(kcp_next_deadline(p.a, 1010), 1050); /* interval flush */
	kcp_update(p.a, 1049);
	assert_int_equal(p.ab->n, 0);
	kcp_update(p.a, 1050);
	assert_int_equal(p.ab->n, 1);
	/* first RTO: 200 ms + 200/8 (nodelay 0) */
	assert_int_equal(kcp_next_deadline(p.a, 1050), 1050 + 225);
	len = wire_take(p.ab, 0, buf);
	assert_int_equal(kcp_input(p.b, buf, len, 1060), 0);
	assert_int_equal(kcp_next_deadline(p.b, 1060), 1100); /* delayed ACK */
	kcp_update(p.b, 1100);
	len = wire_take(p.ba, 0, buf);
	assert_int_equal(kcp_input(p.a, buf, len, 1110), 0);
	assert_int_equal(kcp_next_deadline(p.a, 1110), KS_NEVER); /* idle again */
	assert_int_equal(kcp_next_deadline(p.b, 1110), KS_NEVER);
	pair_free(&p);

	/* nodelay: no extra rto/8, and flush_on_send sends at once */
	kcp_config_default(&c);
	c.nodelay = 1;
	pair_init(&p, &c, &c, 0, 6);
	assert_int_equal(kcp_send(p.a, "abc", 3, 7), 3);
	assert_int_equal(p.ab->n, 1);
	assert_int_equal(kcp_next_deadline(p.a, 7), 207);
	assert_int_equal(kcp_next_deadline(p.a, 300), 300); /* overdue: now */
	pair_free(&p);
}

static void wraparound_sn_and_clock(void **state)
{
	(void)state;
	enum { TOTAL = 600000 };
	uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
	size_t sent = 0, got = 0;
	struct kcp_config c;
	struct kcp_stats st;
	struct pair p;

	cfg_fast(&c);
	c.stream = true;
	c.initial_sn = 0xffffff00u;
	pair_init(&p, &c, &c, 0xffffffffULL - 20, 7); /* ts wraps after 20 ms */
	p.loss_pct = 10;
	p.reorder = true;
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i * 13);
	for (int step = 0; got < TOTAL && step < 2000000; step++) {
		if (sent < TOTAL) {
			ssize_t n = kcp_send(p.a, src + sent, TOTAL - sent, p.now);
			if (n > 0)
				sent += (size_t)n;
		}
		ssize_t r = kcp_recv(p.b, dst + got, TOTAL - got);
		if (r > 0)
			got += (size_t)r;
		pair_step(&p);
		if (step % 4 == 0) { /* the clock also moves between deadlines */
			p.now++;
			kcp_update(p.a, p.now);
			kcp_update(p.b, p.now);
		}
	}
	assert_int_equal(got, TOTAL);
	assert_memory_equal(src, dst, TOTAL);
	kcp_stats(p.a, &st);
	assert_true(st.seg_sent > 256); /* sn went through 2^32 */
	if (p.now <= 0x100000000ULL)
		fail_msg("clock ended at %llu", (unsigned long long)p.now);
	assert_true(st.seg_retx_fast + st.seg_retx_timeout > 0);
	pair_free(&p);
	free(src);
	free(dst);
}

/* ------------------------------------------------------------------ */
/* random operations against a naive model                            */

/* The naive model: every byte accepted by kcp_send, in order; reads must
 * return its next bytes. */
struct fifo_model {
	uint8_t *buf; /* owned */
	size_t head, tail, cap;
};

static void random_config(struct prng *g, bool stream, struct kcp_config *c)
{
	cfg_fast(c);
	c->stream = stream;
	c->snd_wnd = 1 + prng_below(g, 200);
	c->rcv_wnd = 128 + prng_below(g, 200);
	c->snd_queue = 128 + prng_below(g, 64);
	c->mtu = 50 + prng_below(g, 1400);
	c->nodelay = prng_below(g, 3);
	c->resend = prng_below(g, 4);
	c->nc = prng_below(g, 2);
	c->flush_on_send = prng_below(g, 2);
	c->ack_immediate = prng_below(g, 2);
	c->interval = 1 + prng_below(g, 60);
	c->initial_sn = (uint32_t)prng_next(g);
	c->dead_link = 1000;
	c->bundle = prng_below(g, 2); /* K13 */
	c->ack_lazy = prng_below(g, 2);
}

static void model_send(struct pair *p, struct prng *g, struct fifo_model *m, size_t max)
{
	static uint8_t in[1 << 16];
	size_t n = prng_below(g, (uint32_t)max);
	ssize_t r;

	if (m->tail + sizeof in > m->cap)
		return;
	prng_fill(g, in, n);
	r = kcp_send(p->a, in, n, p->now);
	if (r == KS_ERR_FULL || r == KS_ERR_INVAL)
		return; /* INVAL: a 0-byte write in stream mode */
	assert_true(r >= 0);
	memcpy(m->buf + m->tail, in, (size_t)r);
	m->tail += (size_t)r;
}

static bool model_read(struct pair *p, size_t cap, struct fifo_model *m)
{
	static uint8_t out[1 << 16];
	ssize_t r = kcp_recv(p->b, out, cap);

	if (r == KS_ERR_AGAIN || r == KS_ERR_TOOBIG)
		return false;
	assert_true(r >= 0 && (size_t)r <= m->tail - m->head);
	assert_memory_equal(out, m->buf + m->head, (size_t)r);
	m->head += (size_t)r;
	return true;
}

static void random_ops_one(uint64_t seed, struct fifo_model *m)
{
	struct kcp_config c;
	struct pair p;
	struct prng g;

	prng_seed(&g, seed * 977);
	random_config(&g, seed & 1, &c);
	pair_init(&p, &c, &c, prng_next(&g) >> 20, seed);
	p.loss_pct = prng_below(&g, 30);
	p.dup_pct = prng_below(&g, 10);
	p.reorder = prng_below(&g, 2);
	m->head = m->tail = 0;
	for (int op = 0; op < 20000; op++) {
		uint32_t what = prng_below(&g, 10);
		if (what < 3)
			model_send(&p, &g, m, c.stream ? 20000 : 3 * c.mtu);
		else if (what < 6)
			model_read(&p, 1 + prng_below(&g, 1 << 16), m);
		else
			pair_step(&p);
		assert_true(kcp_check(p.a));
		assert_true(kcp_check(p.b));
	}
	/* drain on a loss-free path: everything sent arrives, in order */
	p.loss_pct = 0;
	for (int i = 0; i < 200000 && m->head < m->tail; i++)
		if (!model_read(&p, 1 << 16, m))
			pair_step(&p);
	assert_int_equal(m->head, m->tail);
	assert_false(kcp_is_dead(p.a));
	pair_free(&p);
}

static void random_ops_match_byte_fifo(void **state)
{
	(void)state;
	struct fifo_model m = { .cap = 1 << 22 };

	m.buf = malloc(m.cap);
	assert_non_null(m.buf);
	for (uint64_t seed = 1; seed <= 6; seed++)
		random_ops_one(seed, &m);
	free(m.buf);
}

/* ------------------------------------------------------------------ */
/* config and memory                                                  */

static void config_presets_and_checks(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp *k = NULL;

	kcp_config_default(&c);
	assert_int_equal(kcp_config_check(&c), 0);
	assert_int_equal(kcp_config_preset(&c, "fast2"), 0);
	assert_int_equal(c.nodelay, 1);
	assert_int_equal(c.interval, 20);
	assert_int_equal(c.resend, 2);
	assert_true(c.nc);
	assert_int_equal(kcp_config_preset(&c, "normal"), 0);
	assert_int_equal(c.interval, 40);
	assert_false(c.nc);
	assert_int_equal(kcp_config_preset(&c, "turbo"), KS_ERR_INVAL);
	assert_int_equal(c.interval, 40);
	c.rcv_wnd = KCP_RCV_WND_MIN - 1;
	assert_int_equal(kcp_config_check(&c), KS_ERR_INVAL);
	assert_int_equal(kcp_new(&k, 1, &c, 0, wire_out, NULL), KS_ERR_INVAL);
	assert_null(k);
	kcp_config_default(&c);
	c.mtu = KCP_MTU_MIN - 1;
	assert_int_equal(kcp_config_check(&c), KS_ERR_INVAL);
	c.mtu = KCP_MTU_DEFAULT;
	c.nodelay = 3;
	assert_int_equal(kcp_config_check(&c), KS_ERR_INVAL);
	kcp_config_default(&c);
	assert_int_equal(kcp_new(&k, 1, &c, 0, NULL, NULL), KS_ERR_INVAL);
	kcp_free(NULL);
}

/* A peer that never reads and never ACKs: the sender's queue fills, sends
 * are refused, memory stays under the bound its windows imply. */
static void memory_bounded_with_stalled_peer(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	uint8_t chunk[4096] = { 0 };
	uint64_t now = 0;
	size_t bound, seg = KCP_MTU_DEFAULT - 24;
	int full = 0;

	kcp_config_default(&c);
	c.stream = true;
	c.nc = true;
	c.dead_link = 1000;
	k = mk(1, &c, 0, w);
	bound = kcp_mem_bytes(k) + (size_t)(32 + 32 + 128) * seg;
	for (int i = 0; i < 5000; i++) {
		w->n = 0;
		if (kcp_send(k, chunk, sizeof chunk, now) == KS_ERR_FULL)
			full++;
		now += 50;
		kcp_update(k, now);
		assert_true(kcp_mem_bytes(k) <= bound);
	}
	assert_true(full > 4000);
	assert_int_equal(kcp_send_room(k), 0);
	assert_int_equal(kcp_waitsnd(k), 64);
	kcp_free(k);
	free(w);
}

/* ------------------------------------------------------------------ */
/* K11: thin-flight copies                                            */

static uint32_t dgram_sn(const struct wire *w, size_t i)
{
	const uint8_t *d = w->d[i];

	return (uint32_t)d[12] | (uint32_t)d[13] << 8 | (uint32_t)d[14] << 16 |
	       (uint32_t)d[15] << 24;
}

static void dup_thin_sends_two_datagrams(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp_stats st;
	struct kcp *k;

	cfg_fast(&c);
	c.dup_thin = true;
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send(k, "req", 3, 0), 3);
	/* the segment twice, in two datagrams, same bytes (same ts and sn) */
	assert_int_equal(w->n, 2);
	assert_int_equal(w->d[0][4], KCP_CMD_PUSH);
	assert_int_equal(w->len[0], w->len[1]);
	assert_memory_equal(w->d[0], w->d[1], w->len[0]);
	kcp_stats(k, &st);
	assert_int_equal(st.seg_sent, 1);
	assert_int_equal(st.seg_dup_thin, 1);
	assert_int_equal(st.seg_retx_timeout + st.seg_retx_fast, 0);
	assert_int_equal(st.inflight, 1);
	kcp_free(k);
	free(w);
}

static void dup_thin_not_for_bulk(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	static uint8_t big[64 * 1024];
	struct kcp_stats st;
	struct kcp *k;

	cfg_fast(&c);
	c.dup_thin = true;
	c.stream = true;
	k = mk(1, &c, 0, w);
	/* the window lets part of many queued segments out: data waits
	 * behind, every datagram is a new full segment */
	assert_true(kcp_send(k, big, sizeof big, 0) > 0);
	kcp_stats(k, &st);
	assert_true(w->n > KCP_THIN_FLIGHT);
	assert_int_equal(st.seg_sent, w->n);
	for (size_t i = 0; i < w->n; i++)
		assert_int_equal(dgram_sn(w, i), i);
	assert_int_equal(st.seg_dup_thin, 0);
	kcp_free(k);
	free(w);

	/* off by default */
	w = calloc(1, sizeof *w);
	cfg_fast(&c);
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send(k, "req", 3, 0), 3);
	assert_int_equal(w->n, 1);
	kcp_free(k);
	free(w);
}

/* The copy is not a retransmission: cwnd, rto and the RTT sample are what
 * they are without it, the receiver delivers once and ACKs both copies,
 * and the copy alone carries the exchange when the original is lost. */
static void dup_thin_receiver_and_congestion(void **state)
{
	(void)state;
	struct kcp_config c, plain;
	struct pair p, q;
	struct kcp_stats sa, sb, qa;
	uint8_t buf[16];
	uint8_t tmp[WIRE_MTU];

	cfg_fast(&c);
	plain = c;
	c.dup_thin = true;
	pair_init(&p, &c, &c, 0, 1);
	pair_init(&q, &plain, &plain, 0, 1);
	assert_int_equal(kcp_send(p.a, "hello", 5, 0), 5);
	assert_int_equal(kcp_send(q.a, "hello", 5, 0), 5);
	assert_int_equal(p.ab->n, 2);
	/* both copies arrive 10 ms later; each is ACKed */
	p.now = q.now = 10;
	wire_take(p.ab, 0, tmp);
	assert_int_equal(kcp_input(p.b, tmp, p.ab->len[0], p.now), 0);
	assert_int_equal(kcp_input(p.b, p.ab->d[0], p.ab->len[0], p.now), 0);
	assert_int_equal(kcp_input(q.b, q.ab->d[0], q.ab->len[0], q.now), 0);
	assert_int_equal(kcp_recv(p.b, buf, sizeof buf), 5);
	assert_int_equal(kcp_recv(p.b, buf, sizeof buf), KS_ERR_AGAIN);
	kcp_stats(p.b, &sb);
	assert_int_equal(sb.seg_recv, 1);
	assert_int_equal(sb.seg_dup, 1);
	assert_int_equal(sb.ack_sent, 2);
	assert_int_equal(p.ba->n, 2);
	/* ACKs back 10 ms later: same RTT sample, cwnd and rto as without */
	p.now = q.now = 20;
	assert_int_equal(kcp_input(p.a, p.ba->d[0], p.ba->len[0], p.now), 0);
	assert_int_equal(kcp_input(p.a, p.ba->d[1], p.ba->len[1], p.now), 0);
	assert_int_equal(kcp_input(q.a, q.ba->d[0], q.ba->len[0], q.now), 0);
	kcp_stats(p.a, &sa);
	kcp_stats(q.a, &qa);
	assert_int_equal(sa.srtt, qa.srtt);
	assert_int_equal(sa.rto, qa.rto);
	assert_int_equal(sa.cwnd, qa.cwnd);
	assert_int_equal(sa.inflight, 0);
	assert_int_equal(sa.seg_retx_timeout + sa.seg_retx_fast + sa.seg_retx_spurious, 0);
	assert_int_equal(sa.data_bytes_retx, 0);
	pair_free(&p);
	pair_free(&q);

	/* the original is lost: the copy delivers without any retransmission */
	pair_init(&p, &c, &c, 0, 2);
	assert_int_equal(kcp_send(p.a, "hello", 5, 0), 5);
	wire_take(p.ab, 0, tmp);
	while (pair_step(&p) && kcp_waitsnd(p.a))
		;
	assert_int_equal(kcp_recv(p.b, buf, sizeof buf), 5);
	kcp_stats(p.a, &sa);
	assert_int_equal(sa.seg_retx_timeout + sa.seg_retx_fast, 0);
	pair_free(&p);
}

/* ------------------------------------------------------------------ */
/* K14: early delivery                                                */

static struct kcp *mk_early(struct wire *w, bool early)
{
	struct kcp_config c;

	cfg_fast(&c);
	c.stream = false;
	c.early = early;
	return mk(7, &c, 0, w);
}

static void input_seg(struct kcp *k, uint8_t frg, uint32_t sn, uint32_t len)
{
	uint8_t d[WIRE_MTU];

	assert_int_equal(kcp_input(k, d, seg(d, KCP_CMD_PUSH, frg, sn, 0, len), 0), 0);
	assert_true(kcp_check(k));
}

static void early_taken_skipped_left_in_order(void **state)
{
	struct wire *w = calloc(1, sizeof *w), *w2 = calloc(1, sizeof *w2);
	struct kcp *k = mk_early(w, true), *plain = mk_early(w2, false);
	struct kcp_stats st, st2;
	const uint8_t *data;
	uint8_t buf[4096];
	size_t len;
	uint32_t sn;

	(void)state;
	struct kcp_config bad;
	kcp_config_default(&bad);
	bad.early = true; /* stream mode by default: refused */
	bad.stream = true;
	assert_int_equal(kcp_config_check(&bad), KS_ERR_INVAL);
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), KS_ERR_AGAIN);
	for (int e = 0; e < 2; e++) {
		struct kcp *x = e ? k : plain;
		input_seg(x, 0, 1, 11); /* above the hole at 0 */
		input_seg(x, 0, 2, 12);
		input_seg(x, 1, 3, 13); /* a fragment: never offered */
	}
	assert_int_equal(kcp_early_peek(plain, &sn, &data, &len), KS_ERR_AGAIN);
	assert_int_equal(kcp_recv(k, buf, sizeof buf), KS_ERR_AGAIN);
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), 0);
	assert_int_equal(sn, 1);
	assert_int_equal(len, 11);
	assert_int_equal(data[0], 'd');
	kcp_early_done(k, true);
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), 0);
	assert_int_equal(sn, 2);
	kcp_early_done(k, false); /* left for the ordered path */
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), KS_ERR_AGAIN);
	/* a copy of a taken one is a duplicate, not offered again */
	input_seg(k, 0, 1, 11);
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), KS_ERR_AGAIN);
	input_seg(plain, 0, 1, 11);
	/* the window is the same as without the option */
	kcp_stats(k, &st);
	kcp_stats(plain, &st2);
	assert_int_equal(st.rcv_free, st2.rcv_free);
	assert_int_equal(st.seg_dup, 1);
	/* the hole fills: 0, then 2 (1 was taken), then 3+4 once 4 is there */
	for (int e = 0; e < 2; e++)
		input_seg(e ? k : plain, 0, 0, 10);
	assert_int_equal(kcp_recv(k, buf, sizeof buf), 10);
	assert_int_equal(kcp_recv(k, buf, sizeof buf), 12);
	assert_int_equal(kcp_recv(k, buf, sizeof buf), KS_ERR_AGAIN);
	assert_int_equal(kcp_recv(plain, buf, sizeof buf), 10);
	assert_int_equal(kcp_recv(plain, buf, sizeof buf), 11);
	assert_int_equal(kcp_recv(plain, buf, sizeof buf), 12);
	for (int e = 0; e < 2; e++)
		input_seg(e ? k : plain, 0, 4, 14); /* in order now: not offered */
	assert_int_equal(kcp_early_peek(k, &sn, &data, &len), KS_ERR_AGAIN);
	assert_int_equal(kcp_recv(k, buf, sizeof buf), 27);
	assert_int_equal(kcp_recv(plain, buf, sizeof buf), 27);
	kcp_stats(k, &st);
	kcp_stats(plain, &st2);
	assert_int_equal(st.rcv_free, st2.rcv_free);
	assert_int_equal(st.ack_sent, st2.ack_sent);
	assert_true(kcp_check(k));
	kcp_free(k);
	kcp_free(plain);
	free(w);
	free(w2);
}

/* Over a lossy, reordering path every message is delivered exactly once,
 * early or in order, and the ordered ones keep their order. */
static void early_pair_exactly_once(void **state)
{
	struct kcp_config c;
	struct pair p;
	uint8_t seen[600] = { 0 }, buf[2048];
	uint32_t next = 0, last = 0, early = 0;
	const uint8_t *data;
	size_t len;
	uint32_t sn;
	bool have_last = false;

	(void)state;
	cfg_fast(&c);
	c.stream = false;
	c.early = true;
	pair_init(&p, &c, &c, 0, 99);
	p.loss_pct = 10;
	p.reorder = true;
	for (int steps = 0; steps < 200000; steps++) {
		ssize_t n;

		while (next < sizeof seen && kcp_send_room(p.a) >= 200) {
			uint8_t msg[200];
			uint32_t l = 4 + next % 190;
			memset(msg, (int)next, l);
			msg[0] = (uint8_t)(next >> 8);
			msg[1] = (uint8_t)next;
			assert_int_equal(kcp_send(p.a, msg, l, p.now), l);
			next++;
		}
		while (kcp_early_peek(p.b, &sn, &data, &len) == 0) {
			uint32_t id = (uint32_t)data[0] << 8 | data[1];
			assert_true(id < sizeof seen && !seen[id]);
			assert_int_equal(len, 4 + id % 190);
			seen[id] = 1;
			early++;
			kcp_early_done(p.b, true);
		}
		while ((n = kcp_recv(p.b, buf, sizeof buf)) > 0) {
			uint32_t id = (uint32_t)buf[0] << 8 | buf[1];
			assert_true(id < sizeof seen && !seen[id]);
			assert_int_equal(n, 4 + id % 190);
			assert_true(!have_last || id > last);
			have_last = true;
			last = id;
			seen[id] = 1;
		}
		assert_true(kcp_check(p.b));
		if (!pair_step(&p))
			break;
	}
	for (size_t i = 0; i < sizeof seen; i++)
		assert_int_equal(seen[i], 1);
	assert_true(early > 0);
	pair_free(&p);
}

/* ------------------------------------------------------------------ */
/* zero-copy send: kcp_send_reserve / kcp_send_commit                 */

static void wires_equal(const struct wire *x, const struct wire *y)
{
	assert_int_equal(x->n, y->n);
	assert_int_equal(x->total, y->total);
	for (size_t i = 0; i < x->n; i++) {
		assert_int_equal(x->len[i], y->len[i]);
		assert_memory_equal(x->d[i], y->d[i], x->len[i]);
	}
}

/* send_reserved: the message written in place, then committed. */
static ssize_t send_reserved(struct kcp *k, const uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *buf = NULL;
	ssize_t cap = kcp_send_reserve(k, &buf);

	if (cap < 0) {
		assert_null(buf);
		return cap;
	}
	assert_non_null(buf);
	assert_true(len <= (size_t)cap);
	memcpy(buf, msg, len);
	return kcp_send_commit(k, len, now);
}

/* Both pairs' receivers hand up the same messages. */
static void recv_same(struct pair *p, struct pair *q)
{
	static uint8_t x[WIRE_MTU], y[WIRE_MTU];
	ssize_t a, b;

	do {
		a = kcp_recv(p->b, x, sizeof x);
		b = kcp_recv(q->b, y, sizeof y);
		assert_int_equal(a, b);
		if (a > 0)
			assert_memory_equal(x, y, (size_t)a);
	} while (a >= 0);
}

/* A message committed in place is, on the wire and in every count, what
 * kcp_send of the same bytes makes: two pairs on the same lossy path, one
 * sending by copy and one in place, random sizes (0 and a full MSS
 * included), a queue small enough to refuse some. */
static void reserve_commit_same_wire(void **state)
{
	(void)state;
	struct kcp_config c;
	struct kcp_stats sa, sb;
	struct pair p, q;
	struct prng g;
	uint8_t msg[WIRE_MTU];
	size_t mss;
	int full = 0;

	cfg_fast(&c);
	c.snd_wnd = 16;
	c.snd_queue = 8;
	mss = c.mtu - KCP_HEADER_LEN;
	pair_init(&p, &c, &c, 1000, 21);
	pair_init(&q, &c, &c, 1000, 21);
	p.loss_pct = q.loss_pct = 10;
	prng_seed(&g, 77);
	for (int i = 0; i < 400; i++) {
		size_t len = i == 0 ? 0 : i == 1 ? mss : prng_below(&g, (uint32_t)mss + 1);
		ssize_t a, b;

		for (size_t j = 0; j < len; j++)
			msg[j] = (uint8_t)prng_below(&g, 256);
		a = kcp_send(p.a, msg, len, p.now);
		b = send_reserved(q.a, msg, len, q.now);
		assert_int_equal(a, b);
		assert_true(a == (ssize_t)len || a == KS_ERR_FULL);
		full += a == KS_ERR_FULL;
		assert_true(kcp_check(q.a));
		wires_equal(p.ab, q.ab);
		assert_int_equal(kcp_next_deadline(p.a, p.now), kcp_next_deadline(q.a, q.now));
		if (prng_below(&g, 2) == 0) {
			assert_int_equal(pair_step(&p), pair_step(&q));
			assert_true(p.now == q.now);
			recv_same(&p, &q);
		}
	}
	while (pair_step(&p)) {
		assert_true(pair_step(&q));
		wires_equal(p.ab, q.ab);
		wires_equal(p.ba, q.ba);
		recv_same(&p, &q);
	}
	assert_false(pair_step(&q));
	assert_true(full > 0);
	kcp_stats(p.a, &sa);
	kcp_stats(q.a, &sb);
	assert_int_equal(sa.seg_sent, sb.seg_sent);
	assert_int_equal(sa.data_bytes_sent, sb.data_bytes_sent);
	assert_int_equal(sa.seg_retx_timeout + sa.seg_retx_fast,
	                 sb.seg_retx_timeout + sb.seg_retx_fast);
	assert_int_equal(sa.bytes_out, sb.bytes_out);
	assert_int_equal(kcp_waitsnd(q.a), 0);
	pair_free(&p);
	pair_free(&q);
}

/* No room: a full queue refuses a reservation as kcp_send would. Stream
 * mode, a NULL buf and a dead engine refuse it too. */
static void reserve_refused(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	uint8_t *buf = (uint8_t *)"x";

	kcp_config_default(&c);
	c.snd_wnd = 4; /* the window holds 4; the queue 2 more */
	c.snd_queue = 2;
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send_reserve(k, NULL), KS_ERR_INVAL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(send_reserved(k, (const uint8_t *)"m", 1, 0), 1);
	assert_int_equal(kcp_send_room(k), 0);
	assert_int_equal(kcp_send_reserve(k, &buf), KS_ERR_FULL);
	assert_null(buf);
	assert_int_equal(kcp_send_commit(k, 1, 0), KS_ERR_INVAL);
	assert_int_equal(kcp_waitsnd(k), 6);
	assert_true(kcp_check(k));
	kcp_free(k);

	c.snd_wnd = KCP_SND_WND_DEFAULT;
	c.snd_queue = 0;
	c.dead_link = 1;
	w->blackhole = true;
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send(k, "x", 1, 0), 1);
	kcp_update(k, kcp_next_deadline(k, 0)); /* the one transmission times out */
	assert_true(kcp_is_dead(k));
	assert_int_equal(kcp_send_reserve(k, &buf), KS_ERR_DEAD);
	kcp_free(k);

	c.stream = true;
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send_reserve(k, &buf), KS_ERR_INVAL);
	assert_null(buf);
	kcp_free(k);
	free(w);
}

/* A reservation left uncommitted queues nothing and sends nothing; the
 * next kcp_send or reserve reuses the buffer and ends it; a commit needs a
 * live reservation and at most an MSS. */
static void reserve_abandoned(void **state)
{
	(void)state;
	struct kcp_config c;
	struct wire *w = calloc(1, sizeof *w);
	struct kcp *k;
	uint8_t *buf, *again;
	ssize_t cap;

	kcp_config_default(&c);
	k = mk(1, &c, 0, w);
	assert_int_equal(kcp_send_commit(k, 0, 0), KS_ERR_INVAL); /* none yet */
	cap = kcp_send_reserve(k, &buf);
	assert_int_equal(cap, c.mtu - KCP_HEADER_LEN);
	memset(buf, 'z', (size_t)cap);
	assert_int_equal(kcp_waitsnd(k), 0);
	assert_int_equal(w->total, 0);
	assert_int_equal(kcp_next_deadline(k, 0), KS_NEVER);
	assert_true(kcp_check(k));

	/* a second reserve hands out the same slot; one commit, one message */
	assert_int_equal(kcp_send_reserve(k, &again), cap);
	assert_ptr_equal(again, buf);
	memcpy(again, "hi", 2);
	assert_int_equal(kcp_send_commit(k, 2, 0), 2);
	assert_int_equal(kcp_send_commit(k, 2, 0), KS_ERR_INVAL); /* ended */
	assert_int_equal(w->n, 1);
	assert_int_equal(w->len[0], KCP_HEADER_LEN + 2);
	assert_memory_equal(w->d[0] + KCP_HEADER_LEN, "hi", 2);

	/* abandoned, then kcp_send: its bytes, not the abandoned ones */
	assert_int_equal(kcp_send_reserve(k, &buf), cap);
	memset(buf, 'z', (size_t)cap);
	assert_int_equal(kcp_send(k, "abc", 3, 0), 3);
	assert_int_equal(kcp_send_commit(k, 3, 0), KS_ERR_INVAL);
	assert_int_equal(w->n, 2);
	assert_int_equal(w->len[1], KCP_HEADER_LEN + 3);
	assert_memory_equal(w->d[1] + KCP_HEADER_LEN, "abc", 3);

	/* too long: refused, and the reservation is over */
	assert_int_equal(kcp_send_reserve(k, &buf), cap);
	assert_int_equal(kcp_send_commit(k, (size_t)cap + 1, 0), KS_ERR_INVAL);
	assert_int_equal(kcp_send_commit(k, 1, 0), KS_ERR_INVAL);
	assert_int_equal(kcp_waitsnd(k), 2);
	assert_int_equal(w->n, 2);
	assert_true(kcp_check(k));
	kcp_free(k); /* the abandoned buffer is the engine's: no leak (ASan) */
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_push_encoding),
		cmocka_unit_test(golden_fragments_count_down),
		cmocka_unit_test(golden_push_decoding_and_ack),
		cmocka_unit_test(golden_packed_ack_and_push),
		cmocka_unit_test(duplicate_echoes_first_ts),
		cmocka_unit_test(malformed_dropped_whole_state_unchanged),
		cmocka_unit_test(pair_delivers_messages_with_boundaries),
		cmocka_unit_test(pair_stream_large_writes),
		cmocka_unit_test(pair_fast_retransmit),
		cmocka_unit_test(lost_ack_repeated_no_retransmit),
		cmocka_unit_test(cwnd_survives_random_loss),
		cmocka_unit_test(spurious_retransmit_undone),
		cmocka_unit_test(paced_window),
		cmocka_unit_test(burst_tail_rto_deferred),
		cmocka_unit_test(silent_receiver_one_probe),
		cmocka_unit_test(silent_wake_on_peer_heard),
		cmocka_unit_test(idle_engine_returns_buffers),
		cmocka_unit_test(rings_grow_with_use_and_shrink),
		cmocka_unit_test(isolated_timeout_vs_flight),
		cmocka_unit_test(pair_zero_window_probe),
		cmocka_unit_test(dead_link_after_n_transmissions),
		cmocka_unit_test(deadline_exact),
		cmocka_unit_test(wraparound_sn_and_clock),
		cmocka_unit_test(random_ops_match_byte_fifo),
		cmocka_unit_test(config_presets_and_checks),
		cmocka_unit_test(memory_bounded_with_stalled_peer),
		cmocka_unit_test(dup_thin_sends_two_datagrams),
		cmocka_unit_test(dup_thin_not_for_bulk),
		cmocka_unit_test(dup_thin_receiver_and_congestion),
		cmocka_unit_test(early_taken_skipped_left_in_order),
		cmocka_unit_test(early_pair_exactly_once),
		cmocka_unit_test(reserve_commit_same_wire),
		cmocka_unit_test(reserve_refused),
		cmocka_unit_test(reserve_abandoned),
		cmocka_unit_test(seeded_rtt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
