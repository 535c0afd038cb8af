/* secure_fixture.h - the fixed keys, users and sessions shared by
 * fuzz_envelope_open.c, fuzz_handshake.c and gen_secure_corpus.c, so the
 * checked-in seeds are valid datagrams for the targets. Public headers
 * only; everything is derived from one prng seed. */
#ifndef KCPSOCKS_SECURE_FIXTURE_H
#define KCPSOCKS_SECURE_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "base/rng.h"
#include "core/envelope.h"
#include "core/handshake.h"
#include "core/keys.h"
#include "core/tparams.h"
#include "core/transport.h"

#define FIX_NOW_UNIX 1764000000000ULL

struct fixture {
	struct prng g;
	struct rng_source rng;
	struct keys_server key;
	struct keys_user users[2];
	struct transport_params tp;
	struct handshake_client sent; /* state SENT, its init in init[] */
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	size_t init_len;
	struct envelope cli, srv; /* the two ends of one data session */
	/* The same with AES-256-GCM agreed (secure layer 2.7), keys from their
	 * own prng so the ChaCha20 seeds above stay as they are; only where
	 * the CPU runs it (aes false: not set up). */
	bool aes;
	struct envelope acli, asrv;
};

/* fixture_aes_end makes one end of the AES-256-GCM session afresh (server:
 * the server's end), the same every time: an AES envelope owns its expanded
 * keys, so it is made, not copied by assignment, and envelope_wipe'd after. */
static inline void fixture_aes_end(struct envelope *e, const uint8_t hdr[static KEYS_LEN],
                                   bool server)
{
	struct envelope_dir a, b;
	struct transport_params etp;
	struct prng g;

	prng_seed(&g, 2027);
	prng_fill(&g, &a, sizeof a);
	prng_fill(&g, &b, sizeof b);
	tparams_default(&etp);
	etp.features = TPARAMS_FEAT_REKEY | TPARAMS_FEAT_AES_GCM;
	envelope_init(e, hdr, 0x5eed000000000002ULL, server ? &b : &a, server ? &a : &b, &etp, 0);
	sodium_memzero(&a, sizeof a);
	sodium_memzero(&b, sizeof b);
}

/* fixture_setup returns 0, or -1 if a step failed (never expected). */
static inline int fixture_setup(struct fixture *f)
{
	uint8_t psk[KEYS_LEN], hdr[KEYS_LEN];
	struct envelope_dir a, b;
	struct keys_public kp;
	ssize_t n;

	struct transport_params etp;

	if (sodium_init() < 0)
		return -1;
	memset(f, 0, sizeof *f);
	prng_seed(&f->g, 2026);
	f->rng = prng_source(&f->g);
	if (keys_server_generate(&f->key, &f->rng) != 0)
		return -1;
	keys_psk_generate(psk, &f->rng);
	if (keys_user_set(&f->users[0], "alice", psk) != 0)
		return -1;
	keys_psk_generate(psk, &f->rng);
	if (keys_user_set(&f->users[1], "bob", psk) != 0)
		return -1;
	tparams_default(&f->tp);
	if (handshake_client_init(&f->sent, f->key.pub, &f->users[0], &f->tp) != 0)
		return -1;
	n = handshake_client_write_init(&f->sent, &f->rng, FIX_NOW_UNIX, f->init, sizeof f->init);
	if (n < 0)
		return -1;
	f->init_len = (size_t)n;
	keys_derive_public(&kp, f->key.pub);
	memcpy(hdr, kp.hdr, KEYS_LEN);
	rng_fill(&f->rng, &a, sizeof a);
	rng_fill(&f->rng, &b, sizeof b);
	/* The envelopes agreed in-band rekeying (secure layer 8.1), so the
	 * phase bit and the next-epoch keys are reachable; epoch 0 is the
	 * wire of a session without it. */
	etp = f->tp;
	etp.features = TPARAMS_FEAT_REKEY;
	envelope_init(&f->cli, hdr, 0x5eed000000000001ULL, &a, &b, &etp, 0);
	envelope_init(&f->srv, hdr, 0x5eed000000000001ULL, &b, &a, &etp, 0);
	f->aes = crypto_aead_aes256gcm_is_available() != 0;
	if (f->aes) {
		fixture_aes_end(&f->acli, hdr, false);
		fixture_aes_end(&f->asrv, hdr, true);
	}
	sodium_memzero(&a, sizeof a);
	sodium_memzero(&b, sizeof b);
	return 0;
}

#endif
