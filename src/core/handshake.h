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
 * Sans-I/O: the caller passes the unix time in ms and an rng_source.
 * Nothing allocates; struct handshake_server is large (replay cache), so
 * put it on the heap.
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

/* Message sizes (secure.md 4.2, 4.3). */
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
};

/* What both sides hold after a handshake, each from its own viewpoint. */
struct handshake_result {
	uint64_t sid;                   /* chosen by the server, never 0 */
	uint32_t conv;                  /* KCP conversation id */
	struct transport_params params; /* what the server accepted */
	struct envelope_dir tx, rx;     /* this side's send and receive keys */
	uint32_t user;                  /* server: index into its users; client: 0 */
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
};

/* handshake_client_init configures c for server public key spub, user u
 * and a proposal (valid). Returns 0 or KS_ERR_INVAL. */
KS_MUST_CHECK int handshake_client_init(struct handshake_client *c,
                                        const uint8_t spub[static KEYS_LEN],
                                        const struct keys_user *u,
                                        const struct transport_params *proposal);

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
 * init and fills *res. State becomes DONE and the ephemeral is wiped.
 * Errors (c unchanged, res untouched): KS_ERR_STATE (not SENT), KS_ERR_PROTO
 * (length, session id field not 0, bad payload), KS_ERR_AUTH (mac2 or AEAD). */
KS_MUST_CHECK int handshake_client_read_response(struct handshake_client *c, const uint8_t *d,
                                                 size_t len, struct handshake_result *res);

/* handshake_client_wipe zeroes c, secrets included. */
void handshake_client_wipe(struct handshake_client *c);

/* Why inits were refused, and how many were accepted. */
struct handshake_counters {
	uint64_t bad_len, bad_mac1, replay, bad_dh, bad_user, bad_auth, bad_payload, stale,
	        accepted;
};

struct handshake_server {
	const struct keys_server *key; /* borrowed, outlives the server */
	struct keys_public pub;
	const struct keys_user *users; /* borrowed array of n_users */
	size_t n_users;
	struct transport_params min, max, def; /* tparams_clamp bounds */
	/* Replay cache of accepted inits (4.4): a ring in arrival order. */
	uint8_t cache_e[HANDSHAKE_REPLAY_CACHE][16]; /* ephemeral prefixes */
	uint64_t cache_ts[HANDSHAKE_REPLAY_CACHE];   /* their timestamps */
	size_t cache_len, cache_next;
	uint64_t floor_ts; /* inits stamped at or before this are refused */
	struct handshake_counters n;
};

/* An init that passed every check, waiting for a session id. */
struct handshake_pending {
	uint32_t user;
	struct transport_params proposal;
	uint8_t e_c[KEYS_LEN];
	uint8_t ck[KEYS_LEN], h[KEYS_LEN];
};

/* handshake_server_init sets up s for key k (borrowed) and n_users users
 * (borrowed, 1..HANDSHAKE_MAX_USERS, names unique). min, max and def bound
 * the parameters the server accepts (valid, min <= def <= max). Returns 0
 * or KS_ERR_INVAL. */
KS_MUST_CHECK int handshake_server_init(struct handshake_server *s, const struct keys_server *k,
                                        const struct keys_user *users, size_t n_users,
                                        const struct transport_params *min,
                                        const struct transport_params *max,
                                        const struct transport_params *def);

/* handshake_server_read_init checks init d at unix time now_unix_ms. Cheap
 * checks first: length and session id 0, mac1, the (obfuscated) timestamp,
 * replay-cache lookup; then one X25519 and at most two AEAD verifications,
 * the second of which covers the timestamp again. On
 * success the init is recorded in the replay cache, *p is filled and 0
 * returned. Errors (only a counter changes, *p untouched): KS_ERR_PROTO
 * (length, session id, payload), KS_ERR_AUTH (mac1, DH, unknown user,
 * AEAD), KS_ERR_REPLAY, KS_ERR_STALE (timestamp outside +-
 * HANDSHAKE_CLOCK_SKEW_MS, or older than the replay-cache floor). */
KS_MUST_CHECK int handshake_server_read_init(struct handshake_server *s, const uint8_t *d,
                                             size_t len, uint64_t now_unix_ms,
                                             struct handshake_pending *p);

/* handshake_server_write_response answers pending init p with session id
 * sid (non-zero, unique, chosen by the caller), writes the response into
 * out and fills *res; p is wiped. Returns the response length (at most
 * HANDSHAKE_RESP_MAX), or KS_ERR_FULL (cap < HANDSHAKE_RESP_MIN),
 * KS_ERR_INVAL (sid 0, or the rng gave an unusable key); p is kept then. */
KS_MUST_CHECK ssize_t handshake_server_write_response(struct handshake_server *s,
                                                      struct handshake_pending *p,
                                                      const struct rng_source *rng, uint64_t sid,
                                                      uint8_t *out, size_t cap,
                                                      struct handshake_result *res);

#endif
