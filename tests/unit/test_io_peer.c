/* test_io_peer.c - the UDP side of the daemons on loopback: datagrams
 * queued anywhere leave in the before-sleep flush (batched: fewer sendmmsg
 * calls than datagrams), arrive through on_datagram, and the one timer
 * fires at the deadline before_sleep returns, once, and not at all when
 * there is none. Every wait is a loop run bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ev.h>
#include <string.h>

#include "io/addr.h"
#include "io/clock.h"
#include "io/peer.h"

struct side {
	struct peer *p;
	uint64_t deadline; /* what before_sleep answers */
	int rx, timers, prepares;
	uint8_t last[64];
	size_t last_len;
};

static void on_dgram(void *arg, const struct udp_dgram *d, uint64_t now)
{
	struct side *s = arg;

	(void)now;
	s->rx++;
	s->last_len = d->len < sizeof s->last ? d->len : sizeof s->last;
	memcpy(s->last, d->data, s->last_len);
}

static void on_timer(void *arg, uint64_t now)
{
	struct side *s = arg;

	(void)now;
	s->timers++;
	s->deadline = PEER_NEVER;
}

static uint64_t before_sleep(void *arg, uint64_t now)
{
	struct side *s = arg;

	(void)now;
	s->prepares++;
	return s->deadline;
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* run_until runs the loop until *flag >= want or ms pass. */
static void run_until(struct ev_loop *loop, const int *flag, int want, double ms)
{
	ev_timer guard;

	ev_timer_init(&guard, on_guard, ms / 1000.0, 0.0);
	ev_timer_start(loop, &guard);
	while (*flag < want && ev_is_active(&guard))
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
}

struct fix {
	struct ev_loop *loop;
	struct side a, b;
	struct sockaddr_storage baddr;
};

static int setup(void **state)
{
	static struct fix fx;
	struct fix *f = &fx;
	struct sockaddr_storage any;
	struct peer_cb ca = { on_dgram, on_timer, before_sleep, &f->a };
	struct peer_cb cb = { on_dgram, on_timer, before_sleep, &f->b };
	char err[128];

	memset(f, 0, sizeof *f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, err, sizeof err), 0);
	f->a.deadline = f->b.deadline = PEER_NEVER;
	f->a.p = peer_new(f->loop, &any, &ca, err, sizeof err);
	f->b.p = peer_new(f->loop, &any, &cb, err, sizeof err);
	assert_non_null(f->a.p);
	assert_non_null(f->b.p);
	assert_int_equal(peer_local_addr(f->b.p, &f->baddr), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	peer_free(f->a.p);
	peer_free(f->b.p);
	ev_loop_destroy(f->loop);
	return 0;
}

static void datagrams_batch_and_arrive(void **state)
{
	struct fix *f = *state;
	struct peer_stats st;
	uint8_t d[100];

	for (int i = 0; i < 100; i++) {
		memset(d, i, sizeof d);
		assert_int_equal(peer_send(f->a.p, d, (size_t)i + 1, &f->baddr), 0);
	}
	run_until(f->loop, &f->b.rx, 100, 3000);
	assert_int_equal(f->b.rx, 100);
	assert_int_equal(f->b.last_len, 64); /* capped copy of the 100-byte one */
	assert_int_equal(f->b.last[0], 99);
	peer_stats(f->a.p, &st);
	assert_int_equal(st.tx->sent, 100);
	assert_true(st.tx->calls < 100); /* sendmmsg took several per call */
	peer_stats(f->b.p, &st);
	assert_int_equal(st.rx->datagrams, 100);
	assert_true(st.rx->calls < 100);
	assert_int_equal(peer_send(f->a.p, d, 0, &f->baddr), KS_ERR_TOOBIG);
}

static void one_timer_at_the_deadline(void **state)
{
	struct fix *f = *state;
	struct peer_stats st;
	uint64_t t0 = clock_mono_ms();

	f->b.deadline = t0 + 30;
	run_until(f->loop, &f->b.timers, 1, 3000);
	assert_int_equal(f->b.timers, 1);
	assert_true(clock_mono_ms() >= t0 + 29);
	/* No deadline now: nothing fires while the loop idles. */
	run_until(f->loop, &f->b.timers, 2, 150);
	assert_int_equal(f->b.timers, 1);
	assert_int_equal(f->a.timers, 0);
	peer_stats(f->b.p, &st);
	assert_int_equal(st.timer_fires, 1);
	assert_true(f->b.prepares > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(datagrams_batch_and_arrive, setup, teardown),
		cmocka_unit_test_setup_teardown(one_timer_at_the_deadline, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
