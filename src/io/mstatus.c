/* mstatus.c - the status subcommand (see mstatus.h). */
#include "io/mstatus.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "base/rd.h"
#include "io/addr.h"
#include "io/dconf.h"
#include "io/log.h"

/* --- one line of the exposition text ---------------------------------------------- */

static bool name_byte(uint8_t c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* A name into out (NUL-terminated); false when empty or too long. */
static bool read_name(struct rd *r, char *out, size_t cap)
{
	size_t n = 0;
	uint8_t c;

	while (rd_left(r) > 0 && name_byte(*r->p, n == 0)) {
		if (n + 1 >= cap || !rd_u8(r, &c))
			return false;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return n > 0;
}

static bool expect(struct rd *r, uint8_t want)
{
	uint8_t c;
	struct rd save = *r;

	if (rd_u8(r, &c) && c == want)
		return true;
	*r = save;
	return false;
}

/* A quoted label value (after the opening quote), unescaped into out when
 * out is not NULL; a value longer than out is cut. */
static bool read_value(struct rd *r, char *out, size_t cap)
{
	size_t n = 0;
	uint8_t c;

	for (;;) {
		if (!rd_u8(r, &c))
			return false;
		if (c == '"')
			break;
		if (c == '\\') {
			if (!rd_u8(r, &c) || (c != '\\' && c != '"' && c != 'n'))
				return false;
			if (c == 'n')
				c = '\n';
		}
		if (out && n + 1 < cap)
			out[n++] = (char)c;
	}
	if (out)
		out[n] = '\0';
	return true;
}

/* {l="v",...}: the first label is kept. */
static bool read_labels(struct rd *r, struct mstatus_sample *out)
{
	char skip[MSTATUS_NAME_MAX];

	if (expect(r, '}'))
		return true;
	for (bool first = true;; first = false) {
		if (!read_name(r, first ? out->label_name : skip, sizeof skip) || !expect(r, '=') ||
		    !expect(r, '"') || !read_value(r, first ? out->label : NULL, sizeof out->label))
			return false;
		if (expect(r, '}'))
			return true;
		if (!expect(r, ','))
			return false;
		if (expect(r, '}'))
			return true; /* a trailing comma is allowed */
	}
}

static bool read_number(struct rd *r, double *v)
{
	char text[48];
	size_t n = 0;
	char *end;
	uint8_t c;

	while (rd_left(r) > 0 && *r->p != ' ' && *r->p != '\t') {
		if (n + 1 >= sizeof text || !rd_u8(r, &c))
			return false;
		text[n++] = (char)c;
	}
	text[n] = '\0';
	if (n == 0)
		return false;
	*v = strtod(text, &end);
	return *end == '\0';
}

int mstatus_parse_line(const char *line, size_t n, struct mstatus_sample *out)
{
	struct rd r = rd_init(line, n);
	double ts;

	while (rd_left(&r) > 0 && (*r.p == ' ' || *r.p == '\t'))
		(void)rd_skip(&r, 1);
	if (rd_left(&r) == 0 || *r.p == '#')
		return 0;
	memset(out, 0, sizeof *out);
	if (!read_name(&r, out->name, sizeof out->name))
		return KS_ERR_PROTO;
	if (expect(&r, '{') && !read_labels(&r, out))
		return KS_ERR_PROTO;
	if (!expect(&r, ' '))
		return KS_ERR_PROTO;
	while (expect(&r, ' '))
		;
	if (!read_number(&r, &out->value))
		return KS_ERR_PROTO;
	while (expect(&r, ' '))
		;
	if (rd_left(&r) > 0 && (!read_number(&r, &ts) || rd_left(&r) > 0))
		return KS_ERR_PROTO;
	return 1;
}

/* --- fetching ---------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *what, const char *where)
{
	errbuf_set(err, errlen, "metrics %s: %s", where, what);
	return rc;
}

static int connect_to(const struct sockaddr_storage *addr, const char *where, char *err,
                      size_t errlen)
{
	struct timeval tv = { MSTATUS_TIMEOUT_MS / 1000, (MSTATUS_TIMEOUT_MS % 1000) * 1000 };
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(err, errlen, KS_ERR_IO, strerror(errno), where);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, (const struct sockaddr *)addr, addr_len(addr)) != 0) {
		int e = errno;

		close(fd);
		return fail(err, errlen, KS_ERR_IO,
		            e == ECONNREFUSED ? "connection refused (is the daemon running, with "
		                                "this metrics_listen?)"
		                              : strerror(e),
		            where);
	}
	return fd;
}

/* Reads until EOF into a growing buffer of at most MSTATUS_BODY_MAX. */
static int read_all(int fd, char **buf, size_t *len, const char *where, char *err, size_t errlen)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap + 1);

	if (!b)
		return fail(err, errlen, KS_ERR_NOMEM, "out of memory", where);
	for (;;) {
		ssize_t k;

		if (n == cap) {
			char *nb = cap < MSTATUS_BODY_MAX ? realloc(b, cap * 2 + 1) : NULL;

			if (!nb) {
				free(b);
				return fail(err, errlen, KS_ERR_TOOBIG, "answer too large", where);
			}
			b = nb;
			cap *= 2;
		}
		k = read(fd, b + n, cap - n);
		if (k == 0)
			break;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;

			free(b);
			return fail(err, errlen, KS_ERR_IO,
			            e == EAGAIN ? "no answer in time" : strerror(e), where);
		}
		n += (size_t)k;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int mstatus_fetch(const struct sockaddr_storage *addr, char **body, size_t *len, char *err,
                  size_t errlen)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nConnection: close\r\n\r\n";
	char where[ADDR_TEXT_MAX], *all, *head_end;
	size_t n, skip;
	int fd, rc;

	addr_format(addr, where);
	fd = connect_to(addr, where, err, errlen);
	if (fd < 0)
		return fd;
	if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
		close(fd);
		return fail(err, errlen, KS_ERR_IO, strerror(errno), where);
	}
	rc = read_all(fd, &all, &n, where, err, errlen);
	close(fd);
	if (rc != 0)
		return rc;
	head_end = strstr(all, "\r\n\r\n");
	if (!head_end || strncmp(all, "HTTP/1.", 7) != 0 || n < 12 ||
	    strncmp(all + 8, " 200", 4) != 0) {
		free(all);
		return fail(err, errlen, KS_ERR_PROTO, "not a 200 answer to GET /metrics", where);
	}
	skip = (size_t)(head_end + 4 - all);
	memmove(all, all + skip, n - skip + 1);
	*body = all;
	*len = n - skip;
	return 0;
}

/* --- the view ------------------------------------------------------------------------ */

struct table {
	struct mstatus_sample *s;
	size_t n;
};

/* The kcpsocks samples of the scrape, in a table that grows as needed (up
 * to MSTATUS_SAMPLES_MAX; the rest is left out). */
static int table_fill(struct table *t, const char *body, size_t len)
{
	const char *p = body, *end = body + len;
	size_t cap = 0;
	struct mstatus_sample s;

	t->s = NULL;
	t->n = 0;
	while (p < end && t->n < MSTATUS_SAMPLES_MAX) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *line = p;

		p += l + 1;
		if (mstatus_parse_line(line, l, &s) != 1 || strncmp(s.name, "kcpsocks_", 9) != 0)
			continue;
		if (t->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct mstatus_sample *ns = realloc(t->s, ncap * sizeof *ns);

			if (!ns)
				return KS_ERR_NOMEM;
			t->s = ns;
			cap = ncap;
		}
		t->s[t->n++] = s;
	}
	return t->n ? 0 : KS_ERR_PROTO;
}

/* The sum of name's samples (whose first label is label, unless NULL). */
static double get(const struct table *t, const char *name, const char *label)
{
	double v = 0;

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->s[i].name, name) == 0 &&
		    (!label || strcmp(t->s[i].label, label) == 0))
			v += t->s[i].value;
	return v;
}

static const char *bytes(double v, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

/* One row per user: with a live session (session_* families, both
 * daemons) or configured (user_* families, the server). */
static void user_row(FILE *f, const struct table *t, const char *u, bool server)
{
	char up[24], down[24];
	double sent = get(t, "kcpsocks_session_segments_sent_total", u);
	double retx = get(t, "kcpsocks_session_retransmits_timeout_total", u) +
	              get(t, "kcpsocks_session_retransmits_fast_total", u);
	bool live = false;

	for (size_t i = 0; i < t->n && !live; i++)
		live = strcmp(t->s[i].name, "kcpsocks_session_srtt_seconds") == 0 &&
		       strcmp(t->s[i].label, u) == 0;
	fprintf(f, "%-16s", u);
	if (live)
		fprintf(f, " %8.1f %8.1f %6.2f%% %8.0f",
		        get(t, "kcpsocks_session_srtt_seconds", u) * 1000,
		        get(t, "kcpsocks_session_rto_seconds", u) * 1000,
		        sent > 0 ? 100.0 * retx / sent : 0.0,
		        get(t, "kcpsocks_session_streams", u));
	else
		fprintf(f, " %8s %8s %7s %8s", "-", "-", "-", "-");
	if (server)
		fprintf(f, " %11s %11s %8.0f %8.0f\n",
		        bytes(get(t, "kcpsocks_user_up_bytes_total", u), up, sizeof up),
		        bytes(get(t, "kcpsocks_user_down_bytes_total", u), down, sizeof down),
		        get(t, "kcpsocks_user_streams_total", u),
		        get(t, "kcpsocks_user_sessions_total", u));
	else
		fprintf(f, " %11s %11s\n",
		        bytes(get(t, "kcpsocks_session_sent_bytes_total", u), up, sizeof up),
		        bytes(get(t, "kcpsocks_session_received_bytes_total", u), down,
		              sizeof down));
}

static bool seen_before(const struct table *t, size_t i, const char *fam)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(t->s[j].name, fam) == 0 && strcmp(t->s[j].label, t->s[i].label) == 0)
			return true;
	return false;
}

static void summary(FILE *f, const struct table *t, bool server)
{
	char up[24], down[24];

	fprintf(f, "sessions   %.0f established, %.0f made, %.0f failed handshakes\n",
	        get(t, "kcpsocks_sessions", NULL), get(t, "kcpsocks_handshakes_ok_total", NULL),
	        get(t, "kcpsocks_handshakes_failed_total", NULL));
	if (server)
		fprintf(f, "streams    %.0f open, %.0f opened\n", get(t, "kcpsocks_streams", NULL),
		        get(t, "kcpsocks_streams_total", NULL));
	else
		fprintf(f, "streams    %.0f connections open, %.0f streams opened\n",
		        get(t, "kcpsocks_local_connections", NULL),
		        get(t, "kcpsocks_local_streams_opened_total", NULL));
	fprintf(f, "relayed    up %s, down %s (up: applications -> destinations)\n",
	        bytes(get(t, "kcpsocks_relay_up_bytes_total", NULL), up, sizeof up),
	        bytes(get(t, "kcpsocks_relay_down_bytes_total", NULL), down, sizeof down));
}

int mstatus_render(FILE *f, enum config_role role, const char *body, size_t len)
{
	bool server = role == CONFIG_ROLE_SERVER;
	const char *fam = server ? "kcpsocks_user_sessions_total" : "kcpsocks_session_srtt_seconds";
	struct table t;
	int rc = table_fill(&t, body, len);

	if (rc != 0) {
		free(t.s);
		return rc;
	}
	summary(f, &t, server);
	fprintf(f, "\n%-16s %8s %8s %7s %8s %11s %11s", "user", "srtt_ms", "rto_ms", "resent",
	        "streams", server ? "up" : "sent", server ? "down" : "received");
	if (server)
		fprintf(f, " %8s %8s", "opened", "sessions");
	fputc('\n', f);
	for (size_t i = 0; i < t.n; i++)
		if (strcmp(t.s[i].name, fam) == 0 && !seen_before(&t, i, fam))
			user_row(f, &t, t.s[i].label, server);
	free(t.s);
	return 0;
}

int mstatus_main(int argc, char **argv, int first, enum config_role role, const char *usage)
{
	struct config *cfg = NULL;
	enum dconf_action act;
	struct sockaddr_storage sa;
	char err[CONFIG_ERR_MAX + 64], *body = NULL;
	size_t len;
	int rc;

	if (dconf_parse(argc, argv, first, role, usage, &cfg, &act, err, sizeof err) != 0) {
		log_error("status: %s", err);
		return 2;
	}
	if (act == DCONF_HELP || act == DCONF_VERSION)
		return EXIT_SUCCESS;
	if (!cfg->metrics_listen.set) {
		log_error("status: metrics_listen is not set: status reads the daemon's metrics "
		          "endpoint (set metrics_listen = 127.0.0.1:9100 and restart it)");
		config_free(cfg);
		return EXIT_FAILURE;
	}
	rc = dconf_endpoint_addr(&cfg->metrics_listen, &sa, err, sizeof err);
	config_free(cfg);
	if (rc == 0)
		rc = mstatus_fetch(&sa, &body, &len, err, sizeof err);
	if (rc == 0 && (rc = mstatus_render(stdout, role, body, len)) != 0)
		snprintf(err, sizeof err, "the answer holds no kcpsocks metrics");
	free(body);
	if (rc != 0) {
		log_error("status: %s", err);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
