/* netsim.h - one direction of an impaired link, on virtual time.
 *
 * A struct netsim_link owns the datagrams that are "on the wire" in one
 * direction. The caller hands it datagrams with netsim_link_send(..., now)
 * and takes out the ones whose delivery time has come with
 * netsim_link_recv(..., now). Nothing here reads a clock or touches a
 * socket: `now` is a uint64_t in milliseconds chosen by the caller (a test's
 * virtual clock, or CLOCK_MONOTONIC in tools/impair). Randomness comes from a
 * struct prng seeded at creation, so the same seed, configuration and calls
 * give the same deliveries, byte for byte and millisecond for millisecond.
 *
 * What happens to a datagram handed to netsim_link_send, in this order:
 *   1. blackhole on: dropped (lost_blackhole).
 *   2. Gilbert-Elliott: the two-state chain takes one step (good->bad with
 *      probability ge_p, bad->good with ge_r); in the bad state the datagram
 *      is lost with probability ge_loss (lost_burst).
 *   3. loss with probability `loss` (lost_random): independent per
 *      datagram, or with loss_block N > 0 an exact quota of round(loss * N)
 *      datagrams lost in each block of N consecutive ones, at positions
 *      drawn without replacement (the reference KCP test's model).
 *   4. rate limiter (rate > 0): the datagram is serialized at `rate`
 *      bytes/s after the ones before it; if the bytes still waiting to be
 *      serialized plus this one exceed queue_bytes it is tail-dropped
 *      (queue_dropped). An idle limiter always takes one datagram.
 *   5. hold limit: if the link already holds limit_bytes bytes or
 *      limit_datagrams datagrams (queued plus in flight, counting this one),
 *      it is tail-dropped (limit_dropped).
 *   6. it is delivered at: end of serialization (or `now` without a rate
 *      limit), rounded up to a millisecond, + delay_ms + a uniform draw in
 *      [0, jitter_ms] + reorder_ms with probability `reorder` (reordered).
 *      Jitter alone can reorder datagrams, as on a real path. With fifo
 *      the time is raised to the previous datagram's: the link never
 *      reorders, a slow datagram holds back the ones behind it.
 *   7. with probability `dup` a copy is made (dup) with its own jitter and
 *      reorder draw; it does not pass the rate limiter again but does count
 *      against the hold limit (a copy that does not fit is not made).
 * Datagrams come out in order of delivery time, ties in the order they were
 * accepted (a duplicate right after its original).
 *
 * Cost: O(log n) per send and per recv for n datagrams held; no allocation
 * in steady state (buffers are pooled per size class and reused); memory is
 * bounded by the limits in the configuration (see NETSIM_* in
 * base/limits.h).
 *
 * Not thread-safe; one link is used from one thread. No function here calls
 * back into the caller.
 */
#ifndef KCPSOCKS_NETSIM_H
#define KCPSOCKS_NETSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/deadline.h"
#include "base/err.h"
#include "base/limits.h"

/* The impairment model. Zero-initialise and set what you need: all zero is
 * a perfect link (no loss, no delay, unlimited rate, default hold limits).
 * Probabilities are in [0, 1]; anything else (or NaN) is KS_ERR_INVAL. */
struct netsim_config {
	double loss;         /* loss probability (see loss_block) */
	uint32_t loss_block; /* 0: independent; N: exactly round(loss * N) lost
	                        in each block of N datagrams */
	bool fifo;           /* deliver in the order accepted (no reordering) */

	/* Gilbert-Elliott burst loss; ge_p == 0 disables it. The mean stay in
	 * the bad state is 1/ge_r datagrams, so ge_r must be > 0 when ge_p is. */
	double ge_p;    /* P(good -> bad) per datagram */
	double ge_r;    /* P(bad -> good) per datagram */
	double ge_loss; /* loss probability while bad */

	uint32_t delay_ms;  /* base one-way delay */
	uint32_t jitter_ms; /* extra delay, uniform in [0, jitter_ms] */

	double reorder;      /* probability of the extra reorder_ms delay */
	uint32_t reorder_ms; /* must be > 0 when reorder > 0 */

	double dup; /* duplication probability */

	uint64_t rate;      /* bytes per second, 0 = unlimited (then queue_bytes is unused) */
	size_t queue_bytes; /* rate limiter queue bound, 0 = NETSIM_DEFAULT_QUEUE_BYTES */

	/* Hard bounds on what the link holds (queued plus in flight);
	 * 0 = NETSIM_DEFAULT_LIMIT_BYTES / NETSIM_DEFAULT_LIMIT_DATAGRAMS. */
	size_t limit_bytes;
	size_t limit_datagrams;

	bool blackhole; /* drop every datagram sent while true */
};

/* Counters since creation. Datagram counts unless named bytes. Every sent
 * datagram ends in exactly one of: delivered (not yet, if still held), one
 * of the lost/dropped counters; copies (dup) are delivered or still held. */
struct netsim_stats {
	uint64_t sent;           /* datagrams passed to netsim_link_send (not TOOBIG) */
	uint64_t delivered;      /* datagrams returned by netsim_link_recv, copies included */
	uint64_t lost_blackhole; /* dropped while the blackhole was on */
	uint64_t lost_burst;     /* lost in the Gilbert-Elliott bad state */
	uint64_t lost_random;    /* lost by the independent loss */
	uint64_t queue_dropped;  /* tail-dropped by the rate limiter queue */
	uint64_t limit_dropped;  /* tail-dropped by the hold limit */
	uint64_t dup;            /* copies made */
	uint64_t reordered;      /* datagrams (or copies) given the reorder delay */
	uint64_t bytes_in;       /* bytes of the datagrams counted in sent */
	uint64_t bytes_out;      /* bytes of the datagrams counted in delivered */
	uint64_t held_bytes;     /* bytes held now */
	uint64_t held_datagrams; /* datagrams held now */
	uint64_t max_held_bytes; /* largest held_bytes ever seen */
};

struct netsim_link;

/* netsim_link_new checks cfg and creates a link whose randomness is fixed by
 * seed. On success stores the link in *out (owned by the caller, release
 * with netsim_link_free) and returns 0.
 * Returns KS_ERR_INVAL for a bad cfg, KS_ERR_NOMEM; *out is then untouched. */
KS_MUST_CHECK int netsim_link_new(struct netsim_link **out, const struct netsim_config *cfg,
                                  uint64_t seed);

/* netsim_link_free releases the link and every datagram it holds. NULL ok. */
void netsim_link_free(struct netsim_link *l);

/* netsim_link_set_config replaces the model from now on: datagrams already
 * held keep their delivery times; the Gilbert-Elliott state and the rate
 * limiter's backlog carry over. If the new hold limits are below what is
 * held, new datagrams are dropped until it drains.
 * Returns 0, or KS_ERR_INVAL (the link is unchanged). */
KS_MUST_CHECK int netsim_link_set_config(struct netsim_link *l, const struct netsim_config *cfg);

/* netsim_link_set_blackhole switches the blackhole (config field blackhole)
 * on or off without touching the rest of the model. Only datagrams sent
 * while it is on are dropped; those already in flight still arrive. */
void netsim_link_set_blackhole(struct netsim_link *l, bool on);

/* netsim_link_send offers one datagram of len bytes (len may be 0) at time
 * now; the bytes are copied, buf stays the caller's. `now` must not go
 * backwards; a smaller value than a previous call's is taken as that value.
 * Returns 0 whether the model delivers or drops the datagram (see stats),
 * KS_ERR_TOOBIG if len > NETSIM_MAX_DATAGRAM, KS_ERR_NOMEM if a buffer could
 * not be allocated (the link is unchanged, nothing counted). */
KS_MUST_CHECK int netsim_link_send(struct netsim_link *l, const void *buf, size_t len,
                                   uint64_t now);

/* netsim_link_recv copies the next datagram due at or before now into buf
 * and removes it from the link. Returns its length (0 is a valid length),
 * KS_ERR_AGAIN if none is due, KS_ERR_TOOBIG if cap is smaller than the
 * datagram (the datagram stays; a cap of NETSIM_MAX_DATAGRAM always fits). */
KS_MUST_CHECK ssize_t netsim_link_recv(struct netsim_link *l, uint64_t now, void *buf, size_t cap);

/* netsim_link_next_deadline returns the delivery time of the next datagram,
 * KS_NEVER if the link holds none. */
uint64_t netsim_link_next_deadline(const struct netsim_link *l);

/* netsim_link_stats copies the counters into *st. */
void netsim_link_stats(const struct netsim_link *l, struct netsim_stats *st);

/* netsim_link_check verifies the link's internal invariants (heap order,
 * held counters, pool within limit_bytes). O(n): for tests and debugging. */
bool netsim_link_check(const struct netsim_link *l);

#endif
