/* test_policy.c - destination rules (parse, match), the default deny list,
 * `self`, and the verdict on mapped and unknown address families. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "core/config.h"

/* load parses text as "t.conf" into a fresh config; err gets the message. */
static int load(const char *text, struct config **out, char err[CONFIG_ERR_MAX])
{
	struct config *cfg = config_new();

	assert_non_null(cfg);
	*out = cfg;
	return config_load(cfg, "t.conf", text, strlen(text), err, CONFIG_ERR_MAX);
}

static void rules_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int family, prefix, lo, hi;
		const char *addr; /* expected masked address, or NULL for `*` */
	} good[] = {
		{ "10.0.0.0/8", 4, 8, 0, 65535, "10.0.0.0" },
		{ "10.1.2.3/8", 4, 8, 0, 65535, "10.0.0.0" },
		{ " 192.168.1.7 ", 4, 32, 0, 65535, "192.168.1.7" },
		{ "127.0.0.0/8:1-65535", 4, 8, 1, 65535, "127.0.0.0" },
		{ "1.2.3.4:80", 4, 32, 80, 80, "1.2.3.4" },
		{ "0.0.0.0/0", 4, 0, 0, 65535, "0.0.0.0" },
		{ "*", 0, 0, 0, 65535, NULL },
		{ "*:25", 0, 0, 25, 25, NULL },
		{ "::1", 6, 128, 0, 65535, "::1" },
		{ "[::1]:80", 6, 128, 80, 80, "::1" },
		{ "[2001:db8::]/32:443-444", 6, 32, 443, 444, "2001:db8::" },
		{ "2001:db8::/32:443", 6, 32, 443, 443, "2001:db8::" },
		{ "2001:db8:ffff::/33", 6, 33, 0, 65535, "2001:db8:8000::" },
		{ "fe80::/10", 6, 10, 0, 65535, "fe80::" },
		{ "::ffff:1.2.3.4", 6, 128, 0, 65535, "::ffff:1.2.3.4" },
	};
	static const char *const bad[] = {
		"",
		"10.0.0.0/33",
		"::/129",
		"1.2.3.4:0",
		"1.2.3.4:70000",
		"1.2.3.4:90-80",
		"*/8",
		"[::1",
		"[1.2.3.4]",
		"host.example",
		"1.2.3.4/",
		"1.2.3.4:",
		"1.2.3",
		"10.0.0.0/8:",
		"10.0.0.0/-1",
		"[::1]80",
		"1.2.3.4:80x",
		"10.0.0.0/0008",
		"*:1-2-3",
		"1.2.3.4 :80",
	};
	struct config_rule r;
	uint8_t want[16];
	char buf[64];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		memset(&r, 0xaa, sizeof r);
		if (config_rule_parse(good[i].text, strlen(good[i].text), &r) != 0)
			fail_msg("good case %zu '%s' refused", i, good[i].text);
		assert_int_equal(r.family, good[i].family);
		assert_int_equal(r.prefix, good[i].prefix);
		assert_int_equal(r.port_lo, good[i].lo);
		assert_int_equal(r.port_hi, good[i].hi);
		memset(want, 0, sizeof want);
		if (good[i].addr)
			assert_int_equal(inet_pton(good[i].family == 4 ? AF_INET : AF_INET6,
			                           good[i].addr, want),
			                 1);
		assert_memory_equal(r.addr, want, 16);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&r, 0x55, sizeof r);
		struct config_rule before = r;
		snprintf(buf, sizeof buf, "%s", bad[i]);
		if (config_rule_parse(buf, strlen(buf), &r) != KS_ERR_INVAL)
			fail_msg("bad case %zu '%s' accepted", i, bad[i]);
		assert_memory_equal(&r, &before, sizeof r);
	}
}

static void rules_match(void **state)
{
	(void)state;
	struct config_rule r;
	uint8_t a[16] = { 0 };

	assert_int_equal(config_rule_parse("10.0.0.0/8:80-90", 16, &r), 0);
	a[0] = 10, a[1] = 255, a[3] = 1;
	assert_true(config_rule_match(&r, 4, a, 80));
	assert_true(config_rule_match(&r, 4, a, 90));
	assert_false(config_rule_match(&r, 4, a, 79));
	assert_false(config_rule_match(&r, 4, a, 91));
	assert_false(config_rule_match(&r, 6, a, 80));
	a[0] = 11;
	assert_false(config_rule_match(&r, 4, a, 80));

	assert_int_equal(config_rule_parse("2001:db8:8000::/33", 18, &r), 0);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:ffff::1", a), 1);
	assert_true(config_rule_match(&r, 6, a, 1));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:7fff::1", a), 1);
	assert_false(config_rule_match(&r, 6, a, 1));
	assert_false(config_rule_match(&r, 4, a, 1));

	assert_int_equal(config_rule_parse("*", 1, &r), 0);
	assert_true(config_rule_match(&r, 4, a, 0));
	assert_true(config_rule_match(&r, 6, a, 65535));
}

static void default_deny_list(void **state)
{
	(void)state;
	static const struct {
		int family;
		const char *addr;
		bool allowed;
	} t[] = {
		{ 4, "127.0.0.1", false },
		{ 4, "10.1.2.3", false },
		{ 4, "172.16.0.1", false },
		{ 4, "172.32.0.1", true },
		{ 4, "192.168.1.1", false },
		{ 4, "169.254.169.254", false },
		{ 4, "100.64.0.1", false },
		{ 4, "0.0.0.0", false },
		{ 4, "224.0.0.1", false },
		{ 4, "255.255.255.255", false },
		{ 4, "8.8.8.8", true },
		{ 4, "1.1.1.1", true },
		{ 6, "::1", false },
		{ 6, "::", false },
		{ 6, "fe80::1", false },
		{ 6, "fd00::1", false },
		{ 6, "::ffff:127.0.0.1", false },
		{ 6, "ff02::1", false },
		{ 6, "2606:4700::1111", true },
	};
	struct config *cfg = config_new();
	char err[CONFIG_ERR_MAX];
	uint8_t a[16];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(a, 0, sizeof a);
		assert_int_equal(inet_pton(t[i].family == 4 ? AF_INET : AF_INET6, t[i].addr, a), 1);
		if (config_dest_allowed(&cfg->policy, t[i].family, a, 443) != t[i].allowed)
			fail_msg("%s: want %s", t[i].addr, t[i].allowed ? "allowed" : "denied");
	}
	/* An empty deny removes the defaults. */
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "deny", "", err, sizeof err), 0);
	assert_int_equal(cfg->policy.n_deny, 0);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", a), 1);
	assert_true(config_dest_allowed(&cfg->policy, 4, a, 22));
	config_free(cfg);
}

/* Issue 14 item 5: every IANA special-purpose block of the default deny
 * list, at its first and last address, and its public neighbours. */
static void special_purpose_blocks(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		bool allowed;
	} t[] = {
		{ "192.0.0.0", false },
		{ "192.0.0.255", false },
		{ "191.255.255.255", true },
		{ "192.0.1.0", true },
		{ "192.0.2.0", false },
		{ "192.0.2.255", false },
		{ "192.0.3.0", true },
		{ "198.18.0.0", false },
		{ "198.19.255.255", false },
		{ "198.17.255.255", true },
		{ "198.20.0.0", true },
		{ "198.51.100.0", false },
		{ "198.51.100.255", false },
		{ "198.51.99.255", true },
		{ "198.51.101.0", true },
		{ "203.0.113.0", false },
		{ "203.0.113.255", false },
		{ "203.0.112.255", true },
		{ "203.0.114.0", true },
		{ "::", false },
		{ "::1.2.3.4", false },
		{ "::ffff:ffff", false },
		{ "::1:0:0", true },
		{ "64:ff9b:1::", false },
		{ "64:ff9b:1:ffff::1", false },
		{ "64:ff9b:2::1", true },
		{ "64:ff9b::8.8.8.8", false },
		{ "2002::", false },
		{ "2002:c000:201::1", false },
		{ "2002:ffff:ffff::1", false },
		{ "2001:ffff::1", true },
		{ "2003::1", true },
		{ "fec0::", false },
		{ "feff:ffff::1", false },
		{ "febf::1", false }, /* link-local fe80::/10 */
		{ "2001:db8::", false },
		{ "2001:db8:ffff:ffff::1", false },
		{ "2001:db7:ffff::1", true },
		{ "2001:db9::1", true },
		{ "::ffff:192.0.2.1", false },
		{ "::ffff:198.18.0.1", false },
		{ "2606:4700::1111", true },
	};
	struct config *cfg = config_new();
	uint8_t a[16];

	assert_non_null(cfg);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int fam = strchr(t[i].addr, ':') ? 6 : 4;
		memset(a, 0, sizeof a);
		assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, t[i].addr, a), 1);
		if (config_dest_allowed(&cfg->policy, fam, a, 443) != t[i].allowed)
			fail_msg("%s: want %s", t[i].addr, t[i].allowed ? "allowed" : "denied");
	}
	config_free(cfg);
}

/* The `self` rule: the host's own addresses, handed in as data. */
static void self_rule(void **state)
{
	(void)state;
	struct config_self self = { .n = 2 };
	struct config *cfg = config_new();
	struct config_rule r;
	char err[CONFIG_ERR_MAX];
	uint8_t mine4[16] = { 0 }, mine6[16] = { 0 }, other[16] = { 0 }, mapped[16] = { 0 };

	assert_non_null(cfg);
	assert_int_equal(inet_pton(AF_INET, "203.0.114.7", mine4), 1);
	assert_int_equal(inet_pton(AF_INET6, "2606:4700::7", mine6), 1);
	assert_int_equal(inet_pton(AF_INET, "203.0.114.8", other), 1);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:203.0.114.7", mapped), 1);
	self.a[0].family = 4;
	memcpy(self.a[0].addr, mine4, 16);
	self.a[1].family = 6;
	memcpy(self.a[1].addr, mine6, 16);

	/* Parsing. */
	assert_int_equal(config_rule_parse("self", 4, &r), 0);
	assert_int_equal(r.family, CONFIG_RULE_SELF);
	assert_int_equal(r.port_lo, 0);
	assert_int_equal(r.port_hi, 65535);
	assert_int_equal(config_rule_parse(" self:80-90 ", 12, &r), 0);
	assert_int_equal(r.port_lo, 80);
	assert_int_equal(r.port_hi, 90);
	assert_int_equal(config_rule_parse("self/8", 6, &r), KS_ERR_INVAL);
	assert_int_equal(config_rule_parse("*/8", 3, &r), KS_ERR_INVAL);
	assert_int_equal(config_rule_parse("selfx", 5, &r), KS_ERR_INVAL);
	assert_int_equal(config_rule_parse("self:", 5, &r), KS_ERR_INVAL);
	assert_int_equal(config_rule_parse("sel", 3, &r), KS_ERR_INVAL);
	assert_false(config_rule_match(&r, 4, mine4, 80)); /* needs the set */

	/* The default deny holds self: own addresses refused, in every form. */
	assert_false(config_dest_allowed_with(&cfg->policy, &self, 4, mine4, 443));
	assert_false(config_dest_allowed_with(&cfg->policy, &self, 6, mine6, 443));
	assert_false(config_dest_allowed_with(&cfg->policy, &self, 6, mapped, 443));
	assert_true(config_dest_allowed_with(&cfg->policy, &self, 4, other, 443));
	assert_true(config_dest_allowed_with(&cfg->policy, NULL, 4, mine4, 443));
	assert_true(config_dest_allowed(&cfg->policy, 4, mine4, 443));
	assert_true(config_self_has(&self, 4, mine4));
	assert_false(config_self_has(&self, 6, mine4));
	assert_false(config_self_has(NULL, 4, mine4));

	/* allow wins, port by port. */
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "allow", "self:8080", err, sizeof err),
	                 0);
	assert_true(config_dest_allowed_with(&cfg->policy, &self, 4, mine4, 8080));
	assert_false(config_dest_allowed_with(&cfg->policy, &self, 4, mine4, 8081));

	/* A deny that leaves self out no longer refuses them. */
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "deny", "10.0.0.0/8", err, sizeof err),
	                 0);
	assert_true(config_dest_allowed_with(&cfg->policy, &self, 4, mine4, 443));
	config_free(cfg);
}

/* Regression: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4
 * destination a.b.c.d (a dual-stack socket connects there over IPv4), so
 * the IPv4 rules apply to it. With a custom deny list of IPv4 blocks, a
 * SOCKS5 request for ::ffff:10.0.0.1 (or a name whose AAAA record is that)
 * used to pass the policy and reach 10.0.0.1. */
static void mapped_ipv4_meets_the_ipv4_rules(void **state)
{
	(void)state;
	static const char text[] = "[server]\n"
	                           "deny = 10.0.0.0/8, 192.168.0.0/16:22\n"
	                           "allow = 10.9.0.0/16\n";
	uint8_t m[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 0, [14] = 0, [15] = 1 };
	uint8_t v4[16] = { 10, 0, 0, 1 };
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load(text, &cfg, err), 0);
	assert_false(config_dest_allowed(&cfg->policy, 4, v4, 80));
	assert_false(config_dest_allowed(&cfg->policy, 6, m, 80));
	m[12] = 192;
	m[13] = 168;
	assert_false(config_dest_allowed(&cfg->policy, 6, m, 22));
	assert_true(config_dest_allowed(&cfg->policy, 6, m, 80));
	m[12] = 10; /* allow, through the mapped form too */
	m[13] = 9;
	assert_true(config_dest_allowed(&cfg->policy, 6, m, 80));
	memset(m + 12, 8, 4);
	assert_true(config_dest_allowed(&cfg->policy, 6, m, 80));
	/* The default deny list still refuses every mapped address. */
	config_free(cfg);
	cfg = config_new();
	assert_non_null(cfg);
	assert_false(config_dest_allowed(&cfg->policy, 6, m, 80));
	config_free(cfg);
}

/* Regression: the policy failed open for a family other than 4 and 6
 * (e.g. a caller passing AF_INET6, 10, by mistake): no deny rule matched,
 * so loopback was allowed. It now refuses what it cannot classify. */
static void unknown_family_is_refused(void **state)
{
	(void)state;
	struct config *cfg = config_new();
	uint8_t lo6[16] = { [15] = 1 }, lo4[16] = { 127, 0, 0, 1 };

	assert_non_null(cfg);
	assert_false(config_dest_allowed(&cfg->policy, 10, lo6, 80));
	assert_false(config_dest_allowed(&cfg->policy, 2, lo4, 80));
	assert_false(config_dest_allowed(&cfg->policy, 0, lo4, 80));
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules_parse),
		cmocka_unit_test(rules_match),
		cmocka_unit_test(default_deny_list),
		cmocka_unit_test(special_purpose_blocks),
		cmocka_unit_test(self_rule),
		cmocka_unit_test(mapped_ipv4_meets_the_ipv4_rules),
		cmocka_unit_test(unknown_family_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
