/* test_envelope.c - seal/open: round trips, every flipped byte, truncation,
 * extension, replay, limits, liveness, padding policies, and the statistics
 * of sealed bytes (chi-square, popcount, printable first bytes). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/envelope.c"
#include "core/transport.h"

struct pair {
	struct prng g;
	struct rng_source rng;
	struct envelope cli, srv;
};

/* Features pair_init agrees: 0, or AES-256-GCM for the aes_* runs of the
 * same tests (set by aes_setup, cleared by aes_teardown). */
static uint32_t pair_features;

/* Two ends of one session with keys drawn from a seeded prng. */
static void pair_init(struct pair *p, uint64_t seed, uint8_t pad_mode, uint16_t pad_max)
{
	uint8_t hdr[KEYS_LEN];
	struct envelope_dir a, b;
	struct transport_params tp;

	prng_seed(&p->g, seed);
	p->rng = prng_source(&p->g);
	rng_fill(&p->rng, hdr, sizeof hdr);
	rng_fill(&p->rng, &a, sizeof a);
	rng_fill(&p->rng, &b, sizeof b);
	tparams_default(&tp);
	tp.mtu = 1400;
	tp.pad_mode = pad_mode;
	tp.pad_max = pad_max;
	tp.features = pair_features;
	envelope_init(&p->cli, hdr, 0x0102030405060708ULL, &a, &b, &tp, 0);
	envelope_init(&p->srv, hdr, 0x0102030405060708ULL, &b, &a, &tp, 0);
	/* AES-256-GCM: the first two datagrams of an epoch take the one-shot
	 * path, the rest the expanded keys, so every test crosses both */
	p->cli.gcm_after = p->srv.gcm_after = 2;
}

/* Every pair ends here: an AES-256-GCM envelope owns its expanded keys. */
static void pair_wipe(struct pair *p)
{
	envelope_wipe(&p->cli);
	envelope_wipe(&p->srv);
}

static ssize_t seal(struct pair *p, const void *pl, size_t len, uint8_t *out)
{
	ssize_t n = envelope_seal(&p->cli, &p->rng, pl, len, out, ENVELOPE_MAX_DATAGRAM);

	assert_true(n >= (ssize_t)(len + ENVELOPE_OVERHEAD));
	return n;
}

static void round_trip_and_overhead(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	const char msg[] = "a KCP datagram";
	ssize_t n;
	uint64_t sid;

	pair_init(&p, 1, TPARAMS_PAD_NONE, 0);
	for (size_t len = 0; len < 100; len++) {
		n = seal(&p, msg, len % sizeof msg, d);
		assert_int_equal(n, len % sizeof msg + ENVELOPE_OVERHEAD);
		assert_int_equal(envelope_peek_sid(p.cli.hdr, d, (size_t)n, &sid), 0);
		assert_true(sid == p.cli.sid);
		assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 5, out, sizeof out, &rx),
		                 (ssize_t)(len % sizeof msg));
		assert_memory_equal(out, msg, len % sizeof msg);
		assert_true(rx.ctr == len && rx.newest);
	}
	/* In place: the payload already sits after the header. */
	memcpy(d + ENVELOPE_HDR_LEN, msg, sizeof msg);
	n = envelope_seal(&p.cli, &p.rng, d + ENVELOPE_HDR_LEN, sizeof msg, d, sizeof d);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 6, out, sizeof out, &rx), sizeof msg);
	assert_string_equal((char *)out, msg);
	assert_int_equal(p.srv.last_rx_ms, 6);
	/* The other direction works and is keyed differently. */
	n = envelope_seal(&p.srv, &p.rng, (const uint8_t *)msg, sizeof msg, d, sizeof d);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 7, out, sizeof out, &rx), KS_ERR_AUTH);
	assert_int_equal(envelope_open(&p.cli, d, (size_t)n, 7, out, sizeof out, &rx), sizeof msg);
	pair_wipe(&p);
}

static void every_flipped_bit_is_refused(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], bad[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 2, TPARAMS_PAD_RANDOM, 32);
	n = seal(&p, "flip me", 7, d);
	for (ssize_t i = 0; i < n; i++) {
		for (int v = 1; v < 256; v++) {
			memcpy(bad, d, (size_t)n);
			bad[i] ^= (uint8_t)v;
			assert_true(envelope_open(&p.srv, bad, (size_t)n, 1, out, sizeof out, &rx) <
			            0);
		}
	}
	assert_int_equal(p.srv.opened, 0);
	assert_int_equal(p.srv.rx_win.next, 0);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 7);
	pair_wipe(&p);
}

static void truncation_and_extension_are_refused(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM + 8], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 3, TPARAMS_PAD_RANDOM, 32);
	n = seal(&p, "cut me", 6, d);
	for (ssize_t l = 0; l < n; l++)
		assert_true(envelope_open(&p.srv, d, (size_t)l, 1, out, sizeof out, &rx) < 0);
	for (size_t extra = 1; extra <= 8; extra++) {
		memset(d + n, 0, extra);
		assert_true(envelope_open(&p.srv, d, (size_t)n + extra, 1, out, sizeof out, &rx) <
		            0);
	}
	assert_int_equal(
	        envelope_open(&p.srv, d, ENVELOPE_MAX_DATAGRAM + 1, 1, out, sizeof out, &rx),
	        KS_ERR_PROTO);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 6);
	pair_wipe(&p);
}

static void replays_are_refused(void **state)
{
	(void)state;
	struct pair p;
	static uint8_t d[REPLAY_WINDOW + 10][64];
	uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n[3];

	pair_init(&p, 4, TPARAMS_PAD_NONE, 0);
	for (int i = 0; i < 3; i++)
		n[i] = seal(&p, "r", 1, d[i]);
	/* Out of order inside the window is fine, the same counter twice is not. */
	assert_int_equal(envelope_open(&p.srv, d[2], (size_t)n[2], 1, out, sizeof out, &rx), 1);
	assert_true(rx.newest);
	assert_int_equal(envelope_open(&p.srv, d[0], (size_t)n[0], 1, out, sizeof out, &rx), 1);
	assert_false(rx.newest);
	assert_int_equal(envelope_open(&p.srv, d[0], (size_t)n[0], 1, out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	assert_int_equal(envelope_open(&p.srv, d[2], (size_t)n[2], 1, out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	/* Push the window REPLAY_WINDOW past counter 1: it becomes too old. */
	for (size_t i = 3; i < REPLAY_WINDOW + 2; i++) {
		ssize_t m = seal(&p, "r", 1, d[3]);
		assert_int_equal(envelope_open(&p.srv, d[3], (size_t)m, 1, out, sizeof out, &rx),
		                 1);
	}
	assert_int_equal(envelope_open(&p.srv, d[1], (size_t)n[1], 1, out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	pair_wipe(&p);
}

/* envelope_verify: a genuine copy verifies, without touching the window;
 * every flipped byte, a truncation and another session's datagram do not,
 * and a failure counts as a forgery. */
static void verify_checks_a_copy_without_the_window(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	struct replay win;
	uint64_t forged;
	ssize_t n;

	pair_init(&p, 40, TPARAMS_PAD_RANDOM, 64);
	n = seal(&p, "copy", 4, d);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 4);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	win = p.srv.rx_win;
	assert_int_equal(envelope_verify(&p.srv, d, (size_t)n), 0);
	assert_int_equal(envelope_verify(&p.srv, d, (size_t)n), 0);
	assert_memory_equal(&win, &p.srv.rx_win, sizeof win);
	for (ssize_t i = 0; i < n; i++) {
		forged = p.srv.forgeries;
		d[i] ^= 0x20;
		assert_true(envelope_verify(&p.srv, d, (size_t)n) != 0);
		d[i] ^= 0x20;
		assert_true(p.srv.forgeries >= forged);
	}
	assert_int_equal(envelope_verify(&p.srv, d, ENVELOPE_MIN_LEN - 1), KS_ERR_PROTO);
	assert_true(envelope_verify(&p.srv, d, (size_t)n - 1) != 0);
	assert_memory_equal(&win, &p.srv.rx_win, sizeof win);
	/* A fresh datagram verifies too, and still opens afterwards. */
	n = seal(&p, "next", 4, d);
	assert_int_equal(envelope_verify(&p.srv, d, (size_t)n), 0);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 2, out, sizeof out, &rx), 4);
	pair_wipe(&p);
}

static void counter_limit_refuses_to_seal(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 5, TPARAMS_PAD_NONE, 0);
	p.cli.send_ctr = ENVELOPE_CTR_LIMIT - 1;
	n = seal(&p, "last", 4, d);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 4);
	assert_true(rx.ctr == ENVELOPE_CTR_LIMIT - 1);
	assert_int_equal(envelope_seal(&p.cli, &p.rng, (const uint8_t *)"x", 1, d, sizeof d),
	                 KS_ERR_LIMIT);
	assert_true(p.cli.send_ctr == ENVELOPE_CTR_LIMIT);
	assert_int_equal(envelope_status(&p.cli, 1, ENVELOPE_NOTHING_UNACKED), ENVELOPE_EXHAUSTED);
	pair_wipe(&p);
}

static void forgery_limit_stops_opening(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 6, TPARAMS_PAD_NONE, 0);
	n = seal(&p, "ok", 2, d);
	p.srv.forgeries = ENVELOPE_FORGERY_LIMIT;
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx),
	                 KS_ERR_LIMIT);
	assert_int_equal(envelope_status(&p.srv, 1, ENVELOPE_NOTHING_UNACKED), ENVELOPE_EXHAUSTED);
	pair_wipe(&p);
}

static void status_reports_silence_and_rekey(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 7, TPARAMS_PAD_NONE, 0);
	/* Nothing outstanding: silence alone is not a reason. */
	assert_int_equal(envelope_status(&p.cli, 100000, ENVELOPE_NOTHING_UNACKED), ENVELOPE_OK);
	/* Data outstanding since 100000, last reply at 0: silent 5 s later. */
	assert_int_equal(envelope_status(&p.cli, 104999, 100000), ENVELOPE_OK);
	assert_int_equal(envelope_status(&p.cli, 105000, 100000), ENVELOPE_PEER_SILENT);
	/* A reply at 104000 postpones it. */
	n = envelope_seal(&p.srv, &p.rng, (const uint8_t *)"ack", 3, d, sizeof d);
	assert_int_equal(envelope_open(&p.cli, d, (size_t)n, 104000, out, sizeof out, &rx), 3);
	assert_int_equal(envelope_status(&p.cli, 105000, 100000), ENVELOPE_OK);
	assert_int_equal(envelope_status(&p.cli, 109000, 100000), ENVELOPE_PEER_SILENT);
	assert_int_equal(envelope_status(&p.cli, ENVELOPE_REKEY_AFTER_MS, ENVELOPE_NOTHING_UNACKED),
	                 ENVELOPE_REKEY_DUE);
	p.cli.send_ctr = ENVELOPE_REKEY_AFTER_PACKETS;
	assert_int_equal(envelope_status(&p.cli, 105000, ENVELOPE_NOTHING_UNACKED),
	                 ENVELOPE_REKEY_DUE);
	pair_wipe(&p);
}

static void too_big_is_refused(void **state)
{
	(void)state;
	struct pair p;
	uint8_t pl[ENVELOPE_MAX_DATAGRAM] = { 0 }, d[ENVELOPE_MAX_DATAGRAM];

	pair_init(&p, 8, TPARAMS_PAD_RANDOM, 64);
	/* mtu 1400: 1368 bytes fit exactly, without room for padding. */
	assert_int_equal(envelope_seal(&p.cli, &p.rng, pl, 1368, d, sizeof d), 1400);
	assert_int_equal(envelope_seal(&p.cli, &p.rng, pl, 1369, d, sizeof d), KS_ERR_TOOBIG);
	assert_int_equal(envelope_seal(&p.cli, &p.rng, pl, 10, d, 41), KS_ERR_TOOBIG);
	assert_int_equal(envelope_seal(&p.cli, &p.rng, pl, 10, d, 42), 42);
	assert_int_equal(p.cli.send_ctr, 2);
	pair_wipe(&p);
}

static void failed_open_changes_no_window(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	pair_init(&p, 9, TPARAMS_PAD_NONE, 0);
	n = seal(&p, "once", 4, d);
	d[n - 1] ^= 1;
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), KS_ERR_AUTH);
	assert_int_equal(p.srv.forgeries, 1);
	d[n - 1] ^= 1;
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, 3, &rx), KS_ERR_FULL);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 4);
	assert_int_equal(p.srv.dropped, 2);
	pair_wipe(&p);
}

static void bucket_padding_rounds_up(void **state)
{
	(void)state;
	struct pair p;
	uint8_t pl[ENVELOPE_MAX_DATAGRAM] = { 0 }, d[ENVELOPE_MAX_DATAGRAM];
	uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;

	pair_init(&p, 10, TPARAMS_PAD_BUCKET, 128);
	for (size_t len = 0; len <= 1368; len += 7) {
		ssize_t n = envelope_seal(&p.cli, &p.rng, pl, len, d, sizeof d);
		assert_true(n > 0);
		assert_true(n % 128 == 0 || n == 1400);
		assert_true(n - (ssize_t)len - ENVELOPE_OVERHEAD < 128);
		assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx),
		                 (ssize_t)len);
	}
	pair_wipe(&p);
}

/* One sealed datagram under fixed keys and prng, pinned byte for byte. */
#define KAT_DGRAM                                                                                  \
	"e7469b383da217385fe46162bfd969063cd6dbc09db7456c297c9e9d75a6bfbb"                         \
	"08eb3d6e4d76eb9d91173f7eb31e285cb4b8d3e3"

static void sealed_datagram_is_pinned(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM];
	char h[2 * ENVELOPE_MAX_DATAGRAM + 1];
	ssize_t n;

	pair_init(&p, 11, TPARAMS_PAD_RANDOM, 16);
	p.cli.send_ctr = 0x0000123456789aULL;
	n = seal(&p, "kcpsocks", 8, d);
	sodium_bin2hex(h, sizeof h, d, (size_t)n);
	if (getenv("KAT_PRINT"))
		printf("KAT_DGRAM %s\n", h);
	assert_string_equal(h, KAT_DGRAM);
	pair_wipe(&p);
}

/* The same datagram taken apart with libsodium calls only, following
 * PROTOCOL.md (secure layer) 2 by hand: the layout is what the document says. */
static void datagram_opens_by_hand(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], m[14], zero[14] = { 0 }, ad[14], nonce[12], pt[64];
	unsigned long long ptlen;
	uint32_t ic;
	ssize_t n;

	pair_init(&p, 11, TPARAMS_PAD_RANDOM, 16);
	p.cli.send_ctr = 0x0000123456789aULL;
	n = seal(&p, "kcpsocks", 8, d);
	memcpy(&ic, d + 14, 4); /* little-endian host assumed by this test */
	crypto_stream_chacha20_ietf_xor_ic(m, zero, 8, d + 18, ic, p.srv.hdr);
	crypto_stream_chacha20_ietf_xor_ic(m + 8, zero, 6, d + 18, ic, p.srv.rx.hp);
	for (int i = 0; i < 14; i++)
		ad[i] = d[i] ^ m[i];
	assert_memory_equal(ad, "\x08\x07\x06\x05\x04\x03\x02\x01\x9a\x78\x56\x34\x12\x00", 14);
	memcpy(nonce, p.srv.rx.iv, 12);
	for (int i = 0; i < 6; i++)
		nonce[4 + i] ^= ad[8 + i];
	assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, d + 14,
	                                                           (unsigned long long)n - 14, ad,
	                                                           14, nonce, p.srv.rx.key),
	                 0);
	assert_int_equal(ptlen, (unsigned long long)n - 30);
	assert_memory_equal(pt, "kcpsocks", 8);
	assert_int_equal(pt[ptlen - 2] | pt[ptlen - 1] << 8, ptlen - 10);
	pair_wipe(&p);
}

/* --- statistics over 10,000 datagrams ----------------------------------- */

enum { STAT_N = 10000 };

static double chi2(const uint64_t *count, size_t bins, uint64_t total)
{
	double e = (double)total / (double)bins, x = 0;

	for (size_t i = 0; i < bins; i++)
		x += ((double)count[i] - e) * ((double)count[i] - e) / e;
	return x;
}

/* Critical value of chi-square with 255 degrees of freedom at p = 0.001
 * (Wilson-Hilferty gives 330.5), and with 64 at p = 0.001 (104.7). */
#define CHI2_255_P001 330.52
#define CHI2_64_P001  104.72

/* --- in-band rekeying (PROTOCOL.md secure layer 8.1) ------------------- */

/* A pair that agreed TPARAMS_FEAT_REKEY; the epoch-0 keys are kept in
 * k0 (client tx, server tx) to check they are wiped later. */
static void rk_init(struct pair *p, uint64_t seed)
{
	pair_init(p, seed, TPARAMS_PAD_RANDOM, 32);
	p->cli.rekey = p->srv.rekey = true;
}

/* One datagram from a to b carrying "<tag><i>", opened at now. */
static void rk_send(struct pair *p, struct envelope *a, struct envelope *b, uint32_t i,
                    uint64_t now)
{
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	n = envelope_seal(a, &p->rng, (const uint8_t *)&i, sizeof i, d, sizeof d);
	assert_true(n > 0);
	assert_int_equal(envelope_open(b, d, (size_t)n, now, out, sizeof out, &rx), sizeof i);
	assert_memory_equal(out, &i, sizeof i);
}

static bool contains(const void *hay, size_t n, const uint8_t key[static KEYS_LEN])
{
	const uint8_t *h = hay;

	for (size_t i = 0; i + KEYS_LEN <= n; i++)
		if (memcmp(h + i, key, KEYS_LEN) == 0)
			return true;
	return false;
}

/* The feature is negotiated: without it envelope_rekey refuses, the phase
 * bit never appears and the old 48-bit counter limit holds. */
static void rekey_needs_the_feature(void **state)
{
	(void)state;
	struct pair p;
	struct transport_params tp;

	pair_init(&p, 60, TPARAMS_PAD_NONE, 0);
	assert_false(p.cli.rekey);
	assert_int_equal(envelope_rekey(&p.cli, 1), KS_ERR_UNSUPPORTED);
	p.cli.epoch_sealed = UINT64_MAX; /* never starts one by itself */
	rk_send(&p, &p.cli, &p.srv, 1, 1);
	assert_int_equal(p.cli.epoch, 0);
	assert_int_equal(ctr_limit(&p.cli), ENVELOPE_CTR_LIMIT);
	tparams_default(&tp);
	tp.features = TPARAMS_FEAT_REKEY;
	envelope_init(&p.cli, p.cli.hdr, 1, &p.cli.tx, &p.cli.rx, &tp, 0);
	assert_true(p.cli.rekey);
	assert_int_equal(ctr_limit(&p.cli), ENVELOPE_CTR_LIMIT_PHASED);
	assert_true(TPARAMS_FEATURES & TPARAMS_FEAT_REKEY);
	pair_wipe(&p);
}

/* Either side starts an epoch; data flows both ways across each switch,
 * every payload intact; the starter confirms on the first reply; both
 * sides starting at once converge on the same epoch. */
static void rekey_started_by_either_side(void **state)
{
	(void)state;
	struct pair p;
	uint8_t k0[KEYS_LEN];
	uint32_t i = 0;
	uint64_t now = 10;

	rk_init(&p, 61);
	memcpy(k0, p.cli.tx.key, KEYS_LEN);
	for (int round = 0; round < 6; round++) {
		struct envelope *a = round % 2 ? &p.srv : &p.cli;
		struct envelope *b = round % 2 ? &p.cli : &p.srv;

		rk_send(&p, a, b, i++, now);
		rk_send(&p, b, a, i++, now);
		/* The previous keys go after the grace period. */
		now += ENVELOPE_REKEY_GRACE_MS;
		envelope_tick(a, now);
		envelope_tick(b, now);
		assert_int_equal(envelope_rekey(a, now), 0);
		assert_int_equal(a->epoch, (uint32_t)round + 1);
		assert_false(a->confirmed);
		/* Not twice before the peer is heard in the new epoch. */
		assert_int_equal(envelope_rekey(a, now), KS_ERR_AGAIN);
		rk_send(&p, a, b, i++, now);
		assert_int_equal(b->epoch, (uint32_t)round + 1);
		assert_true(b->confirmed && b->have_prev);
		rk_send(&p, b, a, i++, now);
		assert_true(a->confirmed);
		assert_memory_equal(a->tx.key, b->rx.key, KEYS_LEN);
		assert_memory_equal(a->rx.key, b->tx.key, KEYS_LEN);
		for (int k = 0; k < 20; k++)
			rk_send(&p, k % 3 ? a : b, k % 3 ? b : a, i++, now);
	}
	assert_int_equal(p.cli.rekeys_started, 3);
	assert_int_equal(p.srv.rekeys_started, 3);
	assert_int_equal(p.cli.rekeys_followed, 3);
	assert_false(contains(&p.cli, sizeof p.cli, k0));
	assert_false(contains(&p.srv, sizeof p.srv, k0));
	/* Both at once. */
	now += ENVELOPE_REKEY_GRACE_MS;
	assert_int_equal(envelope_rekey(&p.cli, now), 0);
	assert_int_equal(envelope_rekey(&p.srv, now), 0);
	rk_send(&p, &p.cli, &p.srv, i++, now);
	rk_send(&p, &p.srv, &p.cli, i++, now);
	assert_int_equal(p.cli.epoch, 7);
	assert_int_equal(p.srv.epoch, 7);
	assert_true(p.cli.confirmed && p.srv.confirmed);
	assert_int_equal(p.srv.forgeries + p.cli.forgeries, 0);
	pair_wipe(&p);
}

/* N: the sealer starts the next epoch by itself once N bytes went out
 * under one key, M: once the epoch is M ms old. */
static void rekey_by_bytes_and_by_age(void **state)
{
	(void)state;
	struct pair p;
	uint32_t i = 0;
	uint64_t now = 0;

	rk_init(&p, 62);
	p.cli.rekey_bytes = 4000;
	while (p.srv.epoch < 5) {
		rk_send(&p, &p.cli, &p.srv, i++, now);
		rk_send(&p, &p.srv, &p.cli, i++, now);
		now += 100;
		assert_true(i < 100000);
	}
	assert_int_equal(p.cli.rekeys_started, 5);
	assert_int_equal(p.srv.rekeys_started, 0);
	/* Age: the server's epoch grows old; its next seal moves on. */
	p.cli.rekey_bytes = UINT64_MAX;
	now += ENVELOPE_REKEY_MS;
	envelope_tick(&p.srv, now);
	rk_send(&p, &p.srv, &p.cli, i++, now);
	assert_int_equal(p.srv.epoch, 6);
	assert_int_equal(p.cli.epoch, 6);
	assert_int_equal(p.srv.rekeys_started, 1);
	assert_int_equal(
	        envelope_status(&p.srv, now + 48ULL * 3600 * 1000, ENVELOPE_NOTHING_UNACKED),
	        ENVELOPE_OK);
	pair_wipe(&p);
}

/* Datagrams sealed under the old keys but delivered after the first one
 * under the new keys still open within the grace period, in both
 * directions; after it they are refused (the keys are gone: no AEAD
 * opens them) and a replay of an opened one is refused too. */
static void rekey_reordering_and_grace(void **state)
{
	(void)state;
	struct pair p;
	uint8_t old[4][ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	uint8_t zero[sizeof p.srv.prev] = { 0 }, k0[KEYS_LEN];
	ssize_t n[4];
	struct envelope_rx rx;
	uint64_t now = 100;

	rk_init(&p, 63);
	memcpy(k0, p.srv.rx.key, KEYS_LEN);
	for (int k = 0; k < 4; k++)
		n[k] = envelope_seal(&p.cli, &p.rng, (const uint8_t *)"old", 3, old[k],
		                     sizeof old[k]);
	assert_int_equal(envelope_rekey(&p.cli, now), 0);
	rk_send(&p, &p.cli, &p.srv, 7, now); /* the server follows */
	assert_true(p.srv.have_prev);
	/* Reordered old-epoch datagram within the grace period: accepted. */
	assert_int_equal(envelope_open(&p.srv, old[0], (size_t)n[0], now + 1, out, sizeof out, &rx),
	                 3);
	assert_memory_equal(out, "old", 3);
	/* Its copy: a replay. */
	assert_int_equal(envelope_open(&p.srv, old[0], (size_t)n[0], now + 2, out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	/* A verify of an old-epoch copy works without changing anything. */
	assert_int_equal(envelope_verify(&p.srv, old[0], (size_t)n[0]), 0);
	assert_int_equal(envelope_open(&p.srv, old[1], (size_t)n[1],
	                               now + ENVELOPE_REKEY_GRACE_MS - 1, out, sizeof out, &rx),
	                 3);
	/* Grace over: the old keys are wiped and an old datagram never seen
	 * before is refused, as is an opened one. */
	envelope_tick(&p.srv, now + ENVELOPE_REKEY_GRACE_MS);
	assert_false(p.srv.have_prev);
	assert_memory_equal(&p.srv.prev, zero, sizeof zero);
	assert_false(contains(&p.srv, sizeof p.srv, k0));
	if (p.srv.gcm_tx) /* AES: the block holds the current epoch's keys only */
		assert_false(contains(p.srv.gcm_tx, envelope_heap_bytes(&p.srv), k0));
	assert_int_equal(envelope_open(&p.srv, old[2], (size_t)n[2], now + ENVELOPE_REKEY_GRACE_MS,
	                               out, sizeof out, &rx),
	                 KS_ERR_AUTH);
	assert_int_equal(envelope_open(&p.srv, old[0], (size_t)n[0], now + ENVELOPE_REKEY_GRACE_MS,
	                               out, sizeof out, &rx),
	                 KS_ERR_REPLAY);
	assert_int_equal(p.srv.epoch, 1);
	/* The starter keeps its old receive keys until it hears the new
	 * epoch: the server's old datagram, sealed before it followed, is
	 * delivered late. */
	pair_wipe(&p);
	rk_init(&p, 64);
	n[3] = envelope_seal(&p.srv, &p.rng, (const uint8_t *)"late", 4, old[3], sizeof old[3]);
	assert_int_equal(envelope_rekey(&p.cli, now), 0);
	rk_send(&p, &p.cli, &p.srv, 8, now);
	rk_send(&p, &p.srv, &p.cli, 9, now + 10);
	assert_true(p.cli.confirmed && p.cli.have_prev);
	assert_int_equal(
	        envelope_open(&p.cli, old[3], (size_t)n[3], now + 20, out, sizeof out, &rx), 4);
	envelope_tick(&p.cli, now + 10 + ENVELOPE_REKEY_GRACE_MS);
	assert_false(p.cli.have_prev);
	pair_wipe(&p);
}

/* The starter hears nothing in its new epoch (all lost) while the peer,
 * confirmed, already starts the one after: the starter still follows. A
 * next-epoch datagram that envelope_verify checks moves nothing. */
static void rekey_follows_two_ahead(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;
	uint64_t now = 5;

	rk_init(&p, 65);
	assert_int_equal(envelope_rekey(&p.cli, now), 0);
	rk_send(&p, &p.cli, &p.srv, 1, now);
	/* The server's epoch-1 datagrams are all lost. */
	for (int k = 0; k < 3; k++)
		assert_true(envelope_seal(&p.srv, &p.rng, (const uint8_t *)"x", 1, d, sizeof d) >
		            0);
	now += ENVELOPE_REKEY_GRACE_MS;
	assert_int_equal(envelope_rekey(&p.srv, now), 0);
	n = envelope_seal(&p.srv, &p.rng, (const uint8_t *)"two", 3, d, sizeof d);
	assert_int_equal(envelope_verify(&p.cli, d, (size_t)n), 0);
	assert_int_equal(p.cli.epoch, 1);
	assert_int_equal(envelope_open(&p.cli, d, (size_t)n, now, out, sizeof out, &rx), 3);
	assert_int_equal(p.cli.epoch, 2);
	rk_send(&p, &p.cli, &p.srv, 2, now);
	assert_true(p.srv.confirmed);
	assert_int_equal(p.cli.forgeries, 0);
	pair_wipe(&p);
}

/* A forged datagram with either phase bit costs at most two AEADs and
 * moves no epoch; the phase bit is authenticated. */
static void rekey_phase_bit_is_authenticated(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM], m[ENVELOPE_HDR_LEN];
	struct envelope_rx rx;
	ssize_t n;

	rk_init(&p, 66);
	n = envelope_seal(&p.cli, &p.rng, (const uint8_t *)"p", 1, d, sizeof d);
	/* Flip the phase bit under the mask (bit 7 of byte 13). */
	mask(m + ENVELOPE_SID_LEN, ENVELOPE_CTR_LEN, p.cli.tx.hp, d + ENVELOPE_HDR_LEN);
	d[13] ^= 0x80;
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), KS_ERR_AUTH);
	assert_int_equal(p.srv.epoch, 0);
	assert_int_equal(p.srv.forgeries, 1);
	d[13] ^= 0x80;
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), 1);
	/* In epoch 1 the field's top bit is set on the wire (under the mask). */
	assert_int_equal(envelope_rekey(&p.cli, 1), 0);
	n = envelope_seal(&p.cli, &p.rng, (const uint8_t *)"q", 1, d, sizeof d);
	mask(m, ENVELOPE_HDR_LEN - ENVELOPE_SID_LEN, p.cli.tx.hp, d + ENVELOPE_HDR_LEN);
	assert_int_equal((d[13] ^ m[5]) & 0x80, 0x80);
	pair_wipe(&p);
}

static void sealed_bytes_look_uniform(void **state)
{
	(void)state;
	static uint8_t d[ENVELOPE_MAX_DATAGRAM];
	uint8_t pl[1200];
	uint64_t all[256] = { 0 }, first[256] = { 0 }, lens[65] = { 0 }, bytes = 0, bits = 0;
	uint64_t printable = 0;
	struct pair p;

	pair_init(&p, 12, TPARAMS_PAD_RANDOM, 64);
	/* A payload as structured as it gets: ASCII text and zero runs. */
	for (size_t i = 0; i < sizeof pl; i++)
		pl[i] = i % 3 ? (uint8_t)('a' + i % 26) : 0;
	for (int k = 0; k < STAT_N; k++) {
		size_t len = k % 2 ? 100 : 1200;
		ssize_t n = seal(&p, pl, len, d);
		size_t pad = (size_t)n - len - ENVELOPE_OVERHEAD;

		assert_true(pad <= 64);
		lens[pad]++;
		for (ssize_t i = 0; i < n; i++) {
			all[d[i]]++;
			bits += (uint64_t)__builtin_popcount(d[i]);
		}
		bytes += (uint64_t)n;
		first[d[0]]++;
		printable += d[0] >= 0x20 && d[0] < 0x7f;
	}
	double x_all = chi2(all, 256, bytes), x_first = chi2(first, 256, STAT_N);
	double x_len = chi2(lens, 65, STAT_N);
	double pop = (double)bits / (double)bytes, pr = (double)printable / STAT_N;

	printf("# envelope statistics, %d datagrams, %llu bytes\n", STAT_N,
	       (unsigned long long)bytes);
	printf("#   chi2 all bytes (df 255)      %.1f (p=0.001 bound %.1f)\n", x_all,
	       CHI2_255_P001);
	printf("#   chi2 first byte (df 255)     %.1f\n", x_first);
	printf("#   mean popcount per byte       %.4f (ideal 4)\n", pop);
	printf("#   first byte printable ASCII   %.4f (uniform 95/256 = %.4f)\n", pr, 95.0 / 256);
	printf("#   chi2 padding lengths (df 64) %.1f (p=0.001 bound %.1f)\n", x_len, CHI2_64_P001);
	assert_true(x_all < CHI2_255_P001);
	assert_true(x_first < CHI2_255_P001);
	assert_true(fabs(pop - 4.0) < 0.01);
	assert_true(fabs(pr - 95.0 / 256) < 0.02);
	assert_true(x_len < CHI2_64_P001);
	for (int i = 0; i <= 64; i++)
		assert_true(lens[i] > 0);
	pair_wipe(&p);
}

/* --- AES-256-GCM (PROTOCOL.md secure layer 2.7) ------------------------- */

/* Runs the test with AES-256-GCM agreed, or skips it on a CPU without it. */
static int aes_setup(void **state)
{
	(void)state;
	pair_features = TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_REKEY;
	return 0;
}

static int aes_teardown(void **state)
{
	(void)state;
	pair_features = 0;
	return 0;
}

static bool aes_skip(void)
{
	if (crypto_aead_aes256gcm_is_available())
		return false;
	print_message("# skipped: this CPU has no AES-256-GCM (no AES-NI/PCLMUL)\n");
	return true;
}

#define AES_RUN(t)                                                                                 \
	static void aes_##t(void **state)                                                          \
	{                                                                                          \
		if (aes_skip())                                                                    \
			skip();                                                                    \
		assert_true(pair_features &TPARAMS_FEAT_AES_GCM);                                  \
		t(state);                                                                          \
	}
AES_RUN(round_trip_and_overhead)
AES_RUN(every_flipped_bit_is_refused)
AES_RUN(truncation_and_extension_are_refused)
AES_RUN(replays_are_refused)
AES_RUN(verify_checks_a_copy_without_the_window)
AES_RUN(forgery_limit_stops_opening)
AES_RUN(failed_open_changes_no_window)
AES_RUN(bucket_padding_rounds_up)
AES_RUN(sealed_bytes_look_uniform)
AES_RUN(rekey_started_by_either_side)
AES_RUN(rekey_by_bytes_and_by_age)
AES_RUN(rekey_reordering_and_grace)
AES_RUN(rekey_follows_two_ahead)
AES_RUN(rekey_phase_bit_is_authenticated)

/* The cipher is the agreed set's: AES-256-GCM needs both bits (2.7). */
static void aes_needs_both_features(void **state)
{
	(void)state;
	struct pair p;

	pair_features = TPARAMS_FEAT_AES_GCM;
	pair_init(&p, 70, TPARAMS_PAD_NONE, 0);
	assert_false(p.cli.aes);
	pair_wipe(&p);
	pair_features = TPARAMS_FEAT_REKEY;
	pair_init(&p, 70, TPARAMS_PAD_NONE, 0);
	assert_false(p.cli.aes);
	pair_features = 0;
	assert_string_equal(tparams_cipher_name(0), "chacha20-poly1305");
	assert_string_equal(tparams_cipher_name(TPARAMS_FEAT_AES_GCM), "chacha20-poly1305");
	assert_string_equal(tparams_cipher_name(TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_REKEY),
	                    "aes-256-gcm");
	assert_true(TPARAMS_FEAT_AES_GCM == 1u << 6);
	assert_false(TPARAMS_FEATURES & TPARAMS_FEAT_AES_GCM); /* opt-in only */
	pair_wipe(&p);
}

/* The same layout as 2.1-2.3 with AES-256-GCM as the AEAD, taken apart by
 * hand with libsodium's one-shot call: same AD, same nonce (IV XOR counter),
 * so the envelope really runs GCM with the documented nonce. */
static void aes_datagram_opens_by_hand(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], m[14], zero[14] = { 0 }, ad[14], nonce[12], pt[64];
	unsigned long long ptlen;
	uint32_t ic;
	ssize_t n;

	if (aes_skip())
		skip();
	pair_init(&p, 11, TPARAMS_PAD_RANDOM, 16);
	assert_true(p.cli.aes && p.cli.aes_ok);
	p.cli.send_ctr = 0x0000123456789aULL;
	n = seal(&p, "kcpsocks", 8, d);
	memcpy(&ic, d + 14, 4); /* little-endian host assumed by this test */
	crypto_stream_chacha20_ietf_xor_ic(m, zero, 8, d + 18, ic, p.srv.hdr);
	crypto_stream_chacha20_ietf_xor_ic(m + 8, zero, 6, d + 18, ic, p.srv.rx.hp);
	for (int i = 0; i < 14; i++)
		ad[i] = d[i] ^ m[i];
	/* Epoch 0: phase bit clear, the field is the counter. */
	assert_memory_equal(ad, "\x08\x07\x06\x05\x04\x03\x02\x01\x9a\x78\x56\x34\x12\x00", 14);
	memcpy(nonce, p.srv.rx.iv, 12);
	for (int i = 0; i < 6; i++)
		nonce[4 + i] ^= ad[8 + i];
	assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, d + 14,
	                                                           (unsigned long long)n - 14, ad,
	                                                           14, nonce, p.srv.rx.key),
	                 -1);
	assert_int_equal(crypto_aead_aes256gcm_decrypt(pt, &ptlen, NULL, d + 14,
	                                               (unsigned long long)n - 14, ad, 14, nonce,
	                                               p.srv.rx.key),
	                 0);
	assert_int_equal(ptlen, (unsigned long long)n - 30);
	assert_memory_equal(pt, "kcpsocks", 8);
	assert_int_equal(pt[ptlen - 2] | pt[ptlen - 1] << 8, ptlen - 10);
	pair_wipe(&p);
}

/* Ends that disagree on the cipher cannot talk: nothing opens, and the
 * refusals count as forgeries (the handshake never lets this happen). */
static void aes_and_chacha_do_not_mix(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	struct transport_params tp;
	struct envelope old;
	ssize_t n;

	if (aes_skip())
		skip();
	pair_init(&p, 71, TPARAMS_PAD_NONE, 0);
	tparams_default(&tp);
	tp.features = TPARAMS_FEAT_REKEY; /* the server without AES */
	old = p.srv;                      /* envelope_init clears e before it reads the keys */
	envelope_init(&p.srv, old.hdr, old.sid, &old.tx, &old.rx, &tp, 0);
	envelope_wipe(&old); /* the copy holds the AES block: freed once, here */
	assert_false(p.srv.aes);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0);
	n = seal(&p, "x", 1, d);
	assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx), KS_ERR_AUTH);
	n = envelope_seal(&p.srv, &p.rng, (const uint8_t *)"y", 1, d, sizeof d);
	assert_true(n > 0);
	assert_int_equal(envelope_open(&p.cli, d, (size_t)n, 1, out, sizeof out, &rx), KS_ERR_AUTH);
	assert_int_equal(p.cli.forgeries, 1);
	pair_wipe(&p);
}

/* A session that agreed AES-256-GCM on a CPU without it (a caller that
 * skipped the availability check) refuses to seal or open, never faults. */
static void aes_unavailable_refuses(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;

	pair_init(&p, 72, TPARAMS_PAD_NONE, 0);
	assert_true(p.cli.aes);
	p.cli.aes_ok = p.srv.aes_ok = false; /* as on a CPU without AES-NI */
	assert_int_equal(envelope_seal(&p.cli, &p.rng, (const uint8_t *)"x", 1, d, sizeof d),
	                 KS_ERR_UNSUPPORTED);
	assert_int_equal(p.cli.send_ctr, 0);
	memset(d, 0, ENVELOPE_MIN_LEN);
	assert_int_equal(envelope_open(&p.srv, d, ENVELOPE_MIN_LEN, 1, out, sizeof out, &rx),
	                 KS_ERR_UNSUPPORTED);
	assert_int_equal(envelope_verify(&p.srv, d, ENVELOPE_MIN_LEN), KS_ERR_UNSUPPORTED);
	assert_int_equal(p.srv.dropped, 2);
	pair_wipe(&p);
}

/* Key phases under AES-256-GCM: each epoch's keys are expanded again, so a
 * datagram of epoch k opens only under epoch k's keys, and the nonce of a
 * counter never repeats under one key (the counter keeps running across
 * epochs; the key changes). The old epoch's block goes with it. */
static void aes_rekey_expands_each_epoch(void **state)
{
	(void)state;
	struct pair p;
	crypto_aead_aes256gcm_state before;

	if (aes_skip())
		skip();
	rk_init(&p, 73);
	for (uint32_t i = 0; i < 4; i++)
		rk_send(&p, &p.cli, &p.srv, i, 1);
	assert_non_null(p.cli.gcm_tx);
	assert_non_null(p.srv.gcm_rx);
	assert_memory_equal(p.cli.gcm_tx, p.srv.gcm_rx, sizeof before);
	memcpy(&before, p.cli.gcm_tx, sizeof before);
	assert_int_equal(envelope_rekey(&p.cli, 2), 0);
	assert_null(p.cli.gcm_tx);
	for (uint32_t i = 0; i < 4; i++) {
		rk_send(&p, &p.cli, &p.srv, 100 + i, 3);
		rk_send(&p, &p.srv, &p.cli, 200 + i, 3);
	}
	assert_int_equal(p.srv.epoch, 1);
	assert_non_null(p.cli.gcm_tx);
	assert_non_null(p.srv.gcm_tx);
	assert_memory_not_equal(&before, p.cli.gcm_tx, sizeof before);
	assert_memory_equal(p.cli.gcm_tx, p.srv.gcm_rx, sizeof before);
	assert_memory_equal(p.srv.gcm_tx, p.cli.gcm_rx, sizeof before);
	assert_int_equal(p.cli.send_ctr, 8);
	pair_wipe(&p);
}

/* Issue 19 (idle sessions): the expanded AES keys are not part of struct
 * envelope. A ChaCha20-Poly1305 envelope owns no heap at all; an AES one
 * gets one aligned block only once ENVELOPE_GCM_AFTER datagrams went
 * through one epoch's keys (forgeries do not count), gives it up at the
 * next epoch, and envelope_wipe frees it (twice is harmless). */
static void aes_keys_only_while_busy(void **state)
{
	(void)state;
	struct pair p;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	/* no state inline: the window and the four key sets leave less room
	 * than one expanded key would need */
	assert_true(sizeof(struct envelope) < sizeof(struct replay) +
	                                              4 * sizeof(struct envelope_dir) +
	                                              crypto_aead_aes256gcm_statebytes());
	assert_int_equal(ENVELOPE_GCM_BYTES % ENVELOPE_GCM_ALIGN, 0);
	assert_true(ENVELOPE_GCM_STRIDE >= sizeof(crypto_aead_aes256gcm_state));
	pair_features = TPARAMS_FEAT_REKEY;
	pair_init(&p, 74, TPARAMS_PAD_NONE, 0);
	for (uint32_t i = 0; i < 2 * ENVELOPE_GCM_AFTER; i++) {
		rk_send(&p, &p.cli, &p.srv, i, 1);
		rk_send(&p, &p.srv, &p.cli, i, 1);
	}
	assert_false(p.cli.aes);
	assert_null(p.cli.gcm_tx);
	assert_int_equal(envelope_heap_bytes(&p.cli), 0);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0);
	pair_wipe(&p);
	if (aes_skip())
		return;
	pair_features = TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_REKEY;
	pair_init(&p, 74, TPARAMS_PAD_NONE, 0);
	p.cli.gcm_after = p.srv.gcm_after = ENVELOPE_GCM_AFTER;
	assert_true(p.cli.aes);
	assert_int_equal(envelope_heap_bytes(&p.cli), 0); /* init allocates nothing */
	n = seal(&p, "forged", 6, d);
	d[n - 1] ^= 1;
	for (int i = 0; i < 2 * ENVELOPE_GCM_AFTER; i++)
		assert_int_equal(envelope_open(&p.srv, d, (size_t)n, 1, out, sizeof out, &rx),
		                 KS_ERR_AUTH);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0);
	for (uint32_t i = 1; i < ENVELOPE_GCM_AFTER; i++) /* one seal above */
		rk_send(&p, &p.cli, &p.srv, i, 1);
	assert_int_equal(envelope_heap_bytes(&p.cli), 0);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0);
	rk_send(&p, &p.cli, &p.srv, 0, 1);
	assert_int_equal(envelope_heap_bytes(&p.cli), ENVELOPE_GCM_BYTES);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0); /* the forged one did not open */
	rk_send(&p, &p.cli, &p.srv, 0, 1);
	assert_int_equal(envelope_heap_bytes(&p.srv), ENVELOPE_GCM_BYTES);
	assert_int_equal((uintptr_t)p.cli.gcm_tx % ENVELOPE_GCM_ALIGN, 0);
	assert_int_equal((uintptr_t)p.cli.gcm_rx % ENVELOPE_GCM_ALIGN, 0);
	assert_ptr_equal((uint8_t *)p.cli.gcm_rx, (uint8_t *)p.cli.gcm_tx + ENVELOPE_GCM_STRIDE);
	/* the next epoch drops the block on both sides */
	assert_int_equal(envelope_rekey(&p.cli, 2), 0);
	assert_int_equal(envelope_heap_bytes(&p.cli), 0);
	rk_send(&p, &p.cli, &p.srv, 0, 2);
	assert_int_equal(p.srv.epoch, 1);
	assert_int_equal(envelope_heap_bytes(&p.srv), 0);
	pair_wipe(&p);
	assert_null(p.cli.gcm_tx);
	assert_int_equal(envelope_heap_bytes(&p.cli), 0);
	pair_wipe(&p);
}

/* With or without the block (the one-shot calls: before gcm_after, or
 * when the allocation failed) an envelope seals the very same bytes,
 * across an epoch too, and each opens the other's. */
static void aes_block_or_not_the_same_bytes(void **state)
{
	(void)state;
	struct pair p, q;
	uint8_t dp[ENVELOPE_MAX_DATAGRAM], dq[ENVELOPE_MAX_DATAGRAM];
	uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n, m;

	if (aes_skip())
		skip();
	rk_init(&p, 75);
	rk_init(&q, 75);
	p.cli.gcm_after = p.srv.gcm_after = 0;
	q.cli.gcm_after = q.srv.gcm_after = UINT32_MAX;
	for (uint32_t i = 0; i < 6; i++) {
		if (i == 3) {
			assert_int_equal(envelope_rekey(&p.cli, 5), 0);
			assert_int_equal(envelope_rekey(&q.cli, 5), 0);
		}
		n = envelope_seal(&p.cli, &p.rng, (const uint8_t *)&i, sizeof i, dp, sizeof dp);
		m = envelope_seal(&q.cli, &q.rng, (const uint8_t *)&i, sizeof i, dq, sizeof dq);
		assert_true(n > 0);
		assert_int_equal(n, m);
		assert_memory_equal(dp, dq, (size_t)n);
		assert_int_equal(envelope_open(&q.srv, dp, (size_t)n, 10, out, sizeof out, &rx),
		                 sizeof i);
		assert_int_equal(envelope_open(&p.srv, dq, (size_t)m, 10, out, sizeof out, &rx),
		                 sizeof i);
		rk_send(&q, &q.srv, &q.cli, 100 + i, 10);
		rk_send(&p, &p.srv, &p.cli, 100 + i, 10);
	}
	assert_int_equal(q.srv.epoch, 1);
	assert_int_equal(envelope_heap_bytes(&p.cli), ENVELOPE_GCM_BYTES);
	assert_int_equal(envelope_heap_bytes(&q.cli), 0);
	assert_int_equal(q.cli.forgeries + q.srv.forgeries, 0);
	pair_wipe(&p);
	pair_wipe(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_and_overhead),
		cmocka_unit_test(every_flipped_bit_is_refused),
		cmocka_unit_test(truncation_and_extension_are_refused),
		cmocka_unit_test(replays_are_refused),
		cmocka_unit_test(verify_checks_a_copy_without_the_window),
		cmocka_unit_test(counter_limit_refuses_to_seal),
		cmocka_unit_test(forgery_limit_stops_opening),
		cmocka_unit_test(status_reports_silence_and_rekey),
		cmocka_unit_test(too_big_is_refused),
		cmocka_unit_test(failed_open_changes_no_window),
		cmocka_unit_test(bucket_padding_rounds_up),
		cmocka_unit_test(sealed_datagram_is_pinned),
		cmocka_unit_test(datagram_opens_by_hand),
		cmocka_unit_test(sealed_bytes_look_uniform),
		cmocka_unit_test(rekey_needs_the_feature),
		cmocka_unit_test(rekey_started_by_either_side),
		cmocka_unit_test(rekey_by_bytes_and_by_age),
		cmocka_unit_test(rekey_reordering_and_grace),
		cmocka_unit_test(rekey_follows_two_ahead),
		cmocka_unit_test(rekey_phase_bit_is_authenticated),
#define AES_TEST(t) cmocka_unit_test_setup_teardown(aes_##t, aes_setup, aes_teardown)
		AES_TEST(round_trip_and_overhead),
		AES_TEST(every_flipped_bit_is_refused),
		AES_TEST(truncation_and_extension_are_refused),
		AES_TEST(replays_are_refused),
		AES_TEST(verify_checks_a_copy_without_the_window),
		AES_TEST(forgery_limit_stops_opening),
		AES_TEST(failed_open_changes_no_window),
		AES_TEST(bucket_padding_rounds_up),
		AES_TEST(sealed_bytes_look_uniform),
		AES_TEST(rekey_started_by_either_side),
		AES_TEST(rekey_by_bytes_and_by_age),
		AES_TEST(rekey_reordering_and_grace),
		AES_TEST(rekey_follows_two_ahead),
		AES_TEST(rekey_phase_bit_is_authenticated),
		AES_TEST(needs_both_features),
		AES_TEST(datagram_opens_by_hand),
		AES_TEST(and_chacha_do_not_mix),
		AES_TEST(unavailable_refuses),
		AES_TEST(rekey_expands_each_epoch),
		cmocka_unit_test_teardown(aes_keys_only_while_busy, aes_teardown),
		AES_TEST(block_or_not_the_same_bytes),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
