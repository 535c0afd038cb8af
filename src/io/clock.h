/* clock.h - the two clocks of kcpsocks, in milliseconds.
 *
 * clock_mono_ms is what every core's `now` argument comes from: it never
 * jumps with the wall clock, so KCP timers and deadlines stay sane across
 * NTP steps. clock_wall_ms is the unix time, used only where two hosts must
 * agree on a time (the handshake timestamp).
 *
 * Both read the clock directly (no libev cache); they may be called from
 * any callback. Neither can fail on Linux: a clock_gettime failure would
 * mean a broken libc, and they return 0 then.
 */
#ifndef KCPSOCKS_CLOCK_H
#define KCPSOCKS_CLOCK_H

#include <stdint.h>

/* clock_mono_ms returns CLOCK_MONOTONIC in milliseconds (arbitrary epoch,
 * typically the boot; only differences mean anything). */
uint64_t clock_mono_ms(void);

/* clock_wall_ms returns CLOCK_REALTIME as milliseconds since the unix
 * epoch. */
uint64_t clock_wall_ms(void);

#endif
