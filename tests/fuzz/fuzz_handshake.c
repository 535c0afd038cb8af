/* fuzz_handshake.c - the handshake parsers on arbitrary bytes: the server
 * reading an init (and answering it, or refusing a wire version it does
 * not speak: never longer than the init), the client reading a response
 * or refusal (to the fixture's init), and the transport-parameter decoder.
 * Public API only. */
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
	int rc;

	min = max = f->tp;
	if (handshake_server_init(&s, &f->key, f->users, 2, &min, &max, &f->tp) != 0)
		abort();
	rc = handshake_server_read_init(&s, data, size, FIX_NOW_UNIX, &p);
	if (rc != 0 && rc != KS_ERR_UNSUPPORTED)
		return;
	if (size < HANDSHAKE_INIT_MIN || size > HANDSHAKE_INIT_MAX)
		abort();
	prng_seed(&g, size);
	rng = prng_source(&g);
	if (rc == KS_ERR_UNSUPPORTED) {
		/* An authenticated init of a wire version we do not speak: a
		 * refusal, never longer than the init. */
		n = handshake_server_write_refusal(&s, &p, &rng, out, sizeof out);
		if (s.n.refused != 1 || n < HANDSHAKE_RESP_MIN || (size_t)n > size)
			abort();
	} else {
		n = handshake_server_write_response(&s, &p, &rng, 0x10000, out, sizeof out, &res);
		if (s.n.accepted != 1 || n < HANDSHAKE_RESP_MIN || (size_t)n > size ||
		    !tparams_valid(&res.params) || res.params.wire < HANDSHAKE_WIRE_MIN ||
		    res.params.wire > HANDSHAKE_WIRE_VERSION ||
		    (res.params.features & ~(uint32_t)TPARAMS_FEATURES))
			abort();
	}
	/* The same init again is a replay. */
	if (handshake_server_read_init(&s, data, size, FIX_NOW_UNIX, &p) != KS_ERR_REPLAY)
		abort();
}

static void client_side(const struct fixture *f, const uint8_t *data, size_t size)
{
	struct handshake_client c = f->sent;
	struct handshake_result res;

	int rc = handshake_client_read_response(&c, data, size, &res);

	if (rc != 0) {
		if (c.state != HANDSHAKE_CLIENT_SENT ||
		    (rc == KS_ERR_UNSUPPORTED && c.refusal.reason == HANDSHAKE_REFUSE_NONE))
			abort();
		return;
	}
	if (c.state != HANDSHAKE_CLIENT_DONE || res.sid == 0 || !tparams_valid(&res.params) ||
	    res.params.wire < HANDSHAKE_WIRE_MIN || res.params.wire > HANDSHAKE_WIRE_VERSION)
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
