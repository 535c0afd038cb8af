/* feed.c - how much of the mux's output the session lets KCP hold. */
#include "core/feed.h"

#include <stdbool.h>

#include "base/limits.h"
#include "base/minmax.h"

void feed_init(struct feed *f, uint64_t now)
{
	*f = (struct feed){ .t0 = now, .half_start = now, .cap = FEED_UNLIMITED };
}

void feed_sent(struct feed *f, uint64_t n) { f->fed += n; }

uint64_t feed_rate(const struct feed *f) { return max_u64(f->rate[0], f->rate[1]); }

/* roll moves the windowed maximum on: two halves, the current one and the
 * one before, so a sample counts for one to two half windows, and a
 * window without samples (idle) forgets the rate. */
static void roll(struct feed *f, uint32_t srtt, uint64_t now)
{
	uint64_t half = max_u64(FEED_WINDOW_MS, (uint64_t)FEED_WINDOW_RTTS * srtt) / 2;

	if (now - f->half_start < half)
		return;
	f->rate[1] = now - f->half_start >= 2 * half ? 0 : f->rate[0];
	f->rate[0] = 0;
	f->half_start = now;
}

/* sample closes the current rate sample once it spans an srtt (and
 * FEED_SAMPLE_MIN_MS) and files it. */
static void sample(struct feed *f, uint32_t srtt, uint64_t now)
{
	uint64_t span = max_u64(srtt, FEED_SAMPLE_MIN_MS);
	uint64_t r;

	if (now - f->t0 < span)
		return;
	r = (f->delivered - f->d0) / (now - f->t0);
	f->t0 = now;
	f->d0 = f->delivered;
	f->rate[0] = max_u64(f->rate[0], r);
	/* Startup ends when the rate stopped growing by a quarter for
	 * FEED_STARTUP_ROUNDS samples: the pipe is full. */
	if (r >= f->full_rate + f->full_rate / 4) {
		f->full_rate = r;
		f->flat = 0;
	} else if (f->flat < FEED_STARTUP_ROUNDS) {
		f->flat++;
	}
}

/* queued: the RTT shows a queue, FEED_ENGAGE_Q x FEED_QUEUE_MS or a
 * quarter of the base RTT (what KCP's K7 calls queueing), whichever is
 * more: above what the cap itself leaves (FEED_QUEUE_MS), and above what
 * path jitter alone shows. */
static bool queued(uint32_t srtt, uint32_t min_rtt)
{
	uint32_t q = max_u32(min_rtt / 4, FEED_ENGAGE_Q * FEED_QUEUE_MS);

	return min_rtt && srtt >= min_rtt + q;
}

/* engage decides whether the cap binds: from the first queue seen, for as
 * long as the queue drains; a queue that does not drain within
 * FEED_GIVEUP_MS (or FEED_WINDOW_RTTS srtt) although the cap binds is not
 * ours (another flow's, a receiver that is behind for long, a base RTT
 * that grew since min_rtt was seen): the feed then stays out of the way
 * until the session idles. */
static void engage(struct feed *f, uint32_t srtt, uint32_t min_rtt, uint64_t now)
{
	uint64_t giveup = max_u64(FEED_GIVEUP_MS, (uint64_t)FEED_WINDOW_RTTS * srtt);
	bool q = queued(srtt, min_rtt);

	if (!f->engaged && !f->gave_up && q) {
		f->engaged = true;
		f->ok_at = now;
	} else if (f->engaged && !q) {
		f->ok_at = now;
	} else if (f->engaged && now - f->ok_at > giveup) {
		f->engaged = false;
		f->gave_up = true;
	}
}

uint64_t feed_cap(struct feed *f, uint64_t held, uint32_t srtt, uint32_t min_rtt, uint64_t now)
{
	uint64_t rate, span;

	/* held is an estimate (whole segments): delivered never goes back. */
	if (f->fed > held && f->fed - held > f->delivered)
		f->delivered = f->fed - held;
	if (now < f->t0)
		now = f->t0;
	roll(f, srtt, now);
	if (held == 0) { /* idle or app-limited: a sample would span the idle time */
		f->t0 = now;
		f->d0 = f->delivered;
	}
	sample(f, srtt, now);
	rate = feed_rate(f);
	if (rate == 0 || min_rtt == 0) {
		/* Nothing known (any more): start over. */
		f->full_rate = 0;
		f->flat = 0;
		f->engaged = f->gave_up = false;
	} else {
		engage(f, srtt, min_rtt, now);
	}
	if (!f->engaged) {
		f->cap = FEED_UNLIMITED;
		return f->cap;
	}
	span = (f->flat < FEED_STARTUP_ROUNDS ? FEED_STARTUP_GAIN : 1) * (uint64_t)min_rtt;
	f->cap = max_u64(rate * (span + FEED_QUEUE_MS), FEED_CAP_MIN);
	return f->cap;
}
