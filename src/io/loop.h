/* loop.h - a daemon's turn of the event loop: the work before the loop
 * sleeps, the one timer, deferred frees, and the watchers of its UDP
 * sockets.
 *
 * A daemon makes one struct loop on its libev loop. Before the loop
 * sleeps (one ev_prepare watcher) the loop:
 *   1. calls cb.before once (work that may raise events: probes, hints);
 *   2. runs rounds: cb.round takes the cores' events, pumps the sessions
 *      whose streams moved and ends its batch with one flush of the cores;
 *      it returns true when it did work, and the loop runs another round,
 *      at most DAEMON_EVENT_ROUNDS in all;
 *   3. sends every attached socket's queue once (sendmmsg); what the
 *      kernel refused with EAGAIN leaves when the fd is writable;
 *   4. frees what was handed to loop_defer since the last turn (step two
 *      of a teardown: no callback up the stack can still hold it);
 *   5. calls cb.after (a drain check, memory trimming), may be NULL;
 *   6. arms the one timer at cb.deadline, or at once when the last round
 *      still did work. The timer is re-armed only when the deadline moves
 *      and stopped at KS_NEVER, so an idle daemon has no wake-ups before
 *      its next real event; when it fires it calls cb.on_timer.
 * A readable socket gives one recvmmsg batch per wake-up to the
 * on_datagram given at loop_attach. Datagrams a callback queues with
 * peer_send leave in step 3; no callback runs inside the peer module.
 * Callbacks get their context last. Times are clock_mono_ms.
 */
#ifndef KCPSOCKS_LOOP_H
#define KCPSOCKS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/deadline.h"
#include "base/err.h"
#include "io/udp.h"

struct ev_loop;
struct peer;

struct loop_cb {
	void (*before)(uint64_t now, void *arg);   /* may be NULL */
	bool (*round)(uint64_t now, void *arg);    /* required */
	void (*after)(uint64_t now, void *arg);    /* may be NULL */
	uint64_t (*deadline)(void *arg);           /* required; KS_NEVER: none */
	void (*on_timer)(uint64_t now, void *arg); /* required */
	void *arg;
};

typedef void loop_datagram_fn(const struct udp_dgram *d, uint64_t now, void *arg);

/* A node of the deferred-free list, embedded in the object to free. */
struct loop_deferred {
	struct loop_deferred *next;
	void (*free_fn)(struct loop_deferred *d);
};

struct loop;

/* loop_new starts the prepare watcher on ev (borrowed). Returns NULL on no
 * memory. */
struct loop *loop_new(struct ev_loop *ev, const struct loop_cb *cb);

/* loop_free stops every watcher and runs the deferred frees. Attached
 * peers stay open (their owner frees them). NULL is a no-op. Not from
 * inside a loop callback. */
void loop_free(struct loop *l);

/* loop_attach watches p (borrowed) for reading and, when a flush was
 * refused, writing; its datagrams go to fn(d, now, arg). Returns 0, or
 * KS_ERR_FULL (LOOP_PEERS_MAX attached already). */
KS_MUST_CHECK int loop_attach(struct loop *l, struct peer *p, loop_datagram_fn *fn, void *arg);

/* loop_detach stops watching p (a no-op if it is not attached, or if l or
 * p is NULL); its queue
 * is not sent. Safe from any callback, p's own on_datagram included: the
 * rest of the batch is dropped. Call before peer_free. */
void loop_detach(struct loop *l, struct peer *p);

/* loop_defer puts d on the deferred-free list: free_fn(d) runs in step 4
 * of the next turn (or in loop_free). d must stay valid until then. */
void loop_defer(struct loop *l, struct loop_deferred *d, void (*free_fn)(struct loop_deferred *d));

/* loop_reap runs the deferred frees now. Only where no callback up the
 * stack can hold a deferred object (a daemon's drain start or teardown). */
void loop_reap(struct loop *l);

/* loop_timer_fires counts the timer's wake-ups (for /metrics). */
uint64_t loop_timer_fires(const struct loop *l);

#endif
