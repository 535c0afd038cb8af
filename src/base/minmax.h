/* minmax.h - the smaller, the larger and the clamped of two unsigned values.
 *
 * One function per width, so no argument is converted without the caller
 * seeing it, and each argument is evaluated once (no macro). Times and
 * counters that wrap are not compared here: seq.h does that.
 */
#ifndef KCPSOCKS_MINMAX_H
#define KCPSOCKS_MINMAX_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* clamp_u32 returns v limited to [lo, hi]; lo <= hi. */
static inline uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

#endif
