/* sysrng.c - libsodium behind struct rng_source. */
#include "io/sysrng.h"

#include <sodium.h>

int sysrng_init(void)
{
	/* 0: initialised now, 1: already initialised, -1: failure. */
	return sodium_init() < 0 ? KS_ERR_UNSUPPORTED : 0;
}

static void fill(void *buf, size_t len, void *ctx)
{
	(void)ctx;
	randombytes_buf(buf, len);
}

struct rng_source sysrng_source(void) { return (struct rng_source){ fill, NULL }; }
