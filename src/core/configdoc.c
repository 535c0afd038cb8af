/* configdoc.c - --help and docs/CONFIG.md, from the key table (config.c)
 * and the profile tables (profile.c): the same tables the parser uses.
 */
#include "core/configdoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config_keys.h"
#include "core/profile.h"

__attribute__((format(printf, 3, 4))) static void out(config_writer w, void *ctx, const char *fmt,
                                                      ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0)
		w(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, ctx);
}

static void field_value(const struct profile_field *f, uint32_t v, char *buf, size_t n)
{
	if (f->is_bool)
		snprintf(buf, n, "%s", v ? "true" : "false");
	else
		snprintf(buf, n, "%u", v);
}

enum { HELP_WIDTH = 79, HELP_INDENT = 31 };

/* help_item writes "  --opt ARG   text", the text wrapped at blanks to
 * HELP_WIDTH columns, continuation lines indented to HELP_INDENT. */
static void help_item(config_writer w, void *ctx, const char *opt, const char *text)
{
	size_t col = 2 + strlen(opt), n;

	out(w, ctx, "  %s", opt);
	while (*text) {
		n = strcspn(text, " ");
		if (col >= HELP_INDENT && col + 1 + n > HELP_WIDTH) {
			out(w, ctx, "\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		} else {
			out(w, ctx, "%*s", col < HELP_INDENT ? (int)(HELP_INDENT - col) : 1, "");
			col = col < HELP_INDENT ? HELP_INDENT : col + 1;
		}
		out(w, ctx, "%.*s", (int)n, text);
		col += n;
		text += n;
		text += strspn(text, " ");
	}
	out(w, ctx, "\n");
}

static void help_section(enum section sec, config_writer w, void *ctx)
{
	char opt[64], text[512];

	out(w, ctx, "\n[%s]\n", config_section_names[sec]);
	for (size_t i = 0; i < config_key_count; i++) {
		const struct config_key *k = &config_keys[i];
		if (k->sec != sec)
			continue;
		snprintf(opt, sizeof opt, "--%s %s", k->name, k->metavar);
		if (k->type == T_U32)
			snprintf(text, sizeof text, "%s [%u..%u, default %s]", k->help, k->min,
			         k->max, k->def);
		else if (k->def && k->def[0])
			snprintf(text, sizeof text, "%s [default %s]", k->help, k->def);
		else
			snprintf(text, sizeof text, "%s", k->help);
		help_item(w, ctx, opt, text);
	}
}

void config_write_help(enum config_role role, config_writer w, void *ctx)
{
	char opt[64], text[512];

	out(w, ctx, "Every option is also a key of the config file, in the section shown.\n");
	help_section(SEC_COMMON, w, ctx);
	help_section(role == CONFIG_ROLE_SERVER ? SEC_SERVER : SEC_LOCAL, w, ctx);
	out(w, ctx, "\n[transport] (each overrides the chosen profile)\n");
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		snprintf(opt, sizeof opt, "--%s %s", f->key, f->is_bool ? "BOOL" : "N");
		if (f->is_bool)
			snprintf(text, sizeof text, "%s", f->help);
		else
			snprintf(text, sizeof text, "%s [%u..%u%s%s]", f->help, f->min, f->max,
			         f->unit[0] ? " " : "", f->unit);
		help_item(w, ctx, opt, text);
	}
	out(w, ctx, "\nProfiles (--profile NAME):\n");
	for (size_t i = 0; i < profile_count(); i++)
		help_item(w, ctx, profile_at(i)->name, profile_at(i)->summary);
}

static void doc_section(enum section sec, config_writer w, void *ctx)
{
	out(w, ctx,
	    "\n### [%s]\n\n| Key | Value | Default | Description |\n"
	    "| --- | --- | --- | --- |\n",
	    config_section_names[sec]);
	for (size_t i = 0; i < config_key_count; i++) {
		const struct config_key *k = &config_keys[i];
		char val[64];
		if (k->sec != sec)
			continue;
		if (k->type == T_U32)
			snprintf(val, sizeof val, "%s (%u..%u)", k->metavar, k->min, k->max);
		else
			snprintf(val, sizeof val, "%s", k->metavar);
		out(w, ctx, "| `%s` | %s | %s%s%s | %s |\n", k->name, val,
		    k->def && k->def[0] ? "`" : "", k->def && k->def[0] ? k->def : "-",
		    k->def && k->def[0] ? "`" : "", k->help);
	}
}

static void doc_transport(config_writer w, void *ctx)
{
	char v[32];

	out(w, ctx, "\n### [transport]\n\n| Key | Range |");
	for (size_t j = 0; j < profile_count(); j++)
		out(w, ctx, " %s |", profile_at(j)->name);
	out(w, ctx, " Description |\n| --- | --- |");
	for (size_t j = 0; j < profile_count(); j++)
		out(w, ctx, " --- |");
	out(w, ctx, " --- |\n");
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		if (f->is_bool)
			out(w, ctx, "| `%s` | true, false |", f->key);
		else
			out(w, ctx, "| `%s` | %u..%u%s%s |", f->key, f->min, f->max,
			    f->unit[0] ? " " : "", f->unit);
		for (size_t j = 0; j < profile_count(); j++) {
			field_value(f, profile_get(profile_at(j), f), v, sizeof v);
			out(w, ctx, " %s |", v);
		}
		out(w, ctx, " %s |\n", f->help);
	}
}

void config_write_doc(config_writer w, void *ctx)
{
	out(w, ctx, "### Profiles\n\n| Profile | Use it for |\n| --- | --- |\n");
	for (size_t i = 0; i < profile_count(); i++)
		out(w, ctx, "| `%s` | %s |\n", profile_at(i)->name, profile_at(i)->summary);
	doc_section(SEC_COMMON, w, ctx);
	doc_section(SEC_LOCAL, w, ctx);
	doc_section(SEC_SERVER, w, ctx);
	doc_section(SEC_USER, w, ctx);
	doc_transport(w, ctx);
}
