/* peer.c - one UDP socket of a daemon (see peer.h). */
#include "io/peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "io/addr.h"

struct peer {
	int fd;            /* owned */
	struct udp_rx *rx; /* owned */
	struct udp_tx *tx; /* owned */
};

struct peer *peer_new(const struct sockaddr_storage *bind_addr, char *err, size_t errlen)
{
	struct udp_opts uo = udp_opts_default();
	struct peer *p = calloc(1, sizeof *p);

	if (!p) {
		errbuf_set(err, errlen, "udp: out of memory");
		return NULL;
	}
	p->fd = udp_open(bind_addr, &uo, NULL, err, errlen);
	if (p->fd < 0) {
		free(p);
		return NULL;
	}
	p->rx = udp_rx_new();
	p->tx = udp_tx_new(p->fd, 0);
	if (!p->rx || !p->tx) {
		errbuf_set(err, errlen, "udp: out of memory");
		peer_free(p);
		return NULL;
	}
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	udp_rx_free(p->rx);
	udp_tx_free(p->tx);
	close(p->fd);
	free(p);
}

int peer_fd(const struct peer *p) { return p->fd; }

ssize_t peer_read(struct peer *p)
{
	ssize_t n = udp_rx_read(p->rx, p->fd);

	return n < 0 ? KS_ERR_IO : n;
}

const struct udp_dgram *peer_dgram(const struct peer *p, size_t i) { return udp_rx_get(p->rx, i); }

uint8_t *peer_slot(struct peer *p, size_t *cap)
{
	uint8_t *slot = udp_tx_slot(p->tx);

	*cap = slot ? UDP_DATAGRAM_MAX : 0;
	return slot;
}

int peer_send(struct peer *p, const uint8_t *d, size_t len, const struct sockaddr_storage *to)
{
	/* Sealed in place (peer_slot): no copy. */
	if (d && d == udp_tx_slot(p->tx))
		return udp_tx_commit(p->tx, len, to);
	return udp_tx_queue(p->tx, d, len, to);
}

int peer_connect(struct peer *p, const struct sockaddr_storage *to, char *err, size_t errlen)
{
	char a[ADDR_TEXT_MAX];

	if (connect(p->fd, (const struct sockaddr *)to, addr_len(to)) != 0) {
		errbuf_set(err, errlen, "connect udp %s: %s", addr_format(to, a), strerror(errno));
		return KS_ERR_IO;
	}
	return 0;
}

int peer_flush(struct peer *p)
{
	if (!p || udp_tx_pending(p->tx) == 0)
		return 0;
	return udp_tx_flush(p->tx) == KS_ERR_AGAIN ? KS_ERR_AGAIN : 0;
}

size_t peer_pending(const struct peer *p) { return udp_tx_pending(p->tx); }

void peer_stats(const struct peer *p, struct peer_stats *st)
{
	st->rx = udp_rx_stats(p->rx);
	st->tx = udp_tx_stats(p->tx);
}

int peer_local_addr(const struct peer *p, struct sockaddr_storage *out)
{
	return udp_local_addr(p->fd, out);
}
