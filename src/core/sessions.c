/* sessions.c - the server's session table and its datagram dispatch. */
#include "core/sessions.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/rd.h"
#include "base/wr.h"

struct sessions {
	struct handshake_server hs;
	struct sessions_slot *slots; /* owned, capacity entries */
	uint32_t *free_ids;          /* owned, stack of free slot indices */
	uint32_t *user_head;         /* owned, per user: first slot + 1 (0: none), so
	                                6.3 looks at the user's sessions only */
	size_t cap, n_free;
	uint32_t per_user; /* 6.3 cap */
	struct sessions_counters n;
	struct envelope fresh; /* the newest session's keys until sessions_attach */
	uint64_t fresh_sid;    /* 0: nothing staged */
};

/* The slot index lives in the low 16 bits of a session id, the rest is
 * random: lookup is one array access, ids are not reused in practice. */
enum { SLOT_BITS = 16, SLOT_MASK = (1 << SLOT_BITS) - 1 };

int sessions_new(struct sessions **out, const struct sessions_config *cfg)
{
	struct sessions *t;
	int rc;

	if (cfg->capacity == 0 || cfg->capacity > SESSIONS_MAX ||
	    cfg->per_user > SESSIONS_PER_USER_MAX)
		return KS_ERR_INVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return KS_ERR_NOMEM;
	rc = handshake_server_init(&t->hs, cfg->key, cfg->users, cfg->n_users, &cfg->min, &cfg->max,
	                           &cfg->def);
	if (rc != 0)
		goto err;
	t->hs.start_ms = cfg->start_unix_ms;
	rc = KS_ERR_NOMEM;
	t->slots = calloc(cfg->capacity, sizeof *t->slots);
	t->free_ids = calloc(cfg->capacity, sizeof *t->free_ids);
	t->user_head = calloc(cfg->n_users, sizeof *t->user_head);
	if (!t->slots || !t->free_ids || !t->user_head)
		goto err;
	t->cap = cfg->capacity;
	t->per_user = cfg->per_user ? cfg->per_user : SESSIONS_PER_USER_MAX;
	/* Pop order: slot 0 first. */
	for (size_t i = 0; i < t->cap; i++)
		t->free_ids[i] = (uint32_t)(t->cap - 1 - i);
	t->n_free = t->cap;
	*out = t;
	return 0;
err:
	free(t->slots);
	free(t->free_ids);
	free(t->user_head);
	free(t);
	return rc;
}

void sessions_free(struct sessions *t)
{
	if (!t)
		return;
	sodium_memzero(t->slots, t->cap * sizeof *t->slots);
	envelope_wipe(&t->fresh);
	free(t->slots);
	free(t->free_ids);
	free(t->user_head);
	sodium_memzero(t, sizeof *t);
	free(t);
}

static struct sessions_slot *find(const struct sessions *t, uint64_t sid)
{
	size_t i = (size_t)(sid & SLOT_MASK);

	if (sid == 0 || i >= t->cap || !t->slots[i].used || t->slots[i].sid != sid)
		return NULL;
	return &t->slots[i];
}

const struct sessions_slot *sessions_get(const struct sessions *t, uint64_t sid)
{
	return find(t, sid);
}

bool sessions_same_instance(const struct sessions *t, uint64_t a, uint64_t b)
{
	const struct sessions_slot *x = sessions_get(t, a), *y = sessions_get(t, b);

	return x && y && x->user == y->user && x->has_instance && y->has_instance &&
	       memcmp(x->instance, y->instance, HANDSHAKE_INSTANCE_LEN) == 0;
}

size_t sessions_live(const struct sessions *t) { return t->cap - t->n_free; }

/* unlink takes a used slot off its user's list (at most per_user long). */
static void unlink_user(struct sessions *t, struct sessions_slot *s)
{
	uint32_t *pp = &t->user_head[s->user], me = (uint32_t)(s - t->slots) + 1;

	while (*pp && *pp != me)
		pp = &t->slots[*pp - 1].next_of_user;
	if (*pp)
		*pp = s->next_of_user;
}

static void release(struct sessions *t, struct sessions_slot *s)
{
	unlink_user(t, s); /* s->env is its session's: the session wipes it */
	sodium_memzero(s, sizeof *s);
	t->free_ids[t->n_free++] = (uint32_t)(s - t->slots);
}

int sessions_attach(struct sessions *t, uint64_t sid, struct envelope *env, void *owner)
{
	struct sessions_slot *s = find(t, sid);

	if (!s)
		return KS_ERR_CLOSED;
	if (s->env || t->fresh_sid != sid)
		return KS_ERR_STATE;
	envelope_move(env, &t->fresh);
	t->fresh_sid = 0;
	s->env = env;
	s->owner = owner;
	return 0;
}

int sessions_set_owner(struct sessions *t, uint64_t sid, void *owner)
{
	struct sessions_slot *s = find(t, sid);

	if (!s)
		return KS_ERR_CLOSED;
	s->owner = owner;
	return 0;
}

int sessions_close(struct sessions *t, uint64_t sid)
{
	struct sessions_slot *s = find(t, sid);

	if (!s)
		return KS_ERR_CLOSED;
	if (t->fresh_sid == sid) { /* never attached */
		envelope_wipe(&t->fresh);
		t->fresh_sid = 0;
	}
	release(t, s);
	t->n.closed++;
	return 0;
}

int sessions_set_users(struct sessions *t, const struct keys_user *users, size_t n_users,
                       const uint32_t *map, uint64_t now_unix_ms)
{
	uint32_t *head;
	size_t old = t->hs.n_users;
	int rc;

	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].used &&
		    (t->slots[i].user >= old || map[t->slots[i].user] >= n_users))
			return KS_ERR_INVAL; /* a removed user's session is live */
	head = calloc(n_users ? n_users : 1, sizeof *head);
	if (!head)
		return KS_ERR_NOMEM;
	rc = handshake_server_set_users(&t->hs, users, n_users, map, now_unix_ms);
	if (rc != 0) {
		free(head);
		return rc;
	}
	/* Relink every live session under its user's new index. */
	for (size_t i = 0; i < t->cap; i++) {
		struct sessions_slot *s = &t->slots[i];

		if (!s->used)
			continue;
		s->user = map[s->user];
		s->next_of_user = head[s->user];
		head[s->user] = (uint32_t)i + 1;
	}
	free(t->user_head);
	t->user_head = head;
	return 0;
}

static bool same_instance(const struct sessions_slot *s, const struct handshake_pending *p)
{
	return s->has_instance && p->has_instance &&
	       memcmp(s->instance, p->instance, HANDSHAKE_INSTANCE_LEN) == 0;
}

/* When the session last heard from its peer (its creation until attached). */
static uint64_t last_rx(const struct sessions_slot *s)
{
	return s->env ? s->env->last_rx_ms : s->created_ms;
}

/* 6.3: a user holds at most per_user sessions; a new one beyond that
 * supersedes the one of the same client instance if there is one, else
 * the one of that user that was quiet the longest. Returns that victim,
 * or NULL while the user has room. */
static struct sessions_slot *victim_of(struct sessions *t, const struct handshake_pending *p)
{
	struct sessions_slot *idlest = NULL, *own = NULL;
	size_t n = 0;

	for (uint32_t i = t->user_head[p->user]; i; i = t->slots[i - 1].next_of_user) {
		struct sessions_slot *s = &t->slots[i - 1];

		n++;
		if (!own && same_instance(s, p))
			own = s;
		if (!idlest || last_rx(s) < last_rx(idlest))
			idlest = s;
	}
	if (n < t->per_user)
		return NULL;
	return own ? own : idlest;
}

static uint64_t new_sid(const struct rng_source *rng, uint32_t slot)
{
	uint64_t r;

	rng_fill(rng, &r, sizeof r);
	r &= ~(uint64_t)SLOT_MASK;
	if (r == 0)
		r = 1ULL << SLOT_BITS; /* never 0, even for slot 0 */
	return r | slot;
}

/* Commit a new session into slot s from the handshake result. */
static void fill(struct sessions *t, struct sessions_slot *s, const struct handshake_result *res,
                 const struct sessions_addr *from, uint64_t now)
{
	if (s->used) /* a superseded session of the same user (its envelope is its own) */
		unlink_user(t, s);
	memset(s, 0, sizeof *s);
	s->used = true;
	s->user = res->user;
	s->next_of_user = t->user_head[s->user];
	t->user_head[s->user] = (uint32_t)(s - t->slots) + 1;
	s->conv = res->conv;
	s->params = res->params;
	s->peer = *from;
	s->created_ms = now;
	s->has_instance = res->has_instance;
	memcpy(s->instance, res->instance, HANDSHAKE_INSTANCE_LEN);
	s->sid = res->sid;
	/* Staged for the owner (sessions_attach); one never taken is wiped. */
	envelope_wipe(&t->fresh);
	envelope_init(&t->fresh, t->hs.pub.hdr, res->sid, &res->tx, &res->rx, &res->params, now);
	t->fresh_sid = res->sid;
}

/* 6.1 steps 3-5: an init. Nothing changes until the response is written. */
static int on_init(struct sessions *t, const struct sessions_addr *from, const uint8_t *d,
                   size_t len, uint64_t now, uint64_t now_unix_ms, const struct rng_source *rng,
                   uint8_t *out, size_t cap, struct sessions_event *ev)
{
	struct handshake_pending p;
	struct handshake_result res;
	struct sessions_slot *victim;
	uint64_t superseded = 0;
	void *owner = NULL;
	uint32_t slot;
	ssize_t n;
	int rc;

	if (cap < HANDSHAKE_RESP_MAX)
		return KS_ERR_FULL;
	rc = handshake_server_read_init_from(&t->hs, d, len, now_unix_ms, from->bytes, from->len,
	                                     &p);
	if (rc == KS_ERR_UNSUPPORTED) {
		/* Authenticated, but no wire version fits: a refusal is sent. */
		n = handshake_server_write_refusal(&t->hs, &p, rng, out, cap);
		sodium_memzero(&p, sizeof p);
		t->n.init_refused++;
		if (n < 0)
			return (int)n;
		*ev = (struct sessions_event){ SESSIONS_EV_REFUSED, 0, (size_t)n, false, 0 };
		return 0;
	}
	if (rc != 0) {
		t->n.init_refused++;
		return rc;
	}
	victim = victim_of(t, &p);
	if (!victim && t->n_free == 0) {
		sodium_memzero(&p, sizeof p);
		t->n.full++;
		return KS_ERR_FULL;
	}
	slot = victim ? (uint32_t)(victim - t->slots) : t->free_ids[t->n_free - 1];
	n = handshake_server_write_response(&t->hs, &p, rng, new_sid(rng, slot), out, cap, &res);
	sodium_memzero(&p, sizeof p);
	if (n < 0)
		return (int)n;
	if (victim) {
		superseded = victim->sid;
		owner = victim->owner;
		t->n.superseded++;
	} else {
		t->n_free--;
	}
	fill(t, &t->slots[slot], &res, from, now);
	*ev = (struct sessions_event){
		.kind = SESSIONS_EV_NEW,
		.sid = res.sid,
		.len = (size_t)n,
		.superseded = superseded,
		.owner = owner,
	};
	sodium_memzero(&res, sizeof res);
	t->n.created++;
	return 0;
}

static bool addr_eq(const struct sessions_addr *a, const struct sessions_addr *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* --- 6.2: roaming with path validation ----------------------------------- */

int sessions_path_read(const uint8_t *p, size_t len, uint32_t conv,
                       uint8_t token[static SESSIONS_TOKEN_LEN])
{
	struct rd r = rd_init(p, len);
	uint32_t c = 0, zero = 0;
	uint8_t type = 0;

	if (len != SESSIONS_PATH_LEN || !rd_u32le(&r, &c) || !rd_u8(&r, &type) || c != conv)
		return 0;
	if (type != SESSIONS_PATH_CHALLENGE && type != SESSIONS_PATH_RESPONSE)
		return 0;
	/* three reserved zero bytes */
	for (int i = 0; i < 3; i++) {
		uint8_t b = 0;
		(void)rd_u8(&r, &b);
		zero |= b;
	}
	if (zero != 0 || !rd_bytes(&r, token, SESSIONS_TOKEN_LEN))
		return 0;
	return type;
}

void sessions_path_write(uint8_t out[static SESSIONS_PATH_LEN], uint32_t conv, uint8_t type,
                         const uint8_t token[static SESSIONS_TOKEN_LEN])
{
	struct wr w = wr_init(out, SESSIONS_PATH_LEN);

	(void)wr_u32le(&w, conv);
	(void)wr_u8(&w, type);
	(void)wr_u8(&w, 0);
	(void)wr_u16le(&w, 0);
	(void)wr_bytes(&w, token, SESSIONS_TOKEN_LEN);
}

/* An address other than the proven one sent an authenticated datagram of
 * len bytes. The newest counter makes it the candidate (a late datagram
 * from an old address does not); bytes from the candidate grow its budget,
 * and a challenge is due when none went out for a gap. */
static bool on_other_path(struct sessions_slot *s, const struct sessions_addr *from, size_t len,
                          bool newest, uint64_t now, const struct rng_source *rng)
{
	struct sessions_path *c = &s->cand;

	if (!c->active || !addr_eq(&c->addr, from)) {
		if (!newest)
			return false;
		if (!addr_eq(&c->addr, from)) {
			/* A new address: a new token and a budget from zero. */
			memset(c, 0, sizeof *c);
			c->addr = *from;
			rng_fill(rng, c->token, sizeof c->token);
		}
		c->active = true;
	}
	c->rx_bytes += len;
	return c->challenged_ms == 0 || now >= c->challenged_ms + SESSIONS_CHALLENGE_GAP_MS;
}

/* A PATH_RESPONSE: the candidate proved it receives when the token sent to
 * it comes back from it. Returns true when the peer moved. */
static bool on_response(struct sessions *t, struct sessions_slot *s,
                        const struct sessions_addr *from, const uint8_t *token)
{
	struct sessions_path *c = &s->cand;

	if (!c->active || !addr_eq(&c->addr, from) ||
	    sodium_memcmp(token, c->token, SESSIONS_TOKEN_LEN) != 0)
		return false;
	s->peer = *from;
	sodium_memzero(c, sizeof *c);
	t->n.moved++;
	return true;
}

/* A datagram the window refused: if it is a genuine copy from the proven
 * path while a candidate is pending, the proven path spoke (a racer's
 * copy took the counter first) and wins back at once. */
static void on_replay(struct sessions *t, struct sessions_slot *s, const struct sessions_addr *from,
                      const uint8_t *d, size_t len)
{
	if (!s->cand.active || !addr_eq(&s->peer, from))
		return;
	if (envelope_verify(s->env, d, len) == 0) {
		s->cand.active = false;
		t->n.path_kept++;
	}
}

/* 6.1 step 6 and the roaming rule 6.2. */
static int on_data(struct sessions *t, const struct sessions_addr *from, uint64_t sid,
                   const uint8_t *d, size_t len, uint64_t now, const struct rng_source *rng,
                   uint8_t *out, size_t cap, struct sessions_event *ev)
{
	struct sessions_slot *s = find(t, sid);
	uint8_t token[SESSIONS_TOKEN_LEN];
	struct envelope_rx rx;
	bool moved = false, challenge = false;
	ssize_t n;

	/* A session whose owner has not taken (or has wiped) its envelope
	 * opens nothing. */
	if (!s || !s->env || s->env->sid != sid) {
		t->n.no_session++;
		return KS_ERR_AUTH;
	}
	n = envelope_open(s->env, d, len, now, out, cap, &rx);
	if (n < 0) {
		if (n == KS_ERR_REPLAY)
			on_replay(t, s, from, d, len);
		t->n.refused++;
		return (int)n;
	}
	t->n.opened++;
	if (sessions_path_read(out, (size_t)n, s->conv, token) == SESSIONS_PATH_RESPONSE) {
		moved = on_response(t, s, from, token);
		n = 0; /* nothing for KCP */
	} else if (addr_eq(&s->peer, from)) {
		if (s->cand.active)
			t->n.path_kept++;
		s->cand.active = false; /* the proven path wins back at once */
	} else {
		challenge = on_other_path(s, from, len, rx.newest, now, rng);
	}
	*ev = (struct sessions_event){ .kind = SESSIONS_EV_DATA,
		                       .sid = sid,
		                       .len = (size_t)n,
		                       .moved = moved,
		                       .challenge = challenge,
		                       .owner = s->owner };
	return 0;
}

int sessions_on_datagram(struct sessions *t, const struct sessions_addr *from, const uint8_t *d,
                         size_t len, uint64_t now, uint64_t now_unix_ms,
                         const struct rng_source *rng, uint8_t *out, size_t cap,
                         struct sessions_event *ev)
{
	uint64_t sid;

	ev->kind = SESSIONS_EV_NONE;
	if (from->len > SESSIONS_ADDR_MAX)
		return KS_ERR_INVAL;
	/* 6.1 steps 1-2: length, then the session id under the server mask. */
	if (envelope_peek_sid(t->hs.pub.hdr, d, len, &sid) != 0) {
		t->n.bad_len++;
		return KS_ERR_PROTO;
	}
	if (sid == 0)
		return on_init(t, from, d, len, now, now_unix_ms, rng, out, cap, ev);
	return on_data(t, from, sid, d, len, now, rng, out, cap, ev);
}

ssize_t sessions_seal_challenge(struct sessions *t, uint64_t sid, const struct rng_source *rng,
                                uint64_t now, uint8_t *out, size_t cap,
                                const struct sessions_addr **to)
{
	struct sessions_slot *s = find(t, sid);
	uint8_t frame[SESSIONS_PATH_LEN];
	ssize_t n;

	if (!s)
		return KS_ERR_CLOSED;
	if (!s->cand.active || !s->env)
		return KS_ERR_STATE;
	sessions_path_write(frame, s->conv, SESSIONS_PATH_CHALLENGE, s->cand.token);
	n = envelope_seal(s->env, rng, frame, sizeof frame, out, cap);
	if (n < 0)
		return n;
	/* The budget is checked on the real length (padding included). */
	if (s->cand.tx_bytes + (uint64_t)n > SESSIONS_AMPLIFY * s->cand.rx_bytes) {
		t->n.path_refused++;
		return KS_ERR_LIMIT;
	}
	s->cand.tx_bytes += (uint64_t)n;
	s->cand.challenged_ms = now ? now : 1;
	t->n.path_challenges++;
	*to = &s->cand.addr;
	return n;
}

const struct sessions_counters *sessions_counters(const struct sessions *t) { return &t->n; }

const struct handshake_counters *sessions_hs_counters(const struct sessions *t) { return &t->hs.n; }

const struct handshake_refusal *sessions_last_refusal(const struct sessions *t)
{
	return &t->hs.last_refusal;
}

const struct sessions_slot *sessions_next(const struct sessions *t, size_t *i)
{
	for (; *i < t->cap; (*i)++)
		if (t->slots[*i].used)
			return &t->slots[(*i)++];
	return NULL;
}
