/* test_io_addr.c - numeric address parsing, formatting and comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "io/addr.h"

struct good {
	const char *text;
	const char *default_host;
	const char *formatted;
};

static const struct good goods[] = {
	{ "127.0.0.1:1080", NULL, "127.0.0.1:1080" },
	{ "0.0.0.0:0", NULL, "0.0.0.0:0" },
	{ "255.255.255.255:65535", NULL, "255.255.255.255:65535" },
	{ "[::1]:1080", NULL, "[::1]:1080" },
	{ "[::]:9", NULL, "[::]:9" },
	{ "[2001:db8::1]:443", NULL, "[2001:db8::1]:443" },
	{ "[::ffff:127.0.0.1]:80", NULL, "[::ffff:127.0.0.1]:80" },
	{ "[fe80::1%1]:7", NULL, "[fe80::1%lo]:7" },
	{ "[fe80::1%lo]:7", NULL, "[fe80::1%lo]:7" },
	{ "1080", "127.0.0.1", "127.0.0.1:1080" },
	{ "1080", "::1", "[::1]:1080" },
	{ "00080", "127.0.0.1", "127.0.0.1:80" },
	{ "10.0.0.1:00443", NULL, "10.0.0.1:443" },
};

struct bad {
	const char *text;
	const char *default_host;
	const char *why; /* a piece of the message */
};

static const struct bad bads[] = {
	{ "", "127.0.0.1", "empty" },
	{ "127.0.0.1", NULL, "missing port" },
	{ "localhost:80", NULL, "not a numeric IPv4" },
	{ "127.1:80", NULL, "not a numeric IPv4" },
	{ "0x7f.0.0.1:80", NULL, "not a numeric IPv4" },
	{ "127.0.0.1:", NULL, "port must be" },
	{ "127.0.0.1:65536", NULL, "port must be" },
	{ "127.0.0.1:123456", NULL, "port must be" },
	{ "127.0.0.1:-1", NULL, "port must be" },
	{ "127.0.0.1:+80", NULL, "port must be" },
	{ "127.0.0.1: 80", NULL, "port must be" },
	{ " 127.0.0.1:80", NULL, "not a numeric IPv4" },
	{ ":80", NULL, "missing host" },
	{ "::1:80", NULL, "needs brackets" },
	{ "[::1]", NULL, "expected ':PORT'" },
	{ "[::1]80", NULL, "expected ':PORT'" },
	{ "[::1:80", NULL, "missing ']'" },
	{ "[127.0.0.1]:80", NULL, "not a numeric IPv6" },
	{ "[]:80", NULL, "missing host" },
	{ "[::1]:", NULL, "port must be" },
	{ "[fe80::1%nosuchif0]:7", NULL, "not a numeric IPv6" },
	/* one past UINT32_MAX: refused on 32-bit targets too (unsigned long) */
	{ "[fe80::1%4294967296]:7", NULL, "not a numeric IPv6" },
	{ "1080", NULL, "missing host" },
	{ "99999", "127.0.0.1", "port must be" },
	{ "80", "localhost", "not a numeric IPv4" },
	{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]:1", NULL,
	  "too long" },
};

static void parses_and_formats_every_good_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
		struct sockaddr_storage ss;
		char text[ADDR_TEXT_MAX], err[ADDR_ERR_MAX] = "";
		int r = addr_parse(goods[i].text, goods[i].default_host, &ss, err, sizeof err);

		if (r != 0)
			fail_msg("'%s': %s", goods[i].text, err);
		assert_string_equal(addr_format(&ss, text), goods[i].formatted);
		/* What we print, we parse back to the same address. */
		struct sockaddr_storage again;
		assert_int_equal(addr_parse(text, NULL, &again, NULL, 0), 0);
		assert_true(addr_equal(&ss, &again));
	}
}

static void refuses_every_bad_form_naming_the_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		struct sockaddr_storage ss, before;
		char err[ADDR_ERR_MAX] = "";

		memset(&ss, 0xa5, sizeof ss);
		before = ss;
		int r = addr_parse(bads[i].text, bads[i].default_host, &ss, err, sizeof err);
		if (r != KS_ERR_INVAL)
			fail_msg("'%s' accepted", bads[i].text);
		if (!strstr(err, bads[i].why))
			fail_msg("'%s': message '%s' lacks '%s'", bads[i].text, err, bads[i].why);
		char quoted[ADDR_ERR_MAX];
		snprintf(quoted, sizeof quoted, "'%s'", bads[i].text);
		if (strlen(bads[i].text) < 40 && !strstr(err, quoted))
			fail_msg("message '%s' does not quote the input", err);
		assert_memory_equal(&ss, &before, sizeof ss);
		/* A NULL err buffer is allowed. */
		assert_int_equal(addr_parse(bads[i].text, bads[i].default_host, &ss, NULL, 0),
		                 KS_ERR_INVAL);
	}
}

static void error_message_is_cut_to_the_buffer(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char err[12];

	memset(err, 'x', sizeof err);
	assert_int_equal(addr_parse("nope", NULL, &ss, err, sizeof err), KS_ERR_INVAL);
	assert_int_equal(strlen(err), sizeof err - 1);
}

static void host_and_port_separately(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char text[ADDR_TEXT_MAX], err[ADDR_ERR_MAX];

	assert_int_equal(addr_parse_host_port("127.0.0.1", "9000", &ss, err, sizeof err), 0);
	assert_string_equal(addr_format(&ss, text), "127.0.0.1:9000");
	assert_int_equal(addr_parse_host_port("::1", "9000", &ss, err, sizeof err), 0);
	assert_string_equal(addr_format(&ss, text), "[::1]:9000");
	assert_int_equal(addr_parse_host_port("[::1]", "1", &ss, err, sizeof err), 0);
	assert_string_equal(addr_format(&ss, text), "[::1]:1");
	assert_int_equal(addr_parse_host_port("example.com", "80", &ss, err, sizeof err),
	                 KS_ERR_INVAL);
	assert_non_null(strstr(err, "'example.com'"));
	assert_int_equal(addr_parse_host_port("127.0.0.1", "http", &ss, err, sizeof err),
	                 KS_ERR_INVAL);
	assert_string_equal(err, "bad port 'http': must be a number from 0 to 65535");
	assert_int_equal(addr_parse_host_port("", "80", &ss, err, sizeof err), KS_ERR_INVAL);
}

static void compares_family_address_and_port(void **state)
{
	(void)state;
	static const char *const distinct[] = {
		"127.0.0.1:1",          "127.0.0.1:2", "127.0.0.2:1",   "[::1]:1",
		"[::ffff:127.0.0.1]:1", "[fe80::1]:1", "[fe80::1%1]:1",
	};
	size_t n = sizeof distinct / sizeof distinct[0];

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			struct sockaddr_storage a, b;
			assert_int_equal(addr_parse(distinct[i], NULL, &a, NULL, 0), 0);
			assert_int_equal(addr_parse(distinct[j], NULL, &b, NULL, 0), 0);
			assert_int_equal(addr_equal(&a, &b), i == j);
		}
	}
	struct sockaddr_storage u1, u2;
	memset(&u1, 0, sizeof u1);
	memset(&u2, 0, sizeof u2);
	u1.ss_family = u2.ss_family = AF_UNIX;
	assert_false(addr_equal(&u1, &u2));
}

static void lengths_ports_and_unknown_families(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char text[ADDR_TEXT_MAX];

	assert_int_equal(addr_parse("10.1.2.3:4567", NULL, &ss, NULL, 0), 0);
	assert_int_equal(addr_len(&ss), sizeof(struct sockaddr_in));
	assert_int_equal(addr_port(&ss), 4567);
	assert_int_equal(addr_parse("[::2]:65535", NULL, &ss, NULL, 0), 0);
	assert_int_equal(addr_len(&ss), sizeof(struct sockaddr_in6));
	assert_int_equal(addr_port(&ss), 65535);
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_int_equal(addr_len(&ss), 0);
	assert_int_equal(addr_port(&ss), 0);
	assert_string_equal(addr_format(&ss, text), "(family 1)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_and_formats_every_good_form),
		cmocka_unit_test(refuses_every_bad_form_naming_the_input),
		cmocka_unit_test(error_message_is_cut_to_the_buffer),
		cmocka_unit_test(host_and_port_separately),
		cmocka_unit_test(compares_family_address_and_port),
		cmocka_unit_test(lengths_ports_and_unknown_families),
	};
	return cmocka_run_group_tests_name("io_addr", tests, NULL, NULL);
}
