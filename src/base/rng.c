/* rng.c - xoshiro256** (Blackman and Vigna), seeded with splitmix64. */
#include "rng.h"

#include <string.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void prng_seed(struct prng *g, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix64(&seed);
}

uint64_t prng_next(struct prng *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint32_t prng_below(struct prng *g, uint32_t n)
{
	/* Lemire's multiply-shift; the bias for n < 2^32 from a 64-bit draw
	 * is below 2^-32, far under anything a test can observe. */
	return (uint32_t)(((prng_next(g) >> 32) * (uint64_t)n) >> 32);
}

double prng_unit(struct prng *g) { return (double)(prng_next(g) >> 11) * 0x1.0p-53; }

void prng_fill(struct prng *g, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = prng_next(g);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = prng_next(g);
		memcpy(p, &v, len);
	}
}

/* The rng_source face of a prng: its context comes last. */
static void source_fill(void *buf, size_t len, void *ctx) { prng_fill(ctx, buf, len); }

struct rng_source prng_source(struct prng *g) { return (struct rng_source){ source_fill, g }; }
