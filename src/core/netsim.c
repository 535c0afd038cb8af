/* netsim.c - one direction of an impaired link: a min-heap of pooled
 * datagram slots keyed by (delivery time, acceptance order). */
#include "netsim.h"

#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "base/rng.h"

/* Buffers come in power-of-two size classes from 256 bytes to 64 KiB, so a
 * freed buffer can be reused by any later datagram of its class. */
enum {
	CLASS_MIN_SHIFT = 8,
	CLASS_MAX_SHIFT = 16,
	NCLASS = CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1,
	HEAP_INITIAL = 64,
};

#define NS_PER_MS 1000000ULL
#define NS_PER_S  1000000000ULL

struct slot {
	struct slot *next; /* free list link while pooled */
	uint32_t len;
	uint8_t cls;
	uint8_t data[];
};

struct entry {
	uint64_t at;    /* delivery time, ms */
	uint64_t seq;   /* acceptance order, breaks ties */
	struct slot *s; /* owned by the link while in the heap */
};

struct netsim_link {
	struct netsim_config cfg; /* defaults resolved */
	struct prng rng;
	bool ge_bad;
	uint32_t blk_left, blk_lost; /* loss_block: datagrams, losses left in the block */
	uint64_t fifo_at;            /* fifo: delivery time of the last accepted one */
	bool started;                /* epoch is set */
	uint64_t epoch;              /* first `now` seen; the limiter clock counts from it */
	uint64_t last_now;           /* largest `now` seen */
	uint64_t free_ns;  /* limiter clock: when the last accepted datagram is serialized */
	uint64_t free_rem; /* remainder of the last serialization time, in 1/rate ns */
	uint64_t seq;
	struct heap q; /* q.a: owned array of cap struct entry; q.n held */
	size_t cap;
	struct slot *pool[NCLASS]; /* owned free lists, one per class */
	size_t pooled_bytes;       /* capacity of the pooled buffers */
	struct netsim_stats st;
};

/* Why a datagram was dropped, or KEEP. */
enum drop { KEEP, DROP_BLACKHOLE, DROP_BURST, DROP_RANDOM, DROP_QUEUE, DROP_LIMIT };

/* What the model decided for one datagram, computed on locals so that a
 * failing allocation leaves the link as it was. */
struct fate {
	struct prng rng;
	bool ge_bad;
	uint32_t blk_left, blk_lost;
	uint64_t fifo_at;
	uint64_t free_ns, free_rem;
	enum drop drop;
	int copies; /* 1, or 2 with a duplicate */
	uint64_t at[2];
	bool reordered[2];
};

/* --- configuration ------------------------------------------------------ */

static bool prob_ok(double p) { return p >= 0.0 && p <= 1.0; /* false for NaN */ }

static bool config_ok(const struct netsim_config *c)
{
	if (!prob_ok(c->loss) || !prob_ok(c->ge_p) || !prob_ok(c->ge_r) || !prob_ok(c->ge_loss) ||
	    !prob_ok(c->reorder) || !prob_ok(c->dup))
		return false;
	if (c->ge_p > 0.0 && c->ge_r <= 0.0)
		return false;
	if (c->delay_ms > NETSIM_MAX_DELAY_MS || c->jitter_ms > NETSIM_MAX_DELAY_MS ||
	    c->reorder_ms > NETSIM_MAX_DELAY_MS)
		return false;
	if (c->reorder > 0.0 && c->reorder_ms == 0)
		return false;
	if (c->loss_block > NETSIM_MAX_LOSS_BLOCK)
		return false;
	return c->rate <= NETSIM_MAX_RATE && c->queue_bytes <= NETSIM_MAX_QUEUE_BYTES &&
	       c->limit_bytes <= NETSIM_MAX_LIMIT_BYTES &&
	       c->limit_datagrams <= NETSIM_MAX_LIMIT_DATAGRAMS;
}

static struct netsim_config config_resolve(const struct netsim_config *c)
{
	struct netsim_config r = *c;

	if (!r.queue_bytes)
		r.queue_bytes = NETSIM_DEFAULT_QUEUE_BYTES;
	if (!r.limit_bytes)
		r.limit_bytes = NETSIM_DEFAULT_LIMIT_BYTES;
	if (!r.limit_datagrams)
		r.limit_datagrams = NETSIM_DEFAULT_LIMIT_DATAGRAMS;
	return r;
}

int netsim_link_new(struct netsim_link **out, const struct netsim_config *cfg, uint64_t seed)
{
	struct netsim_link *l;

	if (!config_ok(cfg))
		return KS_ERR_INVAL;
	l = calloc(1, sizeof *l);
	if (!l)
		return KS_ERR_NOMEM;
	l->cfg = config_resolve(cfg);
	prng_seed(&l->rng, seed);
	*out = l;
	return 0;
}

static void pool_trim(struct netsim_link *l);

int netsim_link_set_config(struct netsim_link *l, const struct netsim_config *cfg)
{
	if (!config_ok(cfg))
		return KS_ERR_INVAL;
	l->cfg = config_resolve(cfg);
	pool_trim(l);
	return 0;
}

void netsim_link_set_blackhole(struct netsim_link *l, bool on) { l->cfg.blackhole = on; }

/* --- slot pool ----------------------------------------------------------- */

static unsigned class_of(size_t len)
{
	unsigned s = CLASS_MIN_SHIFT;

	while (((size_t)1 << s) < len)
		s++;
	return s - CLASS_MIN_SHIFT;
}

static size_t class_size(unsigned cls) { return (size_t)1 << (cls + CLASS_MIN_SHIFT); }

static struct slot *slot_get(struct netsim_link *l, unsigned cls)
{
	struct slot *s = l->pool[cls];

	if (s) {
		l->pool[cls] = s->next;
		l->pooled_bytes -= class_size(cls);
		return s;
	}
	s = malloc(sizeof *s + class_size(cls));
	if (s)
		s->cls = (uint8_t)cls;
	return s;
}

/* Pooled memory is capped at limit_bytes so that a burst of large datagrams
 * does not pin memory after it drained. */
static void slot_put(struct netsim_link *l, struct slot *s)
{
	size_t sz = class_size(s->cls);

	if (l->pooled_bytes + sz > l->cfg.limit_bytes) {
		free(s);
		return;
	}
	s->next = l->pool[s->cls];
	l->pool[s->cls] = s;
	l->pooled_bytes += sz;
}

/* Free pooled buffers, largest first, until the pool fits limit_bytes. */
static void pool_trim(struct netsim_link *l)
{
	for (unsigned c = NCLASS; c-- > 0 && l->pooled_bytes > l->cfg.limit_bytes;) {
		while (l->pool[c] && l->pooled_bytes > l->cfg.limit_bytes) {
			struct slot *s = l->pool[c];
			l->pool[c] = s->next;
			l->pooled_bytes -= class_size(c);
			free(s);
		}
	}
}

/* --- heap ---------------------------------------------------------------- */

static bool before(const void *x, const void *y, void *ctx)
{
	const struct entry *a = x, *b = y;

	(void)ctx;
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static const struct heap_ops by_time = { sizeof(struct entry), before, NULL };

static struct entry *entries(const struct netsim_link *l) { return l->q.a; }

/* Room for `more` entries. The hold limit keeps n <= limit_datagrams, so
 * the array never exceeds twice that (or HEAP_INITIAL). */
static int heap_reserve(struct netsim_link *l, size_t more)
{
	size_t want = l->q.n + more, cap = l->cap ? l->cap : HEAP_INITIAL;
	struct entry *h;

	if (want <= l->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	h = realloc(l->q.a, cap * sizeof *h);
	if (!h)
		return KS_ERR_NOMEM;
	l->q.a = h;
	l->cap = cap;
	return 0;
}

static void heap_push_slot(struct netsim_link *l, uint64_t at, struct slot *s)
{
	struct entry e = { at, l->seq++, s };

	heap_push(&l->q, &by_time, NULL, &e);
}

/* --- the model ----------------------------------------------------------- */

static bool chance(struct prng *g, double p)
{
	/* p == 0 draws nothing, so a disabled impairment leaves the sequence
	 * of the others as it was. */
	return p > 0.0 && prng_unit(g) < p;
}

/* Step 3 with loss_block: a fresh block holds round(loss * N) losses; each
 * datagram takes one of the block's remaining positions at random. */
static bool quota_lose(const struct netsim_config *c, struct fate *f)
{
	bool lost;

	if (!f->blk_left) {
		f->blk_left = c->loss_block;
		f->blk_lost = (uint32_t)(c->loss * c->loss_block + 0.5);
	}
	lost = prng_below(&f->rng, f->blk_left) < f->blk_lost;
	f->blk_left--;
	f->blk_lost -= lost;
	return lost;
}

/* Step 2 and 3 of the header: true if the datagram is lost. */
static bool lose(const struct netsim_link *l, struct fate *f)
{
	const struct netsim_config *c = &l->cfg;

	if (c->ge_p > 0.0) {
		f->ge_bad = f->ge_bad ? !chance(&f->rng, c->ge_r) : chance(&f->rng, c->ge_p);
		if (f->ge_bad && chance(&f->rng, c->ge_loss)) {
			f->drop = DROP_BURST;
			return true;
		}
	}
	if (c->loss_block ? quota_lose(c, f) : chance(&f->rng, c->loss)) {
		f->drop = DROP_RANDOM;
		return true;
	}
	return false;
}

/* a * b as a 128-bit (hi, lo) pair in plain C: 32-bit targets have no
 * unsigned __int128. */
struct wide {
	uint64_t hi, lo;
};

static struct wide mul_wide(uint64_t a, uint64_t b)
{
	uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;

	return (struct wide){ p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32),
		              (mid << 32) | (uint32_t)p00 };
}

/* True if `len` more bytes overflow the queue that holds the bytes still
 * to serialize in `ahead_ns` at `rate`: floor(ahead_ns * rate / 1e9) + len >
 * queue. With room = queue - len that is ahead_ns * rate >= (room + 1) * 1e9,
 * i.e. ahead_ns * rate > room * 1e9 + 1e9 - 1, exact in 128 bits. */
static bool queue_full(uint64_t ahead_ns, uint64_t rate, size_t len, size_t queue)
{
	struct wide have, limit;

	if (len > queue)
		return true;
	have = mul_wide(ahead_ns, rate);
	limit = mul_wide(queue - len, NS_PER_S);
	limit.lo += NS_PER_S - 1;
	if (limit.lo < NS_PER_S - 1)
		limit.hi++;
	return have.hi > limit.hi || (have.hi == limit.hi && have.lo > limit.lo);
}

/* Step 4: serialize at cfg.rate on the limiter clock (ns since epoch, an
 * integer remainder carried so long runs give the exact rate). Returns the
 * departure time in ms, or UINT64_MAX when the queue is full. */
static uint64_t serialize(const struct netsim_link *l, struct fate *f, size_t len, uint64_t now)
{
	const struct netsim_config *c = &l->cfg;
	uint64_t now_ns = (now - l->epoch) * NS_PER_MS, start, rem, num, end;

	if (!c->rate)
		return now;
	if (f->free_ns > now_ns) {
		if (queue_full(f->free_ns - now_ns, c->rate, len, c->queue_bytes))
			return UINT64_MAX;
		start = f->free_ns;
		rem = f->free_rem;
	} else {
		start = now_ns;
		rem = 0;
	}
	num = (uint64_t)len * NS_PER_S + rem;
	end = start + num / c->rate;
	f->free_ns = end;
	f->free_rem = num % c->rate;
	return l->epoch + (end + NS_PER_MS - 1) / NS_PER_MS;
}

/* Step 6 for one copy. */
static void schedule(const struct netsim_link *l, struct fate *f, int i, uint64_t depart)
{
	const struct netsim_config *c = &l->cfg;
	uint64_t at = depart + c->delay_ms;

	if (c->jitter_ms)
		at += prng_below(&f->rng, c->jitter_ms + 1);
	f->reordered[i] = chance(&f->rng, c->reorder);
	if (f->reordered[i])
		at += c->reorder_ms;
	if (c->fifo && at < f->fifo_at)
		at = f->fifo_at;
	f->fifo_at = at;
	f->at[i] = at;
}

static bool fits(const struct netsim_link *l, size_t bytes, size_t count)
{
	return l->st.held_bytes + bytes <= l->cfg.limit_bytes &&
	       l->st.held_datagrams + count <= l->cfg.limit_datagrams;
}

static void decide(const struct netsim_link *l, struct fate *f, size_t len, uint64_t now)
{
	uint64_t depart;

	*f = (struct fate){ .rng = l->rng,
		            .ge_bad = l->ge_bad,
		            .blk_left = l->blk_left,
		            .blk_lost = l->blk_lost,
		            .fifo_at = l->fifo_at,
		            .free_ns = l->free_ns,
		            .free_rem = l->free_rem };
	if (l->cfg.blackhole) {
		f->drop = DROP_BLACKHOLE;
		return;
	}
	if (lose(l, f))
		return;
	depart = serialize(l, f, len, now);
	if (depart == UINT64_MAX) {
		f->drop = DROP_QUEUE;
		return;
	}
	if (!fits(l, len, 1)) {
		/* never entered the limiter: its clock stays */
		f->free_ns = l->free_ns;
		f->free_rem = l->free_rem;
		f->drop = DROP_LIMIT;
		return;
	}
	f->copies = 1;
	schedule(l, f, 0, depart);
	if (chance(&f->rng, l->cfg.dup) && fits(l, 2 * len, 2)) {
		schedule(l, f, 1, depart);
		f->copies = 2;
	}
}

/* Allocate what the fate needs; all or nothing. */
static int reserve(struct netsim_link *l, const struct fate *f, unsigned cls, struct slot *s[2])
{
	s[0] = s[1] = NULL;
	if (heap_reserve(l, (size_t)f->copies) < 0)
		return KS_ERR_NOMEM;
	for (int i = 0; i < f->copies; i++) {
		s[i] = slot_get(l, cls);
		if (!s[i]) {
			if (i)
				slot_put(l, s[0]);
			return KS_ERR_NOMEM;
		}
	}
	return 0;
}

static void count_drop(struct netsim_stats *st, enum drop d)
{
	switch (d) {
	case KEEP: break;
	case DROP_BLACKHOLE: st->lost_blackhole++; break;
	case DROP_BURST: st->lost_burst++; break;
	case DROP_RANDOM: st->lost_random++; break;
	case DROP_QUEUE: st->queue_dropped++; break;
	case DROP_LIMIT: st->limit_dropped++; break;
	}
}

static void commit(struct netsim_link *l, const struct fate *f, struct slot *s[2], const void *buf,
                   size_t len)
{
	l->rng = f->rng;
	l->ge_bad = f->ge_bad;
	l->blk_left = f->blk_left;
	l->blk_lost = f->blk_lost;
	l->fifo_at = f->fifo_at;
	l->free_ns = f->free_ns;
	l->free_rem = f->free_rem;
	l->st.sent++;
	l->st.bytes_in += len;
	count_drop(&l->st, f->drop);
	for (int i = 0; i < f->copies; i++) {
		s[i]->len = (uint32_t)len;
		if (len)
			memcpy(s[i]->data, buf, len);
		heap_push_slot(l, f->at[i], s[i]);
		l->st.reordered += f->reordered[i];
		l->st.held_bytes += len;
		l->st.held_datagrams++;
	}
	l->st.dup += f->copies == 2;
	if (l->st.held_bytes > l->st.max_held_bytes)
		l->st.max_held_bytes = l->st.held_bytes;
}

int netsim_link_send(struct netsim_link *l, const void *buf, size_t len, uint64_t now)
{
	struct fate f;
	struct slot *s[2];
	int err;

	if (len > NETSIM_MAX_DATAGRAM)
		return KS_ERR_TOOBIG;
	if (!l->started) {
		l->started = true;
		l->epoch = l->last_now = now;
	}
	if (now < l->last_now)
		now = l->last_now;
	l->last_now = now;
	decide(l, &f, len, now);
	err = reserve(l, &f, class_of(len), s);
	if (err < 0)
		return err;
	commit(l, &f, s, buf, len);
	return 0;
}

ssize_t netsim_link_recv(struct netsim_link *l, uint64_t now, void *buf, size_t cap)
{
	struct slot *s;
	size_t len;

	if (!l->q.n || entries(l)[0].at > now)
		return KS_ERR_AGAIN;
	s = entries(l)[0].s;
	len = s->len;
	if (cap < len)
		return KS_ERR_TOOBIG;
	heap_remove(&l->q, &by_time, NULL, 0, NULL);
	if (len)
		memcpy(buf, s->data, len);
	slot_put(l, s);
	l->st.delivered++;
	l->st.bytes_out += len;
	l->st.held_bytes -= len;
	l->st.held_datagrams--;
	return (ssize_t)len;
}

uint64_t netsim_link_next_deadline(const struct netsim_link *l)
{
	return l->q.n ? entries(l)[0].at : KS_NEVER;
}

/* The invariants, for tests and debug builds: a heap ordered by (at, seq)
 * whose slots add up to the held counters, within the hold limits. */
bool netsim_link_check(const struct netsim_link *l)
{
	uint64_t bytes = 0;

	if (!heap_ordered(&l->q, &by_time, NULL))
		return false;
	for (size_t i = 0; i < l->q.n; i++)
		bytes += entries(l)[i].s->len;
	return l->q.n <= l->cap && l->q.n == l->st.held_datagrams && bytes == l->st.held_bytes &&
	       l->pooled_bytes <= l->cfg.limit_bytes && l->st.held_bytes <= l->st.max_held_bytes;
}

void netsim_link_stats(const struct netsim_link *l, struct netsim_stats *st) { *st = l->st; }

void netsim_link_free(struct netsim_link *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->q.n; i++)
		free(entries(l)[i].s);
	for (unsigned c = 0; c < NCLASS; c++) {
		while (l->pool[c]) {
			struct slot *s = l->pool[c];
			l->pool[c] = s->next;
			free(s);
		}
	}
	free(l->q.a);
	free(l);
}
