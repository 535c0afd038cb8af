/* test_io_ifaddrs.c - the host's own addresses for the policy's `self`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "io/ifaddrs.h"

/* Every Linux host has loopback: 127.0.0.1 (and ::1 when IPv6 is on). */
static void reads_loopback(void **state)
{
	(void)state;
	struct config_self self;
	uint8_t lo[16] = { 127, 0, 0, 1 };

	memset(&self, 0, sizeof self);
	assert_int_equal(ifaddrs_read(&self), 0);
	assert_true(self.n >= 1 && self.n <= CONFIG_SELF_MAX);
	assert_true(config_self_has(&self, 4, lo));
	for (size_t i = 0; i < self.n; i++)
		assert_true(self.a[i].family == 4 || self.a[i].family == 6);
}

/* The cache re-reads only after IFADDRS_REFRESH_MS. */
static void refreshes_lazily(void **state)
{
	(void)state;
	struct ifaddrs_cache c;
	const struct config_self *s;

	memset(&c, 0, sizeof c);
	s = ifaddrs_current(&c, 5000);
	assert_non_null(s);
	assert_int_equal(c.read_at, 5000);
	assert_true(s->n >= 1);
	c.self.n = 0; /* a stale copy */
	s = ifaddrs_current(&c, 5000 + IFADDRS_REFRESH_MS - 1);
	assert_int_equal(s->n, 0);
	assert_int_equal(c.read_at, 5000);
	s = ifaddrs_current(&c, 5000 + IFADDRS_REFRESH_MS);
	assert_true(s->n >= 1);
	assert_int_equal(c.read_at, 5000 + IFADDRS_REFRESH_MS);
	assert_int_equal(c.last_errno, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_loopback),
		cmocka_unit_test(refreshes_lazily),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
