/* test_configdoc.c - --help and docs/CONFIG.md, generated from the tables:
 * each role's options, line width, and CONFIG.md up to date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "core/config_keys.h"
#include "core/configdoc.h"
#include "lib/testfile.h"

struct text {
	char *p;
	size_t n, cap;
};

static void collect(const char *s, size_t n, void *ctx)
{
	struct text *t = ctx;

	if (t->n + n + 1 > t->cap) {
		t->cap = (t->n + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	memcpy(t->p + t->n, s, n);
	t->n += n;
	t->p[t->n] = '\0';
}

static void help_lists_each_roles_options(void **state)
{
	(void)state;
	struct text l = { 0 }, s = { 0 };

	config_write_help(CONFIG_ROLE_LOCAL, collect, &l);
	config_write_help(CONFIG_ROLE_SERVER, collect, &s);
	assert_non_null(strstr(l.p, "--socks_user NAME"));
	assert_non_null(strstr(l.p, "--listen HOST:PORT"));
	assert_non_null(strstr(l.p, "127.0.0.1:1080]"));
	assert_null(strstr(l.p, "--allow"));
	assert_non_null(strstr(s.p, "--allow RULES"));
	assert_non_null(strstr(s.p, "0.0.0.0:8443]"));
	assert_null(strstr(s.p, "--socks_user"));
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		char opt[64];
		snprintf(opt, sizeof opt, "--%s ", profile_field_at(i)->key);
		assert_non_null(strstr(l.p, opt));
		assert_non_null(strstr(s.p, opt));
	}
	assert_non_null(strstr(l.p, "--mtu N"));
	assert_non_null(strstr(l.p, "[576..1500 bytes]"));
	/* Lines fit 79 columns, unless one word is longer. */
	for (char *line = s.p, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		if (nl - line > 79 && memchr(line + 31, ' ', (size_t)(nl - line - 31)))
			fail_msg("long help line: %.*s", (int)(nl - line), line);
	assert_non_null(strstr(s.p, "  low-memory"));
	free(l.p);
	free(s.p);
}

static void docs_match_the_table(void **state)
{
	(void)state;
	struct text g = { 0 };
	char *doc = test_read_file("docs/CONFIG.md");
	char *b, *e;

	if (!doc)
		fail_msg("docs/CONFIG.md not found: run the tests from the top of the tree");
	b = strstr(doc, CONFIG_DOC_BEGIN);
	assert_non_null(b);
	b += strlen(CONFIG_DOC_BEGIN);
	e = strstr(b, CONFIG_DOC_END);
	assert_non_null(e);
	*e = '\0';
	config_write_doc(collect, &g);
	if (strcmp(b, g.p) != 0)
		fail_msg("docs/CONFIG.md is out of date: run build/gen-config-doc docs/CONFIG.md");
	/* And every key is in it, by name. */
	for (size_t i = 0; i < config_key_count; i++) {
		char name[64];
		snprintf(name, sizeof name, "| `%s` |", config_keys[i].name);
		assert_non_null(strstr(b, name));
	}
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		char name[64];
		snprintf(name, sizeof name, "| `%s` |", profile_field_at(i)->key);
		assert_non_null(strstr(b, name));
	}
	free(g.p);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_lists_each_roles_options),
		cmocka_unit_test(docs_match_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
