/* envelope.c - AEAD, header protection and padding of one datagram.
 * Step numbers refer to docs/PROTOCOL.md (secure layer) section 2; the
 * AEAD is ChaCha20-Poly1305 or, when agreed, AES-256-GCM (2.7). */
#include "core/envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/rd.h"
#include "base/wr.h"

/* mask: ChaCha20 (IETF) keyed by key, block counter = first 4 sample bytes
 * (LE), nonce = the other 12; the first n bytes of keystream (2.3). */
static void mask(uint8_t *m, size_t n, const uint8_t key[static KEYS_LEN],
                 const uint8_t sample[static ENVELOPE_SAMPLE_LEN])
{
	static const uint8_t zero[ENVELOPE_SID_LEN] = { 0 };
	struct rd r = rd_init(sample, ENVELOPE_SAMPLE_LEN);
	uint32_t ic = 0;

	rd_u32le(&r, &ic);
	crypto_stream_chacha20_ietf_xor_ic(m, zero, n, r.p, ic, key);
}

void envelope_mask_sid(const uint8_t hdr[static KEYS_LEN], uint8_t *d, size_t len)
{
	uint8_t m[ENVELOPE_SID_LEN];

	(void)len;
	mask(m, sizeof m, hdr, d + ENVELOPE_HDR_LEN);
	for (size_t i = 0; i < ENVELOPE_SID_LEN; i++)
		d[i] ^= m[i];
}

int envelope_peek_sid(const uint8_t hdr[static KEYS_LEN], const uint8_t *d, size_t len,
                      uint64_t *sid)
{
	uint8_t f[ENVELOPE_SID_LEN];
	struct rd r;

	if (len < ENVELOPE_MIN_LEN || len > ENVELOPE_MAX_DATAGRAM)
		return KS_ERR_PROTO;
	mask(f, sizeof f, hdr, d + ENVELOPE_HDR_LEN);
	for (size_t i = 0; i < ENVELOPE_SID_LEN; i++)
		f[i] ^= d[i];
	r = rd_init(f, sizeof f);
	rd_u64le(&r, sid);
	return 0;
}

/* --- AES-256-GCM's expanded keys (2.7) --- */

/* gcm_use counts one AES-256-GCM datagram under the current keys; the
 * gcm_after-th expands both keys into a block (libsodium's precomputed
 * state, the fast path: its one-shot calls expand the key on every
 * datagram). Only a busy AES session pays the block (issue 19: ChaCha20
 * and idle sessions hold none). libsodium wants each state 16-byte
 * aligned; the stride keeps the second one aligned too. Out of memory:
 * the one-shot calls go on, and the next epoch tries again. */
static void gcm_use(struct envelope *e)
{
	uint8_t *b;

	if (e->gcm_tx || !e->aes_ok)
		return;
	if (e->epoch_dgrams < e->gcm_after) {
		e->epoch_dgrams++;
		return;
	}
	b = aligned_alloc(ENVELOPE_GCM_ALIGN, ENVELOPE_GCM_BYTES);
	if (!b)
		return;
	e->gcm_tx = (void *)b;
	e->gcm_rx = (void *)(b + ENVELOPE_GCM_STRIDE);
	(void)crypto_aead_aes256gcm_beforenm(e->gcm_tx, e->tx.key);
	(void)crypto_aead_aes256gcm_beforenm(e->gcm_rx, e->rx.key);
}

/* gcm_drop wipes and frees the block: the keys it holds are gone (a new
 * epoch, or the envelope's end); the count starts again. */
static void gcm_drop(struct envelope *e)
{
	if (e->gcm_tx) {
		sodium_memzero(e->gcm_tx, ENVELOPE_GCM_BYTES);
		free(e->gcm_tx);
	}
	e->gcm_tx = e->gcm_rx = NULL;
	e->epoch_dgrams = 0;
}

void envelope_init(struct envelope *e, const uint8_t hdr[static KEYS_LEN], uint64_t sid,
                   const struct envelope_dir *tx, const struct envelope_dir *rx,
                   const struct transport_params *p, uint64_t now)
{
	memset(e, 0, sizeof *e);
	memcpy(e->hdr, hdr, KEYS_LEN);
	e->sid = sid;
	e->tx = *tx;
	e->rx = *rx;
	e->mtu = p->mtu;
	e->pad_mode = p->pad_mode;
	e->pad_max = p->pad_max;
	replay_init(&e->rx_win);
	e->created_ms = now;
	e->last_rx_ms = now;
	e->silent_ms = ENVELOPE_PEER_SILENT_MS;
	e->rekey = (p->features & TPARAMS_FEAT_REKEY) != 0;
	e->confirmed = true; /* the handshake confirmed epoch 0 */
	e->epoch_start_ms = now;
	e->rekey_bytes = ENVELOPE_REKEY_BYTES;
	e->rekey_ms = ENVELOPE_REKEY_MS;
	e->grace_ms = ENVELOPE_REKEY_GRACE_MS;
	e->now_ms = now;
	e->aes = tparams_aes_gcm(p->features);
	/* A CPU property, not I/O: the handshake only agrees AES-256-GCM where
	 * the caller saw it available; this guard keeps a misconfigured caller
	 * from reaching an instruction the CPU lacks. */
	e->aes_ok = e->aes && crypto_aead_aes256gcm_is_available();
	e->gcm_after = ENVELOPE_GCM_AFTER;
}

void envelope_wipe(struct envelope *e)
{
	gcm_drop(e);
	sodium_memzero(e, sizeof *e);
}

void envelope_move(struct envelope *dst, struct envelope *src)
{
	*dst = *src;
	src->gcm_tx = src->gcm_rx = NULL; /* dst owns the block now */
	envelope_wipe(src);
}

size_t envelope_heap_bytes(const struct envelope *e) { return e->gcm_tx ? ENVELOPE_GCM_BYTES : 0; }

/* The AEAD nonce: the direction's IV with the counter XORed into its last
 * eight bytes, little-endian (2.2). */
static void nonce_of(uint8_t n[static ENVELOPE_IV_LEN], const uint8_t iv[static ENVELOPE_IV_LEN],
                     uint64_t ctr)
{
	memcpy(n, iv, ENVELOPE_IV_LEN);
	for (size_t i = 0; i < 8; i++)
		n[4 + i] ^= (uint8_t)(ctr >> (8 * i));
}

/* The unmasked header, which is also the AEAD associated data (2.1). */
static void header_of(uint8_t h[static ENVELOPE_HDR_LEN], uint64_t sid, uint64_t ctr)
{
	struct wr w = wr_init(h, ENVELOPE_HDR_LEN);

	wr_u64le(&w, sid);
	wr_u32le(&w, (uint32_t)ctr);
	wr_u16le(&w, (uint16_t)(ctr >> 32));
}

/* --- in-band rekeying (8.1) --- */

/* ratchet sets out to the keys of epoch `epoch` of one direction from d,
 * the keys of the epoch before: (key, iv) = KDF(ck = d.key, "kcpsocks v1
 * rekey" || u32le(epoch)), o1 the key, the first 12 bytes of o2 the IV. The
 * header-protection key is the session's and does not change. out may be d. */
static void ratchet(struct envelope_dir *out, const struct envelope_dir *d, uint32_t epoch)
{
	static const char label[] = "kcpsocks v1 rekey";
	uint8_t ikm[sizeof label - 1 + 4], k[KEYS_LEN], iv[KEYS_LEN];
	uint8_t *o[2] = { k, iv };
	struct wr w = wr_init(ikm, sizeof ikm);

	wr_bytes(&w, label, sizeof label - 1);
	wr_u32le(&w, epoch);
	keys_kdf(o, 2, d->key, ikm, sizeof ikm);
	if (out != d)
		memcpy(out->hp, d->hp, KEYS_LEN);
	memcpy(out->key, k, KEYS_LEN);
	memcpy(out->iv, iv, ENVELOPE_IV_LEN);
	sodium_memzero(k, sizeof k);
	sodium_memzero(iv, sizeof iv);
}

static uint64_t ctr_limit(const struct envelope *e)
{
	return e->rekey ? ENVELOPE_CTR_LIMIT_PHASED : ENVELOPE_CTR_LIMIT;
}

/* expire wipes the previous epoch's receive keys once the peer has been
 * heard under the current ones for the grace period. */
static void expire(struct envelope *e, uint64_t now)
{
	if (e->have_prev && e->confirmed && now >= e->prev_until_ms) {
		sodium_memzero(&e->prev, sizeof e->prev);
		e->have_prev = false;
	}
}

void envelope_tick(struct envelope *e, uint64_t now)
{
	if (now > e->now_ms)
		e->now_ms = now;
	expire(e, e->now_ms);
}

/* A side may start epoch + 1 only when the peer has been heard in the
 * current epoch and the keys of the one before are gone: at most three
 * receive key sets (previous, current, next) are ever candidates. */
static bool may_start(const struct envelope *e)
{
	return e->rekey && e->confirmed && !e->have_prev && e->epoch < UINT32_MAX;
}

/* start_epoch: this side moves to epoch + 1; the current receive keys stay
 * as prev until the peer has been heard under the new ones plus grace. */
static void start_epoch(struct envelope *e)
{
	sodium_memzero(&e->next_rx, sizeof e->next_rx);
	e->have_next = false;
	e->prev = e->rx;
	e->have_prev = true;
	e->epoch++;
	ratchet(&e->tx, &e->tx, e->epoch);
	ratchet(&e->rx, &e->rx, e->epoch);
	e->confirmed = false;
	e->epoch_start_ms = e->now_ms;
	e->epoch_sealed = 0;
	e->rekeys_started++;
	gcm_drop(e); /* the next busy stretch expands the new keys */
}

int envelope_rekey(struct envelope *e, uint64_t now)
{
	if (!e->rekey)
		return KS_ERR_UNSUPPORTED;
	envelope_tick(e, now);
	if (!may_start(e))
		return KS_ERR_AGAIN;
	start_epoch(e);
	return 0;
}

static bool rekey_due(const struct envelope *e)
{
	return e->epoch_sealed >= e->rekey_bytes || e->now_ms - e->epoch_start_ms >= e->rekey_ms;
}

/* pad_len picks the padding of one datagram whose unpadded size is need,
 * never letting it grow past room (2.4). */
static size_t pad_len(const struct envelope *e, const struct rng_source *rng, size_t need,
                      size_t room)
{
	size_t pad = 0, spare = room - need;

	if (e->pad_mode == TPARAMS_PAD_RANDOM && e->pad_max) {
		uint32_t v;

		rng_fill(rng, &v, sizeof v);
		pad = (size_t)(((uint64_t)v * (e->pad_max + 1u)) >> 32);
	} else if (e->pad_mode == TPARAMS_PAD_BUCKET && e->pad_max) {
		pad = (e->pad_max - need % e->pad_max) % e->pad_max;
	}
	return pad < spare ? pad : spare;
}

ssize_t envelope_seal(struct envelope *e, const struct rng_source *rng, const uint8_t *payload,
                      size_t len, uint8_t *out, size_t cap)
{
	size_t room = cap < e->mtu ? cap : e->mtu;
	size_t need = ENVELOPE_OVERHEAD + len, pad, ptlen;
	uint8_t h[ENVELOPE_HDR_LEN], n[ENVELOPE_IV_LEN], m[ENVELOPE_HDR_LEN];
	uint8_t *pt = out + ENVELOPE_HDR_LEN;
	struct wr w;

	uint64_t field;

	if (e->aes && !e->aes_ok)
		return KS_ERR_UNSUPPORTED;
	if (e->send_ctr >= ctr_limit(e))
		return KS_ERR_LIMIT;
	if (len > ENVELOPE_MAX_DATAGRAM || need > room)
		return KS_ERR_TOOBIG;
	if (e->rekey) {
		expire(e, e->now_ms);
		if (may_start(e) && rekey_due(e))
			start_epoch(e);
	}
	field = e->send_ctr;
	if (e->rekey && (e->epoch & 1))
		field |= ENVELOPE_PHASE_BIT;
	pad = pad_len(e, rng, need, room);
	/* 2.1: payload || zeros || u16le pad length, encrypted in place. */
	if (len && payload != pt)
		memmove(pt, payload, len);
	w = wr_init(pt + len, pad + ENVELOPE_PADLEN_LEN);
	memset(w.p, 0, pad);
	w.p += pad;
	wr_u16le(&w, (uint16_t)pad);
	ptlen = len + pad + ENVELOPE_PADLEN_LEN;
	header_of(h, e->sid, field);
	nonce_of(n, e->tx.iv, e->send_ctr);
	if (e->aes)
		gcm_use(e);
	if (e->aes && e->gcm_tx)
		crypto_aead_aes256gcm_encrypt_afternm(pt, NULL, pt, ptlen, h, sizeof h, NULL, n,
		                                      e->gcm_tx);
	else if (e->aes)
		crypto_aead_aes256gcm_encrypt(pt, NULL, pt, ptlen, h, sizeof h, NULL, n, e->tx.key);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt(pt, NULL, pt, ptlen, h, sizeof h, NULL, n,
		                                          e->tx.key);
	/* 2.3: header protection from the ciphertext sample. */
	mask(m, ENVELOPE_SID_LEN, e->hdr, pt);
	mask(m + ENVELOPE_SID_LEN, ENVELOPE_CTR_LEN, e->tx.hp, pt);
	for (size_t i = 0; i < ENVELOPE_HDR_LEN; i++)
		out[i] = h[i] ^ m[i];
	e->send_ctr++;
	e->epoch_sealed += need + pad;
	return (ssize_t)(need + pad);
}

static ssize_t refuse(struct envelope *e, int err)
{
	e->dropped++;
	return err;
}

/* Which receive keys opened a datagram (8.1). */
enum which { WHICH_CUR, WHICH_PREV, WHICH_NEXT };

/* decrypt_with: one AEAD verification of d under dir; the header field
 * (phase bit included) is the associated data, the counter alone goes into
 * the nonce. With AES-256-GCM, gcm is dir's expanded key (NULL: expand it
 * for this one call, the previous or next epoch's rare datagrams). out is
 * zeroed on failure. */
static int decrypt_with(const struct envelope *e, const struct envelope_dir *dir,
                        const crypto_aead_aes256gcm_state *gcm, const uint8_t *d, size_t len,
                        uint64_t sid, uint64_t field, uint64_t ctr, uint8_t *out)
{
	uint8_t h[ENVELOPE_HDR_LEN], n[ENVELOPE_IV_LEN];
	size_t ptlen = len - ENVELOPE_HDR_LEN - ENVELOPE_TAG_LEN;
	const uint8_t *c = d + ENVELOPE_HDR_LEN, *tag = d + len - ENVELOPE_TAG_LEN;
	int rc;

	header_of(h, sid, field);
	nonce_of(n, dir->iv, ctr);
	if (!e->aes)
		return crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, c, ptlen, tag,
		                                                          h, sizeof h, n, dir->key);
	if (gcm)
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, c, ptlen, tag, h,
		                                                    sizeof h, n, gcm);
	else
		rc = crypto_aead_aes256gcm_decrypt_detached(out, NULL, c, ptlen, tag, h, sizeof h,
		                                            n, dir->key);
	if (rc != 0)
		sodium_memzero(out, ptlen);
	return rc;
}

/* authenticate picks the receive keys by the datagram's phase bit and
 * counter and verifies d (8.1): the current phase goes to the current keys;
 * the other phase is the previous epoch when its counter is below the first
 * one seen in this epoch (or the peer has not been heard in it yet) and the
 * next epoch otherwise (0 in epoch 0, where there is no previous one). At most two AEAD
 * verifications, the second only while the previous keys are kept and the peer has not been heard
 * under the current ones. On success *which says which keys (WHICH_NEXT: e->next_rx, derived once
 * per epoch so that forgeries cost no KDF, which only envelope_open adopts). */
static int authenticate(struct envelope *e, const uint8_t *d, size_t len, uint64_t sid,
                        uint64_t field, uint64_t ctr, uint8_t *out, enum which *which)
{
	bool phase = e->rekey && (field & ENVELOPE_PHASE_BIT);

	if (phase == (e->rekey && (e->epoch & 1))) {
		*which = WHICH_CUR;
		return decrypt_with(e, &e->rx, e->gcm_rx, d, len, sid, field, ctr, out);
	}
	if (e->have_prev && (!e->confirmed || ctr < e->epoch_first_ctr)) {
		*which = WHICH_PREV;
		if (decrypt_with(e, &e->prev, NULL, d, len, sid, field, ctr, out) == 0)
			return 0;
	}
	if ((!e->confirmed || ctr >= e->epoch_first_ctr) && e->epoch < UINT32_MAX) {
		*which = WHICH_NEXT;
		if (!e->have_next) { /* derived once per epoch, not per forgery */
			ratchet(&e->next_rx, &e->rx, e->epoch + 1);
			e->have_next = true;
		}
		if (decrypt_with(e, &e->next_rx, NULL, d, len, sid, field, ctr, out) == 0)
			return 0;
	}
	return -1;
}

/* follow: the peer started the next epoch and d opened under its keys; this
 * side moves too (its sending keys as well) and keeps the current receive
 * keys for the grace period. */
static void follow(struct envelope *e, uint64_t ctr, uint64_t now)
{
	e->prev = e->rx;
	e->have_prev = true;
	e->rx = e->next_rx;
	sodium_memzero(&e->next_rx, sizeof e->next_rx);
	e->have_next = false;
	e->epoch++;
	ratchet(&e->tx, &e->tx, e->epoch);
	e->confirmed = true;
	e->epoch_first_ctr = ctr;
	e->prev_until_ms = now + e->grace_ms;
	e->epoch_start_ms = now;
	e->epoch_sealed = 0;
	e->rekeys_followed++;
	gcm_drop(e); /* the next busy stretch expands the new keys */
}

/* heard_current: d opened under the current receive keys. 8.1: the first
 * word of the peer in this epoch confirms it; 2.7: one more datagram
 * towards expanding the AES keys. */
static void heard_current(struct envelope *e, uint64_t ctr, uint64_t now)
{
	if (e->aes)
		gcm_use(e);
	if (!e->rekey)
		return;
	if (!e->confirmed) {
		e->confirmed = true;
		e->epoch_first_ctr = ctr;
		e->prev_until_ms = now + e->grace_ms;
	} else if (ctr < e->epoch_first_ctr) {
		e->epoch_first_ctr = ctr;
	}
}

/* unmask_header recovers sid, the counter field and the counter of d (2.5
 * steps 2 and 3); with rekeying the field's top bit is the phase, not part
 * of the counter. */
static void unmask_header(const struct envelope *e, const uint8_t *d, uint64_t *sid,
                          uint64_t *field, uint64_t *ctr)
{
	uint8_t m[ENVELOPE_HDR_LEN], h[ENVELOPE_HDR_LEN];
	uint32_t lo = 0;
	uint16_t hi = 0;
	struct rd r;

	mask(m, ENVELOPE_SID_LEN, e->hdr, d + ENVELOPE_HDR_LEN);
	mask(m + ENVELOPE_SID_LEN, ENVELOPE_CTR_LEN, e->rx.hp, d + ENVELOPE_HDR_LEN);
	for (size_t i = 0; i < ENVELOPE_HDR_LEN; i++)
		h[i] = d[i] ^ m[i];
	r = rd_init(h, sizeof h);
	rd_u64le(&r, sid);
	rd_u32le(&r, &lo);
	rd_u16le(&r, &hi);
	*field = (uint64_t)hi << 32 | lo;
	*ctr = e->rekey ? *field & ~ENVELOPE_PHASE_BIT : *field;
}

ssize_t envelope_open(struct envelope *e, const uint8_t *d, size_t len, uint64_t now, uint8_t *out,
                      size_t cap, struct envelope_rx *rx)
{
	enum which which = WHICH_CUR;
	uint64_t sid, field, ctr;
	size_t ctlen, ptlen;
	uint16_t pad = 0;
	struct rd r;

	/* 2.5 step 1: length bounds before any work. */
	if (len < ENVELOPE_MIN_LEN || len > ENVELOPE_MAX_DATAGRAM)
		return refuse(e, KS_ERR_PROTO);
	ctlen = len - ENVELOPE_HDR_LEN;
	ptlen = ctlen - ENVELOPE_TAG_LEN;
	if (cap < ptlen)
		return refuse(e, KS_ERR_FULL);
	if (e->aes && !e->aes_ok)
		return refuse(e, KS_ERR_UNSUPPORTED);
	if (e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return refuse(e, KS_ERR_LIMIT);
	if (e->rekey)
		envelope_tick(e, now);
	/* Steps 2-4: session id and counter, then the replay window. */
	unmask_header(e, d, &sid, &field, &ctr);
	if (sid != e->sid)
		return refuse(e, KS_ERR_AUTH);
	if (replay_check(&e->rx_win, ctr) != 0)
		return refuse(e, KS_ERR_REPLAY);
	/* Step 5: AEAD verification (8.1: under the keys the phase names);
	 * libsodium zeroes out on failure. */
	if (authenticate(e, d, len, sid, field, ctr, out, &which) != 0) {
		e->forgeries++;
		return refuse(e, KS_ERR_AUTH);
	}
	/* Step 6: the padding length, last two plaintext bytes. */
	r = rd_init(out + ptlen - ENVELOPE_PADLEN_LEN, ENVELOPE_PADLEN_LEN);
	rd_u16le(&r, &pad);
	if (pad > ptlen - ENVELOPE_PADLEN_LEN) {
		sodium_memzero(out, ptlen);
		return refuse(e, KS_ERR_PROTO);
	}
	/* Step 7: commit; 8.1: a new epoch, or the first word in this one. */
	if (which == WHICH_NEXT)
		follow(e, ctr, now);
	else if (which == WHICH_CUR)
		heard_current(e, ctr, now);
	rx->ctr = ctr;
	rx->newest = replay_update(&e->rx_win, ctr);
	e->last_rx_ms = now;
	e->opened++;
	return (ssize_t)(ptlen - ENVELOPE_PADLEN_LEN - pad);
}

int envelope_verify(struct envelope *e, const uint8_t *d, size_t len)
{
	uint8_t pt[ENVELOPE_MAX_DATAGRAM];
	enum which which = WHICH_CUR;
	uint64_t sid, field, ctr;
	size_t ptlen;
	int rc;

	if (len < ENVELOPE_MIN_LEN || len > ENVELOPE_MAX_DATAGRAM)
		return (int)refuse(e, KS_ERR_PROTO);
	if (e->aes && !e->aes_ok)
		return (int)refuse(e, KS_ERR_UNSUPPORTED);
	if (e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return (int)refuse(e, KS_ERR_LIMIT);
	unmask_header(e, d, &sid, &field, &ctr);
	if (sid != e->sid)
		return (int)refuse(e, KS_ERR_AUTH);
	/* 2.5 step 5 without the window (steps 4 and 7); the plaintext is
	 * not wanted and is wiped; only
	 * envelope_open moves the epoch. */
	ptlen = len - ENVELOPE_HDR_LEN - ENVELOPE_TAG_LEN;
	rc = authenticate(e, d, len, sid, field, ctr, pt, &which);
	sodium_memzero(pt, ptlen);
	if (rc != 0) {
		e->forgeries++;
		return (int)refuse(e, KS_ERR_AUTH);
	}
	return 0;
}

enum envelope_status envelope_status(const struct envelope *e, uint64_t now, uint64_t unacked_since)
{
	if (e->send_ctr >= ctr_limit(e) || e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return ENVELOPE_EXHAUSTED;
	if (unacked_since != ENVELOPE_NOTHING_UNACKED && now >= unacked_since + e->silent_ms &&
	    now >= e->last_rx_ms + e->silent_ms)
		return ENVELOPE_PEER_SILENT;
	if (e->rekey) /* 8.1: the envelope rekeys by itself */
		return ENVELOPE_OK;
	if (e->send_ctr >= ENVELOPE_REKEY_AFTER_PACKETS ||
	    now >= e->created_ms + ENVELOPE_REKEY_AFTER_MS)
		return ENVELOPE_REKEY_DUE;
	return ENVELOPE_OK;
}
