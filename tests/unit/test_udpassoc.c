/* test_udpassoc.c - the UDP datagram frame, the SOCKS5 UDP header check
 * with its drop reasons, and the rate bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/udpassoc.h"

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static void test_frame_round_trip(void **state)
{
	static const uint8_t body[] = "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35q";
	static const uint8_t want_hdr[] = { 0x78, 0x56, 0x34, 0x12, 0x5a, 0,
		                            0,    0,    0x05, 0x00, 0x00, 0x00 };
	uint8_t out[64];
	const uint8_t *v;
	size_t vlen;
	uint32_t id;
	ssize_t n;

	(void)state;
	n = udpassoc_frame_write(out, sizeof out, 0x12345678, 5, body, sizeof body - 1);
	assert_int_equal(n, UDPASSOC_FRAME_HDR + sizeof body - 1);
	assert_memory_equal(out, want_hdr, sizeof want_hdr);
	assert_true(udpassoc_is_frame(out, (size_t)n));
	assert_int_equal(udpassoc_frame_read(out, (size_t)n, 0x12345678, &id, &v, &vlen), 0);
	assert_int_equal(id, 5);
	assert_int_equal(vlen, sizeof body - 1);
	assert_ptr_equal(v, out + UDPASSOC_FRAME_HDR);
	/* Another session's conv, a short frame, a set zero byte: refused. */
	assert_int_equal(udpassoc_frame_read(out, (size_t)n, 0x12345679, &id, &v, &vlen),
	                 KS_ERR_PROTO);
	for (size_t k = 0; k < UDPASSOC_FRAME_HDR; k++)
		assert_int_equal(udpassoc_frame_read(out, k, 0x12345678, &id, &v, &vlen),
		                 KS_ERR_PROTO);
	for (size_t k = 5; k < 8; k++) {
		out[k] = 1;
		assert_int_equal(udpassoc_frame_read(out, (size_t)n, 0x12345678, &id, &v, &vlen),
		                 KS_ERR_PROTO);
		out[k] = 0;
	}
	/* An empty body is a frame (a zero-length datagram still needs its
	 * SOCKS5 header, which the daemon checks). */
	n = udpassoc_frame_write(out, sizeof out, 1, 2, NULL, 0);
	assert_int_equal(n, UDPASSOC_FRAME_HDR);
	assert_int_equal(udpassoc_frame_read(out, (size_t)n, 1, &id, &v, &vlen), 0);
	assert_int_equal(vlen, 0);
	/* Room. */
	assert_int_equal(udpassoc_frame_write(out, 11, 1, 2, NULL, 0), KS_ERR_FULL);
	assert_int_equal(udpassoc_frame_write(out, 13, 1, 2, body, 2), KS_ERR_FULL);
	/* KCP segments (commands 0x51..0x54) and path frames are no frames. */
	memset(out, 0, sizeof out);
	for (uint8_t c = 0x51; c <= 0x59; c++) {
		out[4] = c;
		assert_false(udpassoc_is_frame(out, 24));
	}
	assert_false(udpassoc_is_frame(out, 4));
}

static void test_max_frame(void **state)
{
	(void)state;
	assert_int_equal(udpassoc_max_frame(1400), 1400 - 32 - 12);
	assert_int_equal(udpassoc_max_frame(1500), 1500 - 44);
	assert_int_equal(udpassoc_max_frame(9000), 1500 - 44);
	assert_int_equal(udpassoc_max_frame(40), 0);
}

static void check(const uint8_t *p, size_t len, int want_rc, enum udpassoc_drop want_why)
{
	struct socks5_udp_header h;
	enum udpassoc_drop why = UDPASSOC_DROP_REASONS;

	assert_int_equal(udpassoc_check(p, len, &h, &why), want_rc);
	if (want_rc != 0)
		assert_int_equal(why, want_why);
}

static void test_check(void **state)
{
	struct socks5_udp_header h;
	enum udpassoc_drop why;
	static const uint8_t v4[] = "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35"
	                            "data";

	(void)state;
	assert_int_equal(udpassoc_check(v4, sizeof v4 - 1, &h, &why), 0);
	assert_int_equal(h.dst.type, SOCKS5_ATYP_IPV4);
	assert_int_equal(h.dst.port, 53);
	assert_int_equal(h.data_len, 4);
	assert_memory_equal(h.data, "data", 4);
	/* Every prefix that ends inside the header is truncated. */
	for (size_t k = 0; k < 10; k++)
		check(v4, k, KS_ERR_PROTO, UDPASSOC_DROP_TRUNCATED);
	check(S("\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35"), 0, 0); /* no data */
	check(S("\x00\x00\x01\x01\x7f\x00\x00\x01\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_FRAG);
	check(S("\x00\x00\x80\x01\x7f\x00\x00\x01\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_FRAG);
	check(S("\x00\x00\x00\x02\x7f\x00\x00\x01\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_BAD_ATYP);
	check(S("\x01\x00\x00\x01\x7f\x00\x00\x01\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_BAD_HDR);
	check(S("\x00\x00\x00\x03\x00\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_BAD_HDR);
	check(S("\x00\x00\x00\x03\x01\n\x00\x35x"), KS_ERR_PROTO, UDPASSOC_DROP_BAD_HDR);
	check(S("\x00\x00\x00\x03\x05hello\x00"), KS_ERR_PROTO, UDPASSOC_DROP_TRUNCATED);
	check(S("\x00\x00\x00\x03\x05hello\x00\x35"), 0, 0);
	check(S("\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	        "\x01\x00\x35"),
	      0, 0);
	check(S("\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	        "\x01\x00"),
	      KS_ERR_PROTO, UDPASSOC_DROP_TRUNCATED);
}

static void test_bucket(void **state)
{
	struct udpassoc_bucket b = { 0 };
	int ok = 0;

	(void)state;
	/* A burst of one second's worth, then the rate. */
	for (int i = 0; i < 20; i++)
		ok += udpassoc_bucket_take(&b, 10, 1000);
	assert_int_equal(ok, 10);
	assert_false(udpassoc_bucket_take(&b, 10, 1099));
	assert_true(udpassoc_bucket_take(&b, 10, 1100));
	assert_false(udpassoc_bucket_take(&b, 10, 1100));
	/* A long pause refills to the burst, not beyond. */
	ok = 0;
	for (int i = 0; i < 20; i++)
		ok += udpassoc_bucket_take(&b, 10, 900000);
	assert_int_equal(ok, 10);
	/* Zero is unlimited. */
	for (int i = 0; i < 1000; i++)
		assert_true(udpassoc_bucket_take(&b, 0, 900000));
}

static void test_labels(void **state)
{
	(void)state;
	for (int r = 0; r < UDPASSOC_DROP_REASONS; r++) {
		const char *l = udpassoc_drop_label((enum udpassoc_drop)r);

		assert_non_null(l);
		assert_string_not_equal(l, "unknown");
		for (const char *c = l; *c; c++)
			assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
	}
	assert_string_equal(udpassoc_drop_label(UDPASSOC_DROP_REASONS), "unknown");
	assert_string_equal(udpassoc_drop_label(UDPASSOC_DROP_STRANGER), "stranger");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_max_frame),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
