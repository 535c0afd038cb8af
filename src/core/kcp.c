/* kcp.c - the KCP engine. Step numbers (K1..K13) refer to docs/PROTOCOL.md (KCP).
 * Congestion control and pacing (K7, K10) are in kcp_cc.c.
 *
 * Storage is indexed by sequence number: the send window and the receive
 * window are rings of power-of-two capacity indexed by sn & mask, so an ACK,
 * a una or a received segment costs O(1) (amortized over the segments it
 * covers), never a scan of the window. RTO expiries live in a binary heap
 * (base/heap.h) keyed by resend time; fast-retransmit candidates in a FIFO ordered by the
 * ACK event from which their skips are counted. Each ring slot owns at most
 * one segment buffer, allocated on first use and kept; moving a segment from
 * the send queue into the send window swaps buffer pointers, so steady state
 * allocates nothing and memory is bounded by the ring sizes.
 *
 * The rings start at KCP_RING_INITIAL slots and double when a burst needs
 * more, up to the window's power of two; once the engine is idle again they
 * shrink back (trim_idle). So an idle engine holds a few KiB, not rings for
 * its whole window (issue 19: 2048-segment windows cost ~270 KiB a session).
 */
#include "core/kcp.h"

#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "base/minmax.h"
#include "base/rd.h"
#include "base/seq.h"
#include "base/wr.h"
#include "core/kcp_cc.h"

struct qseg {          /* queued by kcp_send, no sn yet */
	uint8_t *data; /* owned: mss bytes, NULL until first use */
	uint32_t len;
	uint8_t frg;
};

struct sseg {          /* send window slot, index sn & smask */
	uint8_t *data; /* owned: mss bytes, NULL until first use */
	uint32_t len;
	uint32_t sn;
	uint32_t ts;       /* clock at the last transmission */
	uint32_t rto;      /* this segment's RTO, backed off per timeout */
	uint32_t xmit;     /* transmissions so far */
	uint32_t heap;     /* index in the RTO heap while live */
	uint64_t resendts; /* retransmit when now reaches this */
	uint64_t fbase;    /* ACK event from which skips are counted */
	uint32_t fence;    /* skips count after an echo of a ts > fence */
	uint32_t mgen;     /* bumped per fq/pend entry pushed */
	uint8_t frg;
	uint8_t copies; /* K13 copies since the last transmission */
	bool live;      /* sent and not yet acknowledged */
	bool fq;        /* an fq entry with base fbase exists */
	bool pend;      /* a pend entry with this fence exists */
	bool fast;      /* the last retransmission was a fast one */
	bool spur;      /* ...or an isolated RTO: an older echo shows it spurious */
	bool held;      /* K12: its RTO waits for the answer to a silent probe */
};

struct rseg {          /* receive window slot, index sn & rmask */
	uint8_t *data; /* owned: mss bytes, NULL until first use */
	uint32_t len;
	uint32_t ts;    /* the first copy's: a duplicate's ACK echoes it (K3) */
	uint32_t ts_sn; /* ...if this slot's last segment is ts_sn - 1 (0: none) */
	uint8_t frg;
	bool present;
	bool early; /* K14: handed up early; the ordered path skips it */
};

struct fentry {
	uint32_t sn;
	uint32_t gen;  /* the slot's mgen when pushed: only the latest counts */
	uint64_t base; /* fq: ACK event; pend: fence sn */
};

struct ackent {
	uint32_t sn, ts;
};

struct rackent { /* an out-of-order arrival whose ACK is repeated */
	uint32_t sn, ts;
	uint32_t left; /* copies still to send in later flushes */
	uint64_t gen;  /* flush that carries the first copy */
};

struct fifo {             /* ring of fentry */
	struct fentry *e; /* owned */
	uint32_t cap, head, count;
};

struct kcp {
	struct kcp_config cfg;
	uint32_t conv, mss, minrto;
	kcp_output_fn output;
	void *user; /* borrowed: passed to output */
	bool dead;

	struct qseg *q; /* owned: send queue ring */
	uint32_t qmask, qhead, qcount;
	uint8_t *resv; /* view of the buffer of slot qcount handed out by
	                * kcp_send_reserve, until commit or kcp_send */

	struct sseg *s; /* owned: send window ring */
	uint32_t smask, snd_una, snd_nxt, inflight;
	uint32_t ack_hi;       /* segments below it were skipped by some ACK */
	uint32_t echo_hi;      /* latest transmission ts an ACK has echoed */
	uint32_t echo_sn;      /* highest sn echoed with ts echo_hi */
	uint64_t echo_at;      /* now when an ACK last echoed a transmission */
	struct heap rtoq;      /* rtoq.a owned: sn of live segments, min resendts first */
	struct fifo fq;        /* fast retransmit candidates, by fbase */
	struct fifo pend;      /* retransmitted, waiting for their fence */
	uint64_t ack_events;   /* input datagrams that carried an ACK */
	uint64_t ack_event_at; /* now of the last counted ACK event */
	uint32_t reo_extra;    /* learned reordering, added to cfg.resend */

	uint32_t srtt, rttvar, rto, min_rtt;
	uint32_t rtt_hi[2];  /* K4: largest sample, this window and the last */
	uint64_t rtt_win_at; /* when the current max window ends */
	uint32_t rtt_lo[2];  /* K7: smallest sample, this srtt and the last (0: none) */
	uint64_t rtt_lo_at;  /* when the current min window ends */
	uint32_t late;       /* K4: how long a segment may be late, not lost */
	uint32_t rmt_wnd;
	struct kcp_cc cc;   /* K7, K10: congestion window and pacing */
	uint32_t silent_sn; /* K12: the one segment resent into a silent path */
	bool silent;        /* ...silent_sn is set */
	uint64_t wake_at;   /* K12: the last wake copy (silent_wake) */

	struct rseg *r; /* owned: receive window ring */
	uint32_t rmask, rd_sn, rd_off, rcv_nxt;
	size_t rcv_bytes;    /* in-order bytes not yet read */
	struct ackent *acks; /* owned: ACKs to send */
	uint32_t nacks, ackcap;
	uint32_t acks_new;   /* bytes of the new segments among them (ack_lazy) */
	uint32_t rpresent;   /* receive slots holding a segment */
	struct rackent *rep; /* owned ring of KCP_ACK_REPEAT_SLOTS, K3 repeats;
	                      * NULL until an out-of-order arrival, and again
	                      * once idle (trim_idle) */
	uint32_t rep_head;
	uint32_t *eq; /* owned ring of sn offered early (K14), eq_cap
	               * long; NULL until an arrival above a hole */
	uint32_t eq_head, eq_len, eq_cap;
	uint64_t flush_gen; /* ACK flushes so far */
	bool tell;          /* send WINS at the next flush */
	uint32_t adv_wnd;   /* window in the last segment we sent */

	uint64_t flush_at, probe_at;
	uint32_t probe_wait;
	uint64_t last_now;    /* latest now seen, for kcp_recv's window tell */
	uint64_t due_at;      /* K4: the deadline when the caller last left */
	uint64_t stall_at;    /* K4: when the caller came back from a stall */
	uint64_t stall_until; /* ...expiries and old RTT samples wait until then */

	uint8_t *obuf; /* owned: datagram being built, mtu bytes; NULL when idle */
	size_t olen;
	size_t nbufs; /* segment buffers allocated */
	struct kcp_stats st;
};

/* ------------------------------------------------------------------ */
/* configuration                                                      */

void kcp_config_default(struct kcp_config *cfg)
{
	*cfg = (struct kcp_config){
		.nodelay = 0,
		.interval = KCP_INTERVAL_DEFAULT,
		.resend = 0,
		.nc = false,
		.snd_wnd = KCP_SND_WND_DEFAULT,
		.rcv_wnd = KCP_RCV_WND_DEFAULT,
		.snd_queue = 0,
		.mtu = KCP_MTU_DEFAULT,
		.min_rto = 0,
		.dead_link = KCP_DEAD_LINK_DEFAULT,
		.stream = false,
		.flush_on_send = true,
		.ack_immediate = true,
		.pace = false,
		.dup_thin = false,
		.bundle = false,
		.ack_lazy = false,
		.initial_sn = 0,
	};
}

static const struct {
	const char *name;
	uint32_t nodelay, interval, resend;
	bool nc, thin; /* thin: delayed ACKs and K13 bundling */
} presets[] = {
	{ "normal", 0, 40, 0, false, false },
	{ "fast", 0, 30, 2, true, true },
	{ "fast2", 1, 20, 2, true, true },
	{ "fast3", 1, 10, 2, true, true },
};

int kcp_config_preset(struct kcp_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++) {
		if (strcmp(presets[i].name, name) == 0) {
			cfg->nodelay = presets[i].nodelay;
			cfg->interval = presets[i].interval;
			cfg->resend = presets[i].resend;
			cfg->nc = presets[i].nc;
			/* A lone in-order segment's ACK waits for data going the
			 * other way (at most the interval) instead of taking a
			 * datagram of its own, and new data carries copies of a
			 * thin flight (K13). */
			cfg->ack_lazy = presets[i].thin;
			cfg->bundle = presets[i].thin;
			return 0;
		}
	}
	return KS_ERR_INVAL;
}

int kcp_config_check(const struct kcp_config *c)
{
	if (!c || c->nodelay > 2 || c->interval < KCP_INTERVAL_MIN ||
	    c->interval > KCP_INTERVAL_MAX)
		return KS_ERR_INVAL;
	if (c->snd_wnd < 1 || c->snd_wnd > KCP_WND_MAX || c->rcv_wnd < KCP_RCV_WND_MIN ||
	    c->rcv_wnd > KCP_WND_MAX || c->snd_queue > KCP_WND_MAX)
		return KS_ERR_INVAL;
	if (c->mtu < KCP_MTU_MIN || c->mtu > KCP_MTU_MAX || c->min_rto > KCP_RTO_MAX)
		return KS_ERR_INVAL;
	if (c->dead_link < 1 || c->dead_link > KCP_DEAD_LINK_MAX || c->resend > 0xffff)
		return KS_ERR_INVAL;
	if (c->early && c->stream)
		return KS_ERR_INVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                      */

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t c = 1;
	while (c < n)
		c <<= 1;
	return c;
}

static struct sseg *sslot(const struct kcp *k, uint32_t sn) { return &k->s[sn & k->smask]; }
static struct rseg *rslot(const struct kcp *k, uint32_t sn) { return &k->r[sn & k->rmask]; }
static struct qseg *qslot(const struct kcp *k, uint32_t i)
{
	return &k->q[(k->qhead + i) & k->qmask];
}

static uint32_t qmax(const struct kcp *k)
{
	return k->cfg.snd_queue ? k->cfg.snd_queue : k->cfg.snd_wnd;
}

/* The window we advertise: receive window minus in-order segments the
 * application has not read yet (K6). */
static uint32_t wnd_free(const struct kcp *k) { return k->cfg.rcv_wnd - (k->rcv_nxt - k->rd_sn); }

/* ensure_buf gives *slot an mss-byte buffer; a slot keeps it until the
 * engine goes idle after a burst (trim_idle). */
static int ensure_buf(struct kcp *k, uint8_t **slot)
{
	if (*slot)
		return 0;
	*slot = malloc(k->mss);
	if (!*slot)
		return KS_ERR_NOMEM;
	k->nbufs++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* RTO heap: min-heap of live sn keyed by resendts                    */

static bool rto_before(const void *x, const void *y, void *ctx)
{
	const struct kcp *k = ctx;

	return sslot(k, *(const uint32_t *)x)->resendts < sslot(k, *(const uint32_t *)y)->resendts;
}

static void rto_moved(void *e, size_t i, void *ctx)
{
	sslot(ctx, *(const uint32_t *)e)->heap = (uint32_t)i;
}

static const struct heap_ops rto_ops = { sizeof(uint32_t), rto_before, rto_moved };

/* rto_sn: the sn at index i of the heap (0: the earliest resendts). */
static uint32_t rto_sn(const struct kcp *k, uint32_t i) { return ((const uint32_t *)k->rtoq.a)[i]; }

static void rto_push(struct kcp *k, uint32_t sn) { heap_push(&k->rtoq, &rto_ops, k, &sn); }

/* rto_fix re-files the segment at index i after its resendts changed. */
static void rto_fix(struct kcp *k, uint32_t i) { heap_fix(&k->rtoq, &rto_ops, k, i); }

static void rto_remove(struct kcp *k, uint32_t i) { heap_remove(&k->rtoq, &rto_ops, k, i, NULL); }

/* ------------------------------------------------------------------ */
/* fast retransmit bookkeeping (K5)                                   */
/*                                                                    */
/* A live segment is "skipped" by every ACK datagram after the first  */
/* one that acknowledged a higher sn. Instead of a per-segment counter */
/* bumped by a window scan on each ACK, a segment records the ACK      */
/* event from which its skips count (fbase); k->ack_events - fbase is  */
/* its skip count. Candidates wait in `fq`, ordered by fbase. After a  */
/* retransmission, skips count again only once an ACK echoes a        */
/* transmission made after it (echoed ts > fence, the retransmission's */
/* clock): ACKs already on their way must not trigger a second         */
/* retransmission, but one that echoes a later transmission (a new     */
/* segment or another retransmission) shows that the retransmission    */
/* itself was lost. Such segments wait in `pend`, ordered by fence     */
/* (time order). Entries go stale when their segment is acked or       */
/* re-marked; stale entries are skipped and compacted away.            */

static bool fq_valid(const struct kcp *k, const struct fentry *e)
{
	const struct sseg *g = sslot(k, e->sn);
	return g->live && g->sn == e->sn && g->fq && g->mgen == e->gen;
}

static bool pend_valid(const struct kcp *k, const struct fentry *e)
{
	const struct sseg *g = sslot(k, e->sn);
	return g->live && g->sn == e->sn && g->pend && g->mgen == e->gen;
}

typedef bool (*valid_fn)(const struct kcp *k, const struct fentry *e);

static struct fentry *fifo_at(const struct fifo *f, uint32_t i)
{
	return &f->e[(f->head + i) % f->cap];
}

static void fifo_pop(struct fifo *f)
{
	f->head = (f->head + 1) % f->cap;
	f->count--;
}

/* fifo_push appends e; when full, stale entries are dropped first. Only a
 * slot's latest entry (by mgen) is valid, so at most one per live slot and
 * compaction frees at least half the ring: amortized O(1) per push. */
static void fifo_push(const struct kcp *k, struct fifo *f, struct fentry e, valid_fn ok)
{
	if (f->count == f->cap) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < f->count; i++)
			if (ok(k, fifo_at(f, i)))
				*fifo_at(f, n++) = *fifo_at(f, i);
		f->count = n;
	}
	if (f->count == f->cap)
		fifo_pop(f); /* cannot happen (see above); a lost hint only */
	*fifo_at(f, f->count++) = e;
}

static void fifo_prune(const struct kcp *k, struct fifo *f, valid_fn ok)
{
	while (f->count && !ok(k, fifo_at(f, 0)))
		fifo_pop(f);
}

/* fq_mark starts counting skips of segment g from the current ACK event. */
static void fq_mark(struct kcp *k, struct sseg *g)
{
	if (k->cfg.resend == 0 || (g->fq && g->fbase == k->ack_events))
		return;
	g->pend = false;
	g->fbase = k->ack_events;
	g->fq = true;
	g->mgen++;
	fifo_push(k, &k->fq, (struct fentry){ g->sn, g->mgen, k->ack_events }, fq_valid);
}

/* fence_mark: g was just retransmitted at now; its skips count again only
 * after an ACK echoes a transmission made after this millisecond. */
static void fence_mark(struct kcp *k, struct sseg *g, uint64_t now)
{
	uint32_t t = (uint32_t)now;

	g->fq = false;
	if (k->cfg.resend == 0 || (g->pend && g->fence == t))
		return;
	g->pend = true;
	g->fence = t;
	g->mgen++;
	fifo_push(k, &k->pend, (struct fentry){ g->sn, g->mgen, t }, pend_valid);
}

/* ------------------------------------------------------------------ */
/* ring growth                                                        */
/*                                                                    */
/* A ring of capacity c holds the slots of sn base .. base + c - 1    */
/* (base: snd_una, rd_sn). Doubling re-places each of them at         */
/* sn & newmask: c consecutive sns land in distinct new slots, with   */
/* their buffers and state; the rest of the new ring is empty. The    */
/* heap holds sns and each slot its heap index, so it only gets room; */
/* the FIFOs are copied in order.                                     */

static uint32_t ring_full(uint32_t wnd) { return pow2_at_least(wnd); }
static uint32_t ring_start(uint32_t wnd) { return min_u32(ring_full(wnd), KCP_RING_INITIAL); }

static uint32_t cap_for(uint32_t cap, uint32_t need)
{
	while (cap < need)
		cap <<= 1;
	return cap;
}

static void fifo_move(struct fifo *f, struct fentry *e, uint32_t cap)
{
	for (uint32_t i = 0; i < f->count; i++)
		e[i] = *fifo_at(f, i);
	free(f->e);
	f->e = e;
	f->cap = cap;
	f->head = 0;
}

/* grow_send makes room for need slots from snd_una (need <= snd_wnd). */
static int grow_send(struct kcp *k, uint32_t need)
{
	uint32_t ocap = k->smask + 1, ncap = cap_for(ocap, need);
	struct sseg *s;
	uint32_t *heap;
	struct fentry *fq, *pend;

	if (ncap == ocap)
		return 0;
	s = calloc(ncap, sizeof *s);
	heap = malloc(ncap * sizeof *heap);
	fq = calloc(2 * (size_t)ncap, sizeof *fq);
	pend = calloc(2 * (size_t)ncap, sizeof *pend);
	if (!s || !heap || !fq || !pend) {
		free(s);
		free(heap);
		free(fq);
		free(pend);
		return KS_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < ocap; i++)
		s[(k->snd_una + i) & (ncap - 1)] = *sslot(k, k->snd_una + i);
	memcpy(heap, k->rtoq.a, k->rtoq.n * sizeof *heap);
	fifo_move(&k->fq, fq, 2 * ncap);
	fifo_move(&k->pend, pend, 2 * ncap);
	free(k->s);
	free(k->rtoq.a);
	k->s = s;
	k->rtoq.a = heap;
	k->smask = ncap - 1;
	return 0;
}

/* grow_recv makes room for need slots from rd_sn (need <= rcv_wnd). */
static int grow_recv(struct kcp *k, uint32_t need)
{
	uint32_t ocap = k->rmask + 1, ncap = cap_for(ocap, need);
	struct rseg *r;

	if (ncap == ocap)
		return 0;
	if (!(r = calloc(ncap, sizeof *r)))
		return KS_ERR_NOMEM;
	for (uint32_t i = 0; i < ocap; i++)
		r[(k->rd_sn + i) & (ncap - 1)] = *rslot(k, k->rd_sn + i);
	free(k->r);
	k->r = r;
	k->rmask = ncap - 1;
	return 0;
}

/* grow_queue makes room for need queued segments (need <= qmax). */
static int grow_queue(struct kcp *k, uint32_t need)
{
	uint32_t ocap = k->qmask + 1, ncap = cap_for(ocap, need);
	struct qseg *q;

	if (ncap == ocap)
		return 0;
	if (!(q = calloc(ncap, sizeof *q)))
		return KS_ERR_NOMEM;
	for (uint32_t i = 0; i < ocap; i++)
		q[i] = *qslot(k, i);
	free(k->q);
	k->q = q;
	k->qhead = 0;
	k->qmask = ncap - 1;
	return 0;
}

/* resend_at: skips that make a segment lost. cfg.resend, raised by one
 * each time a fast retransmission proves spurious (K5). */
static uint32_t resend_at(const struct kcp *k) { return k->cfg.resend + k->reo_extra; }

static bool fast_due(const struct kcp *k)
{
	const struct fentry *e;

	if (!k->fq.count)
		return false;
	e = fifo_at(&k->fq, 0);
	return fq_valid(k, e) && k->ack_events - e->base >= resend_at(k);
}

/* ------------------------------------------------------------------ */
/* lifetime                                                           */

static int alloc_rings(struct kcp *k)
{
	uint32_t qcap = ring_start(qmax(k)), scap = ring_start(k->cfg.snd_wnd);
	uint32_t rcap = ring_start(k->cfg.rcv_wnd);

	k->qmask = qcap - 1;
	k->smask = scap - 1;
	k->rmask = rcap - 1;
	k->fq.cap = k->pend.cap = 2 * scap;
	k->ackcap = rcap; /* grows to ring_full(rcv_wnd) (queue_ack) */
	k->q = calloc(qcap, sizeof *k->q);
	k->s = calloc(scap, sizeof *k->s);
	k->rtoq.a = calloc(scap, sizeof(uint32_t));
	k->fq.e = calloc(k->fq.cap, sizeof *k->fq.e);
	k->pend.e = calloc(k->pend.cap, sizeof *k->pend.e);
	k->r = calloc(rcap, sizeof *k->r);
	k->acks = calloc(k->ackcap, sizeof *k->acks);
	if (!k->q || !k->s || !k->rtoq.a || !k->fq.e || !k->pend.e || !k->r || !k->acks)
		return KS_ERR_NOMEM;
	return 0;
}

int kcp_new(struct kcp **out, uint32_t conv, const struct kcp_config *cfg, uint64_t now,
            kcp_output_fn output, void *user)
{
	struct kcp *k;

	if (!out || !output || kcp_config_check(cfg) != 0)
		return KS_ERR_INVAL;
	k = calloc(1, sizeof *k);
	if (!k)
		return KS_ERR_NOMEM;
	k->cfg = *cfg;
	k->conv = conv;
	k->mss = cfg->mtu - KCP_HEADER_LEN;
	k->output = output;
	k->user = user;
	if (alloc_rings(k) != 0) {
		kcp_free(k);
		return KS_ERR_NOMEM;
	}
	k->minrto = cfg->min_rto ? cfg->min_rto
	                         : (cfg->nodelay ? KCP_RTO_MIN_NODELAY : KCP_RTO_MIN_NORMAL);
	k->rto = max_u32(KCP_RTO_INIT, k->minrto);
	kcp_cc_init(&k->cc, cfg->snd_wnd, cfg->initial_sn, now);
	k->rmt_wnd = KCP_RCV_WND_DEFAULT;
	k->snd_una = k->snd_nxt = k->ack_hi = cfg->initial_sn;
	k->rd_sn = k->rcv_nxt = cfg->initial_sn;
	k->flush_at = k->probe_at = k->ack_event_at = KS_NEVER;
	k->echo_hi = (uint32_t)now;
	k->echo_sn = cfg->initial_sn - 1;
	k->echo_at = KS_NEVER;
	k->last_now = now;
	k->due_at = KS_NEVER;
	k->adv_wnd = cfg->rcv_wnd;
	*out = k;
	return 0;
}

void kcp_free(struct kcp *k)
{
	if (!k)
		return;
	if (k->q)
		for (uint32_t i = 0; i <= k->qmask; i++)
			free(k->q[i].data);
	if (k->s)
		for (uint32_t i = 0; i <= k->smask; i++)
			free(k->s[i].data);
	if (k->r)
		for (uint32_t i = 0; i <= k->rmask; i++)
			free(k->r[i].data);
	free(k->q);
	free(k->s);
	free(k->rtoq.a);
	free(k->fq.e);
	free(k->pend.e);
	free(k->r);
	free(k->acks);
	free(k->obuf);
	free(k->rep);
	free(k->eq);
	free(k);
}

/* ------------------------------------------------------------------ */
/* output: segments packed into datagrams up to the MTU (K1)          */

static void emit(struct kcp *k)
{
	if (!k->olen)
		return;
	if (k->output(k->obuf, k->olen, k->user) < 0)
		k->st.output_errors++;
	k->st.dgram_out++;
	k->st.bytes_out += k->olen;
	k->olen = 0;
}

/* release_obuf frees the datagram buffer when nothing is being built,
 * queued, in flight or owed an ACK: an idle engine holds none; the next
 * segment allocates it again (put_seg). */
static void release_obuf(struct kcp *k)
{
	if (k->obuf && !k->olen && !k->inflight && !k->qcount && !k->nacks && !k->tell) {
		free(k->obuf);
		k->obuf = NULL;
	}
}

/* put_seg appends one segment; wnd and una are always the current ones. */
static void put_seg(struct kcp *k, uint8_t cmd, uint8_t frg, uint32_t ts, uint32_t sn,
                    const uint8_t *data, uint32_t len)
{
	struct wr w;

	if (k->olen + KCP_HEADER_LEN + len > k->cfg.mtu)
		emit(k);
	if (!k->obuf && !(k->obuf = malloc(k->cfg.mtu))) {
		k->st.output_errors++; /* as if the datagram were lost */
		return;
	}
	w = wr_init(k->obuf + k->olen, k->cfg.mtu - k->olen);
	/* Cannot fail: len <= mss and the buffer was emptied if needed. */
	wr_u32le(&w, k->conv);
	wr_u8(&w, cmd);
	wr_u8(&w, frg);
	k->adv_wnd = min_u32(wnd_free(k), 0xffff);
	wr_u16le(&w, (uint16_t)k->adv_wnd);
	wr_u32le(&w, ts);
	wr_u32le(&w, sn);
	wr_u32le(&w, k->rcv_nxt);
	wr_u32le(&w, len);
	wr_bytes(&w, data, len);
	k->olen += wr_len(&w);
}

/* repeat_acks sends again the ACKs of recent out-of-order arrivals that
 * una does not cover yet, each in up to KCP_ACK_REPEAT later flushes (K3):
 * without SACK, a lost ACK would otherwise make the sender resend a segment
 * the receiver holds. Only flushes that carry fresh ACKs repeat, so an
 * idle receiver sends nothing more. */
static void repeat_acks(struct kcp *k)
{
	for (uint32_t i = 0; k->rep && i < KCP_ACK_REPEAT_SLOTS; i++) {
		struct rackent *e = &k->rep[i];
		if (!e->left || e->gen == k->flush_gen)
			continue;
		if (!seq_ge(e->sn, k->rcv_nxt)) {
			e->left = 0;
			continue;
		}
		put_seg(k, KCP_CMD_ACK, 0, e->ts, e->sn, NULL, 0);
		e->left--;
		k->st.ack_repeated++;
	}
}

static void flush_acks(struct kcp *k)
{
	if (!k->nacks)
		return;
	for (uint32_t i = 0; i < k->nacks; i++)
		put_seg(k, KCP_CMD_ACK, 0, k->acks[i].ts, k->acks[i].sn, NULL, 0);
	k->st.ack_sent += k->nacks;
	k->nacks = 0;
	k->acks_new = 0;
	repeat_acks(k);
	k->flush_gen++;
}

/* remember_ooo notes an out-of-order arrival for repeat_acks. */
static void remember_ooo(struct kcp *k, uint32_t sn, uint32_t ts)
{
	struct rackent *e;

	if (KCP_ACK_REPEAT == 0)
		return;
	if (!k->rep && !(k->rep = calloc(KCP_ACK_REPEAT_SLOTS, sizeof *k->rep)))
		return; /* a repeat is a hint: none without memory */
	e = &k->rep[k->rep_head];
	*e = (struct rackent){ sn, ts, KCP_ACK_REPEAT, k->flush_gen };
	k->rep_head = (k->rep_head + 1) % KCP_ACK_REPEAT_SLOTS;
}

static void queue_ack(struct kcp *k, uint32_t sn, uint32_t ts)
{
	if (k->nacks == k->ackcap && k->ackcap < ring_full(k->cfg.rcv_wnd)) {
		struct ackent *a = realloc(k->acks, 2 * (size_t)k->ackcap * sizeof *a);
		if (a) {
			k->acks = a;
			k->ackcap *= 2;
		}
	}
	if (k->nacks == k->ackcap) {
		/* More ACKs than the list holds (a huge datagram, or no
		 * memory to grow it): send what we have now rather than
		 * forget any. */
		flush_acks(k);
		emit(k);
	}
	k->acks[k->nacks++] = (struct ackent){ sn, ts };
}

/* ------------------------------------------------------------------ */
/* RTO and congestion window (K4, K7)                                 */

/* rtt_top: the largest RTT sample of the current and the previous window
 * (each at least KCP_RTT_WINDOW_MIN ms and KCP_RTT_WINDOWS srtts long). */
static uint32_t rtt_top(struct kcp *k, uint32_t rtt, uint64_t now)
{
	if (k->rtt_win_at == 0 || now >= k->rtt_win_at) {
		k->rtt_hi[1] = k->rtt_win_at && now < k->rtt_win_at + KCP_RTT_WINDOW_MIN
		                       ? k->rtt_hi[0]
		                       : 0;
		k->rtt_hi[0] = 0;
		k->rtt_win_at =
		        now + max_u64((uint64_t)k->srtt * KCP_RTT_WINDOWS, KCP_RTT_WINDOW_MIN);
	}
	k->rtt_hi[0] = max_u32(k->rtt_hi[0], rtt);
	return max_u32(k->rtt_hi[0], k->rtt_hi[1]);
}

/* rtt_floor_add files a sample into the recent floor (K7): the smallest
 * sample of the current and the previous window, each one srtt (at least
 * KCP_RTT_FLOOR_MIN ms) long. Jitter raises srtt but not the floor (some
 * samples in every srtt still meet no delay); a queue raises both. */
static void rtt_floor_add(struct kcp *k, uint32_t rtt, uint64_t now)
{
	uint64_t span = max_u64(k->srtt, KCP_RTT_FLOOR_MIN);

	if (k->rtt_lo_at == 0 || now >= k->rtt_lo_at) {
		k->rtt_lo[1] = k->rtt_lo_at && now < k->rtt_lo_at + span ? k->rtt_lo[0] : 0;
		k->rtt_lo[0] = 0;
		k->rtt_lo_at = now + span;
	}
	rtt = max_u32(rtt, 1);
	k->rtt_lo[0] = k->rtt_lo[0] ? min_u32(k->rtt_lo[0], rtt) : rtt;
}

/* rtt_floor: the recent floor, 0 before any sample. */
static uint32_t rtt_floor(const struct kcp *k)
{
	if (!k->rtt_lo[1])
		return k->rtt_lo[0];
	return k->rtt_lo[0] ? min_u32(k->rtt_lo[0], k->rtt_lo[1]) : k->rtt_lo[1];
}

static void rtt_sample(struct kcp *k, uint32_t rtt, uint64_t now)
{
	/* G: how long an ACK may wait at the peer (K4); a lazy ACK (K13)
	 * waits only for a thin flow's data, which the late rule covers. */
	uint32_t g = k->cfg.ack_immediate ? 1 : k->cfg.interval;
	uint32_t lazy = k->cfg.ack_lazy ? k->cfg.interval : g;
	uint64_t rto, top;

	if (k->min_rtt == 0)
		k->srtt = 0; /* a seed (kcp_seed_rtt) gives way to the first sample */
	if (k->min_rtt == 0 || max_u32(rtt, 1) < k->min_rtt)
		k->min_rtt = max_u32(rtt, 1);
	rtt_floor_add(k, rtt, now);
	if (k->srtt == 0) {
		k->srtt = max_u32(rtt, 1);
		k->rttvar = rtt / 2;
	} else {
		uint32_t delta = rtt > k->srtt ? rtt - k->srtt : k->srtt - rtt;
		k->rttvar = (3 * k->rttvar + delta) / 4;
		k->srtt = max_u32((7 * k->srtt + rtt) / 8, 1);
	}
	rto = (uint64_t)k->srtt + max_u32(g, 4 * k->rttvar);
	k->rto = (uint32_t)(rto < k->minrto ? k->minrto : min_u64(rto, KCP_RTO_MAX));
	/* K4: the largest recent sample, plus the granularity and a margin:
	 * the smoothed variance shrinks in a quiet spell, and on a path whose
	 * delay varies widely (jitter; a FIFO where a slow datagram holds back
	 * the next) the RTO then expires for segments that are merely late. */
	top = rtt_top(k, rtt, now);
	k->late = (uint32_t)min_u64(top + lazy + top / KCP_RTT_TOP_MARGIN, KCP_RTO_MAX);
}

/* K4: the handshake's round trip as the first sample (kcp.h); rtt_sample
 * starts over at the engine's own first one (min_rtt still 0). */
void kcp_seed_rtt(struct kcp *k, uint64_t rtt, bool bound)
{
	uint32_t g = k->cfg.ack_immediate ? 1 : k->cfg.interval;
	uint32_t r = (uint32_t)min_u64(rtt, KCP_SEED_MAX);
	uint32_t rto =
	        (uint32_t)min_u64((uint64_t)max_u32(r, 1) + max_u32(g, 4 * (r / 2)), KCP_SEED_MAX);

	rto = max_u32(rto, k->minrto);
	if (k->min_rtt || (bound && rto >= k->rto)) /* min_rtt: KCP sampled itself */
		return;
	k->srtt = max_u32(r, 1);
	k->rttvar = r / 2;
	k->rto = rto;
}

/* ------------------------------------------------------------------ */
/* sending (K3, K5, K8)                                               */

/* cc_path: what the congestion controller needs to know of the path. */
static struct kcp_cc_path cc_path(const struct kcp *k)
{
	return (struct kcp_cc_path){ .srtt = k->srtt,
		                     .min_rtt = k->min_rtt,
		                     .rtt_floor = rtt_floor(k),
		                     .rtt_peak = max_u32(k->rtt_hi[0], k->rtt_hi[1]),
		                     .snd_una = k->snd_una,
		                     .snd_nxt = k->snd_nxt,
		                     .snd_wnd = k->cfg.snd_wnd,
		                     .rmt_wnd = k->rmt_wnd,
		                     .resend = k->cfg.resend,
		                     .nc = k->cfg.nc,
		                     .pace = k->cfg.pace };
}

/* window_open: queued data that the window would let out now. */
static bool window_open(const struct kcp *k)
{
	struct kcp_cc_path pp = cc_path(k);

	return k->qcount && seq_lt(k->snd_nxt, k->snd_una + kcp_cc_send_limit(&k->cc, &pp));
}

/* paced_now: the bucket holds a segment at the last time seen. */
static bool paced_now(const struct kcp *k)
{
	struct kcp_cc_path pp = cc_path(k);
	uint64_t rate = kcp_cc_pace_rate(&k->cc, &pp);

	return !rate || kcp_cc_pace_avail(&k->cc, rate, k->last_now) >= KCP_PACE_ONE;
}

static bool sendable(const struct kcp *k) { return window_open(k) && paced_now(k); }

/* fast_ready: a fast retransmit is due and the pace lets it out (K5). */
static bool fast_ready(const struct kcp *k) { return fast_due(k) && paced_now(k); }

/* pace_deadline: when the bucket holds a segment again, if the window is
 * open but the pace holds the data back; KS_NEVER otherwise. */
static uint64_t pace_deadline(const struct kcp *k, uint64_t now)
{
	struct kcp_cc_path pp = cc_path(k);
	uint64_t rate = kcp_cc_pace_rate(&k->cc, &pp), have;

	if (!rate || (!window_open(k) && !fast_due(k)))
		return KS_NEVER;
	have = kcp_cc_pace_avail(&k->cc, rate, now);
	if (have >= KCP_PACE_ONE)
		return now;
	return now + max_u64((KCP_PACE_ONE - have + rate - 1) / rate, 1);
}

static void transmit(struct kcp *k, struct sseg *g, uint64_t now)
{
	g->ts = (uint32_t)now;
	g->xmit++;
	g->copies = 0;
	/* Retransmissions are not held back, but they use the pace too. */
	if (g->xmit > 1)
		kcp_cc_pace_spend(&k->cc);
	put_seg(k, KCP_CMD_PUSH, g->frg, g->ts, g->sn, g->data, g->len);
}

static bool take_pace(struct kcp *k)
{
	struct kcp_cc_path pp = cc_path(k);

	return kcp_cc_pace_take(&k->cc, &pp);
}

static void send_new(struct kcp *k, uint64_t now)
{
	while (!k->dead && window_open(k) && take_pace(k)) {
		struct qseg *qs;
		struct sseg *g;
		uint8_t *spare;

		if (grow_send(k, k->snd_nxt - k->snd_una + 1) != 0)
			break; /* no memory now: the segment waits in the queue */
		qs = qslot(k, 0);
		g = sslot(k, k->snd_nxt);
		spare = g->data;

		*g = (struct sseg){ .data = qs->data, .len = qs->len, .frg = qs->frg };
		qs->data = spare;
		k->qhead = (k->qhead + 1) & k->qmask;
		k->qcount--;
		g->sn = k->snd_nxt++;
		g->rto = k->rto;
		g->resendts = now + k->rto + (k->cfg.nodelay ? 0 : k->rto / 8);
		g->live = true;
		k->inflight++;
		rto_push(k, g->sn);
		k->st.seg_sent++;
		k->st.data_bytes_sent += g->len;
		transmit(k, g, now);
	}
}

/* dup_thin sends the segments first sent in this flush once more, in
 * datagrams of their own, when the whole flight is thin and nothing waits
 * behind it (K11). A lost request or response then costs nothing instead
 * of an RTO, and the copy's ACK repairs a lost ACK. The copy repeats the
 * original's ts and leaves xmit alone: it is not a retransmission, so RTT
 * samples stay valid and congestion control does not see it. Bulk data
 * never qualifies: its flight is larger or data is queued behind it. */
static void dup_thin(struct kcp *k, uint32_t first)
{
	/* send_new hands out sn in order, so this flush's new segments are
	 * [first, snd_nxt); all are in flight, so inflight bounds their count. */
	if (!k->cfg.dup_thin || first == k->snd_nxt || k->qcount || k->inflight > KCP_THIN_FLIGHT)
		return;
	for (uint32_t sn = first; sn != k->snd_nxt; sn++) {
		const struct sseg *g = sslot(k, sn);

		put_seg(k, KCP_CMD_PUSH, g->frg, g->ts, g->sn, g->data, g->len);
		k->st.seg_dup_thin++;
	}
	emit(k);
}

/* bundle appends copies of older unacknowledged segments to the datagram
 * that carries this flush's new data, in the room it has left, when the
 * flight is thin (K13). A lost datagram of a thin flow (messages, keystrokes,
 * requests) is then repaired by the next one, one send interval later,
 * instead of by fast retransmit (which needs later ACKs: an RTT or more)
 * or an RTO, and no datagram is added. As in K11 the copy repeats the
 * segment's last ts and is not a retransmission. Oldest first: the oldest
 * hole is the one that holds delivery back. Bulk data never qualifies: its
 * flight is large and its datagrams are full. */
static void bundle(struct kcp *k, uint32_t first, uint64_t now)
{
	if (!k->cfg.bundle || first == k->snd_nxt || !k->olen || k->inflight > KCP_BUNDLE_FLIGHT)
		return;
	for (uint32_t sn = k->snd_una; sn != first; sn++) {
		struct sseg *g = sslot(k, sn);

		if (!g->live || g->ts == (uint32_t)now || g->copies >= KCP_BUNDLE_COPIES)
			continue; /* acknowledged, sent in this flush, copied enough */
		if (k->olen + KCP_HEADER_LEN + g->len > k->cfg.mtu)
			break;
		put_seg(k, KCP_CMD_PUSH, g->frg, g->ts, g->sn, g->data, g->len);
		g->copies++;
		k->st.seg_bundled++;
	}
}

static uint32_t backoff(const struct kcp *k, uint32_t rto)
{
	uint64_t r = rto;
	if (k->cfg.nodelay == 0)
		r += max_u32(rto, k->rto);
	else if (k->cfg.nodelay == 1)
		r += rto / 2;
	else
		r += k->rto / 2;
	return (uint32_t)min_u64(r, KCP_RTO_MAX);
}

/* loss_seen notes that g is about to be resent: the first one of a new
 * loss episode (sn >= recover) names the episode for a later undo (K7). */
static void loss_seen(struct kcp *k, const struct sseg *g, bool *episode)
{
	kcp_cc_on_resend(&k->cc, g->sn, g->xmit == 1, episode);
}

/* passed: an ACK has echoed a transmission made after g's last one (a
 * later ms, or the same ms and a higher sn: sent after g in one flush), so
 * in a FIFO path g should have arrived before it. */
static bool passed(const struct kcp *k, const struct sseg *g)
{
	return seq_gt(k->echo_hi, g->ts) || (k->echo_hi == g->ts && seq_gt(k->echo_sn, g->sn));
}

/* queued: g's RTO expired, but the ACKs arriving right now (within a
 * quarter RTT) are for segments sent in the same flush just before g: g
 * is most likely still waiting behind them in a bottleneck queue (a burst
 * after the window reopened). Its RTO is deferred rather than fired
 * spuriously, until ACKs pass it or stop coming (K4). */
static bool queued(const struct kcp *k, const struct sseg *g, uint64_t now)
{
	return !passed(k, g) && k->echo_at != KS_NEVER &&
	       now < k->echo_at + max_u32(k->srtt / 4, 1);
}

/* path_alive: the path answered while g was out. Either an ACK has echoed a
 * transmission made in the same millisecond as g's last one or later (g's
 * own is not among them, g is unacknowledged), or an ACK arrived after g's
 * last transmission: a burst whose tail was dropped, with nothing sent
 * after it (the window waits for a hole), is answered only by echoes of
 * older data, yet the path is working (K4). */
static bool path_alive(const struct kcp *k, const struct sseg *g)
{
	return seq_ge(k->echo_hi, g->ts) ||
	       (k->echo_at != KS_NEVER && seq_gt((uint32_t)k->echo_at, g->ts));
}

/* silent_now: no ACK has arrived for a quarter RTT (at least
 * KCP_QUIET_MIN ms, at most half the RTO) while segments are out: the peer
 * is not answering at the moment, whatever it did while the segments now
 * expiring were out (K12). */
static bool silent_now(const struct kcp *k, uint64_t now)
{
	uint64_t quiet = min_u32(max_u32(k->srtt / 4, KCP_QUIET_MIN), max_u32(k->rto / 2, 1));

	return k->echo_at == KS_NEVER || now >= k->echo_at + quiet;
}

/* silent_probe: the segment resent into the silent path (K12), while it is
 * unacknowledged and nothing has answered since; NULL otherwise. */
static struct sseg *silent_probe(const struct kcp *k)
{
	struct sseg *p = sslot(k, k->silent_sn);

	if (!k->silent || !p->live || p->sn != k->silent_sn || path_alive(k, p))
		return NULL;
	return p;
}

/* silent_release: once the probe is answered (acknowledged, or an echo of
 * a transmission as late as it), the segments held behind it are due at
 * once: the path works, and what it has not acknowledged by now was lost
 * (the ACKs of a stalled receiver's backlog came before the probe's; any
 * still arriving defer them again, see queued). Once per silent episode,
 * O(flight). */
static void silent_release(struct kcp *k, uint64_t now)
{
	const struct sseg *p = sslot(k, k->silent_sn);

	if (!k->silent || (p->live && p->sn == k->silent_sn && seq_lt(k->echo_hi, p->ts)))
		return;
	k->silent = false;
	for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++) {
		struct sseg *g = sslot(k, sn);

		if (!g->live || !g->held)
			continue;
		g->held = false;
		if (g->resendts > now) {
			g->resendts = now;
			rto_fix(k, g->heap);
		}
	}
}

/* copy_now puts a copy of g out at once in a datagram of its own, past
 * cwnd and the pace, stamped now: its echo shows the path answered
 * (echo_at, echo_hi) but is no RTT sample of g's own transmissions
 * (ack_echo). xmit, the RTO and cwnd are left alone. */
static void copy_now(struct kcp *k, const struct sseg *g, uint64_t now)
{
	emit(k);
	put_seg(k, KCP_CMD_PUSH, g->frg, (uint32_t)now, g->sn, g->data, g->len);
	emit(k);
}

/* silent_wake (K12): a datagram from the peer arrived while our flight is
 * held on a silent path with its probe backed off (no ACK for a quarter
 * RTT, none since the oldest unacknowledged segment last went out, its
 * RTO grown past the base one). The peer is evidently there again, yet
 * the backed-off RTO may be seconds away: where losses run per datagram
 * (the bench relay's Gilbert-Elliott chain) the path is back long before
 * it, and the transfer would wait for it, its session kept alive by the
 * peer's own probes (L7). So the oldest segment goes out again at once, a
 * copy stamped now (copy_now), as TCP restarts its RTO when the path is
 * heard from: its ACK releases the held flight (silent_release), which
 * resends at the base RTO (path_alive). At most one per base RTO, so a
 * peer that keeps sending draws a copy per RTO, not per datagram. The
 * copy is not a transmission: dead_link still counts the timer's, and
 * a peer never heard adds nothing (a dead path's bound is unchanged). */
static void silent_wake(struct kcp *k, uint64_t now)
{
	struct sseg *g = sslot(k, k->snd_una);

	if (!k->inflight || !g->live || g->sn != k->snd_una || !g->xmit || g->rto <= k->rto ||
	    !silent_now(k, now) || path_alive(k, g) || (uint32_t)now - g->ts < k->rto ||
	    now < k->wake_at + k->rto)
		return;
	k->wake_at = now;
	k->st.seg_wake++;
	copy_now(k, g, now);
}

/* retx_copies puts a timeout retransmission of a thin flight (K11's rule:
 * at most KCP_THIN_FLIGHT segments out, nothing queued) out again, in
 * datagrams of its own: one copy at the second transmission, one more
 * at each later one, at most KCP_RETX_COPIES (K15). Losses that come in
 * runs of datagrams (a burst, a fading radio) take the one datagram an
 * RTO sends nearly as often as the one before it, so each backed-off RTO
 * would cost the exchange more; the copies get through the run in fewer
 * RTOs. As K11's, a copy repeats the transmission (same ts) and is not
 * one: xmit, the RTO, the pace and cwnd are left alone, seg_dup_thin
 * counts it. */
static void retx_copies(struct kcp *k, const struct sseg *g)
{
	uint32_t n = min_u32(g->xmit - 1, KCP_RETX_COPIES);

	if (!k->cfg.dup_thin || k->qcount || k->inflight > KCP_THIN_FLIGHT)
		return;
	for (uint32_t i = 0; i < n; i++) {
		emit(k);
		put_seg(k, KCP_CMD_PUSH, g->frg, g->ts, g->sn, g->data, g->len);
		k->st.seg_dup_thin++;
	}
	emit(k);
}

/* resend_timeout resends g, whose RTO expired (K4, K7). An expiry while
 * the path is alive is an isolated loss: resent without backoff and
 * reported in *isolated. Only an expiry with the path silent since g went
 * out (the whole flight after it is unanswered) backs off and is reported
 * in *flight. Returns false when g has used up its transmissions: the
 * link is dead. */
static bool resend_timeout(struct kcp *k, struct sseg *g, uint64_t now, bool *isolated,
                           bool *flight)
{
	bool alive = path_alive(k, g);

	if (g->xmit >= k->cfg.dead_link) {
		/* K7: its last allowed transmission went unanswered for a
		 * whole RTO. */
		k->dead = true;
		return false;
	}
	/* Skipped often enough for the configured threshold but not for the
	 * learned one: the learned one is too high. */
	if (g->fq && k->reo_extra && k->ack_events - g->fbase >= k->cfg.resend)
		k->reo_extra--;
	g->rto = alive ? k->rto : backoff(k, g->rto);
	g->resendts = now + g->rto;
	g->fast = g->held = false;
	/* An echo of the original shows either kind spurious (K12: a silent
	 * path may be a stalled receiver, not a lost flight). */
	g->spur = true;
	rto_fix(k, g->heap);
	fence_mark(k, g, now);
	k->st.seg_retx_timeout++;
	k->st.seg_retx_isolated += alive;
	k->st.data_bytes_retx += g->len;
	loss_seen(k, g, alive ? isolated : flight);
	transmit(k, g, now);
	retx_copies(k, g);
	return true;
}

/* K12: while the path is silent, one segment probes it and the others wait
 * on its timer. A receiver that stops reading for longer than the RTO (a
 * descheduled or busy daemon: on a 1 ms path the RTO is a few tens of ms)
 * would otherwise get the whole flight again at once, hundreds of
 * segments, right when it is slowest, and nearly every copy is spurious.
 * The probe is the oldest unacknowledged segment, the one the receiver
 * can always take (a later one may be beyond its window, behind the hole).
 * If it is answered, what is still unacknowledged resends (silent_release);
 * if not, it backs off alone. Returns true when g was held. */
static bool silent_hold(struct kcp *k, struct sseg *g, uint64_t now, bool *isolated, bool *flight)
{
	struct sseg *p;

	if (!silent_now(k, now))
		return false;
	p = silent_probe(k);
	if (!p) {
		p = sslot(k, k->snd_una);
		if (!p->live || p->sn != k->snd_una)
			p = g;
		k->silent = true;
		k->silent_sn = p->sn;
		if (p == g || !resend_timeout(k, p, now, isolated, flight))
			return false; /* g is the probe (or the link is dead) */
	}
	if (p == g)
		return false;
	g->rto = max_u32(g->rto, p->rto);
	g->resendts = max_u64(g->resendts, p->resendts + 1);
	g->held = true;
	rto_fix(k, g->heap);
	return true;
}

/* maybe_late: g's RTO expired in a thin flight (at most KCP_LATE_FLIGHT
 * segments), but no ACK has echoed a transmission made after g's, and g
 * has been out for less than the largest RTT sample seen lately (k->late):
 * g is as likely late as lost. Its expiry waits until then, or until an
 * echo passes it (then fast retransmit or this RTO sends it). On a FIFO
 * path nothing sent after g can be echoed before g is, so a thin flow
 * never resends a segment that may still arrive (K4). A large flight is
 * left alone: there an expiry without a later echo is mostly the tail of
 * a burst dropped at a queue, whose queueing delay inflates the samples. */
static bool maybe_late(const struct kcp *k, const struct sseg *g, uint64_t now)
{
	return k->inflight <= KCP_LATE_FLIGHT && !passed(k, g) && (uint32_t)now - g->ts < k->late;
}

static void retx_timeouts(struct kcp *k, uint64_t now, bool *isolated, bool *flight)
{
	while (!k->dead && k->rtoq.n && sslot(k, rto_sn(k, 0))->resendts <= now) {
		struct sseg *g = sslot(k, rto_sn(k, 0));
		if (now < k->stall_until) {
			/* K4: back from a stall, the ACKs may be unread yet. */
			g->resendts = k->stall_until;
			rto_fix(k, 0);
			k->st.rto_stall_deferred++;
			continue;
		}
		if (queued(k, g, now)) {
			g->resendts = k->echo_at + max_u32(k->srtt / 4, 1);
			rto_fix(k, 0);
			continue;
		}
		if (maybe_late(k, g, now)) {
			g->resendts = now + (k->late - (uint32_t)(now - g->ts));
			rto_fix(k, 0);
			continue;
		}
		if (silent_hold(k, g, now, isolated, flight))
			continue;
		if (!k->dead)
			(void)resend_timeout(k, g, now, isolated, flight);
	}
}

/* pace_left: the flush's bucket still holds a segment (or nothing is paced). */
static bool pace_left(const struct kcp *k)
{
	struct kcp_cc_path pp = cc_path(k);

	return !kcp_cc_pace_rate(&k->cc, &pp) || k->cc.pace_tok >= KCP_PACE_ONE;
}

static void retx_fast(struct kcp *k, uint64_t now, bool *isolated)
{
	while (!k->dead && k->fq.count) {
		struct fentry e = *fifo_at(&k->fq, 0);
		struct sseg *g = sslot(k, e.sn);
		if (fq_valid(k, &e) && k->ack_events - e.base < resend_at(k))
			break;
		/* K5/K10: fast retransmits leave at the pace too, the rest on a
		 * later flush: a burst of them into the queue whose overflow
		 * they repair is lost again and repaired again. */
		if (fq_valid(k, &e) && !pace_left(k))
			break;
		fifo_pop(&k->fq);
		if (!fq_valid(k, &e))
			continue;
		g->fq = false;
		if (g->xmit > KCP_FASTACK_LIMIT)
			continue; /* leave it to the RTO */
		g->resendts = now + g->rto;
		g->fast = g->spur = true;
		g->held = false;
		rto_fix(k, g->heap);
		fence_mark(k, g, now);
		k->st.seg_retx_fast++;
		k->st.data_bytes_retx += g->len;
		loss_seen(k, g, isolated);
		transmit(k, g, now);
	}
}

/* probe_update arms or disarms window probing (K8): only while the peer
 * says its window is zero and we have data waiting for it. */
static void probe_update(struct kcp *k, uint64_t now)
{
	if (k->rmt_wnd == 0 && k->qcount) {
		if (k->probe_at == KS_NEVER) {
			k->probe_wait = KCP_PROBE_INIT;
			k->probe_at = now + k->probe_wait;
		}
	} else {
		k->probe_at = KS_NEVER;
		k->probe_wait = 0;
	}
}

static void probe_step(struct kcp *k, uint64_t now)
{
	if (k->probe_at > now)
		return;
	put_seg(k, KCP_CMD_WASK, 0, 0, 0, NULL, 0);
	k->st.probe_sent++;
	k->probe_wait = min_u32(k->probe_wait + k->probe_wait / 2, KCP_PROBE_MAX);
	k->probe_at = now + k->probe_wait;
}

static bool wanted(const struct kcp *k)
{
	return k->nacks || k->tell || sendable(k) || fast_ready(k);
}

static void arm(struct kcp *k, uint64_t now)
{
	if (wanted(k) && k->flush_at == KS_NEVER)
		k->flush_at = now + k->cfg.interval;
}

/* stall_check: the caller comes back KCP_STALL_LATE ms or more after the
 * deadline it was given, with data in flight: its process did not run (a
 * descheduled daemon, a loop busy elsewhere), and the peer's ACKs of that
 * time may be waiting unread in its input. A caller's loop may well run
 * an expired timer before it reads its input (the daemons' does), so for
 * KCP_STALL_GRACE ms RTO expiries wait, and RTT samples of segments sent
 * before the stall are not taken: they measure the stall, not the path
 * (K4). */
static void stall_check(struct kcp *k, uint64_t now)
{
	if (k->due_at == KS_NEVER || now < k->due_at + KCP_STALL_LATE || !k->inflight)
		return;
	k->stall_at = now;
	k->stall_until = now + KCP_STALL_GRACE;
}

/* note_due: the caller leaves; remember the deadline it leaves with. */
static void note_due(struct kcp *k, uint64_t now) { k->due_at = kcp_next_deadline(k, now); }

/* stalled_sample: an RTT sample, read right after a stall, of a segment
 * sent before it: its ACK may have waited unread in our input (K4). */
static bool stalled_sample(const struct kcp *k, uint32_t rtt, uint64_t now)
{
	return now < k->stall_until && now - rtt < k->stall_at;
}

void kcp_flush(struct kcp *k, uint64_t now)
{
	struct kcp_cc_path pp;
	bool isolated = false, flight = false;
	uint32_t first;

	if (k->dead)
		return;
	stall_check(k, now);
	k->last_now = now;
	pp = cc_path(k);
	kcp_cc_flush_begin(&k->cc, &pp, now);
	flush_acks(k);
	probe_update(k, now);
	probe_step(k, now);
	if (k->tell) {
		put_seg(k, KCP_CMD_WINS, 0, 0, 0, NULL, 0);
		k->st.tell_sent++;
		k->tell = false;
	}
	retx_timeouts(k, now, &isolated, &flight);
	retx_fast(k, now, &isolated);
	/* React to loss before sending new data, so that what the new window
	 * allows goes out now and nothing is left wanting a flush. */
	pp = cc_path(k);
	k->st.loss_random += kcp_cc_on_loss(&k->cc, &pp, isolated, flight);
	first = k->snd_nxt;
	send_new(k, now);
	bundle(k, first, now);
	emit(k);
	dup_thin(k, first);
	fifo_prune(k, &k->fq, fq_valid);
	k->flush_at = KS_NEVER;
	release_obuf(k);
	note_due(k, now);
}

void kcp_update(struct kcp *k, uint64_t now)
{
	/* One rule for "due", shared with kcp_next_deadline, so a caller that
	 * follows the deadline can never spin. */
	if (kcp_next_deadline(k, now) <= now)
		kcp_flush(k, now);
}

uint64_t kcp_next_deadline(const struct kcp *k, uint64_t now)
{
	uint64_t d = KS_NEVER;

	if (k->dead)
		return KS_NEVER;
	if (wanted(k))
		d = k->flush_at == KS_NEVER ? now : k->flush_at;
	if (k->rtoq.n)
		d = min_u64(d, sslot(k, rto_sn(k, 0))->resendts);
	d = min_u64(d, k->probe_at);
	d = min_u64(d, pace_deadline(k, now));
	return d == KS_NEVER ? d : (d < now ? now : d);
}

/* ------------------------------------------------------------------ */
/* kcp_send (K2)                                                      */

static size_t tail_room(const struct kcp *k)
{
	if (!k->cfg.stream || !k->qcount)
		return 0;
	return k->mss - qslot(k, k->qcount - 1)->len;
}

size_t kcp_send_room(const struct kcp *k)
{
	uint32_t free_segs = qmax(k) - k->qcount;

	if (k->dead)
		return 0;
	if (k->cfg.stream)
		return (size_t)free_segs * k->mss + tail_room(k);
	return (size_t)min_u32(free_segs, KCP_MAX_FRAGMENTS) * k->mss;
}

/* fill_queue appends len bytes as nseg new segments (buffers already there). */
static void fill_queue(struct kcp *k, const uint8_t *p, size_t len, uint32_t nseg)
{
	for (uint32_t i = 0; i < nseg; i++) {
		struct qseg *qs = qslot(k, k->qcount);
		uint32_t n = (uint32_t)(len < k->mss ? len : k->mss);
		if (n)
			memcpy(qs->data, p, n);
		qs->len = n;
		qs->frg = k->cfg.stream ? 0 : (uint8_t)(nseg - 1 - i);
		p += n;
		len -= n;
		k->qcount++;
	}
}

static ssize_t enqueue(struct kcp *k, const uint8_t *p, size_t len)
{
	size_t take = len, tail = tail_room(k);
	uint32_t nseg;

	if (k->cfg.stream) {
		take = len < kcp_send_room(k) ? len : kcp_send_room(k);
		if (take == 0)
			return KS_ERR_FULL;
		nseg = (uint32_t)((take - min_u64(take, tail) + k->mss - 1) / k->mss);
	} else {
		nseg = len ? (uint32_t)((len + k->mss - 1) / k->mss) : 1;
		if (len > (size_t)KCP_MAX_FRAGMENTS * k->mss)
			return KS_ERR_TOOBIG;
		if (nseg > qmax(k) - k->qcount)
			return KS_ERR_FULL;
	}
	if (grow_queue(k, k->qcount + nseg) != 0)
		return KS_ERR_NOMEM;
	for (uint32_t i = 0; i < nseg; i++)
		if (ensure_buf(k, &qslot(k, k->qcount + i)->data) != 0)
			return KS_ERR_NOMEM;
	if (tail) {
		struct qseg *t = qslot(k, k->qcount - 1);
		size_t n = take < tail ? take : tail;
		memcpy(t->data + t->len, p, n);
		t->len += (uint32_t)n;
		fill_queue(k, p + n, take - n, nseg);
	} else {
		fill_queue(k, p, take, nseg);
	}
	return (ssize_t)take;
}

/* enqueued: what follows new data in the queue, at now. */
static void enqueued(struct kcp *k, uint64_t now)
{
	probe_update(k, now);
	if (k->cfg.flush_on_send && sendable(k))
		kcp_flush(k, now);
	else
		arm(k, now);
	note_due(k, now);
}

ssize_t kcp_send(struct kcp *k, const void *buf, size_t len, uint64_t now)
{
	ssize_t n;

	k->resv = NULL; /* the reserved slot may be filled now */
	if ((!buf && len) || (k->cfg.stream && len == 0))
		return KS_ERR_INVAL;
	if (k->dead)
		return KS_ERR_DEAD;
	k->last_now = now;
	n = enqueue(k, buf, len);
	if (n < 0)
		return n;
	enqueued(k, now);
	return n;
}

/* The reservation is the buffer of queue slot qcount, the one the next
 * message would take. kcp_send clears it; trim_idle or shrink_rings may
 * free that buffer (the slot then holds NULL, never the same pointer
 * again before a reserve or an enqueue), so commit checks the slot still
 * holds it. */
ssize_t kcp_send_reserve(struct kcp *k, uint8_t **buf)
{
	struct qseg *qs;

	k->resv = NULL;
	if (!buf)
		return KS_ERR_INVAL;
	*buf = NULL;
	if (k->cfg.stream)
		return KS_ERR_INVAL;
	if (k->dead)
		return KS_ERR_DEAD;
	if (k->qcount >= qmax(k))
		return KS_ERR_FULL;
	if (grow_queue(k, k->qcount + 1) != 0)
		return KS_ERR_NOMEM;
	qs = qslot(k, k->qcount);
	if (ensure_buf(k, &qs->data) != 0)
		return KS_ERR_NOMEM;
	k->resv = qs->data;
	*buf = qs->data;
	return (ssize_t)k->mss;
}

ssize_t kcp_send_commit(struct kcp *k, size_t len, uint64_t now)
{
	struct qseg *qs = k->qcount <= k->qmask ? qslot(k, k->qcount) : NULL;
	bool held = k->resv && qs && qs->data == k->resv;

	k->resv = NULL;
	if (!held || len > k->mss)
		return KS_ERR_INVAL;
	if (k->dead)
		return KS_ERR_DEAD;
	k->last_now = now;
	qs->len = (uint32_t)len;
	qs->frg = 0;
	k->qcount++;
	enqueued(k, now);
	return (ssize_t)len;
}

/* ------------------------------------------------------------------ */
/* kcp_recv (K9)                                                      */

ssize_t kcp_peek_size(const struct kcp *k)
{
	uint32_t ready = k->rcv_nxt - k->rd_sn, n;
	size_t size = 0;

	if (ready == 0)
		return KS_ERR_AGAIN;
	if (k->cfg.stream)
		return (ssize_t)k->rcv_bytes;
	n = (uint32_t)rslot(k, k->rd_sn)->frg + 1;
	if (ready < n)
		return KS_ERR_AGAIN;
	for (uint32_t i = 0; i < n; i++)
		size += rslot(k, k->rd_sn + i)->len;
	return (ssize_t)size;
}

static void drop_buf(struct kcp *k, uint8_t **slot)
{
	if (!*slot)
		return;
	free(*slot);
	*slot = NULL;
	k->nbufs--;
}

/* shrink_rings puts the rings back at their starting size when nothing is
 * queued, in flight or held (buffers included); on no memory it keeps the
 * big ones. All FIFO entries are stale once nothing is in flight. */
static void shrink_rings(struct kcp *k)
{
	uint32_t scap = ring_start(k->cfg.snd_wnd), rcap = ring_start(k->cfg.rcv_wnd);
	uint32_t qcap = ring_start(qmax(k));
	struct sseg *s;
	struct rseg *r;
	struct qseg *q;
	uint32_t *heap;
	struct fentry *fq, *pend;
	struct ackent *acks;

	if (k->smask + 1 == scap && k->rmask + 1 == rcap && k->qmask + 1 == qcap &&
	    k->ackcap == rcap)
		return;
	s = calloc(scap, sizeof *s);
	r = calloc(rcap, sizeof *r);
	q = calloc(qcap, sizeof *q);
	heap = calloc(scap, sizeof *heap);
	fq = calloc(2 * (size_t)scap, sizeof *fq);
	pend = calloc(2 * (size_t)scap, sizeof *pend);
	acks = k->nacks <= rcap ? calloc(rcap, sizeof *acks) : NULL;
	if (!s || !r || !q || !heap || !fq || !pend || !acks) {
		free(s);
		free(r);
		free(q);
		free(heap);
		free(fq);
		free(pend);
		free(acks);
		return;
	}
	memcpy(acks, k->acks, k->nacks * sizeof *acks);
	free(k->s);
	free(k->r);
	free(k->q);
	free(k->rtoq.a);
	free(k->fq.e);
	free(k->pend.e);
	free(k->acks);
	k->s = s;
	k->r = r;
	k->q = q;
	k->rtoq.a = heap;
	k->acks = acks;
	k->smask = scap - 1;
	k->rmask = rcap - 1;
	k->qmask = qcap - 1;
	k->qhead = 0;
	k->ackcap = rcap;
	k->fq = (struct fifo){ .e = fq, .cap = 2 * scap };
	k->pend = (struct fifo){ .e = pend, .cap = 2 * scap };
}

/* trim_idle gives the segment buffers back once nothing is queued, in
 * flight or unread (more than KCP_IDLE_BUFS of them, 0 by default), and
 * puts grown rings back at their starting size when no out-of-order
 * segment is held either: an idle session holds a few KiB (issue 19).
 * With KCP_IDLE_BUFS 0 a keepalive's few buffers are allocated again the
 * next time (a malloc each, cheap next to the AEAD): 10,000 idle sessions
 * held ~5 KiB each otherwise. O(windows), once per burst. Out-of-order
 * segments still held keep their buffers. */
static void trim_idle(struct kcp *k)
{
	bool grown = k->smask + 1 > ring_start(k->cfg.snd_wnd) ||
	             k->rmask + 1 > ring_start(k->cfg.rcv_wnd) ||
	             k->qmask + 1 > ring_start(qmax(k));

	release_obuf(k);
	if (k->inflight || k->qcount || k->rcv_bytes)
		return;
	if (k->rep && !k->rpresent) {
		/* Every remembered arrival was read, so it is below rcv_nxt:
		 * no repeat is left to send. */
		free(k->rep);
		k->rep = NULL;
		k->rep_head = 0;
	}
	if (k->eq && !k->rpresent) {
		free(k->eq); /* every offer is stale once nothing is held */
		k->eq = NULL;
		k->eq_head = k->eq_len = k->eq_cap = 0;
	}
	if (k->nbufs <= KCP_IDLE_BUFS && !grown)
		return;
	if (grown && !k->rpresent) {
		for (uint32_t i = 0; i <= k->smask; i++)
			drop_buf(k, &k->s[i].data);
		for (uint32_t i = 0; i <= k->qmask; i++)
			drop_buf(k, &k->q[i].data);
		for (uint32_t i = 0; i <= k->rmask; i++)
			drop_buf(k, &k->r[i].data);
		shrink_rings(k);
		return;
	}
	if (k->nbufs <= KCP_IDLE_BUFS)
		return;
	for (uint32_t i = 0; i <= k->smask; i++)
		if (!k->s[i].live)
			drop_buf(k, &k->s[i].data);
	for (uint32_t i = 0; i <= k->qmask; i++)
		drop_buf(k, &k->q[i].data);
	for (uint32_t i = 0; i <= k->rmask; i++)
		if (!k->r[i].present)
			drop_buf(k, &k->r[i].data);
}

static void consume(struct kcp *k)
{
	k->rcv_bytes -= rslot(k, k->rd_sn)->len - k->rd_off;
	rslot(k, k->rd_sn)->present = false;
	rslot(k, k->rd_sn)->early = false;
	k->rpresent--;
	k->rd_sn++;
	k->rd_off = 0;
}

/* skip_early consumes the messages at the read point that were handed up
 * early (K14), so the next ordered read starts at one that was not. Every
 * change of rd_sn or rcv_nxt ends with it: rd_sn never rests on one. */
static void skip_early(struct kcp *k)
{
	while (k->rd_sn != k->rcv_nxt && rslot(k, k->rd_sn)->early)
		consume(k);
}

static size_t read_stream(struct kcp *k, uint8_t *out, size_t cap)
{
	size_t got = 0;

	while (k->rd_sn != k->rcv_nxt && got < cap) {
		struct rseg *r = rslot(k, k->rd_sn);
		size_t n = r->len - k->rd_off;
		if (n > cap - got)
			n = cap - got;
		if (n)
			memcpy(out + got, r->data + k->rd_off, n);
		got += n;
		if (k->rd_off + n == r->len) {
			consume(k);
		} else {
			k->rd_off += (uint32_t)n;
			k->rcv_bytes -= n;
		}
	}
	return got;
}

static size_t read_message(struct kcp *k, uint8_t *out)
{
	uint32_t n = (uint32_t)rslot(k, k->rd_sn)->frg + 1;
	size_t got = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct rseg *r = rslot(k, k->rd_sn);
		if (r->len)
			memcpy(out + got, r->data, r->len);
		got += r->len;
		consume(k);
	}
	return got;
}

ssize_t kcp_recv(struct kcp *k, void *buf, size_t cap)
{
	uint32_t before = wnd_free(k);
	ssize_t size = kcp_peek_size(k);
	size_t got;

	if (!buf && cap)
		return KS_ERR_INVAL;
	if (size < 0)
		return size;
	if (k->cfg.stream) {
		got = read_stream(k, buf, cap);
		if (got == 0)
			return KS_ERR_AGAIN;
	} else {
		if ((size_t)size > cap)
			return KS_ERR_TOOBIG;
		got = read_message(k, buf);
		skip_early(k);
	}
	/* K8: a window that was closed has opened, or has grown by half the
	 * receive window since we last advertised it: tell the peer rather than
	 * leave it waiting for its next probe or for our next ACK. */
	if (!k->dead && ((before == 0 && wnd_free(k) > 0) ||
	                 wnd_free(k) - min_u32(k->adv_wnd, wnd_free(k)) >= k->cfg.rcv_wnd / 2)) {
		k->tell = true;
		if (k->cfg.ack_immediate)
			k->flush_at = k->last_now;
		else
			arm(k, k->last_now);
	}
	trim_idle(k);
	return (ssize_t)got;
}

/* ------------------------------------------------------------------ */
/* kcp_input: validate the whole datagram (K1), then apply (K3..K8)   */

struct hdr {
	uint32_t conv, ts, sn, una, len;
	uint8_t cmd, frg;
	uint16_t wnd;
	const uint8_t *data; /* view into the datagram */
};

static bool read_hdr(struct rd *r, struct hdr *h)
{
	return rd_u32le(r, &h->conv) && rd_u8(r, &h->cmd) && rd_u8(r, &h->frg) &&
	       rd_u16le(r, &h->wnd) && rd_u32le(r, &h->ts) && rd_u32le(r, &h->sn) &&
	       rd_u32le(r, &h->una) && rd_u32le(r, &h->len);
}

/* check_seg returns -1 if the segment may be applied, else a kcp_drop. */
static int check_seg(const struct kcp *k, const struct hdr *h)
{
	int32_t d;

	if (h->conv != k->conv)
		return KCP_DROP_CONV;
	if (h->cmd < KCP_CMD_PUSH || h->cmd > KCP_CMD_WINS)
		return KCP_DROP_CMD;
	if (h->cmd != KCP_CMD_PUSH && h->len != 0)
		return KCP_DROP_CMD;
	if (h->cmd != KCP_CMD_PUSH && h->frg != 0)
		return KCP_DROP_FRG;
	if (seq_gt(h->una, k->snd_nxt) || seq_diff(h->una, k->snd_una) < -KCP_SEQ_SLACK)
		return KCP_DROP_ACK;
	if (h->cmd == KCP_CMD_ACK &&
	    (seq_ge(h->sn, k->snd_nxt) || seq_diff(h->sn, k->snd_una) < -KCP_SEQ_SLACK))
		return KCP_DROP_ACK;
	if (h->cmd != KCP_CMD_PUSH)
		return -1;
	if (h->len > k->mss)
		return KCP_DROP_LEN;
	if (h->frg >= (k->cfg.stream ? 1 : KCP_MAX_FRAGMENTS))
		return KCP_DROP_FRG;
	d = seq_diff(h->sn, k->rcv_nxt);
	if (d < -KCP_SEQ_SLACK || d >= (int32_t)k->cfg.rcv_wnd + KCP_SEQ_SLACK)
		return KCP_DROP_SN;
	return -1;
}

/* K14: early delivery. */

/* offerable: sn is held above a hole as a whole message, not yet taken. */
static bool offerable(const struct kcp *k, uint32_t sn)
{
	const struct rseg *r = rslot(k, sn);

	return seq_gt(sn, k->rcv_nxt) && seq_lt(sn, k->rd_sn + k->cfg.rcv_wnd) && r->present &&
	       !r->early && r->frg == 0;
}

/* eq_push remembers an arrival above a hole; a full ring forgets its
 * oldest offer (that message is then delivered in order). */
static void eq_push(struct kcp *k, uint32_t sn)
{
	if (!k->eq)
		return;
	if (k->eq_len == k->eq_cap) {
		k->eq_head = (k->eq_head + 1) & (k->eq_cap - 1);
		k->eq_len--;
	}
	k->eq[(k->eq_head + k->eq_len++) & (k->eq_cap - 1)] = sn;
}

static void eq_pop(struct kcp *k)
{
	k->eq_head = (k->eq_head + 1) & (k->eq_cap - 1);
	k->eq_len--;
}

int kcp_early_peek(struct kcp *k, uint32_t *sn, const uint8_t **data, size_t *len)
{
	while (k->eq_len && !offerable(k, k->eq[k->eq_head]))
		eq_pop(k);
	if (!k->eq_len)
		return KS_ERR_AGAIN;
	*sn = k->eq[k->eq_head];
	*data = rslot(k, *sn)->data;
	*len = rslot(k, *sn)->len;
	return 0;
}

void kcp_early_done(struct kcp *k, bool taken)
{
	struct rseg *r;

	if (!k->eq_len)
		return;
	r = rslot(k, k->eq[k->eq_head]);
	if (taken && offerable(k, k->eq[k->eq_head])) {
		r->early = true;
		k->st.seg_early++;
		r->len = 0; /* it counts nothing when it comes into order */
		drop_buf(k, &r->data);
	}
	eq_pop(k);
}

/* eq_ensure gives an early engine its offer ring before the first arrival
 * above a hole; failing, nothing has changed. */
static int eq_ensure(struct kcp *k)
{
	uint32_t cap = ring_full(k->cfg.rcv_wnd);

	if (!k->cfg.early || k->eq)
		return 0;
	k->eq = malloc((size_t)cap * sizeof *k->eq);
	if (!k->eq)
		return KS_ERR_NOMEM;
	k->eq_cap = cap;
	return 0;
}

/* will_store: a PUSH with this sn is new and inside the receive window. */
static bool will_store(const struct kcp *k, uint32_t sn)
{
	return seq_ge(sn, k->rcv_nxt) && seq_lt(sn, k->rd_sn + k->cfg.rcv_wnd) &&
	       !rslot(k, sn)->present;
}

/* validate parses every segment; it changes nothing but may give empty
 * receive slots their buffers, which is not observable state. */
static int validate(struct kcp *k, const uint8_t *dgram, size_t len)
{
	struct rd r = rd_init(dgram, len);
	struct hdr h;
	int why;

	if (len == 0) {
		k->st.dropped[KCP_DROP_SHORT]++;
		return KS_ERR_PROTO;
	}
	while (rd_left(&r)) {
		if (!read_hdr(&r, &h)) {
			k->st.dropped[KCP_DROP_SHORT]++;
			return KS_ERR_PROTO;
		}
		why = check_seg(k, &h);
		if (why < 0 && !rd_view(&r, &h.data, h.len))
			why = KCP_DROP_LEN;
		if (why >= 0) {
			k->st.dropped[why]++;
			return KS_ERR_PROTO;
		}
		if (h.cmd == KCP_CMD_PUSH && seq_ge(h.sn, k->rcv_nxt) &&
		    seq_lt(h.sn, k->rd_sn + k->cfg.rcv_wnd) &&
		    grow_recv(k, h.sn - k->rd_sn + 1) != 0)
			return KS_ERR_NOMEM;
		if (h.cmd == KCP_CMD_PUSH && will_store(k, h.sn) &&
		    ensure_buf(k, &rslot(k, h.sn)->data) != 0)
			return KS_ERR_NOMEM;
		if (h.cmd == KCP_CMD_PUSH && h.sn != k->rcv_nxt && will_store(k, h.sn) &&
		    eq_ensure(k) != 0)
			return KS_ERR_NOMEM;
	}
	return 0;
}

/* ack_sn removes one live segment from the send window. */
static uint32_t ack_sn(struct kcp *k, uint32_t sn)
{
	struct sseg *g = sslot(k, sn);

	if (!seq_ge(sn, k->snd_una) || !seq_lt(sn, k->snd_nxt) || !g->live || g->sn != sn)
		return 0;
	g->live = false;
	g->fq = false;
	rto_remove(k, g->heap);
	k->inflight--;
	return 1;
}

/* advance_una moves snd_una past acknowledged slots (K3). */
static void advance_una(struct kcp *k)
{
	while (k->snd_una != k->snd_nxt && !sslot(k, k->snd_una)->live)
		k->snd_una++;
	if (seq_lt(k->ack_hi, k->snd_una))
		k->ack_hi = k->snd_una;
}

static uint32_t apply_una(struct kcp *k, uint32_t una)
{
	uint32_t acked = 0;

	while (seq_lt(k->snd_una, una)) {
		acked += ack_sn(k, k->snd_una);
		k->snd_una++;
	}
	advance_una(k);
	return acked;
}

static void apply_push(struct kcp *k, const struct hdr *h)
{
	struct rseg *r;

	if (!seq_lt(h->sn, k->rd_sn + k->cfg.rcv_wnd))
		return; /* beyond our window: no room, no ACK; it comes again */
	r = rslot(k, h->sn);
	if (!seq_ge(h->sn, k->rcv_nxt) || r->present) {
		/* K3: a copy of a segment we still know is acknowledged with
		 * the ts of the first copy: the sender learns that it resent
		 * for a lost ACK, not for lost data (K7). */
		queue_ack(k, h->sn, r->ts_sn == h->sn + 1 ? r->ts : h->ts);
		k->st.seg_dup++;
		return;
	}
	queue_ack(k, h->sn, h->ts);
	r->ts = h->ts;
	r->ts_sn = h->sn + 1;
	if (h->len)
		memcpy(r->data, h->data, h->len);
	r->len = h->len;
	r->frg = h->frg;
	r->present = true;
	k->rpresent++;
	k->acks_new += h->len;
	k->st.seg_recv++;
	r->early = false;
	if (h->sn != k->rcv_nxt) {
		remember_ooo(k, h->sn, h->ts);
		if (h->frg == 0)
			eq_push(k, h->sn);
	}
	while (seq_lt(k->rcv_nxt, k->rd_sn + k->cfg.rcv_wnd) && k->rcv_nxt - k->rd_sn <= k->rmask &&
	       rslot(k, k->rcv_nxt)->present)
		k->rcv_bytes += rslot(k, k->rcv_nxt++)->len;
	skip_early(k);
}

/* cross marks the live segments that an ACK for maxack skipped for the
 * first time, and the retransmitted ones whose fence the latest echo passed
 * (K5). */
static void cross(struct kcp *k, uint32_t maxack)
{
	if (seq_ge(maxack, k->ack_hi)) {
		for (uint32_t sn = k->ack_hi; sn != maxack; sn++) {
			struct sseg *g = sslot(k, sn);
			if (g->live && !g->pend)
				fq_mark(k, g);
		}
		k->ack_hi = maxack + 1;
	}
	while (k->pend.count) {
		struct fentry e = *fifo_at(&k->pend, 0);
		if (pend_valid(k, &e) && !seq_gt(k->echo_hi, (uint32_t)e.base))
			break;
		fifo_pop(&k->pend);
		if (pend_valid(k, &e))
			fq_mark(k, sslot(k, e.sn));
	}
}

struct apply_result {
	uint32_t acked;
	bool has_ack;
	uint32_t maxack;
};

/* ack_echo reads an ACK's echoed ts before the una of the same segment can
 * retire the segment it names. The echo samples the RTT (K4); only an echo
 * of a transmission we made (not newer than the last one) counts. An echo
 * of a transmission older than a fast retransmission shows that the
 * retransmission was spurious: the path reorders more than resend allows,
 * so the threshold learns (K5). */
static void ack_echo(struct kcp *k, const struct hdr *h, uint64_t now, int32_t *best)
{
	struct sseg *g = sslot(k, h->sn);
	int32_t rtt = seq_diff((uint32_t)now, h->ts);
	bool dup;

	/* Any echo of a past transmission (never of a future one) moves the
	 * fence line of K5 forward. */
	if (rtt >= 0) {
		if (seq_gt(h->ts, k->echo_hi) || (h->ts == k->echo_hi && seq_gt(h->sn, k->echo_sn)))
			k->echo_sn = h->sn;
		if (seq_gt(h->ts, k->echo_hi))
			k->echo_hi = h->ts;
		k->echo_at = now;
	}
	if (g->sn != h->sn || seq_gt(h->ts, g->ts))
		return;
	if (!g->live) {
		/* Retired already (the repair of a hole below it moved una
		 * past it first), but its slot still tells what we sent: an
		 * echo older than its resend proves the original arrived. */
		if (g->spur && g->xmit == 2 && seq_lt(h->ts, g->ts)) {
			struct kcp_cc_path pp = cc_path(k);

			g->spur = false;
			k->st.seg_retx_spurious++;
			k->st.cwnd_undo += kcp_cc_delivered(&k->cc, &pp, g->sn);
		}
		return;
	}
	/* An echo of an older transmission a whole RTT after the resend:
	 * the receiver had the original and acknowledged the copy with its
	 * ts (K3), so the original's ACK was lost. Not a sample (it holds
	 * the resend's round trip), and not reordering. */
	dup = seq_lt(h->ts, g->ts) && seq_diff((uint32_t)now, g->ts) >= (int32_t)k->min_rtt;
	if (rtt >= 0 && !dup && (*best < 0 || rtt < *best))
		*best = rtt;
	if (g->spur && seq_lt(h->ts, g->ts)) {
		struct kcp_cc_path pp = cc_path(k);

		g->spur = false;
		k->st.seg_retx_spurious++;
		if (g->fast && !dup && k->reo_extra < KCP_REORDER_MAX)
			k->reo_extra++;
		g->fast = false;
		k->st.cwnd_undo += kcp_cc_undo(&k->cc, g->sn);
		if (g->xmit == 2)
			k->st.cwnd_undo += kcp_cc_delivered(&k->cc, &pp, g->sn);
	}
}

static void apply_seg(struct kcp *k, const struct hdr *h, struct apply_result *a)
{
	k->rmt_wnd = h->wnd;
	a->acked += apply_una(k, h->una);
	switch (h->cmd) {
	case KCP_CMD_ACK:
		k->st.ack_recv++;
		a->acked += ack_sn(k, h->sn);
		advance_una(k);
		if (!a->has_ack || seq_gt(h->sn, a->maxack))
			a->maxack = h->sn;
		a->has_ack = true;
		break;
	case KCP_CMD_PUSH: apply_push(k, h); break;
	case KCP_CMD_WASK: k->tell = true; break;
	default: break; /* WINS: the window field above is the message */
	}
}

static void apply(struct kcp *k, const uint8_t *dgram, size_t len, uint64_t now)
{
	struct kcp_cc_path pp;
	struct rd r = rd_init(dgram, len);
	struct apply_result a = { 0 };
	struct hdr h;
	int32_t rtt = -1;

	/* Echoes first: a una earlier in the datagram must not retire the
	 * segment an ACK further on names. One RTT sample per datagram, the
	 * smallest: a repeated ACK (K3) echoes a ts that has waited for a
	 * later flush at the receiver, which the first copy did not. */
	while (rd_left(&r) && read_hdr(&r, &h) && rd_view(&r, &h.data, h.len))
		if (h.cmd == KCP_CMD_ACK)
			ack_echo(k, &h, now, &rtt);
	if (rtt >= 0 && !stalled_sample(k, (uint32_t)rtt, now))
		rtt_sample(k, (uint32_t)rtt, now);
	r = rd_init(dgram, len);
	while (rd_left(&r) && read_hdr(&r, &h) && rd_view(&r, &h.data, h.len))
		apply_seg(k, &h, &a);
	if (a.has_ack) {
		cross(k, a.maxack);
		/* K5: datagrams that arrive in the same millisecond (one read
		 * batch) count as one skip: their order says little. */
		if (now != k->ack_event_at) {
			k->ack_events++;
			k->ack_event_at = now;
		}
	}
	pp = cc_path(k);
	kcp_cc_on_ack(&k->cc, &pp, a.acked);
	fifo_prune(k, &k->fq, fq_valid);
	silent_release(k, now);
	trim_idle(k);
}

/* ack_may_wait: with ack_lazy, the ACKs owed may wait (up to the interval)
 * for data going back, as TCP's delayed ACK (RFC 1122 4.2.3.2), but only
 * for a thin flow: the new data unacknowledged is less than one full
 * segment (bulk data, in full segments, is acknowledged at once, so fast
 * retransmit and the RTO see no delay), it arrived in order
 * (nothing is held above a hole: a hole needs its skips counted at once,
 * K5), and no window tell is due.
 * Old duplicates (a K11/K13 copy, a spurious resend) do not hurry it:
 * every segment we send carries una, which covers them. */
static bool ack_may_wait(const struct kcp *k)
{
	return k->cfg.ack_lazy && !k->tell && k->acks_new < k->mss &&
	       k->rpresent == k->rcv_nxt - k->rd_sn;
}

int kcp_input(struct kcp *k, const uint8_t *dgram, size_t len, uint64_t now)
{
	int rc;

	if (k->dead)
		return KS_ERR_DEAD;
	if (!dgram && len)
		return KS_ERR_INVAL;
	k->last_now = now;
	rc = validate(k, dgram, len);
	if (rc != 0)
		return rc;
	stall_check(k, now);
	k->st.dgram_in++;
	k->st.bytes_in += len;
	apply(k, dgram, len, now);
	silent_wake(k, now);
	probe_update(k, now);
	if ((k->cfg.ack_immediate && (k->nacks || k->tell) && !ack_may_wait(k)) ||
	    (k->cfg.flush_on_send && (sendable(k) || fast_ready(k))))
		kcp_flush(k, now);
	else
		arm(k, now);
	note_due(k, now);
	return 0;
}

/* ------------------------------------------------------------------ */
/* state queries                                                      */

uint32_t kcp_waitsnd(const struct kcp *k) { return k->qcount + k->inflight; }

uint32_t kcp_inflight(const struct kcp *k) { return k->inflight; }

void kcp_path_changed(struct kcp *k, uint64_t now)
{
	k->silent = false;
	for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++) {
		struct sseg *g = sslot(k, sn);

		if (!g->live)
			continue;
		g->held = false;
		g->rto = k->rto;
		if (g->resendts > now) {
			g->resendts = now;
			rto_fix(k, g->heap);
		}
	}
}

bool kcp_is_dead(const struct kcp *k) { return k->dead; }

bool kcp_nudge(struct kcp *k, uint64_t now)
{
	struct sseg *g;

	if (k->dead || !k->inflight)
		return false;
	g = sslot(k, k->snd_una);
	if (!g->live || g->sn != k->snd_una || !g->xmit)
		return false;
	copy_now(k, g, now);
	k->st.seg_dup_thin++;
	return true;
}

void kcp_rtt(const struct kcp *k, uint32_t *srtt, uint32_t *min_rtt)
{
	*srtt = k->srtt;
	*min_rtt = k->min_rtt;
}

void kcp_stats(const struct kcp *k, struct kcp_stats *st)
{
	*st = k->st;
	st->srtt = k->srtt;
	st->rttvar = k->rttvar;
	st->rto = k->rto;
	st->cwnd = k->cc.cwnd;
	st->ssthresh = k->cc.ssthresh;
	st->rmt_wnd = k->rmt_wnd;
	st->rcv_free = wnd_free(k);
	st->inflight = k->inflight;
	st->resend = resend_at(k);
	st->waitsnd = kcp_waitsnd(k);
}

size_t kcp_mem_bytes(const struct kcp *k)
{
	size_t n = sizeof *k;

	n += (size_t)(k->qmask + 1) * sizeof *k->q;
	n += (size_t)(k->smask + 1) * (sizeof *k->s + sizeof(uint32_t));
	n += (size_t)(k->fq.cap + k->pend.cap) * sizeof *k->fq.e;
	n += (size_t)(k->rmask + 1) * sizeof *k->r;
	n += (size_t)k->ackcap * sizeof *k->acks;
	n += k->rep ? KCP_ACK_REPEAT_SLOTS * sizeof *k->rep : 0;
	n += (size_t)k->eq_cap * sizeof *k->eq;
	n += k->obuf ? k->cfg.mtu : 0;
	return n + k->nbufs * k->mss;
}

/* ------------------------------------------------------------------ */
/* invariants                                                         */

/* count_valid: at most one valid entry per live segment (the mgen rule). */
static uint32_t count_valid(const struct kcp *k, const struct fifo *f, valid_fn ok)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < f->count; i++)
		n += ok(k, fifo_at(f, i));
	return n;
}

static bool check_send(const struct kcp *k)
{
	uint32_t live = 0;

	if (seq_gt(k->snd_una, k->snd_nxt) || k->snd_nxt - k->snd_una > k->cfg.snd_wnd)
		return false;
	if (k->snd_una != k->snd_nxt && !sslot(k, k->snd_una)->live)
		return false;
	for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++) {
		const struct sseg *g = sslot(k, sn);
		if (!g->live)
			continue;
		live++;
		if (g->sn != sn || g->heap >= k->rtoq.n || rto_sn(k, g->heap) != sn ||
		    g->len > k->mss || g->xmit == 0)
			return false;
	}
	if (!heap_ordered(&k->rtoq, &rto_ops, (void *)k))
		return false;
	if (count_valid(k, &k->fq, fq_valid) + count_valid(k, &k->pend, pend_valid) > live)
		return false;
	return live == k->inflight && k->rtoq.n == k->inflight && k->qcount <= qmax(k) &&
	       k->fq.count <= k->fq.cap && k->pend.count <= k->pend.cap;
}

static bool check_recv(const struct kcp *k)
{
	uint32_t used = k->rcv_nxt - k->rd_sn;
	size_t bytes = 0;

	if (seq_gt(k->rd_sn, k->rcv_nxt) || used > k->cfg.rcv_wnd)
		return false;
	for (uint32_t i = 0; i < used; i++)
		bytes += rslot(k, k->rd_sn + i)->len;
	if (bytes - k->rd_off != k->rcv_bytes)
		return false;
	for (uint32_t i = 0; i <= k->rmask; i++) {
		uint32_t sn = k->rd_sn + i;
		const struct rseg *r = rslot(k, sn);
		if (i < used && (!r->present || r->len > k->mss))
			return false;
		if (r->early && (!r->present || r->len || (i == 0 && used)))
			return false;
		if ((i == used || i >= k->cfg.rcv_wnd) && r->present)
			return false;
	}
	if (k->rd_off && (!used || k->rd_off >= rslot(k, k->rd_sn)->len))
		return false;
	return k->nacks <= k->ackcap;
}

bool kcp_check(const struct kcp *k)
{
	size_t maxbufs = (size_t)k->qmask + 1 + k->smask + 1 + k->rmask + 1;

	if (!check_send(k) || !check_recv(k) || k->nbufs > maxbufs)
		return false;
	if (k->rto < k->minrto || k->rto > KCP_RTO_MAX || k->cc.cwnd < 1)
		return false;
	return true;
}
