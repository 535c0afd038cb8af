/* feed.h - how much of the mux's output the session lets KCP hold (issue 19).
 *
 * KCP's congestion window grows until the RTT shows a queue, and then holds:
 * what slow start overshot stays as a standing queue in front of the
 * receiver (on loopback its UDP socket buffer), and every new stream's first
 * bytes wait behind it. With 32 bulk downloads the simulated loopback path
 * (2 ms RTT) held about 20 ms of queue. The feed keeps that queue short:
 * the session hands KCP mux output only while KCP holds (queued plus in
 * flight) less than
 *
 *     cap = rate x max(g x min_rtt + FEED_QUEUE_MS, srtt)
 *
 * where rate is the largest delivery rate measured (one sample per srtt)
 * over the last FEED_WINDOW_MS (or FEED_WINDOW_RTTS srtt), min_rtt and
 * srtt are KCP's, and g is FEED_STARTUP_GAIN (3) while the rate still grows
 * by a quarter per sample (startup: the rate can grow about that much per
 * round trip, as KCP's slow start wants), 1 once it stopped growing for
 * FEED_STARTUP_ROUNDS samples. Then KCP holds about one base RTT of data
 * plus FEED_QUEUE_MS of queue, so a small request waits about that behind
 * bulk data, and the rate can still grow by FEED_QUEUE_MS / min_rtt per
 * round trip. The srtt term holds the rate where the RTT is longer than
 * the cap explains (a queue that is not ours, a receiver descheduled, a
 * path whose base RTT grew since min_rtt was seen) instead of shrinking it
 * round after round.
 * Until the first rate sample, and never below FEED_CAP_MIN bytes, the cap
 * does not bind: KCP's own windows decide.
 *
 * Sans-I/O: bytes and `now` in, a byte count out. Delivered bytes are
 * counted as fed minus held, so the caller needs no acknowledgement hook.
 * docs/PROTOCOL.md (session) E5; the measurements in docs/bench/concurrency.md.
 */
#ifndef KCPSOCKS_FEED_H
#define KCPSOCKS_FEED_H

#include <stdbool.h>
#include <stdint.h>

#define FEED_UNLIMITED UINT64_MAX

struct feed {
	uint64_t fed;        /* bytes handed to KCP */
	uint64_t delivered;  /* bytes KCP no longer holds (never decreases) */
	uint64_t t0, d0;     /* the current rate sample began at t0 with d0 delivered */
	uint64_t rate[2];    /* largest samples, bytes per ms: this half window, the last */
	uint64_t half_start; /* when the current half window began */
	uint64_t cap;        /* the last cap computed */
	uint64_t full_rate;  /* startup: the rate the last growth reached */
	uint32_t flat;       /* samples since it grew by a quarter */
	bool engaged;        /* a queue showed and drains: the cap binds */
	bool gave_up;        /* a queue did not drain: no cap until idle */
	uint64_t ok_at;      /* engaged: the last time the RTT showed no queue */
};

/* feed_init starts a feed at now (a new session). */
void feed_init(struct feed *f, uint64_t now);

/* feed_sent counts n bytes handed to KCP. */
void feed_sent(struct feed *f, uint64_t n);

/* feed_cap takes a rate sample when one is due and returns how many bytes
 * KCP may hold now, FEED_UNLIMITED before the first sample. held is what
 * KCP holds (queued and in flight, bytes), srtt and min_rtt KCP's estimates
 * in ms (0: no sample yet). */
uint64_t feed_cap(struct feed *f, uint64_t held, uint32_t srtt, uint32_t min_rtt, uint64_t now);

/* feed_rate is the rate the cap uses, bytes per ms (0: none yet). */
uint64_t feed_rate(const struct feed *f);

#endif
