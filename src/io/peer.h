/* peer.h - the UDP side of a daemon: one socket, batched receive and send,
 * one timer, and the once-per-iteration flush.
 *
 * A struct peer owns a non-blocking UDP socket, a recvmmsg batch, a
 * sendmmsg queue and three libev watchers:
 *   - read:    drains one recvmmsg batch per wakeup into on_datagram;
 *   - prepare: before the loop sleeps it calls before_sleep (the daemon
 *              drains core events, pumps sessions and returns its next
 *              deadline), then flushes the send queue with sendmmsg (an
 *              EV_WRITE watcher finishes a flush the kernel refused with
 *              EAGAIN) and re-arms the one timer at that deadline;
 *   - timer:   calls on_timer at the deadline. It is re-armed only when the
 *              deadline moves, and stopped when there is none, so an idle
 *              daemon has no wakeups before its next real event.
 * Output datagrams are queued with peer_send from anywhere (the cores'
 * output callbacks) and leave in the flush. Times are clock_mono_ms.
 */
#ifndef KCPSOCKS_PEER_H
#define KCPSOCKS_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "io/udp.h"

struct ev_loop;

/* The deadline meaning "no timer". */
#define PEER_NEVER UINT64_MAX

struct peer_cb {
	void (*on_datagram)(void *arg, const struct udp_dgram *d, uint64_t now);
	void (*on_timer)(void *arg, uint64_t now);
	/* Returns the next deadline (absolute ms, PEER_NEVER for none). */
	uint64_t (*before_sleep)(void *arg, uint64_t now);
	void *arg;
};

struct peer;

/* peer_new opens a UDP socket bound to bind_addr (port 0: any) and starts
 * its watchers on loop. Returns NULL with a message in err:
 * "bind 127.0.0.1:8443: Address already in use". */
struct peer *peer_new(struct ev_loop *loop, const struct sockaddr_storage *bind_addr,
                      const struct peer_cb *cb, char *err, size_t errlen);

/* peer_free stops the watchers and closes the socket; queued datagrams are
 * dropped. NULL is a no-op. Not from inside a peer callback. */
void peer_free(struct peer *p);

/* peer_send queues one datagram for to (NULL: the socket's connected
 * peer). Returns 0, or KS_ERR_FULL / KS_ERR_TOOBIG (dropped, counted). */
KS_MUST_CHECK int peer_send(struct peer *p, const uint8_t *d, size_t len,
                            const struct sockaddr_storage *to);

/* peer_connect fixes the destination of peer_send(NULL) datagrams and
 * filters received ones to it (connect(2)). Returns 0 or KS_ERR_IO with a
 * message in err. */
KS_MUST_CHECK int peer_connect(struct peer *p, const struct sockaddr_storage *to, char *err,
                               size_t errlen);

/* peer_flush sends what is queued now, as far as the socket takes it
 * without blocking (what does not fit is dropped). For the last datagrams
 * of a daemon that stops: call before peer_free. */
void peer_flush(struct peer *p);

struct peer_stats {
	const struct udp_rx_stats *rx;
	const struct udp_tx_stats *tx;
	uint64_t timer_fires;
};
void peer_stats(const struct peer *p, struct peer_stats *st);

/* peer_local_addr gives the bound address. Returns 0 or KS_ERR_IO. */
KS_MUST_CHECK int peer_local_addr(const struct peer *p, struct sockaddr_storage *out);

#endif
