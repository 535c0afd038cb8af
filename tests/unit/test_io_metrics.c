/* test_io_metrics.c - exposition writer and the HTTP endpoint on loopback.
 *
 * The client side of each exchange is a plain socket watched by the same
 * loop; each fetch runs the loop until the server closes, bounded by a
 * guard timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/addr.h"
#include "io/log.h"
#include "io/metrics.h"

enum { GUARD_MS = 3000, RESP_MAX = 4 << 20 };

/* ---- writer ---- */

static void writer_formats_and_escapes(void **state)
{
	(void)state;
	char mem[512];
	struct metrics_buf b;
	struct metrics_label l[2] = { { "peer", "a\"b\\c\nd" }, { "dir", "in" } };

	metrics_buf_init(&b, mem, sizeof mem);
	metrics_family(&b, "ks_bytes_total", METRICS_COUNTER, "Bytes relayed.\nBy \\ peer");
	metrics_sample_u64(&b, "ks_bytes_total", l, 2, 18446744073709551615u);
	metrics_family(&b, "ks_rtt_seconds", METRICS_GAUGE, NULL);
	metrics_sample_f64(&b, "ks_rtt_seconds", NULL, 0, 0.25);
	metrics_sample_f64(&b, "ks_rtt_seconds", l + 1, 1, NAN);
	metrics_sample_f64(&b, "ks_rtt_seconds", l + 1, 1, -INFINITY);
	metrics_gauge(&b, "ks:up", "Up.", 1);
	assert_true(metrics_buf_ok(&b));
	const char *want = "# HELP ks_bytes_total Bytes relayed.\\nBy \\\\ peer\n"
	                   "# TYPE ks_bytes_total counter\n"
	                   "ks_bytes_total{peer=\"a\\\"b\\\\c\\nd\",dir=\"in\"} "
	                   "18446744073709551615\n"
	                   "# TYPE ks_rtt_seconds gauge\n"
	                   "ks_rtt_seconds 0.25\n"
	                   "ks_rtt_seconds{dir=\"in\"} NaN\n"
	                   "ks_rtt_seconds{dir=\"in\"} -Inf\n"
	                   "# HELP ks:up Up.\n"
	                   "# TYPE ks:up gauge\n"
	                   "ks:up 1\n";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(mem, want, b.len);
}

static void writer_refuses_bad_names(void **state)
{
	(void)state;
	char mem[128];
	struct metrics_buf b;
	struct metrics_label bad[] = { { "__reserved", "x" } }, digit[] = { { "1a", "x" } },
	                     nullv[] = { { "a", NULL } };

	const char *names[] = { "", "1abc", "a-b", "a b", "é" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		metrics_buf_init(&b, mem, sizeof mem);
		metrics_sample_u64(&b, names[i], NULL, 0, 1);
		assert_true(b.invalid);
		assert_int_equal(b.len, 0);
	}
	metrics_buf_init(&b, mem, sizeof mem);
	metrics_family(&b, "ok", METRICS_UNTYPED, NULL);
	metrics_sample_u64(&b, "ok", bad, 1, 1);
	metrics_sample_u64(&b, "ok", digit, 1, 1);
	metrics_sample_u64(&b, "ok", nullv, 1, 1);
	metrics_sample_u64(&b, "ok", NULL, 1, 1);
	assert_false(metrics_buf_ok(&b));
	assert_string_equal("# TYPE ok untyped\n", (mem[b.len] = '\0', mem));
}

static void writer_lines_are_whole_or_absent(void **state)
{
	(void)state;
	char mem[30];
	struct metrics_buf b;

	metrics_buf_init(&b, mem, sizeof mem);
	metrics_sample_u64(&b, "short", NULL, 0, 1);                      /* 8 bytes */
	metrics_sample_u64(&b, "a_much_longer_name", NULL, 0, 123456789); /* 29: no room */
	assert_true(b.overflow);
	assert_int_equal(b.len, 8);
	assert_memory_equal(mem, "short 1\n", 8);
	metrics_sample_u64(&b, "x", NULL, 0, 2); /* still fits: kept */
	assert_int_equal(b.len, 12);
	assert_false(metrics_buf_ok(&b));
}

/* ---- server ---- */

struct fix {
	struct ev_loop *loop;
	ev_timer guard;
	bool expired;
	struct metrics_server *s;
	struct sockaddr_storage addr;
	bool healthy;
	const char *why;
	int scrapes;
	size_t fill; /* extra bytes the writer tries to add */
};

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;
	(void)revents;
	f->expired = true;
	ev_break(loop, EVBREAK_ALL);
}

static void write_metrics(struct metrics_buf *b, void *arg)
{
	struct fix *f = arg;
	struct metrics_label l[] = { { "listener", "socks" } };

	f->scrapes++;
	metrics_family(b, "ks_streams_open", METRICS_GAUGE, "Streams open now.");
	metrics_sample_u64(b, "ks_streams_open", l, 1, 3);
	for (size_t i = 0; i < f->fill; i++)
		metrics_sample_u64(b, "ks_fill", NULL, 0, i);
}

/* Unhealthy with a reason when f->why is set (a CR LF in it must not
 * reach the response as a line break). */
static bool healthy(char *why, size_t whylen, void *arg)
{
	struct fix *f = arg;

	if (!f->healthy && f->why)
		snprintf(why, whylen, "%s", f->why);
	return f->healthy;
}

static void start(struct fix *f, const struct metrics_server_opts *o)
{
	struct metrics_handlers h = { write_metrics, healthy, f };
	struct sockaddr_storage a;
	char err[160] = "";

	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &a, NULL, 0), 0);
	f->s = metrics_server_new(f->loop, &a, o, &h, err, sizeof err);
	if (!f->s)
		fail_msg("%s", err);
	assert_int_equal(metrics_server_addr(f->s, &f->addr), 0);
}

static int setup(void **state)
{
	static struct fix f;

	memset(&f, 0, sizeof f);
	f.loop = ev_loop_new(EVFLAG_AUTO);
	ev_timer_init(&f.guard, on_guard, 0., 0.);
	f.guard.data = &f;
	f.healthy = true;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	metrics_server_free(f->s);
	ev_loop_destroy(f->loop);
	return 0;
}

struct fetch {
	int fd;
	ev_io io;
	char resp[RESP_MAX + 1];
	size_t len;
	bool done;
	int err;
};

static void fetch_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fetch *x = w->data;
	ssize_t n;

	(void)revents;
	n = recv(x->fd, x->resp + x->len, RESP_MAX - x->len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		x->err = n < 0 ? errno : 0;
		x->done = true;
		ev_io_stop(loop, w);
		return;
	}
	x->len += (size_t)n;
}

/* fetch sends req (len bytes; may be longer than the socket buffer takes
 * at once only up to what fits) and collects the response until the
 * server closes. Returns the response text. */
static const char *fetch(struct fix *f, const char *req, size_t len, struct fetch *x)
{
	memset(x, 0, sizeof *x);
	x->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(x->fd >= 0);
	assert_int_equal(connect(x->fd, (struct sockaddr *)&f->addr, addr_len(&f->addr)), 0);
	if (len)
		assert_int_equal(send(x->fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	ev_io_init(&x->io, fetch_on_read, x->fd, EV_READ);
	x->io.data = x;
	assert_int_equal(fcntl(x->fd, F_SETFL, O_NONBLOCK), 0);
	ev_io_start(f->loop, &x->io);
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!x->done && !f->expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &f->guard);
	ev_io_stop(f->loop, &x->io);
	close(x->fd);
	if (!x->done)
		fail_msg("guard timer expired");
	x->resp[x->len] = '\0';
	return x->resp;
}

static const char *get(struct fix *f, const char *req, struct fetch *x)
{
	return fetch(f, req, strlen(req), x);
}

static void get_metrics(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	const char *body = "# HELP ks_streams_open Streams open now.\n"
	                   "# TYPE ks_streams_open gauge\n"
	                   "ks_streams_open{listener=\"socks\"} 3\n";
	char want[512];

	start(f, NULL);
	snprintf(want, sizeof want,
	         "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	         strlen(body), body);
	assert_string_equal(get(f, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", &x), want);
	/* Bare newlines and a query string are fine; HTTP/1.1 too. */
	assert_string_equal(get(f, "GET /metrics?x=1 HTTP/1.1\n\n", &x), want);
	assert_int_equal(f->scrapes, 2);
	assert_int_equal(metrics_server_stats(f->s)->ok, 2);

	/* HEAD: the same headers, no body. */
	get(f, "HEAD /metrics HTTP/1.0\r\n\r\n", &x);
	snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(x.resp, want));
	assert_string_equal(strstr(x.resp, "\r\n\r\n"), "\r\n\r\n");
}

static void healthz(void **state)
{
	struct fix *f = *state;
	static struct fetch x;

	start(f, NULL);
	get(f, "GET /healthz HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 200 OK\r\n"));
	assert_string_equal(strstr(x.resp, "\r\n\r\n") + 4, "ok\n");
	f->healthy = false;
	get(f, "GET /healthz HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 503 Service Unavailable\r\n"));
	assert_string_equal(strstr(x.resp, "\r\n\r\n") + 4, "unhealthy\n");
	f->why = "no session for 12 ms\r\nX: y";
	get(f, "GET /healthz HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 503 Service Unavailable\r\n"));
	assert_string_equal(strstr(x.resp, "\r\n\r\n") + 4,
	                    "unhealthy: no session for 12 ms  X: y\n");
	assert_int_equal(f->scrapes, 0);
}

static void not_found_and_refusals(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	static const struct {
		const char *req;
		const char *status;
	} table[] = {
		{ "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found\r\n" },
		{ "GET /metricsx HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found\r\n" },
		{ "GET /healthz/ HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found\r\n" },
		{ "POST /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 405 Method Not Allowed\r\n" },
		{ "get /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 405 Method Not Allowed\r\n" },
		{ "GET /metrics\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n" },
		{ "GET  /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n" },
		{ "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n" },
		{ "GET /metrics HTTP/1.0 x\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n" },
		{ "\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n" },
	};

	start(f, NULL);
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		get(f, table[i].req, &x);
		if (strncmp(x.resp, table[i].status, strlen(table[i].status)) != 0)
			fail_msg("%zu: %s -> %s", i, table[i].req, x.resp);
	}
	get(f, "PUT /x HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "Allow: GET, HEAD\r\n"));
	assert_int_equal(metrics_server_stats(f->s)->not_found, 3);
	assert_int_equal(metrics_server_stats(f->s)->refused, 8);
	assert_int_equal(f->scrapes, 0);
}

static void oversized_request_refused(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	static char big[METRICS_REQUEST_MAX + 100];

	start(f, NULL);
	memcpy(big, "GET /metrics HTTP/1.0\r\nX-Pad: ", 30);
	memset(big + 30, 'a', sizeof big - 30);
	fetch(f, big, sizeof big, &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 431 Request Header Fields Too Large\r\n"));
	assert_int_equal(f->scrapes, 0);
	assert_int_equal(metrics_server_stats(f->s)->refused, 1);
}

static void body_too_large_is_500(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	struct metrics_server_opts o = { .body_max = 256 };

	start(f, &o);
	f->fill = 100;
	get(f, "GET /metrics HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 500 Internal Server Error\r\n"));
	assert_int_equal(metrics_server_stats(f->s)->errors, 1);
}

/* Issue 19: no body_max means no cap; the writer's memory grows. Far more
 * than the old 256 KiB bound goes out whole, with its length announced. */
static void large_body_by_default(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	const char *body;
	char want[64];

	start(f, NULL);
	f->fill = 100000; /* about 1.5 MB */
	get(f, "GET /metrics HTTP/1.0\r\n\r\n", &x);
	assert_non_null(strstr(x.resp, "HTTP/1.0 200 OK\r\n"));
	body = strstr(x.resp, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	assert_true(strlen(body) > 1000000);
	snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(x.resp, want));
	assert_non_null(strstr(body, "\nks_fill 99999\n"));
	assert_int_equal(metrics_server_stats(f->s)->errors, 0);
}

/* The growing writer: the same lines as a bounded one, any amount. */
static void writer_grows(void **state)
{
	struct metrics_buf b;

	(void)state;
	metrics_buf_init_grow(&b);
	for (uint64_t i = 0; i < 200000; i++)
		metrics_sample_u64(&b, "ks_fill", NULL, 0, i);
	assert_true(metrics_buf_ok(&b));
	assert_true(b.len > 2000000);
	assert_memory_equal(b.p, "ks_fill 0\nks_fill 1\n", 20);
	assert_memory_equal(b.p + b.len - 15, "ks_fill 199999\n", 15);
	metrics_buf_free(&b);
	assert_null(b.p);
	metrics_buf_free(&b); /* twice is harmless */
}

static void silent_client_times_out(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	struct metrics_server_opts o = { .timeout_ms = 100 };

	start(f, &o);
	fetch(f, "GET /metrics HTTP/1.0\r\n", 23, &x); /* head never ends */
	assert_int_equal(x.len, 0);
	assert_int_equal(metrics_server_stats(f->s)->timeouts, 1);
	assert_int_equal(metrics_server_stats(f->s)->requests, 0);
}

static void refuses_remote_and_busy_addresses(void **state)
{
	struct fix *f = *state;
	struct metrics_handlers h = { write_metrics, NULL, f };
	struct metrics_server_opts remote = { .allow_remote = true };
	struct sockaddr_storage a;
	char err[160] = "", want[160], text[ADDR_TEXT_MAX];

	assert_int_equal(addr_parse("0.0.0.0:0", NULL, &a, NULL, 0), 0);
	assert_null(metrics_server_new(f->loop, &a, NULL, &h, err, sizeof err));
	assert_string_equal(err, "metrics 0.0.0.0:0: not a loopback address");
	struct metrics_server *s = metrics_server_new(f->loop, &a, &remote, &h, err, sizeof err);
	assert_non_null(s);
	metrics_server_free(s);

	start(f, NULL);
	assert_null(metrics_server_new(f->loop, &f->addr, NULL, &h, err, sizeof err));
	snprintf(want, sizeof want, "metrics: listen %s: Address already in use",
	         addr_format(&f->addr, text));
	assert_string_equal(err, want);
	h.write = NULL;
	assert_null(metrics_server_new(f->loop, &f->addr, NULL, &h, err, sizeof err));
	assert_string_equal(err, "metrics: invalid options");
	metrics_server_free(NULL);
}

/* Random requests built from request-like pieces (seeded, so a failure
 * reproduces): every one gets a well-formed answer with a known status. */
static void random_requests_get_an_answer(void **state)
{
	struct fix *f = *state;
	static struct fetch x;
	static const char *const pieces[] = { "GET",      "HEAD",     "POST", " ",  "  ",
		                              "/metrics", "/healthz", "/",    "?",  "HTTP/1.0",
		                              "HTTP/1.1", "HTTP/1.",  "\r\n", "\n", "\r",
		                              "\0",       "x",        "%%" };
	uint64_t seed = 0x9e3779b97f4a7c15u;
	char req[256];

	start(f, NULL);
	for (int i = 0; i < 200; i++) {
		size_t len = 0;
		int n = 1 + (int)(seed % 12);
		for (int k = 0; k < n; k++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			const char *p = pieces[(seed >> 33) % (sizeof pieces / sizeof pieces[0])];
			size_t pl = p[0] ? strlen(p) : 1;
			memcpy(req + len, p, pl);
			len += pl;
		}
		memcpy(req + len, "\r\n\r\n", 4);
		len += 4;
		fetch(f, req, len, &x);
		if (x.len == 0)
			fail_msg("request %d: no answer", i);
		assert_int_equal(strncmp(x.resp, "HTTP/1.0 ", 9), 0);
		assert_non_null(strstr(x.resp, "\r\nConnection: close\r\n\r\n"));
	}
	const struct metrics_server_stats *st = metrics_server_stats(f->s);
	assert_int_equal(st->requests, 200);
	assert_int_equal(st->ok + st->not_found + st->refused + st->errors, 200);
}

/* A client left open is closed by metrics_server_free without leaks. */
static void free_with_clients_open(void **state)
{
	struct fix *f = *state;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	start(f, NULL);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, addr_len(&f->addr)), 0);
	for (int i = 0; i < 10; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	metrics_server_free(f->s);
	f->s = NULL;
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writer_formats_and_escapes),
		cmocka_unit_test(writer_refuses_bad_names),
		cmocka_unit_test(writer_lines_are_whole_or_absent),
		cmocka_unit_test_setup_teardown(get_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(healthz, setup, teardown),
		cmocka_unit_test_setup_teardown(not_found_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(oversized_request_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(body_too_large_is_500, setup, teardown),
		cmocka_unit_test_setup_teardown(large_body_by_default, setup, teardown),
		cmocka_unit_test(writer_grows),
		cmocka_unit_test_setup_teardown(silent_client_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(refuses_remote_and_busy_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(random_requests_get_an_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(free_with_clients_open, setup, teardown),
	};
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
