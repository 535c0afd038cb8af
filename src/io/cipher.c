/* cipher.c - the envelope AEAD this process offers, from the CPU and the config. */
#include "io/cipher.h"

#include <sodium.h>

#include "io/log.h"

bool cipher_aes_available(void) { return crypto_aead_aes256gcm_is_available() != 0; }

uint32_t cipher_features(enum config_cipher want, bool aes_available)
{
	return want == CONFIG_CIPHER_AUTO && aes_available ? TPARAMS_FEAT_AES_GCM : 0;
}

uint32_t cipher_offer(enum config_cipher want, const char *role)
{
	bool avail = cipher_aes_available();
	uint32_t f = cipher_features(want, avail);

	if (f & TPARAMS_FEAT_AES_GCM)
		log_info("%s: offering aes-256-gcm (this CPU has AES-NI), chacha20-poly1305 with "
		         "peers "
		         "that lack it",
		         role);
	else
		log_info("%s: chacha20-poly1305 only (%s)", role,
		         want == CONFIG_CIPHER_CHACHA20 ? "cipher = chacha20"
		                                        : "no AES-256-GCM on this CPU");
	return f;
}

void cipher_count(struct cipher_counts *n, uint32_t features)
{
	if (tparams_aes_gcm(features))
		n->aes_gcm++;
	else
		n->chacha20++;
}

void cipher_metrics(struct metrics_buf *b, const struct cipher_counts *n)
{
	static const char name[] = "kcpsocks_sessions_by_cipher_total";
	struct metrics_label l = { "cipher", NULL };

	metrics_family(b, name, METRICS_COUNTER,
	               "sessions established, by the AEAD their datagrams use (docs/PROTOCOL.md "
	               "secure layer 2.7)");
	l.value = tparams_cipher_name(TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_REKEY);
	metrics_sample_u64(b, name, &l, 1, n->aes_gcm);
	l.value = tparams_cipher_name(0);
	metrics_sample_u64(b, name, &l, 1, n->chacha20);
}
