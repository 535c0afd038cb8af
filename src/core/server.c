/* server.c - the server's sessions: table, per-sid sessions, one deadline,
 * one event queue. Steps S1.. refer to docs/PROTOCOL.md (session) section 5.
 *
 * Each live session has an entry: as its table slot's owner pointer (so
 * a datagram, and a call by sid, costs the table's one lookup and no
 * other), in the deadline heap, on the event queue while it may have events, and on
 * the flush list from a datagram's payload to the end of the batch. Ending a session is two steps:
 * it leaves the table and the heap at once (unreachable for datagrams and timers), and its memory
 * goes only after its LOST event was taken.
 */
#include "core/server.h"

#include "base/heap.h"
#include "base/list.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct server *srv; /* borrowed: the owner */
	struct session *s;  /* owned */
	uint64_t sid;
	uint32_t user;
	size_t heap_idx; /* position in srv->heap while live */
	bool closed;     /* out of the table and the heap; waiting for LOST */
	bool queued;     /* on the event queue */
	bool supersede;  /* on first payload: close the user's others (one_per_user)
	                    or those of its client instance (6.3) */
	struct entry *next_ev;
	struct list_node owed; /* on srv->owed: took a payload this batch */
	void *owner;           /* borrowed: the daemon's (server_set_owner) */
	uint64_t resp_at;      /* E1: when the response left; KS_NEVER once confirmed */
};

struct server {
	struct sessions *table; /* owned */
	struct mux_config mux;
	bool mux_set;
	struct transport_local local; /* every session's KCP policy */
	const struct rng_source *rng; /* borrowed */
	session_output_fn output;
	void *output_user; /* borrowed */
	session_slot_fn slot;
	session_datagram_fn datagram;
	void *datagram_user; /* borrowed */
	bool one_per_user;
	struct entry **due; /* owned array of cap: the deadline heap's storage; its
	                       entries (the live sessions) are owned */
	struct heap heap;   /* over due[], earliest first */
	struct list owed;   /* the flush list (E6): sessions that took a payload */
	size_t cap;
	struct entry *ev_head, *ev_tail; /* event queue, FIFO */
	uint64_t dropped, created, lost[SESSION_LOST_REASONS];
	struct session_scratch scratch; /* shared by every session, one call at a time */
};

/* --- the deadline heap ------------------------------------------------------ */

static bool due_before(const void *x, const void *y, void *ctx)
{
	(void)ctx;
	return session_next_deadline((*(struct entry *const *)x)->s) <
	       session_next_deadline((*(struct entry *const *)y)->s);
}

static void due_moved(void *elem, size_t i, void *ctx)
{
	(void)ctx;
	(*(struct entry **)elem)->heap_idx = i;
}

static const struct heap_ops due_ops = { sizeof(struct entry *), due_before, due_moved };

/* refile restores heap order after e's deadline changed. */
static void refile(struct server *srv, struct entry *e)
{
	heap_fix(&srv->heap, &due_ops, NULL, e->heap_idx);
}

static void unfile(struct server *srv, struct entry *e)
{
	heap_remove(&srv->heap, &due_ops, NULL, e->heap_idx, NULL);
}

/* --- entries ---------------------------------------------------------------- */

static void enqueue(struct server *srv, struct entry *e)
{
	if (e->queued)
		return;
	e->queued = true;
	e->next_ev = NULL;
	if (srv->ev_tail)
		srv->ev_tail->next_ev = e;
	else
		srv->ev_head = e;
	srv->ev_tail = e;
}

/* The live session sid: the table's one lookup, its slot's owner. */
static struct entry *lookup(const struct server *srv, uint64_t sid)
{
	const struct sessions_slot *sl = sessions_get(srv->table, sid);
	struct entry *e = sl ? sl->owner : NULL;

	return e && e->sid == sid && !e->closed ? e : NULL;
}

/* The flush list: O(1) in and out, so a session that ends leaves it at
 * once and the flush never meets a freed entry. */
static void owe(struct server *srv, struct entry *e)
{
	if (!list_linked(&srv->owed, &e->owed))
		list_push(&srv->owed, &e->owed);
}

static void unowe(struct server *srv, struct entry *e)
{
	if (list_linked(&srv->owed, &e->owed))
		list_remove(&srv->owed, &e->owed);
}

/* S5: unreachable now, freed when its LOST has been taken. */
static void close_entry(struct server *srv, struct entry *e, enum session_lost_reason reason)
{
	if (e->closed)
		return;
	session_end(e->s, reason);
	(void)sessions_close(srv->table, e->sid); /* already gone if superseded */
	unfile(srv, e);
	unowe(srv, e);
	e->closed = true;
	srv->lost[reason]++;
	enqueue(srv, e);
}

/* touched: a session was touched; re-file it or collect it. */
static void touched(struct server *srv, struct entry *e)
{
	if (e->closed)
		return;
	if (session_state(e->s) == SESSION_CLOSED) {
		/* The session ended itself (idle, dead link, protocol). */
		close_entry(srv, e, session_last_lost(e->s));
		return;
	}
	refile(srv, e);
	enqueue(srv, e);
}

static void on_changed(struct session *s, void *ctx)
{
	struct entry *e = ctx;

	(void)s;
	touched(e->srv, e);
}

/* --- life cycle ---------------------------------------------------------------- */

int server_new(struct server **out, const struct server_config *cfg)
{
	struct server *srv;
	int rc;

	if (!cfg->rng || !cfg->output)
		return KS_ERR_INVAL;
	if (cfg->mux && (rc = mux_config_check(cfg->mux)) != 0)
		return rc;
	srv = calloc(1, sizeof *srv);
	if (!srv)
		return KS_ERR_NOMEM;
	rc = sessions_new(&srv->table, &cfg->table);
	if (rc != 0)
		goto err;
	rc = KS_ERR_NOMEM;
	srv->cap = cfg->table.capacity;
	srv->due = calloc(srv->cap, sizeof *srv->due);
	if (!srv->due)
		goto err;
	srv->heap.a = srv->due;
	if (cfg->mux) {
		srv->mux = *cfg->mux;
		srv->mux_set = true;
	}
	srv->local = cfg->local;
	srv->rng = cfg->rng;
	srv->output = cfg->output;
	srv->output_user = cfg->output_user;
	srv->slot = cfg->slot;
	srv->datagram = cfg->datagram;
	srv->datagram_user = cfg->datagram_user;
	srv->one_per_user = cfg->one_session_per_user;
	*out = srv;
	return 0;
err:
	free(srv->due);
	sessions_free(srv->table);
	free(srv);
	return rc;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (struct entry *e = srv->ev_head, *n; e; e = n) {
		n = e->next_ev;
		if (e->closed) {
			session_free(e->s);
			free(e);
		}
	}
	for (size_t i = 0; i < srv->heap.n; i++) {
		session_free(srv->due[i]->s);
		free(srv->due[i]);
	}
	free(srv->due);
	sessions_free(srv->table);
	free(srv);
}

/* --- datagrams -------------------------------------------------------------- */

/* S3: one user, one session (when configured): older ones of the user go. */
static void close_user_others(struct server *srv, struct entry *keep)
{
	bool again = true;

	/* Closing re-orders the heap, so rescan after each; a user holds at
	 * most SESSIONS_PER_USER_MAX sessions. */
	while (again) {
		again = false;
		for (size_t i = 0; i < srv->heap.n; i++) {
			struct entry *e = srv->due[i];

			if (e != keep && e->user == keep->user &&
			    (srv->one_per_user ||
			     sessions_same_instance(srv->table, e->sid, keep->sid))) {
				close_entry(srv, e, SESSION_LOST_SUPERSEDED);
				again = true;
				break;
			}
		}
	}
}

static int make_entry(struct server *srv, uint64_t sid, uint64_t now, struct entry **out)
{
	struct entry *e = calloc(1, sizeof *e);
	struct session_server_config sc = {
		.table = srv->table,
		.sid = sid,
		.owner = e,
		.mux = srv->mux_set ? &srv->mux : NULL,
		.local = srv->local,
		.rng = srv->rng,
		.scratch = &srv->scratch,
		.output = srv->output,
		.output_user = srv->output_user,
		.slot = srv->slot,
		.changed = on_changed,
		.changed_ctx = e,
		.datagram = srv->datagram,
		.datagram_user = srv->datagram_user,
	};
	int rc;

	if (!e)
		return KS_ERR_NOMEM;
	rc = session_server_new(&e->s, &sc, now);
	if (rc != 0) {
		free(e);
		return rc;
	}
	e->srv = srv;
	e->sid = sid;
	e->user = sessions_get(srv->table, sid)->user;
	*out = e;
	return 0;
}

/* S2: a handshake was accepted: the superseded session goes first, then
 * the new one is made, and only then does the response leave. */
static int on_new(struct server *srv, const struct sessions_event *ev,
                  const struct sessions_addr *from, uint64_t now)
{
	/* The superseded session's slot is the new one's now: its entry
	 * comes with the event. */
	struct entry *e, *old = ev->superseded ? ev->owner : NULL;
	int rc;

	if (old)
		close_entry(srv, old, SESSION_LOST_SUPERSEDED);
	rc = make_entry(srv, ev->sid, now, &e);
	if (rc != 0) {
		(void)sessions_close(srv->table, ev->sid);
		srv->dropped++;
		return rc;
	}
	heap_push(&srv->heap, &due_ops, NULL, &e);
	enqueue(srv, e);
	srv->created++;
	/* One session per user, or per client instance (docs/PROTOCOL.md,
	 * secure 6.3): the older ones close when this one carries its first
	 * payload, not now. A client that merely probed during an
	 * outage (docs/PROTOCOL.md, session L3) keeps using its old session,
	 * and this one idles out; a restarted client sends at once. */
	e->supersede = srv->one_per_user || sessions_get(srv->table, ev->sid)->has_instance;
	e->resp_at = now;
	if (srv->output(srv->scratch.open, ev->len, from, srv->output_user) < 0)
		srv->dropped++; /* the client retries its init */
	return 0;
}

/* S4, secure 6.2: a new address spoke for a session; ask it to prove it
 * receives, within the table's anti-amplification budget. */
static void challenge(struct server *srv, uint64_t sid, uint64_t now)
{
	const struct sessions_addr *to;
	ssize_t n = sessions_seal_challenge(srv->table, sid, srv->rng, now, srv->scratch.seal,
	                                    sizeof srv->scratch.seal, &to);

	if (n > 0 && srv->output(srv->scratch.seal, (size_t)n, to, srv->output_user) < 0)
		srv->dropped++;
}

int server_on_datagram(struct server *srv, const struct sessions_addr *from, const uint8_t *d,
                       size_t len, uint64_t now, uint64_t now_unix_ms)
{
	struct sessions_event ev;
	struct entry *e;
	int rc;

	/* S1: the table authenticates; nothing is sent for a refusal. */
	rc = sessions_on_datagram(srv->table, from, d, len, now, now_unix_ms, srv->rng,
	                          srv->scratch.open, sizeof srv->scratch.open, &ev);
	if (rc != 0) {
		srv->dropped++;
		return rc;
	}
	if (ev.kind == SESSIONS_EV_NEW)
		return on_new(srv, &ev, from, now);
	if (ev.kind == SESSIONS_EV_REFUSED) {
		/* The sender proved its PSK: it hears why (handshake 4.6). */
		if (srv->output(srv->scratch.open, ev.len, from, srv->output_user) < 0)
			srv->dropped++;
		return KS_ERR_UNSUPPORTED;
	}
	/* S4: the payload of an established session: its entry came with it
	 * (the table slot's owner pointer), no second lookup. */
	e = ev.owner;
	if (!e || e->sid != ev.sid)
		return KS_ERR_CLOSED;
	if (e->supersede) {
		e->supersede = false;
		close_user_others(srv, e);
	}
	if (e->resp_at != KS_NEVER) { /* E1: the first datagram confirms the response */
		session_seed_rtt(e->s, now - e->resp_at, true);
		e->resp_at = KS_NEVER;
	}
	if (ev.len) {
		(void)session_on_payload(e->s, srv->scratch.open, ev.len, now);
		owe(srv, e); /* E6: its ACKs leave in server_flush, with the batch's */
	}
	if (ev.moved) /* secure 6.2: resend what went to the old address */
		session_on_peer_moved(e->s, now);
	touched(srv, e);
	if (ev.challenge && !e->closed)
		challenge(srv, ev.sid, now);
	return 0;
}

void server_on_timer(struct server *srv, uint64_t now)
{
	/* Each live session is run at most once per call. */
	for (size_t n = srv->heap.n; n > 0 && srv->heap.n > 0; n--) {
		struct entry *e = srv->due[0];

		if (session_next_deadline(e->s) > now)
			break;
		session_on_timer(e->s, now, 0);
		touched(srv, e);
	}
}

/* Only the sessions that took a payload since the last flush: the batch's
 * ACKs (and what they let out) leave; timers stay the timer's business. A
 * session on the list that was pumped since owes nothing, and its flush is
 * a no-op. */
void server_flush(struct server *srv, uint64_t now)
{
	struct entry *e;

	while ((e = list_first(&srv->owed, struct entry, owed)) != NULL) {
		unowe(srv, e);
		session_flush(e->s, now); /* re-files it (on_changed) */
	}
}

uint64_t server_next_deadline(const struct server *srv)
{
	return srv->heap.n ? session_next_deadline(srv->due[0]->s) : KS_NEVER;
}

/* --- events and access ---------------------------------------------------------- */

int server_next_event(struct server *srv, struct server_event *ev)
{
	struct entry *e;

	while ((e = srv->ev_head) != NULL) {
		if (session_next_event(e->s, &ev->ev) == 0) {
			ev->sid = e->sid;
			ev->session = e->closed ? NULL : e->s;
			ev->owner = e->owner;
			return 0;
		}
		srv->ev_head = e->next_ev;
		if (!srv->ev_head)
			srv->ev_tail = NULL;
		e->queued = false;
		if (e->closed) {
			session_free(e->s);
			free(e);
		}
	}
	return KS_ERR_AGAIN;
}

struct session *server_session(struct server *srv, uint64_t sid)
{
	struct entry *e = lookup(srv, sid);

	return e ? e->s : NULL;
}

int server_close(struct server *srv, uint64_t sid)
{
	struct entry *e = lookup(srv, sid);

	if (!e)
		return KS_ERR_CLOSED;
	close_entry(srv, e, SESSION_LOST_CLOSED);
	return 0;
}

const struct sessions *server_table(const struct server *srv) { return srv->table; }

int server_set_owner(struct server *srv, uint64_t sid, void *owner)
{
	struct entry *e = lookup(srv, sid);

	if (!e)
		return KS_ERR_CLOSED;
	e->owner = owner;
	return 0;
}

void *server_owner(const struct server *srv, uint64_t sid)
{
	const struct entry *e = lookup(srv, sid);

	return e ? e->owner : NULL;
}

int server_set_users(struct server *srv, const struct keys_user *users, size_t n_users,
                     const uint32_t *map, uint64_t now_unix_ms)
{
	return sessions_set_users(srv->table, users, n_users, map, now_unix_ms);
}

void server_stats(const struct server *srv, struct server_stats *st)
{
	memset(st, 0, sizeof *st);
	st->table = *sessions_counters(srv->table);
	st->dropped = srv->dropped;
	st->created = srv->created;
	memcpy(st->lost, srv->lost, sizeof st->lost);
	st->live = srv->heap.n;
}

size_t server_mem_bytes(const struct server *srv)
{
	size_t n = sizeof *srv + srv->cap * sizeof(struct entry *);

	for (size_t i = 0; i < srv->heap.n; i++)
		n += sizeof(struct entry) + session_mem_bytes(srv->due[i]->s);
	return n;
}

static bool entry_ok(const struct server *srv, const struct entry *e, size_t i)
{
	const struct sessions_slot *sl = sessions_get(srv->table, e->sid);

	return !e->closed && e->heap_idx == i && sl && sl->owner == e &&
	       session_state(e->s) == SESSION_ESTABLISHED && session_check(e->s);
}

bool server_check(const struct server *srv)
{
	if (!heap_ordered(&srv->heap, &due_ops, NULL))
		return false;
	for (size_t i = 0; i < srv->heap.n; i++)
		if (!entry_ok(srv, srv->due[i], i))
			return false;
	for (const struct entry *e = srv->ev_head; e; e = e->next_ev)
		if (!e->queued || (e->closed && session_state(e->s) != SESSION_CLOSED))
			return false;
	for (struct entry *e = list_first(&srv->owed, struct entry, owed); e;
	     e = list_next(e, struct entry, owed))
		if (e->closed || (e->owed.next && e->owed.next->prev != &e->owed))
			return false;
	return sessions_live(srv->table) == srv->heap.n;
}
