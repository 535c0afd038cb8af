/* sim_kcp.c - two KCP engines through the link simulator, on virtual time.
 *
 * Each direction is one netsim link (loss, delay, jitter, reordering,
 * duplication). Stream runs move 16 MiB (fewer bytes under ASan) and check
 * every byte against a regenerated, position-keyed pseudo-random stream;
 * the message run checks sizes and contents of each message. Seeds are
 * fixed: a failure reproduces exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/minmax.h"
#include "base/rng.h"
#include "core/kcp.h"
#include "core/netsim.h"
#include "lib/kcpsim.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_ASAN 1
#endif
#endif

#ifdef SIM_ASAN
enum { STREAM_BYTES = 2 << 20, MESSAGES = 1000 };
#else
enum { STREAM_BYTES = 16 << 20, MESSAGES = 4000 };
#endif

enum { MAX_STEPS = 50000000 };

/* ------------------------------------------------------------------ */
/* harness                                                            */

/* The harness is tests/lib/kcpsim: A at a, B at b, the clock at now;
 * these wrappers assert where it reports errors. Start at 1000 ms. */
static void sim_init(struct kcpsim *s, const struct kcp_config *kc, const struct netsim_config *nc,
                     uint64_t seed)
{
	assert_int_equal(kcpsim_init(s, kc, nc, seed, 1000, 0x5eed), 0);
}

/* drain moves every datagram due on link l into engine k. */
static void drain(struct kcpsim *s, struct netsim_link *l, struct kcp *k)
{
	assert_int_equal(kcpsim_drain(s, l, k), 0);
}

/* sim_advance moves the clock to the next event (engine deadline or
 * datagram arrival) and processes everything due then; the caller's
 * application code then runs at that same instant. Returns false when
 * nothing at all is scheduled. */
static bool sim_advance(struct kcpsim *s)
{
	int rc;

	if (++s->steps > MAX_STEPS)
		fail_msg("simulation did not finish in %d steps", MAX_STEPS);
	rc = kcpsim_advance(s, KS_NEVER);
	assert_true(rc >= 0);
	if (rc == 0)
		return false;
	assert_true(kcp_next_deadline(s->a.k, s->now) > s->now);
	assert_true(kcp_next_deadline(s->b.k, s->now) > s->now);
	return true;
}

/* byte_at is the pseudo-random stream keyed by position, so the receiver
 * regenerates exactly what the sender wrote whatever the chunking. */
static uint8_t byte_at(uint64_t seed, uint64_t i)
{
	uint64_t z = (seed ^ (i >> 3)) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z ^= z >> 27;
	return (uint8_t)(z >> ((i & 7) * 8));
}

static void cfg_sim(struct kcp_config *c, bool stream)
{
	kcp_config_default(c);
	assert_int_equal(kcp_config_preset(c, "fast3"), 0);
	c->stream = stream;
	c->snd_wnd = 512;
	c->rcv_wnd = 512;
}

static void link_cfg(struct netsim_config *n, double loss)
{
	memset(n, 0, sizeof *n);
	n->loss = loss;
	n->delay_ms = 20;
	n->jitter_ms = 10;
	n->reorder = 0.05;
	n->reorder_ms = 30;
	n->dup = 0.02;
}

/* ------------------------------------------------------------------ */
/* stream: exact in-order delivery                                    */

/* write_all_n: write_all up to `total` bytes. */
static void write_all_n(struct kcpsim *s, uint64_t seed, uint64_t *sent, uint64_t total)
{
	static uint8_t chunk[1 << 16];

	while (*sent < total && kcp_send_room(s->a.k) > 0) {
		size_t n = kcp_send_room(s->a.k);

		n = n > sizeof chunk ? sizeof chunk : n;
		n = n > total - *sent ? (size_t)(total - *sent) : n;
		for (size_t i = 0; i < n; i++)
			chunk[i] = byte_at(seed, *sent + i);
		assert_int_equal(kcp_send(s->a.k, chunk, n, s->now), (ssize_t)n);
		*sent += n;
	}
}

/* write_all fills A's send queue with the next bytes of the stream. */
static void write_all(struct kcpsim *s, uint64_t seed, uint64_t *sent)
{
	write_all_n(s, seed, sent, STREAM_BYTES);
}

/* read_all takes everything B has in order and checks every byte. */
static void read_all(struct kcpsim *s, uint64_t seed, uint64_t *got)
{
	static uint8_t chunk[1 << 16];
	ssize_t r;

	while ((r = kcp_recv(s->b.k, chunk, sizeof chunk)) != KS_ERR_AGAIN) {
		assert_true(r > 0);
		for (ssize_t i = 0; i < r; i++)
			if (chunk[i] != byte_at(seed, *got + (uint64_t)i))
				fail_msg("byte %llu differs",
				         (unsigned long long)(*got + (uint64_t)i));
		*got += (uint64_t)r;
	}
}

static void report(const struct kcpsim *s, double loss, uint64_t got)
{
	struct kcp_stats sa, sb;
	struct netsim_stats ns;

	kcp_stats(s->a.k, &sa);
	kcp_stats(s->b.k, &sb);
	netsim_link_stats(s->a.tx, &ns);
	printf("# loss %2.0f%%: %llu bytes in %.1f s virtual, %llu segs, retx %llu timeout + %llu "
	       "fast (%llu spurious, resend now %u), dups at receiver %llu, link dropped %llu dup "
	       "%llu reordered %llu\n",
	       loss * 100, (unsigned long long)got, (double)(s->now - 1000) / 1000,
	       (unsigned long long)sa.seg_sent, (unsigned long long)sa.seg_retx_timeout,
	       (unsigned long long)sa.seg_retx_fast, (unsigned long long)sa.seg_retx_spurious,
	       sa.resend, (unsigned long long)sb.seg_dup, (unsigned long long)(ns.lost_random),
	       (unsigned long long)ns.dup, (unsigned long long)ns.reordered);
	assert_int_equal(sb.seg_recv, sa.seg_sent); /* each segment accepted once */
	if (loss > 0)
		assert_true(sa.seg_retx_timeout + sa.seg_retx_fast > 0);
}

static void stream_run(double loss, uint64_t seed)
{
	uint64_t sent = 0, got = 0;
	struct kcp_config kc;
	struct netsim_config nc;
	struct kcpsim s;

	cfg_sim(&kc, true);
	link_cfg(&nc, loss);
	sim_init(&s, &kc, &nc, seed);
	for (;;) {
		write_all(&s, seed, &sent);
		read_all(&s, seed, &got);
		assert_false(kcp_is_dead(s.a.k));
		if (got == STREAM_BYTES)
			break;
		if (!sim_advance(&s))
			fail_msg("loss %.2f: stalled at %llu bytes", loss, (unsigned long long)got);
	}
	assert_true(kcp_check(s.a.k));
	assert_true(kcp_check(s.b.k));
	report(&s, loss, got);
	kcpsim_free(&s);
}

static void stream_loss_0(void **state)
{
	(void)state;
	stream_run(0.0, 11);
}

static void stream_loss_5(void **state)
{
	(void)state;
	stream_run(0.05, 12);
}

static void stream_loss_20(void **state)
{
	(void)state;
	stream_run(0.20, 13);
}

static void stream_loss_40(void **state)
{
	(void)state;
	stream_run(0.40, 14);
}

/* ------------------------------------------------------------------ */
/* messages: boundaries kept                                          */

static size_t msg_size(struct prng *g, uint32_t mss)
{
	/* small, exactly-one-segment, multi-fragment and empty messages */
	switch (prng_below(g, 4)) {
	case 0: return prng_below(g, 64);
	case 1: return mss;
	case 2: return prng_below(g, 16 * mss);
	default: return prng_below(g, 2) ? 0 : mss + 1;
	}
}

static void messages_keep_boundaries(void **state)
{
	(void)state;
	static uint8_t buf[16 * KCP_MTU_DEFAULT];
	const uint32_t mss = KCP_MTU_DEFAULT - KCP_HEADER_LEN;
	struct prng gs, gr;
	struct kcp_config kc;
	struct netsim_config nc;
	struct kcpsim s;
	uint32_t nsent = 0, nrecv = 0;
	size_t pending = SIZE_MAX; /* size of the next message to send */

	cfg_sim(&kc, false);
	link_cfg(&nc, 0.20);
	sim_init(&s, &kc, &nc, 21);
	prng_seed(&gs, 99);
	prng_seed(&gr, 99);
	while (nrecv < MESSAGES) {
		while (nsent < MESSAGES) {
			if (pending == SIZE_MAX)
				pending = msg_size(&gs, mss);
			for (size_t i = 0; i < pending; i++)
				buf[i] = byte_at(nsent, i);
			ssize_t w = kcp_send(s.a.k, buf, pending, s.now);
			if (w == KS_ERR_FULL)
				break;
			assert_int_equal(w, (ssize_t)pending);
			pending = SIZE_MAX;
			nsent++;
		}
		for (;;) {
			ssize_t r = kcp_recv(s.b.k, buf, sizeof buf);
			size_t want;
			if (r == KS_ERR_AGAIN)
				break;
			want = msg_size(&gr, mss);
			assert_int_equal(r, (ssize_t)want);
			for (size_t i = 0; i < want; i++)
				if (buf[i] != byte_at(nrecv, i))
					fail_msg("message %u byte %zu differs", nrecv, i);
			nrecv++;
		}
		if (nrecv < MESSAGES && !sim_advance(&s))
			fail_msg("stalled after %u messages", nrecv);
	}
	assert_int_equal(kcp_recv(s.b.k, buf, sizeof buf), KS_ERR_AGAIN);
	assert_true(kcp_check(s.a.k));
	assert_true(kcp_check(s.b.k));
	kcpsim_free(&s);
}

/* After the transfer both sides go quiet: no deadlines once everything is
 * acknowledged (an idle session schedules no wakeups). */
static void idle_after_transfer(void **state)
{
	(void)state;
	struct kcp_config kc;
	struct netsim_config nc;
	struct kcpsim s;
	char out[64];
	int steps = 0;

	cfg_sim(&kc, true);
	link_cfg(&nc, 0.20);
	sim_init(&s, &kc, &nc, 31);
	assert_int_equal(kcp_send(s.a.k, "hello", 5, s.now), 5);
	while (sim_advance(&s))
		assert_true(++steps < 100000);
	assert_int_equal(kcp_recv(s.b.k, out, sizeof out), 5);
	assert_int_equal(kcp_waitsnd(s.a.k), 0);
	assert_int_equal(kcp_next_deadline(s.a.k, s.now), KS_NEVER);
	assert_int_equal(kcp_next_deadline(s.b.k, s.now), KS_NEVER);
	kcpsim_free(&s);
}

/* ------------------------------------------------------------------ */
/* K11: request/response latency with and without thin-flight copies  */

enum { EXCHANGES = 3000, REQ_LEN = 300, RESP_LEN = 1024 };

struct rr_result {
	uint32_t slow;     /* exchanges that took more than 1.5 RTT */
	uint64_t worst;    /* ms */
	uint64_t copies;   /* K11 copies sent, both ends */
	uint64_t data_seg; /* data segments first sent, both ends */
	uint64_t retx_to;  /* timeout retransmissions, both ends */
};

/* exchange sends one request from A; B answers it when it has all of it;
 * returns the ms until A has the whole response. */
static uint64_t exchange(struct kcpsim *s)
{
	static uint8_t buf[RESP_LEN];
	uint64_t t0 = s->now;
	size_t req = 0, resp = 0;
	ssize_t n;

	memset(buf, 'q', sizeof buf);
	assert_int_equal(kcp_send(s->a.k, buf, REQ_LEN, s->now), REQ_LEN);
	while (resp < RESP_LEN) {
		if (!sim_advance(s))
			fail_msg("exchange stalled");
		while (req < REQ_LEN && (n = kcp_recv(s->b.k, buf, REQ_LEN - req)) > 0)
			req += (size_t)n;
		if (req == REQ_LEN) {
			assert_int_equal(kcp_send(s->b.k, buf, RESP_LEN, s->now), RESP_LEN);
			req++; /* answered */
		}
		while ((n = kcp_recv(s->a.k, buf, sizeof buf)) > 0)
			resp += (size_t)n;
	}
	assert_int_equal(resp, RESP_LEN);
	return s->now - t0;
}

static void rr_run(const struct netsim_config *nc, bool dup, uint64_t seed, struct rr_result *r)
{
	uint32_t rtt = 2 * nc->delay_ms + nc->jitter_ms;
	struct kcp_config kc;
	struct kcp_stats sa, sb;
	struct kcpsim s;

	cfg_sim(&kc, true);
	kc.dup_thin = dup;
	sim_init(&s, &kc, nc, seed);
	memset(r, 0, sizeof *r);
	for (int i = 0; i < EXCHANGES; i++) {
		uint64_t ms = exchange(&s);
		if (ms * 2 > (uint64_t)rtt * 3)
			r->slow++;
		if (ms > r->worst)
			r->worst = ms;
		assert_false(kcp_is_dead(s.a.k));
	}
	kcp_stats(s.a.k, &sa);
	kcp_stats(s.b.k, &sb);
	r->copies = sa.seg_dup_thin + sb.seg_dup_thin;
	r->data_seg = sa.seg_sent + sb.seg_sent;
	r->retx_to = sa.seg_retx_timeout + sb.seg_retx_timeout;
	assert_int_equal(sb.seg_recv, sa.seg_sent); /* each segment accepted once */
	assert_int_equal(sa.seg_recv, sb.seg_sent);
	assert_true(kcp_check(s.a.k) && kcp_check(s.b.k));
	kcpsim_free(&s);
}

/* The same seeded links with and without K11: the exchanges that wait for
 * a retransmission (more than 1.5 RTT) must become at least `factor` times
 * rarer, and only thin flights were copied (every data segment here is
 * one, so the copy count is the segment count, plus the K15 copies of
 * timeout retransmissions: at most KCP_RETX_COPIES each). */
static void rr_compare(const char *name, const struct netsim_config *nc, uint32_t factor)
{
	/* factor 0: no gain asked, only no loss beyond 1.5 x */
	struct rr_result off, on;

	rr_run(nc, false, 77, &off);
	rr_run(nc, true, 77, &on);
	printf("# rr %s: %d exchanges, > 1.5 RTT: %u without K11, %u with (worst %llu / %llu ms), "
	       "copies %llu of %llu segments\n",
	       name, EXCHANGES, off.slow, on.slow, (unsigned long long)off.worst,
	       (unsigned long long)on.worst, (unsigned long long)on.copies,
	       (unsigned long long)on.data_seg);
	assert_int_equal(off.copies, 0);
	assert_true(on.copies >= on.data_seg);
	assert_true(on.copies - on.data_seg <= KCP_RETX_COPIES * on.retx_to);
	assert_true(off.slow > 0);
	if (factor)
		assert_true(on.slow * factor <= off.slow);
	else
		assert_true(on.slow * 2 <= off.slow * 3);
}

static void rr_loss_1(void **state)
{
	(void)state;
	struct netsim_config nc = { .loss = 0.01, .delay_ms = 10 };
	rr_compare("loss 1%, 10 ms", &nc, 5);
}

static void rr_loss_5(void **state)
{
	(void)state;
	struct netsim_config nc = { .loss = 0.05, .delay_ms = 30, .jitter_ms = 5 };
	rr_compare("loss 5%, 30+5 ms", &nc, 5);
}

static void rr_burst(void **state)
{
	(void)state;
	struct netsim_config nc = { .ge_p = 0.005, .ge_r = 0.25, .ge_loss = 1.0, .delay_ms = 10 };
	/* netsim's bursts are counted in datagrams, not time: the copy right
	 * behind a lost original is lost with it 3 times in 4, so K11 gains
	 * little here; it must not make things worse. */
	rr_compare("burst, 10 ms", &nc, 0);
}

/* ------------------------------------------------------------------ */
/* the reference scenario (bench_kcp (a); docs/bench/kcp.md)          */
/*                                                                    */
/* skywind3000/kcp test.cpp's loop on virtual time: per direction 5 of */
/* every 100 datagrams lost, one-way delay 30..61 ms, in-order          */
/* delivery; once per ms update A and B, A sends an 8-byte message     */
/* every 20 ms, B echoes. Only what must hold is asserted: every echo  */
/* arrives, in order; without loss nothing is retransmitted.           */

enum { REF_MESSAGES = 1001 };

struct ref_end {
	struct kcp *k;
	struct netsim_link *tx;
	uint64_t now;
};

static int ref_out(const uint8_t *d, size_t len, void *user)
{
	struct ref_end *e = user;
	return netsim_link_send(e->tx, d, len, e->now);
}

static void ref_deliver(struct netsim_link *l, struct kcp *k, uint64_t now)
{
	static uint8_t buf[NETSIM_MAX_DATAGRAM];
	ssize_t n;

	while ((n = netsim_link_recv(l, now, buf, sizeof buf)) >= 0)
		assert_int_equal(kcp_input(k, buf, (size_t)n, now), 0);
}

static void ref_run(const struct kcp_config cfg[2], double loss, uint64_t seed,
                    struct kcp_stats st[2])
{
	struct netsim_config nc = { .loss = loss,
		                    .loss_block = 100,
		                    .delay_ms = 30,
		                    .jitter_ms = 31,
		                    .fifo = true,
		                    .limit_datagrams = 1000 };
	struct ref_end e[2] = { 0 };
	uint64_t t = 1000, slap = 1020;
	uint32_t index = 0, next = 0;

	for (int i = 0; i < 2; i++) {
		e[i].now = t;
		assert_int_equal(netsim_link_new(&e[i].tx, &nc, seed * 2 + (uint64_t)i + 1), 0);
		assert_int_equal(kcp_new(&e[i].k, 0x11223344, &cfg[i], t, ref_out, &e[i]), 0);
	}
	while (next < REF_MESSAGES) {
		uint8_t m[16];
		ssize_t r;

		assert_true(t < 1000 + 600000);
		e[0].now = e[1].now = ++t;
		kcp_update(e[0].k, t);
		kcp_update(e[1].k, t);
		for (; t >= slap; slap += 20) {
			memcpy(m, &index, 4);
			index++;
			memcpy(m + 4, &t, 4);
			assert_int_equal(kcp_send(e[0].k, m, 8, t), 8);
		}
		ref_deliver(e[0].tx, e[1].k, t);
		ref_deliver(e[1].tx, e[0].k, t);
		while ((r = kcp_recv(e[1].k, m, 10)) >= 0)
			assert_int_equal(kcp_send(e[1].k, m, (size_t)r, t), r);
		while ((r = kcp_recv(e[0].k, m, 10)) >= 0) {
			uint32_t sn;
			assert_int_equal(r, 8);
			memcpy(&sn, m, 4);
			assert_int_equal(sn, next);
			next++;
		}
		assert_false(kcp_is_dead(e[0].k) || kcp_is_dead(e[1].k));
	}
	for (int i = 0; i < 2; i++) {
		assert_true(kcp_check(e[i].k));
		kcp_stats(e[i].k, &st[i]);
		kcp_free(e[i].k);
		netsim_link_free(e[i].tx);
	}
}

/* test.cpp's fast mode in our configuration (its defaults otherwise), or
 * a preset on both ends; windows 128, queue unbounded as in test.cpp. */
static void ref_config(struct kcp_config cfg[2], const char *preset)
{
	for (int i = 0; i < 2; i++) {
		kcp_config_default(&cfg[i]);
		assert_int_equal(kcp_config_preset(&cfg[i], preset ? preset : "fast3"), 0);
		if (!preset) {
			cfg[i].ack_lazy = false;
			cfg[i].bundle = false;
			cfg[i].resend = i ? 2 : 1;
			cfg[i].min_rto = i ? 0 : 10;
		}
		cfg[i].snd_wnd = cfg[i].rcv_wnd = 128;
		cfg[i].snd_queue = 4096;
	}
}

static void ref_scenario_clean_retransmits_nothing(void **state)
{
	(void)state;
	const char *presets[] = { NULL, "fast3", "fast" };

	for (size_t p = 0; p < 3; p++) {
		for (uint64_t seed = 1; seed <= 3; seed++) {
			struct kcp_config cfg[2];
			struct kcp_stats st[2];

			ref_config(cfg, presets[p]);
			ref_run(cfg, 0.0, seed, st);
			for (int i = 0; i < 2; i++) {
				assert_int_equal(st[i].seg_retx_timeout + st[i].seg_retx_fast, 0);
				assert_true(st[i].seg_sent >= REF_MESSAGES);
			}
		}
	}
}

static void ref_scenario_lossy_delivers_everything(void **state)
{
	(void)state;

	for (uint64_t seed = 1; seed <= 3; seed++) {
		struct kcp_config cfg[2];
		struct kcp_stats st[2];

		ref_config(cfg, "fast3");
		ref_run(cfg, 0.05, seed, st);
		for (int i = 0; i < 2; i++) {
			/* K13: a copy per later datagram, at most twice per send */
			assert_true(st[i].seg_bundled > 0);
			assert_true(st[i].seg_bundled <=
			            KCP_BUNDLE_COPIES * (st[i].seg_sent + st[i].seg_retx_timeout +
			                                 st[i].seg_retx_fast));
		}
		ref_config(cfg, NULL);
		ref_run(cfg, 0.05, seed, st);
		assert_int_equal(st[0].seg_bundled + st[1].seg_bundled, 0);
	}
}

/* ------------------------------------------------------------------ */
/* scheduling stalls at the sender (K4)                               */

/* A bulk transfer A -> B as the tunnel runs the engine (cc and pacing on,
 * ACKs and data flushed once per batch), 10 ms each way and no loss, while
 * A's process is descheduled for stall_ms of every STALL_EVERY ms: nothing
 * of A runs meanwhile, and B's ACKs wait in A's socket. When A runs again,
 * its timer fires before its socket is read, as libev invokes them (the
 * expired timer is queued after the readable socket, and the pending queue
 * runs last in, first out). Every retransmission there is spurious. */
enum { STALL_EVERY = 300, STALL_BYTES = 32 << 20 };

struct stall_result {
	struct kcp_stats a;
	uint64_t ms; /* virtual time the transfer took */
};

static bool stall_asleep(uint64_t now, uint32_t stall_ms)
{
	return stall_ms && now % STALL_EVERY < stall_ms;
}

static void stall_run(uint32_t stall_ms, double loss, uint64_t seed, struct stall_result *r)
{
	struct netsim_config nc = { .loss = loss, .delay_ms = 10, .fifo = true };
	uint64_t sent = 0, got = 0, t0;
	bool was_asleep = false;
	struct kcp_config kc;
	struct kcpsim s;

	kcpsim_tunnel_config(&kc, 2048, false);
	sim_init(&s, &kc, &nc, seed);
	t0 = s.now;
	write_all_n(&s, seed, &sent, STALL_BYTES);
	while (got < STALL_BYTES) {
		bool asleep = stall_asleep(s.now, stall_ms);
		uint64_t t = kcp_next_deadline(s.b.k, s.now), d;

		if (asleep)
			d = s.now - s.now % STALL_EVERY + stall_ms;
		else
			d = min_u64(kcp_next_deadline(s.a.k, s.now),
			            netsim_link_next_deadline(s.b.tx));
		t = min_u64(min_u64(t, d), netsim_link_next_deadline(s.a.tx));
		assert_true(t != KS_NEVER);
		assert_true(++s.steps < MAX_STEPS);
		s.now = max_u64(s.now, t);
		asleep = stall_asleep(s.now, stall_ms);
		drain(&s, s.a.tx, s.b.k);
		read_all(&s, seed, &got);
		kcp_flush(s.b.k, s.now);
		if (!asleep) {
			if (was_asleep) /* libev: the timer before the socket */
				kcp_update(s.a.k, s.now);
			drain(&s, s.b.tx, s.a.k);
			write_all_n(&s, seed, &sent, STALL_BYTES);
			kcp_flush(s.a.k, s.now);
			write_all_n(&s, seed, &sent, STALL_BYTES);
		}
		was_asleep = asleep;
	}
	assert_true(kcp_check(s.a.k));
	kcp_stats(s.a.k, &r->a);
	r->ms = s.now - t0;
	kcpsim_free(&s);
}

static void stall_report(const char *name, uint32_t stall_ms, const struct stall_result *r)
{
	printf("# stall %s %u ms of %u: %.1f MB/s virtual, retx %llu timeout (%llu isolated) + "
	       "%llu fast, %llu spurious, %llu undone, rto deferred %llu, srtt %u rto %u cwnd %u "
	       "ssthresh %u\n",
	       name, stall_ms, STALL_EVERY, (double)STALL_BYTES / 1e3 / (double)r->ms,
	       (unsigned long long)r->a.seg_retx_timeout,
	       (unsigned long long)r->a.seg_retx_isolated, (unsigned long long)r->a.seg_retx_fast,
	       (unsigned long long)r->a.seg_retx_spurious, (unsigned long long)r->a.cwnd_undo,
	       (unsigned long long)r->a.rto_stall_deferred, r->a.srtt, r->a.rto, r->a.cwnd,
	       r->a.ssthresh);
}

/* A stall longer than the RTO fires no retransmission at a clean path: the
 * expiries wait until the ACKs waiting in the socket have been read (K4). */
static void stall_sends_nothing_twice(void **state)
{
	(void)state;

	for (uint32_t stall_ms = 60; stall_ms <= 180; stall_ms += 60) {
		struct stall_result r;

		stall_run(stall_ms, 0.0, 7, &r);
		stall_report("clean", stall_ms, &r);
		assert_true(r.a.rto_stall_deferred > 0);
		assert_int_equal(r.a.seg_retx_timeout + r.a.seg_retx_fast, 0);
		/* the RTT measured is the path's, not the stall's */
		assert_true(r.a.srtt <= 25 && r.a.cwnd == 2048);
	}
}

/* With loss as well, stalls still deliver everything, and the loss is
 * repaired: the guard defers expiries, it does not lose them. */
static void stall_with_loss_repairs(void **state)
{
	struct stall_result r;

	(void)state;
	stall_run(120, 0.01, 8, &r);
	stall_report("loss 1%", 120, &r);
	assert_true(r.a.seg_retx_timeout + r.a.seg_retx_fast > 0);
}

/* ------------------------------------------------------------------ */
/* slow start on a long path (K7)                                     */

/* The bench's long path: 75 ms each way (150 ms RTT), loopback's 100 MB/s
 * and 4 MiB of queue, the tunnel's engine configuration with the default
 * profile's windows (2048 segments): the path rate is the window's, 2048
 * segments per RTT. How long until the receiver gets 90 % of it (over a
 * 150 ms span), and what the queue drops. */
enum { RAMP_WND = 2048, RAMP_BYTES = 40 << 20, RAMP_TICK = 10, RAMP_SPAN = 15 };
#define RAMP_MSS (KCP_MTU_DEFAULT - KCP_HEADER_LEN)

struct ramp_result {
	uint64_t ramp_ms, ms;
	double drop; /* share of the datagrams the bottleneck queue dropped */
	struct kcp_stats a;
};

static void ramp_run(double loss, uint64_t seed, struct ramp_result *r)
{
	struct netsim_config nc = {
		.loss = loss, .delay_ms = 75, .rate = 100000000, .queue_bytes = 4 << 20
	};
	static uint64_t hist[4096];
	uint64_t sent = 0, got = 0, t0;
	struct netsim_stats ns;
	struct kcp_config kc;
	struct kcpsim s;
	size_t n = 0;

	kcpsim_tunnel_config(&kc, RAMP_WND, false);
	sim_init(&s, &kc, &nc, seed);
	t0 = s.now;
	r->ramp_ms = 0;
	write_all_n(&s, seed, &sent, RAMP_BYTES);
	while (got < RAMP_BYTES) {
		uint64_t t =
		        min_u64(kcp_next_deadline(s.a.k, s.now), kcp_next_deadline(s.b.k, s.now));

		t = min_u64(t, min_u64(netsim_link_next_deadline(s.a.tx),
		                       netsim_link_next_deadline(s.b.tx)));
		t = min_u64(t, t0 + (n + 1) * RAMP_TICK);
		assert_true(++s.steps < MAX_STEPS);
		s.now = max_u64(s.now, t);
		drain(&s, s.a.tx, s.b.k);
		read_all(&s, seed, &got);
		kcp_flush(s.b.k, s.now);
		drain(&s, s.b.tx, s.a.k);
		write_all_n(&s, seed, &sent, RAMP_BYTES);
		kcp_flush(s.a.k, s.now);
		write_all_n(&s, seed, &sent, RAMP_BYTES);
		while (s.now >= t0 + (n + 1) * RAMP_TICK && n < 4096) {
			hist[n++] = got;
			if (!r->ramp_ms && n > RAMP_SPAN &&
			    (hist[n - 1] - hist[n - 1 - RAMP_SPAN]) * 10 >=
			            (uint64_t)RAMP_WND * RAMP_MSS * 9)
				r->ramp_ms = n * RAMP_TICK;
		}
	}
	assert_true(kcp_check(s.a.k));
	kcp_stats(s.a.k, &r->a);
	netsim_link_stats(s.a.tx, &ns);
	r->ms = s.now - t0;
	r->drop = (double)ns.queue_dropped / (double)ns.sent;
	kcpsim_free(&s);
}

/* The ramp is reported (docs/bench/kcp.md); the test asserts that the
 * rate is reached and the queue not flooded (at most 1 % of the datagrams
 * dropped there). */
static void long_path_ramp(void **state)
{
	(void)state;

	for (int i = 0; i < 2; i++) {
		struct ramp_result r;
		double loss = i ? 0.01 : 0.0;

		ramp_run(loss, 11 + (uint64_t)i, &r);
		printf("# long path (150 ms RTT, window 2048), loss %.0f%%: 90%% of the window's "
		       "rate "
		       "after %llu ms, %.1f MB/s over the run, queue drops %.2f%%, retx %llu "
		       "timeout "
		       "+ %llu fast, cwnd %u ssthresh %u srtt %u\n",
		       loss * 100, (unsigned long long)r.ramp_ms,
		       (double)RAMP_BYTES / 1e3 / (double)r.ms, r.drop * 100,
		       (unsigned long long)r.a.seg_retx_timeout,
		       (unsigned long long)r.a.seg_retx_fast, r.a.cwnd, r.a.ssthresh, r.a.srtt);
		assert_true(r.ramp_ms > 0);
		assert_true(r.drop <= 0.01);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stream_loss_0),
		cmocka_unit_test(stream_loss_5),
		cmocka_unit_test(stream_loss_20),
		cmocka_unit_test(stream_loss_40),
		cmocka_unit_test(messages_keep_boundaries),
		cmocka_unit_test(idle_after_transfer),
		cmocka_unit_test(rr_loss_1),
		cmocka_unit_test(rr_loss_5),
		cmocka_unit_test(rr_burst),
		cmocka_unit_test(ref_scenario_clean_retransmits_nothing),
		cmocka_unit_test(ref_scenario_lossy_delivers_everything),
		cmocka_unit_test(stall_sends_nothing_twice),
		cmocka_unit_test(stall_with_loss_repairs),
		cmocka_unit_test(long_path_ramp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
