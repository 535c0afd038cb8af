/* sim_mux.c - two mux endpoints over two KCP engines (stream mode) through
 * netsim links, on virtual time. Every byte is a function of (stream,
 * direction, offset) and is checked where it is read. Seeded; a failing
 * seed reproduces exactly.
 *
 * The client app opens flows (one stream each), uploads `up` bytes then
 * shuts down; the server app replies, downloads `down` bytes then shuts
 * down. Flags change that script per flow (stall the reader, upload only
 * after the download ended, reset at a time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "base/rd.h"
#include "base/rng.h"
#include "core/kcp.h"
#include "core/mux.h"
#include "core/netsim.h"
#include "core/profile.h"
#include "core/tparams.h"
#include "core/transport.h"

enum { MAXF = 128, BUFSZ = 65536, CHUNK = 16384 };

static const uint8_t req5[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
static const uint8_t rep5[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

struct flow {
	uint32_t id;
	uint64_t up, down; /* bytes each way */
	uint64_t up_sent, up_rcvd, down_sent, down_rcvd;
	bool opened, replied_s, replied_c, c_shut, s_shut, c_eof, s_eof;
	bool c_stall;            /* the client never reads the download */
	bool up_after_eof;       /* upload starts once the download ended */
	bool down_after_up;      /* download starts once the upload arrived */
	bool reset_c, reset_s;   /* a side saw a RESET event */
	uint8_t reason_c;        /* the reason the client saw */
	uint64_t reset_at;       /* the client resets at this time (0: no) */
	uint64_t t_open, t_done; /* virtual ms */
	bool watch;              /* count what the server mux sends before it */
};

struct end {
	struct kcp *k;
	struct mux *m;
	bool sd;                 /* per-stream delivery (mux step 10) */
	size_t mss;              /* with sd: the largest message */
	struct netsim_link *out; /* borrowed: the link towards the peer */
	uint64_t *now;           /* borrowed: the world's clock */
};

/* Head-of-line recording (hol_under_loss): what reached the client's KCP
 * and when, and the byte stream it delivered, for an offline comparison
 * with per-stream delivery. */
enum { HOL_SEGS = 1 << 16, HOL_BYTES = 64 << 20 };
struct hol_frame { /* per-stream delivery: a DATA_AT frame's first arrival */
	uint32_t id, len;
	uint64_t off, at;
};

struct hol_read { /* per-stream delivery: the client read stream id up to end */
	uint32_t id;
	uint64_t end, at;
};

struct hol {
	uint64_t arrive[HOL_SEGS]; /* first arrival of PUSH sn, ms; UINT64_MAX: not yet */
	uint32_t len[HOL_SEGS];    /* its payload bytes */
	uint8_t *log;              /* owned: the KCP byte stream as delivered */
	size_t log_len;
	struct hol_frame fr[HOL_SEGS * 2]; /* per-stream delivery: frames arrived */
	struct hol_read rd[HOL_SEGS * 2];  /* ... and the client's reads */
	size_t nfr, nrd;
};

struct world {
	uint64_t now;
	struct hol *hol; /* owned; NULL unless recording */
	struct end c, s;
	struct netsim_link *c2s, *s2c;
	struct flow f[MAXF];
	size_t nf;
	struct flow *by_id[MAXF * 2];
	uint64_t rtt_sum, pongs;
	struct flow *watch;   /* a response whose first DATA frame we wait for */
	uint64_t watch_ahead; /* bytes the server mux emitted before it */
	uint64_t ahead_max;   /* the largest watch_ahead seen */
	uint8_t buf[BUFSZ];
};

static uint8_t pattern(uint32_t id, int dir, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)id << 8 | (uint64_t)dir);
	return (uint8_t)(x >> 29 ^ x >> 7);
}

static int out_cb(const uint8_t *d, size_t len, void *user)
{
	struct end *e = user;
	return netsim_link_send(e->out, d, len, *e->now);
}

/* --- setup ------------------------------------------------------------------ */

struct setup {
	double loss;
	uint32_t delay_ms, jitter_ms;
	uint64_t rate;
	uint32_t c_streams, s_streams;
	uint64_t seed;
	bool tunnel; /* KCP and mux as the daemons run them (profile default) */
	bool sd;     /* ... with per-stream delivery agreed (feature 5) */
};

/* Stream window of both ends: sized for this small path (KCP window 32),
 * well below the tunnel default. */
enum { SIM_WINDOW = 256 * 1024 };

/* tunnel_init configures e as the daemons do with the built-in profile
 * `default` (transport_kcp, transport_mux), except that KCP sends and
 * acknowledges at once: this world steps a millisecond at a time and has
 * no batch to flush at its end (session E6). */
static void tunnel_init(struct world *w, struct end *e, enum mux_role role, struct netsim_link *out,
                        bool sd)
{
	struct transport_params tp;
	struct transport_local lo;
	struct kcp_config kc;
	struct mux_config mc;

	transport_proposal(profile_default(), &tp);
	if (sd)
		tp.features |= TPARAMS_FEAT_STREAM_DELIVERY;
	transport_local_of(profile_default(), &lo);
	transport_kcp(&kc, &tp, &lo, role == MUX_SERVER);
	kc.flush_on_send = true;
	kc.ack_immediate = true;
	transport_mux(profile_default(), 0, &mc);
	e->out = out;
	e->now = &w->now;
	assert_int_equal(kcp_new(&e->k, 1, &kc, 0, out_cb, e), 0);
	assert_int_equal(mux_new(&e->m, role, &mc), 0);
	e->sd = sd;
	e->mss = kc.mtu - KCP_HEADER_LEN;
	if (sd)
		mux_stream_delivery(e->m);
}

static void end_init(struct world *w, struct end *e, enum mux_role role, uint32_t streams,
                     struct netsim_link *out)
{
	struct kcp_config kc;
	struct mux_config mc;

	kcp_config_default(&kc);
	assert_int_equal(kcp_config_preset(&kc, "fast3"), 0);
	kc.stream = true;
	kc.snd_wnd = 32; /* about the path's bandwidth-delay product */
	kc.rcv_wnd = 256;
	kc.snd_queue = 8; /* what waits below the mux stays small */
	mux_config_default(&mc);
	mc.window = SIM_WINDOW;
	mc.max_streams = streams;
	e->out = out;
	e->now = &w->now;
	assert_int_equal(kcp_new(&e->k, 1, &kc, 0, out_cb, e), 0);
	assert_int_equal(mux_new(&e->m, role, &mc), 0);
}

static struct world *world_new(const struct setup *su)
{
	struct world *w = calloc(1, sizeof *w);
	struct netsim_config nc = { .loss = su->loss,
		                    .delay_ms = su->delay_ms,
		                    .jitter_ms = su->jitter_ms,
		                    .rate = su->rate,
		                    .queue_bytes = 128 * 1024 };

	assert_non_null(w);
	assert_int_equal(netsim_link_new(&w->c2s, &nc, su->seed * 2 + 1), 0);
	assert_int_equal(netsim_link_new(&w->s2c, &nc, su->seed * 2 + 2), 0);
	if (su->tunnel) {
		tunnel_init(w, &w->c, MUX_CLIENT, w->c2s, su->sd);
		tunnel_init(w, &w->s, MUX_SERVER, w->s2c, su->sd);
	} else {
		end_init(w, &w->c, MUX_CLIENT, su->c_streams, w->c2s);
		end_init(w, &w->s, MUX_SERVER, su->s_streams, w->s2c);
	}
	return w;
}

static void world_free(struct world *w)
{
	if (w->hol)
		free(w->hol->log);
	free(w->hol);
	kcp_free(w->c.k);
	kcp_free(w->s.k);
	mux_free(w->c.m);
	mux_free(w->s.m);
	netsim_link_free(w->c2s);
	netsim_link_free(w->s2c);
	free(w);
}

static struct flow *add_flow(struct world *w, uint64_t up, uint64_t down)
{
	struct flow *f = &w->f[w->nf++];

	assert_true(w->nf <= MAXF);
	*f = (struct flow){ .up = up, .down = down };
	return f;
}

/* open_flow opens f now; false if the client's own limit refused it. */
static bool open_flow(struct world *w, struct flow *f)
{
	int rc = mux_open_stream(w->c.m, req5, sizeof req5, &f->id);

	if (rc == KS_ERR_LIMIT)
		return false;
	assert_int_equal(rc, 0);
	assert_true(f->id < MAXF * 2);
	w->by_id[f->id] = f;
	f->opened = true;
	f->t_open = w->now;
	return true;
}

/* --- the two applications ------------------------------------------------ */

/* drain reads side m of f (the client when client is true) and checks bytes. */
static void drain(struct world *w, struct mux *m, struct flow *f, bool client)
{
	uint64_t *got = client ? &f->down_rcvd : &f->up_rcvd;
	uint64_t want = client ? f->down : f->up;
	int dir = client ? 1 : 0;
	ssize_t n;

	while ((n = mux_stream_read(m, f->id, w->buf, sizeof w->buf)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (w->buf[i] != pattern(f->id, dir, *got + (uint64_t)i))
				fail_msg("stream %u dir %d byte %llu wrong", f->id, dir,
				         (unsigned long long)(*got + (uint64_t)i));
		*got += (uint64_t)n;
		assert_true(*got <= want);
		if (client && w->hol && w->c.sd) {
			assert_true(w->hol->nrd < HOL_SEGS * 2);
			w->hol->rd[w->hol->nrd++] = (struct hol_read){ f->id, *got, w->now };
		}
	}
	if (n == 0) {
		assert_int_equal(*got, want);
		*(client ? &f->c_eof : &f->s_eof) = true;
	}
}

/* push writes f's next bytes in direction dir (0 up, 1 down) from mux m. */
static void push(struct world *w, struct mux *m, struct flow *f, int dir)
{
	uint64_t *sent = dir ? &f->down_sent : &f->up_sent, total = dir ? f->down : f->up;
	bool *shut = dir ? &f->s_shut : &f->c_shut;

	while (*sent < total) {
		size_t n = total - *sent < CHUNK ? (size_t)(total - *sent) : CHUNK;
		ssize_t k;

		for (size_t i = 0; i < n; i++)
			w->buf[i] = pattern(f->id, dir, *sent + i);
		k = mux_stream_write(m, f->id, w->buf, n);
		if (k == KS_ERR_FULL)
			return;
		assert_true(k > 0);
		*sent += (uint64_t)k;
	}
	if (!*shut) {
		assert_int_equal(mux_stream_shutdown(m, f->id), 0);
		*shut = true;
	}
}

static bool flow_done(const struct flow *f)
{
	return (f->c_eof && f->s_eof && f->c_shut && f->s_shut) || f->reset_c;
}

static void client_app(struct world *w)
{
	struct mux_event ev;

	while (mux_next_event(w->c.m, &ev) == 0) {
		struct flow *f = w->by_id[ev.id];

		if (ev.type == MUX_EV_PONG) {
			w->rtt_sum += ev.rtt_ms;
			w->pongs++;
			continue;
		}
		assert_non_null(f);
		if (ev.type == MUX_EV_REPLY) {
			assert_memory_equal(ev.data, rep5, sizeof rep5);
			f->replied_c = true;
		} else if (ev.type == MUX_EV_RESET) {
			f->reset_c = true;
			f->reason_c = ev.reason;
		} else if ((ev.type == MUX_EV_READABLE || ev.type == MUX_EV_FIN) && !f->c_stall) {
			drain(w, w->c.m, f, true);
		}
	}
	for (size_t i = 0; i < w->nf; i++) {
		struct flow *f = &w->f[i];
		if (f->c_eof && f->c_shut && !f->t_done)
			f->t_done = w->now;
		if (!f->opened || f->reset_c || flow_done(f))
			continue;
		if (f->reset_at && w->now >= f->reset_at) {
			assert_int_equal(mux_stream_reset(w->c.m, f->id, MUX_RST_CANCEL), 0);
			f->reset_c = true;
			continue;
		}
		if (f->replied_c && (!f->up_after_eof || f->c_eof))
			push(w, w->c.m, f, 0);
	}
}

static void server_app(struct world *w)
{
	struct mux_event ev;

	while (mux_next_event(w->s.m, &ev) == 0) {
		struct flow *f = ev.id < MAXF * 2 ? w->by_id[ev.id] : NULL;

		assert_non_null(f);
		if (ev.type == MUX_EV_OPEN) {
			assert_memory_equal(ev.data, req5, sizeof req5);
			assert_int_equal(mux_stream_reply(w->s.m, f->id, rep5, sizeof rep5), 0);
			f->replied_s = true;
		} else if (ev.type == MUX_EV_RESET) {
			f->reset_s = true;
		} else if (ev.type == MUX_EV_READABLE || ev.type == MUX_EV_FIN) {
			drain(w, w->s.m, f, false);
		}
	}
	for (size_t i = 0; i < w->nf; i++) {
		struct flow *f = &w->f[i];
		if (f->replied_s && !f->reset_s && (!f->down_after_up || f->up_rcvd == f->up)) {
			if (f->watch && f->down_sent == 0) {
				w->watch = f;
				w->watch_ahead = 0;
			}
			push(w, w->s.m, f, 1);
		}
	}
}

/* --- the clock ------------------------------------------------------------- */

/* hol_frames_of notes the DATA_AT frames of a message's first arrival. */
static void hol_frames_of(struct world *w, const uint8_t *p, size_t len)
{
	struct mux_frame f;
	ssize_t k;

	for (size_t off = 0; off < len; off += (size_t)k) {
		struct rd r;
		uint64_t at = 0;

		k = mux_frame_decode(p + off, len - off, &f);
		assert_true(k > 0);
		if (f.type != MUX_DATA_AT)
			continue;
		r = rd_init(f.payload, f.len);
		assert_true(rd_u64be(&r, &at));
		assert_true(w->hol->nfr < HOL_SEGS * 2);
		w->hol->fr[w->hol->nfr++] =
		        (struct hol_frame){ f.id, (uint32_t)rd_left(&r), at, w->now };
	}
}

/* hol_arrivals notes the first arrival of each PUSH segment in d. */
static void hol_arrivals(struct world *w, const uint8_t *d, size_t n)
{
	struct rd r = rd_init(d, n);
	uint32_t conv, ts, sn, una, len;
	uint16_t wnd;
	uint8_t cmd, frg;

	while (rd_u32le(&r, &conv) && rd_u8(&r, &cmd) && rd_u8(&r, &frg) && rd_u16le(&r, &wnd) &&
	       rd_u32le(&r, &ts) && rd_u32le(&r, &sn) && rd_u32le(&r, &una) && rd_u32le(&r, &len) &&
	       rd_skip(&r, len)) {
		if (cmd != KCP_CMD_PUSH)
			continue;
		assert_true(sn < HOL_SEGS);
		if (w->hol->arrive[sn] == UINT64_MAX) {
			w->hol->arrive[sn] = w->now;
			w->hol->len[sn] = len;
			if (w->c.sd)
				hol_frames_of(w, r.p - len, len);
		}
	}
}

static void deliver(struct world *w, struct netsim_link *l, struct end *to)
{
	ssize_t n;

	while ((n = netsim_link_recv(l, w->now, w->buf, sizeof w->buf)) >= 0) {
		int rc;

		if (w->hol && to == &w->c)
			hol_arrivals(w, w->buf, (size_t)n);
		rc = kcp_input(to->k, w->buf, (size_t)n, w->now);
		assert_int_equal(rc, 0);
	}
}

/* pull moves KCP's received bytes into the mux. */
static void pull(struct world *w, struct end *e)
{
	ssize_t n;

	while ((n = kcp_recv(e->k, w->buf, sizeof w->buf)) > 0) {
		if (w->hol && e == &w->c && !e->sd) {
			assert_true(w->hol->log_len + (size_t)n <= HOL_BYTES);
			memcpy(w->hol->log + w->hol->log_len, w->buf, (size_t)n);
			w->hol->log_len += (size_t)n;
		}
		assert_int_equal(mux_input(e->m, w->buf, (size_t)n, w->now), 0);
	}
	if (e->sd) { /* mux step 10: what arrived above a hole, as the session does */
		const uint8_t *p;
		size_t len;
		uint32_t sn;

		while (kcp_early_peek(e->k, &sn, &p, &len) == 0) {
			int rc = mux_input_early(e->m, p, len, w->now);
			assert_true(rc == 0 || rc == 1);
			kcp_early_done(e->k, rc == 1);
		}
	}
}

/* watch_frames counts the bytes the server mux puts ahead of the first
 * DATA frame of the watched response: the mux's own scheduling delay. */
static void watch_frames(struct world *w, size_t len)
{
	struct mux_frame f;
	ssize_t k;

	for (size_t off = 0; off < len && w->watch; off += (size_t)k) {
		k = mux_frame_decode(w->buf + off, len - off, &f);
		assert_true(k > 0);
		if (f.id == w->watch->id && f.type == MUX_DATA) {
			if (w->watch_ahead > w->ahead_max)
				w->ahead_max = w->watch_ahead;
			w->watch = NULL;
		} else {
			w->watch_ahead += (uint64_t)k;
		}
	}
}

/* feed hands KCP only what it takes now: the mux never gets ahead of it. */
static void feed(struct world *w, struct end *e)
{
	for (;;) {
		size_t room = kcp_send_room(e->k);
		ssize_t n;

		room = room < sizeof w->buf ? room : sizeof w->buf;
		room = e->sd && room > e->mss ? e->mss : room;
		n = mux_produce(e->m, w->buf, room, w->now);
		assert_true(n >= 0);
		if (n == 0)
			return;
		if (e == &w->s && w->watch)
			watch_frames(w, (size_t)n);
		assert_int_equal(kcp_send(e->k, w->buf, (size_t)n, w->now), n);
	}
}

static void step(struct world *w)
{
	deliver(w, w->c2s, &w->s);
	deliver(w, w->s2c, &w->c);
	pull(w, &w->c);
	pull(w, &w->s);
	client_app(w);
	server_app(w);
	feed(w, &w->c);
	feed(w, &w->s);
	kcp_update(w->c.k, w->now);
	kcp_update(w->s.k, w->now);
	assert_false(kcp_is_dead(w->c.k) || kcp_is_dead(w->s.k));
	w->now++;
}

static bool all_done(const struct world *w)
{
	for (size_t i = 0; i < w->nf; i++)
		if (w->f[i].opened && !flow_done(&w->f[i]))
			return false;
	return true;
}

static void run_until_done(struct world *w, uint64_t limit)
{
	while (!all_done(w) && w->now < limit)
		step(w);
	if (!all_done(w))
		fail_msg("not done by %llu ms", (unsigned long long)limit);
	for (int i = 0; i < 2000; i++) /* let the last FINs and RSTs land */
		step(w);
}

static size_t mux_mem(const struct world *w)
{
	return mux_mem_bytes(w->c.m) + mux_mem_bytes(w->s.m);
}

static size_t mem_total(const struct world *w)
{
	return mux_mem(w) + kcp_mem_bytes(w->c.k) + kcp_mem_bytes(w->s.k);
}

static const struct setup base = {
	.delay_ms = 20, .rate = 1000000, .c_streams = 256, .s_streams = 256, .seed = 1
};

/* --- scenarios --------------------------------------------------------------- */

static void hundred_streams_every_byte(void **state)
{
	(void)state;
	static const double losses[] = { 0, 0.02 };

	for (size_t li = 0; li < 2; li++) {
		struct setup su = base;
		struct world *w;
		struct prng g;
		size_t c0, s0;
		uint64_t bytes = 0;

		su.loss = losses[li];
		su.jitter_ms = 5;
		su.seed = 100 + li;
		w = world_new(&su);
		c0 = mux_mem_bytes(w->c.m);
		s0 = mux_mem_bytes(w->s.m);
		prng_seed(&g, su.seed);
		for (int i = 0; i < 100; i++) {
			struct flow *f = add_flow(w, prng_below(&g, 20000), prng_below(&g, 100000));
			bytes += f->up + f->down;
			assert_true(open_flow(w, f));
		}
		run_until_done(w, 300000);
		for (size_t i = 0; i < w->nf; i++) {
			assert_false(w->f[i].reset_c || w->f[i].reset_s);
			assert_int_equal(w->f[i].up_rcvd, w->f[i].up);
			assert_int_equal(w->f[i].down_rcvd, w->f[i].down);
		}
		assert_int_equal(mux_stream_count(w->c.m), 0);
		assert_int_equal(mux_stream_count(w->s.m), 0);
		assert_int_equal(mux_mem_bytes(w->c.m), c0);
		assert_int_equal(mux_mem_bytes(w->s.m), s0);
		printf("# 100 streams, %llu bytes, loss %.0f%%: done in %llu ms\n",
		       (unsigned long long)bytes, su.loss * 100, (unsigned long long)w->now - 2000);
		world_free(w);
	}
}

static void stalled_reader_stops_only_itself(void **state)
{
	(void)state;
	struct setup su = base;
	struct world *w = world_new(&su);
	struct flow *stalled = add_flow(w, 0, 64u << 20), *small;
	size_t mux_early = 0, mux_late = 0, peak = 0;
	uint64_t held;

	stalled->c_stall = true;
	assert_true(open_flow(w, stalled));
	while (w->now < 3000) {
		step(w);
		if (w->now > 1500)
			mux_early = mux_mem(w) > mux_early ? mux_mem(w) : mux_early;
	}
	/* The stalled stream holds one window at the client and no more. */
	assert_true(stalled->down_sent <= SIM_WINDOW + MUX_SNDBUF_DEFAULT);
	held = stalled->down_sent;
	small = add_flow(w, 300, 2000);
	small->down_after_up = true;
	assert_true(open_flow(w, small));
	while (!small->t_done && w->now < 10000)
		step(w);
	assert_true(small->t_done);
	assert_int_equal(small->down_rcvd, 2000);
	/* Generous: a few RTTs (40 ms each), nothing like the stalled bulk. */
	assert_true(small->t_done - small->t_open <= 400);
	while (w->now < 8000) {
		step(w);
		mux_late = mux_mem(w) > mux_late ? mux_mem(w) : mux_late;
		peak = mem_total(w) > peak ? mem_total(w) : peak;
	}
	/* The mux's memory is flat while the reader stays stalled, the
	 * stalled stream takes nothing more, and the whole stack stays under
	 * a fixed bound (KCP's part is bounded by its windows). */
	assert_int_equal(mux_late, mux_early);
	assert_int_equal(stalled->down_sent, held);
	assert_true(peak < 1u << 20);
	printf("# stalled reader: small request done in %llu ms; memory mux %zu, mux+kcp %zu "
	       "bytes (stalled stream holds %llu of %llu bytes)\n",
	       (unsigned long long)(small->t_done - small->t_open), mux_late, peak,
	       (unsigned long long)held, (unsigned long long)stalled->down);
	world_free(w);
}

static void half_close_both_directions(void **state)
{
	(void)state;
	struct setup su = base;
	struct world *w;
	struct flow *a, *b;

	su.loss = 0.01;
	w = world_new(&su);
	/* a: the client shuts down first, the download goes on after it. */
	a = add_flow(w, 1000, 300000);
	/* b: the server sends everything and shuts down; only then does the
	 * client upload, into the half-open stream. */
	b = add_flow(w, 300000, 1000);
	b->up_after_eof = true;
	assert_true(open_flow(w, a));
	assert_true(open_flow(w, b));
	run_until_done(w, 60000);
	assert_true(a->c_eof && a->s_eof && b->c_eof && b->s_eof);
	assert_int_equal(a->down_rcvd, 300000);
	assert_int_equal(b->up_rcvd, 300000);
	assert_int_equal(mux_stream_count(w->c.m), 0);
	assert_int_equal(mux_stream_count(w->s.m), 0);
	world_free(w);
}

static void reset_mid_transfer(void **state)
{
	(void)state;
	struct setup su = base;
	struct world *w;
	struct flow *a, *b;
	size_t c0, s0;

	su.loss = 0.01;
	w = world_new(&su);
	c0 = mux_mem_bytes(w->c.m);
	s0 = mux_mem_bytes(w->s.m);
	a = add_flow(w, 100000, 4u << 20);
	a->reset_at = 700;
	b = add_flow(w, 100000, 1u << 20);
	assert_true(open_flow(w, a));
	assert_true(open_flow(w, b));
	run_until_done(w, 60000);
	assert_true(a->reset_s); /* the server learnt of it */
	assert_true(a->down_rcvd > 0 && a->down_rcvd < a->down);
	assert_true(b->c_eof && b->s_eof && !b->reset_c && !b->reset_s);
	assert_int_equal(b->down_rcvd, b->down);
	assert_int_equal(mux_stream_count(w->c.m), 0);
	assert_int_equal(mux_stream_count(w->s.m), 0);
	assert_int_equal(mux_mem_bytes(w->c.m), c0);
	assert_int_equal(mux_mem_bytes(w->s.m), s0);
	world_free(w);
}

static void stream_limit_refusal(void **state)
{
	(void)state;
	struct setup su = base;
	struct world *w;
	int refused = 0, done = 0;

	su.c_streams = 16;
	su.s_streams = 8;
	w = world_new(&su);
	for (int i = 0; i < 12; i++)
		assert_true(open_flow(w, add_flow(w, 5000, 50000)));
	run_until_done(w, 60000);
	for (size_t i = 0; i < w->nf; i++) {
		if (w->f[i].reset_c) {
			assert_int_equal(w->f[i].reason_c, MUX_RST_LIMIT);
			assert_false(w->f[i].replied_s);
			refused++;
		} else {
			assert_int_equal(w->f[i].down_rcvd, 50000);
			done++;
		}
	}
	assert_int_equal(refused, 4);
	assert_int_equal(done, 8);
	/* The slots come back: four more open and complete. */
	for (int i = 0; i < 4; i++)
		assert_true(open_flow(w, add_flow(w, 100, 1000)));
	run_until_done(w, w->now + 30000);
	for (size_t i = 12; i < w->nf; i++)
		assert_true(w->f[i].c_eof && !w->f[i].reset_c);
	/* The client's own limit is a clean KS_ERR_LIMIT. */
	for (int i = 0; i < 16; i++)
		assert_true(open_flow(w, add_flow(w, 0, 0)));
	assert_false(open_flow(w, add_flow(w, 0, 0)));
	w->nf--;
	world_free(w);
}

/* measure: a 1000-byte request and a 4000-byte answer (sent once the
 * request is in) every 250 ms, alone or beside a bulk download that the
 * client reads at full speed. */
struct figures {
	uint64_t lat[3];    /* min, median, max ms from open to the answer's end */
	uint64_t ahead_max; /* bytes the server mux sent ahead of an answer */
	uint64_t bulk_kbps; /* the bulk download's goodput, KB/s */
};

static void sort_u64(uint64_t *v, int n)
{
	for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void measure(double loss, bool with_bulk, struct figures *fg)
{
	struct setup su = base;
	struct world *w;
	struct flow *bulk = NULL;
	uint64_t lat[20];
	int n = 0;

	su.loss = loss;
	su.seed = 7;
	w = world_new(&su);
	if (with_bulk) {
		bulk = add_flow(w, 0, 1u << 30);
		assert_true(open_flow(w, bulk));
	}
	while (w->now < 1000)
		step(w);
	while (n < 20) {
		struct flow *f = add_flow(w, 1000, 4000);
		uint64_t start = w->now;

		f->down_after_up = true;
		f->watch = true;
		assert_true(open_flow(w, f));
		while (!f->t_done && w->now < start + 20000)
			step(w);
		assert_true(f->t_done);
		lat[n++] = f->t_done - f->t_open;
		while (w->now < start + 250)
			step(w);
	}
	sort_u64(lat, n);
	fg->lat[0] = lat[0];
	fg->lat[1] = lat[n / 2];
	fg->lat[2] = lat[n - 1];
	fg->ahead_max = w->ahead_max;
	fg->bulk_kbps = bulk ? bulk->down_rcvd / w->now : 0;
	world_free(w);
}

static void latency_beside_bulk(void **state)
{
	(void)state;
	static const double losses[] = { 0, 0.05 };

	printf("# small request (1000 B up, then 4000 B down; OPEN/REPLY included), RTT 40 ms, "
	       "1 MB/s each way, kcp fast3 snd_wnd 32: min/median/max ms of 20\n");
	for (size_t i = 0; i < 2; i++) {
		struct figures alone, beside;

		measure(losses[i], false, &alone);
		measure(losses[i], true, &beside);
		printf("# loss %2.0f%%: alone %llu/%llu/%llu; beside a bulk download "
		       "%llu/%llu/%llu (bulk %llu KB/s; mux sent at most %llu bytes "
		       "ahead of an answer)\n",
		       losses[i] * 100, (unsigned long long)alone.lat[0],
		       (unsigned long long)alone.lat[1], (unsigned long long)alone.lat[2],
		       (unsigned long long)beside.lat[0], (unsigned long long)beside.lat[1],
		       (unsigned long long)beside.lat[2], (unsigned long long)beside.bulk_kbps,
		       (unsigned long long)beside.ahead_max);
		/* The mux itself puts at most about one quantum ahead of the
		 * answer; the rest is the path and KCP's window. Generous
		 * behaviour bounds: the bulk stream costs a few RTTs at most,
		 * never its own length (seconds). */
		assert_true(beside.ahead_max <= 2 * (MUX_QUANTUM_DEFAULT + MUX_HDR_LEN));
		assert_true(beside.lat[1] <= alone.lat[1] + 400);
		assert_true(beside.lat[2] <= 3000);
		assert_true(beside.bulk_kbps >= 500);
	}
}

static void ping_over_kcp(void **state)
{
	(void)state;
	struct setup su = base;
	struct world *w = world_new(&su);

	for (int i = 0; i < 5; i++) {
		assert_int_equal(mux_ping(w->c.m), 0);
		for (int k = 0; k < 200; k++)
			step(w);
	}
	assert_int_equal(w->pongs, 5);
	/* 40 ms path RTT; KCP may add its flush interval. */
	assert_true(w->rtt_sum / w->pongs >= 40 && w->rtt_sum / w->pongs <= 80);
	world_free(w);
}

/* --- head-of-line blocking under loss (issue 19) ---------------------------- */

struct hol_rec {
	uint64_t extra; /* ms a DATA frame waited for other streams' holes */
	uint32_t bytes; /* its payload */
};

struct hol_fig {
	uint64_t p50, p90, p99, max; /* extra delay by byte, ms */
	double mean;                 /* ms per byte */
	double delayed;              /* share of the bytes that waited at all */
	uint64_t lost;               /* datagrams the download's link lost */
};

static int cmp_rec(const void *a, const void *b)
{
	const struct hol_rec *x = a, *y = b;
	return x->extra < y->extra ? -1 : x->extra > y->extra;
}

/* seg_of: the segment holding byte offset `off` of the KCP stream. */
static uint32_t seg_of(const uint64_t *start, uint32_t nseg, uint64_t off)
{
	uint32_t lo = 0, hi = nseg;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (start[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* hol_frames walks the delivered byte stream frame by frame. A DATA frame
 * was delivered (KCP is one ordered stream) when every segment up to its
 * last had arrived; with per-stream delivery it would have been delivered
 * when its own segments and every earlier frame of its stream had. The
 * difference is its head-of-line delay. Returns the number of records. */
static size_t hol_frames(const struct hol *h, const uint64_t *start, uint32_t nseg,
                         const uint64_t *inorder, struct hol_rec *rec)
{
	uint64_t ideal[MAXF * 2] = { 0 };
	struct mux_frame f;
	size_t nrec = 0;
	ssize_t k;

	for (size_t off = 0; off < h->log_len; off += (size_t)k) {
		uint32_t s0, s1;
		uint64_t arr = 0;

		k = mux_frame_decode(h->log + off, h->log_len - off, &f);
		assert_true(k > 0);
		if (f.type != MUX_DATA)
			continue;
		assert_true(f.id < MAXF * 2);
		s0 = seg_of(start, nseg, off);
		s1 = seg_of(start, nseg, off + (size_t)k - 1);
		for (uint32_t sn = s0; sn <= s1; sn++)
			arr = arr > h->arrive[sn] ? arr : h->arrive[sn];
		ideal[f.id] = ideal[f.id] > arr ? ideal[f.id] : arr;
		assert_true(inorder[s1] >= ideal[f.id]);
		rec[nrec++] = (struct hol_rec){ inorder[s1] - ideal[f.id], f.len };
	}
	return nrec;
}

static void hol_figures(struct hol_rec *rec, size_t nrec, struct hol_fig *fg);

static void hol_analyse(const struct hol *h, struct hol_fig *fg)
{
	uint32_t nseg = 0;
	uint64_t *start, *inorder;
	struct hol_rec *rec;
	size_t nrec;

	while (nseg < HOL_SEGS && h->arrive[nseg] != UINT64_MAX)
		nseg++;
	start = malloc(((size_t)nseg + 1) * sizeof *start);
	inorder = malloc(((size_t)nseg + 1) * sizeof *inorder);
	rec = malloc(h->log_len / MUX_HDR_LEN * sizeof *rec);
	assert_true(start && inorder && rec);
	start[0] = 0;
	for (uint32_t sn = 0; sn < nseg; sn++) {
		start[sn + 1] = start[sn] + h->len[sn];
		inorder[sn] =
		        sn && inorder[sn - 1] > h->arrive[sn] ? inorder[sn - 1] : h->arrive[sn];
	}
	assert_true(start[nseg] >= h->log_len);
	nrec = hol_frames(h, start, nseg, inorder, rec);
	hol_figures(rec, nrec, fg);
	free(start);
	free(inorder);
	free(rec);
}

/* hol_figures: the delay by byte of nrec records (sorted here). */
static void hol_figures(struct hol_rec *rec, size_t nrec, struct hol_fig *fg)
{
	uint64_t total = 0, acc = 0, late = 0;
	double sum = 0;

	qsort(rec, nrec, sizeof *rec, cmp_rec);
	for (size_t i = 0; i < nrec; i++) {
		total += rec[i].bytes;
		sum += (double)rec[i].extra * rec[i].bytes;
		late += rec[i].extra ? rec[i].bytes : 0;
	}
	fg->p50 = fg->p90 = fg->p99 = 0;
	for (size_t i = 0; i < nrec; i++) {
		acc += rec[i].bytes;
		if (!fg->p50 && acc * 2 >= total)
			fg->p50 = rec[i].extra + 1;
		if (!fg->p90 && acc * 10 >= total * 9)
			fg->p90 = rec[i].extra + 1;
		if (!fg->p99 && acc * 100 >= total * 99)
			fg->p99 = rec[i].extra + 1;
	}
	/* (+1 above told "found" from "0 ms"; take it back) */
	fg->p50--, fg->p90--, fg->p99--;
	fg->max = nrec ? rec[nrec - 1].extra : 0;
	fg->mean = total ? sum / (double)total : 0;
	fg->delayed = total ? (double)late / (double)total : 0;
}

static int cmp_frame(const void *a, const void *b)
{
	const struct hol_frame *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_read(const void *a, const void *b)
{
	const struct hol_read *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* hol_analyse_sd: with per-stream delivery, from the real mux: a DATA_AT
 * frame was delivered when the client read its last byte; it could have
 * been when it and every earlier frame of its stream had arrived. */
static void hol_analyse_sd(struct hol *h, struct hol_fig *fg)
{
	struct hol_rec *rec = malloc((h->nfr + 1) * sizeof *rec);
	uint64_t ideal = 0;
	size_t j = 0;

	assert_non_null(rec);
	qsort(h->fr, h->nfr, sizeof *h->fr, cmp_frame);
	qsort(h->rd, h->nrd, sizeof *h->rd, cmp_read);
	for (size_t i = 0; i < h->nfr; i++) {
		const struct hol_frame *f = &h->fr[i];

		if (i == 0 || h->fr[i - 1].id != f->id)
			ideal = 0;
		ideal = ideal > f->at ? ideal : f->at;
		while (j < h->nrd && (h->rd[j].id < f->id ||
		                      (h->rd[j].id == f->id && h->rd[j].end < f->off + f->len)))
			j++;
		assert_true(j < h->nrd && h->rd[j].id == f->id);
		assert_true(h->rd[j].at >= ideal);
		rec[i] = (struct hol_rec){ h->rd[j].at - ideal, f->len };
	}
	hol_figures(rec, h->nfr, fg);
	free(rec);
}

/* hol_run: n parallel downloads of `each` bytes through KCP and the mux as
 * the daemons configure them, over a path of delay_ms each way and `loss`
 * both ways (no rate limit: what is measured is the ordering, not a
 * queue), recording what reached the client. */
static void hol_run(double loss, uint32_t delay_ms, size_t n, uint64_t each, uint64_t seed, bool sd,
                    struct hol_fig *fg)
{
	struct setup su = {
		.loss = loss, .delay_ms = delay_ms, .tunnel = true, .seed = seed, .sd = sd
	};
	struct world *w = world_new(&su);
	struct netsim_stats ns;

	w->hol = calloc(1, sizeof *w->hol);
	assert_non_null(w->hol);
	w->hol->log = malloc(HOL_BYTES);
	assert_non_null(w->hol->log);
	for (size_t i = 0; i < HOL_SEGS; i++)
		w->hol->arrive[i] = UINT64_MAX;
	for (size_t i = 0; i < n; i++)
		assert_true(open_flow(w, add_flow(w, 0, each)));
	run_until_done(w, 120000);
	if (sd)
		hol_analyse_sd(w->hol, fg);
	else
		hol_analyse(w->hol, fg);
	netsim_link_stats(w->s2c, &ns);
	fg->lost = ns.lost_random;
	printf("# %s%zu streams x %llu KiB, loss %.0f%%, %u ms each way: %llu datagrams lost; "
	       "head-of-line delay by byte: p50 %llu p90 %llu p99 %llu max %llu ms, mean %.1f "
	       "ms, %.0f%% of the bytes waited; done at %llu ms\n",
	       sd ? "per-stream delivery: " : "", n, (unsigned long long)(each >> 10), loss * 100,
	       delay_ms, (unsigned long long)fg->lost, (unsigned long long)fg->p50,
	       (unsigned long long)fg->p90, (unsigned long long)fg->p99,
	       (unsigned long long)fg->max, fg->mean, fg->delayed * 100,
	       (unsigned long long)w->now);
	world_free(w);
}

/* Issue 19: how long a lost datagram holds back data of other streams,
 * which KCP's single ordered stream makes wait behind the hole; measured
 * against per-stream delivery of the same arrivals (docs/bench/
 * concurrency.md). Clean: nothing waits. With per-stream delivery agreed
 * (mux step 10, measured from the real mux: when the client read each
 * DATA_AT frame's last byte) nothing waits for another stream's hole. */
static void hol_under_loss(void **state)
{
	struct hol_fig clean, lossy, sd;

	(void)state;
	hol_run(0, 10, 32, 512 << 10, 81, false, &clean);
	assert_int_equal(clean.max, 0);
	hol_run(0.01, 10, 32, 512 << 10, 82, false, &lossy);
	assert_true(lossy.lost > 0);
	assert_true(lossy.max > 0);
	hol_run(0.01, 10, 32, 512 << 10, 82, true, &sd);
	assert_true(sd.lost > 0);
	assert_int_equal(sd.max, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hundred_streams_every_byte),
		cmocka_unit_test(stalled_reader_stops_only_itself),
		cmocka_unit_test(half_close_both_directions),
		cmocka_unit_test(reset_mid_transfer),
		cmocka_unit_test(stream_limit_refusal),
		cmocka_unit_test(latency_beside_bulk),
		cmocka_unit_test(ping_over_kcp),
		cmocka_unit_test(hol_under_loss),
	};
	if (getenv("SIM_FILTER")) /* one test alone: SIM_FILTER=hol_* */
		cmocka_set_test_filter(getenv("SIM_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
