/* test_io_sysrng.c - libsodium behind struct rng_source, and fd flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/sysrng.h"

static void fills_every_length_with_fresh_bytes(void **state)
{
	(void)state;
	uint8_t a[64], b[64];

	assert_int_equal(sysrng_init(), 0);
	assert_int_equal(sysrng_init(), 0); /* again: harmless */
	struct rng_source r = sysrng_source();
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	rng_fill(&r, a, sizeof a);
	rng_fill(&r, b, sizeof b);
	/* 512 random bits equal by chance: probability 2^-512. */
	assert_memory_not_equal(a, b, sizeof a);
	/* A short fill touches only its bytes. */
	memset(a, 0xee, sizeof a);
	rng_fill(&r, a, 3);
	for (size_t i = 3; i < sizeof a; i++)
		assert_int_equal(a[i], 0xee);
	rng_fill(&r, a, 0);
}

static void nonblock_is_set_and_restored(void **state)
{
	(void)state;
	int p[2], old = -1;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(fdio_set_nonblock(p[0], &old), 0);
	assert_false(old & O_NONBLOCK);
	assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_int_equal(fdio_set_nonblock(p[0], NULL), 0); /* idempotent */
	fdio_restore_flags(p[0], old);
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	close(p[0]);
	close(p[1]);
	assert_int_equal(fdio_set_nonblock(p[0], &old), KS_ERR_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fills_every_length_with_fresh_bytes),
		cmocka_unit_test(nonblock_is_set_and_restored),
	};
	return cmocka_run_group_tests_name("io_sysrng", tests, NULL, NULL);
}
