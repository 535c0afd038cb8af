/* handshake.h - one round trip that agrees keys and transport parameters
 * before any KCP state exists (docs/PROTOCOL.md (secure layer) section 4).
 *
 * Noise-style NK with a pre-shared key: the client knows the server's
 * static X25519 key, sends an ephemeral (e, es), its user name encrypted
 * under the es key, then mixes in that user's PSK and sends a timestamp and
 * its proposed transport parameters. The server answers with its own
 * ephemeral (e, ee), the session id and the parameters it accepts. Both
 * sides then split the chaining key into per-direction envelope keys and
 * the KCP conv. Hash and KDF: BLAKE2b-256 (keys.h); AEAD:
 * ChaCha20-Poly1305 IETF.
 *
 * Both messages travel with the envelope's first-8-byte masking and the
 * reserved session id 0, so after unmasking the server tells an init from
 * a data datagram with no visible marker. The ephemerals are XORed with a
 * ChaCha20 stream keyed from the server public key and 16 random bytes of
 * the message, so they are not visible as curve points; the init's
 * timestamp rides along, so a stale init is refused before any X25519. A keyed BLAKE2b
 * MAC (mac1, key from the server public key) ends an init and is checked
 * before the one X25519 an init costs; the response ends in mac2, keyed
 * from the client ephemeral.
 *
 * Versioning (4.6): both messages may carry extensions at the start of
 * their (encrypted) padding, which the release before them (wire version
 * 1) fills with zeros and never reads. The version extension carries a
 * range of wire versions and a feature bitmap (TPARAMS_FEAT_*); the server
 * answers with the version and the intersection of features, or, when no
 * version fits, with an authenticated refusal (session id 0, reason and
 * its own range). A peer without the extension is a version 1 peer with
 * no features, so both directions work with the previous release.
 *
 * Hostile peers (4.4, docs/PROTOCOL.md security section): replay floors
 * are per user, timestamps may be at most HANDSHAKE_FUTURE_MS ahead,
 * nothing stamped before the server's start is taken, refused inits are
 * remembered by their mac1 so re-sent bytes cost no X25519, and X25519
 * work is budgeted per source host and in total. Nothing is ever sent
 * for an init that did not prove a valid PSK.
 *
 * Sans-I/O: the caller passes the unix time in ms and an rng_source.
 * Nothing allocates; struct handshake_server is large (replay caches,
 * per-user floors, budgets: about 370 KiB), so put it on the heap.
 */
#ifndef KCPSOCKS_HANDSHAKE_H
#define KCPSOCKS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/rng.h"
#include "core/envelope.h"
#include "core/keys.h"
#include "core/tparams.h"

/* Message sizes (docs/PROTOCOL.md, secure layer 4.2, 4.3). */
enum {
	HANDSHAKE_RAND_LEN = 16,
	HANDSHAKE_MAC_LEN = 16,
	HANDSHAKE_EPH_OFF = ENVELOPE_SID_LEN + HANDSHAKE_RAND_LEN, /* 24 */
	HANDSHAKE_BODY_OFF = HANDSHAKE_EPH_OFF + KEYS_LEN,         /* 56, response */
	HANDSHAKE_INIT_BODY_OFF = HANDSHAKE_BODY_OFF + 8,          /* 64: after the timestamp */
	/* u64le timestamp or session id || tparams || u16le pad length */
	HANDSHAKE_PAYLOAD_MIN = 8 + TPARAMS_WIRE_LEN + ENVELOPE_PADLEN_LEN,
	HANDSHAKE_INIT_MIN = HANDSHAKE_INIT_BODY_OFF + KEYS_NAME_MAX + ENVELOPE_TAG_LEN +
	                     HANDSHAKE_PAYLOAD_MIN + ENVELOPE_TAG_LEN + HANDSHAKE_MAC_LEN, /* 182 */
	HANDSHAKE_RESP_MIN = HANDSHAKE_BODY_OFF + HANDSHAKE_PAYLOAD_MIN + ENVELOPE_TAG_LEN +
	                     HANDSHAKE_MAC_LEN, /* 126 */
	HANDSHAKE_INIT_MAX = HANDSHAKE_INIT_MIN + HANDSHAKE_PAD_MAX,
	HANDSHAKE_RESP_MAX = HANDSHAKE_RESP_MIN + HANDSHAKE_PAD_MAX,
	/* 4.6: extensions, type || length || value, at the start of the pad. */
	HANDSHAKE_EXT_VERSION = 1,  /* u8 max || u8 min || u32le features */
	HANDSHAKE_EXT_REFUSE = 2,   /* u8 reason (response with session id 0) */
	HANDSHAKE_EXT_INSTANCE = 3, /* init: the client process's instance id */
	HANDSHAKE_INSTANCE_LEN = 8,
	HANDSHAKE_EXT_VERSION_LEN = 2 + 6,
	HANDSHAKE_EXT_REFUSE_LEN = 2 + 1,
	HANDSHAKE_EXT_INSTANCE_LEN = 2 + HANDSHAKE_INSTANCE_LEN,
	/* Room for every extension one message may carry. */
	HANDSHAKE_EXT_MAX =
	        HANDSHAKE_EXT_VERSION_LEN + HANDSHAKE_EXT_REFUSE_LEN + HANDSHAKE_EXT_INSTANCE_LEN,
	/* Wire versions: 1 is the release without extensions. */
	HANDSHAKE_WIRE_MIN = 1,
	HANDSHAKE_WIRE_VERSION = 2, /* this build */
	/* What this build's client writes at least. */
	HANDSHAKE_INIT_OWN_MIN = HANDSHAKE_INIT_MIN + HANDSHAKE_EXT_VERSION_LEN,
};

/* Why a server refused an authenticated init (HANDSHAKE_EXT_REFUSE). */
enum handshake_refuse_reason {
	HANDSHAKE_REFUSE_NONE = 0,
	HANDSHAKE_REFUSE_VERSION = 1, /* no wire version both sides speak */
};

/* What a refusal said, or what a server refused (for log lines). */
struct handshake_refusal {
	uint8_t reason;                 /* enum handshake_refuse_reason */
	uint8_t server_min, server_max; /* the server's wire versions */
	uint8_t client_min, client_max; /* the client's */
	uint32_t user;                  /* server side: whose init it was */
};

/* What both sides hold after a handshake, each from its own viewpoint. */
struct handshake_result {
	uint64_t sid;                   /* chosen by the server, never 0 */
	uint32_t conv;                  /* KCP conversation id */
	struct transport_params params; /* what the server accepted */
	struct envelope_dir tx, rx;     /* this side's send and receive keys */
	uint32_t user;                  /* server: index into its users; client: 0 */
	/* Server: the client's instance id (4.6), when it sent one and both
	 * sides agreed TPARAMS_FEAT_INSTANCE_ID; client: false. */
	bool has_instance;
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
};

enum handshake_client_state {
	HANDSHAKE_CLIENT_IDLE = 0, /* configured, nothing sent */
	HANDSHAKE_CLIENT_SENT,     /* an init is out, its ephemeral is held */
	HANDSHAKE_CLIENT_DONE,     /* a response was accepted; secrets wiped */
};

struct handshake_client {
	enum handshake_client_state state;
	struct keys_public pub;
	uint8_t name[KEYS_NAME_MAX]; /* zero padded */
	uint8_t psk[KEYS_LEN];
	struct transport_params proposal;
	uint8_t e_sec[KEYS_LEN], e_pub[KEYS_LEN]; /* SENT: this init's ephemeral */
	uint8_t ck[KEYS_LEN], h[KEYS_LEN];        /* SENT: Noise state after the init */
	uint8_t mac2[KEYS_LEN];                   /* SENT: key of the response MAC */
	/* 4.6: the wire versions and features this client advertises (set by
	 * handshake_client_init to HANDSHAKE_WIRE_MIN..HANDSHAKE_WIRE_VERSION
	 * and TPARAMS_FEATURES plus the optional features the proposal asks
	 * for; tests may change them before an init). */
	uint8_t wire_min, wire_max;
	uint32_t features;
	/* 4.6: the instance id this client sends (handshake_client_set_instance). */
	bool has_instance;
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
	/* After KS_ERR_UNSUPPORTED: the server's refusal. */
	struct handshake_refusal refusal;
};

/* handshake_client_init configures c for server public key spub, user u
 * and a proposal (valid). proposal->features opts in to the optional
 * features (TPARAMS_FEATURES_OPTIONAL: AES-256-GCM), which the caller sets
 * only where this machine runs them; its other bits are ignored, every
 * TPARAMS_FEATURES bit is always advertised. Returns 0 or KS_ERR_INVAL. */
KS_MUST_CHECK int handshake_client_init(struct handshake_client *c,
                                        const uint8_t spub[static KEYS_LEN],
                                        const struct keys_user *u,
                                        const struct transport_params *proposal);

/* handshake_client_set_instance makes every later init of c carry the
 * instance id id (HANDSHAKE_INSTANCE_LEN bytes, 4.6): a server that agrees
 * TPARAMS_FEAT_INSTANCE_ID replaces the older session of the same user and
 * instance with the new one. Call it after handshake_client_init. */
void handshake_client_set_instance(struct handshake_client *c,
                                   const uint8_t id[static HANDSHAKE_INSTANCE_LEN]);

/* handshake_client_write_init writes a fresh init (new ephemeral, random
 * padding) for the unix time now_unix_ms into out and returns its length
 * (at most HANDSHAKE_INIT_MAX). Call it again to retry: a server never
 * accepts the same init twice. State becomes SENT. Errors (c unchanged):
 * KS_ERR_FULL (cap < HANDSHAKE_INIT_MIN), KS_ERR_STATE (DONE), KS_ERR_INVAL
 * (the rng gave an unusable key). */
KS_MUST_CHECK ssize_t handshake_client_write_init(struct handshake_client *c,
                                                  const struct rng_source *rng,
                                                  uint64_t now_unix_ms, uint8_t *out, size_t cap);

/* handshake_client_read_response accepts the server's answer to the last
 * init and fills *res (res->params.wire and .features: the agreed version
 * and features; 1 and 0 from a server without the version extension).
 * State becomes DONE and the ephemeral is wiped. Errors (res untouched):
 * KS_ERR_STATE (not SENT), KS_ERR_PROTO (length, session id field not 0,
 * bad payload), KS_ERR_AUTH (mac2 or AEAD), KS_ERR_UNSUPPORTED (an
 * authenticated refusal: c->refusal says why; state stays SENT). */
KS_MUST_CHECK int handshake_client_read_response(struct handshake_client *c, const uint8_t *d,
                                                 size_t len, struct handshake_result *res);

/* handshake_client_wipe zeroes c, secrets included. */
void handshake_client_wipe(struct handshake_client *c);

/* Why inits were refused, and how many were accepted. */
struct handshake_counters {
	uint64_t bad_len, bad_mac1, replay, bad_dh, bad_user, bad_auth, bad_payload, stale,
	        accepted;
	uint64_t known_bad; /* re-sent bytes of an init refused before: no X25519 */
	uint64_t budget;    /* over the X25519 budget (per source or in total) */
	uint64_t refused;   /* authenticated, refused with a reply (4.6) */
	uint64_t legacy;    /* accepted from a wire version 1 client */
};

/* 4.4: one accepted init, in a ring in arrival order, chained by hash. */
struct handshake_seen {
	uint8_t e[16]; /* ephemeral prefix */
	uint64_t ts;
	uint32_t user;
	uint32_t next; /* next in its hash chain, HANDSHAKE_REPLAY_CACHE: none */
};

/* A token bucket as a theoretical arrival time (GCRA), in microseconds. */
struct handshake_bucket {
	uint64_t tag; /* source: keyed hash of the host; 0 empty */
	uint64_t tat;
};

struct handshake_server {
	const struct keys_server *key; /* borrowed, outlives the server */
	struct keys_public pub;
	const struct keys_user *users; /* borrowed array of n_users */
	size_t n_users;
	/* Users by name: open addressing over the padded name, index + 1
	 * (0: empty), so an init finds its user in O(1), not O(users). */
	uint16_t name_ix[2 * HANDSHAKE_MAX_USERS];
	struct transport_params min, max, def; /* tparams_clamp bounds */
	uint32_t features;                     /* 4.6: what this server grants: TPARAMS_FEATURES and
	                                        * the optional ones def->features opted in to */
	/* Nothing stamped before this unix time (ms) is taken: the process
	 * start, so a restart does not reopen the window (0: no floor). */
	uint64_t start_ms;
	/* Replay cache of accepted inits (4.4). */
	struct handshake_seen seen[HANDSHAKE_REPLAY_CACHE];
	uint32_t seen_head[HANDSHAKE_REPLAY_CACHE];
	size_t seen_len, seen_next;
	/* Per user: inits stamped at or before this are refused (raised when
	 * the user's entry leaves the cache). */
	uint64_t floor_ts[HANDSHAKE_MAX_USERS];
	/* mac1 of inits refused after public-key work. */
	uint8_t refused[HANDSHAKE_REFUSED_CACHE][HANDSHAKE_MAC_LEN];
	/* X25519 budgets. */
	uint8_t src_key[16];
	struct handshake_bucket total, reserve, src[HANDSHAKE_SRC_SLOTS];
	struct handshake_refusal last_refusal; /* the latest refusal sent */
	struct handshake_counters n;
};

/* An init that passed every check, waiting for a session id. */
struct handshake_pending {
	uint32_t user;
	struct transport_params proposal; /* .wire, .features: what is agreed */
	uint8_t e_c[KEYS_LEN];
	uint8_t ck[KEYS_LEN], h[KEYS_LEN];
	uint16_t init_len; /* the response is never longer */
	bool ext;          /* the init had a version extension */
	uint8_t refuse;    /* enum handshake_refuse_reason */
	uint8_t peer_min, peer_max;
	bool has_instance; /* the init carried an instance id, feature agreed */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
};

/* handshake_server_init sets up s for key k (borrowed) and n_users users
 * (borrowed, 1..HANDSHAKE_MAX_USERS, names unique). min, max and def bound
 * the parameters the server accepts (valid, min <= def <= max).
 * def->features opts in to the optional features as in
 * handshake_client_init (s->features: what is granted). Returns 0 or
 * KS_ERR_INVAL. */
KS_MUST_CHECK int handshake_server_init(struct handshake_server *s, const struct keys_server *k,
                                        const struct keys_user *users, size_t n_users,
                                        const struct transport_params *min,
                                        const struct transport_params *max,
                                        const struct transport_params *def);

/* HANDSHAKE_USER_NONE: in a map of handshake_server_set_users, a user
 * that is gone. */
#define HANDSHAKE_USER_NONE UINT32_MAX

/* handshake_server_set_users swaps in users (borrowed, 1..HANDSHAKE_MAX_USERS,
 * names unique; a reload). map has one entry per old user: its index in
 * users, or HANDSHAKE_USER_NONE if it is gone. Replay floors follow their
 * users; a new user's floor is now_unix_ms (unix ms: an init it stamped
 * before the reload is refused as stale). Returns 0 or
 * KS_ERR_INVAL (s unchanged). */
KS_MUST_CHECK int handshake_server_set_users(struct handshake_server *s,
                                             const struct keys_user *users, size_t n_users,
                                             const uint32_t *map, uint64_t now_unix_ms);

/* handshake_server_read_init checks init d at unix time now_unix_ms. Cheap
 * checks first: length and session id 0, mac1, the refused set, the
 * (obfuscated) timestamp, replay-cache lookup, the X25519 budgets; then one
 * X25519 and at most two AEAD verifications, the second of which covers
 * the timestamp again, and the user's replay floor. On success the init is
 * recorded in the replay cache, *p is filled and 0 returned. Errors (only
 * counters and caches change, *p untouched): KS_ERR_PROTO (length, session
 * id, payload), KS_ERR_AUTH (mac1, DH, unknown user, AEAD, or bytes refused
 * before), KS_ERR_REPLAY, KS_ERR_STALE (timestamp more than
 * HANDSHAKE_CLOCK_SKEW_MS old or HANDSHAKE_FUTURE_MS ahead, before start_ms,
 * or at or below the user's floor), KS_ERR_LIMIT (over the X25519 budget).
 * KS_ERR_UNSUPPORTED: the init authenticated but no wire version fits; *p
 * is filled for handshake_server_write_refusal, the init is recorded. */
KS_MUST_CHECK int handshake_server_read_init(struct handshake_server *s, const uint8_t *d,
                                             size_t len, uint64_t now_unix_ms,
                                             struct handshake_pending *p);

/* handshake_server_read_init_from is read_init with the sender's address
 * (src_len bytes, a struct sockaddr_in or sockaddr_in6) for the per-source
 * budget, which counts per host: the IPv4 address, or the IPv6 /64 (the
 * whole address within ::/64, e.g. IPv4-mapped); the port and flow label
 * are ignored. src NULL: the total budget only. */
KS_MUST_CHECK int handshake_server_read_init_from(struct handshake_server *s, const uint8_t *d,
                                                  size_t len, uint64_t now_unix_ms,
                                                  const uint8_t *src, size_t src_len,
                                                  struct handshake_pending *p);

/* handshake_server_write_refusal answers pending init p (from a
 * KS_ERR_UNSUPPORTED read) with an authenticated refusal, at most as long
 * as the init; p is wiped. Returns the length, or KS_ERR_FULL, KS_ERR_INVAL
 * as handshake_server_write_response. s->last_refusal says what was sent. */
KS_MUST_CHECK ssize_t handshake_server_write_refusal(struct handshake_server *s,
                                                     struct handshake_pending *p,
                                                     const struct rng_source *rng, uint8_t *out,
                                                     size_t cap);

/* handshake_server_write_response answers pending init p with session id
 * sid (non-zero, unique, chosen by the caller), writes the response into
 * out and fills *res; p is wiped. Returns the response length (at most
 * HANDSHAKE_RESP_MAX, and never more than the init's), or KS_ERR_FULL
 * (cap < HANDSHAKE_RESP_MIN),
 * KS_ERR_INVAL (sid 0, or the rng gave an unusable key); p is kept then. */
KS_MUST_CHECK ssize_t handshake_server_write_response(struct handshake_server *s,
                                                      struct handshake_pending *p,
                                                      const struct rng_source *rng, uint64_t sid,
                                                      uint8_t *out, size_t cap,
                                                      struct handshake_result *res);

#endif
