/* udpexit.h - kcpsocks-server's side of UDP ASSOCIATE (docs/PROTOCOL.md
 * (UDP) U4, U6): one association per UDP ASSOCIATE stream, each with its
 * own non-blocking UDP sockets (one per address family, opened when first
 * needed), names looked up with the server's c-ares resolver, the
 * destination policy applied to every datagram both ways, and a rate
 * bucket, a lookup queue bound and an idle timeout per association.
 *
 * An association is named by (session id, stream id). The owner (exitd)
 * opens it when the OPEN of a UDP ASSOCIATE arrives, closes it when the
 * stream or the session ends, and hands it every datagram frame of the
 * session. What goes back to the client leaves through ops->send; an
 * association that idles out calls ops->ended (the owner resets the
 * stream) and is gone when that returns. Single-threaded, libev loop.
 */
#ifndef KCPSOCKS_UDPEXIT_H
#define KCPSOCKS_UDPEXIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "core/udpassoc.h"

struct ev_loop;
struct resolver;
struct metrics_buf;

struct udpexit_ops {
	struct ev_loop *loop; /* borrowed */
	struct resolver *res; /* borrowed, the server's */
	/* send: one frame body (SOCKS5 UDP header + data) back into session
	 * sid for association id; 0 or a KS_ERR_* (counted as a drop). */
	int (*send)(uint64_t sid, uint32_t id, const uint8_t *p, size_t n, void *ctx);
	/* allowed: the destination policy for one address (port set). */
	bool (*allowed)(const struct sockaddr_storage *a, void *ctx);
	/* ended: the association idled out; reset its stream. Must not call
	 * udpexit_* for it. */
	void (*ended)(uint64_t sid, uint32_t id, void *ctx);
	void *ctx;
};

struct udpexit_limits {
	uint32_t per_session; /* associations one session may hold; 0: none */
	uint32_t rate;        /* datagrams/s per association and direction; 0: unlimited */
	uint32_t queue_bytes; /* waiting for lookups, per association */
	uint32_t idle_ms;
};

struct udpexit;

/* udpexit_new: NULL when out of memory. ops and lim are copied. */
struct udpexit *udpexit_new(const struct udpexit_ops *ops, const struct udpexit_limits *lim);

/* udpexit_free closes every association (no callback runs). NULL: no-op. */
void udpexit_free(struct udpexit *u);

/* udpexit_set_limits applies new limits (a reload) to later checks. */
void udpexit_set_limits(struct udpexit *u, const struct udpexit_limits *lim);

/* udpexit_open makes the association (sid, id). Returns 0, KS_ERR_STATE
 * (it exists), KS_ERR_UNSUPPORTED (per_session is 0), KS_ERR_LIMIT (the
 * session holds per_session already), KS_ERR_NOMEM. */
KS_MUST_CHECK int udpexit_open(struct udpexit *u, uint64_t sid, uint32_t id, uint64_t now);

/* udpexit_has says whether (sid, id) is an association. */
bool udpexit_has(const struct udpexit *u, uint64_t sid, uint32_t id);

/* udpexit_close ends (sid, id): sockets closed, lookups cancelled, queue
 * freed. No-op when there is none. udpexit_close_session ends all of
 * session sid's. */
void udpexit_close(struct udpexit *u, uint64_t sid, uint32_t id);
void udpexit_close_session(struct udpexit *u, uint64_t sid);

/* udpexit_on_frame takes one datagram frame body of session sid for
 * association id at now (ms): checked, resolved, policed, sent, or dropped
 * and counted. */
void udpexit_on_frame(struct udpexit *u, uint64_t sid, uint32_t id, const uint8_t *p, size_t n,
                      uint64_t now);

/* udpexit_counters: the process's UDP counters (active filled in). */
const struct udpassoc_counters *udpexit_counters(struct udpexit *u);

#endif
