/* test_cfgtext.c - the shared value syntaxes: each good form, each bad one,
 * and outputs left unchanged on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/cfgtext.h"

static void numbers_and_ports(void **state)
{
	(void)state;
	static const char *const bad_u64[] = { "", "-1", "+1", " 1", "1 ", "1x", "12345678901" };
	static const char *const bad_port[] = { "0", "65536", "", "80a", "99999999999" };
	uint64_t v = 7;
	uint16_t p = 7;

	assert_true(cfgtext_parse_u64("0", 1, &v));
	assert_int_equal(v, 0);
	assert_true(cfgtext_parse_u64("4294967295", 10, &v));
	assert_int_equal(v, 4294967295u);
	assert_true(cfgtext_parse_u64("9999999999", 10, &v));
	assert_int_equal(v, 9999999999u);
	for (size_t i = 0; i < sizeof bad_u64 / sizeof bad_u64[0]; i++) {
		v = 7;
		assert_false(cfgtext_parse_u64(bad_u64[i], strlen(bad_u64[i]), &v));
		assert_int_equal(v, 7);
	}
	assert_true(cfgtext_parse_port("1", 1, &p));
	assert_int_equal(p, 1);
	assert_true(cfgtext_parse_port("65535", 5, &p));
	assert_int_equal(p, 65535);
	for (size_t i = 0; i < sizeof bad_port / sizeof bad_port[0]; i++) {
		p = 7;
		assert_false(cfgtext_parse_port(bad_port[i], strlen(bad_port[i]), &p));
		assert_int_equal(p, 7);
	}
}

static void names_and_hosts(void **state)
{
	(void)state;
	char long_name[CONFIG_NAME_MAX + 2], wide[65];

	assert_true(cfgtext_valid_name("alice.b_c-1", 11));
	assert_false(cfgtext_valid_name("", 0));
	assert_false(cfgtext_valid_name("al ice", 6));
	assert_false(cfgtext_valid_name("al:ice", 6));
	memset(long_name, 'a', sizeof long_name);
	assert_true(cfgtext_valid_name(long_name, CONFIG_NAME_MAX));
	assert_false(cfgtext_valid_name(long_name, CONFIG_NAME_MAX + 1));

	assert_true(cfgtext_valid_hostname("vpn.example.org", 15));
	assert_false(cfgtext_valid_hostname("h_x", 3));
	assert_false(cfgtext_valid_hostname("-h", 2));
	assert_false(cfgtext_valid_hostname(".h", 2));
	assert_false(cfgtext_valid_hostname("", 0));

	assert_true(cfgtext_printable("a b~", 4));
	assert_false(cfgtext_printable("a\nb", 3));
	assert_false(cfgtext_printable("\x7f", 1));
	assert_int_equal(cfgtext_shown("abc", 3), 3);
	assert_int_equal(cfgtext_shown("a\tc", 3), 0);
	memset(wide, 'w', sizeof wide);
	assert_int_equal(cfgtext_shown(wide, sizeof wide), 64);
}

static void keys_and_profiles(void **state)
{
	(void)state;
	static const uint8_t want[CONFIG_KEY_LEN] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
		                                      11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
		                                      22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
	const char *k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	uint8_t key[CONFIG_KEY_LEN], before[CONFIG_KEY_LEN];
	char name[PROFILE_NAME_MAX + 1] = "x";

	assert_true(cfgtext_parse_key32(k, strlen(k), key));
	assert_memory_equal(key, want, sizeof want);
	memset(key, 0x5a, sizeof key);
	memcpy(before, key, sizeof key);
	assert_false(cfgtext_parse_key32(k, strlen(k) - 1, key));
	assert_false(cfgtext_parse_key32("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+", 43, key));
	assert_false(cfgtext_parse_key32("PASTE_PSK_HERE", 14, key));
	assert_memory_equal(key, before, sizeof key);

	assert_true(cfgtext_profile_name(name, "fast", 4));
	assert_string_equal(name, "fast");
	assert_false(cfgtext_profile_name(name, "turbo", 5));
	assert_false(cfgtext_profile_name(name, "fastest", 4 + 3));
	assert_string_equal(name, "fast");
}

static void endpoints(void **state)
{
	(void)state;
	static const struct {
		const char *text, *host;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:1080", "127.0.0.1", 1080 },
		{ "[::1]:8443", "::1", 8443 },
		{ "vpn.example.org:1", "vpn.example.org", 1 },
	};
	static const char *const bad[] = { "",       "h",     "h:",      ":1",
		                           "::1:80", "[::1]", "[::1]80", "[::g]:1",
		                           "h_x:1",  "h:0",   "h:65536", "[1.2.3.4]:1" };
	struct config_endpoint e;
	uint8_t a[16];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		memset(&e, 0, sizeof e);
		assert_true(cfgtext_parse_endpoint(good[i].text, strlen(good[i].text), &e));
		assert_true(e.set);
		assert_string_equal(e.host, good[i].host);
		assert_int_equal(e.port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&e, 0x33, sizeof e);
		if (cfgtext_parse_endpoint(bad[i], strlen(bad[i]), &e))
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(e.port, 0x3333);
	}
	assert_true(cfgtext_pton(4, "10.0.0.1", 8, a));
	assert_int_equal(a[0], 10);
	assert_int_equal(a[4], 0);
	assert_true(cfgtext_pton(6, "::1", 3, a));
	assert_int_equal(a[15], 1);
	assert_false(cfgtext_pton(4, "::1", 3, a));
	assert_false(cfgtext_pton(6, "", 0, a));
}

static void splitting_and_trimming(void **state)
{
	(void)state;
	const char text[] = "a, b ,,c";
	struct rd r = rd_init(text, strlen(text));
	const char *v;
	size_t n;

	assert_true(cfgtext_take_until(&r, ',', &v, &n));
	assert_int_equal(n, 1);
	assert_memory_equal(v, "a", 1);
	assert_true(cfgtext_take_until(&r, ',', &v, &n));
	cfgtext_trim(&v, &n);
	assert_int_equal(n, 1);
	assert_memory_equal(v, "b", 1);
	assert_true(cfgtext_take_until(&r, ',', &v, &n));
	assert_int_equal(n, 0);
	assert_false(cfgtext_take_until(&r, ',', &v, &n)); /* the rest, no separator */
	assert_int_equal(n, 1);
	assert_memory_equal(v, "c", 1);
	assert_int_equal(rd_left(&r), 0);

	v = " \t \t";
	n = 4;
	cfgtext_trim(&v, &n);
	assert_int_equal(n, 0);
}

static void messages(void **state)
{
	(void)state;
	char buf[8];

	cfgtext_say((struct cfgtext_msg){ buf, sizeof buf }, "%s %d", "abcdef", 42);
	assert_string_equal(buf, "abcdef ");
	cfgtext_say((struct cfgtext_msg){ NULL, 0 }, "nothing");
	cfgtext_say((struct cfgtext_msg){ buf, 0 }, "nothing");
	assert_string_equal(buf, "abcdef ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(numbers_and_ports),      cmocka_unit_test(names_and_hosts),
		cmocka_unit_test(keys_and_profiles),      cmocka_unit_test(endpoints),
		cmocka_unit_test(splitting_and_trimming), cmocka_unit_test(messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
