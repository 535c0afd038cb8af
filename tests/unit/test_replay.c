/* test_replay.c - the sliding window against a naive model, and its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/rng.h"
#include "core/replay.c"

static void accept(struct replay *r, uint64_t ctr, bool newest)
{
	assert_int_equal(replay_check(r, ctr), 0);
	assert_int_equal(replay_update(r, ctr), newest);
	assert_int_equal(replay_check(r, ctr), KS_ERR_REPLAY);
}

static void in_order_then_duplicates(void **state)
{
	(void)state;
	struct replay r;

	replay_init(&r);
	for (uint64_t i = 0; i < 10000; i++)
		accept(&r, i, true);
	for (uint64_t i = 10000 - REPLAY_WINDOW; i < 10000; i++)
		assert_int_equal(replay_check(&r, i), KS_ERR_REPLAY);
}

static void window_edges(void **state)
{
	(void)state;
	struct replay r;
	uint64_t top = 100000;

	replay_init(&r);
	accept(&r, top, true);
	/* REPLAY_WINDOW - 1 behind the newest is the oldest still accepted. */
	accept(&r, top - (REPLAY_WINDOW - 1), false);
	assert_int_equal(replay_check(&r, top - REPLAY_WINDOW), KS_ERR_REPLAY);
	assert_int_equal(replay_check(&r, 0), KS_ERR_REPLAY);
	assert_true(REPLAY_WINDOW >= 2048);
	/* Everything in between is still open. */
	for (uint64_t c = top - (REPLAY_WINDOW - 2); c < top; c++)
		assert_int_equal(replay_check(&r, c), 0);
}

static void jumps_clear_old_bits(void **state)
{
	(void)state;
	struct replay r;

	replay_init(&r);
	accept(&r, 0, true);
	accept(&r, 5, true);
	/* A jump of more than the whole ring: nothing old may linger as seen. */
	accept(&r, 5 + REPLAY_BITMAP_BITS * 3 + 17, true);
	for (uint64_t c = r.next - REPLAY_WINDOW; c < r.next - 1; c++)
		assert_int_equal(replay_check(&r, c), 0);
	/* A jump of a few words. */
	uint64_t top = r.next - 1;
	accept(&r, top + 200, true);
	accept(&r, top + 1, false);
	for (uint64_t c = top + 2; c < top + 200; c++)
		assert_int_equal(replay_check(&r, c), 0);
	/* Counter 0 of a fresh window is a first, not a replay. */
	replay_init(&r);
	assert_int_equal(replay_check(&r, 0), 0);
}

/* Random counters against a model that remembers every counter seen. */
static void matches_a_naive_model(void **state)
{
	(void)state;
	enum { N = 200000, SPAN = 1 << 20 };
	uint8_t *seen = calloc(SPAN, 1);
	struct replay r;
	struct prng g;
	uint64_t max = 0;
	bool any = false;

	assert_non_null(seen);
	replay_init(&r);
	prng_seed(&g, 99);
	for (int i = 0; i < N; i++) {
		/* Mostly near the top, some far behind, some jumps ahead. */
		uint64_t base = any ? max : 0, c;
		uint32_t k = prng_below(&g, 100);

		if (k < 70)
			c = base + prng_below(&g, 8) - (base >= 4 ? 4 : 0);
		else if (k < 90)
			c = base >= 5000 ? base - prng_below(&g, 5000) : prng_below(&g, 5000);
		else
			c = base + prng_below(&g, 3000);
		if (c >= SPAN)
			break;
		bool ok = !seen[c] && (!any || c > max || max - c < REPLAY_WINDOW);
		assert_int_equal(replay_check(&r, c) == 0, ok);
		if (ok) {
			bool newest = !any || c > max;
			assert_int_equal(replay_update(&r, c), newest);
			seen[c] = 1;
			if (newest)
				max = c;
			any = true;
		}
	}
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_order_then_duplicates),
		cmocka_unit_test(window_edges),
		cmocka_unit_test(jumps_clear_old_bits),
		cmocka_unit_test(matches_a_naive_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
