/* envelope.h - seal and open one datagram of an established session.
 *
 * Every kcpsocks datagram is an envelope (docs/PROTOCOL.md (secure layer) 2):
 *
 *   0   8  session id, masked with the server header key (keys_public.hdr)
 *   8   6  48-bit packet counter, masked with the session's hp key (with
 *          TPARAMS_FEAT_REKEY: top bit = key phase, 47-bit counter)
 *  14   n  AEAD of payload || zero padding || u16le pad length, tag last;
 *          the unmasked 14 header bytes are the AD. The AEAD is
 *          ChaCha20-Poly1305 (IETF), or AES-256-GCM when the session agreed
 *          it (tparams_aes_gcm, secure layer 2.7): same keys, same 96-bit
 *          nonce (IV XOR counter), same 16-byte tag, same layout
 *
 * Both masks come from ChaCha20 keyed by the mask key with the 16 bytes at
 * offset 14 (the start of the ciphertext) as counter and nonce, as QUIC
 * header protection does. Session id 0 is reserved: it marks a handshake
 * message (handshake.h), which shares the same first-8-byte masking.
 *
 * Receiving, a client tells datagrams apart the same way the server does
 * (docs/PROTOCOL.md, secure layer 6.4): envelope_peek_sid with the server header key; 0 is a
 * handshake response (handshake_client_read_response), its own session id
 * goes to envelope_open, anything else is dropped.
 *
 * Overhead is ENVELOPE_OVERHEAD (32) bytes plus the padding the session's
 * transport parameters ask for. Not thread-safe: one struct envelope belongs
 * to one caller.
 *
 * Memory: a ChaCha20-Poly1305 envelope owns no heap memory. An
 * AES-256-GCM one expands its current keys into a block of
 * ENVELOPE_GCM_BYTES once it is busy: after ENVELOPE_GCM_AFTER datagrams
 * under one epoch's keys (until then, and for an idle session that only
 * sends keepalives, libsodium expands the key per datagram). The block goes
 * at the next key epoch (at most ENVELOPE_REKEY_MS later while datagrams
 * flow) and with envelope_wipe. So seal and open allocate at most once per
 * key epoch, every envelope that was initialised ends with envelope_wipe,
 * and an AES-256-GCM envelope is never copied by assignment (the copy would
 * share, and its wipe free, the original's block).
 */
#ifndef KCPSOCKS_ENVELOPE_H
#define KCPSOCKS_ENVELOPE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/rng.h"
#include "core/keys.h"
#include "core/replay.h"
#include "core/tparams.h"

enum { ENVELOPE_IV_LEN = 12 };

/* The heap block of an AES-256-GCM envelope: the expanded tx and rx keys,
 * crypto_aead_aes256gcm_statebytes() each rounded up to libsodium's 16-byte
 * alignment (1024 bytes with libsodium 1.0.18). */
#define ENVELOPE_GCM_ALIGN 16
#define ENVELOPE_GCM_STRIDE                                                                        \
	((crypto_aead_aes256gcm_statebytes() + ENVELOPE_GCM_ALIGN - 1) &                           \
	 ~(size_t)(ENVELOPE_GCM_ALIGN - 1))
#define ENVELOPE_GCM_BYTES (2 * ENVELOPE_GCM_STRIDE)
/* Datagrams sealed or opened under one epoch's keys before they are
 * expanded: more than an idle session's keepalives in ENVELOPE_REKEY_MS,
 * a few hundred kilobytes of a transfer. */
#define ENVELOPE_GCM_AFTER 64

/* In-band rekeying (docs/PROTOCOL.md (secure layer) 8.1), used only when the
 * session agreed TPARAMS_FEAT_REKEY. The top bit of the 48-bit counter field
 * is then the key phase (the parity of the key epoch) and counters stop one
 * short of 2^47; without the feature the field is the plain counter. */
#define ENVELOPE_PHASE_BIT        (1ULL << 47)
#define ENVELOPE_CTR_LIMIT_PHASED ((1ULL << 47) - 1)
#define ENVELOPE_REKEY_BYTES      (1ULL << 30)        /* N: bytes sealed per epoch */
#define ENVELOPE_REKEY_MS         (15ULL * 60 * 1000) /* M: age of an epoch */
#define ENVELOPE_REKEY_GRACE_MS   3000ULL             /* previous rx keys kept */

/* The keys of one direction, from the handshake's key schedule. */
struct envelope_dir {
	uint8_t key[KEYS_LEN];       /* AEAD key */
	uint8_t iv[ENVELOPE_IV_LEN]; /* XORed with the counter into the nonce */
	uint8_t hp[KEYS_LEN];        /* counter-field mask key */
};

struct envelope {
	uint8_t hdr[KEYS_LEN]; /* session-id mask key, shared by the server's clients */
	uint64_t sid;          /* never 0 */
	struct envelope_dir tx, rx;
	uint16_t mtu; /* from the agreed transport parameters */
	uint8_t pad_mode;
	uint16_t pad_max;
	uint64_t send_ctr; /* next counter to seal */
	struct replay rx_win;
	uint64_t created_ms; /* now at envelope_init */
	uint64_t last_rx_ms; /* now of the last datagram that opened */
	uint32_t silent_ms;  /* envelope_status threshold, ENVELOPE_PEER_SILENT_MS */
	uint64_t forgeries;  /* datagrams for this sid that failed the AEAD */
	uint64_t opened;     /* datagrams accepted */
	uint64_t dropped;    /* datagrams refused, any reason */
	/* In-band rekeying (8.1), only when rekey is set. */
	bool rekey;                  /* TPARAMS_FEAT_REKEY agreed */
	bool confirmed;              /* a datagram opened under the current rx keys */
	bool have_prev;              /* prev holds the previous epoch's rx keys */
	uint32_t epoch;              /* key epoch: 0 after the handshake, +1 per rekey */
	struct envelope_dir prev;    /* rx keys of epoch - 1 (hp unused) */
	uint64_t prev_until_ms;      /* confirmed && have_prev: prev wiped from then */
	bool have_next;              /* next_rx is derived (on the first datagram of
	                              * the other phase that needed it) */
	struct envelope_dir next_rx; /* rx keys of epoch + 1, derivable from rx */
	uint64_t epoch_first_ctr; /* lowest counter opened under the current rx keys (0 in epoch 0)
	                           */
	uint64_t epoch_start_ms;  /* when this side entered the current epoch */
	uint64_t epoch_sealed;    /* bytes sealed under the current tx keys */
	uint64_t rekey_bytes;     /* N, ENVELOPE_REKEY_BYTES (tests lower it) */
	uint64_t rekey_ms;        /* M, ENVELOPE_REKEY_MS */
	uint64_t grace_ms;        /* ENVELOPE_REKEY_GRACE_MS */
	uint64_t now_ms;          /* latest now seen (open, tick) */
	uint64_t rekeys_started;  /* epochs this side started */
	uint64_t rekeys_followed; /* epochs the peer started */
	/* AES-256-GCM (2.7), only when aes is set. */
	bool aes;    /* tparams_aes_gcm(agreed features) */
	bool aes_ok; /* aes and this CPU runs it; aes && !aes_ok: seal and
	              * open refuse with KS_ERR_UNSUPPORTED (never reached
	              * through the handshake, which advertises only what runs) */
	/* tx.key and rx.key expanded once the epoch is busy: one owned block
	 * of ENVELOPE_GCM_BYTES (gcm_tx its start, gcm_rx a view into it);
	 * NULL until then, unless aes_ok, or when the allocation failed: every
	 * datagram then expands its key itself (same bytes on the wire). */
	crypto_aead_aes256gcm_state *gcm_tx, *gcm_rx;
	uint32_t epoch_dgrams; /* sealed + opened under the current keys, up to gcm_after */
	uint32_t gcm_after;    /* ENVELOPE_GCM_AFTER (tests change it) */
};

/* What envelope_open learnt besides the payload. */
struct envelope_rx {
	uint64_t ctr; /* the datagram's counter */
	bool newest;  /* the highest counter accepted so far */
};

enum envelope_status {
	ENVELOPE_OK = 0,
	ENVELOPE_REKEY_DUE,   /* soft limit passed: handshake again soon (never with
	                       * TPARAMS_FEAT_REKEY: the envelope rekeys in band) */
	ENVELOPE_PEER_SILENT, /* data outstanding, no reply: handshake again now */
	ENVELOPE_EXHAUSTED,   /* hard limit: seal/open refuse; handshake again */
};

#define ENVELOPE_NOTHING_UNACKED UINT64_MAX

/* envelope_init sets up e for session sid (non-zero) with the direction
 * keys from the handshake, the header key of the server (keys_public.hdr)
 * and the agreed parameters p (valid). now is the current time in ms. e is
 * new memory or was wiped (envelope_wipe): init does not free what e held.
 * It allocates nothing; see "Memory" above for AES-256-GCM's block, whose
 * allocation failing is not an error (the key is then expanded per
 * datagram). */
void envelope_init(struct envelope *e, const uint8_t hdr[static KEYS_LEN], uint64_t sid,
                   const struct envelope_dir *tx, const struct envelope_dir *rx,
                   const struct transport_params *p, uint64_t now);

/* envelope_wipe zeroes e, keys included, and frees what it owns. A
 * wiped (or zeroed) envelope may be wiped again. */
void envelope_wipe(struct envelope *e);

/* envelope_move makes dst the envelope src was (what it owns goes with
 * it) and wipes src. An envelope is never copied with `=`: two copies
 * would share one heap block. */
void envelope_move(struct envelope *dst, struct envelope *src);

/* envelope_heap_bytes is the heap memory e owns besides sizeof *e:
 * ENVELOPE_GCM_BYTES while an AES-256-GCM session holds its expanded keys,
 * 0 otherwise (always 0 for ChaCha20-Poly1305). */
size_t envelope_heap_bytes(const struct envelope *e);

/* envelope_peek_sid removes the session-id mask of datagram d with the
 * server header key and stores the session id (0: a handshake message) in
 * *sid. Costs one ChaCha20 block, changes nothing. Returns 0, or
 * KS_ERR_PROTO when len is outside [ENVELOPE_MIN_LEN, ENVELOPE_MAX_DATAGRAM]. */
KS_MUST_CHECK int envelope_peek_sid(const uint8_t hdr[static KEYS_LEN], const uint8_t *d,
                                    size_t len, uint64_t *sid);

/* envelope_mask_sid XORs the session-id mask into d[0..8), the mask being
 * computed from d[14..30) (so it is its own inverse). len must be at least
 * ENVELOPE_HDR_LEN + ENVELOPE_SAMPLE_LEN. Used by the handshake to write the
 * reserved session id 0. */
void envelope_mask_sid(const uint8_t hdr[static KEYS_LEN], uint8_t *d, size_t len);

/* envelope_seal writes payload as one datagram into out and returns its
 * length: ENVELOPE_OVERHEAD + len + padding, never more than min(cap, mtu).
 * payload may be out + ENVELOPE_HDR_LEN (in place); otherwise the buffers
 * must not overlap. rng draws the padding length. Errors (e unchanged, out
 * undefined): KS_ERR_TOOBIG when ENVELOPE_OVERHEAD + len does not fit;
 * KS_ERR_LIMIT when the counter is spent (rehandshake); KS_ERR_UNSUPPORTED
 * when the session agreed AES-256-GCM and this CPU cannot run it. */
KS_MUST_CHECK ssize_t envelope_seal(struct envelope *e, const struct rng_source *rng,
                                    const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/* envelope_open authenticates datagram d and writes its payload to out
 * (not overlapping d; cap >= len - ENVELOPE_HDR_LEN - ENVELOPE_TAG_LEN,
 * ENVELOPE_MAX_DATAGRAM always suffices). Returns the payload length and
 * fills *rx; the replay window and last_rx_ms advance. Order of checks,
 * cheapest first: length, session id, replay window, then one AEAD
 * verification. Errors leave the window unchanged, count in dropped (and
 * forgeries for a failed AEAD) and leave no plaintext in out (untouched,
 * or zeroed after a failed verification): KS_ERR_PROTO
 * (length, or a malformed padding length), KS_ERR_AUTH (another session id,
 * or the AEAD failed), KS_ERR_REPLAY, KS_ERR_LIMIT (forgery limit reached),
 * KS_ERR_FULL (cap too small). */
KS_MUST_CHECK ssize_t envelope_open(struct envelope *e, const uint8_t *d, size_t len, uint64_t now,
                                    uint8_t *out, size_t cap, struct envelope_rx *rx);

/* envelope_verify authenticates d like envelope_open but ignores and keeps
 * the replay window, writes no payload out and changes nothing but the
 * counters (dropped, forgeries) and the cached next-epoch keys (it never
 * moves the epoch). For a datagram envelope_open refused as
 * KS_ERR_REPLAY: is it a genuine copy? (The session table uses it to see
 * the proven path speak while a raced copy took the counter first,
 * PROTOCOL.md (secure) 6.2.) Returns 0 (genuine), KS_ERR_PROTO,
 * KS_ERR_AUTH, KS_ERR_LIMIT, KS_ERR_UNSUPPORTED. */
KS_MUST_CHECK int envelope_verify(struct envelope *e, const uint8_t *d, size_t len);

/* envelope_status tells the caller whether to handshake again. unacked_since
 * is when the oldest data still unacknowledged was first sent (the KCP
 * layer knows), or ENVELOPE_NOTHING_UNACKED. PEER_SILENT: data has been
 * outstanding for silent_ms and nothing authenticated arrived for silent_ms
 * (the server restarted, or the path is gone). */
enum envelope_status envelope_status(const struct envelope *e, uint64_t now,
                                     uint64_t unacked_since);

/* envelope_tick tells e the time: the previous epoch's receive keys are
 * wiped once their grace period is over, and a rekey due by age (M) starts
 * at the next seal. envelope_open does the same with its now. */
void envelope_tick(struct envelope *e, uint64_t now);

/* envelope_rekey starts the next key epoch now (8.1), as a seal past N
 * bytes or M ms does by itself: from the next seal on, datagrams go out
 * under the next keys. Returns 0, KS_ERR_UNSUPPORTED without the feature,
 * or KS_ERR_AGAIN while the current epoch is not yet confirmed by the peer
 * or the previous receive keys are still kept. */
KS_MUST_CHECK int envelope_rekey(struct envelope *e, uint64_t now);

#endif
