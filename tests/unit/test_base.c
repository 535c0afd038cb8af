/* test_base.c - the bounded reader and writer, sequence arithmetic, prng,
 * min/max/clamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/minmax.h"
#include "base/rd.h"
#include "base/rng.h"
#include "base/seq.h"
#include "base/wr.h"

static void rd_reads_each_width_in_its_order(void **state)
{
	(void)state;
	static const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		                     0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
		                     0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		                     0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };
	struct rd r = rd_init(b, sizeof b);
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	assert_true(rd_u8(&r, &u8));
	assert_int_equal(u8, 0x01);
	assert_true(rd_u16be(&r, &u16));
	assert_int_equal(u16, 0x0203);
	assert_true(rd_u16le(&r, &u16));
	assert_int_equal(u16, 0x0504);
	assert_true(rd_u32be(&r, &u32));
	assert_int_equal(u32, 0x06070809);
	assert_true(rd_u32le(&r, &u32));
	assert_int_equal(u32, 0x0d0c0b0a);
	assert_true(rd_u64be(&r, &u64));
	assert_true(u64 == 0x0e0f101112131415ULL);
	assert_true(rd_u64le(&r, &u64));
	assert_true(u64 == 0x1d1c1b1a19181716ULL);
	assert_int_equal(rd_left(&r), 2);
}

static void rd_short_read_changes_nothing(void **state)
{
	(void)state;
	static const uint8_t b[] = { 1, 2, 3 };
	struct rd r = rd_init(b, sizeof b);
	uint32_t u32 = 0xdeadbeef;
	uint64_t u64 = 7;
	const uint8_t *v = NULL;
	uint8_t out[4] = { 9, 9, 9, 9 };

	assert_false(rd_u32le(&r, &u32));
	assert_false(rd_u32be(&r, &u32));
	assert_int_equal(u32, 0xdeadbeef);
	assert_false(rd_u64le(&r, &u64));
	assert_int_equal(u64, 7);
	assert_false(rd_view(&r, &v, 4));
	assert_null(v);
	assert_false(rd_bytes(&r, out, 4));
	assert_int_equal(out[0], 9);
	assert_false(rd_skip(&r, 4));
	assert_int_equal(rd_left(&r), 3);
	assert_true(rd_view(&r, &v, 3));
	assert_ptr_equal(v, b);
	assert_int_equal(rd_left(&r), 0);
}

static void wr_roundtrips_and_refuses_overflow(void **state)
{
	(void)state;
	uint8_t buf[23];
	struct wr w = wr_init(buf, sizeof buf);
	struct rd r;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	uint8_t u8;

	assert_true(wr_u8(&w, 0xab));
	assert_true(wr_u16be(&w, 0x1234));
	assert_true(wr_u16le(&w, 0x1234));
	assert_true(wr_u32le(&w, 0xcafebabe));
	assert_true(wr_u64be(&w, 0x0102030405060708ULL));
	assert_int_equal(wr_len(&w), 17);
	assert_false(wr_u64le(&w, 1)); /* 6 bytes of room left */
	assert_int_equal(wr_len(&w), 17);
	assert_true(wr_u32be(&w, 0x11223344));
	assert_false(wr_u32be(&w, 0));
	assert_true(wr_u16le(&w, 0x5566));
	assert_false(wr_u8(&w, 0));
	assert_false(wr_bytes(&w, "x", 1));
	assert_true(wr_bytes(&w, "", 0));

	assert_int_equal(buf[1], 0x12);
	assert_int_equal(buf[3], 0x34);
	r = rd_init(buf, wr_len(&w));
	assert_true(rd_u8(&r, &u8) && u8 == 0xab);
	assert_true(rd_u16be(&r, &u16) && u16 == 0x1234);
	assert_true(rd_u16le(&r, &u16) && u16 == 0x1234);
	assert_true(rd_u32le(&r, &u32) && u32 == 0xcafebabe);
	assert_true(rd_u64be(&r, &u64) && u64 == 0x0102030405060708ULL);
	assert_true(rd_u32be(&r, &u32) && u32 == 0x11223344);
	assert_true(rd_u16le(&r, &u16) && u16 == 0x5566);
	assert_int_equal(rd_left(&r), 0);
}

static void seq_compares_across_the_wrap(void **state)
{
	(void)state;
	assert_int_equal(seq_diff(5, 3), 2);
	assert_int_equal(seq_diff(3, 5), -2);
	assert_int_equal(seq_diff(2, 0xfffffffeU), 4);
	assert_int_equal(seq_diff(0xfffffffeU, 2), -4);
	assert_int_equal(seq_diff(0x80000000U, 0), INT32_MIN);
	assert_int_equal(seq_diff(0x7fffffffU, 0), INT32_MAX);
	assert_true(seq_lt(0xffffffffU, 0));
	assert_true(seq_gt(0, 0xffffffffU));
	assert_true(seq_le(7, 7) && seq_ge(7, 7));
	assert_int_equal(seq_max(0xfffffff0U, 0x10), 0x10);
	assert_int_equal(seq_min(0xfffffff0U, 0x10), 0xfffffff0U);
}

static void prng_is_reproducible_and_in_range(void **state)
{
	(void)state;
	struct prng a, b;
	uint8_t x[13], y[13];
	unsigned hist[10] = { 0 };

	prng_seed(&a, 42);
	prng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		assert_true(prng_next(&a) == prng_next(&b));
	prng_fill(&a, x, sizeof x);
	prng_fill(&b, y, sizeof y);
	assert_memory_equal(x, y, sizeof x);
	prng_seed(&b, 43);
	assert_true(prng_next(&a) != prng_next(&b));

	for (int i = 0; i < 100000; i++) {
		uint32_t v = prng_below(&a, 10);
		double u = prng_unit(&a);
		assert_true(v < 10);
		assert_true(u >= 0.0 && u < 1.0);
		hist[v]++;
	}
	for (int i = 0; i < 10; i++) /* 10000 expected; 5 sigma is about 475 */
		assert_in_range(hist[i], 9500, 10500);
}

static void strerror_names_every_code(void **state)
{
	(void)state;
	for (int e = KS_ERR_IO; e <= KS_OK; e++)
		assert_string_not_equal(ks_strerror(e), "unknown error");
	assert_string_equal(ks_strerror(1), "unknown error");
	assert_string_equal(ks_strerror(KS_ERR_AUTH), "authentication failed");
}

/* Regression: an empty view may have no buffer at all (a caller with
 * nothing to parse passes NULL, 0). rd_init and wr_init computed NULL + 0,
 * undefined in C (clang -fsanitize=undefined: "applying zero offset to null
 * pointer"); now they never offset a NULL base. */
static void empty_views_may_be_null(void **state)
{
	(void)state;
	struct rd r = rd_init(NULL, 0);
	struct wr w = wr_init(NULL, 0);
	const uint8_t *v = NULL;
	uint8_t b = 0;

	assert_int_equal(rd_left(&r), 0);
	assert_false(rd_u8(&r, &b));
	assert_true(rd_view(&r, &v, 0));
	assert_true(rd_skip(&r, 0));
	assert_int_equal(wr_room(&w), 0);
	assert_int_equal(wr_len(&w), 0);
	assert_false(wr_u8(&w, 1));
	assert_true(wr_bytes(&w, NULL, 0));
}

static void minmax_at_the_edges(void **state)
{
	(void)state;
	assert_int_equal(min_u32(3, UINT32_MAX), 3);
	assert_int_equal(max_u32(3, UINT32_MAX), UINT32_MAX);
	assert_true(min_u64(UINT64_MAX, (uint64_t)1 << 40) == (uint64_t)1 << 40);
	assert_true(max_u64(UINT64_MAX, 0) == UINT64_MAX);
	assert_int_equal(min_size(SIZE_MAX, 7), 7);
	assert_true(max_size(SIZE_MAX, 7) == SIZE_MAX);
	assert_int_equal(min_u32(5, 5), 5);
	assert_int_equal(clamp_u32(0, 576, 1500), 576);
	assert_int_equal(clamp_u32(576, 576, 1500), 576);
	assert_int_equal(clamp_u32(1000, 576, 1500), 1000);
	assert_int_equal(clamp_u32(1500, 576, 1500), 1500);
	assert_int_equal(clamp_u32(UINT32_MAX, 576, 1500), 1500);
	assert_int_equal(clamp_u32(9, 9, 9), 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rd_reads_each_width_in_its_order),
		cmocka_unit_test(rd_short_read_changes_nothing),
		cmocka_unit_test(wr_roundtrips_and_refuses_overflow),
		cmocka_unit_test(seq_compares_across_the_wrap),
		cmocka_unit_test(prng_is_reproducible_and_in_range),
		cmocka_unit_test(strerror_names_every_code),
		cmocka_unit_test(empty_views_may_be_null),
		cmocka_unit_test(minmax_at_the_edges),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
