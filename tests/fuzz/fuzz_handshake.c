/* fuzz_handshake.c - the handshake parsers on arbitrary bytes: the server
 * reading an init, the client reading a response (to the fixture's init),
 * and the transport-parameter decoder. Public API only. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/handshake.h"
#include "core/tparams.h"
#include "secure_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void server_side(struct fixture *f, const uint8_t *data, size_t size)
{
	static struct handshake_server s; /* large: static, re-initialised */
	static uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct handshake_pending p;
	struct handshake_result res;
	struct transport_params min, max;
	struct prng g;
	struct rng_source rng;
	ssize_t n;

	min = max = f->tp;
	if (handshake_server_init(&s, &f->key, f->users, 2, &min, &max, &f->tp) != 0)
		abort();
	if (handshake_server_read_init(&s, data, size, FIX_NOW_UNIX, &p) != 0)
		return;
	if (s.n.accepted != 1 || size < HANDSHAKE_INIT_MIN || size > HANDSHAKE_INIT_MAX)
		abort();
	prng_seed(&g, size);
	rng = prng_source(&g);
	n = handshake_server_write_response(&s, &p, &rng, 0x10000, out, sizeof out, &res);
	if (n < HANDSHAKE_RESP_MIN || n > HANDSHAKE_RESP_MAX || !tparams_valid(&res.params))
		abort();
	/* The same init again is a replay. */
	if (handshake_server_read_init(&s, data, size, FIX_NOW_UNIX, &p) != KS_ERR_REPLAY)
		abort();
}

static void client_side(const struct fixture *f, const uint8_t *data, size_t size)
{
	struct handshake_client c = f->sent;
	struct handshake_result res;

	if (handshake_client_read_response(&c, data, size, &res) != 0) {
		if (c.state != HANDSHAKE_CLIENT_SENT)
			abort();
		return;
	}
	if (c.state != HANDSHAKE_CLIENT_DONE || res.sid == 0 || !tparams_valid(&res.params))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fixture f;
	static int ready;
	struct transport_params tp;

	if (!ready) {
		if (fixture_setup(&f) != 0)
			abort();
		ready = 1;
	}
	server_side(&f, data, size);
	client_side(&f, data, size);
	if (tparams_decode(&tp, data, size) >= 0 && !tparams_valid(&tp))
		abort();
	return 0;
}
