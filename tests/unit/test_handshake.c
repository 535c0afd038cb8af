/* test_handshake.c - the handshake: a fixed transcript byte for byte, the
 * refusals (stale, replayed, wrong key, wrong PSK, every flipped byte), the
 * replay-cache floor and the parameter answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/handshake.c"
#include "core/transport.h"

#define NOW 1764000000000ULL /* a fixed unix time in ms */

struct world {
	struct prng g;
	struct rng_source rng;
	struct keys_server key;
	struct keys_user users[3];
	struct transport_params min, max, def;
	struct handshake_server *srv;
	struct handshake_client cli;
};

static void tp_bounds(struct transport_params *min, struct transport_params *max,
                      struct transport_params *def)
{
	/* Fixed values, not tparams_default: the transcript below is pinned. */
	*def = (struct transport_params){ .mtu = 1350,
		                          .pad_mode = TPARAMS_PAD_RANDOM,
		                          .pad_max = 64,
		                          .interval = 20,
		                          .nodelay = 1,
		                          .resend = 2,
		                          .nc = 1,
		                          .snd_wnd = 512,
		                          .rcv_wnd = 512,
		                          .keepalive_ms = 10000,
		                          .idle_timeout_ms = 120000 };
	*min = *def;
	*max = *def;
	min->mtu = 1200;
	max->mtu = 1400;
	min->pad_mode = TPARAMS_PAD_NONE;
	max->pad_mode = TPARAMS_PAD_BUCKET;
	min->pad_max = 0;
	max->pad_max = 256;
	min->interval = 10;
	max->interval = 100;
	min->nodelay = 0;
	min->resend = 0;
	max->resend = 5;
	min->nc = 0;
	min->snd_wnd = min->rcv_wnd = 32;
	max->snd_wnd = max->rcv_wnd = 1024;
	min->keepalive_ms = 5000;
	max->keepalive_ms = 30000;
	min->idle_timeout_ms = 30000;
	max->idle_timeout_ms = 600000;
}

static struct world *world_new(uint64_t seed)
{
	struct world *w = calloc(1, sizeof *w);
	static const char *names[] = { "alice", "bob", "carol" };
	uint8_t psk[KEYS_LEN];

	assert_non_null(w);
	prng_seed(&w->g, seed);
	w->rng = prng_source(&w->g);
	assert_int_equal(keys_server_generate(&w->key, &w->rng), 0);
	for (int i = 0; i < 3; i++) {
		keys_psk_generate(psk, &w->rng);
		assert_int_equal(keys_user_set(&w->users[i], names[i], psk), 0);
	}
	tp_bounds(&w->min, &w->max, &w->def);
	w->srv = calloc(1, sizeof *w->srv);
	assert_non_null(w->srv);
	assert_int_equal(
	        handshake_server_init(w->srv, &w->key, w->users, 3, &w->min, &w->max, &w->def), 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[1], &w->def), 0);
	return w;
}

static void world_free(struct world *w)
{
	free(w->srv);
	free(w);
}

static ssize_t write_init(struct world *w, uint64_t now, uint8_t *out)
{
	ssize_t n = handshake_client_write_init(&w->cli, &w->rng, now, out, ENVELOPE_MAX_DATAGRAM);

	assert_true(n >= HANDSHAKE_INIT_MIN && n <= HANDSHAKE_INIT_MAX);
	return n;
}

/* A whole handshake; returns both results. */
static void full(struct world *w, struct handshake_result *cr, struct handshake_result *sr)
{
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n = write_init(w, NOW, init), m;

	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 5, &p), 0);
	m = handshake_server_write_response(w->srv, &p, &w->rng, 0x1234560001ULL, resp, sizeof resp,
	                                    sr);
	assert_true(m >= HANDSHAKE_RESP_MIN && m <= HANDSHAKE_RESP_MAX);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, cr), 0);
}

static void both_sides_agree(void **state)
{
	(void)state;
	struct world *w = world_new(1);
	struct handshake_result c, s;

	full(w, &c, &s);
	assert_true(c.sid == 0x1234560001ULL && s.sid == c.sid);
	assert_int_equal(c.conv, s.conv);
	assert_int_equal(s.user, 1);
	assert_true(tparams_equal(&c.params, &s.params));
	assert_memory_equal(&c.tx, &s.rx, sizeof c.tx);
	assert_memory_equal(&c.rx, &s.tx, sizeof c.rx);
	assert_memory_not_equal(&c.tx, &c.rx, sizeof c.tx);
	assert_int_equal(w->cli.state, HANDSHAKE_CLIENT_DONE);
	assert_int_equal(w->srv->n.accepted, 1);
	world_free(w);
}

static void hex(char *out, const uint8_t *b, size_t n) { sodium_bin2hex(out, 2 * n + 1, b, n); }

/* The transcript of seed 42 at NOW: both messages and the derived keys,
 * computed once with this code and pinned here, so any change to the wire
 * format or the key schedule shows up. */
#define KAT_SPUB "fb76480f1acbd742cd389300cd298680f816a65fa535b04b1bb6e77c0df3d237"
#define KAT_INIT                                                                                   \
	"b371cec00ec46dc5d998bb9d53adc5172bdea5ab5a70d42df96e6d15a1e15e02"                         \
	"58225302d7b317a319ad1b82bc76e8f0ae3b4fa4072259653b12ca554324d40c"                         \
	"d5ebf17ce30c3228e9379a5c88629aa7df03ab741b244527933dc817255a1fde"                         \
	"eecf7a710de5102aae6584a669847b98b61ee05186bb9f4a9ecb96eb1e193c11"                         \
	"6470d19779865ffeddf3e1a9230eba13617106ce22f22aa48aba4e6265cff2ee"                         \
	"698290bc7be5f143819428f7ac17f9fdacb6911f67046bbc2ef501fbf53c3f63"                         \
	"749b7de476eba075d7ad89b80abdb548f3647b"
#define KAT_RESP                                                                                   \
	"0e0b405c70092518b844c01500e503cafad33b4f4f1493a2450ddf6c3a2cc92c"                         \
	"078853b28342a9295e3c1755bb838e0139da58ad10fdf374ee846cf7405030f8"                         \
	"04c5722eae60e1964ec31816c9b5f502fd71e1c2c4c5529434de319f5bbd8af1"                         \
	"2e1aadab0f11bc2fb65c7ca37a368e3be04905d49274ffde1a541dcf179d55c2"                         \
	"95190e6505ded4d43a0b50e5fc8c468ad78446f69fe9e313e8d06da25b814f30"                         \
	"897b5e721337e473893b1f9d717093ef9f9317a3e00e2bf388ea0dd5089dc8a5"
/* The init of the release before wire version 2 (ab6fdf8) for the same
 * seed: no extension in its padding. A server must still take it. */
#define KAT_INIT_V1                                                                                \
	"b371cec00ec46dc5d998bb9d53adc5172bdea5ab5a70d42df96e6d15a1e15e02"                         \
	"58225302d7b317a319ad1b82bc76e8f0ae3b4fa4072259653b12ca554324d40c"                         \
	"d5ebf17ce30c3228e9379a5c88629aa7df03ab741b244527933dc817255a1fde"                         \
	"eecf7a710de5102aae6584a669847b98b61ee05186bb9f4a9ecb96eb1e193c11"                         \
	"6470d19779865ffeddf3e1a9230eba13617106ce23f428a58bba4e6265cff2ee"                         \
	"698290bc7be5f143819428f7ac17f9fdacab91148f7d357784d611ed8e8e5cb8"                         \
	"692882d321a9bf23da3d0279d8cbdf7786423f368a29d5f10bb74c3e0c22cde6"                         \
	"95bf8cc67c0cce85820c6c9daf65e91b3f4c12ab6a7e6216caa4b32163456824"                         \
	"e44645cd270077e8b6a3a5fa4360cced9f83dd71f818d0e59047b92cae9b096d"                         \
	"f0e6d2dfb45ca37e76bc2037b3382aa5636bff4fc5ddcc6d0a35ff19ecb7b29b"                         \
	"fddb8ab496079631cb4bba690e2c088c0bfd54e0db0989ac5370a8e14b5e3bed"                         \
	"3e1c86c9d7d17e272f90e67df3f31d92c2b21b"
#define KAT_C2S_KEY "117e0a109873eb33df96300d07f1d55d9aaa6cb2bc54c7998bb3746c8f393042"
#define KAT_S2C_KEY "d3efdb38abf04256bc2bd461fcd9b5efe5a5184ad917a8dded19bbff5190bb8c"
#define KAT_C2S_HP  "5950654eeb7013805c115f44d8685724ee667bda79a4f676db840d8d022c24d0"
#define KAT_C2S_IV  "04f3ff1fc6cda3856a1899cf"
#define KAT_CONV    0xaf7039ecu

static void transcript_is_pinned(void **state)
{
	(void)state;
	struct world *w = world_new(42);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	char h[2 * ENVELOPE_MAX_DATAGRAM + 1];
	struct handshake_pending p;
	struct handshake_result c, s;
	ssize_t n, m;

	/* The features of the pinned vector, whatever this build adds. */
	w->cli.features = TPARAMS_FEAT_FAST_OPEN;
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	m = handshake_server_write_response(w->srv, &p, &w->rng, 0xabcdef0000000007ULL, resp,
	                                    sizeof resp, &s);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c), 0);
	if (getenv("KAT_PRINT")) {
		hex(h, w->key.pub, KEYS_LEN);
		printf("#define KAT_SPUB \"%s\"\n", h);
		hex(h, init, (size_t)n);
		printf("#define KAT_INIT \"%s\"\n", h);
		hex(h, resp, (size_t)m);
		printf("#define KAT_RESP \"%s\"\n", h);
		hex(h, c.tx.key, KEYS_LEN);
		printf("#define KAT_C2S_KEY \"%s\"\n", h);
		hex(h, c.rx.key, KEYS_LEN);
		printf("#define KAT_S2C_KEY \"%s\"\n", h);
		hex(h, c.tx.hp, KEYS_LEN);
		printf("#define KAT_C2S_HP \"%s\"\n", h);
		hex(h, c.tx.iv, ENVELOPE_IV_LEN);
		printf("#define KAT_C2S_IV \"%s\"\n", h);
		printf("#define KAT_CONV 0x%08xu\n", c.conv);
	}
	hex(h, w->key.pub, KEYS_LEN);
	assert_string_equal(h, KAT_SPUB);
	hex(h, init, (size_t)n);
	assert_string_equal(h, KAT_INIT);
	hex(h, resp, (size_t)m);
	assert_string_equal(h, KAT_RESP);
	hex(h, c.tx.key, KEYS_LEN);
	assert_string_equal(h, KAT_C2S_KEY);
	hex(h, c.rx.key, KEYS_LEN);
	assert_string_equal(h, KAT_S2C_KEY);
	hex(h, c.tx.hp, KEYS_LEN);
	assert_string_equal(h, KAT_C2S_HP);
	hex(h, c.tx.iv, ENVELOPE_IV_LEN);
	assert_string_equal(h, KAT_C2S_IV);
	assert_int_equal(c.conv, KAT_CONV);
	world_free(w);
}

/* Cross-check of the first Noise steps against libsodium directly: the
 * ephemeral in the init, unmasked by hand, and the es DH. */
static void init_hides_a_real_ephemeral(void **state)
{
	(void)state;
	struct world *w = world_new(7);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], e[KEYS_LEN], want[KEYS_LEN], obf[KEYS_LEN];
	uint32_t ic;

	write_init(w, NOW, init);
	crypto_generichash(obf, KEYS_LEN, (const uint8_t *)"kcpsocks v1 obfuscation", 23,
	                   w->key.pub, KEYS_LEN);
	memcpy(&ic, init + 8, 4); /* little-endian host assumed by this test */
	crypto_stream_chacha20_ietf_xor_ic(e, init + 24, KEYS_LEN, init + 12, ic, obf);
	assert_int_equal(crypto_scalarmult_base(want, w->cli.e_sec), 0);
	assert_memory_equal(e, want, KEYS_LEN);
	assert_memory_equal(e, w->cli.e_pub, KEYS_LEN);
	/* And the visible bytes are not the curve point. */
	assert_memory_not_equal(init + 24, want, KEYS_LEN);
	world_free(w);
}

static void stale_inits_are_refused(void **state)
{
	(void)state;
	struct world *w = world_new(2);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n;

	n = write_init(w, NOW - HANDSHAKE_CLOCK_SKEW_MS - 1, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p),
	                 KS_ERR_STALE);
	n = write_init(w, NOW + HANDSHAKE_CLOCK_SKEW_MS + 1, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p),
	                 KS_ERR_STALE);
	n = write_init(w, NOW - HANDSHAKE_CLOCK_SKEW_MS, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	assert_int_equal(w->srv->n.stale, 2);
	/* Refused before any public-key work. */
	assert_int_equal(w->srv->n.bad_dh + w->srv->n.bad_user + w->srv->n.bad_auth, 0);
	assert_int_equal(w->srv->seen_len, 1);
	world_free(w);
}

/* The obfuscated timestamp is bound to the encrypted one: someone with the
 * server public key who rewrites it (and recomputes mac1) is refused. */
static void rewritten_timestamp_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(14);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n = write_init(w, NOW, init);

	init[HANDSHAKE_BODY_OFF] ^= 0x10; /* lowest timestamp byte: +-16 ms */
	mac(init + n - HANDSHAKE_MAC_LEN, w->srv->pub.mac1, init, (size_t)n - HANDSHAKE_MAC_LEN);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p),
	                 KS_ERR_PROTO);
	assert_int_equal(w->srv->n.bad_payload, 1);
	assert_int_equal(w->srv->seen_len, 0);
	world_free(w);
}

static void replayed_init_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(3);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n = write_init(w, NOW, init);

	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 1000, &p),
	                 KS_ERR_REPLAY);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 119000, &p),
	                 KS_ERR_REPLAY);
	/* The replay is caught before the X25519. */
	assert_int_equal(w->srv->n.replay, 2);
	assert_int_equal(w->srv->n.accepted, 1);
	world_free(w);
}

/* Filling the cache evicts the oldest and raises the floor, so the evicted
 * init stays refused (now as stale). */
static void evicted_init_stays_refused(void **state)
{
	(void)state;
	struct world *w = world_new(4);
	uint8_t first[ENVELOPE_MAX_DATAGRAM], init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n0 = write_init(w, NOW, first), n;

	assert_int_equal(handshake_server_read_init(w->srv, first, (size_t)n0, NOW, &p), 0);
	/* One per ms: well inside the X25519 budget. */
	for (size_t i = 0; i < HANDSHAKE_REPLAY_CACHE; i++) {
		n = write_init(w, NOW + 1 + i / 64, init);
		assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + i, &p),
		                 0);
	}
	/* Only this user's floor moved. */
	assert_true(w->srv->floor_ts[1] == NOW);
	assert_true(w->srv->floor_ts[0] == 0 && w->srv->floor_ts[2] == 0);
	assert_int_equal(handshake_server_read_init(w->srv, first, (size_t)n0,
	                                            NOW + HANDSHAKE_REPLAY_CACHE, &p),
	                 KS_ERR_STALE);
	world_free(w);
}

static void wrong_server_key_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(5);
	struct keys_server other;
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n;

	assert_int_equal(keys_server_generate(&other, &w->rng), 0);
	assert_int_equal(handshake_client_init(&w->cli, other.pub, &w->users[1], &w->def), 0);
	n = write_init(w, NOW, init);
	/* Under another key the session id does not even unmask to 0, or mac1
	 * fails: either way before any X25519. */
	assert_true(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p) < 0);
	assert_int_equal(w->srv->n.bad_len + w->srv->n.bad_mac1, 1);
	assert_int_equal(w->srv->n.bad_dh + w->srv->n.bad_user + w->srv->n.bad_auth, 0);
	world_free(w);
}

static void wrong_psk_and_unknown_user_are_refused(void **state)
{
	(void)state;
	struct world *w = world_new(6);
	struct keys_user u = w->users[1], nobody;
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n;

	u.psk[0] ^= 1;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &u, &w->def), 0);
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), KS_ERR_AUTH);
	assert_int_equal(w->srv->n.bad_auth, 1);
	assert_int_equal(keys_user_set(&nobody, "mallory", u.psk), 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &nobody, &w->def), 0);
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), KS_ERR_AUTH);
	assert_int_equal(w->srv->n.bad_user, 1);
	assert_int_equal(w->srv->seen_len, 0);
	world_free(w);
}

static void every_flipped_init_byte_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(8);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], bad[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n = write_init(w, NOW, init);

	for (ssize_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, init, (size_t)n);
			bad[i] ^= (uint8_t)(1u << bit);
			assert_true(handshake_server_read_init(w->srv, bad, (size_t)n, NOW, &p) <
			            0);
		}
	}
	for (ssize_t l = 0; l < n; l++)
		assert_true(handshake_server_read_init(w->srv, init, (size_t)l, NOW, &p) < 0);
	memcpy(bad, init, (size_t)n);
	bad[n] = 0;
	assert_true(handshake_server_read_init(w->srv, bad, (size_t)n + 1, NOW, &p) < 0);
	assert_int_equal(w->srv->n.accepted, 0);
	assert_int_equal(w->srv->n.bad_dh + w->srv->n.bad_user + w->srv->n.bad_auth, 0);
	/* The original still works: nothing above touched the cache. */
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	world_free(w);
}

static void every_flipped_response_byte_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(9);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM],
	        bad[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result c, s;
	ssize_t n = write_init(w, NOW, init), m;

	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	m = handshake_server_write_response(w->srv, &p, &w->rng, 77ULL << 16, resp, sizeof resp,
	                                    &s);
	assert_true(m > 0);
	for (ssize_t i = 0; i < m; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, resp, (size_t)m);
			bad[i] ^= (uint8_t)(1u << bit);
			assert_true(handshake_client_read_response(&w->cli, bad, (size_t)m, &c) <
			            0);
		}
	}
	for (ssize_t l = 0; l < m; l++)
		assert_true(handshake_client_read_response(&w->cli, resp, (size_t)l, &c) < 0);
	assert_int_equal(w->cli.state, HANDSHAKE_CLIENT_SENT);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c), 0);
	assert_true(c.sid == 77ULL << 16);
	/* A second copy of the response finds the client done. */
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c),
	                 KS_ERR_STATE);
	world_free(w);
}

/* A response to an older init of the same client does not open. */
static void response_to_an_older_init_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(10);
	uint8_t i1[ENVELOPE_MAX_DATAGRAM], i2[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result c, s;
	ssize_t n1 = write_init(w, NOW, i1), m;

	write_init(w, NOW, i2);
	assert_int_equal(handshake_server_read_init(w->srv, i1, (size_t)n1, NOW, &p), 0);
	m = handshake_server_write_response(w->srv, &p, &w->rng, 1ULL << 16, resp, sizeof resp, &s);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c), KS_ERR_AUTH);
	world_free(w);
}

static void server_answer_is_clamped(void **state)
{
	(void)state;
	struct world *w = world_new(11);
	struct transport_params prop = w->def;
	struct handshake_result c, s;

	prop.mtu = 1500;
	prop.interval = 5;
	prop.snd_wnd = 8192;
	prop.keepalive_ms = 1000;
	prop.profile = 9;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[0], &prop), 0);
	full(w, &c, &s);
	assert_int_equal(c.params.mtu, 1400);
	assert_int_equal(c.params.interval, 10);
	assert_int_equal(c.params.snd_wnd, 1024);
	assert_int_equal(c.params.keepalive_ms, 5000);
	assert_int_equal(c.params.profile, 9);
	assert_int_equal(s.user, 0);
	world_free(w);
}

static void init_lengths_vary(void **state)
{
	(void)state;
	struct world *w = world_new(12);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	ssize_t lo = 100000, hi = 0;

	for (int i = 0; i < 200; i++) {
		ssize_t n = write_init(w, NOW, init);
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	assert_true(hi - lo > HANDSHAKE_PAD_MAX / 2);
	world_free(w);
}

/* Inits look random too: byte values over 2000 inits pass chi-square
 * (df 255, p = 0.001 bound 330.5), and the top bit of the hidden
 * ephemeral's last byte, always 0 in an X25519 public key, is set in
 * about half of them. */
static void inits_look_uniform(void **state)
{
	(void)state;
	struct world *w = world_new(15);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	uint64_t count[256] = { 0 }, bytes = 0, top = 0;
	double x = 0;

	for (int i = 0; i < 2000; i++) {
		ssize_t n = write_init(w, NOW, init);
		for (ssize_t j = 0; j < n; j++)
			count[init[j]]++;
		bytes += (uint64_t)n;
		top += init[HANDSHAKE_EPH_OFF + KEYS_LEN - 1] >> 7;
		assert_int_equal(w->cli.e_pub[KEYS_LEN - 1] >> 7, 0);
	}
	for (int v = 0; v < 256; v++) {
		double e = (double)bytes / 256;
		x += ((double)count[v] - e) * ((double)count[v] - e) / e;
	}
	printf("# 2000 inits, %llu bytes: chi2 %.1f (bound 330.5), ephemeral top bit set %.3f\n",
	       (unsigned long long)bytes, x, (double)top / 2000);
	assert_true(x < 330.52);
	assert_true(top > 900 && top < 1100);
	world_free(w);
}

static void bad_configuration_is_refused(void **state)
{
	(void)state;
	struct world *w = world_new(13);
	struct transport_params bad = w->def;
	struct keys_user u = w->users[0];

	bad.mtu = 10;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &u, &bad), KS_ERR_INVAL);
	u.name[0] = 0;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &u, &w->def), KS_ERR_INVAL);
	assert_int_equal(
	        handshake_server_init(w->srv, &w->key, w->users, 0, &w->min, &w->max, &w->def),
	        KS_ERR_INVAL);
	world_free(w);
}

/* --- 4.6: versions and features ------------------------------------------ */

static void unhex(uint8_t *out, const char *h, size_t *n)
{
	assert_int_equal(sodium_hex2bin(out, ENVELOPE_MAX_DATAGRAM, h, strlen(h), NULL, n, NULL),
	                 0);
}

static void versions_and_features_agree(void **state)
{
	(void)state;
	struct world *w = world_new(20);
	struct handshake_result c, s;

	full(w, &c, &s);
	assert_int_equal(c.params.wire, HANDSHAKE_WIRE_VERSION);
	assert_int_equal(s.params.wire, HANDSHAKE_WIRE_VERSION);
	assert_int_equal(c.params.features, TPARAMS_FEATURES);
	assert_int_equal(s.params.features, TPARAMS_FEATURES);
	assert_int_equal(w->srv->n.legacy, 0);
	world_free(w);
}

/* The features agreed are the intersection: a client without fast open
 * does not get it, unknown bits of a newer client are dropped. */
static void features_are_the_intersection(void **state)
{
	(void)state;
	struct world *w = world_new(21);
	struct handshake_result c, s;

	w->cli.features = TPARAMS_FEAT_CLEAN_CLOSE | (1u << 30);
	full(w, &c, &s);
	assert_int_equal(c.params.features, 0);
	assert_int_equal(s.params.features, 0);
	world_free(w);
	/* Datagrams only when both speak them. */
	w = world_new(24);
	w->cli.features = TPARAMS_FEAT_DATAGRAM;
	full(w, &c, &s);
	assert_int_equal(c.params.features, TPARAMS_FEAT_DATAGRAM);
	assert_int_equal(s.params.features, TPARAMS_FEAT_DATAGRAM);
	world_free(w);
	/* A newer client (versions 2..9) gets version 2. */
	w = world_new(22);
	w->cli.wire_max = 9;
	w->cli.wire_min = 2;
	full(w, &c, &s);
	assert_int_equal(c.params.wire, 2);
	assert_int_equal(s.params.wire, 2);
	world_free(w);
}

/* A world whose client and server opt in to AES-256-GCM (the I/O layer
 * does that where the CPU has it and cipher = auto) or not. */
static struct world *aes_world(uint64_t seed, bool cli_aes, bool srv_aes)
{
	struct world *w = world_new(seed);
	struct transport_params prop = w->def;

	w->def.features = srv_aes ? TPARAMS_FEAT_AES_GCM : 0;
	assert_int_equal(
	        handshake_server_init(w->srv, &w->key, w->users, 3, &w->min, &w->max, &w->def), 0);
	/* Bits other than the optional ones are ignored in a proposal. */
	prop.features = (cli_aes ? TPARAMS_FEAT_AES_GCM : 0) | TPARAMS_FEAT_CLEAN_CLOSE;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[1], &prop), 0);
	return w;
}

/* One datagram each way through envelopes built from both results. */
static void envelopes_talk(const struct handshake_result *c, const struct handshake_result *s,
                           const struct world *w, bool aes)
{
	struct envelope ce, se;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t n;

	envelope_init(&ce, w->srv->pub.hdr, c->sid, &c->tx, &c->rx, &c->params, 0);
	envelope_init(&se, w->srv->pub.hdr, s->sid, &s->tx, &s->rx, &s->params, 0);
	assert_int_equal(ce.aes, aes);
	assert_int_equal(se.aes, aes);
	n = envelope_seal(&ce, &w->rng, (const uint8_t *)"ping", 4, d, sizeof d);
	assert_int_equal(envelope_open(&se, d, (size_t)n, 1, out, sizeof out, &rx), 4);
	assert_memory_equal(out, "ping", 4);
	n = envelope_seal(&se, &w->rng, (const uint8_t *)"pong", 4, d, sizeof d);
	assert_int_equal(envelope_open(&ce, d, (size_t)n, 1, out, sizeof out, &rx), 4);
	assert_memory_equal(out, "pong", 4);
	envelope_wipe(&ce);
	envelope_wipe(&se);
}

/* 4.6, secure 2.7: AES-256-GCM is agreed only when both sides opt in; a
 * side whose CPU lacks it (or whose config says chacha20) does not, and
 * the session falls back to ChaCha20-Poly1305 on both ends. The
 * handshake messages are the same either way. */
static void aes_gcm_is_negotiated(void **state)
{
	(void)state;
	static const bool cases[4][2] = {
		{ true, true }, { true, false }, { false, true }, { false, false }
	};
	struct handshake_result c, s;

	assert_false(TPARAMS_FEATURES & TPARAMS_FEAT_AES_GCM); /* never by default */
	for (int i = 0; i < 4; i++) {
		struct world *w = aes_world(40 + (uint64_t)i, cases[i][0], cases[i][1]);
		bool both = cases[i][0] && cases[i][1];

		assert_int_equal((w->cli.features & TPARAMS_FEAT_AES_GCM) != 0, cases[i][0]);
		assert_false(w->cli.features & TPARAMS_FEAT_CLEAN_CLOSE);
		assert_int_equal((w->srv->features & TPARAMS_FEAT_AES_GCM) != 0, cases[i][1]);
		full(w, &c, &s);
		assert_int_equal(c.params.features, s.params.features);
		assert_int_equal((c.params.features & TPARAMS_FEAT_AES_GCM) != 0, both);
		assert_int_equal(tparams_aes_gcm(c.params.features), both);
		assert_true(c.params.features & TPARAMS_FEAT_REKEY);
		assert_string_equal(tparams_cipher_name(s.params.features),
		                    both ? "aes-256-gcm" : "chacha20-poly1305");
		if (!both || crypto_aead_aes256gcm_is_available())
			envelopes_talk(&c, &s, w, both);
		else
			print_message("# skipped the AES envelope: no AES-NI on this CPU\n");
		world_free(w);
	}
	/* A server that grants AES to a client that did not ask: the client
	 * keeps only what it advertised. */
	struct world *w = aes_world(44, false, true);
	w->cli.features |= TPARAMS_FEAT_AES_GCM; /* as a newer client would */
	full(w, &c, &s);
	assert_true(s.params.features & TPARAMS_FEAT_AES_GCM);
	assert_true(c.params.features & TPARAMS_FEAT_AES_GCM);
	world_free(w);
	/* Unknown bits and bit 6 from a client the server did not opt in for:
	 * dropped. */
	w = aes_world(45, true, false);
	w->cli.features |= 1u << 29;
	full(w, &c, &s);
	assert_int_equal(c.params.features, TPARAMS_FEATURES);
	world_free(w);
}

/* 4.6, secure 6.3: a client's instance id reaches the server's result
 * when the feature is agreed; without it (not set, or the feature not
 * advertised) the result has none; the response never carries it. */
static void instance_id_travels_in_the_init(void **state)
{
	(void)state;
	static const uint8_t id[HANDSHAKE_INSTANCE_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2 };
	struct world *w = world_new(23);
	struct handshake_result c, s;
	uint8_t init[ENVELOPE_MAX_DATAGRAM];

	full(w, &c, &s);
	assert_false(s.has_instance);
	world_free(w);
	w = world_new(24);
	handshake_client_set_instance(&w->cli, id);
	/* Every init carries it, and needs the room: at least 10 more bytes. */
	for (int i = 0; i < 50; i++)
		assert_true(write_init(w, NOW, init) >=
		            HANDSHAKE_INIT_OWN_MIN + HANDSHAKE_EXT_INSTANCE_LEN);
	assert_int_equal(
	        handshake_client_write_init(&w->cli, &w->rng, NOW, init, HANDSHAKE_INIT_OWN_MIN),
	        KS_ERR_FULL);
	full(w, &c, &s);
	assert_true(s.has_instance);
	assert_memory_equal(s.instance, id, HANDSHAKE_INSTANCE_LEN);
	assert_false(c.has_instance);
	assert_true(c.params.features & TPARAMS_FEAT_INSTANCE_ID);
	world_free(w);
	/* Not advertised: not sent, not taken. */
	w = world_new(25);
	handshake_client_set_instance(&w->cli, id);
	w->cli.features = TPARAMS_FEAT_FAST_OPEN;
	full(w, &c, &s);
	assert_false(s.has_instance);
	world_free(w);
}

/* A wire version 1 client (the previous release's pinned init): taken as
 * version 1 with no features, and answered without an extension. */
static void legacy_client_is_accepted(void **state)
{
	(void)state;
	struct world *w = world_new(42);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result s;
	size_t n = 0;
	ssize_t m;

	unhex(init, KAT_INIT_V1, &n);
	assert_int_equal(handshake_server_read_init(w->srv, init, n, NOW, &p), 0);
	assert_false(p.ext);
	assert_int_equal(p.proposal.wire, 1);
	assert_int_equal(p.proposal.features, 0);
	m = handshake_server_write_response(w->srv, &p, &w->rng, 5ULL << 16, resp, sizeof resp, &s);
	assert_true(m >= HANDSHAKE_RESP_MIN && (size_t)m <= n);
	assert_int_equal(s.params.wire, 1);
	assert_int_equal(s.params.features, 0);
	assert_int_equal(w->srv->n.legacy, 1);
	world_free(w);
}

/* A wire version 1 server answers without an extension: the client takes
 * version 1 and no features (so it never uses fast open there). */
static void legacy_server_gives_no_features(void **state)
{
	(void)state;
	struct world *w = world_new(23);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result c, s;
	ssize_t n = write_init(w, NOW, init), m;

	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	p.ext = false; /* what the previous release does: zero padding */
	m = handshake_server_write_response(w->srv, &p, &w->rng, 6ULL << 16, resp, sizeof resp, &s);
	assert_true(m > 0);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c), 0);
	assert_int_equal(c.params.wire, 1);
	assert_int_equal(c.params.features, 0);
	world_free(w);
}

/* No common version: an authenticated refusal, once, no longer than the
 * init; the client learns the server's range; a replay gets nothing. */
static void version_mismatch_is_refused_with_a_reply(void **state)
{
	(void)state;
	struct world *w = world_new(24);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result c, s;
	ssize_t n, m;

	w->cli.wire_min = w->cli.wire_max = 3;
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p),
	                 KS_ERR_UNSUPPORTED);
	assert_int_equal(p.refuse, HANDSHAKE_REFUSE_VERSION);
	/* Not a session: write_response refuses to make one from it. */
	assert_int_equal(handshake_server_write_response(w->srv, &p, &w->rng, 1ULL << 16, resp,
	                                                 sizeof resp, &s),
	                 KS_ERR_INVAL);
	m = handshake_server_write_refusal(w->srv, &p, &w->rng, resp, sizeof resp);
	assert_true(m >= HANDSHAKE_RESP_MIN && m <= n);
	assert_int_equal(w->srv->last_refusal.user, 1);
	assert_int_equal(w->srv->last_refusal.client_min, 3);
	assert_int_equal(w->srv->n.refused, 1);
	assert_int_equal(w->srv->n.accepted, 0);
	assert_int_equal(handshake_client_read_response(&w->cli, resp, (size_t)m, &c),
	                 KS_ERR_UNSUPPORTED);
	assert_int_equal(w->cli.refusal.reason, HANDSHAKE_REFUSE_VERSION);
	assert_int_equal(w->cli.refusal.server_min, HANDSHAKE_WIRE_MIN);
	assert_int_equal(w->cli.refusal.server_max, HANDSHAKE_WIRE_VERSION);
	assert_int_equal(w->cli.state, HANDSHAKE_CLIENT_SENT);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 1, &p),
	                 KS_ERR_REPLAY);
	world_free(w);
}

/* A refusal for a client that did not prove its PSK is never made: the
 * version check comes after the AEAD. */
static void refusal_needs_the_psk(void **state)
{
	(void)state;
	struct world *w = world_new(25);
	struct keys_user u = w->users[1];
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n;

	u.psk[3] ^= 4;
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &u, &w->def), 0);
	w->cli.wire_min = w->cli.wire_max = 3;
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), KS_ERR_AUTH);
	assert_int_equal(w->srv->n.refused, 0);
	world_free(w);
}

/* --- 4.4: hostile peers -------------------------------------------------- */

/* Issue 14, attack 1: one user floods inits stamped as far ahead as the
 * server takes; another user's fresh init is still taken, and the
 * flooder's own inits beyond the bound are stale. */
static void future_flood_does_not_lock_out_others(void **state)
{
	(void)state;
	struct world *w = world_new(26);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	uint64_t now = NOW;
	ssize_t n;

	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[0], &w->def), 0);
	n = write_init(w, now + HANDSHAKE_FUTURE_MS + 1, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, now, &p),
	                 KS_ERR_STALE);
	for (size_t i = 0; i < HANDSHAKE_REPLAY_CACHE + 600; i++, now++) {
		n = write_init(w, now + HANDSHAKE_FUTURE_MS, init);
		assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, now, &p), 0);
	}
	assert_true(w->srv->floor_ts[0] > now);
	assert_int_equal(w->srv->floor_ts[1], 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[1], &w->def), 0);
	n = write_init(w, now, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, now, &p), 0);
	/* Even a client whose clock is 100 s behind. */
	n = write_init(w, now - 100000, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, now, &p), 0);
	world_free(w);
}

/* Issue 14, attack 3: a server that started at start_ms takes nothing
 * stamped before it, so an init recorded before a restart stays dead. */
static void inits_before_start_are_refused(void **state)
{
	(void)state;
	struct world *w = world_new(27);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n = write_init(w, NOW, init);

	/* The first server process takes it... */
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 1, &p), 0);
	/* ...the restarted one, with an empty cache, does not. */
	assert_int_equal(
	        handshake_server_init(w->srv, &w->key, w->users, 3, &w->min, &w->max, &w->def), 0);
	w->srv->start_ms = NOW + 20000;
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 21000, &p),
	                 KS_ERR_STALE);
	assert_int_equal(w->srv->n.bad_dh + w->srv->n.bad_user + w->srv->n.bad_auth, 0);
	n = write_init(w, NOW + 20000, init);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + 21000, &p), 0);
	world_free(w);
}

/* Issue 14, attack 2: a refused init re-sent costs no X25519; an altered
 * copy of a good init cannot get the original refused. */
static void refused_inits_are_remembered(void **state)
{
	(void)state;
	struct world *w = world_new(28);
	struct keys_user nobody;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], bad[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	ssize_t n;

	assert_int_equal(keys_user_set(&nobody, "mallory", w->users[0].psk), 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &nobody, &w->def), 0);
	n = write_init(w, NOW, init);
	for (int i = 0; i < 100; i++)
		assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW + i, &p),
		                 KS_ERR_AUTH);
	assert_int_equal(w->srv->n.bad_user, 1);
	assert_int_equal(w->srv->n.known_bad, 99);
	/* A good init, altered in its sealed part and re-MACed: refused; the
	 * original still gets in. */
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[2], &w->def), 0);
	n = write_init(w, NOW, init);
	memcpy(bad, init, (size_t)n);
	bad[n - HANDSHAKE_MAC_LEN - 1] ^= 1;
	mac(bad + n - HANDSHAKE_MAC_LEN, w->srv->pub.mac1, bad, (size_t)n - HANDSHAKE_MAC_LEN);
	assert_int_equal(handshake_server_read_init(w->srv, bad, (size_t)n, NOW, &p), KS_ERR_AUTH);
	assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, NOW, &p), 0);
	world_free(w);
}

/* Issue 14, attack 2: X25519 work per source host and in total is
 * bounded; another host still gets in while one is over its budget, and
 * the port does not make a new host. */
static void dh_budget_per_source_and_total(void **state)
{
	(void)state;
	struct world *w = world_new(29);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	uint8_t a[16] = { 2, 0, 0x10, 0x01, 192, 0, 2, 1 },
	        b[16] = { 2, 0, 0x10, 0x01, 192, 0, 2, 2 };
	struct keys_user nobody;
	struct handshake_pending p;
	ssize_t n;
	int rc, i;

	assert_int_equal(keys_user_set(&nobody, "mallory", w->users[0].psk), 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &nobody, &w->def), 0);
	for (i = 0; i < HANDSHAKE_SRC_DH_BURST; i++) {
		n = write_init(w, NOW, init);
		a[3] = (uint8_t)i; /* another port, same host */
		rc = handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, a, sizeof a, &p);
		assert_int_equal(rc, KS_ERR_AUTH);
	}
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, a, sizeof a, &p),
	        KS_ERR_LIMIT);
	assert_int_equal(w->srv->n.budget, 1);
	assert_int_equal(w->srv->n.bad_user, HANDSHAKE_SRC_DH_BURST);
	/* Another host with a real user gets in at the same instant. */
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &w->users[1], &w->def), 0);
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, b, sizeof b, &p), 0);
	/* 1 / rate later the first host has one token again. */
	n = write_init(w, NOW, init);
	assert_int_equal(handshake_server_read_init_from(w->srv, init, (size_t)n,
	                                                 NOW + 1000 / HANDSHAKE_SRC_DH_RATE, a,
	                                                 sizeof a, &p),
	                 0);
	/* The total: spend it from hosts that each send 90 at once. */
	for (i = 0; i < 2 * HANDSHAKE_DH_BURST; i++) {
		b[4] = (uint8_t)(i / 90);
		n = write_init(w, NOW, init);
		rc = handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, b, sizeof b, &p);
		if (rc == KS_ERR_LIMIT)
			break;
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rc, KS_ERR_LIMIT);
	assert_true(i > HANDSHAKE_DH_BURST - HANDSHAKE_SRC_DH_BURST - 10 && i < HANDSHAKE_DH_BURST);
	/* A host that spent its own bucket gets nothing more... */
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, a, sizeof a, &p),
	        KS_ERR_LIMIT);
	/* ...a new host still gets in, from the reserve, until that is spent. */
	for (i = 0; i < HANDSHAKE_DH_RESERVE_BURST; i++) {
		b[4] = 0xee;
		b[5] = (uint8_t)i;
		n = write_init(w, NOW, init);
		assert_int_equal(handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, b,
		                                                 sizeof b, &p),
		                 0);
	}
	b[5] = 0xff;
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, b, sizeof b, &p),
	        KS_ERR_LIMIT);
	world_free(w);
}

/* Issue 14: a response (or refusal) is never longer than its init, even
 * for the shortest init a client can send. */
static void response_never_longer_than_init(void **state)
{
	(void)state;
	struct world *w = world_new(30);
	uint8_t init[ENVELOPE_MAX_DATAGRAM], resp[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result s;
	uint64_t now = NOW;

	for (int i = 0; i < 300; i++, now += 10) {
		size_t cap = i % 2 ? HANDSHAKE_INIT_OWN_MIN : ENVELOPE_MAX_DATAGRAM;
		ssize_t n = handshake_client_write_init(&w->cli, &w->rng, now, init, cap), m;

		assert_true(n > 0);
		assert_int_equal(handshake_server_read_init(w->srv, init, (size_t)n, now, &p), 0);
		m = handshake_server_write_response(w->srv, &p, &w->rng, 9ULL << 16, resp,
		                                    sizeof resp, &s);
		assert_true(m >= HANDSHAKE_RESP_MIN && m <= n);
	}
	world_free(w);
}

/* The per-source budget counts an IPv6 /64 as one host (one host holds a
 * whole /64), an IPv4-mapped address as its IPv4 host, and recovers when
 * the wall clock steps back. */
static void dh_budget_hosts_and_clock_steps(void **state)
{
	(void)state;
	struct world *w = world_new(31);
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	uint8_t v6[28] = { 10, 0, 0, 1, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1 };
	uint8_t m1[28] = { 10, 0, 0, 1 }, m2[28] = { 10, 0, 0, 1 };
	struct keys_user nobody;
	struct handshake_pending p;
	ssize_t n;
	int i;

	assert_int_equal(keys_user_set(&nobody, "mallory", w->users[0].psk), 0);
	assert_int_equal(handshake_client_init(&w->cli, w->key.pub, &nobody, &w->def), 0);
	for (i = 0; i < HANDSHAKE_SRC_DH_BURST; i++) {
		v6[23] = (uint8_t)i; /* another address in the same /64 */
		v6[5] = (uint8_t)i;  /* and another flow label */
		n = write_init(w, NOW, init);
		assert_int_equal(handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, v6,
		                                                 sizeof v6, &p),
		                 KS_ERR_AUTH);
	}
	v6[20] = 2; /* still the same /64 */
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, v6, sizeof v6, &p),
	        KS_ERR_LIMIT);
	/* ::ffff:192.0.2.1 and ::ffff:192.0.2.2 are two hosts. */
	m1[18] = m1[19] = m2[18] = m2[19] = 0xff;
	m1[20] = m2[20] = 192;
	m1[22] = m2[22] = 2;
	m1[23] = 1;
	m2[23] = 2;
	for (i = 0; i < HANDSHAKE_SRC_DH_BURST; i++) {
		n = write_init(w, NOW, init);
		assert_int_equal(handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, m1,
		                                                 sizeof m1, &p),
		                 KS_ERR_AUTH);
	}
	n = write_init(w, NOW, init);
	assert_int_equal(
	        handshake_server_read_init_from(w->srv, init, (size_t)n, NOW, m2, sizeof m2, &p),
	        KS_ERR_AUTH);
	/* The wall clock steps back an hour: the budget is not stuck. */
	n = write_init(w, NOW - 3600000, init);
	assert_int_equal(handshake_server_read_init_from(w->srv, init, (size_t)n, NOW - 3600000, m1,
	                                                 sizeof m1, &p),
	                 KS_ERR_AUTH);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(both_sides_agree),
		cmocka_unit_test(transcript_is_pinned),
		cmocka_unit_test(init_hides_a_real_ephemeral),
		cmocka_unit_test(stale_inits_are_refused),
		cmocka_unit_test(rewritten_timestamp_is_refused),
		cmocka_unit_test(replayed_init_is_refused),
		cmocka_unit_test(evicted_init_stays_refused),
		cmocka_unit_test(wrong_server_key_is_refused),
		cmocka_unit_test(wrong_psk_and_unknown_user_are_refused),
		cmocka_unit_test(every_flipped_init_byte_is_refused),
		cmocka_unit_test(every_flipped_response_byte_is_refused),
		cmocka_unit_test(response_to_an_older_init_is_refused),
		cmocka_unit_test(server_answer_is_clamped),
		cmocka_unit_test(init_lengths_vary),
		cmocka_unit_test(inits_look_uniform),
		cmocka_unit_test(bad_configuration_is_refused),
		cmocka_unit_test(versions_and_features_agree),
		cmocka_unit_test(features_are_the_intersection),
		cmocka_unit_test(aes_gcm_is_negotiated),
		cmocka_unit_test(instance_id_travels_in_the_init),
		cmocka_unit_test(legacy_client_is_accepted),
		cmocka_unit_test(legacy_server_gives_no_features),
		cmocka_unit_test(version_mismatch_is_refused_with_a_reply),
		cmocka_unit_test(refusal_needs_the_psk),
		cmocka_unit_test(future_flood_does_not_lock_out_others),
		cmocka_unit_test(inits_before_start_are_refused),
		cmocka_unit_test(refused_inits_are_remembered),
		cmocka_unit_test(dh_budget_per_source_and_total),
		cmocka_unit_test(response_never_longer_than_init),
		cmocka_unit_test(dh_budget_hosts_and_clock_steps),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
