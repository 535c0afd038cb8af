/* tcp.c - non-blocking TCP listener, connect and buffered connection. */
#include "io/tcp.h"

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "io/addr.h"
#include "io/fdio.h"
#include "io/log.h"

static void set_err(char *err, size_t errlen, const char *op, const struct sockaddr_storage *a,
                    const char *why)
{
	char text[ADDR_TEXT_MAX];

	if (err && errlen)
		errbuf_set(err, errlen, "%s %s: %s", op, addr_format(a, text), why);
}

/* ======================================================================
 * listener
 * ==================================================================== */

struct tcp_listener {
	struct ev_loop *loop; /* borrowed */
	int fd;               /* owned */
	ev_io io;
	ev_timer rest; /* running while accepting rests after EMFILE & co */
	bool paused;   /* tcp_listener_pause */
	bool resting;  /* out of descriptors or memory: wait for the timer */
	bool in_cb;    /* on_accept is running */
	bool freed;    /* tcp_listener_free came from inside on_accept */
	size_t max_conns;
	uint32_t pause_ms;
	struct tcp_listener_cb cb;
	struct tcp_listener_stats st;
	struct sockaddr_storage addr;
};

/* listener_update runs the accept watcher exactly when accepting is allowed. */
static void listener_update(struct tcp_listener *l)
{
	bool want = !l->paused && !l->resting && l->st.active < l->max_conns;

	if (want && !ev_is_active(&l->io))
		ev_io_start(l->loop, &l->io);
	else if (!want && ev_is_active(&l->io))
		ev_io_stop(l->loop, &l->io);
}

static bool accept_resource_error(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static void listener_rest(struct tcp_listener *l, int e)
{
	char text[ADDR_TEXT_MAX];

	/* The connection stays in the kernel queue, so a level-triggered
	 * watcher would spin on it: rest instead, and let closes free fds. */
	l->st.fd_pauses++;
	l->resting = true;
	ev_timer_set(&l->rest, l->pause_ms / 1000.0, 0.);
	ev_timer_start(l->loop, &l->rest);
	log_limited(LOG_LEVEL_WARN, "accept %s: %s (pausing %u ms)", addr_format(&l->addr, text),
	            strerror(e), (unsigned)l->pause_ms);
}

/* accept_one returns true when the caller may try another accept. */
static bool accept_one(struct tcp_listener *l)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int fd;

	memset(&peer, 0, sizeof peer);
	fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		if (accept_resource_error(errno)) {
			listener_rest(l, errno);
			return false;
		}
		if (errno != EINTR)
			l->st.errors++; /* ECONNABORTED, EPROTO, ...: that one is gone */
		return true;
	}
	l->st.accepted++;
	l->st.active++;
	l->in_cb = true;
	l->cb.on_accept(fd, &peer, l->cb.arg);
	l->in_cb = false;
	return !l->freed;
}

static void listener_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_listener *l = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < TCP_ACCEPT_BATCH; i++) {
		if (l->paused || l->resting)
			break;
		if (l->st.active >= l->max_conns) {
			l->st.limited++;
			break;
		}
		if (!accept_one(l))
			break;
	}
	if (l->freed) {
		free(l); /* step two of a free from inside on_accept */
		return;
	}
	listener_update(l);
}

static void listener_on_rest(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tcp_listener *l = w->data;

	(void)loop;
	(void)revents;
	l->resting = false;
	listener_update(l);
}

static bool listener_opts_ok(const struct tcp_listener_opts *o)
{
	return o->backlog >= 0 && o->max_conns <= TCP_CONNS_MAX &&
	       o->pause_ms <= TCP_ACCEPT_PAUSE_MAX_MS;
}

/* listener_socket opens, binds and listens; returns the fd or -1 with err. */
static int listener_socket(const struct sockaddr_storage *addr, int backlog, char *err,
                           size_t errlen)
{
	int one = 1, fd;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	if (addr->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)addr, addr_len(addr)) < 0)
		goto fail;
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	set_err(err, errlen, "listen", addr, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

struct tcp_listener *tcp_listener_new(struct ev_loop *loop, const struct sockaddr_storage *addr,
                                      const struct tcp_listener_opts *opts,
                                      const struct tcp_listener_cb *cb, char *err, size_t errlen)
{
	struct tcp_listener_opts o = opts ? *opts : (struct tcp_listener_opts){ 0 };
	struct tcp_listener *l;
	int fd;

	if (!cb || !cb->on_accept || addr_len(addr) == 0 || !listener_opts_ok(&o)) {
		set_err(err, errlen, "listen", addr, "invalid options");
		return NULL;
	}
	l = calloc(1, sizeof *l);
	if (!l) {
		set_err(err, errlen, "listen", addr, strerror(ENOMEM));
		return NULL;
	}
	fd = listener_socket(addr, o.backlog ? o.backlog : TCP_BACKLOG_DEFAULT, err, errlen);
	if (fd < 0) {
		free(l);
		return NULL;
	}
	l->loop = loop;
	l->fd = fd;
	l->max_conns = o.max_conns ? o.max_conns : TCP_CONNS_DEFAULT;
	l->pause_ms = o.pause_ms ? o.pause_ms : TCP_ACCEPT_PAUSE_MS;
	l->cb = *cb;
	l->addr = *addr;
	ev_io_init(&l->io, listener_on_io, fd, EV_READ);
	ev_timer_init(&l->rest, listener_on_rest, 0., 0.);
	l->io.data = l;
	l->rest.data = l;
	listener_update(l);
	return l;
}

void tcp_listener_free(struct tcp_listener *l)
{
	if (!l)
		return;
	ev_io_stop(l->loop, &l->io);
	ev_timer_stop(l->loop, &l->rest);
	close(l->fd);
	l->fd = -1;
	if (l->in_cb) {
		l->freed = true; /* the accept loop up the stack frees it */
		return;
	}
	free(l);
}

void tcp_listener_pause(struct tcp_listener *l)
{
	l->paused = true;
	listener_update(l);
}

void tcp_listener_resume(struct tcp_listener *l)
{
	l->paused = false;
	listener_update(l);
}

void tcp_listener_release(struct tcp_listener *l)
{
	if (l->st.active > 0)
		l->st.active--;
	listener_update(l);
}

int tcp_listener_addr(const struct tcp_listener *l, struct sockaddr_storage *out)
{
	socklen_t len = sizeof *out;

	memset(out, 0, sizeof *out);
	if (getsockname(l->fd, (struct sockaddr *)out, &len) < 0)
		return KS_ERR_IO;
	return 0;
}

const struct tcp_listener_stats *tcp_listener_stats(const struct tcp_listener *l) { return &l->st; }

/* ======================================================================
 * outbound connect
 * ==================================================================== */

struct tcp_connect {
	struct ev_loop *loop; /* borrowed */
	ev_io io;             /* writability of the attempt in flight */
	ev_timer timer;       /* attempt timeout, or 0 s to report from the loop */
	int fd;               /* owned: the attempt in flight, -1 between attempts */
	bool starting;        /* inside tcp_connect_start: report later */
	bool reporting;       /* the result waits for the 0 s timer */
	bool in_cb;           /* on_done is running: cancel is a no-op */
	int err;              /* errno of the last failed attempt */
	size_t n, next;       /* addrs[next] is the next to try */
	ev_tstamp deadline;   /* the whole budget ends here (loop time) */
	struct sockaddr_storage local;
	struct tcp_connect_cb cb;
	struct sockaddr_storage addrs[TCP_CONNECT_ADDRS_MAX];
};

static void connect_drop_fd(struct tcp_connect *c)
{
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* connect_report hands the outcome over and frees c. */
static void connect_report(struct tcp_connect *c)
{
	struct tcp_connect_result res = { -1, c->err, NULL, NULL };

	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	if (c->err == 0) {
		res.fd = c->fd;
		res.local = &c->local;
		res.remote = &c->addrs[c->next];
		c->fd = -1; /* the callee owns it now */
	}
	c->in_cb = true;
	c->cb.on_done(&res, c->cb.arg);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* connect_finish reports now, or from the loop when still inside start. */
static void connect_finish(struct tcp_connect *c, int err)
{
	c->err = err;
	if (err == 0) {
		socklen_t len = sizeof c->local;
		memset(&c->local, 0, sizeof c->local);
		if (getsockname(c->fd, (struct sockaddr *)&c->local, &len) < 0)
			c->err = errno;
	}
	if (c->err != 0)
		connect_drop_fd(c);
	if (!c->starting) {
		connect_report(c);
		return;
	}
	c->reporting = true;
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, 0., 0.);
	ev_timer_start(c->loop, &c->timer);
}

/* attempt_share is this attempt's part of the remaining budget, seconds. */
static ev_tstamp attempt_share(const struct tcp_connect *c)
{
	ev_tstamp left = c->deadline - ev_now(c->loop);
	ev_tstamp share = left / (ev_tstamp)(c->n - c->next);
	ev_tstamp min = TCP_CONNECT_ATTEMPT_MIN_MS / 1000.0;

	if (share < min)
		share = left < min ? left : min;
	return share;
}

/* connect_next starts the next address; it reports when none is left. */
static void connect_next(struct tcp_connect *c)
{
	for (; c->next < c->n; c->next++) {
		const struct sockaddr_storage *a = &c->addrs[c->next];
		if (c->deadline - ev_now(c->loop) <= 0) {
			c->err = ETIMEDOUT;
			break;
		}
		c->fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			c->err = errno;
			continue;
		}
		if (connect(c->fd, (const struct sockaddr *)a, addr_len(a)) == 0) {
			connect_finish(c, 0);
			return;
		}
		if (errno == EINPROGRESS) {
			ev_io_set(&c->io, c->fd, EV_WRITE);
			ev_io_start(c->loop, &c->io);
			ev_timer_set(&c->timer, attempt_share(c), 0.);
			ev_timer_start(c->loop, &c->timer);
			return;
		}
		c->err = errno;
		connect_drop_fd(c);
	}
	if (c->next >= c->n)
		c->next = c->n - 1; /* keep an index in range for the report */
	connect_finish(c, c->err ? c->err : ETIMEDOUT);
}

static void connect_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_connect *c = w->data;
	int soerr = 0;
	socklen_t len = sizeof soerr;

	(void)loop;
	(void)revents;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0) {
		connect_finish(c, 0);
		return;
	}
	c->err = soerr;
	connect_drop_fd(c);
	c->next++;
	connect_next(c);
}

static void connect_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tcp_connect *c = w->data;

	(void)loop;
	(void)revents;
	if (c->reporting) {
		connect_report(c);
		return;
	}
	c->err = ETIMEDOUT;
	connect_drop_fd(c);
	c->next++;
	connect_next(c);
}

struct tcp_connect *tcp_connect_start(struct ev_loop *loop, const struct sockaddr_storage *addrs,
                                      size_t n, uint32_t timeout_ms,
                                      const struct tcp_connect_cb *cb)
{
	struct tcp_connect *c;

	if (n == 0 || n > TCP_CONNECT_ADDRS_MAX || timeout_ms > TCP_CONNECT_TIMEOUT_MAX_MS || !cb ||
	    !cb->on_done)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->loop = loop;
	c->fd = -1;
	c->n = n;
	c->cb = *cb;
	memcpy(c->addrs, addrs, n * sizeof addrs[0]);
	if (timeout_ms == 0)
		timeout_ms = TCP_CONNECT_TIMEOUT_DEFAULT_MS;
	c->deadline = ev_now(loop) + timeout_ms / 1000.0;
	ev_init(&c->io, connect_on_io);
	ev_init(&c->timer, connect_on_timer);
	c->io.data = c;
	c->timer.data = c;
	c->starting = true;
	connect_next(c);
	c->starting = false;
	return c;
}

void tcp_connect_cancel(struct tcp_connect *c)
{
	if (!c || c->in_cb)
		return;
	connect_drop_fd(c);
	free(c);
}

/* ======================================================================
 * connection
 * ==================================================================== */

struct tcp_conn {
	struct ev_loop *loop; /* borrowed */
	int fd;               /* owned; -1 after close */
	uint64_t id;
	ev_io rio, wio;
	ev_check reap; /* step two of the close: frees c from the loop */
	struct tcp_conn_cb cb;
	bool read_wanted;
	bool eof;         /* the peer's FIN came */
	bool shut_wanted; /* tcp_conn_shutdown was called */
	bool shut_done;   /* shutdown(SHUT_WR) done */
	bool failed;      /* an error was reported */
	bool closing;     /* tcp_conn_close was called */
	uint8_t *rbuf;    /* owned, rcap bytes while it holds data, else NULL:
	                     [rstart, rend) buffered */
	size_t rcap, rstart, rend;
	uint8_t *wbuf; /* owned, wcap bytes while it holds data, else NULL:
	                  [wstart, wend) unsent */
	size_t wcap, wstart, wend;
	int werr; /* a direct send's error, reported from the write callback */
	struct tcp_conn_stats st;
};

static uint64_t conn_next_id = 1;

/* conn_check asserts the buffer invariants (debug builds). */
static void conn_check(const struct tcp_conn *c)
{
	assert(c->rstart <= c->rend && c->rend <= c->rcap);
	assert(c->wstart <= c->wend && c->wend <= c->wcap);
	assert(!c->shut_done || c->shut_wanted);
	assert(!c->closing || c->fd == -1);
	(void)c;
}

static bool conn_live(const struct tcp_conn *c) { return !c->closing && !c->failed; }

static void conn_update_read(struct tcp_conn *c)
{
	bool want = c->read_wanted && conn_live(c) && !c->eof && c->rend - c->rstart < c->rcap;

	if (want && !ev_is_active(&c->rio))
		ev_io_start(c->loop, &c->rio);
	else if (!want && ev_is_active(&c->rio))
		ev_io_stop(c->loop, &c->rio);
}

static void conn_emit(struct tcp_conn *c, enum tcp_conn_event_type type, int err, size_t n)
{
	struct tcp_conn_event ev = { type, err, n };

	c->cb.on_event(c, &ev, c->cb.arg);
}

static void conn_fail(struct tcp_conn *c, int err)
{
	c->failed = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	log_debug("tcp#%llu error: %s", (unsigned long long)c->id, strerror(err));
	conn_emit(c, TCP_CONN_ERROR, err, 0);
}

/* read_once makes one recv into the free end of the read buffer and
 * reports it. Returns true when it filled all the space it offered, the
 * DATA handler drained some, and the connection still reads: more may be
 * waiting, worth another recv in this wakeup. */
static bool read_once(struct tcp_conn *c)
{
	size_t want;
	ssize_t n;

	if (c->rend - c->rstart == c->rcap) {
		/* Full: a zero-length recv would look like EOF. */
		conn_update_read(c);
		return false;
	}
	if (c->rend == c->rcap && c->rstart > 0) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
		c->rend -= c->rstart;
		c->rstart = 0;
	}
	/* Issue 19: buffers exist only while they hold data, so an idle
	 * connection costs its struct and its kernel socket alone. */
	if (!c->rbuf && !(c->rbuf = malloc(c->rcap))) {
		conn_fail(c, ENOMEM);
		return false;
	}
	want = c->rcap - c->rend;
	n = recv(c->fd, c->rbuf + c->rend, want, 0);
	if (n <= 0 && c->rend == c->rstart) {
		free(c->rbuf);
		c->rbuf = NULL;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_fail(c, errno);
		return false;
	}
	if (n == 0) {
		c->eof = true;
		conn_update_read(c);
		conn_emit(c, TCP_CONN_EOF, 0, 0);
		return false;
	}
	c->rend += (size_t)n;
	c->st.bytes_in += (uint64_t)n;
	conn_check(c);
	conn_update_read(c); /* stops reading when now full */
	conn_emit(c, TCP_CONN_DATA, 0, c->rend - c->rstart);
	/* The handler may have closed c (freed later, from the loop). */
	return (size_t)n == want && conn_live(c) && ev_is_active(&c->rio) &&
	       c->rend - c->rstart < c->rcap;
}

/* Up to TCP_IO_ROUNDS reads per wakeup: a bulk sender fills our buffer
 * faster than one loop turn drains it, and each extra turn costs an
 * epoll_wait and a sendmmsg of a smaller batch. */
static void conn_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < TCP_IO_ROUNDS && read_once(c); i++)
		;
}

/* conn_drained runs when the write buffer is empty: the FIN if asked. */
static void conn_drained(struct tcp_conn *c)
{
	ev_io_stop(c->loop, &c->wio);
	if (!c->shut_wanted || c->shut_done)
		return;
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_fail(c, errno);
		return;
	}
	c->shut_done = true;
	conn_emit(c, TCP_CONN_SHUTDOWN, 0, 0);
}

/* write_once makes one send of the buffered bytes and reports it.
 * Returns true when the kernel took all of them, the SENT handler queued
 * more, and the connection is still alive: worth another send now. */
static bool write_once(struct tcp_conn *c)
{
	size_t len = c->wend - c->wstart;
	ssize_t n;

	if (len == 0)
		return false;
	/* MSG_NOSIGNAL: a reset peer is an error here, never a SIGPIPE. */
	n = send(c->fd, c->wbuf + c->wstart, len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_fail(c, errno);
		return false;
	}
	c->wstart += (size_t)n;
	if (c->wstart == c->wend) {
		c->wstart = c->wend = 0;
		free(c->wbuf);
		c->wbuf = NULL;
	}
	c->st.bytes_out += (uint64_t)n;
	conn_check(c);
	conn_emit(c, TCP_CONN_SENT, 0, (size_t)n);
	return (size_t)n == len && conn_live(c) && c->wend > c->wstart;
}

/* Up to TCP_IO_ROUNDS sends per wakeup while the kernel takes whole
 * buffers (the mirror of conn_on_read). */
static void conn_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->werr && conn_live(c)) {
		conn_fail(c, c->werr);
		return;
	}
	for (int i = 0; i < TCP_IO_ROUNDS && write_once(c); i++)
		;
	if (conn_live(c) && c->wend == c->wstart)
		conn_drained(c);
}

static void conn_on_reap(struct ev_loop *loop, ev_check *w, int revents)
{
	struct tcp_conn *c = w->data;

	(void)revents;
	ev_check_stop(loop, &c->reap);
	log_debug("tcp#%llu freed", (unsigned long long)c->id);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static bool conn_opts_ok(size_t r, size_t w)
{
	return r >= TCP_BUF_MIN && r <= TCP_BUF_MAX && w >= TCP_BUF_MIN && w <= TCP_BUF_MAX;
}

struct tcp_conn *tcp_conn_new(struct ev_loop *loop, int fd, const struct tcp_conn_opts *opts,
                              const struct tcp_conn_cb *cb)
{
	size_t rcap = opts && opts->rbuf ? opts->rbuf : TCP_BUF_DEFAULT;
	size_t wcap = opts && opts->wbuf ? opts->wbuf : TCP_BUF_DEFAULT;
	struct tcp_conn *c;
	int one = 1;

	if (fd < 0 || !cb || !cb->on_event || !conn_opts_ok(rcap, wcap))
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (fdio_set_nonblock(fd, NULL) < 0) {
		free(c);
		return NULL;
	}
	/* Latency over packet count: relayed data is already batched. A
	 * failure (not a TCP socket) changes nothing we rely on. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->loop = loop;
	c->fd = fd;
	c->id = conn_next_id++;
	c->cb = *cb;
	c->rcap = rcap;
	c->wcap = wcap;
	ev_io_init(&c->rio, conn_on_read, fd, EV_READ);
	ev_io_init(&c->wio, conn_on_write, fd, EV_WRITE);
	ev_check_init(&c->reap, conn_on_reap);
	c->rio.data = c->wio.data = c->reap.data = c;
	log_debug("tcp#%llu open fd %d", (unsigned long long)c->id, fd);
	return c;
}

void tcp_conn_close(struct tcp_conn *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	ev_check_start(c->loop, &c->reap);
}

void tcp_conn_abort(struct tcp_conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (!c || c->closing)
		return;
	/* Best effort: if it fails the close is merely orderly. */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	tcp_conn_close(c);
}

void tcp_conn_read_start(struct tcp_conn *c)
{
	c->read_wanted = true;
	conn_update_read(c);
}

void tcp_conn_read_stop(struct tcp_conn *c)
{
	c->read_wanted = false;
	conn_update_read(c);
}

size_t tcp_conn_peek(const struct tcp_conn *c, const uint8_t **data)
{
	if (!c->rbuf) {
		*data = NULL;
		return 0;
	}
	*data = c->rbuf + c->rstart;
	return c->rend - c->rstart;
}

void tcp_conn_consume(struct tcp_conn *c, size_t n)
{
	size_t have = c->rend - c->rstart;

	c->rstart += n < have ? n : have;
	if (c->rstart == c->rend) {
		c->rstart = c->rend = 0;
		free(c->rbuf);
		c->rbuf = NULL;
	}
	conn_check(c);
	conn_update_read(c);
}

void tcp_conn_consume_wipe(struct tcp_conn *c, size_t n)
{
	size_t have = c->rend - c->rstart;

	if (c->rbuf)
		sodium_memzero(c->rbuf + c->rstart, n < have ? n : have);
	tcp_conn_consume(c, n);
}

ssize_t tcp_conn_write(struct tcp_conn *c, const void *data, size_t len)
{
	size_t take = tcp_conn_write_space(c);

	if (!conn_live(c) || c->shut_wanted)
		return KS_ERR_CLOSED;
	if (len == 0)
		return 0;
	if (take == 0)
		return KS_ERR_FULL;
	if (take > len)
		take = len;
	if (!c->wbuf && !(c->wbuf = malloc(c->wcap)))
		return KS_ERR_NOMEM;
	if (c->wcap - c->wend < take) {
		memmove(c->wbuf, c->wbuf + c->wstart, c->wend - c->wstart);
		c->wend -= c->wstart;
		c->wstart = 0;
	}
	memcpy(c->wbuf + c->wend, data, take);
	c->wend += take;
	conn_check(c);
	ev_io_start(c->loop, &c->wio);
	return (ssize_t)take;
}

/* direct_send: nothing is buffered, so the kernel may take bytes straight
 * from the caller's spans (no copy). Returns what it took; an error other
 * than a full socket is kept for the write callback, which reports it:
 * no callback from inside a tcp_* call. */
static size_t direct_send(struct tcp_conn *c, const struct iovec *iov, size_t cnt)
{
	struct iovec v[TCP_IOV_MAX];
	struct msghdr mh = { .msg_iov = v, .msg_iovlen = cnt };
	ssize_t n;

	memcpy(v, iov, cnt * sizeof *v); /* msghdr wants them non-const */
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->werr = errno;
			ev_io_start(c->loop, &c->wio);
		}
		return 0;
	}
	c->st.bytes_out += (uint64_t)n;
	return (size_t)n;
}

ssize_t tcp_conn_writev(struct tcp_conn *c, const struct iovec *iov, size_t cnt)
{
	size_t total = 0, sent = 0, taken;

	if (!conn_live(c) || c->shut_wanted)
		return KS_ERR_CLOSED;
	if (cnt > TCP_IOV_MAX)
		return KS_ERR_INVAL;
	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	if (tcp_conn_write_space(c) == 0)
		return KS_ERR_FULL;
	if (c->wend == c->wstart)
		sent = direct_send(c, iov, cnt);
	taken = sent;
	/* The rest is copied into the write buffer, as far as it has room. */
	for (size_t i = 0, off = 0; i < cnt && taken < total; off += iov[i].iov_len, i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t end = off + iov[i].iov_len;
		ssize_t w;

		if (taken >= end)
			continue;
		w = tcp_conn_write(c, p + (taken - off), end - taken);
		if (w == KS_ERR_FULL)
			break;
		if (w < 0)
			return taken > 0 ? (ssize_t)taken : w;
		taken += (size_t)w;
		if (taken < end)
			break; /* the buffer is full */
	}
	return taken > 0 ? (ssize_t)taken : KS_ERR_FULL;
}

size_t tcp_conn_write_space(const struct tcp_conn *c)
{
	if (!conn_live(c) || c->shut_wanted || c->werr)
		return 0;
	return c->wcap - (c->wend - c->wstart);
}

size_t tcp_conn_write_pending(const struct tcp_conn *c) { return c->wend - c->wstart; }

int tcp_conn_shutdown(struct tcp_conn *c)
{
	if (!conn_live(c))
		return KS_ERR_CLOSED;
	if (c->shut_wanted)
		return 0;
	c->shut_wanted = true;
	/* The FIN goes from the write callback, never from inside this call. */
	ev_io_start(c->loop, &c->wio);
	return 0;
}

uint64_t tcp_conn_id(const struct tcp_conn *c) { return c->id; }
int tcp_conn_fd(const struct tcp_conn *c) { return c->fd; }
bool tcp_conn_eof(const struct tcp_conn *c) { return c->eof; }
bool tcp_conn_is_reading(const struct tcp_conn *c) { return ev_is_active(&c->rio); }
const struct tcp_conn_stats *tcp_conn_stats(const struct tcp_conn *c) { return &c->st; }
