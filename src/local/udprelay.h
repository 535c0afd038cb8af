/* udprelay.h - kcpsocks-local's side of one UDP association
 * (docs/PROTOCOL.md (UDP) U4, U5): the UDP socket the application sends
 * its RFC 1928 section 7 datagrams to, bound on the control connection's
 * local address. Datagrams are taken only from the control connection's
 * peer address (and port, once known), checked, rate-limited and handed
 * to ops->send as frame bodies; frame bodies from the server are checked
 * and sent to the application. Its owner (client.c) ties it to the
 * control connection and frees it when that closes. */
#ifndef KCPSOCKS_UDPRELAY_H
#define KCPSOCKS_UDPRELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/socks5.h"
#include "core/udpassoc.h"

struct ev_loop;

struct udprelay_ops {
	struct ev_loop *loop; /* borrowed */
	/* send: one frame body into the session for association id; 0 or a
	 * KS_ERR_* (KS_ERR_TOOBIG: oversize; anything else: send). */
	int (*send)(uint32_t id, const uint8_t *p, size_t n, void *ctx);
	void *ctx;
	struct udpassoc_counters *c; /* borrowed: the daemon's counters */
	uint32_t rate;               /* datagrams/s, 0: unlimited */
};

struct udprelay;

/* udprelay_new opens the relay socket on ctl_local's address (port chosen
 * by the system) for the application at client; want_port is the port
 * the UDP ASSOCIATE request named (0: learn it from the first datagram).
 * *bnd gets the address to give in the reply. NULL on failure, with a
 * message in err. */
struct udprelay *udprelay_new(const struct udprelay_ops *ops,
                              const struct sockaddr_storage *ctl_local,
                              const struct sockaddr_storage *client, uint16_t want_port,
                              struct socks5_addr *bnd, char *err, size_t errlen);

/* udprelay_start: the association id is known (the stream is open and
 * the server agreed); datagrams flow from now on. */
void udprelay_start(struct udprelay *r, uint32_t id);

/* udprelay_on_frame sends one frame body from the server (a SOCKS5 UDP
 * header with the reply's source, then data) to the application, or drops
 * it (counted). */
void udprelay_on_frame(struct udprelay *r, const uint8_t *p, size_t n);

/* udprelay_free closes the socket. NULL is a no-op. */
void udprelay_free(struct udprelay *r);

#endif
