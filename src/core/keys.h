/* keys.h - key material: generation, text encoding, users, and the key
 * schedule primitives (hash, KDF, keys derived from the server public key).
 *
 * Cryptography is libsodium: X25519 (crypto_scalarmult), BLAKE2b
 * (crypto_generichash). The KDF is HKDF (RFC 5869) with keyed BLAKE2b-256
 * in place of HMAC; docs/PROTOCOL.md (secure layer) section 3 gives every label.
 * Nothing here allocates; every secret that passes through a local is wiped.
 */
#ifndef KCPSOCKS_KEYS_H
#define KCPSOCKS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/rng.h"

/* The server's static X25519 key pair. */
struct keys_server {
	uint8_t pub[KEYS_LEN];
	uint8_t sec[KEYS_LEN];
};

/* Keys every holder of the server public key can compute (docs/PROTOCOL.md, secure layer 3.1):
 * hdr masks the session-id field of every datagram, obf hides handshake
 * ephemerals, mac1 keys the cheap pre-check of an init. */
struct keys_public {
	uint8_t spub[KEYS_LEN];
	uint8_t hdr[KEYS_LEN];
	uint8_t obf[KEYS_LEN];
	uint8_t mac1[KEYS_LEN];
};

/* One user a server accepts: a name and a 32-byte pre-shared key. */
struct keys_user {
	char name[KEYS_NAME_MAX + 1]; /* NUL-terminated, 1..KEYS_NAME_MAX bytes */
	uint8_t psk[KEYS_LEN];
};

/* keys_server_generate draws a secret key from rng and computes its public
 * key. Returns 0, or KS_ERR_INVAL if the drawn key is unusable (X25519 base
 * multiplication failed; not expected from a working rng). */
KS_MUST_CHECK int keys_server_generate(struct keys_server *k, const struct rng_source *rng);

/* keys_psk_generate fills psk with 32 bytes from rng. */
void keys_psk_generate(uint8_t psk[static KEYS_LEN], const struct rng_source *rng);

/* keys_encode writes key as base64url without padding plus a NUL into text
 * (KEYS_TEXT_LEN + 1 bytes). */
void keys_encode(char text[static KEYS_TEXT_LEN + 1], const uint8_t key[static KEYS_LEN]);

/* keys_decode parses exactly len bytes of text (no NUL needed) as a key in
 * the form keys_encode writes. Strict: exactly KEYS_TEXT_LEN characters of
 * the base64url alphabet, no padding, no whitespace, unused trailing bits
 * zero (one text per key). Returns 0 or KS_ERR_INVAL; key is written only
 * on success. */
KS_MUST_CHECK int keys_decode(uint8_t key[static KEYS_LEN], const char *text, size_t len);

/* keys_user_set validates name (1..KEYS_NAME_MAX bytes of [A-Za-z0-9._-])
 * and fills u. Returns 0 or KS_ERR_INVAL (u unchanged). */
KS_MUST_CHECK int keys_user_set(struct keys_user *u, const char *name,
                                const uint8_t psk[static KEYS_LEN]);

/* keys_derive_public computes the keys of struct keys_public from spub. */
void keys_derive_public(struct keys_public *kp, const uint8_t spub[static KEYS_LEN]);

/* --- key schedule primitives (PROTOCOL.md (secure layer) 3) --- */

/* keys_hash: out = BLAKE2b-256(a || b); b may be NULL when blen is 0. */
void keys_hash(uint8_t out[static KEYS_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
               size_t blen);

/* keys_kdf: HKDF with keyed BLAKE2b-256: prk = B(key=ck, ikm), then
 * out[i] = B(key=prk, out[i-1] || i+1) for i < n (n in 1..3). Each out[i]
 * is KEYS_LEN bytes; outputs may alias ck. */
void keys_kdf(uint8_t *out[], size_t n, const uint8_t ck[static KEYS_LEN], const uint8_t *ikm,
              size_t ikmlen);

/* keys_label: out = BLAKE2b-256(key=key, label), a labelled sub-key. */
void keys_label(uint8_t out[static KEYS_LEN], const uint8_t key[static KEYS_LEN],
                const char *label);

#endif
