/* loop.c - a daemon's turn of the event loop (see loop.h). */
#include "io/loop.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/peer.h"

/* One watched socket. The slot never moves (the watchers point at it);
 * gen changes on every detach, so a batch being delivered notices. */
struct slot {
	struct loop *l;
	struct peer *p; /* borrowed; NULL: free slot */
	loop_datagram_fn *fn;
	void *arg;
	ev_io rio, wio;
	uint64_t gen;
};

struct loop {
	struct ev_loop *ev; /* borrowed */
	struct loop_cb cb;
	ev_prepare prep;
	ev_timer timer;
	uint64_t timer_at; /* armed for (absolute ms); KS_NEVER: stopped */
	uint64_t timer_fires;
	struct loop_deferred *deferred;
	struct slot slots[LOOP_PEERS_MAX];
};

static void on_read(struct ev_loop *ev, ev_io *w, int revents)
{
	struct slot *s = w->data;
	struct peer *p = s->p;
	uint64_t gen = s->gen;
	ssize_t n = peer_read(p);
	uint64_t now = clock_mono_ms();

	(void)ev, (void)revents;
	if (n < 0) {
		log_limited(LOG_LEVEL_ERROR, "recvmmsg: %s", strerror(errno));
		return;
	}
	/* A callback may detach this socket (and even attach another here). */
	for (ssize_t i = 0; i < n && s->gen == gen; i++)
		s->fn(peer_dgram(p, (size_t)i), now, s->arg);
}

static void on_write(struct ev_loop *ev, ev_io *w, int revents)
{
	struct slot *s = w->data;

	(void)revents;
	if (peer_flush(s->p) == 0)
		ev_io_stop(ev, w);
}

static void on_timer(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct loop *l = w->data;

	(void)ev, (void)revents;
	l->timer_fires++;
	l->timer_at = KS_NEVER;
	l->cb.on_timer(clock_mono_ms(), l->cb.arg);
}

static void arm(struct loop *l, uint64_t at, uint64_t now)
{
	if (at == l->timer_at && (at == KS_NEVER || ev_is_active(&l->timer)))
		return;
	ev_timer_stop(l->ev, &l->timer);
	l->timer_at = at;
	if (at == KS_NEVER)
		return;
	ev_timer_set(&l->timer, at > now ? (double)(at - now) / 1000.0 : 0.0, 0.0);
	ev_timer_start(l->ev, &l->timer);
}

/* Step 2: rounds while there is work, at most DAEMON_EVENT_ROUNDS. */
static bool rounds(struct loop *l, uint64_t now)
{
	bool any = true;

	for (int round = 0; round < DAEMON_EVENT_ROUNDS && any; round++)
		any = l->cb.round(now, l->cb.arg);
	return any;
}

/* Step 3: one flush per socket; a refused rest waits for EV_WRITE. */
static void flush_peers(struct loop *l)
{
	for (size_t i = 0; i < LOOP_PEERS_MAX; i++) {
		struct slot *s = &l->slots[i];

		if (s->p && !ev_is_active(&s->wio) && peer_pending(s->p) > 0 &&
		    peer_flush(s->p) == KS_ERR_AGAIN)
			ev_io_start(l->ev, &s->wio);
	}
}

void loop_reap(struct loop *l)
{
	while (l->deferred) {
		struct loop_deferred *d = l->deferred;

		l->deferred = d->next;
		d->free_fn(d);
	}
}

/* Before the loop sleeps: steps 1 to 6 of loop.h. */
static void on_prepare(struct ev_loop *ev, ev_prepare *w, int revents)
{
	struct loop *l = w->data;
	uint64_t now;
	bool busy;

	(void)revents;
	ev_now_update(ev); /* so the timer is not armed from a stale base */
	now = clock_mono_ms();
	if (l->cb.before)
		l->cb.before(now, l->cb.arg);
	busy = rounds(l, now);
	flush_peers(l);
	loop_reap(l);
	if (l->cb.after)
		l->cb.after(now, l->cb.arg);
	/* Work left after the last round: come back at once. */
	arm(l, busy ? now : l->cb.deadline(l->cb.arg), now);
}

struct loop *loop_new(struct ev_loop *ev, const struct loop_cb *cb)
{
	struct loop *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
	l->ev = ev;
	l->cb = *cb;
	l->timer_at = KS_NEVER;
	ev_prepare_init(&l->prep, on_prepare);
	ev_timer_init(&l->timer, on_timer, 0.0, 0.0);
	l->prep.data = l->timer.data = l;
	for (size_t i = 0; i < LOOP_PEERS_MAX; i++)
		l->slots[i].l = l;
	ev_prepare_start(ev, &l->prep);
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < LOOP_PEERS_MAX; i++)
		if (l->slots[i].p)
			loop_detach(l, l->slots[i].p);
	ev_prepare_stop(l->ev, &l->prep);
	ev_timer_stop(l->ev, &l->timer);
	loop_reap(l);
	free(l);
}

int loop_attach(struct loop *l, struct peer *p, loop_datagram_fn *fn, void *arg)
{
	for (size_t i = 0; i < LOOP_PEERS_MAX; i++) {
		struct slot *s = &l->slots[i];

		if (s->p)
			continue;
		s->p = p;
		s->fn = fn;
		s->arg = arg;
		ev_io_init(&s->rio, on_read, peer_fd(p), EV_READ);
		ev_io_init(&s->wio, on_write, peer_fd(p), EV_WRITE);
		s->rio.data = s->wio.data = s;
		ev_io_start(l->ev, &s->rio);
		return 0;
	}
	return KS_ERR_FULL;
}

void loop_detach(struct loop *l, struct peer *p)
{
	for (size_t i = 0; l && p && i < LOOP_PEERS_MAX; i++) {
		struct slot *s = &l->slots[i];

		if (s->p != p)
			continue;
		ev_io_stop(l->ev, &s->rio);
		ev_io_stop(l->ev, &s->wio);
		s->p = NULL;
		s->gen++;
	}
}

void loop_defer(struct loop *l, struct loop_deferred *d, void (*free_fn)(struct loop_deferred *d))
{
	d->free_fn = free_fn;
	d->next = l->deferred;
	l->deferred = d;
}

uint64_t loop_timer_fires(const struct loop *l) { return l->timer_fires; }
