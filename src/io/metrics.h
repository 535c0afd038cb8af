/* metrics.h - Prometheus text exposition and a tiny HTTP/1.0 endpoint.
 *
 * Two parts:
 *   - a writer (struct metrics_buf) that formats families and samples of
 *     the text exposition format 0.0.4, escaping label values and help
 *     text as the format requires, either into a caller's bounded buffer
 *     (once something does not fit, the buffer is marked overflowed) or
 *     into memory it owns and grows as needed (no size cap);
 *   - struct metrics_server, one listening socket (loopback unless told
 *     otherwise) answering GET/HEAD /metrics (the caller's writer callback)
 *     and /healthz, 404 for anything else, one request per connection, on
 *     the loop, never blocking. docs/METRICS.md describes the endpoint.
 */
#ifndef KCPSOCKS_METRICS_H
#define KCPSOCKS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/limits.h"

struct ev_loop;

/* ---- text exposition writer ---- */

enum metrics_type {
	METRICS_COUNTER = 0,
	METRICS_GAUGE,
	METRICS_UNTYPED,
	METRICS_HISTOGRAM, /* samples name_bucket{le=...}, name_sum, name_count */
};

struct metrics_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
	const char *value; /* any UTF-8 text; escaped on output */
};

/* The writer's state. Fields are the module's; read them through the
 * functions below. */
struct metrics_buf {
	char *p;       /* borrowed from metrics_buf_init's caller, or owned (grow) */
	size_t len;    /* bytes written */
	size_t cap;    /* bytes available */
	bool overflow; /* something did not fit; output is incomplete */
	bool invalid;  /* a bad metric or label name was refused */
	bool grow;     /* p is owned and grows as needed (metrics_buf_init_grow) */
};

/* metrics_buf_init starts writing into mem[0..cap). */
void metrics_buf_init(struct metrics_buf *b, char *mem, size_t cap);

/* metrics_buf_init_grow starts writing into memory the writer owns and
 * doubles as needed: no size cap; only a failed allocation sets overflow.
 * Release it with metrics_buf_free. */
void metrics_buf_init_grow(struct metrics_buf *b);

/* metrics_buf_free releases what metrics_buf_init_grow allocated (a
 * borrowed buffer is left alone) and empties b. */
void metrics_buf_free(struct metrics_buf *b);

/* metrics_family writes "# HELP name help" (help may be NULL: no HELP line)
 * and "# TYPE name type". Write a family once, before its samples. */
void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type,
                    const char *help);

/* metrics_sample_u64 writes `name{l1="v1",...} value`; labels may be NULL
 * when nlabels is 0. metrics_sample_f64 does the same for a double
 * ("NaN", "+Inf", "-Inf" for those values). A bad name sets invalid and
 * writes nothing; a line that does not fit sets overflow and writes
 * nothing (lines are whole or absent). */
void metrics_sample_u64(struct metrics_buf *b, const char *name, const struct metrics_label *labels,
                        size_t nlabels, uint64_t value);
void metrics_sample_f64(struct metrics_buf *b, const char *name, const struct metrics_label *labels,
                        size_t nlabels, double value);

/* metrics_counter and metrics_gauge: a family with one unlabelled sample. */
void metrics_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t value);
void metrics_gauge(struct metrics_buf *b, const char *name, const char *help, double value);

/* metrics_buf_ok tells whether everything written so far is in the buffer
 * (no overflow, no refused name). */
bool metrics_buf_ok(const struct metrics_buf *b);

/* ---- HTTP endpoint ---- */

struct metrics_handlers {
	/* Writes the /metrics body. Called from the loop for each scrape;
	 * must not block. Required. */
	void (*write)(struct metrics_buf *b, void *arg);
	/* /healthz: true gives 200 "ok\n", false 503 "unhealthy\n", or
	 * "unhealthy: <why>\n" when it wrote a reason into why (a
	 * NUL-terminated line of at most whylen bytes, empty on entry). NULL
	 * means always healthy. */
	bool (*healthy)(char *why, size_t whylen, void *arg);
	void *arg;
};

struct metrics_server_opts {
	size_t body_max;     /* /metrics bound; 0 means none (the body grows) */
	uint32_t timeout_ms; /* whole exchange per client; 0 means METRICS_TIMEOUT_MS */
	bool allow_remote;   /* allow a non-loopback bind address */
};

struct metrics_server_stats {
	uint64_t requests;  /* complete requests answered */
	uint64_t ok;        /* 200 answers */
	uint64_t not_found; /* 404 */
	uint64_t refused;   /* 400, 405, 431: malformed, other methods, too large */
	uint64_t errors;    /* 500 (over body_max, out of memory, bad name), 503 */
	uint64_t timeouts;  /* clients dropped by the timer */
};

struct metrics_server;

/* metrics_server_new listens on addr (a loopback address unless
 * allow_remote) and serves from the loop (borrowed). opts may be NULL.
 * Returns NULL with err (may be NULL) set: "metrics 127.0.0.1:9100:
 * Address already in use", "metrics 0.0.0.0:9100: not a loopback address",
 * "metrics: invalid options". */
struct metrics_server *metrics_server_new(struct ev_loop *loop, const struct sockaddr_storage *addr,
                                          const struct metrics_server_opts *opts,
                                          const struct metrics_handlers *h, char *err,
                                          size_t errlen);

/* metrics_server_free closes the listener and every client; NULL is a
 * no-op. Not from inside a handler. */
void metrics_server_free(struct metrics_server *s);

/* metrics_server_addr gives the bound address. Returns 0 or KS_ERR_IO. */
KS_MUST_CHECK int metrics_server_addr(const struct metrics_server *s, struct sockaddr_storage *out);

const struct metrics_server_stats *metrics_server_stats(const struct metrics_server *s);

/* What a request asks for; the parse behind it is pure, so it is fuzzed
 * (tests/fuzz/fuzz_io_metrics.c). */
enum metrics_route {
	METRICS_ROUTE_BAD_REQUEST, /* not "METHOD SP TARGET SP HTTP/1.x": 400 */
	METRICS_ROUTE_BAD_METHOD,  /* neither GET nor HEAD: 405 */
	METRICS_ROUTE_METRICS,     /* /metrics (a query string is ignored) */
	METRICS_ROUTE_HEALTHZ,     /* /healthz */
	METRICS_ROUTE_NOT_FOUND,   /* any other target: 404 */
};

/* metrics_route parses the first line of a request head req[0..n) (ended
 * by "\r\n" or "\n"; none means a bad request) and says how to answer it;
 * *head is set when the method is HEAD. Reads only req[0..n). */
enum metrics_route metrics_route(const char *req, size_t n, bool *head);

#endif
