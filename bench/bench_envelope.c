/* bench_envelope.c - cost of the secure layer: per-datagram overhead, seal
 * and open throughput for 1350-byte datagrams, the same for each AEAD
 * (ChaCha20-Poly1305, AES-256-GCM where the CPU has it) at several datagram
 * sizes, and the CPU time of one full handshake (client init, server check
 * and response, client finish). Prints Markdown. CPU time from
 * clock_gettime(CLOCK_PROCESS_CPUTIME_ID). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/envelope.h"
#include "core/handshake.h"
#include "core/transport.h"

enum { DGRAM = 1350, BATCH = 2048, ROUNDS = 60, HANDSHAKES = 2000 };

/* The cipher table: datagram sizes (a KCP ACK-only datagram, a small
 * request, a 576-byte path, the default full datagram) and bytes per cell. */
static const size_t cipher_sizes[] = { 64, 256, 576, DGRAM };
enum { CIPHER_BYTES = 96 << 20 };

static void sodium_fill(void *buf, size_t len, void *ctx)
{
	(void)ctx;
	randombytes_buf(buf, len);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pair(struct envelope *cli, struct envelope *srv, const struct rng_source *rng,
                 uint8_t pad_mode, uint16_t pad_max, uint32_t features)
{
	uint8_t hdr[KEYS_LEN];
	struct envelope_dir a, b;
	struct transport_params tp;

	rng_fill(rng, hdr, sizeof hdr);
	rng_fill(rng, &a, sizeof a);
	rng_fill(rng, &b, sizeof b);
	tparams_default(&tp);
	tp.mtu = DGRAM;
	tp.pad_mode = pad_mode;
	tp.pad_max = pad_max;
	tp.features = features;
	envelope_init(cli, hdr, 42, &a, &b, &tp, 0);
	envelope_init(srv, hdr, 42, &b, &a, &tp, 0);
}

/* Seal and open rounds x BATCH datagrams of exactly dgram bytes (MB/s of
 * whole datagrams) under the AEAD features select (PROTOCOL.md secure 2.7). */
static int throughput_of(const struct rng_source *rng, uint32_t features, size_t dgram, int rounds,
                         double *seal_mbs, double *open_mbs)
{
	static struct envelope cli, srv;
	uint8_t *buf = malloc((size_t)BATCH * dgram), pl[DGRAM], out[DGRAM];
	size_t len = dgram - ENVELOPE_OVERHEAD;
	double ts = 0, to = 0, t;
	struct envelope_rx rx;
	int rc = -1;

	if (!buf)
		return -1;
	pair(&cli, &srv, rng, TPARAMS_PAD_NONE, 0, features);
	cli.mtu = srv.mtu = (uint16_t)dgram;
	rng_fill(rng, pl, sizeof pl);
	for (int r = 0; r < rounds; r++) {
		t = cpu_s();
		for (int i = 0; i < BATCH; i++)
			if (envelope_seal(&cli, rng, pl, len, buf + (size_t)i * dgram, dgram) !=
			    (ssize_t)dgram)
				goto out;
		ts += cpu_s() - t;
		t = cpu_s();
		for (int i = 0; i < BATCH; i++)
			if (envelope_open(&srv, buf + (size_t)i * dgram, dgram, 1, out, sizeof out,
			                  &rx) != (ssize_t)len)
				goto out;
		to += cpu_s() - t;
	}
	*seal_mbs = (double)BATCH * rounds * (double)dgram / ts / 1e6;
	*open_mbs = (double)BATCH * rounds * (double)dgram / to / 1e6;
	rc = 0;
out:
	free(buf);
	envelope_wipe(&cli);
	envelope_wipe(&srv);
	return rc;
}

static int throughput(const struct rng_source *rng, double *seal_mbs, double *open_mbs)
{
	return throughput_of(rng, TPARAMS_FEAT_REKEY, DGRAM, ROUNDS, seal_mbs, open_mbs);
}

/* mbs[size][cipher][seal, open], cipher 0 ChaCha20-Poly1305, 1 AES-256-GCM
 * (left 0 without AES-NI). Both with rekeying agreed, as a session has. */
static int ciphers(const struct rng_source *rng, double mbs[][2][2])
{
	static const uint32_t feat[2] = { TPARAMS_FEAT_REKEY,
		                          TPARAMS_FEAT_REKEY | TPARAMS_FEAT_AES_GCM };
	size_t n = sizeof cipher_sizes / sizeof cipher_sizes[0];

	for (size_t i = 0; i < n; i++) {
		int rounds = (int)(CIPHER_BYTES / (cipher_sizes[i] * BATCH)) + 1;

		for (int c = 0; c < 2; c++) {
			mbs[i][c][0] = mbs[i][c][1] = 0;
			if (c == 1 && !crypto_aead_aes256gcm_is_available())
				continue;
			if (throughput_of(rng, feat[c], cipher_sizes[i], rounds, &mbs[i][c][0],
			                  &mbs[i][c][1]) != 0)
				return -1;
		}
	}
	return 0;
}

static void print_ciphers(double mbs[][2][2])
{
	size_t n = sizeof cipher_sizes / sizeof cipher_sizes[0];
	bool aes = crypto_aead_aes256gcm_is_available();

	printf("\n### Per cipher (docs/PROTOCOL.md secure layer 2.7)\n\n");
	if (!aes)
		printf("This CPU has no AES-256-GCM (AES-NI and PCLMUL): only ChaCha20-Poly1305 "
		       "measured; sessions here never agree AES.\n\n");
	printf("| datagram | ChaCha20-Poly1305 seal | open | AES-256-GCM seal | open | AES / "
	       "ChaCha seal | open |\n|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		printf("| %zu B | %.0f MB/s | %.0f MB/s |", cipher_sizes[i], mbs[i][0][0],
		       mbs[i][0][1]);
		if (aes)
			printf(" %.0f MB/s | %.0f MB/s | %.2fx | %.2fx |\n", mbs[i][1][0],
			       mbs[i][1][1], mbs[i][1][0] / mbs[i][0][0],
			       mbs[i][1][1] / mbs[i][0][1]);
		else
			printf(" - | - | - | - |\n");
	}
	printf("\nWhole datagrams (header, AEAD, header protection, replay window), %d MiB "
	       "sealed and opened per cell, CPU time.\n",
	       CIPHER_BYTES >> 20);
}

/* Cost of rejecting a datagram of a live session that fails the AEAD, and
 * of one whose session id matches nothing (no AEAD at all). */
static int rejection(const struct rng_source *rng, double *bad_us, double *nosid_us)
{
	static struct envelope cli, srv;
	uint8_t d[DGRAM], out[DGRAM], pl[DGRAM] = { 0 };
	struct envelope_rx rx;
	uint64_t sid;
	double t;
	int n = 200000, miss = 0;

	pair(&cli, &srv, rng, TPARAMS_PAD_NONE, 0, 0);
	if (envelope_seal(&cli, rng, pl, DGRAM - ENVELOPE_OVERHEAD, d, sizeof d) != DGRAM)
		return -1;
	d[DGRAM - 1] ^= 1;
	t = cpu_s();
	for (int i = 0; i < n; i++)
		if (envelope_open(&srv, d, DGRAM, 1, out, sizeof out, &rx) != KS_ERR_AUTH)
			return -1;
	*bad_us = (cpu_s() - t) / n * 1e6;
	d[0] ^= 1; /* now the session id names no session */
	t = cpu_s();
	for (int i = 0; i < n; i++) {
		if (envelope_peek_sid(srv.hdr, d, DGRAM, &sid) == 0 && sid != srv.sid)
			miss++;
	}
	*nosid_us = (cpu_s() - t) / n * 1e6;
	return miss == n ? 0 : -1;
}

/* HANDSHAKES inits of user u (or a wrong PSK), one per ms from now:
 * written before the clock starts, so only the server is timed. */
static int make_inits(const struct keys_server *key, const struct keys_user *u,
                      const struct transport_params *tp, const struct rng_source *rng, uint64_t now,
                      uint8_t (*init)[HANDSHAKE_INIT_MAX], size_t *len)
{
	for (int i = 0; i < HANDSHAKES; i++) {
		struct handshake_client c;
		ssize_t n;

		if (handshake_client_init(&c, key->pub, u, tp) != 0)
			return -1;
		n = handshake_client_write_init(&c, rng, now + (uint64_t)i, init[i],
		                                HANDSHAKE_INIT_MAX);
		if (n < 0)
			return -1;
		len[i] = (size_t)n;
	}
	return 0;
}

/* What an init costs the server to refuse (docs/PROTOCOL.md 4.4): a wrong
 * PSK gets as far as the X25519; the same bytes again hit the refused set;
 * an init over the X25519 budget and one failing mac1 cost no X25519. */
static int init_rejections(const struct keys_server *key, const struct keys_user *user,
                           const struct transport_params *tp, const struct rng_source *rng,
                           uint8_t (*init)[HANDSHAKE_INIT_MAX], size_t *len, double *us)
{
	struct handshake_server *s = calloc(1, sizeof *s);
	struct keys_user wrong = *user;
	struct handshake_pending p;
	uint64_t now = 1764000000000ULL;
	double t;
	int rc = -1;

	wrong.psk[0] ^= 1;
	if (!s || handshake_server_init(s, key, user, 1, tp, tp, tp) != 0 ||
	    make_inits(key, &wrong, tp, rng, now, init, len) != 0)
		goto out;
	t = cpu_s();
	for (int i = 0; i < HANDSHAKES; i++)
		if (handshake_server_read_init(s, init[i], len[i], now + (uint64_t)i, &p) !=
		    KS_ERR_AUTH)
			goto out;
	us[0] = (cpu_s() - t) / HANDSHAKES * 1e6;
	/* 256 of them re-sent: few share a refused-set slot (a collision
	 * forgets one, and the next copy costs an X25519 again). */
	t = cpu_s();
	for (int r = 0; r < 400; r++)
		for (int i = 0; i < 256; i++)
			if (handshake_server_read_init(s, init[i], len[i],
			                               now + HANDSHAKES + (uint64_t)r * 250,
			                               &p) != KS_ERR_AUTH)
				goto out;
	us[1] = (cpu_s() - t) / (400 * 256) * 1e6;
	/* Over budget: a fresh server, its total bucket spent at one instant. */
	if (make_inits(key, &wrong, tp, rng, now, init, len) != 0 ||
	    handshake_server_init(s, key, user, 1, tp, tp, tp) != 0)
		goto out;
	for (int i = 0; i < HANDSHAKE_DH_BURST; i++)
		if (handshake_server_read_init(s, init[i], len[i], now, &p) != KS_ERR_AUTH)
			goto out;
	t = cpu_s();
	for (int r = 0; r < 50; r++)
		for (int i = HANDSHAKE_DH_BURST; i < HANDSHAKES; i++)
			if (handshake_server_read_init(s, init[i], len[i], now, &p) != KS_ERR_LIMIT)
				goto out;
	us[2] = (cpu_s() - t) / (50 * (HANDSHAKES - HANDSHAKE_DH_BURST)) * 1e6;
	init[0][len[0] - 1] ^= 1;
	t = cpu_s();
	for (int i = 0; i < 100 * HANDSHAKES; i++)
		if (handshake_server_read_init(s, init[0], len[0], now, &p) != KS_ERR_AUTH)
			goto out;
	us[3] = (cpu_s() - t) / (100 * HANDSHAKES) * 1e6;
	rc = 0;
out:
	free(s);
	return rc;
}

/* us[0]: a whole handshake, both sides; us[1]: the server's part alone
 * (read the init, write the response), so 1e6 / us[1] handshakes/s per
 * core; us[2..5]: init_rejections. */
static int handshakes(const struct rng_source *rng, double *us)
{
	static uint8_t init[HANDSHAKES][HANDSHAKE_INIT_MAX];
	static size_t len[HANDSHAKES];
	struct handshake_server *s = calloc(1, sizeof *s);
	struct keys_server key;
	struct keys_user user;
	struct transport_params tp;
	uint8_t psk[KEYS_LEN], resp[ENVELOPE_MAX_DATAGRAM];
	uint64_t now = 1764000000000ULL;
	double t;
	int rc = -1;

	tparams_default(&tp);
	keys_psk_generate(psk, rng);
	if (!s || keys_server_generate(&key, rng) != 0 || keys_user_set(&user, "bench", psk) != 0 ||
	    handshake_server_init(s, &key, &user, 1, &tp, &tp, &tp) != 0)
		goto out;
	t = cpu_s();
	for (int i = 0; i < HANDSHAKES; i++) {
		struct handshake_client c;
		struct handshake_pending p;
		struct handshake_result cr, sr;
		ssize_t n, m;

		if (handshake_client_init(&c, key.pub, &user, &tp) != 0)
			goto out;
		n = handshake_client_write_init(&c, rng, now + (uint64_t)i, init[0],
		                                sizeof init[0]);
		if (n < 0 ||
		    handshake_server_read_init(s, init[0], (size_t)n, now + (uint64_t)i, &p) != 0)
			goto out;
		m = handshake_server_write_response(s, &p, rng, 1ULL << 16, resp, sizeof resp, &sr);
		if (m < 0 || handshake_client_read_response(&c, resp, (size_t)m, &cr) != 0)
			goto out;
	}
	us[0] = (cpu_s() - t) / HANDSHAKES * 1e6;
	now += 10 * HANDSHAKES;
	if (make_inits(&key, &user, &tp, rng, now, init, len) != 0)
		goto out;
	t = cpu_s();
	for (int i = 0; i < HANDSHAKES; i++) {
		struct handshake_pending p;
		struct handshake_result sr;

		if (handshake_server_read_init(s, init[i], len[i], now + (uint64_t)i, &p) != 0 ||
		    handshake_server_write_response(s, &p, rng, 1ULL << 16, resp, sizeof resp,
		                                    &sr) < 0)
			goto out;
	}
	us[1] = (cpu_s() - t) / HANDSHAKES * 1e6;
	rc = init_rejections(&key, &user, &tp, rng, init, len, us + 2);
out:
	free(s);
	return rc;
}

int main(void)
{
	struct rng_source rng = { sodium_fill, NULL };
	double seal_mbs, open_mbs, hs_us[6], bad_us, nosid_us;
	static double cmbs[sizeof cipher_sizes / sizeof cipher_sizes[0]][2][2];

	if (sodium_init() < 0)
		return 1;
	if (throughput(&rng, &seal_mbs, &open_mbs) != 0 ||
	    rejection(&rng, &bad_us, &nosid_us) != 0 || handshakes(&rng, hs_us) != 0 ||
	    ciphers(&rng, cmbs) != 0) {
		fprintf(stderr, "bench_envelope: a sealed datagram or handshake failed\n");
		return 1;
	}
	printf("## Secure datagram layer (bench/bench_envelope.c)\n\n");
	printf("| measure | value |\n|---|---|\n");
	printf("| overhead per datagram (header 14 + pad length 2 + tag 16) | %d bytes + padding "
	       "|\n",
	       ENVELOPE_OVERHEAD);
	printf("| memory per session: struct envelope; a busy AES-256-GCM one adds its "
	       "expanded keys (heap) | %zu bytes; +%zu bytes |\n",
	       sizeof(struct envelope), (size_t)ENVELOPE_GCM_BYTES);
	printf("| seal, %d-byte datagrams | %.0f MB/s (%.2f µs each) |\n", DGRAM, seal_mbs,
	       DGRAM / seal_mbs);
	printf("| open, %d-byte datagrams | %.0f MB/s (%.2f µs each) |\n", DGRAM, open_mbs,
	       DGRAM / open_mbs);
	printf("| reject: live session, AEAD fails (%d B) | %.2f µs |\n", DGRAM, bad_us);
	printf("| reject: unknown session id (unmask only) | %.3f µs |\n", nosid_us);
	printf("| full handshake, both sides (4 X25519 + 2 base mults) | %.0f µs |\n", hs_us[0]);
	printf("| server's part of a handshake (2 X25519 + 1 base mult) | %.0f µs: %.0f "
	       "handshakes/s per core |\n",
	       hs_us[1], 1e6 / hs_us[1]);
	printf("| server refuses a fresh init with a wrong PSK (1 X25519) | %.0f µs |\n", hs_us[2]);
	printf("| server refuses the same refused init again (refused set) | %.2f µs |\n",
	       hs_us[3]);
	printf("| server refuses an init over the X25519 budget | %.2f µs |\n", hs_us[4]);
	printf("| server refuses an init failing mac1 (no X25519) | %.2f µs |\n", hs_us[5]);
	printf("| X25519 budget (in total; per source host) | %d/s; %d/s |\n", HANDSHAKE_DH_RATE,
	       HANDSHAKE_SRC_DH_RATE);
	printf("\nCPU time (CLOCK_PROCESS_CPUTIME_ID), %d x %d datagrams, %d handshakes, one "
	       "core, libsodium %s.\n",
	       ROUNDS, BATCH, HANDSHAKES, sodium_version_string());
	print_ciphers(cmbs);
	return 0;
}
