/* handshake.c - the Noise-style NK + PSK handshake of docs/PROTOCOL.md (secure layer) section 4.
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

/* A random padding length of at least min (the extensions) and at most
 * spare bytes (spare >= min), below HANDSHAKE_PAD_MAX. */
static size_t hs_pad(const struct rng_source *rng, size_t min, size_t spare)
{
	uint16_t v;
	size_t pad;

	rng_fill(rng, &v, sizeof v);
	pad = min + v % (HANDSHAKE_PAD_MAX - min);
	return pad < spare ? pad : spare;
}

/* 4.6: what the extensions of a message said. */
struct ext {
	bool version;     /* a version extension was there */
	uint8_t max, min; /* its wire versions */
	uint32_t features;
	uint8_t refuse;    /* HANDSHAKE_EXT_REFUSE's reason, 0: none */
	bool has_instance; /* HANDSHAKE_EXT_INSTANCE was there */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
};

/* The extensions of a message, written at the start of its padding. */
static size_t write_ext(uint8_t out[static HANDSHAKE_EXT_MAX], const struct ext *x)
{
	struct wr w = wr_init(out, HANDSHAKE_EXT_MAX);

	wr_u8(&w, HANDSHAKE_EXT_VERSION);
	wr_u8(&w, HANDSHAKE_EXT_VERSION_LEN - 2);
	wr_u8(&w, x->max);
	wr_u8(&w, x->min);
	wr_u32le(&w, x->features);
	if (x->refuse) {
		wr_u8(&w, HANDSHAKE_EXT_REFUSE);
		wr_u8(&w, HANDSHAKE_EXT_REFUSE_LEN - 2);
		wr_u8(&w, x->refuse);
	}
	if (x->has_instance) {
		wr_u8(&w, HANDSHAKE_EXT_INSTANCE);
		wr_u8(&w, HANDSHAKE_INSTANCE_LEN);
		wr_bytes(&w, x->instance, HANDSHAKE_INSTANCE_LEN);
	}
	return wr_len(&w);
}

/* Read the extensions in a pad region: type || length || value, until a
 * zero type (the zero padding) or the end. Unknown types are skipped, a
 * known one may be longer than this build reads. Version 1 peers zero the
 * region, so it reads as "no extension". */
static int read_ext(const uint8_t *b, size_t n, struct ext *x)
{
	struct rd r = rd_init(b, n);
	uint8_t type = 0, l = 0;
	const uint8_t *v;

	memset(x, 0, sizeof *x);
	while (rd_u8(&r, &type) && type != 0) {
		if (!rd_u8(&r, &l) || !rd_view(&r, &v, l))
			return KS_ERR_PROTO;
		if (type == HANDSHAKE_EXT_VERSION) {
			struct rd e = rd_init(v, l);

			if (!rd_u8(&e, &x->max) || !rd_u8(&e, &x->min) ||
			    !rd_u32le(&e, &x->features) || x->min == 0 || x->min > x->max)
				return KS_ERR_PROTO;
			x->version = true;
		} else if (type == HANDSHAKE_EXT_REFUSE) {
			if (l < 1 || v[0] == 0)
				return KS_ERR_PROTO;
			x->refuse = v[0];
		} else if (type == HANDSHAKE_EXT_INSTANCE) {
			if (l != HANDSHAKE_INSTANCE_LEN)
				return KS_ERR_PROTO;
			memcpy(x->instance, v, HANDSHAKE_INSTANCE_LEN);
			x->has_instance = true;
		}
	}
	return 0;
}

/* write_payload: u64le word || tparams || ext || zeros || u16le pad (4.2.5,
 * 4.3.3, 4.6); pad counts ext and zeros, pad >= extlen. */
static size_t write_payload(uint8_t *buf, size_t cap, uint64_t word,
                            const struct transport_params *p, const uint8_t *ext, size_t extlen,
                            size_t pad)
{
	struct wr w = wr_init(buf, cap);
	ssize_t n;

	wr_u64le(&w, word);
	n = tparams_encode(p, w.p, wr_room(&w));
	w.p += n > 0 ? (size_t)n : 0;
	memset(w.p, 0, pad);
	memcpy(w.p, ext, extlen);
	w.p += pad;
	wr_u16le(&w, (uint16_t)pad);
	return wr_len(&w);
}

static int read_payload(const uint8_t *buf, size_t len, uint64_t *word, struct transport_params *p,
                        struct ext *x)
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
	return read_ext(buf + HANDSHAKE_PAYLOAD_MIN - ENVELOPE_PADLEN_LEN, pad, x);
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
	c->wire_min = HANDSHAKE_WIRE_MIN;
	c->wire_max = HANDSHAKE_WIRE_VERSION;
	c->features = TPARAMS_FEATURES | (proposal->features & TPARAMS_FEATURES_OPTIONAL);
	c->state = HANDSHAKE_CLIENT_IDLE;
	return 0;
}

void handshake_client_wipe(struct handshake_client *c) { sodium_memzero(c, sizeof *c); }

void handshake_client_set_instance(struct handshake_client *c,
                                   const uint8_t id[static HANDSHAKE_INSTANCE_LEN])
{
	memcpy(c->instance, id, HANDSHAKE_INSTANCE_LEN);
	c->has_instance = true;
}

/* 4.6: what this client's init says: its versions, features, instance. */
static size_t client_ext(const struct handshake_client *c, uint8_t out[static HANDSHAKE_EXT_MAX])
{
	struct ext x = { .version = true,
		         .max = c->wire_max,
		         .min = c->wire_min,
		         .features = c->features,
		         .has_instance =
		                 c->has_instance && (c->features & TPARAMS_FEAT_INSTANCE_ID) != 0 };

	memcpy(x.instance, c->instance, HANDSHAKE_INSTANCE_LEN);
	return write_ext(out, &x);
}

/* 4.2: the init, built in out; returns its length. */
static size_t build_init(struct handshake_client *c, struct sym *s,
                         const uint8_t e_pub[static KEYS_LEN], const uint8_t dh[static KEYS_LEN],
                         uint64_t now_unix_ms, size_t pad, uint8_t *out)
{
	uint8_t k[KEYS_LEN], pt[HANDSHAKE_PAYLOAD_MIN + HANDSHAKE_PAD_MAX];
	uint8_t ext[HANDSHAKE_EXT_MAX];
	size_t extlen = client_ext(c, ext);
	uint8_t *id = out + HANDSHAKE_INIT_BODY_OFF;
	uint8_t *body = id + KEYS_NAME_MAX + ENVELOPE_TAG_LEN;
	size_t ptlen, len;

	mix_hash(s, e_pub, KEYS_LEN); /* 4.2.1 */
	mix_key(s, NULL, e_pub, KEYS_LEN);
	mix_key(s, k, dh, KEYS_LEN);                /* 4.2.2 es */
	seal0(id, k, s->h, c->name, KEYS_NAME_MAX); /* 4.2.3 */
	mix_hash(s, id, KEYS_NAME_MAX + ENVELOPE_TAG_LEN);
	mix_key_and_hash(s, k, c->psk); /* 4.2.4 */
	ptlen = write_payload(pt, sizeof pt, now_unix_ms, &c->proposal, ext, extlen, pad);
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
	uint8_t ext[HANDSHAKE_EXT_MAX];
	size_t extlen = client_ext(c, ext);
	struct sym s;
	size_t len;
	ssize_t rc = KS_ERR_INVAL;

	if (c->state == HANDSHAKE_CLIENT_DONE)
		return KS_ERR_STATE;
	if (cap < HANDSHAKE_INIT_MIN + extlen)
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
	len = build_init(c, &s, e_pub, dh, now_unix_ms,
	                 hs_pad(rng, extlen, cap - HANDSHAKE_INIT_MIN), out);
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
static int read_response(struct handshake_client *c, const uint8_t *d, size_t len, struct sym *s,
                         struct handshake_result *res)
{
	struct ext x;
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
	if (read_payload(pt, clen - ENVELOPE_TAG_LEN, &res->sid, &res->params, &x) != 0)
		goto out;
	if (res->sid == 0) { /* 4.6: a refusal, authenticated like an answer */
		if (!x.version || !x.refuse)
			goto out;
		c->refusal = (struct handshake_refusal){ x.refuse,    x.min,       x.max,
			                                 c->wire_min, c->wire_max, 0 };
		rc = KS_ERR_UNSUPPORTED;
		goto out;
	}
	/* No extension: a version 1 server, no features. */
	res->params.wire = x.version ? x.max : HANDSHAKE_WIRE_MIN;
	res->params.features = x.version ? x.features & c->features : 0;
	if (res->params.wire < c->wire_min || res->params.wire > c->wire_max)
		goto out;
	split(res, s->ck, true);
	res->user = 0;
	res->has_instance = false;
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

enum { SEEN_NONE = HANDSHAKE_REPLAY_CACHE };
enum { NAME_IX_LEN = 2 * HANDSHAKE_MAX_USERS }; /* at most half full */

/* FNV-1a over the zero-padded name field: the names come from the
 * configuration, not from peers, so the hash needs no key. */
static uint32_t name_hash(const uint8_t field[static KEYS_NAME_MAX])
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < KEYS_NAME_MAX; i++)
		h = (h ^ field[i]) * 16777619u;
	return h;
}

/* index_users points s at users and rebuilds the name index. */
static void index_users(struct handshake_server *s, const struct keys_user *users, size_t n_users)
{
	s->users = users;
	s->n_users = n_users;
	memset(s->name_ix, 0, sizeof s->name_ix);
	for (size_t i = 0; i < n_users; i++) {
		uint8_t f[KEYS_NAME_MAX] = { 0 };
		uint32_t h;

		memcpy(f, users[i].name, strnlen(users[i].name, KEYS_NAME_MAX));
		for (h = name_hash(f); s->name_ix[h % NAME_IX_LEN]; h++)
			;
		s->name_ix[h % NAME_IX_LEN] = (uint16_t)(i + 1);
	}
}

int handshake_server_set_users(struct handshake_server *s, const struct keys_user *users,
                               size_t n_users, const uint32_t *map, uint64_t now_unix_ms)
{
	uint64_t floor[HANDSHAKE_MAX_USERS];

	if (n_users == 0 || n_users > HANDSHAKE_MAX_USERS)
		return KS_ERR_INVAL;
	for (size_t i = 0; i < s->n_users; i++)
		if (map[i] != HANDSHAKE_USER_NONE && map[i] >= n_users)
			return KS_ERR_INVAL;
	/* A new user takes nothing stamped before now (an init of a user
	 * removed earlier cannot come back through a re-add); a remaining
	 * user keeps its replay floor; the cache's entries keep
	 * their bytes (a removed user's init stays a replay) and follow the
	 * user's new index, or none. */
	for (size_t i = 0; i < n_users; i++)
		floor[i] = now_unix_ms;
	for (size_t i = 0; i < s->n_users; i++)
		if (map[i] != HANDSHAKE_USER_NONE)
			floor[map[i]] = s->floor_ts[i];
	for (size_t i = 0; i < s->seen_len; i++)
		s->seen[i].user =
		        s->seen[i].user < s->n_users ? map[s->seen[i].user] : HANDSHAKE_USER_NONE;
	memcpy(s->floor_ts, floor, sizeof floor);
	index_users(s, users, n_users);
	return 0;
}

int handshake_server_init(struct handshake_server *s, const struct keys_server *k,
                          const struct keys_user *users, size_t n_users,
                          const struct transport_params *min, const struct transport_params *max,
                          const struct transport_params *def)
{
	uint8_t sk[KEYS_LEN];

	if (n_users == 0 || n_users > HANDSHAKE_MAX_USERS || !tparams_valid(min) ||
	    !tparams_valid(max) || !tparams_valid(def))
		return KS_ERR_INVAL;
	memset(s, 0, sizeof *s);
	s->key = k;
	keys_derive_public(&s->pub, k->pub);
	index_users(s, users, n_users);
	s->min = *min;
	s->max = *max;
	s->def = *def;
	s->features = TPARAMS_FEATURES | (def->features & TPARAMS_FEATURES_OPTIONAL);
	for (size_t i = 0; i < HANDSHAKE_REPLAY_CACHE; i++)
		s->seen_head[i] = SEEN_NONE;
	/* The source hash is keyed by a secret, so nobody can aim a flood at
	 * the bucket of another host. */
	keys_label(sk, k->sec, "kcpsocks v1 source buckets");
	memcpy(s->src_key, sk, sizeof s->src_key);
	sodium_memzero(sk, sizeof sk);
	return 0;
}

/* --- 4.4: the replay cache of accepted inits ------------------------------- */

static uint32_t seen_bucket(const uint8_t e[static 16])
{
	struct rd r = rd_init(e, 16);
	uint32_t v = 0;

	rd_u32le(&r, &v);
	return v % HANDSHAKE_REPLAY_CACHE;
}

/* Is this ephemeral in the cache? One short hash chain. */
static bool seen_has(const struct handshake_server *s, const uint8_t e[static KEYS_LEN])
{
	for (uint32_t i = s->seen_head[seen_bucket(e)]; i != SEEN_NONE; i = s->seen[i].next)
		if (memcmp(s->seen[i].e, e, 16) == 0)
			return true;
	return false;
}

static void seen_unlink(struct handshake_server *s, uint32_t i)
{
	uint32_t *pp = &s->seen_head[seen_bucket(s->seen[i].e)];

	while (*pp != SEEN_NONE && *pp != i)
		pp = &s->seen[*pp].next;
	if (*pp == i)
		*pp = s->seen[i].next;
}

/* Remember an accepted init. The oldest entry leaves when the ring is
 * full, raising its own user's floor (never anyone else's) so that init
 * can never be replayed. */
static void seen_add(struct handshake_server *s, const uint8_t e[static KEYS_LEN], uint64_t ts,
                     uint32_t user)
{
	uint32_t i = (uint32_t)s->seen_next, b = seen_bucket(e);
	struct handshake_seen *x = &s->seen[i];

	if (s->seen_len == HANDSHAKE_REPLAY_CACHE) {
		if (x->user < s->n_users && x->ts > s->floor_ts[x->user])
			s->floor_ts[x->user] = x->ts;
		seen_unlink(s, i);
	} else {
		s->seen_len++;
	}
	memcpy(x->e, e, 16);
	x->ts = ts;
	x->user = user;
	x->next = s->seen_head[b];
	s->seen_head[b] = i;
	s->seen_next = (i + 1) % HANDSHAKE_REPLAY_CACHE;
}

/* --- 4.4: refused inits, by mac1 (a MAC over the whole datagram) ----------- */

static uint8_t *refused_slot(struct handshake_server *s, const uint8_t *d, size_t len)
{
	struct rd r = rd_init(d + len - HANDSHAKE_MAC_LEN, HANDSHAKE_MAC_LEN);
	uint32_t v = 0;

	rd_u32le(&r, &v);
	return s->refused[v % HANDSHAKE_REFUSED_CACHE];
}

/* Keyed by mac1, not by the ephemeral: an attacker who alters a copy of a
 * client's init cannot get the original refused this way. */
static bool refused_has(struct handshake_server *s, const uint8_t *d, size_t len)
{
	return memcmp(refused_slot(s, d, len), d + len - HANDSHAKE_MAC_LEN, HANDSHAKE_MAC_LEN) == 0;
}

static void refused_add(struct handshake_server *s, const uint8_t *d, size_t len)
{
	memcpy(refused_slot(s, d, len), d + len - HANDSHAKE_MAC_LEN, HANDSHAKE_MAC_LEN);
}

/* --- 4.4: X25519 budgets ----------------------------------------------------- */

/* GCRA: one X25519 every 1e6/rate us, up to burst at once. */
static bool bucket_take(struct handshake_bucket *b, uint64_t now_us, uint64_t rate, uint64_t burst)
{
	uint64_t step = 1000000 / rate, tat;

	/* Further ahead than a full burst: the wall clock stepped back. */
	if (b->tat > now_us + burst * step)
		b->tat = now_us;
	tat = b->tat > now_us ? b->tat : now_us;

	if (tat - now_us > (burst - 1) * step)
		return false;
	b->tat = tat + step;
	return true;
}

/* The host part of a sockaddr, port and flow label left out: an IPv4
 * address (sockaddr_in, 16 bytes: address at 4..7), or an IPv6 /64
 * (sockaddr_in6, 28 bytes: address at 8..23), since one IPv6 host holds a
 * whole /64; addresses in ::/64 (IPv4-mapped, loopback) count whole. */
static size_t src_host(uint8_t out[static 18], const uint8_t *src, size_t n)
{
	static const uint8_t zero[8] = { 0 };
	size_t k = 0;

	if (n >= 2) {
		memcpy(out, src, 2); /* the family */
		k = 2;
	}
	if (n >= 24) {
		size_t a = memcmp(src + 8, zero, 8) == 0 ? 16 : 8;

		memcpy(out + k, src + 8, a);
		return k + a;
	}
	if (n >= 8) {
		memcpy(out + k, src + 4, 4);
		return k + 4;
	}
	memcpy(out, src, n);
	return n;
}

/* The bucket of a source host (src_host), hashed with a secret key into
 * HANDSHAKE_SRC_SLOTS; a collision shares a bucket. */
static struct handshake_bucket *src_bucket(struct handshake_server *s, const uint8_t *src, size_t n)
{
	uint8_t a[18];
	uint8_t h[crypto_shorthash_BYTES];
	struct rd r = rd_init(h, sizeof h);
	struct handshake_bucket *b;
	uint64_t tag = 0;

	crypto_shorthash(h, a, src_host(a, src, n), s->src_key);
	rd_u64le(&r, &tag);
	tag |= 1; /* never 0, the empty tag */
	b = &s->src[tag % HANDSHAKE_SRC_SLOTS];
	if (b->tag != tag) {
		b->tag = tag; /* a new host (or a collision) starts with a full bucket */
		b->tat = 0;
	}
	return b;
}

/* Per source host, then in total. A host that has hardly used its own
 * bucket lately (a new client, one retrying now and then) may also draw
 * on a small reserve when the total is spent, so a flood from hosts that
 * each send fast cannot keep a new client out. */
static bool budget_ok(struct handshake_server *s, uint64_t now_ms, const uint8_t *src, size_t n)
{
	uint64_t now_us = now_ms * 1000;
	struct handshake_bucket *b;
	bool light;

	if (!src)
		return bucket_take(&s->total, now_us, HANDSHAKE_DH_RATE, HANDSHAKE_DH_BURST);
	b = src_bucket(s, src, n);
	light = b->tat <= now_us + 1000000 / HANDSHAKE_SRC_DH_RATE;
	if (!bucket_take(b, now_us, HANDSHAKE_SRC_DH_RATE, HANDSHAKE_SRC_DH_BURST))
		return false;
	if (bucket_take(&s->total, now_us, HANDSHAKE_DH_RATE, HANDSHAKE_DH_BURST))
		return true;
	return light && bucket_take(&s->reserve, now_us, HANDSHAKE_DH_RESERVE_RATE,
	                            HANDSHAKE_DH_RESERVE_BURST);
}

/* --- 4.4: reading an init ---------------------------------------------------- */

static bool name_eq(const uint8_t field[static KEYS_NAME_MAX], const struct keys_user *u)
{
	uint8_t want[KEYS_NAME_MAX] = { 0 };

	memcpy(want, u->name, strnlen(u->name, KEYS_NAME_MAX));
	return sodium_memcmp(field, want, KEYS_NAME_MAX) == 0;
}

static int find_user(const struct handshake_server *s, const uint8_t name[static KEYS_NAME_MAX],
                     uint32_t *idx)
{
	for (uint32_t h = name_hash(name);; h++) {
		uint16_t v = s->name_ix[h % NAME_IX_LEN];
		if (v == 0)
			return KS_ERR_AUTH;
		if (name_eq(name, &s->users[v - 1])) {
			*idx = (uint32_t)(v - 1);
			return 0;
		}
	}
}

/* 4.6: the version the server answers, the features it grants, or why it
 * refuses. No extension: a version 1 client with no features. */
static void negotiate(const struct handshake_server *s, struct handshake_pending *p,
                      const struct ext *x)
{
	p->ext = x->version;
	p->peer_min = x->version ? x->min : HANDSHAKE_WIRE_MIN;
	p->peer_max = x->version ? x->max : HANDSHAKE_WIRE_MIN;
	p->refuse = HANDSHAKE_REFUSE_NONE;
	if (p->peer_min > HANDSHAKE_WIRE_VERSION || p->peer_max < HANDSHAKE_WIRE_MIN)
		p->refuse = HANDSHAKE_REFUSE_VERSION;
	p->proposal.wire =
	        p->peer_max < HANDSHAKE_WIRE_VERSION ? p->peer_max : HANDSHAKE_WIRE_VERSION;
	p->proposal.features = x->version ? x->features & s->features : 0;
	/* An instance id counts only with the feature agreed. */
	p->has_instance = x->has_instance && (p->proposal.features & TPARAMS_FEAT_INSTANCE_ID);
	if (p->has_instance)
		memcpy(p->instance, x->instance, HANDSHAKE_INSTANCE_LEN);
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
	struct ext x;
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
	rc = read_payload(pt, clen - ENVELOPE_TAG_LEN, &inner, &p->proposal, &x);
	if (rc == 0 && inner != ts)
		rc = KS_ERR_PROTO;
	if (rc != 0) {
		s->n.bad_payload++;
		goto out;
	}
	/* The user's own floor: only that user's inits ever raise it. */
	if (ts <= s->floor_ts[p->user]) {
		s->n.stale++;
		rc = KS_ERR_STALE;
		goto out;
	}
	negotiate(s, p, &x);
	p->init_len = (uint16_t)len;
out:
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(k, sizeof k);
	sodium_memzero(name, sizeof name);
	sodium_memzero(pt, sizeof pt);
	return rc;
}

/* At most HANDSHAKE_CLOCK_SKEW_MS old, HANDSHAKE_FUTURE_MS ahead, and not
 * before this server started (4.4). */
static bool ts_fresh(const struct handshake_server *s, uint64_t ts, uint64_t now)
{
	if (ts < s->start_ms)
		return false;
	if (ts > now)
		return ts - now <= HANDSHAKE_FUTURE_MS;
	return now - ts <= HANDSHAKE_CLOCK_SKEW_MS;
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
	if (refused_has(s, d, len)) {
		s->n.known_bad++;
		return KS_ERR_AUTH;
	}
	obfuscate(et, d + HANDSHAKE_EPH_OFF, sizeof et, d + ENVELOPE_SID_LEN, s->pub.obf);
	r = rd_init(et, sizeof et);
	rd_bytes(&r, e_c, KEYS_LEN);
	rd_u64le(&r, ts);
	if (!ts_fresh(s, *ts, now)) {
		s->n.stale++;
		return KS_ERR_STALE;
	}
	if (seen_has(s, e_c)) {
		s->n.replay++;
		return KS_ERR_REPLAY;
	}
	return 0;
}

int handshake_server_read_init_from(struct handshake_server *s, const uint8_t *d, size_t len,
                                    uint64_t now_unix_ms, const uint8_t *src, size_t src_len,
                                    struct handshake_pending *p)
{
	uint8_t e_c[KEYS_LEN];
	struct handshake_pending q = { 0 };
	struct sym y;
	uint64_t ts = 0;
	int rc;

	rc = precheck(s, d, len, now_unix_ms, e_c, &ts);
	if (rc == 0 && !budget_ok(s, now_unix_ms, src, src_len)) {
		s->n.budget++;
		rc = KS_ERR_LIMIT;
	}
	if (rc != 0)
		goto out;
	rc = open_init(s, d, len, e_c, ts, &y, &q);
	if (rc != 0) {
		/* The same bytes again cost no X25519. */
		refused_add(s, d, len);
		goto out;
	}
	/* 4.4 step 9: commit (a refusal too: it is answered once). */
	seen_add(s, e_c, ts, q.user);
	memcpy(q.e_c, e_c, KEYS_LEN);
	memcpy(q.ck, y.ck, KEYS_LEN);
	memcpy(q.h, y.h, KEYS_LEN);
	*p = q;
	if (q.refuse) {
		rc = KS_ERR_UNSUPPORTED;
	} else {
		s->n.accepted++;
		s->n.legacy += !q.ext;
	}
out:
	sodium_memzero(&q, sizeof q);
	sodium_memzero(&y, sizeof y);
	return rc;
}

int handshake_server_read_init(struct handshake_server *s, const uint8_t *d, size_t len,
                               uint64_t now_unix_ms, struct handshake_pending *p)
{
	return handshake_server_read_init_from(s, d, len, now_unix_ms, NULL, 0, p);
}

/* --- 4.3: the response ------------------------------------------------------- */

/* The response, built in out; returns its length. word is the session id,
 * or 0 for a refusal. */
static size_t build_response(struct handshake_server *s, struct sym *y,
                             const struct handshake_pending *p,
                             const uint8_t e_pub[static KEYS_LEN],
                             const uint8_t dh[static KEYS_LEN], uint64_t word,
                             const struct transport_params *acc, const struct rng_source *rng,
                             uint8_t *out, size_t cap)
{
	uint8_t k[KEYS_LEN], mk[KEYS_LEN], pt[HANDSHAKE_PAYLOAD_MIN + HANDSHAKE_PAD_MAX];
	uint8_t ext[HANDSHAKE_EXT_MAX];
	struct ext x = { true, acc->wire, acc->wire, acc->features, p->refuse, false, { 0 } };
	uint8_t *body = out + HANDSHAKE_BODY_OFF;
	size_t extlen = 0, ptlen, len, spare;

	if (p->refuse) {
		x.max = HANDSHAKE_WIRE_VERSION;
		x.min = HANDSHAKE_WIRE_MIN;
		x.features = s->features;
	}
	if (p->ext || p->refuse)
		extlen = write_ext(ext, &x);
	/* 4.4: never longer than the init (no amplification); the init is
	 * at least HANDSHAKE_INIT_MIN, so the extensions always fit. */
	spare = cap - HANDSHAKE_RESP_MIN;
	if ((size_t)p->init_len - HANDSHAKE_RESP_MIN < spare)
		spare = (size_t)p->init_len - HANDSHAKE_RESP_MIN;
	memcpy(y->ck, p->ck, KEYS_LEN);
	memcpy(y->h, p->h, KEYS_LEN);
	mix_hash(y, e_pub, KEYS_LEN); /* 4.3.1 */
	mix_key(y, NULL, e_pub, KEYS_LEN);
	mix_key(y, k, dh, KEYS_LEN); /* 4.3.2 ee */
	ptlen = write_payload(pt, sizeof pt, word, acc, ext, extlen, hs_pad(rng, extlen, spare));
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

/* The ephemeral half of a response: e_pub (obfuscated into out) and the ee
 * secret. Returns 0 or KS_ERR_INVAL. */
static int response_dh(struct handshake_server *s, const struct handshake_pending *p,
                       const struct rng_source *rng, uint8_t e_pub[static KEYS_LEN],
                       uint8_t dh[static KEYS_LEN], uint8_t *out)
{
	uint8_t e_sec[KEYS_LEN];
	int rc = 0;

	rng_fill(rng, e_sec, sizeof e_sec);
	if (crypto_scalarmult_base(e_pub, e_sec) != 0 || crypto_scalarmult(dh, e_sec, p->e_c) != 0)
		rc = KS_ERR_INVAL;
	sodium_memzero(e_sec, sizeof e_sec);
	if (rc != 0)
		return rc;
	rng_fill(rng, out + ENVELOPE_SID_LEN, HANDSHAKE_RAND_LEN);
	obfuscate(out + HANDSHAKE_EPH_OFF, e_pub, KEYS_LEN, out + ENVELOPE_SID_LEN, s->pub.obf);
	return 0;
}

ssize_t handshake_server_write_response(struct handshake_server *s, struct handshake_pending *p,
                                        const struct rng_source *rng, uint64_t sid, uint8_t *out,
                                        size_t cap, struct handshake_result *res)
{
	uint8_t e_pub[KEYS_LEN], dh[KEYS_LEN];
	struct transport_params acc;
	struct sym y;
	size_t len;
	ssize_t rc = KS_ERR_INVAL;

	if (cap < HANDSHAKE_RESP_MIN)
		return KS_ERR_FULL;
	if (sid == 0 || p->refuse)
		return KS_ERR_INVAL;
	if (response_dh(s, p, rng, e_pub, dh, out) != 0)
		goto out;
	tparams_clamp(&acc, &p->proposal, &s->min, &s->max, &s->def);
	acc.wire = p->proposal.wire;
	acc.features = p->proposal.features;
	len = build_response(s, &y, p, e_pub, dh, sid, &acc, rng, out, cap);
	split(res, y.ck, false);
	res->sid = sid;
	res->params = acc;
	res->user = p->user;
	res->has_instance = p->has_instance;
	memcpy(res->instance, p->instance, HANDSHAKE_INSTANCE_LEN);
	sodium_memzero(p, sizeof *p);
	rc = (ssize_t)len;
out:
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(&y, sizeof y);
	return rc;
}

ssize_t handshake_server_write_refusal(struct handshake_server *s, struct handshake_pending *p,
                                       const struct rng_source *rng, uint8_t *out, size_t cap)
{
	uint8_t e_pub[KEYS_LEN], dh[KEYS_LEN];
	struct transport_params acc;
	struct sym y;
	ssize_t rc = KS_ERR_INVAL;

	if (cap < HANDSHAKE_RESP_MIN)
		return KS_ERR_FULL;
	if (!p->refuse)
		return KS_ERR_INVAL;
	if (response_dh(s, p, rng, e_pub, dh, out) != 0)
		goto out;
	/* The parameters are a formality here: the defaults, valid to encode. */
	acc = s->def;
	rc = (ssize_t)build_response(s, &y, p, e_pub, dh, 0, &acc, rng, out, cap);
	s->last_refusal =
	        (struct handshake_refusal){ p->refuse,   HANDSHAKE_WIRE_MIN, HANDSHAKE_WIRE_VERSION,
		                            p->peer_min, p->peer_max,        p->user };
	s->n.refused++;
	sodium_memzero(p, sizeof *p);
out:
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(&y, sizeof y);
	return rc;
}
