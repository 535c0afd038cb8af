/* udpassoc.h - UDP ASSOCIATE datagrams in the tunnel: the datagram frame
 * that carries them beside KCP inside the envelope, the per-association
 * rate bucket, and the drop reasons both daemons count
 * (docs/PROTOCOL.md (UDP), steps U1..U8).
 *
 * A datagram frame is a whole envelope payload in place of a KCP datagram,
 * like a path frame (secure 6.2):
 *
 *   0  u32le conv of the session
 *   4  u8    UDPASSOC_FRAME_TYPE (0x5A)
 *   5  3     zero
 *   8  u32le association id: the mux stream id of the UDP ASSOCIATE request
 *   12 ...   an RFC 1928 section 7 UDP request header (RSV RSV FRAG=0 ATYP
 *            DST.ADDR DST.PORT) and the datagram's data
 *
 * Towards the server DST is where the datagram goes; towards the client it
 * is where the reply came from. Sans-I/O: no sockets, clocks or logging.
 */
#ifndef KCPSOCKS_UDPASSOC_H
#define KCPSOCKS_UDPASSOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "core/socks5.h"

enum {
	UDPASSOC_FRAME_TYPE = 0x5A, /* beside KCP's 0x51..0x54 and path frames' 0x58/0x59 */
	UDPASSOC_FRAME_HDR = 12,
	/* The most an RFC 1928 UDP header takes: RSV FRAG ATYP, a 255-byte
	 * name with its length byte, the port. */
	UDPASSOC_SOCKS_HDR_MAX = 4 + 1 + 255 + 2,
};

/* Why a datagram was dropped: one counter each, in both daemons. */
enum udpassoc_drop {
	UDPASSOC_DROP_TRUNCATED, /* the datagram ends inside its SOCKS5 header */
	UDPASSOC_DROP_BAD_ATYP,  /* ATYP not 1, 3 or 4 */
	UDPASSOC_DROP_BAD_HDR,   /* RSV not zero, an empty or bad name */
	UDPASSOC_DROP_FRAG,      /* FRAG != 0: fragments are not served */
	UDPASSOC_DROP_STRANGER,  /* from an address that does not own the association */
	UDPASSOC_DROP_OVERSIZE,  /* does not fit one envelope (or the relay buffer) */
	UDPASSOC_DROP_RATE,      /* over the association's datagrams per second */
	UDPASSOC_DROP_QUEUE,     /* waiting for a name lookup beyond the byte bound */
	UDPASSOC_DROP_POLICY,    /* the destination policy refused the address */
	UDPASSOC_DROP_RESOLVE,   /* the name did not resolve */
	UDPASSOC_DROP_NO_ASSOC,  /* no such association (ended, or never opened) */
	UDPASSOC_DROP_SEND,      /* the socket refused it (full buffer, error) */
	UDPASSOC_DROP_REASONS
};

struct udpassoc_counters {
	uint64_t opened, closed, refused; /* associations */
	uint64_t up, down;                /* datagrams towards destinations, towards clients */
	uint64_t bytes_up, bytes_down;    /* their data bytes (SOCKS5 headers excluded) */
	uint64_t drops[UDPASSOC_DROP_REASONS];
	uint64_t active;       /* associations open now (a gauge) */
	uint64_t queued_bytes; /* bytes waiting for name lookups now (a gauge) */
};

/* udpassoc_frame_write writes a datagram frame for conv and id around the
 * n bytes at p (a SOCKS5 UDP header and data, not checked here). Returns
 * its length UDPASSOC_FRAME_HDR + n, or KS_ERR_FULL when cap is too small. */
KS_MUST_CHECK ssize_t udpassoc_frame_write(uint8_t *out, size_t cap, uint32_t conv, uint32_t id,
                                           const uint8_t *p, size_t n);

/* udpassoc_is_frame says whether an opened payload is a datagram frame
 * (by its type byte; KCP and path frames never have it). */
bool udpassoc_is_frame(const uint8_t *p, size_t len);

/* udpassoc_frame_read checks a datagram frame of session conv: length,
 * conv, type, zero bytes. Returns 0 with *id and the view *body (valid as
 * long as p), or KS_ERR_PROTO (nothing written). */
KS_MUST_CHECK int udpassoc_frame_read(const uint8_t *p, size_t len, uint32_t conv, uint32_t *id,
                                      const uint8_t **body, size_t *body_len);

/* udpassoc_max_frame is the largest frame body (SOCKS5 header and data)
 * a session of this mtu carries in one envelope. */
size_t udpassoc_max_frame(uint16_t mtu);

/* udpassoc_check parses the SOCKS5 UDP header at the front of a datagram
 * and says whether it may be relayed: 0 with *h filled (h->data a view
 * into p), or KS_ERR_PROTO with *why set (truncated, ATYP, other header
 * faults, FRAG != 0). */
KS_MUST_CHECK int udpassoc_check(const uint8_t *p, size_t len, struct socks5_udp_header *h,
                                 enum udpassoc_drop *why);

/* A token bucket of datagrams: rate per second, a burst of one second's
 * worth. Zero-initialise; rate 0 means unlimited. */
struct udpassoc_bucket {
	uint64_t milli; /* tokens x 1000 */
	uint64_t last;  /* ms of the last refill */
	bool started;
};

/* udpassoc_bucket_take takes one token at now (ms, never decreasing),
 * returning false when there is none (drop the datagram). */
bool udpassoc_bucket_take(struct udpassoc_bucket *b, uint32_t rate, uint64_t now);

/* udpassoc_drop_label names a reason as a metric label value ("stranger");
 * "unknown" when out of range. */
const char *udpassoc_drop_label(enum udpassoc_drop r);

#endif
