/* sessions.h - the server's table of secure sessions: the one entry point
 * for every datagram the server receives (docs/PROTOCOL.md (secure layer) 6).
 *
 * A datagram's session is found from the session id inside its envelope,
 * never from its source address. Session id 0 is a handshake init: it is
 * checked by the handshake and, once it authenticates, gets a slot and a
 * response. Anything else that does not open is dropped without output;
 * only a counter moves. Roaming with path validation (6.2): the peer
 * address of a session (the proven path: every datagram of the session
 * goes there) moves only to an address that proved it receives: an
 * authenticated, newest datagram from another address makes that address
 * the candidate; the table asks for a PATH_CHALLENGE to it (sent within an
 * anti-amplification budget of 3x the bytes received from it), and the
 * peer moves there when the client's PATH_RESPONSE with the challenge's
 * token comes back from it. An authenticated datagram from the proven path
 * (a raced copy's original included) drops the candidate at once.
 *
 * The table does not own a session's keys: an accepted init's envelope is
 * staged in the table until its owner takes it into its own struct
 * (sessions_attach, before the next datagram); the slot then borrows it
 * to open the session's datagrams and seal path challenges. The owner
 * seals its own output (envelope_seal) and sends it to the slot's peer
 * address (a view that stays valid while the session is live).
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

/* 6.2: a path frame is a whole envelope payload in place of a KCP
 * datagram: u32le conv || u8 type || 3 zero bytes || 16-byte token. Its
 * type byte sits where a KCP segment has its command (0x51..0x54), so it
 * never reads as KCP, and a peer that does not know it drops it as a
 * malformed KCP datagram. */
enum {
	SESSIONS_PATH_LEN = 24,
	SESSIONS_TOKEN_LEN = 16,
	SESSIONS_PATH_CHALLENGE = 0x58, /* server -> client, to the candidate */
	SESSIONS_PATH_RESPONSE = 0x59,  /* client -> server, the same token */
	SESSIONS_AMPLIFY = 3,           /* bytes to a candidate <= 3x bytes from it */
	SESSIONS_CHALLENGE_GAP_MS = 20, /* at most one challenge per candidate per gap */
};

/* A candidate path: an address that sent an authenticated datagram but has
 * not proved it receives. */
struct sessions_path {
	bool active;
	struct sessions_addr addr;
	uint8_t token[SESSIONS_TOKEN_LEN]; /* kept while addr stays the same */
	uint64_t rx_bytes, tx_bytes;       /* authenticated bytes from / all bytes to addr */
	uint64_t challenged_ms;            /* last challenge sent; 0: none yet */
};

struct sessions_slot {
	bool used;
	uint32_t user; /* index into the configured users */
	uint32_t conv; /* KCP conv agreed in the handshake */
	struct transport_params params;
	struct sessions_addr peer; /* the proven path: where replies go (6.2) */
	struct sessions_path cand; /* a path being validated */
	uint64_t created_ms;
	bool has_instance; /* the client sent an instance id (PROTOCOL.md 6.3) */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
	uint32_t next_of_user; /* the user's next session: slot index + 1, 0: none */
	uint64_t sid;          /* the session id (its low bits are the slot) */
	struct envelope *env;  /* borrowed: the session's own envelope, which the
	                          table opens with (sessions_attach); NULL until
	                          attached: datagrams of sid are refused */
	void *owner;           /* borrowed: the owner's object for this session
	                          (sessions_attach), NULL until set */
};

struct sessions_config {
	const struct keys_server *key; /* borrowed, outlives the table */
	const struct keys_user *users; /* borrowed array of n_users */
	size_t n_users;
	struct transport_params min, max, def; /* what the server accepts */
	size_t capacity;                       /* 1..SESSIONS_MAX slots */
	uint32_t per_user; /* sessions one user may hold, 1..SESSIONS_PER_USER_MAX;
	                      0: SESSIONS_PER_USER_MAX */
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
	uint64_t created, superseded, closed, moved, opened;
	uint64_t path_challenges; /* PATH_CHALLENGEs sealed */
	uint64_t path_refused;    /* challenges not sent: over the 3x budget */
	uint64_t path_kept;       /* candidates dropped: the proven path spoke */
};

struct sessions;

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
	bool moved;          /* DATA: the peer address moved to from (validated) */
	bool challenge;      /* DATA: send sessions_seal_challenge for sid now */
	uint64_t superseded; /* NEW: sid of an older session of the same user that
	                        was closed to make room (0: none) */
	void *owner;         /* DATA: the session's owner pointer (sessions_attach),
	                        so the owner needs no lookup of its own; NEW: the
	                        superseded session's (its slot is the new one's) */
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

/* sessions_attach hands the envelope of new session sid (staged by the
 * SESSIONS_EV_NEW that made it) to its owner: the keys move into *env
 * (the staged copy is wiped), the slot borrows env from then on, and
 * owner is hung on the slot like sessions_set_owner. env must stay valid
 * until sessions_close(sid) or the session is superseded; the owner wipes
 * it. Returns 0, KS_ERR_CLOSED (no such session) or KS_ERR_STATE (sid's
 * envelope is not the staged one: already attached, or another NEW came
 * in between). */
KS_MUST_CHECK int sessions_attach(struct sessions *t, uint64_t sid, struct envelope *env,
                                  void *owner);

/* sessions_seal_challenge seals a PATH_CHALLENGE for session sid's
 * candidate address (*to) if the anti-amplification budget allows it: all
 * bytes sent to the candidate stay <= SESSIONS_AMPLIFY x the authenticated
 * bytes received from it. Returns the datagram length, KS_ERR_CLOSED (no
 * such session), KS_ERR_STATE (no candidate), KS_ERR_LIMIT (over budget:
 * nothing to send), or envelope_seal's errors. */
KS_MUST_CHECK ssize_t sessions_seal_challenge(struct sessions *t, uint64_t sid,
                                              const struct rng_source *rng, uint64_t now,
                                              uint8_t *out, size_t cap,
                                              const struct sessions_addr **to);

/* sessions_path_read: is payload p (len bytes) a path frame of conv? Returns
 * its type (SESSIONS_PATH_CHALLENGE or _RESPONSE) and copies its token, or
 * 0 (not a path frame: a KCP datagram). sessions_path_write writes one
 * (SESSIONS_PATH_LEN bytes). */
int sessions_path_read(const uint8_t *p, size_t len, uint32_t conv,
                       uint8_t token[static SESSIONS_TOKEN_LEN]);
void sessions_path_write(uint8_t out[static SESSIONS_PATH_LEN], uint32_t conv, uint8_t type,
                         const uint8_t token[static SESSIONS_TOKEN_LEN]);

/* sessions_get returns the live session sid, or NULL (view valid until the
 * next call that changes t). */
const struct sessions_slot *sessions_get(const struct sessions *t, uint64_t sid);

/* sessions_set_owner hangs the owner's object on live session sid; DATA
 * events of it carry it. Returns 0 or KS_ERR_CLOSED. */
int sessions_set_owner(struct sessions *t, uint64_t sid, void *owner);

/* sessions_close ends session sid and wipes its keys. Returns 0 or
 * KS_ERR_CLOSED. */
int sessions_close(struct sessions *t, uint64_t sid);

/* sessions_set_users swaps in users (borrowed; a reload): map gives each
 * old user's new index or HANDSHAKE_USER_NONE (handshake_server_set_users).
 * Every live session must belong to a user that remains (close the others
 * first); it keeps its keys and follows its user's new index. Returns 0,
 * KS_ERR_INVAL (a live session of a removed user, a bad map) or
 * KS_ERR_NOMEM; t is unchanged on error. */
KS_MUST_CHECK int sessions_set_users(struct sessions *t, const struct keys_user *users,
                                     size_t n_users, const uint32_t *map, uint64_t now_unix_ms);

/* sessions_same_instance: are sessions a and b live, of one user, and
 * made by one client instance (both carried the same instance id, 6.3)? */
bool sessions_same_instance(const struct sessions *t, uint64_t a, uint64_t b);

/* sessions_live returns the number of live sessions. */
size_t sessions_live(const struct sessions *t);

/* The table's counters, and its handshake's (views valid while t lives). */
const struct sessions_counters *sessions_counters(const struct sessions *t);
const struct handshake_counters *sessions_hs_counters(const struct sessions *t);

/* sessions_last_refusal: what the last authenticated init refused with a
 * reply (KS_ERR_UNSUPPORTED from sessions_on_datagram) offered. */
const struct handshake_refusal *sessions_last_refusal(const struct sessions *t);

/* sessions_next walks the live sessions: *i starts at 0; returns the next
 * live slot at or after *i and moves *i past it, or NULL at the end. The
 * slot's session id is slot->sid. Closing sessions while walking is
 * fine. */
const struct sessions_slot *sessions_next(const struct sessions *t, size_t *i);

#endif
