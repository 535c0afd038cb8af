/* test_io_clock.c - the two clocks: monotonic never goes back, wall is unix ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "io/clock.h"

static void mono_never_goes_back(void **state)
{
	(void)state;
	uint64_t prev = clock_mono_ms();

	for (int i = 0; i < 100000; i++) {
		uint64_t now = clock_mono_ms();
		assert_true(now >= prev);
		prev = now;
	}
}

static void wall_is_unix_milliseconds(void **state)
{
	(void)state;
	uint64_t ms = clock_wall_ms();
	time_t s = time(NULL);

	/* Within a few seconds of time(2), in milliseconds. */
	assert_true(ms / 1000 + 2 >= (uint64_t)s && ms / 1000 <= (uint64_t)s + 2);
	assert_true(ms > 1577836800000ULL); /* after 2020-01-01 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mono_never_goes_back),
		cmocka_unit_test(wall_is_unix_milliseconds),
	};
	return cmocka_run_group_tests_name("io_clock", tests, NULL, NULL);
}
