/* peer.h - one UDP socket of a daemon: batched receive and send, nothing
 * else.
 *
 * A struct peer owns a non-blocking UDP socket, a recvmmsg batch and a
 * sendmmsg queue. It has no watchers and no callbacks: the loop
 * (io/loop.h) watches its fd, calls peer_read when it is readable and
 * peer_flush before it sleeps. Output datagrams are queued with peer_send
 * from anywhere (the cores' output callbacks) and leave in that flush, so
 * a send never runs inside a callback of the peer itself.
 */
#ifndef KCPSOCKS_PEER_H
#define KCPSOCKS_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/err.h"
#include "io/udp.h"

struct peer;

/* peer_new opens a UDP socket bound to bind_addr (port 0: any). Returns
 * NULL with a message in err: "bind 127.0.0.1:8443: Address already in
 * use". */
struct peer *peer_new(const struct sockaddr_storage *bind_addr, char *err, size_t errlen);

/* peer_free closes the socket; queued datagrams are dropped. NULL is a
 * no-op. Detach it from its loop first (loop_detach). */
void peer_free(struct peer *p);

/* peer_fd is the socket, for the loop's watchers. */
int peer_fd(const struct peer *p);

/* peer_read reads one recvmmsg batch. Returns how many datagrams
 * (peer_dgram 0..n-1 are valid until the next peer_read), 0 when nothing
 * was waiting, or KS_ERR_IO (errno set). */
KS_MUST_CHECK ssize_t peer_read(struct peer *p);
const struct udp_dgram *peer_dgram(const struct peer *p, size_t i);

/* Two send lanes. Datagrams queued in the urgent lane (UDP datagram
 * frames: DNS, games, voice) leave at the next flush ahead of everything
 * in the bulk lane (KCP), so they do not wait behind a flush's worth of
 * bulk. The urgent queue holds PEER_URGENT_MAX datagrams: that is all
 * that can go ahead of the bulk lane per flush, so it cannot starve the
 * streams; past it, urgent datagrams queue in the bulk lane. */
enum peer_lane { PEER_LANE_BULK, PEER_LANE_URGENT };
enum { PEER_URGENT_MAX = 16 };

/* peer_lane picks the lane of the datagrams peer_slot / peer_send queue
 * from now on (a peer starts in PEER_LANE_BULK). Set it around one
 * session_send_datagram and back. */
void peer_lane(struct peer *p, enum peer_lane lane);

/* peer_slot lends the send queue's next free buffer (*cap bytes) for a
 * datagram to be written in place, or returns NULL when the queue is full
 * (after one flush attempt). Valid until the next call on p. */
uint8_t *peer_slot(struct peer *p, size_t *cap);

/* peer_send queues one datagram for to (NULL: the socket's connected
 * peer): copied, or, when d is the buffer peer_slot lent, committed where
 * it is. Returns 0, or KS_ERR_FULL / KS_ERR_TOOBIG (dropped, counted). */
KS_MUST_CHECK int peer_send(struct peer *p, const uint8_t *d, size_t len,
                            const struct sockaddr_storage *to);

/* peer_connect fixes the destination of peer_send(NULL) datagrams and
 * filters received ones to it (connect(2)). Returns 0 or KS_ERR_IO with a
 * message in err. */
KS_MUST_CHECK int peer_connect(struct peer *p, const struct sockaddr_storage *to, char *err,
                               size_t errlen);

/* peer_flush sends what is queued, the urgent lane first, as far as the socket takes it without
 * blocking. Returns 0 (the queue is empty) or KS_ERR_AGAIN (the kernel
 * refused the rest; it stays queued for the next flush). NULL: 0. */
int peer_flush(struct peer *p);

/* peer_pending is the number of datagrams queued. */
size_t peer_pending(const struct peer *p);

struct peer_stats {
	const struct udp_rx_stats *rx;
	struct udp_tx_stats tx; /* both lanes added up */
	uint64_t urgent_sent;   /* datagrams the kernel took from the urgent lane */
};
void peer_stats(const struct peer *p, struct peer_stats *st);

/* peer_local_addr gives the bound address. Returns 0 or KS_ERR_IO. */
KS_MUST_CHECK int peer_local_addr(const struct peer *p, struct sockaddr_storage *out);

#endif
