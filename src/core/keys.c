/* keys.c - key generation, text encoding, users, key schedule primitives. */
#include "core/keys.h"

#include <sodium.h>
#include <string.h>

int keys_server_generate(struct keys_server *k, const struct rng_source *rng)
{
	uint8_t sec[KEYS_LEN], pub[KEYS_LEN];
	int rc = KS_ERR_INVAL;

	rng_fill(rng, sec, sizeof sec);
	if (crypto_scalarmult_base(pub, sec) != 0)
		goto out;
	memcpy(k->sec, sec, KEYS_LEN);
	memcpy(k->pub, pub, KEYS_LEN);
	rc = 0;
out:
	sodium_memzero(sec, sizeof sec);
	return rc;
}

void keys_psk_generate(uint8_t psk[static KEYS_LEN], const struct rng_source *rng)
{
	rng_fill(rng, psk, KEYS_LEN);
}

void keys_encode(char text[static KEYS_TEXT_LEN + 1], const uint8_t key[static KEYS_LEN])
{
	sodium_bin2base64(text, KEYS_TEXT_LEN + 1, key, KEYS_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int keys_decode(uint8_t key[static KEYS_LEN], const char *text, size_t len)
{
	uint8_t bin[KEYS_LEN];
	char again[KEYS_TEXT_LEN + 1];
	size_t binlen = 0;
	const char *end = NULL;
	int rc = KS_ERR_INVAL;

	if (len != KEYS_TEXT_LEN)
		return KS_ERR_INVAL;
	/* No ignore set: any whitespace or padding character is an error. */
	if (sodium_base642bin(bin, sizeof bin, text, len, NULL, &binlen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		goto out;
	if (binlen != KEYS_LEN || end != text + len)
		goto out;
	/* Canonical form only: re-encoding must give the same text back, so
	 * non-zero unused bits in the last character are refused too. */
	keys_encode(again, bin);
	if (memcmp(again, text, KEYS_TEXT_LEN) != 0)
		goto out;
	memcpy(key, bin, KEYS_LEN);
	rc = 0;
out:
	sodium_memzero(bin, sizeof bin);
	sodium_memzero(again, sizeof again);
	return rc;
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int keys_user_set(struct keys_user *u, const char *name, const uint8_t psk[static KEYS_LEN])
{
	size_t n = strnlen(name, KEYS_NAME_MAX + 1);

	if (n == 0 || n > KEYS_NAME_MAX)
		return KS_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(name[i]))
			return KS_ERR_INVAL;
	memset(u->name, 0, sizeof u->name);
	memcpy(u->name, name, n);
	memcpy(u->psk, psk, KEYS_LEN);
	return 0;
}

void keys_hash(uint8_t out[static KEYS_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
               size_t blen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, KEYS_LEN);
	crypto_generichash_update(&st, a, alen);
	if (blen)
		crypto_generichash_update(&st, b, blen);
	crypto_generichash_final(&st, out, KEYS_LEN);
	sodium_memzero(&st, sizeof st);
}

void keys_kdf(uint8_t *out[], size_t n, const uint8_t ck[static KEYS_LEN], const uint8_t *ikm,
              size_t ikmlen)
{
	uint8_t prk[KEYS_LEN], t[KEYS_LEN + 1];
	crypto_generichash_state st;

	crypto_generichash(prk, KEYS_LEN, ikm, ikmlen, ck, KEYS_LEN);
	for (size_t i = 0; i < n && i < 3; i++) {
		uint8_t idx = (uint8_t)(i + 1);

		crypto_generichash_init(&st, prk, KEYS_LEN, KEYS_LEN);
		if (i > 0)
			crypto_generichash_update(&st, t, KEYS_LEN);
		crypto_generichash_update(&st, &idx, 1);
		crypto_generichash_final(&st, t, KEYS_LEN);
		memcpy(out[i], t, KEYS_LEN);
	}
	sodium_memzero(prk, sizeof prk);
	sodium_memzero(t, sizeof t);
	sodium_memzero(&st, sizeof st);
}

void keys_label(uint8_t out[static KEYS_LEN], const uint8_t key[static KEYS_LEN], const char *label)
{
	crypto_generichash(out, KEYS_LEN, (const uint8_t *)label, strlen(label), key, KEYS_LEN);
}

void keys_derive_public(struct keys_public *kp, const uint8_t spub[static KEYS_LEN])
{
	memcpy(kp->spub, spub, KEYS_LEN);
	keys_label(kp->hdr, spub, "kcpsocks v1 header");
	keys_label(kp->obf, spub, "kcpsocks v1 obfuscation");
	keys_label(kp->mac1, spub, "kcpsocks v1 mac1");
}
