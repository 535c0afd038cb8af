/* test_netsim.c - the link simulator: each impairment measured on a fixed
 * seed, bounds, determinism. Includes the .c to look at the pool and heap. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* Count the allocations netsim.c makes, to prove steady state needs none. */
#include <stdlib.h>
static uint64_t allocations;
static void *counted_malloc(size_t n)
{
	allocations++;
	return malloc(n);
}
static void *counted_realloc(void *p, size_t n)
{
	allocations++;
	return realloc(p, n);
}
#define malloc  counted_malloc
#define realloc counted_realloc
#include "core/netsim.c"
#undef malloc
#undef realloc

enum { SEED = 12345 };

struct arrival {
	uint64_t at;   /* when netsim_link_recv returned it */
	uint32_t id;   /* first 4 bytes of the payload */
	uint64_t sent; /* next 8 bytes: send time */
	size_t len;
};

static struct netsim_link *mk(const struct netsim_config *c, uint64_t seed)
{
	struct netsim_link *l = NULL;

	assert_int_equal(netsim_link_new(&l, c, seed), 0);
	assert_non_null(l);
	return l;
}

static void send_id(struct netsim_link *l, uint32_t id, size_t len, uint64_t now)
{
	uint8_t b[NETSIM_MAX_DATAGRAM] = { 0 };

	assert_true(len >= 12);
	memcpy(b, &id, 4);
	memcpy(b + 4, &now, 8);
	assert_int_equal(netsim_link_send(l, b, len, now), 0);
}

/* Receive everything due at now into a[*n...], bounded by max. */
static void recv_due(struct netsim_link *l, uint64_t now, struct arrival *a, size_t *n, size_t max)
{
	static uint8_t b[NETSIM_MAX_DATAGRAM];
	ssize_t r;

	while ((r = netsim_link_recv(l, now, b, sizeof b)) >= 0) {
		assert_true(*n < max);
		assert_true(r >= 12);
		a[*n].at = now;
		memcpy(&a[*n].id, b, 4);
		memcpy(&a[*n].sent, b + 4, 8);
		a[*n].len = (size_t)r;
		(*n)++;
	}
	assert_int_equal(r, KS_ERR_AGAIN);
}

/* Jump from deadline to deadline until the link is empty; every arrival is
 * stamped with its exact delivery time. */
static void drain(struct netsim_link *l, struct arrival *a, size_t *n, size_t max)
{
	uint64_t t;

	for (size_t guard = 0; (t = netsim_link_next_deadline(l)) != KS_NEVER; guard++) {
		assert_true(guard < max + 1);
		recv_due(l, t, a, n, max);
	}
}

static struct netsim_stats stats(const struct netsim_link *l)
{
	struct netsim_stats st;

	netsim_link_stats(l, &st);
	return st;
}

/* Every datagram is accounted for exactly once. */
static void assert_conserved(const struct netsim_link *l)
{
	struct netsim_stats st = stats(l);

	assert_true(netsim_link_check(l));
	assert_true(st.sent + st.dup == st.delivered + st.held_datagrams + st.lost_blackhole +
	                                        st.lost_burst + st.lost_random + st.queue_dropped +
	                                        st.limit_dropped);
}

static void config_rejects_bad_values(void **state)
{
	(void)state;
	static const struct netsim_config bad[] = {
		{ .loss = -0.1 },
		{ .loss = 1.5 },
		{ .loss = NAN },
		{ .dup = 2.0 },
		{ .reorder = NAN, .reorder_ms = 5 },
		{ .ge_p = 0.1 }, /* no way back to good */
		{ .ge_p = 0.1, .ge_r = 0.5, .ge_loss = -1 },
		{ .reorder = 0.5 }, /* reorder without reorder_ms */
		{ .delay_ms = NETSIM_MAX_DELAY_MS + 1 },
		{ .jitter_ms = NETSIM_MAX_DELAY_MS + 1 },
		{ .reorder = 0.1, .reorder_ms = NETSIM_MAX_DELAY_MS + 1 },
		{ .rate = NETSIM_MAX_RATE + 1 },
		{ .queue_bytes = (size_t)NETSIM_MAX_QUEUE_BYTES + 1 },
		{ .limit_bytes = (size_t)NETSIM_MAX_LIMIT_BYTES + 1 },
		{ .limit_datagrams = (size_t)NETSIM_MAX_LIMIT_DATAGRAMS + 1 },
	};
	struct netsim_config ok = { .loss = 1.0 };
	struct netsim_link *l = (struct netsim_link *)0x1;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(netsim_link_new(&l, &bad[i], 1), KS_ERR_INVAL);
		assert_ptr_equal(l, (struct netsim_link *)0x1);
	}
	l = mk(&ok, 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(netsim_link_set_config(l, &bad[i]), KS_ERR_INVAL);
	assert_true(l->cfg.loss == 1.0); /* unchanged */
	netsim_link_free(l);
	netsim_link_free(NULL);
}

static void perfect_link_delivers_in_order_at_once(void **state)
{
	(void)state;
	struct netsim_config c = { 0 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[NETSIM_MAX_DATAGRAM], out[NETSIM_MAX_DATAGRAM];

	assert_int_equal(netsim_link_next_deadline(l), KS_NEVER);
	assert_int_equal(netsim_link_recv(l, 100, out, sizeof out), KS_ERR_AGAIN);
	for (size_t len = 0; len <= NETSIM_MAX_DATAGRAM; len += len < 300 ? 1 : 997) {
		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)(i * 7 + len);
		assert_int_equal(netsim_link_send(l, b, len, 100 + len), 0);
	}
	assert_int_equal(netsim_link_recv(l, 99, out, sizeof out), KS_ERR_AGAIN);
	for (size_t len = 0; len <= NETSIM_MAX_DATAGRAM; len += len < 300 ? 1 : 997) {
		assert_int_equal(netsim_link_next_deadline(l), 100 + len);
		assert_int_equal(netsim_link_recv(l, UINT64_MAX - 1, out, sizeof out),
		                 (ssize_t)len);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(out[i], (uint8_t)(i * 7 + len));
	}
	assert_int_equal(netsim_link_next_deadline(l), KS_NEVER);
	assert_int_equal(stats(l).held_bytes, 0);
	assert_int_equal(stats(l).bytes_in, stats(l).bytes_out);
	assert_conserved(l);
	netsim_link_free(l);
}

static void size_limits_are_reported_and_change_nothing(void **state)
{
	(void)state;
	struct netsim_config c = { 0 };
	struct netsim_link *l = mk(&c, SEED);
	static uint8_t b[NETSIM_MAX_DATAGRAM + 1];
	uint8_t small[8];

	assert_int_equal(netsim_link_send(l, b, sizeof b, 0), KS_ERR_TOOBIG);
	assert_int_equal(stats(l).sent, 0);
	assert_int_equal(netsim_link_send(l, b, 100, 0), 0);
	assert_int_equal(netsim_link_recv(l, 0, small, sizeof small), KS_ERR_TOOBIG);
	assert_int_equal(stats(l).held_datagrams, 1);
	assert_int_equal(netsim_link_recv(l, 0, b, 100), 100);
	netsim_link_free(l);
}

static void loss_rate_is_within_bounds(void **state)
{
	(void)state;
	struct netsim_config c = { .loss = 0.10 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[64] = { 0 };
	const uint32_t n = 100000;

	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(netsim_link_send(l, b, sizeof b, i), 0);
		while (netsim_link_recv(l, i, b, sizeof b) >= 0)
			;
	}
	struct netsim_stats st = stats(l);
	/* binomial sd = sqrt(n p (1-p)) = ~95; allow 5 sd */
	assert_in_range(st.lost_random, 10000 - 475, 10000 + 475);
	assert_int_equal(st.delivered, n - st.lost_random);
	assert_int_equal(st.lost_burst, 0);
	assert_conserved(l);
	netsim_link_free(l);
}

static void gilbert_elliott_makes_bursts(void **state)
{
	(void)state;
	struct netsim_config c = { .ge_p = 0.01, .ge_r = 0.25, .ge_loss = 1.0 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[16] = { 0 };
	uint64_t bursts = 0, lost = 0, run = 0;
	const uint32_t n = 200000;

	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(netsim_link_send(l, b, sizeof b, i), 0);
		if (netsim_link_recv(l, i, b, sizeof b) >= 0) {
			bursts += run > 0;
			run = 0;
		} else {
			lost++;
			run++;
		}
	}
	bursts += run > 0;
	assert_int_equal(stats(l).lost_burst, lost);
	/* mean burst 1/r = 4; stationary loss p/(p+r) = 3.85% */
	double mean = (double)lost / (double)bursts;
	assert_true(mean > 3.6 && mean < 4.4);
	assert_in_range(lost, 7700 - 800, 7700 + 800);
	/* independent loss of the same rate gives bursts of ~1.04 */
	struct netsim_config ci = { .loss = 0.0385 };
	struct netsim_link *li = mk(&ci, SEED);
	uint64_t ib = 0, il = 0;
	bool prev_lost = false;
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(netsim_link_send(li, b, sizeof b, i), 0);
		bool got = netsim_link_recv(li, i, b, sizeof b) >= 0;
		il += !got;
		ib += !got && !prev_lost;
		prev_lost = !got;
	}
	assert_true((double)il / (double)ib < 1.1);
	netsim_link_free(li);
	netsim_link_free(l);
}

static void delay_and_jitter_stay_in_bounds(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 50, .jitter_ms = 20 };
	struct netsim_link *l = mk(&c, SEED);
	enum { N = 20000 };
	static struct arrival a[N];
	size_t n = 0;
	uint64_t seen[21] = { 0 };

	for (uint32_t i = 0; i < N; i++) {
		send_id(l, i, 12, i / 4);
		recv_due(l, i / 4, a, &n, N);
	}
	drain(l, a, &n, N);
	assert_int_equal(n, N);
	for (size_t i = 0; i < n; i++) {
		uint64_t d = a[i].at - a[i].sent;
		assert_in_range(d, 50, 70);
		seen[d - 50]++;
	}
	for (int k = 0; k <= 20; k++) /* ~952 each: uniform over all 21 values */
		assert_in_range(seen[k], 700, 1200);
	netsim_link_free(l);
}

/* Count pairs of neighbours delivered out of send order. */
static size_t inversions(const struct arrival *a, size_t n)
{
	size_t inv = 0;

	for (size_t i = 1; i < n; i++)
		inv += a[i].id < a[i - 1].id;
	return inv;
}

static void reorder_reorders_and_plain_delay_does_not(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 10, .reorder = 0.1, .reorder_ms = 30 };
	enum { N = 10000 };
	static struct arrival a[N];
	size_t n = 0;

	struct netsim_link *l = mk(&c, SEED);
	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 12, i);
	drain(l, a, &n, N);
	assert_int_equal(n, N);
	assert_in_range(stats(l).reordered, 1000 - 150, 1000 + 150);
	assert_true(inversions(a, n) > 800);
	for (size_t i = 0; i < n; i++) {
		uint64_t d = a[i].at - a[i].sent;
		assert_true(d == 10 || d == 40);
	}
	netsim_link_free(l);

	c.reorder = 0;
	c.reorder_ms = 0;
	l = mk(&c, SEED);
	n = 0;
	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 12, i / 3); /* ties: send order */
	drain(l, a, &n, N);
	assert_int_equal(inversions(a, n), 0);
	assert_int_equal(stats(l).reordered, 0);
	netsim_link_free(l);
}

/* loss_block: exactly round(loss * N) of every N datagrams, at positions
 * that differ from block to block; fifo: never an inversion, and a slow
 * datagram holds back the ones behind it (the reference KCP test's model). */
static void loss_block_is_an_exact_quota(void **state)
{
	(void)state;
	struct netsim_config c = { .loss = 0.05, .loss_block = 100 };
	enum { N = 10000 };
	static struct arrival a[N];
	static bool got[N];
	size_t n = 0;
	bool differ = false;

	struct netsim_link *l = mk(&c, SEED);
	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 12, i);
	drain(l, a, &n, N);
	assert_int_equal(n, N - N / 20);
	assert_int_equal(stats(l).lost_random, N / 20);
	for (size_t i = 0; i < n; i++)
		got[a[i].id] = true;
	for (uint32_t blk = 0; blk < N / 100; blk++) {
		uint32_t lost = 0;
		for (uint32_t i = 0; i < 100; i++) {
			lost += !got[blk * 100 + i];
			differ |= blk && got[blk * 100 + i] != got[i];
		}
		assert_int_equal(lost, 5);
	}
	assert_true(differ);
	netsim_link_free(l);
	c.loss = 0.0;
	l = mk(&c, SEED);
	n = 0;
	for (uint32_t i = 0; i < 1000; i++)
		send_id(l, i, 12, i);
	drain(l, a, &n, N);
	assert_int_equal(n, 1000);
	netsim_link_free(l);
}

static void fifo_never_reorders(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 30, .jitter_ms = 31, .fifo = true };
	enum { N = 10000 };
	static struct arrival a[N];
	size_t n = 0;
	uint64_t held_back = 0;

	struct netsim_link *l = mk(&c, SEED);
	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 12, i);
	drain(l, a, &n, N);
	assert_int_equal(n, N);
	assert_int_equal(inversions(a, n), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t d = a[i].at - a[i].sent;
		assert_true(d >= 30 && d <= 61);
		held_back += i && a[i].at == a[i - 1].at;
	}
	assert_true(held_back > N / 10); /* jitter alone would reorder these */
	netsim_link_free(l);
	c.loss_block = NETSIM_MAX_LOSS_BLOCK + 1;
	assert_int_equal(netsim_link_new(&l, &c, 1), KS_ERR_INVAL);
}

static void dup_duplicates(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 5, .dup = 0.2 };
	struct netsim_link *l = mk(&c, SEED);
	enum { N = 10000 };
	static struct arrival a[2 * N];
	static uint8_t count[N];
	size_t n = 0, twice = 0;

	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 12, i);
	drain(l, a, &n, 2 * N);
	struct netsim_stats st = stats(l);
	assert_in_range(st.dup, 2000 - 250, 2000 + 250);
	assert_int_equal(n, N + st.dup);
	for (size_t i = 0; i < n; i++) {
		assert_true(a[i].id < N);
		count[a[i].id]++;
	}
	for (size_t i = 0; i < N; i++) {
		assert_in_range(count[i], 1, 2);
		twice += count[i] == 2;
	}
	assert_int_equal(twice, st.dup);
	assert_conserved(l);
	netsim_link_free(l);
}

static void rate_limit_serializes(void **state)
{
	(void)state;
	/* 100 kB/s: a 1000-byte datagram takes exactly 10 ms */
	struct netsim_config c = { .rate = 100000, .queue_bytes = 1000000, .delay_ms = 7 };
	struct netsim_link *l = mk(&c, SEED);
	enum { N = 100 };
	struct arrival a[N];
	size_t n = 0;

	for (uint32_t i = 0; i < N; i++)
		send_id(l, i, 1000, 1000);
	drain(l, a, &n, N);
	assert_int_equal(n, N);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(a[i].id, i);
		assert_int_equal(a[i].at, 1000 + 10 * (i + 1) + 7);
	}
	/* idle again: the next one goes straight through */
	send_id(l, 999, 1000, 5000);
	assert_int_equal(netsim_link_next_deadline(l), 5000 + 10 + 7);
	netsim_link_free(l);
}

static void rate_limit_gives_the_throughput_and_the_queue_drops(void **state)
{
	(void)state;
	/* offer 3 MB/s (3 x 1000 B per ms) to a 1 MB/s link for 10 s */
	struct netsim_config c = { .rate = 1000000, .queue_bytes = 50000 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[1000] = { 0 };
	uint64_t delivered_by_10s = 0;

	for (uint64_t t = 0; t < 10000; t++) {
		for (int k = 0; k < 3; k++)
			assert_int_equal(netsim_link_send(l, b, sizeof b, t), 0);
		ssize_t r;
		while ((r = netsim_link_recv(l, t, b, sizeof b)) >= 0)
			delivered_by_10s += (uint64_t)r;
		/* queue + the one in transmission */
		assert_true(stats(l).held_bytes <= 50000 + 1000);
	}
	struct netsim_stats st = stats(l);
	/* 10 s at 1 MB/s, give or take one queue */
	assert_in_range(delivered_by_10s, 10000000 - 60000, 10000000);
	assert_in_range(st.queue_dropped, 20000 - 100, 20000);
	assert_conserved(l);
	netsim_link_free(l);

	/* a burst into an idle link: the queue bound counts the bytes not yet
	 * serialized, the one in transmission included, so 5 x 1000 fit */
	c.queue_bytes = 5000;
	l = mk(&c, SEED);
	for (int i = 0; i < 100; i++)
		assert_int_equal(netsim_link_send(l, b, sizeof b, 0), 0);
	assert_int_equal(stats(l).queue_dropped, 95);
	assert_int_equal(stats(l).held_datagrams, 5);
	netsim_link_free(l);
}

static void rate_is_exact_over_long_runs_with_odd_sizes(void **state)
{
	(void)state;
	/* 1333 bytes at 999999 B/s: 1.333001 ms each; no rounding drift */
	struct netsim_config c = { .rate = 999999, .queue_bytes = 64 * 1024 * 1024 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[1333] = { 0 };
	const uint64_t n = 40000;

	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(netsim_link_send(l, b, sizeof b, 0), 0);
	uint64_t last = 0;
	while (netsim_link_next_deadline(l) != KS_NEVER) {
		last = netsim_link_next_deadline(l);
		assert_int_equal(netsim_link_recv(l, last, b, sizeof b), 1333);
	}
	/* ceil(n * 1333 / 999999 s) in ms */
	uint64_t want = (n * 1333 * 1000 + 999999 - 1) / 999999;
	assert_int_equal(last, want);
	netsim_link_free(l);
}

/* Run a fully impaired link and record (time, id) of every delivery. */
static size_t run_all(uint64_t seed, struct arrival *a, size_t max)
{
	struct netsim_config c = { .loss = 0.05,
		                   .ge_p = 0.02,
		                   .ge_r = 0.3,
		                   .ge_loss = 0.7,
		                   .delay_ms = 20,
		                   .jitter_ms = 15,
		                   .reorder = 0.05,
		                   .reorder_ms = 25,
		                   .dup = 0.03,
		                   .rate = 2000000,
		                   .queue_bytes = 30000 };
	struct netsim_link *l = mk(&c, seed);
	size_t n = 0;

	for (uint32_t i = 0; i < 20000; i++) {
		send_id(l, i, 12 + i % 1400, i / 2);
		recv_due(l, i / 2, a, &n, max);
	}
	drain(l, a, &n, max);
	assert_conserved(l);
	netsim_link_free(l);
	return n;
}

static void same_seed_same_deliveries(void **state)
{
	(void)state;
	enum { MAX = 40000 };
	static struct arrival a[MAX], b[MAX];
	size_t na = run_all(SEED, a, MAX), nb = run_all(SEED, b, MAX);

	assert_true(na > 10000);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(a[i].at, b[i].at);
		assert_int_equal(a[i].id, b[i].id);
		assert_int_equal(a[i].len, b[i].len);
	}
	nb = run_all(SEED + 1, b, MAX);
	bool differ = na != nb;
	for (size_t i = 0; !differ && i < na; i++)
		differ = a[i].at != b[i].at || a[i].id != b[i].id;
	assert_true(differ);
}

static void blackhole_drops_everything_sent_while_on(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 100 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[32] = { 0 };

	assert_int_equal(netsim_link_send(l, b, sizeof b, 0), 0); /* in flight */
	netsim_link_set_blackhole(l, true);
	for (uint64_t t = 1; t < 1000; t++)
		assert_int_equal(netsim_link_send(l, b, sizeof b, t), 0);
	assert_int_equal(netsim_link_recv(l, 99, b, sizeof b), KS_ERR_AGAIN);
	assert_int_equal(netsim_link_recv(l, 100, b, sizeof b), 32);
	assert_int_equal(netsim_link_recv(l, 5000, b, sizeof b), KS_ERR_AGAIN);
	assert_int_equal(stats(l).lost_blackhole, 999);

	netsim_link_set_blackhole(l, false);
	assert_int_equal(netsim_link_send(l, b, sizeof b, 1000), 0);
	assert_int_equal(netsim_link_recv(l, 1100, b, sizeof b), 32);

	c.blackhole = true; /* the same through the config */
	assert_int_equal(netsim_link_set_config(l, &c), 0);
	assert_int_equal(netsim_link_send(l, b, sizeof b, 2000), 0);
	assert_int_equal(netsim_link_next_deadline(l), KS_NEVER);
	assert_int_equal(stats(l).lost_blackhole, 1000);
	assert_conserved(l);
	netsim_link_free(l);
}

static void hold_limits_bound_memory(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 100, .limit_bytes = 10000, .dup = 0.5 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[1500] = { 0 };

	for (uint64_t t = 0; t < 5000; t++) {
		assert_int_equal(netsim_link_send(l, b, 100 + t % 1400, t / 10), 0);
		assert_true(stats(l).held_bytes <= 10000);
		while (netsim_link_recv(l, t / 10, b, sizeof b) >= 0)
			;
		assert_true(netsim_link_check(l));
	}
	assert_true(stats(l).limit_dropped > 0);
	assert_true(stats(l).max_held_bytes <= 10000);
	assert_conserved(l);
	netsim_link_free(l);

	c = (struct netsim_config){ .delay_ms = 100, .limit_datagrams = 50 };
	l = mk(&c, SEED);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(netsim_link_send(l, b, 0, 0), 0);
	assert_int_equal(stats(l).held_datagrams, 50);
	assert_int_equal(stats(l).limit_dropped, 950);
	assert_true(l->cap <= 2 * 50 + HEAP_INITIAL);
	netsim_link_free(l);

	/* lowering the limit at runtime shrinks the pool too */
	c = (struct netsim_config){ 0 };
	l = mk(&c, SEED);
	for (int i = 0; i < 100; i++)
		assert_int_equal(netsim_link_send(l, b, 1000, 0), 0);
	while (netsim_link_recv(l, 0, b, sizeof b) >= 0)
		;
	assert_int_equal(l->pooled_bytes, 100 * 1024);
	c.limit_bytes = 5000;
	assert_int_equal(netsim_link_set_config(l, &c), 0);
	assert_true(l->pooled_bytes <= 5000);
	assert_true(netsim_link_check(l));
	netsim_link_free(l);
}

static void steady_state_does_not_allocate(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 30, .jitter_ms = 10, .dup = 0.01 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[1200] = { 0 };
	uint64_t warm = 0;

	for (uint64_t t = 0; t < 20000; t++) {
		for (int k = 0; k < 5; k++)
			assert_int_equal(netsim_link_send(l, b, 1000 + (t + k) % 200, t), 0);
		while (netsim_link_recv(l, t, b, sizeof b) >= 0)
			;
		if (t == 1000)
			warm = allocations;
	}
	/* 95000 datagrams after warm-up; only a new peak of held datagrams
	 * may take a fresh buffer */
	assert_true(allocations - warm <= 30);
	netsim_link_free(l);
}

static void time_going_back_is_clamped(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 10 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[8] = { 0 };

	assert_int_equal(netsim_link_send(l, b, sizeof b, 1000), 0);
	assert_int_equal(netsim_link_send(l, b, sizeof b, 500), 0);
	assert_int_equal(netsim_link_recv(l, 1009, b, sizeof b), KS_ERR_AGAIN);
	assert_int_equal(netsim_link_recv(l, 1010, b, sizeof b), 8);
	assert_int_equal(netsim_link_recv(l, 1010, b, sizeof b), 8);
	netsim_link_free(l);
}

static void config_changes_apply_to_later_datagrams(void **state)
{
	(void)state;
	struct netsim_config c = { .delay_ms = 10 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[8] = { 0 };

	assert_int_equal(netsim_link_send(l, b, sizeof b, 0), 0);
	c.loss = 1.0;
	c.delay_ms = 0;
	assert_int_equal(netsim_link_set_config(l, &c), 0);
	assert_int_equal(netsim_link_send(l, b, sizeof b, 1), 0);
	assert_int_equal(netsim_link_next_deadline(l), 10);
	assert_int_equal(stats(l).lost_random, 1);
	c.loss = 0;
	assert_int_equal(netsim_link_set_config(l, &c), 0);
	assert_int_equal(netsim_link_send(l, b, sizeof b, 2), 0);
	assert_int_equal(netsim_link_next_deadline(l), 2);
	netsim_link_free(l);
}

static void a_million_datagrams_are_fast(void **state)
{
	(void)state;
	struct netsim_config c = { .loss = 0.01, .delay_ms = 40, .jitter_ms = 10 };
	struct netsim_link *l = mk(&c, SEED);
	uint8_t b[1400] = { 0 };
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < 1000000; i++) {
		assert_int_equal(netsim_link_send(l, b, sizeof b, i / 100), 0);
		while (netsim_link_recv(l, i / 100, b, sizeof b) >= 0)
			;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("netsim: 1M x 1400 B through a 5000-deep link in %.3f s (%.0f ns/datagram)\n", s,
	       s * 1e3);
	assert_true(stats(l).max_held_bytes <= 6000 * 1400);
	netsim_link_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_rejects_bad_values),
		cmocka_unit_test(perfect_link_delivers_in_order_at_once),
		cmocka_unit_test(size_limits_are_reported_and_change_nothing),
		cmocka_unit_test(loss_rate_is_within_bounds),
		cmocka_unit_test(gilbert_elliott_makes_bursts),
		cmocka_unit_test(delay_and_jitter_stay_in_bounds),
		cmocka_unit_test(reorder_reorders_and_plain_delay_does_not),
		cmocka_unit_test(loss_block_is_an_exact_quota),
		cmocka_unit_test(fifo_never_reorders),
		cmocka_unit_test(dup_duplicates),
		cmocka_unit_test(rate_limit_serializes),
		cmocka_unit_test(rate_limit_gives_the_throughput_and_the_queue_drops),
		cmocka_unit_test(rate_is_exact_over_long_runs_with_odd_sizes),
		cmocka_unit_test(same_seed_same_deliveries),
		cmocka_unit_test(blackhole_drops_everything_sent_while_on),
		cmocka_unit_test(hold_limits_bound_memory),
		cmocka_unit_test(steady_state_does_not_allocate),
		cmocka_unit_test(time_going_back_is_clamped),
		cmocka_unit_test(config_changes_apply_to_later_datagrams),
		cmocka_unit_test(a_million_datagrams_are_fast),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
