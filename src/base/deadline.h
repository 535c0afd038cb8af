/* deadline.h - the one "no deadline" value.
 *
 * Every layer answers "when must I be called next?" with an absolute time
 * in milliseconds (uint64_t, the caller's monotonic clock) or KS_NEVER:
 * nothing is scheduled. The cores, the loop and the daemons compare and
 * combine these values directly (min_u64 of two deadlines is the earlier,
 * and KS_NEVER is the largest value, so it never wins), so there is one
 * sentinel for all of them (no module defines a "never" of its own).
 */
#ifndef KCPSOCKS_DEADLINE_H
#define KCPSOCKS_DEADLINE_H

#include <stdint.h>

#define KS_NEVER UINT64_MAX

#endif
