/* ifaddrs.h - the exit host's own interface addresses, for the destination
 * policy's `self` rule (docs/CONFIG.md, destination policy).
 *
 * The addresses change while the server runs (DHCP, a new interface, a VPN
 * coming up), so the set is re-read, lazily: ifaddrs_current re-reads it
 * with getifaddrs(3) when the copy it holds is older than
 * IFADDRS_REFRESH_MS, and never otherwise, so an idle server does no work
 * and a busy one at most one read per interval. A read that fails keeps
 * the previous set (an empty one at first) and is retried at the next
 * call after the interval.
 */
#ifndef KCPSOCKS_IFADDRS_H
#define KCPSOCKS_IFADDRS_H

#include <stdint.h>

#include "base/err.h"
#include "core/config.h"

/* How old the copy may get before the next policy decision re-reads it. */
enum { IFADDRS_REFRESH_MS = 1000 };

struct ifaddrs_cache {
	struct config_self self;
	uint64_t read_at; /* clock_mono_ms of the last read; 0: never */
	int last_errno;   /* of the last failed read, 0 after a good one */
};

/* ifaddrs_read fills *out with every IPv4 and IPv6 address of every
 * interface (up or not: an address that is configured is reachable from
 * this host). Returns 0, or KS_ERR_IO (errno set; *out unchanged). More than
 * CONFIG_SELF_MAX addresses: the first CONFIG_SELF_MAX. */
KS_MUST_CHECK int ifaddrs_read(struct config_self *out);

/* ifaddrs_current returns the cache's set, re-read first when older than
 * IFADDRS_REFRESH_MS at now (ms, monotonic). Never NULL. */
const struct config_self *ifaddrs_current(struct ifaddrs_cache *c, uint64_t now);

#endif
