/* test_io_tcp.c - listener, connect, buffered connection on loopback.
 *
 * Includes io/tcp.c to reach the connect timer callback, so the timeout
 * path can be driven deterministically. Every wait is a loop run bounded by
 * a guard timer; nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/tcp.c"

/* GUARD_DRAIN_MS bounds a drain through small kernel buffers, which a
 * loaded machine has been seen to take more than 3 s over (window
 * updates wait on a busy receiver); only a failing run waits that long. */
enum { GUARD_MS = 3000, GUARD_DRAIN_MS = 30000 };

struct fix {
	struct ev_loop *loop;
	ev_timer guard;
	bool expired;
	struct tcp_listener *l;
	struct sockaddr_storage laddr;
	int accepted[4];
	size_t naccepted;
	bool auto_release;
	bool free_in_cb;
};

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;
	(void)revents;
	f->expired = true;
	ev_break(loop, EVBREAK_ALL);
}

/* run_until runs the loop until *flag is true or the guard expires. */
static void run_until(struct fix *f, const bool *flag)
{
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!*flag && !f->expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &f->guard);
	if (!*flag)
		fail_msg("guard timer expired");
}

static void on_accept(int fd, const struct sockaddr_storage *peer, void *arg)
{
	struct fix *f = arg;
	assert_true(peer->ss_family == AF_INET || peer->ss_family == AF_INET6);
	assert_true(f->naccepted < 4);
	f->accepted[f->naccepted++] = fd;
	if (f->auto_release)
		tcp_listener_release(f->l);
	if (f->free_in_cb) {
		tcp_listener_free(f->l);
		f->l = NULL;
	}
}

static struct sockaddr_storage loopback(uint16_t port)
{
	struct sockaddr_storage ss;
	char text[16];
	snprintf(text, sizeof text, "%u", (unsigned)port);
	assert_int_equal(addr_parse_host_port("127.0.0.1", text, &ss, NULL, 0), 0);
	return ss;
}

static int setup(void **state)
{
	static struct fix f;
	struct tcp_listener_cb cb = { on_accept, &f };
	struct sockaddr_storage any = loopback(0);
	char err[128] = "";

	memset(&f, 0, sizeof f);
	f.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f.loop);
	ev_timer_init(&f.guard, on_guard, 0., 0.);
	f.guard.data = &f;
	f.auto_release = true;
	f.l = tcp_listener_new(f.loop, &any, NULL, &cb, err, sizeof err);
	if (!f.l)
		fail_msg("%s", err);
	assert_int_equal(tcp_listener_addr(f.l, &f.laddr), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	for (size_t i = 0; i < f->naccepted; i++)
		if (f->accepted[i] >= 0)
			close(f->accepted[i]);
	tcp_listener_free(f->l);
	/* Let deferred frees run. */
	ev_run(f->loop, EVRUN_NOWAIT);
	ev_run(f->loop, EVRUN_NOWAIT);
	ev_loop_destroy(f->loop);
	return 0;
}

/* A port bound but not listening: connecting to it is refused. */
static int closed_port(struct sockaddr_storage *out)
{
	struct sockaddr_storage a = loopback(0);
	socklen_t len = sizeof *out;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, addr_len(&a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)out, &len), 0);
	return fd;
}

/* ---- listener ---- */

static void listen_conflict_message(void **state)
{
	struct fix *f = *state;
	struct tcp_listener_cb cb = { on_accept, f };
	char err[128] = "", want[128], text[ADDR_TEXT_MAX];

	assert_null(tcp_listener_new(f->loop, &f->laddr, NULL, &cb, err, sizeof err));
	snprintf(want, sizeof want, "listen %s: Address already in use",
	         addr_format(&f->laddr, text));
	assert_string_equal(err, want);

	struct tcp_listener_opts bad = { .backlog = -1 };
	assert_null(tcp_listener_new(f->loop, &f->laddr, &bad, &cb, err, sizeof err));
	assert_non_null(strstr(err, "invalid options"));
}

/* ---- connect ---- */

struct cres {
	bool done;
	int calls;
	int fd;
	int err;
	struct sockaddr_storage local, remote;
	struct tcp_connect **handle; /* cancel from inside on_done: must be a no-op */
};

static void on_done(const struct tcp_connect_result *r, void *arg)
{
	struct cres *c = arg;
	c->done = true;
	c->calls++;
	c->fd = r->fd;
	c->err = r->err;
	if (r->err == 0) {
		assert_non_null(r->local);
		c->local = *r->local;
		c->remote = *r->remote;
	} else {
		assert_int_equal(r->fd, -1);
		assert_null(r->local);
	}
	if (c->handle)
		tcp_connect_cancel(*c->handle);
}

static void connect_success_reports_local_address(void **state)
{
	struct fix *f = *state;
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	struct tcp_connect *h;
	bool accepted = false;

	r.handle = &h;
	h = tcp_connect_start(f->loop, &f->laddr, 1, 2000, &cb);
	assert_non_null(h);
	assert_false(r.done); /* never called from inside start */
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);
	assert_true(r.fd >= 0);
	assert_true(addr_equal(&r.remote, &f->laddr));
	assert_int_equal(r.local.ss_family, AF_INET);
	assert_int_not_equal(addr_port(&r.local), 0);
	assert_int_equal(((struct sockaddr_in *)&r.local)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

	accepted = f->naccepted > 0;
	if (!accepted) {
		ev_run(f->loop, EVRUN_ONCE);
		accepted = f->naccepted > 0;
	}
	assert_true(accepted);
	assert_int_equal(tcp_listener_stats(f->l)->accepted, 1);
	assert_int_equal(r.calls, 1);
	close(r.fd);
}

static void connect_refused(void **state)
{
	struct fix *f = *state;
	struct sockaddr_storage dead;
	int hold = closed_port(&dead);
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };

	assert_non_null(tcp_connect_start(f->loop, &dead, 1, 2000, &cb));
	assert_false(r.done);
	run_until(f, &r.done);
	assert_int_equal(r.err, ECONNREFUSED);
	assert_int_equal(r.calls, 1);
	close(hold);
}

static void connect_tries_addresses_in_order(void **state)
{
	struct fix *f = *state;
	struct sockaddr_storage list[2];
	int hold = closed_port(&list[0]);
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };

	list[1] = f->laddr;
	assert_non_null(tcp_connect_start(f->loop, list, 2, 2000, &cb));
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);
	assert_true(addr_equal(&r.remote, &f->laddr));
	close(r.fd);
	close(hold);
}

static void connect_bad_arguments(void **state)
{
	struct fix *f = *state;
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	struct sockaddr_storage many[TCP_CONNECT_ADDRS_MAX + 1] = { 0 };

	assert_null(tcp_connect_start(f->loop, many, 0, 100, &cb));
	assert_null(tcp_connect_start(f->loop, many, TCP_CONNECT_ADDRS_MAX + 1, 100, &cb));
	assert_null(tcp_connect_start(f->loop, many, 1, TCP_CONNECT_TIMEOUT_MAX_MS + 1, &cb));
	/* A family the kernel refuses fails at once, reported from the loop. */
	many[0].ss_family = AF_UNSPEC;
	assert_non_null(tcp_connect_start(f->loop, many, 1, 100, &cb));
	assert_false(r.done);
	run_until(f, &r.done);
	assert_int_not_equal(r.err, 0);
}

/* Injected timeout: the timer callback runs before the socket is writable. */
static void connect_timeout_injected(void **state)
{
	struct fix *f = *state;
	struct sockaddr_storage list[2] = { f->laddr, f->laddr };
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	struct tcp_connect *h = tcp_connect_start(f->loop, list, 1, 2000, &cb);

	assert_non_null(h);
	connect_on_timer(f->loop, &h->timer, EV_TIMER);
	assert_true(r.done);
	assert_int_equal(r.err, ETIMEDOUT);

	/* With two addresses, a timeout on the first moves to the second. */
	memset(&r, 0, sizeof r);
	h = tcp_connect_start(f->loop, list, 2, 2000, &cb);
	assert_non_null(h);
	assert_int_equal(h->next, 0);
	connect_on_timer(f->loop, &h->timer, EV_TIMER);
	assert_false(r.done);
	assert_int_equal(h->next, 1);
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);
	close(r.fd);
}

/* A real timeout: a listener whose accept queue is full drops our SYN. */
static void connect_timeout_full_backlog(void **state)
{
	struct fix *f = *state;
	struct sockaddr_storage a = loopback(0), bound;
	socklen_t len = sizeof bound;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };

	assert_int_equal(bind(lfd, (struct sockaddr *)&a, addr_len(&a)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&bound, &len), 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&bound, addr_len(&bound)), 0);

	ev_now_update(f->loop);
	ev_tstamp t0 = ev_now(f->loop);
	assert_non_null(tcp_connect_start(f->loop, &bound, 1, 150, &cb));
	run_until(f, &r.done);
	assert_int_equal(r.err, ETIMEDOUT);
	assert_true(ev_now(f->loop) - t0 >= 0.14);
	close(filler);
	close(lfd);
}

static void connect_cancel_before_completion(void **state)
{
	struct fix *f = *state;
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	struct sockaddr_storage dead;
	int hold = closed_port(&dead);
	bool never = false;
	struct tcp_connect *h;

	h = tcp_connect_start(f->loop, &f->laddr, 1, 2000, &cb);
	tcp_connect_cancel(h);
	/* Also a connect whose failure is already waiting to be reported. */
	h = tcp_connect_start(f->loop, &dead, 1, 2000, &cb);
	tcp_connect_cancel(h);
	tcp_connect_cancel(NULL);
	ev_timer_set(&f->guard, 0.2, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!f->expired)
		ev_run(f->loop, EVRUN_ONCE);
	assert_false(never);
	assert_int_equal(r.calls, 0);
	close(hold);
}

/* ---- connection ---- */

struct side {
	struct tcp_conn *c;
	uint8_t got[256 * 1024];
	size_t ngot;
	size_t sent; /* total of SENT events */
	bool eof, shut, error, data;
	int err;
	bool consume;     /* consume DATA as it comes */
	bool close_in_cb; /* close from inside the EOF event */
	int events_after_close;
	bool closed;
};

static void on_event(struct tcp_conn *c, const struct tcp_conn_event *ev, void *arg)
{
	struct side *s = arg;

	if (s->closed)
		s->events_after_close++;
	switch (ev->type) {
	case TCP_CONN_DATA:
		s->data = true;
		if (s->consume) {
			const uint8_t *p;
			size_t n = tcp_conn_peek(c, &p);
			assert_int_equal(n, ev->n);
			assert_true(s->ngot + n <= sizeof s->got);
			memcpy(s->got + s->ngot, p, n);
			s->ngot += n;
			tcp_conn_consume(c, n);
		}
		break;
	case TCP_CONN_EOF:
		s->eof = true;
		if (s->close_in_cb) {
			tcp_conn_close(c);
			s->closed = true;
			/* c is still valid memory until the loop reaps it. */
			assert_int_equal(tcp_conn_fd(c), -1);
			tcp_conn_close(c);
			assert_int_equal(tcp_conn_write(c, "x", 1), KS_ERR_CLOSED);
		}
		break;
	case TCP_CONN_SENT: s->sent += ev->n; break;
	case TCP_CONN_SHUTDOWN: s->shut = true; break;
	case TCP_CONN_ERROR:
		s->error = true;
		s->err = ev->err;
		break;
	}
}

/* pair makes a connected client/server pair of tcp_conns. */
static void pair(struct fix *f, struct side *cli, struct side *srv, const struct tcp_conn_opts *o)
{
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	struct tcp_conn_cb ccb = { on_event, cli }, scb = { on_event, srv };
	size_t before = f->naccepted;

	assert_non_null(tcp_connect_start(f->loop, &f->laddr, 1, 2000, &cb));
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);
	bool got = f->naccepted > before;
	if (!got) {
		ev_run(f->loop, EVRUN_ONCE);
		got = f->naccepted > before;
	}
	assert_true(got);
	cli->c = tcp_conn_new(f->loop, r.fd, o, &ccb);
	srv->c = tcp_conn_new(f->loop, f->accepted[before], o, &scb);
	f->accepted[before] = -1; /* owned by the conn now */
	assert_non_null(cli->c);
	assert_non_null(srv->c);
}

static void small_kernel_buffers(int fd)
{
	int v = 4096;
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
}

static void conn_nodelay_and_echo(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	int one = 0;
	socklen_t len = sizeof one;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	assert_int_equal(getsockopt(tcp_conn_fd(cli.c), IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	assert_int_not_equal(one, 0);
	assert_int_not_equal(tcp_conn_id(cli.c), tcp_conn_id(srv.c));

	srv.consume = true;
	tcp_conn_read_start(srv.c);
	assert_true(tcp_conn_is_reading(srv.c));
	assert_int_equal(tcp_conn_write(cli.c, "hello", 5), 5);
	assert_int_equal(tcp_conn_write(cli.c, "", 0), 0);
	assert_int_equal(tcp_conn_write_pending(cli.c), 5);
	run_until(f, &srv.data);
	assert_int_equal(srv.ngot, 5);
	assert_memory_equal(srv.got, "hello", 5);
	assert_int_equal(cli.sent, 5);
	assert_int_equal(tcp_conn_stats(cli.c)->bytes_out, 5);
	assert_int_equal(tcp_conn_stats(srv.c)->bytes_in, 5);
	tcp_conn_close(cli.c);
	tcp_conn_close(srv.c);
}

/* consume_wipe zeroes the dropped bytes where they lay in the read buffer
 * (an RFC 1929 password must not stay there), keeps the rest, and takes a
 * count larger than what is buffered as "all". */
static void conn_consume_wipe(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	const uint8_t *p, *q;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	tcp_conn_read_start(srv.c);
	assert_int_equal(tcp_conn_write(cli.c, "secretGET", 9), 9);
	run_until(f, &srv.data);
	assert_int_equal(tcp_conn_peek(srv.c, &p), 9);
	tcp_conn_consume_wipe(srv.c, 6);
	assert_memory_equal(p, "\0\0\0\0\0\0GET", 9);
	assert_int_equal(tcp_conn_peek(srv.c, &q), 3);
	assert_memory_equal(q, "GET", 3);
	/* Consuming the rest wipes it, then the drained buffer is freed
	 * (p dangles from here on; ASan would catch a read). */
	tcp_conn_consume_wipe(srv.c, SIZE_MAX);
	assert_int_equal(tcp_conn_peek(srv.c, &q), 0);
	tcp_conn_close(cli.c);
	tcp_conn_close(srv.c);
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 31 + (i >> 8)); }

/* The writer fills its buffer and gets KS_ERR_FULL while the reader does not
 * read; the reader's full buffer stops its read watcher; consuming resumes
 * both, and every byte arrives in order. */
static void conn_backpressure(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	static uint8_t src[200 * 1024];
	struct tcp_conn_opts o = { .rbuf = 1024, .wbuf = 1024 };
	size_t off = 0;
	int rounds = 0;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = pattern(i);
	pair(f, &cli, &srv, &o);
	small_kernel_buffers(tcp_conn_fd(cli.c));
	small_kernel_buffers(tcp_conn_fd(srv.c));

	/* Phase 1: nobody reads. The writer must hit FULL. */
	for (int i = 0; i < 10000 && off < sizeof src; i++) {
		ssize_t n = tcp_conn_write(cli.c, src + off, sizeof src - off);
		if (n == KS_ERR_FULL) {
			/* Let the kernel take what it can, then check the buffer
			 * stays full: the writer is really blocked. */
			size_t before = cli.sent;
			for (int k = 0; k < 20; k++)
				ev_run(f->loop, EVRUN_NOWAIT);
			if (cli.sent == before)
				break;
			continue;
		}
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_true(off < sizeof src);
	assert_int_equal(tcp_conn_write_space(cli.c), 0);
	assert_int_equal(tcp_conn_write(cli.c, src, 1), KS_ERR_FULL);

	/* Phase 2: the reader reads without consuming: its watcher stops. */
	tcp_conn_read_start(srv.c);
	for (int k = 0; k < 50 && tcp_conn_is_reading(srv.c); k++)
		ev_run(f->loop, EVRUN_ONCE);
	assert_false(tcp_conn_is_reading(srv.c));
	const uint8_t *p;
	assert_int_equal(tcp_conn_peek(srv.c, &p), o.rbuf);

	/* Phase 3: consume everything; the writer refills as SENT comes. */
	srv.consume = true;
	memcpy(srv.got, p, o.rbuf);
	srv.ngot = o.rbuf;
	tcp_conn_consume(srv.c, o.rbuf);
	assert_true(tcp_conn_is_reading(srv.c));
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (srv.ngot < sizeof src && !f->expired && rounds++ < 100000) {
		if (off < sizeof src) {
			ssize_t n = tcp_conn_write(cli.c, src + off, sizeof src - off);
			if (n > 0)
				off += (size_t)n;
		}
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &f->guard);
	assert_int_equal(srv.ngot, sizeof src);
	assert_memory_equal(srv.got, src, sizeof src);
	tcp_conn_close(cli.c);
	tcp_conn_close(srv.c);
}

/* Shutdown waits for the write buffer; the peer sees all data, then EOF;
 * the other direction still works; then it closes too. */
static void conn_half_close_both_ways(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	cli.consume = srv.consume = true;
	tcp_conn_read_start(cli.c);
	tcp_conn_read_start(srv.c);

	assert_int_equal(tcp_conn_write(cli.c, "request", 7), 7);
	assert_int_equal(tcp_conn_shutdown(cli.c), 0);
	assert_int_equal(tcp_conn_shutdown(cli.c), 0);
	assert_false(cli.shut); /* never from inside the call */
	assert_int_equal(tcp_conn_write(cli.c, "x", 1), KS_ERR_CLOSED);
	assert_int_equal(tcp_conn_write_space(cli.c), 0);
	run_until(f, &srv.eof);
	assert_true(cli.shut);
	assert_int_equal(srv.ngot, 7);
	assert_memory_equal(srv.got, "request", 7);
	assert_true(tcp_conn_eof(srv.c));
	assert_false(tcp_conn_is_reading(srv.c));

	/* The server answers on its still-open side, then half-closes. */
	assert_int_equal(tcp_conn_write(srv.c, "response", 8), 8);
	assert_int_equal(tcp_conn_shutdown(srv.c), 0);
	run_until(f, &cli.eof);
	assert_true(srv.shut);
	assert_int_equal(cli.ngot, 8);
	assert_memory_equal(cli.got, "response", 8);
	assert_false(cli.error || srv.error);
	tcp_conn_close(cli.c);
	tcp_conn_close(srv.c);
}

/* Closing from inside a callback is safe; no event follows; the loop frees. */
static void conn_close_in_callback_is_deferred(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	srv.close_in_cb = true;
	tcp_conn_read_start(srv.c);
	assert_int_equal(tcp_conn_write(cli.c, "bye", 3), 3);
	assert_int_equal(tcp_conn_shutdown(cli.c), 0);
	run_until(f, &srv.eof);
	assert_true(srv.closed);
	/* The reap check watcher is pending; run a few iterations. */
	for (int i = 0; i < 3; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	assert_int_equal(srv.events_after_close, 0);
	tcp_conn_close(cli.c);
	tcp_conn_close(cli.c); /* second close: no-op */
	tcp_conn_close(NULL);
}

static void conn_reset_is_an_error(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	struct linger lg = { 1, 0 };

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	tcp_conn_read_start(cli.c);
	/* An abortive close of the server socket sends RST. */
	assert_int_equal(setsockopt(tcp_conn_fd(srv.c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	tcp_conn_close(srv.c);
	run_until(f, &cli.error);
	assert_int_equal(cli.err, ECONNRESET);
	assert_false(tcp_conn_is_reading(cli.c));
	assert_int_equal(tcp_conn_write(cli.c, "x", 1), KS_ERR_CLOSED);
	assert_int_equal(tcp_conn_shutdown(cli.c), KS_ERR_CLOSED);
	tcp_conn_close(cli.c);
}

/* tcp_conn_abort resets the connection: the peer gets ECONNRESET even
 * with bytes still unsent, not an EOF. */
static void conn_abort_sends_reset(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	tcp_conn_read_start(cli.c);
	assert_int_equal(tcp_conn_write(srv.c, "unsent", 6), 6);
	tcp_conn_abort(srv.c);
	assert_int_equal(tcp_conn_fd(srv.c), -1);
	tcp_conn_abort(srv.c); /* second call: no-op */
	tcp_conn_abort(NULL);
	run_until(f, &cli.error);
	assert_int_equal(cli.err, ECONNRESET);
	assert_false(cli.eof);
	tcp_conn_close(cli.c);
}

/* Writing into a reset connection is an error event, never a SIGPIPE. */
static void conn_write_after_reset_is_an_error(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	static uint8_t junk[4096];
	struct linger lg = { 1, 0 };

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	assert_int_equal(setsockopt(tcp_conn_fd(srv.c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	tcp_conn_close(srv.c);
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!cli.error && !f->expired) {
		ssize_t n = tcp_conn_write(cli.c, junk, sizeof junk);
		assert_true(n > 0 || n == KS_ERR_FULL || (n == KS_ERR_CLOSED && cli.error));
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &f->guard);
	assert_true(cli.error);
	assert_true(cli.err == EPIPE || cli.err == ECONNRESET);
	assert_int_equal(tcp_conn_write_space(cli.c), 0);
	tcp_conn_close(cli.c);
}

/* writev_two offers src[off..len) as two spans cut at an odd place, as a
 * wrapped ring would; returns what tcp_conn_writev returned. */
static ssize_t writev_two(struct tcp_conn *c, uint8_t *src, size_t off, size_t len)
{
	size_t cut = off + (len - off) / 3;
	struct iovec v[2] = { { src + off, cut - off }, { src + cut, len - cut } };

	return tcp_conn_writev(c, v, 2);
}

/* tcp_conn_writev on an idle connection hands the spans to the kernel
 * directly (nothing buffered, no SENT event); once the kernel is full it
 * copies the rest into the write buffer up to its size, refuses with FULL
 * when that is full, appends behind buffered bytes (never ahead of them),
 * and every byte arrives once, in order. */
static void conn_writev_direct_then_buffered(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	static uint8_t src[200 * 1024];
	struct tcp_conn_opts o = { .rbuf = 1024, .wbuf = 1024 };
	struct iovec none[TCP_IOV_MAX + 1] = { { 0 } };
	size_t off = 0;
	ssize_t n;
	int rounds = 0;

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = pattern(i);
	pair(f, &cli, &srv, &o);
	small_kernel_buffers(tcp_conn_fd(cli.c));
	small_kernel_buffers(tcp_conn_fd(srv.c));
	assert_int_equal(tcp_conn_writev(cli.c, none, TCP_IOV_MAX + 1), KS_ERR_INVAL);
	assert_int_equal(tcp_conn_writev(cli.c, none, 2), 0);

	/* Idle: straight to the kernel. */
	n = writev_two(cli.c, src, 0, 100);
	assert_int_equal(n, 100);
	off = 100;
	assert_int_equal(tcp_conn_write_pending(cli.c), 0);
	assert_int_equal(tcp_conn_stats(cli.c)->bytes_out, 100);
	assert_int_equal(cli.sent, 0);

	/* Nobody reads: the kernel fills, then the buffer, then FULL. */
	while ((n = writev_two(cli.c, src, off, sizeof src)) > 0) {
		off += (size_t)n;
		assert_true(off < sizeof src);
		assert_true(++rounds < 10000);
	}
	assert_int_equal(n, KS_ERR_FULL);
	assert_int_equal(tcp_conn_write_pending(cli.c), o.wbuf);
	assert_int_equal(tcp_conn_write_space(cli.c), 0);

	/* Reading drains it all, in order; each writev behind buffered bytes
	 * only appends to them. */
	srv.consume = true;
	tcp_conn_read_start(srv.c);
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_DRAIN_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	rounds = 0;
	while (srv.ngot < sizeof src && !f->expired && rounds++ < 100000) {
		if (off < sizeof src) {
			size_t pending = tcp_conn_write_pending(cli.c);
			uint64_t out = tcp_conn_stats(cli.c)->bytes_out;

			n = writev_two(cli.c, src, off, sizeof src);
			assert_true(n > 0 || n == KS_ERR_FULL);
			if (n > 0 && pending > 0) { /* behind buffered bytes: copied */
				assert_int_equal(tcp_conn_stats(cli.c)->bytes_out, out);
				assert_int_equal(tcp_conn_write_pending(cli.c),
				                 pending + (size_t)n);
			}
			if (n > 0)
				off += (size_t)n;
		}
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &f->guard);
	assert_int_equal(srv.ngot, sizeof src);
	assert_memory_equal(srv.got, src, sizeof src);
	assert_int_equal(tcp_conn_stats(cli.c)->bytes_out, sizeof src);
	assert_true(cli.sent < sizeof src); /* some bytes never passed the buffer */
	assert_int_equal(tcp_conn_shutdown(cli.c), 0);
	assert_int_equal(writev_two(cli.c, src, 0, 10), KS_ERR_CLOSED);
	tcp_conn_close(cli.c);
	tcp_conn_close(srv.c);
}

/* A direct send into a reset connection is an error event from the loop,
 * never a callback from inside tcp_conn_writev, never a SIGPIPE. */
static void conn_writev_error_comes_from_the_loop(void **state)
{
	struct fix *f = *state;
	static struct side cli, srv;
	static uint8_t junk[4096];
	struct linger lg = { 1, 0 };

	memset(&cli, 0, sizeof cli);
	memset(&srv, 0, sizeof srv);
	pair(f, &cli, &srv, NULL);
	assert_int_equal(setsockopt(tcp_conn_fd(srv.c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	tcp_conn_close(srv.c);
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!cli.error && !f->expired) {
		ssize_t n = writev_two(cli.c, junk, 0, sizeof junk);

		assert_false(cli.error); /* not from inside the call */
		assert_true(n > 0 || n == KS_ERR_FULL);
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &f->guard);
	assert_true(cli.error);
	assert_true(cli.err == EPIPE || cli.err == ECONNRESET);
	assert_int_equal(tcp_conn_write_space(cli.c), 0);
	assert_int_equal(writev_two(cli.c, junk, 0, sizeof junk), KS_ERR_CLOSED);
	tcp_conn_close(cli.c);
}

/* The same over IPv6 loopback: listener, connect, local address. */
static void ipv6_loopback(void **state)
{
	struct fix *f = *state;
	struct tcp_listener_cb cb = { on_accept, f };
	struct sockaddr_storage any, addr;
	struct cres r = { 0 };
	struct tcp_connect_cb ccb = { on_done, &r };
	char err[128] = "", text[ADDR_TEXT_MAX];
	struct tcp_listener *l;

	assert_int_equal(addr_parse("[::1]:0", NULL, &any, NULL, 0), 0);
	l = tcp_listener_new(f->loop, &any, NULL, &cb, err, sizeof err);
	if (!l)
		skip(); /* no IPv6 on this host */
	assert_int_equal(tcp_listener_addr(l, &addr), 0);
	assert_non_null(tcp_connect_start(f->loop, &addr, 1, 2000, &ccb));
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.local.ss_family, AF_INET6);
	assert_int_equal(strncmp(addr_format(&r.local, text), "[::1]:", 6), 0);
	close(r.fd);
	tcp_listener_free(l);
}

static void conn_bad_options(void **state)
{
	struct fix *f = *state;
	struct tcp_conn_cb cb = { on_event, NULL };
	struct tcp_conn_opts small = { .rbuf = TCP_BUF_MIN - 1 };
	struct tcp_conn_opts big = { .wbuf = TCP_BUF_MAX + 1 };

	assert_null(tcp_conn_new(f->loop, -1, NULL, &cb));
	assert_null(tcp_conn_new(f->loop, 0, &small, &cb));
	assert_null(tcp_conn_new(f->loop, 0, &big, &cb));
}

/* ---- listener limits ---- */

static void listener_connection_limit(void **state)
{
	struct fix *f = *state;
	struct tcp_listener_opts o = { .max_conns = 1 };
	struct tcp_listener_cb cb = { on_accept, f };
	struct sockaddr_storage any = loopback(0), addr;
	struct cres r1 = { 0 }, r2 = { 0 };
	struct tcp_connect_cb c1 = { on_done, &r1 }, c2 = { on_done, &r2 };
	struct tcp_listener *l = tcp_listener_new(f->loop, &any, &o, &cb, NULL, 0);
	bool one = false;

	assert_non_null(l);
	f->auto_release = false;
	assert_int_equal(tcp_listener_addr(l, &addr), 0);
	assert_non_null(tcp_connect_start(f->loop, &addr, 1, 2000, &c1));
	assert_non_null(tcp_connect_start(f->loop, &addr, 1, 2000, &c2));
	run_until(f, &r1.done);
	run_until(f, &r2.done); /* the kernel completes both handshakes */
	for (int i = 0; i < 20; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	assert_int_equal(f->naccepted, 1);
	assert_int_equal(tcp_listener_stats(l)->active, 1);
	assert_false(ev_is_active(&l->io));

	/* Releasing the slot lets the second one in. */
	tcp_listener_release(l);
	for (int i = 0; i < 50 && f->naccepted < 2; i++)
		ev_run(f->loop, EVRUN_ONCE);
	assert_int_equal(f->naccepted, 2);
	one = tcp_listener_stats(l)->accepted == 2;
	assert_true(one);

	/* Pause and resume. */
	tcp_listener_release(l);
	tcp_listener_pause(l);
	assert_false(ev_is_active(&l->io));
	tcp_listener_resume(l);
	assert_true(ev_is_active(&l->io));
	tcp_listener_free(l);
	tcp_listener_free(NULL);
	close(r1.fd);
	close(r2.fd);
}

/* Freeing the listener from inside on_accept is safe (ASan checks). */
static void listener_free_inside_on_accept(void **state)
{
	struct fix *f = *state;
	struct cres r1 = { 0 }, r2 = { 0 };
	struct tcp_connect_cb c1 = { on_done, &r1 }, c2 = { on_done, &r2 };
	bool got = false;

	f->free_in_cb = true;
	/* Two queued connections: the accept loop must stop after the free. */
	assert_non_null(tcp_connect_start(f->loop, &f->laddr, 1, 2000, &c1));
	assert_non_null(tcp_connect_start(f->loop, &f->laddr, 1, 2000, &c2));
	for (int i = 0; i < 50 && !got; i++) {
		ev_run(f->loop, EVRUN_ONCE);
		got = f->naccepted > 0;
	}
	assert_true(got);
	assert_null(f->l);
	assert_int_equal(f->naccepted, 1);
	run_until(f, &r1.done);
	run_until(f, &r2.done);
	if (r1.fd >= 0)
		close(r1.fd);
	if (r2.fd >= 0)
		close(r2.fd);
}

/* Out of descriptors: accepting rests on a timer instead of spinning. */
static void listener_rests_on_emfile(void **state)
{
	struct fix *f = *state;
	struct rlimit old, low;
	struct cres r = { 0 };
	struct tcp_connect_cb cb = { on_done, &r };
	int probe;

	tcp_listener_pause(f->l);
	assert_non_null(tcp_connect_start(f->loop, &f->laddr, 1, 2000, &cb));
	run_until(f, &r.done);
	assert_int_equal(r.err, 0);

	/* Lower the soft limit to the lowest free fd: accept4 gets EMFILE. */
	probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	tcp_listener_resume(f->l);
	for (int i = 0; i < 20 && tcp_listener_stats(f->l)->fd_pauses == 0; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(tcp_listener_stats(f->l)->fd_pauses, 1);
	assert_int_equal(f->naccepted, 0);
	assert_false(ev_is_active(&f->l->io));
	assert_true(ev_is_active(&f->l->rest));

	/* After the rest, the connection is accepted. */
	bool done = false;
	for (int i = 0; i < 100 && !done; i++) {
		ev_run(f->loop, EVRUN_ONCE);
		done = f->naccepted == 1;
	}
	assert_true(done);
	close(r.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(listen_conflict_message, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_success_reports_local_address, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_tries_addresses_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_timeout_injected, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_timeout_full_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_cancel_before_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_nodelay_and_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_consume_wipe, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_half_close_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_close_in_callback_is_deferred, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(conn_reset_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_write_after_reset_is_an_error, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(conn_writev_direct_then_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_writev_error_comes_from_the_loop, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(ipv6_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(conn_abort_sends_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(listener_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(listener_free_inside_on_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(listener_rests_on_emfile, setup, teardown),
	};
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
