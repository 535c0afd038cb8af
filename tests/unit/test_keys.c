/* test_keys.c - key generation, strict text encoding, user names, and
 * known answers for the key schedule primitives, cross-checked against
 * direct libsodium calls so the vectors are not only self-referential. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/keys.c"

static void hexeq(const uint8_t *b, size_t n, const char *want)
{
	char h[2 * 64 + 1];

	sodium_bin2hex(h, sizeof h, b, n);
	if (getenv("KAT_PRINT")) {
		printf("KAT %s\n", h);
		return;
	}
	assert_string_equal(h, want);
}

/* RFC 7748 section 6.1: Alice's key pair, through keys_server_generate
 * with an rng that returns the secret. */
static void fixed_fill(void *buf, size_t len, void *ctx) { memcpy(buf, ctx, len); }

static void server_key_is_x25519(void **state)
{
	(void)state;
	uint8_t sec[32];
	struct keys_server k;

	sodium_hex2bin(sec, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
	               64, NULL, NULL, NULL);
	struct rng_source rng = { fixed_fill, sec };
	assert_int_equal(keys_server_generate(&k, &rng), 0);
	hexeq(k.pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	assert_memory_equal(k.sec, sec, 32);
}

static void text_round_trip(void **state)
{
	(void)state;
	struct prng g;
	struct rng_source rng;
	uint8_t k[KEYS_LEN], back[KEYS_LEN];
	char t[KEYS_TEXT_LEN + 1];

	prng_seed(&g, 1);
	rng = prng_source(&g);
	for (int i = 0; i < 1000; i++) {
		keys_psk_generate(k, &rng);
		keys_encode(t, k);
		assert_int_equal(strlen(t), KEYS_TEXT_LEN);
		assert_null(strpbrk(t, "+/="));
		assert_int_equal(keys_decode(back, t, KEYS_TEXT_LEN), 0);
		assert_memory_equal(k, back, KEYS_LEN);
	}
	memset(k, 0xff, sizeof k);
	keys_encode(t, k);
	assert_string_equal(t, "__________________________________________8");
}

static void decode_is_strict(void **state)
{
	(void)state;
	uint8_t k[KEYS_LEN], orig[KEYS_LEN];
	char t[KEYS_TEXT_LEN + 2], bad[KEYS_TEXT_LEN + 2];

	memset(orig, 0x5a, sizeof orig);
	keys_encode(t, orig);
	memcpy(k, orig, sizeof k);
	/* Wrong lengths. */
	for (size_t l = 0; l < KEYS_TEXT_LEN; l++)
		assert_int_equal(keys_decode(k, t, l), KS_ERR_INVAL);
	strcpy(bad, t);
	strcat(bad, "=");
	assert_int_equal(keys_decode(k, bad, KEYS_TEXT_LEN + 1), KS_ERR_INVAL);
	/* Characters from outside the alphabet, or the other alphabet. */
	static const char wrong[] = { '+', '/', '=', ' ', '\n', '.', '\0', '*' };
	for (size_t i = 0; i < sizeof wrong; i++) {
		for (size_t pos = 0; pos < KEYS_TEXT_LEN; pos += 7) {
			strcpy(bad, t);
			bad[pos] = wrong[i];
			assert_int_equal(keys_decode(k, bad, KEYS_TEXT_LEN), KS_ERR_INVAL);
		}
	}
	/* Non-canonical: the last character carries two unused bits. */
	strcpy(bad, t);
	bad[KEYS_TEXT_LEN - 1] = bad[KEYS_TEXT_LEN - 1] == 'o' ? 'p' : 'o';
	assert_int_equal(keys_decode(k, bad, KEYS_TEXT_LEN), KS_ERR_INVAL);
	assert_memory_equal(k, orig, KEYS_LEN); /* unchanged on every failure */
	assert_int_equal(keys_decode(k, t, KEYS_TEXT_LEN), 0);
}

static void user_names(void **state)
{
	(void)state;
	uint8_t psk[KEYS_LEN] = { 1 };
	struct keys_user u;

	assert_int_equal(keys_user_set(&u, "alice", psk), 0);
	assert_string_equal(u.name, "alice");
	assert_int_equal(keys_user_set(&u, "A.b_c-9", psk), 0);
	assert_int_equal(keys_user_set(&u, "12345678901234567890123456789012", psk), 0);
	assert_int_equal(keys_user_set(&u, "123456789012345678901234567890123", psk), KS_ERR_INVAL);
	assert_int_equal(keys_user_set(&u, "", psk), KS_ERR_INVAL);
	assert_int_equal(keys_user_set(&u, "bad name", psk), KS_ERR_INVAL);
	assert_int_equal(keys_user_set(&u, "caf\xc3\xa9", psk), KS_ERR_INVAL);
	assert_string_equal(u.name, "12345678901234567890123456789012");
}

#define KAT_HASH "209f4334ecfae192f312c1abe1e2a846bec67050e589162d0c6b5eb31a32cb76"
#define KAT_KDF1 "7dff9c4532e2b7cc64da8fa817e7285edb120ec39055ca55dd2401322ad4e53f"
#define KAT_KDF2 "2e3f30a81225b203c2412a4378892c294b469b1bc3a97ab53b07f38432766a94"
#define KAT_KDF3 "59ecfda1078bf9ac9a7844cddaf42ecc3580fed0e3d9c86e8c4aed65f8fec71b"
#define KAT_HDR  "840b3f4d3e39a92aa3a89fc3da75b6ea5858275af5b94fbb3e2baa03b1a4bdb7"
#define KAT_OBF  "04ed252ddf309f178dfe2de1c640b1b3fdd89dc208c3317f8e2d1ffa2e319fe1"
#define KAT_MAC1 "0e91a7214580c380edeeedc401b8cf48f85f5d36b550359a1a355c35c4190a17"

/* Known answers: inputs are the bytes 0..31 and short ASCII strings. */
static void schedule_known_answers(void **state)
{
	(void)state;
	uint8_t ck[32], ikm[32], a[32], b[32], c[32], out[32];
	uint8_t *o[3] = { a, b, c };
	struct keys_public kp;

	for (int i = 0; i < 32; i++)
		ck[i] = (uint8_t)i, ikm[i] = (uint8_t)(0xff - i);
	keys_hash(out, (const uint8_t *)"kcpsocks", 8, ikm, 32);
	hexeq(out, 32, KAT_HASH);
	keys_kdf(o, 3, ck, ikm, 32);
	hexeq(a, 32, KAT_KDF1);
	hexeq(b, 32, KAT_KDF2);
	hexeq(c, 32, KAT_KDF3);
	keys_derive_public(&kp, ck);
	hexeq(kp.hdr, 32, KAT_HDR);
	hexeq(kp.obf, 32, KAT_OBF);
	hexeq(kp.mac1, 32, KAT_MAC1);
}

/* The same steps with libsodium's crypto_generichash called directly, as
 * PROTOCOL.md (secure layer) 3 describes them. */
static void schedule_matches_libsodium(void **state)
{
	(void)state;
	uint8_t ck[32], ikm[32], prk[32], t[33], want[3][32], a[32], b[32], c[32], cat[40];
	uint8_t *o[3] = { a, b, c };
	struct keys_public kp;

	for (int i = 0; i < 32; i++)
		ck[i] = (uint8_t)i, ikm[i] = (uint8_t)(0xff - i);
	crypto_generichash(prk, 32, ikm, 32, ck, 32);
	t[0] = 1;
	crypto_generichash(want[0], 32, t, 1, prk, 32);
	memcpy(t, want[0], 32);
	t[32] = 2;
	crypto_generichash(want[1], 32, t, 33, prk, 32);
	memcpy(t, want[1], 32);
	t[32] = 3;
	crypto_generichash(want[2], 32, t, 33, prk, 32);
	keys_kdf(o, 3, ck, ikm, 32);
	assert_memory_equal(a, want[0], 32);
	assert_memory_equal(b, want[1], 32);
	assert_memory_equal(c, want[2], 32);
	/* n = 1 gives the first output only. */
	memset(b, 0, 32);
	keys_kdf(o, 1, ck, ikm, 32);
	assert_memory_equal(a, want[0], 32);
	memcpy(cat, "kcpsocks", 8);
	memcpy(cat + 8, ikm, 32);
	crypto_generichash(want[0], 32, cat, 40, NULL, 0);
	keys_hash(a, (const uint8_t *)"kcpsocks", 8, ikm, 32);
	assert_memory_equal(a, want[0], 32);
	crypto_generichash(want[0], 32, (const uint8_t *)"kcpsocks v1 header", 18, ck, 32);
	keys_derive_public(&kp, ck);
	assert_memory_equal(kp.hdr, want[0], 32);
	assert_memory_equal(kp.spub, ck, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(server_key_is_x25519),
		cmocka_unit_test(text_round_trip),
		cmocka_unit_test(decode_is_strict),
		cmocka_unit_test(user_names),
		cmocka_unit_test(schedule_known_answers),
		cmocka_unit_test(schedule_matches_libsodium),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
