/* test_io_loop.c - a daemon's turn of the loop on loopback: datagrams a
 * callback queues leave in the before-sleep flush and arrive through the
 * attached on_datagram; rounds run while they do work, at most
 * DAEMON_EVENT_ROUNDS per turn, in the order before, rounds, flush,
 * deferred frees, after; the one timer fires at the deadline, once, and
 * not at all when there is none; a socket detached inside its own
 * callback gets no more of its batch. Every wait is a loop run bounded by
 * a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ev.h>
#include <string.h>

#include "base/limits.h"
#include "io/addr.h"
#include "io/clock.h"
#include "io/loop.h"
#include "io/peer.h"

struct side {
	struct loop *l;
	struct peer *p;
	uint64_t deadline; /* what cb.deadline answers */
	int work;          /* rounds left that report work */
	int rx, timers, turns, rounds, befores, afters, freed;
	int freed_at_after; /* freed when after last ran */
	int detach_after;   /* detach p after this many datagrams (0: never) */
	char order[64];     /* one letter per step of the last turn */
	size_t olen;
};

static void mark(struct side *s, char c)
{
	if (s->olen + 1 < sizeof s->order)
		s->order[s->olen++] = c;
	s->order[s->olen] = '\0';
}

static void on_dgram(const struct udp_dgram *d, uint64_t now, void *arg)
{
	struct side *s = arg;

	(void)d, (void)now;
	s->rx++;
	if (s->detach_after && s->rx == s->detach_after)
		loop_detach(s->l, s->p);
}

static void before(uint64_t now, void *arg)
{
	struct side *s = arg;

	(void)now;
	s->befores++;
	s->olen = 0;
	mark(s, 'b');
}

static bool round_once(uint64_t now, void *arg)
{
	struct side *s = arg;

	(void)now;
	s->rounds++;
	mark(s, 'r');
	if (s->work > 0) {
		s->work--;
		return true;
	}
	return false;
}

static void after(uint64_t now, void *arg)
{
	struct side *s = arg;

	(void)now;
	s->afters++;
	s->turns++;
	s->freed_at_after = s->freed;
	mark(s, 'a');
}

static uint64_t deadline(void *arg)
{
	const struct side *s = arg;

	return s->deadline;
}

static void on_timer(uint64_t now, void *arg)
{
	struct side *s = arg;

	(void)now;
	s->timers++;
	s->deadline = KS_NEVER;
}

struct node {
	struct loop_deferred d;
	struct side *s;
};

static void node_free(struct loop_deferred *d)
{
	struct node *n = (struct node *)(void *)d;

	n->s->freed++;
	mark(n->s, 'f');
}

static void on_guard(struct ev_loop *ev, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(ev, EVBREAK_ALL);
}

/* run_until runs the loop until *flag >= want or ms pass. */
static void run_until(struct ev_loop *ev, const int *flag, int want, double ms)
{
	ev_timer guard;

	ev_timer_init(&guard, on_guard, ms / 1000.0, 0.0);
	ev_timer_start(ev, &guard);
	while (*flag < want && ev_is_active(&guard))
		ev_run(ev, EVRUN_ONCE);
	ev_timer_stop(ev, &guard);
}

struct fix {
	struct ev_loop *ev;
	struct side a, b;
	struct sockaddr_storage baddr;
};

static void side_init(struct fix *f, struct side *s)
{
	struct sockaddr_storage any;
	const struct loop_cb cb = { before, round_once, after, deadline, on_timer, s };
	char err[128];

	memset(s, 0, sizeof *s);
	s->deadline = KS_NEVER;
	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, err, sizeof err), 0);
	s->l = loop_new(f->ev, &cb);
	assert_non_null(s->l);
	s->p = peer_new(&any, err, sizeof err);
	assert_non_null(s->p);
	assert_int_equal(loop_attach(s->l, s->p, on_dgram, s), 0);
}

static int setup(void **state)
{
	static struct fix fx;
	struct fix *f = &fx;

	memset(f, 0, sizeof *f);
	f->ev = ev_loop_new(EVFLAG_AUTO);
	side_init(f, &f->a);
	side_init(f, &f->b);
	assert_int_equal(peer_local_addr(f->b.p, &f->baddr), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	loop_free(f->a.l);
	loop_free(f->b.l);
	peer_free(f->a.p);
	peer_free(f->b.p);
	ev_loop_destroy(f->ev);
	return 0;
}

static void queued_datagrams_leave_in_the_flush(void **state)
{
	struct fix *f = *state;
	struct peer_stats st;
	uint8_t d[100];

	for (int i = 0; i < 100; i++) {
		memset(d, i, sizeof d);
		assert_int_equal(peer_send(f->a.p, d, (size_t)i + 1, &f->baddr), 0);
	}
	run_until(f->ev, &f->b.rx, 100, 3000);
	assert_int_equal(f->b.rx, 100);
	peer_stats(f->a.p, &st);
	assert_int_equal(st.tx.sent, 100);
	assert_true(st.tx.calls < 100); /* one flush per turn, batched */
}

static void rounds_run_while_there_is_work(void **state)
{
	struct fix *f = *state;
	struct node n = { .s = &f->a };
	int rounds;

	/* An idle turn: one round. */
	run_until(f->ev, &f->a.turns, 1, 1000);
	rounds = f->a.rounds;
	assert_int_equal(rounds, 1);
	assert_string_equal(f->a.order, "bra");
	/* Three rounds of work: four rounds (the last finds none), and the
	 * deferred free runs after the rounds, before after. */
	f->a.work = 3;
	loop_defer(f->a.l, &n.d, node_free);
	run_until(f->ev, &f->a.turns, 2, 1000);
	assert_int_equal(f->a.rounds - rounds, 4);
	assert_int_equal(f->a.freed, 1);
	assert_int_equal(f->a.freed_at_after, 1);
	assert_string_equal(f->a.order, "brrrrfa");
	/* Endless work: DAEMON_EVENT_ROUNDS per turn, and the loop comes back
	 * at once (the timer is armed for now, not the deadline). */
	f->a.work = 1000;
	rounds = f->a.rounds;
	run_until(f->ev, &f->a.turns, 4, 1000);
	assert_int_equal(f->a.rounds - rounds, 2 * DAEMON_EVENT_ROUNDS);
	assert_true(f->a.work > 0);
	f->a.work = 0;
}

static void one_timer_at_the_deadline(void **state)
{
	struct fix *f = *state;
	uint64_t t0 = clock_mono_ms();

	f->b.deadline = t0 + 30;
	run_until(f->ev, &f->b.timers, 1, 3000);
	assert_int_equal(f->b.timers, 1);
	assert_true(clock_mono_ms() >= t0 + 29);
	/* No deadline now: nothing fires while the loop idles. */
	run_until(f->ev, &f->b.timers, 2, 150);
	assert_int_equal(f->b.timers, 1);
	assert_int_equal(f->a.timers, 0);
	assert_int_equal(loop_timer_fires(f->b.l), 1);
	assert_int_equal(loop_timer_fires(f->a.l), 0);
	assert_true(f->b.befores > 0 && f->b.afters == f->b.befores);
}

static void detached_inside_its_callback(void **state)
{
	struct fix *f = *state;
	uint8_t d[8] = { 0 };

	f->b.detach_after = 3;
	for (int i = 0; i < 10; i++)
		assert_int_equal(peer_send(f->a.p, d, sizeof d, &f->baddr), 0);
	/* The ten arrive in one batch (loopback); the third detaches. */
	run_until(f->ev, &f->b.rx, 3, 3000);
	run_until(f->ev, &f->b.rx, 4, 150);
	assert_int_equal(f->b.rx, 3);
	/* Attached again, it reads what is left in the socket. */
	assert_int_equal(loop_attach(f->b.l, f->b.p, on_dgram, &f->b), 0);
	f->b.detach_after = 0;
	for (int i = 0; i < 2; i++)
		assert_int_equal(peer_send(f->a.p, d, sizeof d, &f->baddr), 0);
	run_until(f->ev, &f->b.rx, 5, 3000);
	assert_true(f->b.rx >= 5);
	loop_detach(f->b.l, NULL);
	loop_detach(NULL, f->b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(queued_datagrams_leave_in_the_flush, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(rounds_run_while_there_is_work, setup, teardown),
		cmocka_unit_test_setup_teardown(one_timer_at_the_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(detached_inside_its_callback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
