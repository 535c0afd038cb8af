/* gen_secure_corpus.c - writes the seed corpora of fuzz_envelope_open and
 * fuzz_handshake from the fixed fixture (valid datagrams, their prefixes,
 * a few random blobs). Build and run from the repository root:
 *   cc -std=c17 -D_GNU_SOURCE -Isrc tests/fuzz/gen_secure_corpus.c \
 *      $(ls src/base/[a-z]*.c src/core/[a-z]*.c) -lsodium -o build/gen_secure_corpus
 *   build/gen_secure_corpus
 */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "core/handshake.h"
#include "secure_fixture.h"

static void put(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "tests/fuzz/corpus/%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void envelope_seeds(struct fixture *f)
{
	static const size_t sizes[] = { 0, 1, 24, 100, 600, 1300 };
	uint8_t pl[ENVELOPE_MAX_DATAGRAM] = { 0 }, d[ENVELOPE_MAX_DATAGRAM];
	char name[64];

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		ssize_t n = envelope_seal(&f->cli, &f->rng, pl, sizes[i], d, sizeof d);
		if (n < 0)
			exit(1);
		snprintf(name, sizeof name, "data-%zu", sizes[i]);
		put("envelope_open", name, d, (size_t)n);
	}
	/* 8.1: the next epoch (phase bit set), which the server follows. */
	{
		struct envelope c = f->cli, s = f->srv;
		struct envelope_rx rx;
		uint8_t out[ENVELOPE_MAX_DATAGRAM];
		ssize_t n;

		if (envelope_rekey(&c, 0) != 0)
			exit(1);
		n = envelope_seal(&c, &f->rng, pl, 100, d, sizeof d);
		if (n < 0 || envelope_open(&s, d, (size_t)n, 1, out, sizeof out, &rx) != 100 ||
		    s.epoch != 1)
			exit(1);
		envelope_wipe(&s);
		put("envelope_open", "epoch1-100", d, (size_t)n);
		envelope_wipe(&c);
	}
	prng_fill(&f->g, d, 64);
	put("envelope_open", "random-64", d, 64);
	put("envelope_open", "short-31", d, 31);
	put("envelope_open", "init", f->init, f->init_len);
}

/* A client of a wire version the server does not speak (4.6): its init,
 * and the server's authenticated refusal. (init-v1 and response-v1 are
 * the fixture's messages from the release before wire version 2.) */
static void wire3_seeds(struct fixture *f, struct handshake_server *s)
{
	struct handshake_client c = f->sent;
	struct handshake_pending p;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	ssize_t n, m;

	c.wire_min = c.wire_max = 3;
	n = handshake_client_write_init(&c, &f->rng, FIX_NOW_UNIX + 1, init, sizeof init);
	if (n < 0 ||
	    handshake_server_read_init(s, init, (size_t)n, FIX_NOW_UNIX, &p) != KS_ERR_UNSUPPORTED)
		exit(1);
	m = handshake_server_write_refusal(s, &p, &f->rng, out, sizeof out);
	if (m < 0)
		exit(1);
	put("handshake", "init-wire3", init, (size_t)n);
	put("handshake", "refusal", out, (size_t)m);
}

static void handshake_seeds(struct fixture *f)
{
	struct handshake_server *s = calloc(1, sizeof *s);
	struct handshake_pending p;
	struct handshake_result res;
	uint8_t out[ENVELOPE_MAX_DATAGRAM], tp[TPARAMS_WIRE_LEN];
	ssize_t n;

	if (!s || handshake_server_init(s, &f->key, f->users, 2, &f->tp, &f->tp, &f->tp) != 0 ||
	    handshake_server_read_init(s, f->init, f->init_len, FIX_NOW_UNIX, &p) != 0)
		exit(1);
	n = handshake_server_write_response(s, &p, &f->rng, 0x10000, out, sizeof out, &res);
	if (n < 0 || tparams_encode(&f->tp, tp, sizeof tp) < 0)
		exit(1);
	put("handshake", "init", f->init, f->init_len);
	put("handshake", "init-prefix", f->init, HANDSHAKE_INIT_MIN - 1);
	put("handshake", "response", out, (size_t)n);
	put("handshake", "tparams", tp, sizeof tp);
	prng_fill(&f->g, out, 200);
	put("handshake", "random-200", out, 200);
	wire3_seeds(f, s);
	free(s);
}

/* 2.7: datagrams of the AES-256-GCM session, in epoch 0 and epoch 1
 * (written last, so the seeds above do not change). */
static void aes_seeds(struct fixture *f)
{
	static const size_t sizes[] = { 1, 100, 1300 };
	uint8_t pl[ENVELOPE_MAX_DATAGRAM] = { 0 }, d[ENVELOPE_MAX_DATAGRAM];
	uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct envelope *c = &f->acli, *s = &f->asrv; /* used up here, wiped */
	struct envelope_rx rx;
	char name[64];
	ssize_t n;

	if (!f->aes) {
		fprintf(stderr, "no AES-256-GCM on this CPU: aes-* seeds not written\n");
		return;
	}
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		n = envelope_seal(c, &f->rng, pl, sizes[i], d, sizeof d);
		if (n < 0)
			exit(1);
		snprintf(name, sizeof name, "aes-data-%zu", sizes[i]);
		put("envelope_open", name, d, (size_t)n);
	}
	if (envelope_rekey(c, 0) != 0)
		exit(1);
	n = envelope_seal(c, &f->rng, pl, 100, d, sizeof d);
	if (n < 0 || envelope_open(s, d, (size_t)n, 1, out, sizeof out, &rx) != 100 ||
	    s->epoch != 1)
		exit(1);
	put("envelope_open", "aes-epoch1-100", d, (size_t)n);
	envelope_wipe(c);
	envelope_wipe(s);
}

int main(void)
{
	static struct fixture f;

	if (sodium_init() < 0 || fixture_setup(&f) != 0)
		return 1;
	envelope_seeds(&f);
	handshake_seeds(&f);
	aes_seeds(&f);
	return 0;
}
