/* test_feed.c - the feed's cap (core/feed.h): unlimited until a rate is
 * known and the RTT shows a queue, then rate x (base RTT, FEED_STARTUP_GAIN
 * times it in startup, + FEED_QUEUE_MS), never below FEED_CAP_MIN; off
 * again when a queue does not drain; idle time does not dilute the rate,
 * and the rate is a windowed maximum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/feed.h"

/* deliver runs `ms` of a steady transfer at `rate` bytes per ms: each ms
 * rate bytes are fed and as many delivered, KCP holding `held`. */
static uint64_t deliver(struct feed *f, uint64_t *now, uint64_t ms, uint64_t rate, uint64_t held,
                        uint32_t srtt, uint32_t min_rtt)
{
	uint64_t cap = 0;

	for (uint64_t i = 0; i < ms; i++) {
		feed_sent(f, rate);
		(*now)++;
		cap = feed_cap(f, held, srtt, min_rtt, *now);
	}
	return cap;
}

static void unlimited_until_a_queue(void **state)
{
	struct feed f;
	uint64_t now = 1000;

	(void)state;
	feed_init(&f, now);
	assert_int_equal(feed_cap(&f, 0, 0, 0, now), FEED_UNLIMITED);
	feed_sent(&f, 50000);
	/* Under an srtt of data: no sample yet. */
	assert_int_equal(feed_cap(&f, 50000, 10, 10, now + 5), FEED_UNLIMITED);
	/* No RTT sample from KCP: no cap either. */
	deliver(&f, &now, 30, 1000, 5000, 0, 0);
	assert_true(feed_rate(&f) > 0);
	assert_int_equal(feed_cap(&f, 5000, 0, 0, now), FEED_UNLIMITED);
	/* A rate, but the RTT shows no queue (jitter below the threshold). */
	assert_int_equal(deliver(&f, &now, 100, 1000, 5000, 12, 10), FEED_UNLIMITED);
}

/* The threshold a queue must reach, as feed.c computes it. */
static uint32_t queue_at(uint32_t min_rtt)
{
	uint32_t q = FEED_ENGAGE_Q * FEED_QUEUE_MS;
	return min_rtt + (min_rtt / 4 > q ? min_rtt / 4 : q);
}

static void startup_then_steady(void **state)
{
	struct feed f;
	uint64_t now = 0, cap;

	(void)state;
	feed_init(&f, now);
	/* 100,000 bytes per ms, min_rtt 4, and a queue: startup while the
	 * rate is new, so FEED_STARTUP_GAIN base RTTs. */
	cap = deliver(&f, &now, 30, 100000, 400000, queue_at(4), 4);
	assert_int_equal(feed_rate(&f), 100000);
	assert_int_equal(cap, 100000 * (FEED_STARTUP_GAIN * 4 + FEED_QUEUE_MS));
	/* The rate stops growing: after FEED_STARTUP_ROUNDS samples one base
	 * RTT; the queue drained (srtt back near min_rtt): still engaged. */
	cap = deliver(&f, &now, 10 * (FEED_STARTUP_ROUNDS + 1), 100000, 400000, 5, 4);
	assert_int_equal(cap, 100000 * (4 + FEED_QUEUE_MS));
	/* A slow transfer: never below the floor. */
	cap = deliver(&f, &now, 3 * FEED_WINDOW_MS, 10, 400000, 5, 4);
	assert_int_equal(cap, FEED_CAP_MIN);
}

static void gives_up_on_a_queue_not_ours(void **state)
{
	struct feed f;
	uint64_t now = 0, cap;

	(void)state;
	feed_init(&f, now);
	/* Samples every srtt (50 ms); the first one engages the cap. */
	cap = deliver(&f, &now, 120, 10000, 100000, 50, 10);
	assert_int_equal(cap, 10000 * (FEED_STARTUP_GAIN * 10 + FEED_QUEUE_MS));
	/* The RTT stays at 50 whatever the cap does: not our queue. */
	cap = deliver(&f, &now, FEED_GIVEUP_MS - 100, 10000, 100000, 50, 10);
	assert_true(cap != FEED_UNLIMITED);
	cap = deliver(&f, &now, 60, 10000, 100000, 50, 10);
	assert_int_equal(cap, FEED_UNLIMITED);
	/* ...for as long as the session is busy. */
	cap = deliver(&f, &now, 3 * FEED_WINDOW_MS, 10000, 100000, 50, 10);
	assert_int_equal(cap, FEED_UNLIMITED);
	/* Idle for a window: it starts over and engages again. */
	now += 3 * FEED_WINDOW_MS;
	(void)feed_cap(&f, 0, 50, 10, now);
	feed_sent(&f, 100000);
	cap = deliver(&f, &now, 120, 10000, 100000, 50, 10);
	assert_true(cap != FEED_UNLIMITED);
}

static void windowed_max_and_idle(void **state)
{
	struct feed f;
	uint64_t now = 0, cap;

	(void)state;
	feed_init(&f, now);
	deliver(&f, &now, 100, 100000, 400000, queue_at(4), 4);
	assert_int_equal(feed_rate(&f), 100000);
	/* Slower for less than a window: the maximum stays. */
	deliver(&f, &now, FEED_WINDOW_MS / 4, 1000, 400000, 5, 4);
	assert_int_equal(feed_rate(&f), 100000);
	/* ...and goes once a whole window was slower. */
	deliver(&f, &now, FEED_WINDOW_MS * 2, 1000, 400000, 5, 4);
	assert_int_equal(feed_rate(&f), 1000);
	/* Idle (KCP holds nothing) for a long time, then a burst: the first
	 * sample does not average the idle time in. */
	deliver(&f, &now, 200, 5000, 100000, 5, 4);
	now += 10000;
	assert_true(feed_cap(&f, 0, 5, 4, now) != 0);
	feed_sent(&f, 100000); /* the burst fills KCP */
	cap = deliver(&f, &now, 6, 5000, 100000, 5, 4);
	assert_int_equal(feed_rate(&f), 5000);
	assert_true(cap >= FEED_CAP_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unlimited_until_a_queue),
		cmocka_unit_test(startup_then_steady),
		cmocka_unit_test(gives_up_on_a_queue_not_ours),
		cmocka_unit_test(windowed_max_and_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
