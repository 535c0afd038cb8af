/* clock.c - monotonic and wall-clock milliseconds. */
/* 64-bit time_t on 32-bit glibc targets as well (a no-op on 64-bit ones and
 * on musl, where it is always 64 bits), so the wall clock does not overflow
 * in 2038. Safe here: these calls go to libc only, no time_t crosses into a
 * library built with another setting (c-ares' struct timeval does, so the
 * tree as a whole keeps the platform default). Before any header. */
#define _FILE_OFFSET_BITS 64
#define _TIME_BITS        64

#include "io/clock.h"

#include <time.h>

static uint64_t read_ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_mono_ms(void) { return read_ms(CLOCK_MONOTONIC); }

uint64_t clock_wall_ms(void) { return read_ms(CLOCK_REALTIME); }
