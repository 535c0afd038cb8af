/* envelope.c - AEAD, header protection and padding of one datagram.
 * Step numbers refer to docs/PROTOCOL.md (secure layer) section 2. */
#include "core/envelope.h"

#include <sodium.h>
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
}

void envelope_wipe(struct envelope *e) { sodium_memzero(e, sizeof *e); }

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

	if (e->send_ctr >= ENVELOPE_CTR_LIMIT)
		return KS_ERR_LIMIT;
	if (len > ENVELOPE_MAX_DATAGRAM || need > room)
		return KS_ERR_TOOBIG;
	pad = pad_len(e, rng, need, room);
	/* 2.1: payload || zeros || u16le pad length, encrypted in place. */
	if (len && payload != pt)
		memmove(pt, payload, len);
	w = wr_init(pt + len, pad + ENVELOPE_PADLEN_LEN);
	memset(w.p, 0, pad);
	w.p += pad;
	wr_u16le(&w, (uint16_t)pad);
	ptlen = len + pad + ENVELOPE_PADLEN_LEN;
	header_of(h, e->sid, e->send_ctr);
	nonce_of(n, e->tx.iv, e->send_ctr);
	crypto_aead_chacha20poly1305_ietf_encrypt(pt, NULL, pt, ptlen, h, sizeof h, NULL, n,
	                                          e->tx.key);
	/* 2.3: header protection from the ciphertext sample. */
	mask(m, ENVELOPE_SID_LEN, e->hdr, pt);
	mask(m + ENVELOPE_SID_LEN, ENVELOPE_CTR_LEN, e->tx.hp, pt);
	for (size_t i = 0; i < ENVELOPE_HDR_LEN; i++)
		out[i] = h[i] ^ m[i];
	e->send_ctr++;
	return (ssize_t)(need + pad);
}

/* unmask_header recovers sid and counter of d (2.5 steps 2 and 3). */
static void unmask_header(const struct envelope *e, const uint8_t *d, uint64_t *sid, uint64_t *ctr)
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
	*ctr = (uint64_t)hi << 32 | lo;
}

static ssize_t refuse(struct envelope *e, int err)
{
	e->dropped++;
	return err;
}

ssize_t envelope_open(struct envelope *e, const uint8_t *d, size_t len, uint64_t now, uint8_t *out,
                      size_t cap, struct envelope_rx *rx)
{
	uint8_t h[ENVELOPE_HDR_LEN], n[ENVELOPE_IV_LEN];
	uint64_t sid, ctr;
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
	if (e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return refuse(e, KS_ERR_LIMIT);
	/* Steps 2-4: session id and counter, then the replay window. */
	unmask_header(e, d, &sid, &ctr);
	if (sid != e->sid)
		return refuse(e, KS_ERR_AUTH);
	if (replay_check(&e->rx_win, ctr) != 0)
		return refuse(e, KS_ERR_REPLAY);
	/* Step 5: one AEAD verification; libsodium zeroes out on failure. */
	header_of(h, sid, ctr);
	nonce_of(n, e->rx.iv, ctr);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, d + ENVELOPE_HDR_LEN,
	                                                       ptlen, d + len - ENVELOPE_TAG_LEN, h,
	                                                       sizeof h, n, e->rx.key) != 0) {
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
	/* Step 7: commit. */
	rx->ctr = ctr;
	rx->newest = replay_update(&e->rx_win, ctr);
	e->last_rx_ms = now;
	e->opened++;
	return (ssize_t)(ptlen - ENVELOPE_PADLEN_LEN - pad);
}

int envelope_verify(struct envelope *e, const uint8_t *d, size_t len)
{
	uint8_t h[ENVELOPE_HDR_LEN], n[ENVELOPE_IV_LEN], pt[ENVELOPE_MAX_DATAGRAM];
	uint64_t sid, ctr;
	size_t ptlen;
	int rc;

	if (len < ENVELOPE_MIN_LEN || len > ENVELOPE_MAX_DATAGRAM)
		return (int)refuse(e, KS_ERR_PROTO);
	if (e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return (int)refuse(e, KS_ERR_LIMIT);
	unmask_header(e, d, &sid, &ctr);
	if (sid != e->sid)
		return (int)refuse(e, KS_ERR_AUTH);
	/* 2.5 step 5 without the window (steps 4 and 7); the plaintext is
	 * not wanted and is wiped. */
	header_of(h, sid, ctr);
	nonce_of(n, e->rx.iv, ctr);
	ptlen = len - ENVELOPE_HDR_LEN - ENVELOPE_TAG_LEN;
	rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(pt, NULL, d + ENVELOPE_HDR_LEN,
	                                                        ptlen, d + len - ENVELOPE_TAG_LEN,
	                                                        h, sizeof h, n, e->rx.key);
	sodium_memzero(pt, ptlen);
	if (rc != 0) {
		e->forgeries++;
		return (int)refuse(e, KS_ERR_AUTH);
	}
	return 0;
}

enum envelope_status envelope_status(const struct envelope *e, uint64_t now, uint64_t unacked_since)
{
	if (e->send_ctr >= ENVELOPE_CTR_LIMIT || e->forgeries >= ENVELOPE_FORGERY_LIMIT)
		return ENVELOPE_EXHAUSTED;
	if (unacked_since != ENVELOPE_NOTHING_UNACKED && now >= unacked_since + e->silent_ms &&
	    now >= e->last_rx_ms + e->silent_ms)
		return ENVELOPE_PEER_SILENT;
	if (e->send_ctr >= ENVELOPE_REKEY_AFTER_PACKETS ||
	    now >= e->created_ms + ENVELOPE_REKEY_AFTER_MS)
		return ENVELOPE_REKEY_DUE;
	return ENVELOPE_OK;
}
