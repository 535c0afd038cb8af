/* metrics.c - Prometheus text exposition writer and the HTTP/1.0 endpoint. */
#include "io/metrics.h"

#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "base/list.h"
#include "base/rd.h"
#include "io/addr.h"
#include "io/log.h"
#include "io/tcp.h"

/* ======================================================================
 * writer
 * ==================================================================== */

void metrics_buf_init(struct metrics_buf *b, char *mem, size_t cap)
{
	*b = (struct metrics_buf){ mem, 0, cap, false, false, false };
}

void metrics_buf_init_grow(struct metrics_buf *b)
{
	*b = (struct metrics_buf){ NULL, 0, 0, false, false, true };
}

void metrics_buf_free(struct metrics_buf *b)
{
	if (b->grow)
		free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* reserve makes room for n more bytes: a borrowed buffer has what it has;
 * an owned one doubles (from METRICS_GROW_INITIAL) until it fits. */
static bool reserve(struct metrics_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : METRICS_GROW_INITIAL;
	char *p;

	if (b->cap - b->len >= n)
		return true;
	if (!b->grow || n > SIZE_MAX / 2 - b->len)
		return false;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

bool metrics_buf_ok(const struct metrics_buf *b) { return !b->overflow && !b->invalid; }

static bool put(struct metrics_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return false;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return true;
}

static bool put_str(struct metrics_buf *b, const char *s) { return put(b, s, strlen(s)); }

/* put_escaped writes s with \ and newline escaped, and " too in a label
 * value (the format escapes only those). */
static bool put_escaped(struct metrics_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		bool ok;
		if (*s == '\\')
			ok = put(b, "\\\\", 2);
		else if (*s == '\n')
			ok = put(b, "\\n", 2);
		else if (quote && *s == '"')
			ok = put(b, "\\\"", 2);
		else
			ok = put(b, s, 1);
		if (!ok)
			return false;
	}
	return true;
}

static bool name_ok(const char *s, bool metric)
{
	if (!s || !*s || (!metric && s[0] == '_' && s[1] == '_'))
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		             (metric && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* line_end keeps a line whole or drops it. */
static void line_end(struct metrics_buf *b, size_t start, bool ok)
{
	if (ok)
		return;
	b->len = start;
	b->overflow = true;
}

static const char *type_name(enum metrics_type t)
{
	switch (t) {
	case METRICS_COUNTER: return "counter";
	case METRICS_GAUGE: return "gauge";
	case METRICS_UNTYPED: return "untyped";
	case METRICS_HISTOGRAM: return "histogram";
	}
	return "untyped";
}

void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type,
                    const char *help)
{
	size_t start = b->len;
	bool ok = true;

	if (!name_ok(name, true)) {
		b->invalid = true;
		return;
	}
	if (help)
		ok = put_str(b, "# HELP ") && put_str(b, name) && put(b, " ", 1) &&
		     put_escaped(b, help, false) && put(b, "\n", 1);
	ok = ok && put_str(b, "# TYPE ") && put_str(b, name) && put(b, " ", 1) &&
	     put_str(b, type_name(type)) && put(b, "\n", 1);
	line_end(b, start, ok);
}

static bool labels_ok(const struct metrics_label *labels, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!name_ok(labels[i].name, false) || !labels[i].value)
			return false;
	return true;
}

static void sample(struct metrics_buf *b, const char *name, const struct metrics_label *labels,
                   size_t nlabels, const char *value)
{
	size_t start = b->len;
	bool ok;

	if (!name_ok(name, true) || (nlabels && !labels) || !labels_ok(labels, nlabels)) {
		b->invalid = true;
		return;
	}
	ok = put_str(b, name);
	for (size_t i = 0; ok && i < nlabels; i++)
		ok = put(b, i ? "," : "{", 1) && put_str(b, labels[i].name) && put(b, "=\"", 2) &&
		     put_escaped(b, labels[i].value, true) && put(b, "\"", 1);
	if (ok && nlabels)
		ok = put(b, "}", 1);
	ok = ok && put(b, " ", 1) && put_str(b, value) && put(b, "\n", 1);
	line_end(b, start, ok);
}

void metrics_sample_u64(struct metrics_buf *b, const char *name, const struct metrics_label *labels,
                        size_t nlabels, uint64_t value)
{
	char v[24];

	snprintf(v, sizeof v, "%" PRIu64, value);
	sample(b, name, labels, nlabels, v);
}

void metrics_sample_f64(struct metrics_buf *b, const char *name, const struct metrics_label *labels,
                        size_t nlabels, double value)
{
	char v[32];

	if (isnan(value))
		strcpy(v, "NaN");
	else if (isinf(value))
		strcpy(v, value > 0 ? "+Inf" : "-Inf");
	else /* the shortest form that reads back exactly: 0.009, not 0.0089999999999999993 */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(v, sizeof v, "%.*g", prec, value);
			if (strtod(v, NULL) == value)
				break;
		}
	sample(b, name, labels, nlabels, v);
}

void metrics_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t value)
{
	metrics_family(b, name, METRICS_COUNTER, help);
	metrics_sample_u64(b, name, NULL, 0, value);
}

void metrics_gauge(struct metrics_buf *b, const char *name, const char *help, double value)
{
	metrics_family(b, name, METRICS_GAUGE, help);
	metrics_sample_f64(b, name, NULL, 0, value);
}

/* ======================================================================
 * HTTP endpoint
 * ==================================================================== */

enum client_state {
	CLIENT_READING, /* collecting the request head */
	CLIENT_WRITING, /* sending resp */
	CLIENT_LINGER,  /* sent and shut down: reading until the peer closes, so
	                 * unread request bytes do not turn our close into a RST
	                 * that would destroy the response in flight */
};

struct client {
	struct metrics_server *s; /* borrowed */
	struct list_node link;    /* on s->clients */
	int fd;                   /* owned */
	ev_io io;
	ev_timer timer;
	enum client_state state;
	size_t rlen;
	char *resp; /* owned: status line, headers, body */
	size_t resp_len, resp_off;
	char req[METRICS_REQUEST_MAX];
};

struct metrics_server {
	struct ev_loop *loop;   /* borrowed */
	struct tcp_listener *l; /* owned */
	struct metrics_handlers h;
	size_t body_max;
	uint32_t timeout_ms;
	struct list clients; /* owned struct client */
	struct metrics_server_stats st;
};

static void client_close(struct client *c)
{
	struct metrics_server *s = c->s;

	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->timer);
	close(c->fd);
	list_remove(&s->clients, &c->link);
	free(c->resp);
	free(c);
	tcp_listener_release(s->l);
}

static void client_watch(struct client *c, int events)
{
	ev_io_stop(c->s->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->s->loop, &c->io);
}

/* client_write sends what the socket takes; false when c was closed. */
static bool client_write(struct client *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t n =
		        send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return true;
		if (n < 0) {
			client_close(c);
			return false;
		}
		c->resp_off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = CLIENT_LINGER;
	client_watch(c, EV_READ);
	return true;
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Error";
}

static void count(struct metrics_server_stats *st, int code)
{
	st->requests++;
	if (code == 200)
		st->ok++;
	else if (code == 404)
		st->not_found++;
	else if (code >= 500)
		st->errors++;
	else
		st->refused++;
}

/* respond queues the whole response and starts sending it. */
static void respond(struct client *c, int code, const char *ctype, const char *body, size_t blen,
                    bool head_only)
{
	char head[METRICS_HEAD_MAX];
	int hlen;

	count(&c->s->st, code);
	hlen = snprintf(head, sizeof head,
	                "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	                "Connection: close\r\n\r\n",
	                code, reason(code), ctype, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (head_only)
		blen = 0;
	c->resp = malloc((size_t)hlen + blen);
	if (!c->resp) {
		client_close(c);
		return;
	}
	memcpy(c->resp, head, (size_t)hlen);
	if (blen)
		memcpy(c->resp + hlen, body, blen);
	c->resp_len = (size_t)hlen + blen;
	c->state = CLIENT_WRITING;
	client_watch(c, EV_WRITE);
	client_write(c);
}

static const char TEXT[] = "text/plain; charset=utf-8";
static const char EXPOSITION[] = "text/plain; version=0.0.4; charset=utf-8";

static void respond_text(struct client *c, int code, const char *text, bool head_only)
{
	respond(c, code, TEXT, text, strlen(text), head_only);
}

static void serve_metrics(struct client *c, bool head_only)
{
	struct metrics_server *s = c->s;
	struct metrics_buf b;
	char *mem = NULL;

	if (s->body_max) {
		mem = malloc(s->body_max);
		if (!mem) {
			respond_text(c, 500, "out of memory\n", head_only);
			return;
		}
		metrics_buf_init(&b, mem, s->body_max);
	} else {
		metrics_buf_init_grow(&b);
	}
	s->h.write(&b, s->h.arg);
	if (!metrics_buf_ok(&b)) {
		log_limited(LOG_LEVEL_WARN, "metrics: %s",
		            b.invalid ? "bad metric or label name"
		            : b.grow  ? "out of memory"
		                      : "output too large");
		respond_text(c, 500, "metrics unavailable\n", head_only);
	} else {
		respond(c, 200, EXPOSITION, b.p, b.len, head_only);
	}
	metrics_buf_free(&b);
	free(mem);
}

/* token reads bytes up to (not including) stop and skips the stop; false
 * if stop never comes or the token is empty. */
static bool token(struct rd *r, uint8_t stop, const uint8_t **tok, size_t *len)
{
	const uint8_t *start = r->p;
	uint8_t ch;

	while (rd_u8(r, &ch)) {
		if (ch == stop) {
			*tok = start;
			*len = (size_t)(r->p - start) - 1;
			return *len > 0;
		}
	}
	return false;
}

static bool tok_is(const uint8_t *t, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(t, s, n) == 0;
}

/* request_line gives a view of the first line without its "\r\n" or "\n"
 * (HTTP/1.0 tools such as nc may send bare newlines). */
static struct rd request_line(const char *req, size_t n)
{
	const char *nl = memchr(req, '\n', n);
	size_t len = nl ? (size_t)(nl - req) : 0;

	if (len > 0 && req[len - 1] == '\r')
		len--;
	return rd_init(req, len);
}

enum metrics_route metrics_route(const char *req, size_t n, bool *head)
{
	struct rd r = request_line(req, n);
	const uint8_t *method, *target, *version;
	size_t mlen, tlen, plen;

	*head = false;
	if (!token(&r, ' ', &method, &mlen) || !token(&r, ' ', &target, &tlen) ||
	    !rd_view(&r, &version, 8) || rd_left(&r) != 0 || memcmp(version, "HTTP/1.", 7) != 0)
		return METRICS_ROUTE_BAD_REQUEST;
	*head = tok_is(method, mlen, "HEAD");
	if (!*head && !tok_is(method, mlen, "GET"))
		return METRICS_ROUTE_BAD_METHOD;
	for (plen = 0; plen < tlen && target[plen] != '?'; plen++)
		;
	if (tok_is(target, plen, "/metrics"))
		return METRICS_ROUTE_METRICS;
	if (tok_is(target, plen, "/healthz"))
		return METRICS_ROUTE_HEALTHZ;
	return METRICS_ROUTE_NOT_FOUND;
}

/* /healthz: 200 "ok", or 503 with the handler's reason. */
static void serve_healthz(struct client *c, bool head)
{
	char why[METRICS_HEALTH_REASON_MAX], body[METRICS_HEALTH_REASON_MAX + 16];
	bool ok;

	why[0] = '\0';
	ok = !c->s->h.healthy || c->s->h.healthy(why, sizeof why, c->s->h.arg);
	if (ok) {
		respond_text(c, 200, "ok\n", head);
		return;
	}
	why[sizeof why - 1] = '\0';
	for (char *p = why; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	snprintf(body, sizeof body, why[0] ? "unhealthy: %s\n" : "unhealthy\n", why);
	respond_text(c, 503, body, head);
}

/* handle answers one complete request head. */
static void handle(struct client *c)
{
	bool head;

	switch (metrics_route(c->req, c->rlen, &head)) {
	case METRICS_ROUTE_BAD_REQUEST: respond_text(c, 400, "bad request\n", false); break;
	case METRICS_ROUTE_BAD_METHOD: respond_text(c, 405, "method not allowed\n", false); break;
	case METRICS_ROUTE_METRICS: serve_metrics(c, head); break;
	case METRICS_ROUTE_HEALTHZ: serve_healthz(c, head); break;
	case METRICS_ROUTE_NOT_FOUND: respond_text(c, 404, "not found\n", head); break;
	}
}

/* head_complete tells whether the request head has ended (blank line). */
static bool head_complete(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n' || (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n'))
			return true;
	}
	return false;
}

static void client_read(struct client *c)
{
	ssize_t n = recv(c->fd, c->req + c->rlen, sizeof c->req - c->rlen, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	c->rlen += (size_t)n;
	if (head_complete(c->req, c->rlen))
		handle(c);
	else if (c->rlen == sizeof c->req)
		respond_text(c, 431, "request too large\n", false);
}

static void client_linger(struct client *c)
{
	char sink[512];
	ssize_t n = recv(c->fd, sink, sizeof sink, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
		client_close(c);
	/* else: discarded; the timer bounds how long we keep reading */
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;

	(void)loop;
	(void)revents;
	switch (c->state) {
	case CLIENT_READING: client_read(c); break;
	case CLIENT_WRITING: client_write(c); break;
	case CLIENT_LINGER: client_linger(c); break;
	}
}

static void on_client_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state != CLIENT_LINGER)
		c->s->st.timeouts++;
	client_close(c);
}

static void on_accept(int fd, const struct sockaddr_storage *peer, void *arg)
{
	struct metrics_server *s = arg;
	struct client *c = malloc(sizeof *c);

	(void)peer;
	if (!c) {
		close(fd);
		tcp_listener_release(s->l);
		return;
	}
	memset(c, 0, offsetof(struct client, req));
	c->s = s;
	c->fd = fd;
	ev_io_init(&c->io, on_client_io, fd, EV_READ);
	ev_timer_init(&c->timer, on_client_timer, s->timeout_ms / 1000.0, 0.);
	c->io.data = c->timer.data = c;
	ev_io_start(s->loop, &c->io);
	ev_timer_start(s->loop, &c->timer);
	list_push(&s->clients, &c->link);
}

static bool is_loopback(const struct sockaddr_storage *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (a->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	if (a->ss_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr))
			return true;
		return memcmp(b, mapped, 12) == 0 && b[12] == 127;
	}
	return false;
}

struct metrics_server *metrics_server_new(struct ev_loop *loop, const struct sockaddr_storage *addr,
                                          const struct metrics_server_opts *opts,
                                          const struct metrics_handlers *h, char *err,
                                          size_t errlen)
{
	struct metrics_server_opts o = opts ? *opts : (struct metrics_server_opts){ 0 };
	struct tcp_listener_opts lo = { .max_conns = METRICS_CLIENTS_MAX };
	char text[ADDR_TEXT_MAX], why[160] = "";
	struct metrics_server *s;

	if (!h || !h->write || o.body_max > METRICS_BODY_MAX ||
	    o.timeout_ms > METRICS_TIMEOUT_MAX_MS) {
		if (err && errlen)
			errbuf_set(err, errlen, "metrics: invalid options");
		return NULL;
	}
	if (!o.allow_remote && !is_loopback(addr)) {
		if (err && errlen)
			errbuf_set(err, errlen, "metrics %s: not a loopback address",
			           addr_format(addr, text));
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->loop = loop;
	s->h = *h;
	s->body_max = o.body_max;
	s->timeout_ms = o.timeout_ms ? o.timeout_ms : METRICS_TIMEOUT_MS;
	s->l = tcp_listener_new(loop, addr, &lo, &(struct tcp_listener_cb){ on_accept, s }, why,
	                        sizeof why);
	if (!s->l) {
		if (err && errlen)
			errbuf_set(err, errlen, "metrics: %s", why);
		free(s);
		return NULL;
	}
	return s;
}

void metrics_server_free(struct metrics_server *s)
{
	if (!s)
		return;
	while (!list_empty(&s->clients))
		client_close(list_first(&s->clients, struct client, link));
	tcp_listener_free(s->l);
	free(s);
}

int metrics_server_addr(const struct metrics_server *s, struct sockaddr_storage *out)
{
	return tcp_listener_addr(s->l, out);
}

const struct metrics_server_stats *metrics_server_stats(const struct metrics_server *s)
{
	return &s->st;
}
