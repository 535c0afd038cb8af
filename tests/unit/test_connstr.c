/* test_connstr.c - kcpsocks:// strings: round trips and the exact message
 * for each bad part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "core/connstr.h"

#define K1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define K2 "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM"
#define CS "kcpsocks://alice:" K1 "@127.0.0.1:8443?key=" K2

struct bad {
	const char *text;
	const char *msg;
};

static void connstr_round_trip(void **state)
{
	(void)state;
	static const char *const good[] = {
		CS,
		CS "&profile=low-memory",
		"kcpsocks://bob.b-2:" K2 "@[2001:db8::1]:443?key=" K1,
		"kcpsocks://x:" K1 "@vpn.example.org:1?profile=fast&key=" K2,
		"kcpsocks://x:" K1 "@a.example:1,[::1]:2,127.0.0.1:3,b:4?key=" K2,
	};
	struct config_connstr c, d;
	char buf[CONFIG_CONNSTR_MAX], again[CONFIG_CONNSTR_MAX], err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (config_connstr_parse(good[i], &c, err, sizeof err) != 0)
			fail_msg("'%s': %s", good[i], err);
		ssize_t n = config_connstr_format(&c, buf, sizeof buf);
		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(buf));
		assert_int_equal(config_connstr_parse(buf, &d, err, sizeof err), 0);
		assert_memory_equal(&c, &d, sizeof c);
		assert_int_equal(config_connstr_format(&d, again, sizeof again), n);
		assert_string_equal(buf, again);
		if (i < 3)
			assert_string_equal(buf, good[i]);
	}
	assert_int_equal(config_connstr_parse(good[2], &c, err, sizeof err), 0);
	assert_string_equal(c.server.host, "2001:db8::1");
	assert_string_equal(c.user, "bob.b-2");
	/* Too small a buffer: every length below the needed one. */
	assert_int_equal(config_connstr_parse(good[1], &c, err, sizeof err), 0);
	for (size_t len = 0; len <= strlen(good[1]); len++)
		assert_int_equal(config_connstr_format(&c, buf, len), KS_ERR_FULL);
	assert_int_equal(config_connstr_format(&c, buf, strlen(good[1]) + 1),
	                 (ssize_t)strlen(good[1]));
	c.servers.e[0].port = 0;
	assert_int_equal(config_connstr_format(&c, buf, sizeof buf), KS_ERR_INVAL);
	c.servers.n = 0; /* server alone, as kcpsocks-server adduser fills it */
	assert_int_equal(config_connstr_format(&c, buf, sizeof buf), (ssize_t)strlen(good[1]));
	c.server.port = 0;
	assert_int_equal(config_connstr_format(&c, buf, sizeof buf), KS_ERR_INVAL);
}

static void connstr_bad(void **state)
{
	(void)state;
	static const struct bad t[] = {
		{ "http://alice:" K1 "@h:1?key=" K2,
		  "does not start with kcpsocks:// (kcpsocks://USER:PSK@HOST:PORT?key=KEY)" },
		{ "kcpsocks://", "missing '@' between USER:PSK and HOST:PORT" },
		{ "kcpsocks://alice:" K1 "@a:1,b:2,c:3,d:4,e:5?key=" K2, "more than 4 servers" },
		{ "kcpsocks://alice:" K1 "@a:1,?key=" K2, "missing HOST:PORT after '@'" },
		{ "kcpsocks://alice:" K1 "@a:1,b?key=" K2,
		  "missing :PORT after the server address 'b'" },
		{ "kcpsocks://alice:" K1 "h:1?key=" K2,
		  "missing '@' between USER:PSK and HOST:PORT" },
		{ "kcpsocks://:" K1 "@h:1?key=" K2, "missing user name (kcpsocks://USER:PSK@...)" },
		{ "kcpsocks://al ice:" K1 "@h:1?key=" K2,
		  "bad user name 'al ice': 1..32 of A-Z a-z 0-9 . _ -" },
		{ "kcpsocks://al\nice:" K1 "@h:1?key=" K2,
		  "bad user name '': 1..32 of A-Z a-z 0-9 . _ -" },
		{ "kcpsocks://alice@h:1?key=" K2,
		  "missing psk after the user name (kcpsocks://USER:PSK@...)" },
		{ "kcpsocks://alice:@h:1?key=" K2,
		  "missing psk after the user name (kcpsocks://USER:PSK@...)" },
		{ "kcpsocks://alice:abc@h:1?key=" K2,
		  "the psk is not a base64url 32-byte key (43 characters; 3 given)" },
		{ "kcpsocks://alice:PSK@vpn.example.org:8443?key=SERVERPUB",
		  "the psk is not a base64url 32-byte key (43 characters; 3 given)" },
		{ "kcpsocks://alice:" K1 "@?key=" K2, "missing HOST:PORT after '@'" },
		{ "kcpsocks://alice:" K1 "@h?key=" K2,
		  "missing :PORT after the server address 'h'" },
		{ "kcpsocks://alice:" K1 "@h:1",
		  "missing ?key=SERVERPUB (the server's public key) after HOST:PORT" },
		{ "kcpsocks://alice:" K1 "@h:65536?key=" K2, "bad server port '65536': 1..65535" },
		{ "kcpsocks://alice:" K1 "@h:?key=" K2, "bad server port '': 1..65535" },
		{ "kcpsocks://alice:" K1 "@h_x:1?key=" K2, "bad server host 'h_x'" },
		{ "kcpsocks://alice:" K1 "@:1?key=" K2, "bad server host ''" },
		{ "kcpsocks://alice:" K1 "@::1:5?key=" K2,
		  "an IPv6 server address goes in brackets: [ADDR]:PORT" },
		{ "kcpsocks://alice:" K1 "@::1?key=" K2,
		  "an IPv6 server address goes in brackets: [ADDR]:PORT" },
		{ "kcpsocks://alice:" K1 "@[::1?key=" K2,
		  "unclosed '[' in the server address '[::1'" },
		{ "kcpsocks://alice:" K1 "@[::1]?key=" K2,
		  "missing :PORT after the server address '[::1]'" },
		{ "kcpsocks://alice:" K1 "@[::g]:5?key=" K2, "bad server host '[::g]'" },
		{ "kcpsocks://alice:" K1 "@h:1?",
		  "missing key=SERVERPUB (the server's public key) after '?'" },
		{ "kcpsocks://alice:" K1 "@h:1?profile=fast",
		  "missing key=SERVERPUB (the server's public key) after '?'" },
		{ "kcpsocks://alice:" K1 "@h:1?key=abc",
		  "key=: the server's public key is not a base64url 32-byte key (43 characters)" },
		{ CS "&profile=turbo", "unknown profile 'turbo'" },
		{ CS "&key=" K2, "unknown or repeated parameter 'key=" K2 "'" },
		{ CS "&mtu=1300", "unknown or repeated parameter 'mtu=1300'" },
		{ CS "&", "unknown or repeated parameter ''" },
	};
	struct config_connstr c;
	char err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(&c, 0x33, sizeof c);
		int rc = config_connstr_parse(t[i].text, &c, err, sizeof err);
		if (rc != KS_ERR_INVAL || strcmp(err, t[i].msg) != 0)
			fail_msg("case %zu: rc %d\n  got  '%s'\n  want '%s'", i, rc, err, t[i].msg);
		for (size_t j = 0; j < sizeof c; j++)
			assert_int_equal(((uint8_t *)&c)[j], 0x33);
	}
	/* Longer than any real string. */
	char *huge = malloc(CONFIG_CONNSTR_MAX + 10);
	memset(huge, 'a', CONFIG_CONNSTR_MAX + 9);
	memcpy(huge, CS "&profile=", strlen(CS "&profile="));
	huge[CONFIG_CONNSTR_MAX + 9] = '\0';
	assert_int_equal(config_connstr_parse(huge, &c, err, sizeof err), KS_ERR_INVAL);
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connstr_round_trip),
		cmocka_unit_test(connstr_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
