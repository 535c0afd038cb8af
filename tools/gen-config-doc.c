/* gen-config-doc - write the key and profile reference of docs/CONFIG.md
 * from the tables in src/core/config.c and src/core/profile.c.
 *
 *   gen-config-doc              print the generated Markdown
 *   gen-config-doc FILE         replace what FILE holds between the markers
 *
 * tests/unit/test_config.c fails when the checked-in file differs from what
 * this prints, so the docs cannot drift from the code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/configdoc.h"

struct text {
	char *p;
	size_t n, cap;
};

static void collect(const char *s, size_t n, void *ctx)
{
	struct text *t = ctx;

	if (t->n + n + 1 > t->cap) {
		size_t cap = (t->n + n + 1) * 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			fprintf(stderr, "gen-config-doc: out of memory\n");
			exit(1);
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->n, s, n);
	t->n += n;
	t->p[t->n] = '\0';
}

static int slurp(const char *path, struct text *t)
{
	FILE *f = fopen(path, "rb");
	char buf[4096];
	size_t n;

	if (!f) {
		fprintf(stderr, "gen-config-doc: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		collect(buf, n, t);
	fclose(f);
	return 0;
}

static int rewrite(const char *path, const struct text *gen)
{
	struct text old = { 0 };
	char *b, *e;
	FILE *f;
	int rc = 1;

	if (slurp(path, &old) != 0)
		return 1;
	b = old.p ? strstr(old.p, CONFIG_DOC_BEGIN) : NULL;
	e = b ? strstr(b, CONFIG_DOC_END) : NULL;
	if (!b || !e) {
		fprintf(stderr, "gen-config-doc: %s: markers not found\n", path);
		goto out;
	}
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "gen-config-doc: %s: %s\n", path, strerror(errno));
		goto out;
	}
	b += strlen(CONFIG_DOC_BEGIN);
	fwrite(old.p, 1, (size_t)(b - old.p), f);
	fwrite(gen->p, 1, gen->n, f);
	fputs(e, f);
	rc = fclose(f) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "gen-config-doc: %s: %s\n", path, strerror(errno));
out:
	free(old.p);
	return rc;
}

int main(int argc, char **argv)
{
	struct text gen = { 0 };
	int rc;

	if (argc > 2) {
		fprintf(stderr, "usage: gen-config-doc [FILE]\n");
		return 2;
	}
	config_write_doc(collect, &gen);
	rc = argc == 2 ? rewrite(argv[1], &gen) : fputs(gen.p, stdout) < 0;
	free(gen.p);
	return rc;
}
