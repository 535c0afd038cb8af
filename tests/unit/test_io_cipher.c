/* test_io_cipher.c - what the daemons offer the handshake for each cipher
 * setting on a machine with and without AES-256-GCM, and the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "io/cipher.h"
#include "io/sysrng.h"

/* auto offers AES-256-GCM only where it runs; chacha20 never offers it. */
static void offer_follows_config_and_cpu(void **state)
{
	(void)state;
	assert_int_equal(cipher_features(CONFIG_CIPHER_AUTO, true), TPARAMS_FEAT_AES_GCM);
	assert_int_equal(cipher_features(CONFIG_CIPHER_AUTO, false), 0);
	assert_int_equal(cipher_features(CONFIG_CIPHER_CHACHA20, true), 0);
	assert_int_equal(cipher_features(CONFIG_CIPHER_CHACHA20, false), 0);
	assert_int_equal(cipher_features(CONFIG_CIPHER_AUTO, true) & ~TPARAMS_FEATURES_OPTIONAL, 0);
	/* This machine: the real probe (after sodium_init). */
	assert_int_equal(sysrng_init(), 0);
	assert_int_equal(cipher_offer(CONFIG_CIPHER_AUTO, "test"),
	                 cipher_aes_available() ? TPARAMS_FEAT_AES_GCM : 0);
	assert_int_equal(cipher_offer(CONFIG_CIPHER_CHACHA20, "test"), 0);
	print_message("# this CPU: aes-256-gcm %s\n",
	              cipher_aes_available() ? "available" : "not available");
}

/* Sessions are counted by the AEAD they agreed (AES needs rekeying too). */
static void counts_and_metrics(void **state)
{
	(void)state;
	struct cipher_counts n = { 0, 0 };
	char mem[2048];
	struct metrics_buf b;

	cipher_count(&n, TPARAMS_FEATURES | TPARAMS_FEAT_AES_GCM);
	cipher_count(&n, TPARAMS_FEATURES | TPARAMS_FEAT_AES_GCM);
	cipher_count(&n, TPARAMS_FEATURES);
	cipher_count(&n, TPARAMS_FEAT_AES_GCM); /* without rekeying: ChaCha20 */
	assert_int_equal(n.aes_gcm, 2);
	assert_int_equal(n.chacha20, 2);
	metrics_buf_init(&b, mem, sizeof mem - 1);
	cipher_metrics(&b, &n);
	assert_true(metrics_buf_ok(&b));
	mem[b.len] = 0;
	assert_non_null(strstr(mem, "# TYPE kcpsocks_sessions_by_cipher_total counter\n"));
	assert_non_null(
	        strstr(mem, "kcpsocks_sessions_by_cipher_total{cipher=\"aes-256-gcm\"} 2\n"));
	assert_non_null(
	        strstr(mem, "kcpsocks_sessions_by_cipher_total{cipher=\"chacha20-poly1305\"} 2\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(offer_follows_config_and_cpu),
		cmocka_unit_test(counts_and_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
