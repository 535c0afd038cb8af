/* test_io_relay.c - a relay between a real mux stream and a tcp_conn over a
 * socketpair: bytes both ways (checked against a pattern), backpressure
 * when the application does not read, half-close both ways, reset, the
 * host table, an abortive reset, and a lost session. The two muxes are wired directly
 * (mux_produce -> mux_input); the loop runs with EVRUN_NOWAIT, bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/mux.h"
#include "io/relay.h"
#include "io/tcp.h"

enum { ROUNDS = 2000, BIG = 1 << 20 };

struct fix {
	struct ev_loop *loop;
	struct mux *cli, *srv; /* the client end is the test's, the server end the relay's */
	struct relay_host host;
	struct relay relay;
	int app;      /* the test's end of the socketpair */
	uint32_t cid; /* stream id at the client */
	int done;     /* relay_done calls */
	uint8_t buf[65536];
};

static struct mux *srv_mux(void *ctx) { return ((struct fix *)ctx)->srv; }

static void relay_done(struct relay *r, void *arg)
{
	struct fix *f = arg;

	assert_ptr_equal(r, &f->relay);
	f->done++;
}

static void on_tcp(struct tcp_conn *c, const struct tcp_conn_event *ev, void *arg)
{
	struct fix *f = arg;

	(void)c;
	relay_on_tcp_event(&f->relay, ev);
}

static uint8_t pat(size_t i) { return (uint8_t)(i * 7 + (i >> 9)); }

/* Moves frames both ways and hands the server's stream events to the
 * relay; client events are left for the test. */
static void exchange(struct fix *f)
{
	uint8_t b[16384];
	struct mux_event ev;
	ssize_t n;

	for (int i = 0; i < 8; i++) {
		while ((n = mux_produce(f->cli, b, sizeof b, 0)) > 0)
			assert_int_equal(mux_input(f->srv, b, (size_t)n, 0), 0);
		while (mux_next_event(f->srv, &ev) == 0) {
			struct relay *r = relay_find(&f->host, ev.id);

			if (r && r->phase == RELAY_RUNNING)
				relay_on_mux_event(r, &ev);
		}
		while ((n = mux_produce(f->srv, b, sizeof b, 0)) > 0)
			assert_int_equal(mux_input(f->cli, b, (size_t)n, 0), 0);
	}
}

static void spin(struct fix *f)
{
	ev_run(f->loop, EVRUN_NOWAIT);
	exchange(f);
}

static int setup(void **state)
{
	static struct fix fx;
	struct fix *f = &fx;
	static const uint8_t req[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
	static const uint8_t rep[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0, 81 };
	struct relay_ops ops = { relay_done, f };
	struct tcp_conn_cb cb = { on_tcp, f };
	struct mux_event ev;
	struct tcp_conn *c;
	struct mux_config mc;
	int sv[2];

	memset(f, 0, sizeof *f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	/* A window smaller than what the backpressure test writes. */
	mux_config_default(&mc);
	mc.window = 256 * 1024;
	assert_int_equal(mux_new(&f->cli, MUX_CLIENT, &mc), 0);
	assert_int_equal(mux_new(&f->srv, MUX_SERVER, &mc), 0);
	relay_host_init(&f->host, srv_mux, f);
	assert_int_equal(mux_open_stream(f->cli, req, sizeof req, &f->cid), 0);
	exchange(f);
	assert_int_equal(mux_next_event(f->srv, &ev), KS_ERR_AGAIN); /* taken by exchange */
	assert_int_equal(relay_add(&f->host, &f->relay, f->cid, &ops), 0);
	assert_int_equal(relay_add(&f->host, &f->relay, f->cid, &ops), KS_ERR_STATE);
	assert_ptr_equal(relay_find(&f->host, f->cid), &f->relay);
	assert_null(relay_find(&f->host, f->cid + 1));
	assert_int_equal(mux_stream_reply(f->srv, f->cid, rep, sizeof rep), 0);
	exchange(f);
	assert_int_equal(mux_next_event(f->cli, &ev), 0);
	assert_int_equal(ev.type, MUX_EV_REPLY);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	f->app = sv[1];
	c = tcp_conn_new(f->loop, sv[0], NULL, &cb);
	assert_non_null(c);
	relay_start(&f->relay, c);
	assert_int_equal(f->relay.phase, RELAY_RUNNING);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	relay_abort(&f->relay, false);
	ev_run(f->loop, EVRUN_NOWAIT); /* reap the closed tcp_conn */
	if (f->app >= 0)
		close(f->app);
	mux_free(f->cli);
	mux_free(f->srv);
	ev_loop_destroy(f->loop);
	return 0;
}

/* Application -> stream: every byte arrives, in order. */
static void up_bytes_arrive(void **state)
{
	struct fix *f = *state;
	size_t sent = 0, got = 0;

	for (int i = 0; i < ROUNDS && got < BIG; i++) {
		while (sent < BIG) {
			size_t n = BIG - sent < 8192 ? BIG - sent : 8192;
			ssize_t w;

			for (size_t k = 0; k < n; k++)
				f->buf[k] = pat(sent + k);
			w = write(f->app, f->buf, n);
			if (w <= 0)
				break;
			sent += (size_t)w;
		}
		spin(f);
		for (ssize_t n; (n = mux_stream_read(f->cli, f->cid, f->buf, sizeof f->buf)) > 0;) {
			for (ssize_t k = 0; k < n; k++)
				assert_int_equal(f->buf[k], pat(got + (size_t)k));
			got += (size_t)n;
		}
	}
	assert_int_equal(got, BIG);
	assert_int_equal(f->host.bytes_up, BIG);
}

/* Stream -> application, and backpressure: while the application does
 * not read, the relay stops taking from the stream (bounded by the tcp
 * buffers and the socket), and the stream's credit runs out. */
static void down_bytes_and_backpressure(void **state)
{
	struct fix *f = *state;
	size_t sent = 0, got = 0;
	uint64_t stalled;

	for (int i = 0; i < 200; i++) {
		for (size_t k = 0; k < 4096; k++)
			f->buf[k] = pat(sent + k);
		ssize_t w = mux_stream_write(f->cli, f->cid, f->buf, 4096);
		if (w > 0)
			sent += (size_t)w;
		spin(f);
	}
	stalled = f->host.bytes_down;
	assert_true(sent < 200 * 4096); /* the credit stopped the writer */
	assert_true(stalled <= sent);   /* nothing invented */
	assert_int_equal(mux_stream_write(f->cli, f->cid, f->buf, 1), KS_ERR_FULL);
	for (int i = 0; i < ROUNDS && got < sent; i++) {
		ssize_t n = read(f->app, f->buf, sizeof f->buf);

		if (n > 0) {
			for (ssize_t k = 0; k < n; k++)
				assert_int_equal(f->buf[k], pat(got + (size_t)k));
			got += (size_t)n;
		}
		spin(f);
	}
	assert_int_equal(got, sent);
}

/* Half-close both ways: the application's EOF becomes the stream's FIN and
 * the stream's FIN the socket's EOF; then the relay is done, once. */
static void half_close_both_ways(void **state)
{
	struct fix *f = *state;
	struct mux_event ev;
	bool fin = false, eof = false;

	assert_int_equal(shutdown(f->app, SHUT_WR), 0);
	for (int i = 0; i < ROUNDS && !fin; i++) {
		spin(f);
		while (mux_next_event(f->cli, &ev) == 0)
			fin = fin || ev.type == MUX_EV_FIN;
	}
	assert_true(fin);
	assert_int_equal(mux_stream_read(f->cli, f->cid, f->buf, sizeof f->buf), 0);
	assert_int_equal(f->done, 0); /* the other direction is still open */
	assert_int_equal(mux_stream_write(f->cli, f->cid, "tail", 4), 4);
	assert_int_equal(mux_stream_shutdown(f->cli, f->cid), 0);
	for (int i = 0; i < ROUNDS && !eof; i++) {
		ssize_t n;

		spin(f);
		n = read(f->app, f->buf, sizeof f->buf);
		if (n == 4)
			assert_memory_equal(f->buf, "tail", 4);
		eof = n == 0;
	}
	assert_true(eof);
	for (int i = 0; i < 10 && !f->done; i++)
		spin(f);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->relay.phase, RELAY_DONE);
	assert_null(relay_find(&f->host, f->cid));
	assert_int_equal(f->host.count, 0);
}

/* The peer's reset closes the socket; the application sees EOF/reset. */
static void reset_closes_socket(void **state)
{
	struct fix *f = *state;
	ssize_t n = 1;

	assert_int_equal(mux_stream_reset(f->cli, f->cid, MUX_RST_CANCEL), 0);
	for (int i = 0; i < 10 && !f->done; i++)
		spin(f);
	assert_int_equal(f->done, 1);
	for (int i = 0; i < ROUNDS && n > 0; i++)
		n = read(f->app, f->buf, sizeof f->buf);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* The application's reset (TCP error) resets the stream. */
static void socket_error_resets_stream(void **state)
{
	struct fix *f = *state;
	struct mux_event ev;
	bool reset = false;

	close(f->app);
	f->app = -1;
	assert_int_equal(mux_stream_write(f->cli, f->cid, "x", 1), 1);
	for (int i = 0; i < ROUNDS && !reset; i++) {
		spin(f);
		while (mux_next_event(f->cli, &ev) == 0)
			reset = reset || ev.type == MUX_EV_RESET;
	}
	assert_true(reset);
	assert_int_equal(f->done, 1);
}

/* relay_reset ends both sides: the stream is reset towards the peer, the
 * socket aborted (its RST is tcp_conn_abort's, tested in test_io_tcp; a
 * socketpair has none), done is called once. */
static void relay_reset_ends_both(void **state)
{
	struct fix *f = *state;
	struct mux_event ev;
	bool reset = false;
	ssize_t n = 1;

	relay_reset(&f->relay);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->relay.phase, RELAY_DONE);
	assert_int_equal(f->host.count, 0);
	assert_true(f->host.dirty);
	relay_reset(&f->relay); /* not running any more: no-op */
	assert_int_equal(f->done, 1);
	for (int i = 0; i < 10 && !reset; i++) {
		spin(f);
		while (mux_next_event(f->cli, &ev) == 0)
			reset = reset || (ev.type == MUX_EV_RESET && ev.id == f->cid);
	}
	assert_true(reset);
	for (int i = 0; i < ROUNDS && n > 0; i++)
		n = read(f->app, f->buf, sizeof f->buf);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void pending_gone(struct relay *r, void *arg)
{
	int *n = arg;

	(void)r;
	(*n)++;
}

/* A lost session ends running relays without touching the (freed) mux
 * and hands pending ones to the owner. */
static void host_lost(void **state)
{
	struct fix *f = *state;
	struct relay pend;
	struct relay_ops ops = { relay_done, f };
	int pending = 0;

	assert_int_equal(relay_add(&f->host, &pend, 99, &ops), 0);
	assert_int_equal(f->host.count, 2);
	mux_free(f->srv);
	f->srv = NULL; /* srv_mux now says the session is gone */
	relay_host_lost(&f->host, pending_gone, &pending);
	assert_int_equal(pending, 1);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->host.count, 0);
	assert_null(relay_host_mux(&f->host));
	assert_int_equal(pend.phase, RELAY_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(up_bytes_arrive, setup, teardown),
		cmocka_unit_test_setup_teardown(down_bytes_and_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(half_close_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_closes_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(socket_error_resets_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(relay_reset_ends_both, setup, teardown),
		cmocka_unit_test_setup_teardown(host_lost, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
