/* test_dstseen.c - the destinations a client reached lately: known after a
 * success until the TTL, forgotten on a failure, one request's bytes
 * exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/dstseen.h"

static const uint8_t key[DSTSEEN_KEY_LEN] = "0123456789abcdef";
/* CONNECT example.com:443 and :80 */
static const uint8_t a[] = { 5,   1,   0,   3,   11,  'e', 'x', 'a', 'm',
	                     'p', 'l', 'e', '.', 'c', 'o', 'm', 1,   187 };
static const uint8_t b[] = { 5,   1,   0,   3,   11,  'e', 'x', 'a', 'm',
	                     'p', 'l', 'e', '.', 'c', 'o', 'm', 0,   80 };

static void unknown_until_reached(void **state)
{
	static struct dstseen d;

	(void)state;
	dstseen_init(&d, key);
	assert_false(dstseen_known(&d, a, sizeof a, 0));
	assert_false(dstseen_known(&d, a, sizeof a, 1000));
	dstseen_note(&d, a, sizeof a, false, 1000); /* a failure adds nothing */
	assert_false(dstseen_known(&d, a, sizeof a, 1000));
	dstseen_note(&d, a, sizeof a, true, 1000);
	assert_true(dstseen_known(&d, a, sizeof a, 1000));
	assert_false(dstseen_known(&d, b, sizeof b, 1000)); /* another port */
	assert_false(dstseen_known(&d, a, sizeof a - 1, 1000));
}

static void expires_and_refreshes(void **state)
{
	static struct dstseen d;

	(void)state;
	dstseen_init(&d, key);
	dstseen_note(&d, a, sizeof a, true, 5000);
	assert_true(dstseen_known(&d, a, sizeof a, 5000 + DSTSEEN_TTL_MS - 1));
	assert_false(dstseen_known(&d, a, sizeof a, 5000 + DSTSEEN_TTL_MS));
	dstseen_note(&d, a, sizeof a, true, 5000 + DSTSEEN_TTL_MS);
	assert_true(dstseen_known(&d, a, sizeof a, 5000 + 2 * DSTSEEN_TTL_MS - 1));
}

static void failure_forgets(void **state)
{
	static struct dstseen d;

	(void)state;
	dstseen_init(&d, key);
	dstseen_note(&d, a, sizeof a, true, 0);
	dstseen_note(&d, b, sizeof b, true, 0);
	dstseen_note(&d, a, sizeof a, false, 10);
	assert_false(dstseen_known(&d, a, sizeof a, 10));
	assert_true(dstseen_known(&d, b, sizeof b, 10));
}

/* The table is bounded: many destinations evict older ones, never grow
 * it, and the newest is always known. */
static void bounded(void **state)
{
	static struct dstseen d;
	uint8_t r[7] = { 5, 1, 0, 1, 10, 0, 0 };
	size_t known = 0;

	(void)state;
	dstseen_init(&d, key);
	for (unsigned i = 0; i < 4 * DSTSEEN_SLOTS; i++) {
		r[5] = (uint8_t)(i >> 8);
		r[6] = (uint8_t)i;
		dstseen_note(&d, r, sizeof r, true, 0);
		assert_true(dstseen_known(&d, r, sizeof r, 0));
	}
	for (unsigned i = 0; i < 4 * DSTSEEN_SLOTS; i++) {
		r[5] = (uint8_t)(i >> 8);
		r[6] = (uint8_t)i;
		known += dstseen_known(&d, r, sizeof r, 0);
	}
	assert_true(known <= DSTSEEN_SLOTS);
	assert_true(known > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unknown_until_reached),
		cmocka_unit_test(expires_and_refreshes),
		cmocka_unit_test(failure_forgets),
		cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
