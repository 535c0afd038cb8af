/* sysrng.h - the production randomness source: libsodium's randombytes_buf.
 *
 * Call sysrng_init() once at startup, before anything uses libsodium (it
 * runs sodium_init, which is what makes randombytes and the crypto
 * functions safe to use; calling it again is harmless). sysrng_source()
 * then gives the struct rng_source that the cores take.
 */
#ifndef KCPSOCKS_SYSRNG_H
#define KCPSOCKS_SYSRNG_H

#include "base/err.h"
#include "base/rng.h"

/* sysrng_init returns 0, or KS_ERR_UNSUPPORTED if libsodium cannot
 * initialise (no usable system random source): the program must stop. */
KS_MUST_CHECK int sysrng_init(void);

/* sysrng_source returns an rng_source whose fill is randombytes_buf (ctx
 * unused). Only valid after sysrng_init succeeded. */
struct rng_source sysrng_source(void);

#endif
