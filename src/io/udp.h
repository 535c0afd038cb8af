/* udp.h - non-blocking UDP sockets with batched receive and send.
 *
 * udp_open makes the socket. A struct udp_rx receives up to UDP_BATCH_MAX
 * datagrams per call with one recvmmsg into buffers allocated once; a
 * struct udp_tx queues datagrams during a loop iteration and sends them
 * with sendmmsg when flushed (from an ev_prepare watcher, once per
 * iteration). Neither allocates per packet. Both only touch the fd they are
 * given; the caller owns the fd and the libev watchers.
 *
 * The send queue is bounded: it never grows. When the kernel says EAGAIN
 * the rest stays queued for the next flush (the caller starts an EV_WRITE
 * watcher while udp_tx_pending is true); when the queue is full a new
 * datagram is dropped and counted, which the protocols above treat as loss.
 *
 * Errors on individual datagrams (a refused port, an unreachable network,
 * ENOBUFS) drop that datagram, are counted in the stats, and are logged
 * rate-limited at warn level with the operation, the peer and strerror.
 * Nothing here closes the fd.
 */
#ifndef KCPSOCKS_UDP_H
#define KCPSOCKS_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"

struct udp_opts {
	int rcvbuf;     /* bytes to request for SO_RCVBUF; 0 keeps the kernel default */
	int sndbuf;     /* bytes to request for SO_SNDBUF; 0 keeps the kernel default */
	bool reuseaddr; /* set SO_REUSEADDR (off unless asked) */
};

/* The defaults: UDP_SOCKBUF_DEFAULT both ways, no SO_REUSEADDR. */
struct udp_opts udp_opts_default(void);

/* What the kernel granted, as usable bytes (Linux reports twice the usable
 * size through getsockopt; we halve it so it compares with the request). */
struct udp_granted {
	int rcvbuf;
	int sndbuf;
};

/* udp_open opens a non-blocking, close-on-exec UDP socket of bind_addr's
 * family, sizes its buffers (SO_*BUFFORCE first, which needs CAP_NET_ADMIN,
 * then the capped SO_*BUF) and binds it. *granted (may be NULL) gets the
 * sizes obtained; a smaller grant is not an error.
 * Returns the fd, or KS_ERR_INVAL (bad family or opts) or KS_ERR_IO, with a
 * message like "bind 127.0.0.1:9000: Address already in use" in err (may
 * be NULL). Nothing is left open on failure. */
KS_MUST_CHECK int udp_open(const struct sockaddr_storage *bind_addr, const struct udp_opts *opts,
                           struct udp_granted *granted, char *err, size_t errlen);

/* udp_local_addr fills *out with the address fd is bound to (the port the
 * kernel chose for port 0). Returns 0 or KS_ERR_IO (errno set). */
KS_MUST_CHECK int udp_local_addr(int fd, struct sockaddr_storage *out);

/* ---- receive ---- */

/* One received datagram: views into the struct udp_rx, valid until the
 * next udp_rx_read or udp_rx_free on it. */
struct udp_dgram {
	const uint8_t *data;
	size_t len;
	const struct sockaddr_storage *from;
};

struct udp_rx_stats {
	uint64_t calls;     /* recvmmsg calls that returned datagrams */
	uint64_t datagrams; /* datagrams handed out */
	uint64_t bytes;
	uint64_t truncated; /* dropped: longer than UDP_DATAGRAM_MAX */
	uint64_t errors;    /* recvmmsg failures other than EAGAIN and refused */
	uint64_t refused;   /* ICMP errors of the path reported on a read
	                       (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH): counted,
	                       not logged; the daemon decides what they mean */
};

struct udp_rx;

/* udp_rx_new allocates the receive batch (buffers for UDP_BATCH_MAX
 * datagrams of UDP_DATAGRAM_MAX bytes), or returns NULL. */
struct udp_rx *udp_rx_new(void);
/* udp_rx_free(NULL) is a no-op. */
void udp_rx_free(struct udp_rx *rx);

/* udp_rx_read does one recvmmsg on fd (at most UDP_BATCH_MAX datagrams,
 * never blocking) and returns how many datagrams udp_rx_get can hand out:
 * 0 when nothing was waiting or only truncated datagrams came. A transient
 * error (ECONNREFUSED from an earlier send, ENOMEM, EINTR) is counted,
 * logged rate-limited, and gives 0. Returns KS_ERR_IO (errno set) only when
 * the fd itself is unusable (EBADF, ENOTSOCK, EINVAL, EFAULT). A caller
 * that got UDP_BATCH_MAX back may have more waiting: level-triggered libev
 * calls it again in the next iteration, so other watchers are not starved. */
KS_MUST_CHECK ssize_t udp_rx_read(struct udp_rx *rx, int fd);

/* udp_rx_get returns datagram i (i < the last udp_rx_read result). */
const struct udp_dgram *udp_rx_get(const struct udp_rx *rx, size_t i);

const struct udp_rx_stats *udp_rx_stats(const struct udp_rx *rx);

/* ---- send ---- */

struct udp_tx_stats {
	uint64_t queued;       /* datagrams accepted into the queue */
	uint64_t sent;         /* datagrams the kernel took */
	uint64_t bytes;        /* bytes the kernel took */
	uint64_t calls;        /* sendmmsg calls */
	uint64_t gso_messages; /* messages that carried several datagrams (UDP GSO) */
	uint64_t full_drops;   /* refused by udp_tx_commit: queue full */
	uint64_t errors;       /* dropped after a send error other than EAGAIN */
	uint64_t blocked;      /* flushes that stopped on EAGAIN */
};

struct udp_tx;

/* udp_tx_new allocates a send queue for fd (borrowed; must stay open while
 * the queue is used) holding capacity datagrams (1..UDP_TX_QUEUE_MAX; 0
 * means UDP_TX_QUEUE_DEFAULT). Returns NULL on a bad capacity or no memory. */
struct udp_tx *udp_tx_new(int fd, size_t capacity);
/* udp_tx_free(NULL) is a no-op; queued datagrams are discarded. */
void udp_tx_free(struct udp_tx *tx);

/* udp_tx_slot returns the buffer of the next free slot (UDP_DATAGRAM_MAX
 * bytes) for the caller to write a datagram into in place, then commit.
 * When the queue is full it first tries one flush (unless the last flush
 * hit EAGAIN); if still full it returns NULL. The buffer is valid until the
 * next call on tx. */
uint8_t *udp_tx_slot(struct udp_tx *tx);

/* udp_tx_commit queues the len bytes written into the slot for `to` (NULL
 * on a connected socket; copied). Returns 0, KS_ERR_TOOBIG (len >
 * UDP_DATAGRAM_MAX or 0), or KS_ERR_FULL (no slot: counted as a full drop;
 * call udp_tx_slot first and this cannot happen). */
KS_MUST_CHECK int udp_tx_commit(struct udp_tx *tx, size_t len, const struct sockaddr_storage *to);

/* udp_tx_queue copies data into a slot and commits it: udp_tx_slot +
 * memcpy + udp_tx_commit. Returns 0, KS_ERR_TOOBIG or KS_ERR_FULL (dropped
 * and counted). */
KS_MUST_CHECK int udp_tx_queue(struct udp_tx *tx, const void *data, size_t len,
                               const struct sockaddr_storage *to);

/* udp_tx_flush sends queued datagrams with sendmmsg, UDP_BATCH_MAX
 * messages per call, oldest first, until the queue is empty or the kernel
 * says EAGAIN. On a UDP socket whose kernel has UDP GSO, a message carries
 * a run of up to UDP_GSO_SEGMENTS_MAX queued datagrams to the same address
 * of one length (the last may be shorter), which the kernel sends as those
 * same datagrams at the cost of one; if the path refuses that (no checksum
 * offload, a datagram above the device MTU), the queue falls back to one
 * datagram per message for good, losing nothing.
 * Returns 0 (queue empty) or KS_ERR_AGAIN (some remain: wait for the fd to
 * be writable, then flush again). Datagrams that fail otherwise are dropped
 * and counted. */
int udp_tx_flush(struct udp_tx *tx);

/* udp_tx_pending returns the number of queued datagrams. */
size_t udp_tx_pending(const struct udp_tx *tx);
size_t udp_tx_capacity(const struct udp_tx *tx);

const struct udp_tx_stats *udp_tx_stats(const struct udp_tx *tx);

#endif
