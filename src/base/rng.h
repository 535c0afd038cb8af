/* rng.h - injected randomness, and a seeded generator for tests and netsim.
 *
 * Cores never call a random source of their own: the caller hands them a
 * struct rng_source. Production passes one that calls libsodium's
 * randombytes_buf (io layer); tests and the simulator pass a struct prng,
 * whose sequence is fixed by its seed so a failing run reproduces exactly.
 * The prng is xoshiro256** seeded through splitmix64: fast, well tested
 * statistically, not for secrets.
 */
#ifndef KCPSOCKS_RNG_H
#define KCPSOCKS_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng_source {
	void (*fill)(void *buf, size_t len, void *ctx);
	void *ctx; /* borrowed: passed to fill */
};

static inline void rng_fill(const struct rng_source *r, void *buf, size_t len)
{
	r->fill(buf, len, r->ctx);
}

struct prng {
	uint64_t s[4];
};

void prng_seed(struct prng *g, uint64_t seed);
uint64_t prng_next(struct prng *g);
/* prng_below returns a uniform value in [0, n); n must be > 0. */
uint32_t prng_below(struct prng *g, uint32_t n);
/* prng_unit returns a uniform double in [0, 1). */
double prng_unit(struct prng *g);
/* prng_fill fills buf with len bytes of g's stream. */
void prng_fill(struct prng *g, void *buf, size_t len);
/* prng_source wraps g as an rng_source; g must outlive the result. */
struct rng_source prng_source(struct prng *g);

#endif
