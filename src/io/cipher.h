/* cipher.h - which envelope AEADs this process offers the handshake, and
 * the per-cipher session counts of the metrics page.
 *
 * AES-256-GCM (docs/PROTOCOL.md secure layer 2.7) is a fact of the machine
 * (the CPU's AES and carry-less multiply instructions, as libsodium sees
 * them) and of the config (cipher = auto | chacha20): both are known here,
 * at start-up, and reach the sans-I/O handshake as the optional feature
 * bits of the proposal (client) or of the default parameters (server).
 */
#ifndef KCPSOCKS_IO_CIPHER_H
#define KCPSOCKS_IO_CIPHER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/tparams.h"
#include "io/metrics.h"

/* cipher_aes_available says whether libsodium runs AES-256-GCM on this CPU.
 * Only meaningful after sysrng_init (sodium_init probes the CPU). */
bool cipher_aes_available(void);

/* cipher_features returns the optional feature bits (TPARAMS_FEATURES_OPTIONAL)
 * to advertise for config choice want on a machine where AES-256-GCM is
 * available or not: TPARAMS_FEAT_AES_GCM for auto on such a machine, else
 * 0. Pure, so tests can force either answer. */
uint32_t cipher_features(enum config_cipher want, bool aes_available);

/* cipher_offer is cipher_features for this machine, with one info line
 * saying what is offered and why ("role" names the daemon in it). */
uint32_t cipher_offer(enum config_cipher want, const char *role);

/* Sessions established, by the AEAD they use. */
struct cipher_counts {
	uint64_t aes_gcm, chacha20;
};

/* cipher_count counts one session that agreed features. */
void cipher_count(struct cipher_counts *n, uint32_t features);

/* cipher_metrics writes the family kcpsocks_sessions_by_cipher_total with
 * one sample per cipher (label cipher: tparams_cipher_name's names). */
void cipher_metrics(struct metrics_buf *b, const struct cipher_counts *n);

#endif
