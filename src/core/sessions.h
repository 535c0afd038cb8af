/* sessions.h - the server's table of secure sessions: the one entry point
 * for every datagram the server receives (docs/PROTOCOL.md (secure layer) 6).
 *
 * A datagram's session is found from the session id inside its envelope,
 * never from its source address. Session id 0 is a handshake init: it is
 * checked by the handshake and, once it authenticates, gets a slot and a
 * response. Anything else that does not open is dropped without output;
 * only a counter moves. Roaming rule (6.2): the peer address of a session
 * moves to a datagram's source only if the datagram opened (authenticated),
 * passed the replay window and carries the newest counter seen so far, so
 * a replayed datagram from a third address never moves it.
 *
 * Memory: sessions_new allocates the whole table (capacity slots); nothing
 * is allocated per datagram or per session afterwards. Not thread-safe.
 */
#ifndef KCPSOCKS_SESSIONS_H
#define KCPSOCKS_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/rng.h"
#include "core/envelope.h"
#include "core/handshake.h"

/* A peer address as opaque bytes (a struct sockaddr_in/in6 in practice). */
struct sessions_addr {
	uint8_t len; /* 0..SESSIONS_ADDR_MAX */
	uint8_t bytes[SESSIONS_ADDR_MAX];
};

struct sessions_slot {
	bool used;
	uint32_t user; /* index into the configured users */
	uint32_t conv; /* KCP conv agreed in the handshake */
	struct transport_params params;
	struct sessions_addr peer; /* where replies go; moves by the roaming rule */
	uint64_t created_ms;
	struct envelope env;
};

struct sessions_config {
	const struct keys_server *key; /* borrowed, outlives the table */
	const struct keys_user *users; /* borrowed array of n_users */
	size_t n_users;
	struct transport_params min, max, def; /* what the server accepts */
	size_t capacity;                       /* 1..SESSIONS_MAX slots */
	/* Unix time (ms) the server started: inits stamped earlier are
	 * refused, so a restart does not reopen the replay window (0: none). */
	uint64_t start_unix_ms;
};

struct sessions_counters {
	uint64_t bad_len;      /* outside the envelope's length bounds */
	uint64_t no_session;   /* session id of no live session */
	uint64_t refused;      /* did not open: auth, replay, malformed */
	uint64_t init_refused; /* session id 0 that the handshake refused */
	uint64_t full;         /* authenticated init, no free slot */
	uint64_t created, superseded, expired, closed, moved, opened;
};

struct sessions {
	struct handshake_server hs;
	struct sessions_slot *slots; /* owned, capacity entries */
	uint32_t *free_ids;          /* owned, stack of free slot indices */
	size_t cap, n_free;
	struct sessions_counters n;
};

enum sessions_event_kind {
	SESSIONS_EV_NONE = 0,
	SESSIONS_EV_DATA,    /* out holds len payload bytes of session sid */
	SESSIONS_EV_NEW,     /* new session sid; out holds the len-byte response for from */
	SESSIONS_EV_REFUSED, /* an authenticated init was refused (handshake 4.6);
	                        out holds the len-byte refusal for from */
};

struct sessions_event {
	enum sessions_event_kind kind;
	uint64_t sid;
	size_t len;
	bool moved;          /* DATA: the peer address moved to from */
	uint64_t superseded; /* NEW: sid of an older session of the same user that
	                        was closed to make room (0: none) */
};

/* sessions_new allocates a table. Returns 0 and sets *out, or KS_ERR_INVAL
 * (bad configuration), KS_ERR_NOMEM. */
KS_MUST_CHECK int sessions_new(struct sessions **out, const struct sessions_config *cfg);

/* sessions_free wipes every key and frees t; NULL is a no-op. */
void sessions_free(struct sessions *t);

/* sessions_on_datagram handles one received datagram d from address from
 * at time now (ms, monotonic) and unix time now_unix_ms. out (cap bytes,
 * ENVELOPE_MAX_DATAGRAM suffices) receives the payload or the handshake
 * response, see ev. Returns 0 with ev->kind DATA, NEW or REFUSED, or a negative
 * code with ev->kind NONE and nothing to send: KS_ERR_PROTO, KS_ERR_AUTH,
 * KS_ERR_REPLAY, KS_ERR_STALE, KS_ERR_LIMIT (see envelope_open and
 * handshake_server_read_init), KS_ERR_FULL (no free slot, or cap too small),
 * KS_ERR_INVAL (from longer than SESSIONS_ADDR_MAX). The caller sends
 * nothing for any error. */
KS_MUST_CHECK int sessions_on_datagram(struct sessions *t, const struct sessions_addr *from,
                                       const uint8_t *d, size_t len, uint64_t now,
                                       uint64_t now_unix_ms, const struct rng_source *rng,
                                       uint8_t *out, size_t cap, struct sessions_event *ev);

/* sessions_seal seals payload for session sid (envelope_seal) and sets *to
 * to its current peer address (valid until the next call on t). Returns
 * the datagram length, KS_ERR_CLOSED (no such session), or envelope_seal's
 * errors. */
KS_MUST_CHECK ssize_t sessions_seal(struct sessions *t, uint64_t sid, const struct rng_source *rng,
                                    const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                                    const struct sessions_addr **to);

/* sessions_get returns the live session sid, or NULL (view valid until the
 * next call that changes t). */
const struct sessions_slot *sessions_get(const struct sessions *t, uint64_t sid);

/* sessions_close ends session sid and wipes its keys. Returns 0 or
 * KS_ERR_CLOSED. */
int sessions_close(struct sessions *t, uint64_t sid);

/* sessions_expire closes one session idle (no datagram opened) for its
 * idle_timeout_ms at now, stores its id in *sid and returns 0; returns
 * KS_ERR_AGAIN when none is idle. O(capacity). */
KS_MUST_CHECK int sessions_expire(struct sessions *t, uint64_t now, uint64_t *sid);

/* sessions_deadline returns when sessions_expire next has work, or
 * UINT64_MAX with no session. O(capacity). */
uint64_t sessions_deadline(const struct sessions *t);

/* sessions_live returns the number of live sessions. */
size_t sessions_live(const struct sessions *t);

#endif
