/* handshake.c - the Noise-style NK + PSK handshake of secure.md section 4.
 * Step numbers (4.x.y) refer to that section. */
#include "core/handshake.h"

#include <sodium.h>
#include <string.h>

#include "base/rd.h"
#include "base/wr.h"

static const char PROTOCOL_NAME[] = "kcpsocks v1 Noise_NKpsk1_25519_ChaChaPoly_BLAKE2b";

/* --- Noise symmetric state ---------------------------------------------- */

struct sym {
	uint8_t ck[KEYS_LEN], h[KEYS_LEN];
};

static void mix_hash(struct sym *s, const uint8_t *d, size_t n)
{
	keys_hash(s->h, s->h, KEYS_LEN, d, n);
}

/* mix_key: ck, k = KDF(ck, ikm); k may be NULL (ck only). */
static void mix_key(struct sym *s, uint8_t *k, const uint8_t *ikm, size_t n)
{
	uint8_t *o[2] = { s->ck, k };

	keys_kdf(o, k ? 2 : 1, s->ck, ikm, n);
}

static void mix_key_and_hash(struct sym *s, uint8_t k[static KEYS_LEN],
                             const uint8_t psk[static KEYS_LEN])
{
	uint8_t t[KEYS_LEN];
	uint8_t *o[3] = { s->ck, t, k };

	keys_kdf(o, 3, s->ck, psk, KEYS_LEN);
	mix_hash(s, t, KEYS_LEN);
	sodium_memzero(t, sizeof t);
}

/* 4.1: h = HASH(name), ck = h, then the pre-message: h = HASH(h || spub). */
static void sym_start(struct sym *s, const uint8_t spub[static KEYS_LEN])
{
	keys_hash(s->h, (const uint8_t *)PROTOCOL_NAME, sizeof PROTOCOL_NAME - 1, NULL, 0);
	memcpy(s->ck, s->h, KEYS_LEN);
	mix_hash(s, spub, KEYS_LEN);
}

/* Each key encrypts exactly one message, so the nonce is always zero. */
static void seal0(uint8_t *c, const uint8_t k[static KEYS_LEN], const uint8_t *ad, const uint8_t *m,
                  size_t n)
{
	static const uint8_t zero[ENVELOPE_IV_LEN] = { 0 };

	crypto_aead_chacha20poly1305_ietf_encrypt(c, NULL, m, n, ad, KEYS_LEN, NULL, zero, k);
}

static int open0(uint8_t *m, const uint8_t k[static KEYS_LEN], const uint8_t *ad, const uint8_t *c,
                 size_t clen)
{
	static const uint8_t zero[ENVELOPE_IV_LEN] = { 0 };

	return crypto_aead_chacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, KEYS_LEN, zero,
	                                                 k);
}

/* 4.2: an ephemeral (and the init's timestamp) is XORed with ChaCha20(obf
 * key), counter and nonce from the message's 16 random bytes; n <= 64 so
 * one keystream block covers it. Its own inverse. */
static void obfuscate(uint8_t *out, const uint8_t *in, size_t n,
                      const uint8_t r[static HANDSHAKE_RAND_LEN],
                      const uint8_t obf[static KEYS_LEN])
{
	struct rd rr = rd_init(r, HANDSHAKE_RAND_LEN);
	uint32_t ic = 0;

	rd_u32le(&rr, &ic);
	crypto_stream_chacha20_ietf_xor_ic(out, in, n, rr.p, ic, obf);
}

static void mac(uint8_t out[static HANDSHAKE_MAC_LEN], const uint8_t key[static KEYS_LEN],
                const uint8_t *d, size_t n)
{
	crypto_generichash(out, HANDSHAKE_MAC_LEN, d, n, key, KEYS_LEN);
}

static bool mac_ok(const uint8_t key[static KEYS_LEN], const uint8_t *d, size_t len)
{
	uint8_t m[HANDSHAKE_MAC_LEN];

	mac(m, key, d, len - HANDSHAKE_MAC_LEN);
	return crypto_verify_16(m, d + len - HANDSHAKE_MAC_LEN) == 0;
}

static void mac2_key(uint8_t out[static KEYS_LEN], const uint8_t e_c[static KEYS_LEN])
{
	keys_label(out, e_c, "kcpsocks v1 mac2");
}

/* A random padding length for a handshake message with room spare bytes. */
static size_t hs_pad(const struct rng_source *rng, size_t spare)
{
	uint16_t v;
	size_t pad;

	rng_fill(rng, &v, sizeof v);
	pad = v % HANDSHAKE_PAD_MAX;
	return pad < spare ? pad : spare;
}

/* write_payload: u64le word || tparams || zeros || u16le pad (4.2.5, 4.3.3). */
static size_t write_payload(uint8_t *buf, size_t cap, uint64_t word,
                            const struct transport_params *p, size_t pad)
{
	struct wr w = wr_init(buf, cap);
	ssize_t n;

	wr_u64le(&w, word);
	n = tparams_encode(p, w.p, wr_room(&w));
	w.p += n > 0 ? (size_t)n : 0;
	memset(w.p, 0, pad);
	w.p += pad;
	wr_u16le(&w, (uint16_t)pad);
	return wr_len(&w);
}

static int read_payload(const uint8_t *buf, size_t len, uint64_t *word, struct transport_params *p)
{
	struct rd r = rd_init(buf, len);
	struct rd tail;
	uint16_t pad = 0;

	if (len < HANDSHAKE_PAYLOAD_MIN)
		return KS_ERR_PROTO;
	tail = rd_init(buf + len - ENVELOPE_PADLEN_LEN, ENVELOPE_PADLEN_LEN);
	rd_u16le(&tail, &pad);
	if (pad != len - HANDSHAKE_PAYLOAD_MIN)
		return KS_ERR_PROTO;
	rd_u64le(&r, word);
	if (tparams_decode(p, r.p, rd_left(&r)) != TPARAMS_WIRE_LEN)
		return KS_ERR_PROTO;
	return 0;
}

/* 4.5: split the chaining key into the two directions and the conv. */
static void dir_keys(struct envelope_dir *d, const uint8_t secret[static KEYS_LEN])
{
	uint8_t ivsrc[KEYS_LEN];
	uint8_t *o[3] = { d->key, d->hp, ivsrc };

	keys_kdf(o, 3, secret, NULL, 0);
	memcpy(d->iv, ivsrc, ENVELOPE_IV_LEN);
	sodium_memzero(ivsrc, sizeof ivsrc);
}

static void split(struct handshake_result *res, const uint8_t ck[static KEYS_LEN], bool client)
{
	uint8_t c2s[KEYS_LEN], s2c[KEYS_LEN], x[KEYS_LEN];
	uint8_t *o[3] = { c2s, s2c, x };
	struct rd r;

	keys_kdf(o, 3, ck, NULL, 0);
	r = rd_init(x, sizeof x);
	dir_keys(client ? &res->tx : &res->rx, c2s);
	dir_keys(client ? &res->rx : &res->tx, s2c);
	rd_u32le(&r, &res->conv);
	sodium_memzero(c2s, sizeof c2s);
	sodium_memzero(s2c, sizeof s2c);
	sodium_memzero(x, sizeof x);
}

/* --- client ------------------------------------------------------------- */

int handshake_client_init(struct handshake_client *c, const uint8_t spub[static KEYS_LEN],
                          const struct keys_user *u, const struct transport_params *proposal)
{
	size_t n = strnlen(u->name, KEYS_NAME_MAX + 1);

	if (!tparams_valid(proposal) || n == 0 || n > KEYS_NAME_MAX)
		return KS_ERR_INVAL;
	memset(c, 0, sizeof *c);
	keys_derive_public(&c->pub, spub);
	memcpy(c->name, u->name, n);
	memcpy(c->psk, u->psk, KEYS_LEN);
	c->proposal = *proposal;
	c->state = HANDSHAKE_CLIENT_IDLE;
	return 0;
}

void handshake_client_wipe(struct handshake_client *c) { sodium_memzero(c, sizeof *c); }

/* 4.2: the init, built in out; returns its length. */
static size_t build_init(struct handshake_client *c, struct sym *s,
                         const uint8_t e_pub[static KEYS_LEN], const uint8_t dh[static KEYS_LEN],
                         uint64_t now_unix_ms, size_t pad, uint8_t *out)
{
	uint8_t k[KEYS_LEN], pt[HANDSHAKE_PAYLOAD_MIN + HANDSHAKE_PAD_MAX];
	uint8_t *id = out + HANDSHAKE_INIT_BODY_OFF;
	uint8_t *body = id + KEYS_NAME_MAX + ENVELOPE_TAG_LEN;
	size_t ptlen, len;

	mix_hash(s, e_pub, KEYS_LEN); /* 4.2.1 */
	mix_key(s, NULL, e_pub, KEYS_LEN);
	mix_key(s, k, dh, KEYS_LEN);                /* 4.2.2 es */
	seal0(id, k, s->h, c->name, KEYS_NAME_MAX); /* 4.2.3 */
	mix_hash(s, id, KEYS_NAME_MAX + ENVELOPE_TAG_LEN);
	mix_key_and_hash(s, k, c->psk); /* 4.2.4 */
	ptlen = write_payload(pt, sizeof pt, now_unix_ms, &c->proposal, pad);
	seal0(body, k, s->h, pt, ptlen); /* 4.2.5 */
	mix_hash(s, body, ptlen + ENVELOPE_TAG_LEN);
	len = (size_t)(body - out) + ptlen + ENVELOPE_TAG_LEN;
	memset(out, 0, ENVELOPE_SID_LEN); /* 4.2.6: session id 0, masked */
	envelope_mask_sid(c->pub.hdr, out, len);
	mac(out + len, c->pub.mac1, out, len); /* 4.2.7 */
	sodium_memzero(k, sizeof k);
	sodium_memzero(pt, sizeof pt);
	return len + HANDSHAKE_MAC_LEN;
}

ssize_t handshake_client_write_init(struct handshake_client *c, const struct rng_source *rng,
                                    uint64_t now_unix_ms, uint8_t *out, size_t cap)
{
	uint8_t e_sec[KEYS_LEN], e_pub[KEYS_LEN], dh[KEYS_LEN], et[KEYS_LEN + 8];
	struct wr w = wr_init(et, sizeof et);
	struct sym s;
	size_t len;
	ssize_t rc = KS_ERR_INVAL;

	if (c->state == HANDSHAKE_CLIENT_DONE)
		return KS_ERR_STATE;
	if (cap < HANDSHAKE_INIT_MIN)
		return KS_ERR_FULL;
	rng_fill(rng, e_sec, sizeof e_sec);
	if (crypto_scalarmult_base(e_pub, e_sec) != 0 ||
	    crypto_scalarmult(dh, e_sec, c->pub.spub) != 0)
		goto out;
	rng_fill(rng, out + ENVELOPE_SID_LEN, HANDSHAKE_RAND_LEN);
	wr_bytes(&w, e_pub, KEYS_LEN);
	wr_u64le(&w, now_unix_ms);
	obfuscate(out + HANDSHAKE_EPH_OFF, et, sizeof et, out + ENVELOPE_SID_LEN, c->pub.obf);
	sym_start(&s, c->pub.spub);
	len = build_init(c, &s, e_pub, dh, now_unix_ms, hs_pad(rng, cap - HANDSHAKE_INIT_MIN), out);
	/* Commit: this init's ephemeral and Noise state replace any older. */
	memcpy(c->e_sec, e_sec, KEYS_LEN);
	memcpy(c->e_pub, e_pub, KEYS_LEN);
	memcpy(c->ck, s.ck, KEYS_LEN);
	memcpy(c->h, s.h, KEYS_LEN);
	mac2_key(c->mac2, e_pub);
	c->state = HANDSHAKE_CLIENT_SENT;
	rc = (ssize_t)len;
out:
	sodium_memzero(e_sec, sizeof e_sec);
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(&s, sizeof s);
	return rc;
}

/* 4.3 from the client's side: everything on locals, committed by caller. */
static int read_response(const struct handshake_client *c, const uint8_t *d, size_t len,
                         struct sym *s, struct handshake_result *res)
{
	uint8_t e_s[KEYS_LEN], dh[KEYS_LEN], k[KEYS_LEN], pt[HANDSHAKE_RESP_MAX];
	const uint8_t *body = d + HANDSHAKE_BODY_OFF;
	size_t clen = len - HANDSHAKE_BODY_OFF - HANDSHAKE_MAC_LEN;
	int rc = KS_ERR_AUTH;

	obfuscate(e_s, d + HANDSHAKE_EPH_OFF, KEYS_LEN, d + ENVELOPE_SID_LEN, c->pub.obf);
	memcpy(s->ck, c->ck, KEYS_LEN);
	memcpy(s->h, c->h, KEYS_LEN);
	mix_hash(s, e_s, KEYS_LEN); /* 4.3.1 */
	mix_key(s, NULL, e_s, KEYS_LEN);
	if (crypto_scalarmult(dh, c->e_sec, e_s) != 0)
		goto out;
	mix_key(s, k, dh, KEYS_LEN); /* 4.3.2 ee */
	if (open0(pt, k, s->h, body, clen) != 0)
		goto out;
	mix_hash(s, body, clen);
	rc = KS_ERR_PROTO;
	if (read_payload(pt, clen - ENVELOPE_TAG_LEN, &res->sid, &res->params) != 0 ||
	    res->sid == 0)
		goto out;
	split(res, s->ck, true);
	res->user = 0;
	rc = 0;
out:
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(k, sizeof k);
	sodium_memzero(pt, sizeof pt);
	return rc;
}

int handshake_client_read_response(struct handshake_client *c, const uint8_t *d, size_t len,
                                   struct handshake_result *res)
{
	struct handshake_result r;
	struct sym s;
	uint64_t sid;
	int rc;

	if (c->state != HANDSHAKE_CLIENT_SENT)
		return KS_ERR_STATE;
	if (len < HANDSHAKE_RESP_MIN || len > HANDSHAKE_RESP_MAX ||
	    envelope_peek_sid(c->pub.hdr, d, len, &sid) != 0 || sid != 0)
		return KS_ERR_PROTO;
	if (!mac_ok(c->mac2, d, len))
		return KS_ERR_AUTH;
	rc = read_response(c, d, len, &s, &r);
	if (rc == 0) {
		*res = r;
		sodium_memzero(c->e_sec, KEYS_LEN);
		sodium_memzero(c->ck, KEYS_LEN);
		sodium_memzero(c->h, KEYS_LEN);
		c->state = HANDSHAKE_CLIENT_DONE;
	}
	sodium_memzero(&r, sizeof r);
	sodium_memzero(&s, sizeof s);
	return rc;
}

/* --- server ------------------------------------------------------------- */

int handshake_server_init(struct handshake_server *s, const struct keys_server *k,
                          const struct keys_user *users, size_t n_users,
                          const struct transport_params *min, const struct transport_params *max,
                          const struct transport_params *def)
{
	if (n_users == 0 || n_users > HANDSHAKE_MAX_USERS || !tparams_valid(min) ||
	    !tparams_valid(max) || !tparams_valid(def))
		return KS_ERR_INVAL;
	memset(s, 0, sizeof *s);
	s->key = k;
	keys_derive_public(&s->pub, k->pub);
	s->users = users;
	s->n_users = n_users;
	s->min = *min;
	s->max = *max;
	s->def = *def;
	return 0;
}

/* 4.4: is this ephemeral in the replay cache? A linear scan of 16-byte
 * prefixes: 64 KiB, a few microseconds, far below the X25519 it avoids. */
static bool cache_has(const struct handshake_server *s, const uint8_t e[static KEYS_LEN])
{
	for (size_t i = 0; i < s->cache_len; i++)
		if (memcmp(s->cache_e[i], e, 16) == 0)
			return true;
	return false;
}

/* 4.4: remember an accepted init; evicting the oldest raises the floor so
 * the evicted init can never be replayed. */
static void cache_add(struct handshake_server *s, const uint8_t e[static KEYS_LEN], uint64_t ts)
{
	size_t i = s->cache_next;

	if (s->cache_len == HANDSHAKE_REPLAY_CACHE) {
		if (s->cache_ts[i] > s->floor_ts)
			s->floor_ts = s->cache_ts[i];
	} else {
		s->cache_len++;
	}
	memcpy(s->cache_e[i], e, 16);
	s->cache_ts[i] = ts;
	s->cache_next = (i + 1) % HANDSHAKE_REPLAY_CACHE;
}

static bool name_eq(const uint8_t field[static KEYS_NAME_MAX], const struct keys_user *u)
{
	uint8_t want[KEYS_NAME_MAX] = { 0 };

	memcpy(want, u->name, strnlen(u->name, KEYS_NAME_MAX));
	return sodium_memcmp(field, want, KEYS_NAME_MAX) == 0;
}

static int find_user(const struct handshake_server *s, const uint8_t name[static KEYS_NAME_MAX],
                     uint32_t *idx)
{
	for (size_t i = 0; i < s->n_users; i++) {
		if (name_eq(name, &s->users[i])) {
			*idx = (uint32_t)i;
			return 0;
		}
	}
	return KS_ERR_AUTH;
}

/* 4.4 steps 6-8, after the cheap checks: DH, identity, PSK, payload, whose
 * timestamp must be the one the cheap checks saw. Works on locals; counts
 * its own failures. */
static int open_init(struct handshake_server *s, const uint8_t *d, size_t len,
                     const uint8_t e_c[static KEYS_LEN], uint64_t ts, struct sym *y,
                     struct handshake_pending *p)
{
	uint8_t dh[KEYS_LEN], k[KEYS_LEN], name[KEYS_NAME_MAX], pt[HANDSHAKE_INIT_MAX];
	const uint8_t *id = d + HANDSHAKE_INIT_BODY_OFF;
	uint64_t inner = 0;
	const uint8_t *body = id + KEYS_NAME_MAX + ENVELOPE_TAG_LEN;
	size_t clen = len - (size_t)(body - d) - HANDSHAKE_MAC_LEN;
	int rc = KS_ERR_AUTH;

	sym_start(y, s->pub.spub);
	mix_hash(y, e_c, KEYS_LEN);
	mix_key(y, NULL, e_c, KEYS_LEN);
	if (crypto_scalarmult(dh, s->key->sec, e_c) != 0) {
		s->n.bad_dh++;
		goto out;
	}
	mix_key(y, k, dh, KEYS_LEN);
	if (open0(name, k, y->h, id, KEYS_NAME_MAX + ENVELOPE_TAG_LEN) != 0 ||
	    find_user(s, name, &p->user) != 0) {
		s->n.bad_user++;
		goto out;
	}
	mix_hash(y, id, KEYS_NAME_MAX + ENVELOPE_TAG_LEN);
	mix_key_and_hash(y, k, s->users[p->user].psk);
	if (open0(pt, k, y->h, body, clen) != 0) {
		s->n.bad_auth++;
		goto out;
	}
	mix_hash(y, body, clen);
	rc = read_payload(pt, clen - ENVELOPE_TAG_LEN, &inner, &p->proposal);
	if (rc == 0 && inner != ts)
		rc = KS_ERR_PROTO;
	if (rc != 0)
		s->n.bad_payload++;
out:
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(k, sizeof k);
	sodium_memzero(pt, sizeof pt);
	return rc;
}

static bool ts_fresh(const struct handshake_server *s, uint64_t ts, uint64_t now)
{
	uint64_t skew = ts > now ? ts - now : now - ts;

	return skew <= HANDSHAKE_CLOCK_SKEW_MS && ts > s->floor_ts;
}

/* The cheap checks of 4.4 steps 1-5, before any public-key work. */
static int precheck(struct handshake_server *s, const uint8_t *d, size_t len, uint64_t now,
                    uint8_t e_c[static KEYS_LEN], uint64_t *ts)
{
	uint8_t et[KEYS_LEN + 8];
	struct rd r;
	uint64_t sid;

	if (len < HANDSHAKE_INIT_MIN || len > HANDSHAKE_INIT_MAX ||
	    envelope_peek_sid(s->pub.hdr, d, len, &sid) != 0 || sid != 0) {
		s->n.bad_len++;
		return KS_ERR_PROTO;
	}
	if (!mac_ok(s->pub.mac1, d, len)) {
		s->n.bad_mac1++;
		return KS_ERR_AUTH;
	}
	obfuscate(et, d + HANDSHAKE_EPH_OFF, sizeof et, d + ENVELOPE_SID_LEN, s->pub.obf);
	r = rd_init(et, sizeof et);
	rd_bytes(&r, e_c, KEYS_LEN);
	rd_u64le(&r, ts);
	/* An old init replayed after it left the cache stops here, as stale. */
	if (!ts_fresh(s, *ts, now)) {
		s->n.stale++;
		return KS_ERR_STALE;
	}
	if (cache_has(s, e_c)) {
		s->n.replay++;
		return KS_ERR_REPLAY;
	}
	return 0;
}

int handshake_server_read_init(struct handshake_server *s, const uint8_t *d, size_t len,
                               uint64_t now_unix_ms, struct handshake_pending *p)
{
	uint8_t e_c[KEYS_LEN];
	struct handshake_pending q;
	struct sym y;
	uint64_t ts = 0;
	int rc;

	rc = precheck(s, d, len, now_unix_ms, e_c, &ts);
	if (rc == 0)
		rc = open_init(s, d, len, e_c, ts, &y, &q);
	if (rc == 0) {
		/* 4.4 step 9: commit. */
		cache_add(s, e_c, ts);
		memcpy(q.e_c, e_c, KEYS_LEN);
		memcpy(q.ck, y.ck, KEYS_LEN);
		memcpy(q.h, y.h, KEYS_LEN);
		*p = q;
		s->n.accepted++;
	}
	sodium_memzero(&q, sizeof q);
	sodium_memzero(&y, sizeof y);
	return rc;
}

/* 4.3: the response, built in out; returns its length. */
static size_t build_response(struct handshake_server *s, struct sym *y,
                             const struct handshake_pending *p,
                             const uint8_t e_pub[static KEYS_LEN],
                             const uint8_t dh[static KEYS_LEN], uint64_t sid,
                             const struct transport_params *acc, size_t pad, uint8_t *out)
{
	uint8_t k[KEYS_LEN], mk[KEYS_LEN], pt[HANDSHAKE_PAYLOAD_MIN + HANDSHAKE_PAD_MAX];
	uint8_t *body = out + HANDSHAKE_BODY_OFF;
	size_t ptlen, len;

	memcpy(y->ck, p->ck, KEYS_LEN);
	memcpy(y->h, p->h, KEYS_LEN);
	mix_hash(y, e_pub, KEYS_LEN); /* 4.3.1 */
	mix_key(y, NULL, e_pub, KEYS_LEN);
	mix_key(y, k, dh, KEYS_LEN); /* 4.3.2 ee */
	ptlen = write_payload(pt, sizeof pt, sid, acc, pad);
	seal0(body, k, y->h, pt, ptlen); /* 4.3.3 */
	mix_hash(y, body, ptlen + ENVELOPE_TAG_LEN);
	len = HANDSHAKE_BODY_OFF + ptlen + ENVELOPE_TAG_LEN;
	memset(out, 0, ENVELOPE_SID_LEN); /* 4.3.4 */
	envelope_mask_sid(s->pub.hdr, out, len);
	mac2_key(mk, p->e_c); /* 4.3.5 */
	mac(out + len, mk, out, len);
	sodium_memzero(k, sizeof k);
	sodium_memzero(pt, sizeof pt);
	return len + HANDSHAKE_MAC_LEN;
}

ssize_t handshake_server_write_response(struct handshake_server *s, struct handshake_pending *p,
                                        const struct rng_source *rng, uint64_t sid, uint8_t *out,
                                        size_t cap, struct handshake_result *res)
{
	uint8_t e_sec[KEYS_LEN], e_pub[KEYS_LEN], dh[KEYS_LEN];
	struct transport_params acc;
	struct sym y;
	size_t len;
	ssize_t rc = KS_ERR_INVAL;

	if (cap < HANDSHAKE_RESP_MIN)
		return KS_ERR_FULL;
	if (sid == 0)
		return KS_ERR_INVAL;
	rng_fill(rng, e_sec, sizeof e_sec);
	if (crypto_scalarmult_base(e_pub, e_sec) != 0 || crypto_scalarmult(dh, e_sec, p->e_c) != 0)
		goto out;
	tparams_clamp(&acc, &p->proposal, &s->min, &s->max, &s->def);
	rng_fill(rng, out + ENVELOPE_SID_LEN, HANDSHAKE_RAND_LEN);
	obfuscate(out + HANDSHAKE_EPH_OFF, e_pub, KEYS_LEN, out + ENVELOPE_SID_LEN, s->pub.obf);
	len = build_response(s, &y, p, e_pub, dh, sid, &acc, hs_pad(rng, cap - HANDSHAKE_RESP_MIN),
	                     out);
	split(res, y.ck, false);
	res->sid = sid;
	res->params = acc;
	res->user = p->user;
	sodium_memzero(p, sizeof *p);
	rc = (ssize_t)len;
out:
	sodium_memzero(e_sec, sizeof e_sec);
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(&y, sizeof y);
	return rc;
}
