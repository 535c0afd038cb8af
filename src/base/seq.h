/* seq.h - wrap-safe comparison of 32-bit sequence numbers and timestamps.
 *
 * KCP's sn, una and ts fields are 32-bit and wrap. They are compared only
 * through seq_diff: the signed distance from b to a, correct whenever the
 * two values are less than 2^31 apart, which every window bound guarantees.
 */
#ifndef KCPSOCKS_SEQ_H
#define KCPSOCKS_SEQ_H

#include <stdbool.h>
#include <stdint.h>

/* seq_diff returns a - b as a signed distance, modulo 2^32. The conversion
 * goes through the two's complement explicitly so it is defined C. */
static inline int32_t seq_diff(uint32_t a, uint32_t b)
{
	uint32_t d = a - b;
	return d <= INT32_MAX ? (int32_t)d : -(int32_t)(~d) - 1;
}

static inline bool seq_lt(uint32_t a, uint32_t b) { return seq_diff(a, b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return seq_diff(a, b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return seq_diff(a, b) > 0; }
static inline bool seq_ge(uint32_t a, uint32_t b) { return seq_diff(a, b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_lt(a, b) ? b : a; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

#endif
