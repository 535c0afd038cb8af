/* dstseen.h - the destinations a client reached lately, for fast open on
 * them alone (profile key fast_open_known; docs/CONFIG.md, "Fast open").
 *
 * A destination is the SOCKS5 request that named it, byte for byte (the
 * same name or address and port). The table holds a keyed 64-bit hash per
 * destination, not the request: DSTSEEN_SLOTS entries, direct-mapped (a
 * newer destination may evict an older one, which then waits for its
 * reply once more), each good for DSTSEEN_TTL_MS after the last success.
 * Sans-I/O: the caller passes the key (random per process) and `now`.
 */
#ifndef KCPSOCKS_DSTSEEN_H
#define KCPSOCKS_DSTSEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"

struct dstseen {
	uint8_t key[DSTSEEN_KEY_LEN];
	struct {
		uint64_t hash;
		uint64_t until; /* 0: empty */
	} slot[DSTSEEN_SLOTS];
};

/* dstseen_init empties d and sets its hash key. */
void dstseen_init(struct dstseen *d, const uint8_t key[DSTSEEN_KEY_LEN]);

/* dstseen_known: the server connected to dst (len bytes) less than
 * DSTSEEN_TTL_MS before now, and nothing failed there since. */
bool dstseen_known(const struct dstseen *d, const uint8_t *dst, size_t len, uint64_t now);

/* dstseen_note records the server's answer for dst: reached (its connect
 * succeeded) makes it known until now + DSTSEEN_TTL_MS, a failure forgets
 * it. */
void dstseen_note(struct dstseen *d, const uint8_t *dst, size_t len, bool reached, uint64_t now);

#endif
