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

/* one: d opened by e, a fresh server end (a fresh window for every input). */
static void one(struct envelope *e, const uint8_t *data, size_t size)
{
	static uint8_t out[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	uint64_t sid;
	ssize_t n;

	if (envelope_peek_sid(e->hdr, data, size, &sid) == 0 &&
	    (size < ENVELOPE_MIN_LEN || size > ENVELOPE_MAX_DATAGRAM))
		abort();
	n = envelope_open(e, data, size, 1, out, sizeof out, &rx);
	if (n >= 0) {
		if ((size_t)n > size - ENVELOPE_OVERHEAD || sid != e->sid || !rx.newest)
			abort();
		if (envelope_open(e, data, size, 2, out, sizeof out, &rx) != KS_ERR_REPLAY)
			abort();
	} else if (e->opened != 0 || e->rx_win.next != 0) {
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
	static struct envelope e;

	e = f.srv; /* ChaCha20-Poly1305: owns no heap, a copy is a fresh end */
	one(&e, data, size);
	if (f.aes) { /* AES-256-GCM: its own expanded keys, made afresh */
		fixture_aes_end(&e, f.asrv.hdr, true);
		one(&e, data, size);
		envelope_wipe(&e);
	}
	return 0;
}
