/* fuzz_config.c - arbitrary text into the config parser, the options path,
 * the rule parser and the connection-string parser (public API only).
 * Must never crash or leak; a connection string that parses must format and
 * parse back to the same value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/configdoc.h"

static void sink(const char *text, size_t len, void *ctx)
{
	size_t *total = ctx;

	(void)text;
	*total += len;
}

static void fuzz_connstr(const char *s)
{
	struct config_connstr a, b;
	char buf[CONFIG_CONNSTR_MAX];
	char err[CONFIG_ERR_MAX];

	if (config_connstr_parse(s, &a, err, sizeof err) != 0)
		return;
	if (config_connstr_format(&a, buf, sizeof buf) <= 0)
		abort();
	if (config_connstr_parse(buf, &b, err, sizeof err) != 0 || memcmp(&a, &b, sizeof a) != 0)
		abort();
}

/* fuzz_options uses the first line as `key value` for both roles. */
static void fuzz_options(struct config *cfg, const char *s)
{
	char line[256], err[CONFIG_ERR_MAX];
	size_t n = strcspn(s, "\n");
	char *sp;

	if (n >= sizeof line)
		return;
	memcpy(line, s, n);
	line[n] = '\0';
	sp = strchr(line, ' ');
	if (!sp)
		return;
	*sp = '\0';
	if (config_set(cfg, CONFIG_ROLE_LOCAL, line, sp + 1, err, sizeof err) == KS_ERR_NOMEM)
		return;
	if (config_set(cfg, CONFIG_ROLE_SERVER, line, sp + 1, err, sizeof err) == KS_ERR_NOMEM)
		return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONFIG_ERR_MAX];
	struct config *cfg = config_new();
	struct config_rule rule;
	char *s = malloc(size + 1);
	size_t total = 0;

	if (!cfg || !s)
		goto out;
	memcpy(s, data, size);
	s[size] = '\0';
	if (config_load(cfg, "fuzz.conf", (const char *)data, size, err, sizeof err) == 0) {
		fuzz_options(cfg, s);
		if (config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err) == 0 &&
		    config_finish(cfg, CONFIG_ROLE_SERVER, err, sizeof err) == 0)
			config_write_help(CONFIG_ROLE_SERVER, sink, &total);
	}
	/* A parsed rule covers its own (masked) address at its ports (a
	 * `self` rule has no address of its own). */
	if (config_rule_parse(s, strlen(s), &rule) == 0 && rule.family != CONFIG_RULE_SELF &&
	    (!config_rule_match(&rule, rule.family, rule.addr, rule.port_lo) ||
	     !config_rule_match(&rule, rule.family, rule.addr, rule.port_hi)))
		abort();
	fuzz_connstr(s);
out:
	free(s);
	config_free(cfg);
	return 0;
}
