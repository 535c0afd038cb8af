/* fuzz_envelope_open.c - envelope_peek_sid and envelope_open on arbitrary
 * bytes, against a fixed session (secure_fixture.h) and, where the CPU runs
 * AES-256-GCM, against a fixed session that agreed it (secure layer 2.7);
 * a datagram that opens once must then be refused as a replay. Public API
 * only. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/envelope.h"
#include "secure_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* one: d opened by a copy of srv (a fresh window for every input). */
static void one(const struct envelope *srv, const uint8_t *data, size_t size)
{
	static uint8_t out[ENVELOPE_MAX_DATAGRAM];
	static struct envelope e;
	struct envelope_rx rx;
	uint64_t sid;
	ssize_t n;

	if (envelope_peek_sid(srv->hdr, data, size, &sid) == 0 &&
	    (size < ENVELOPE_MIN_LEN || size > ENVELOPE_MAX_DATAGRAM))
		abort();
	e = *srv;
	n = envelope_open(&e, data, size, 1, out, sizeof out, &rx);
	if (n >= 0) {
		if ((size_t)n > size - ENVELOPE_OVERHEAD || sid != e.sid || !rx.newest)
			abort();
		if (envelope_open(&e, data, size, 2, out, sizeof out, &rx) != KS_ERR_REPLAY)
			abort();
	} else if (e.opened != 0 || e.rx_win.next != 0) {
		abort(); /* a refusal changed the window */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fixture f;
	static int ready;

	if (!ready) {
		if (fixture_setup(&f) != 0)
			abort();
		ready = 1;
	}
	one(&f.srv, data, size);
	if (f.aes)
		one(&f.asrv, data, size);
	return 0;
}
