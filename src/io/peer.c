/* peer.c - one UDP socket of a daemon (see peer.h). */
#include "io/peer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "io/addr.h"

struct peer {
	int fd;             /* owned */
	struct udp_rx *rx;  /* owned */
	struct udp_tx *tx;  /* owned: the bulk lane */
	struct udp_tx *urg; /* owned: the urgent lane, PEER_URGENT_MAX slots */
	bool urgent;        /* peer_lane: new datagrams go to urg while it has room */
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
	p->urg = udp_tx_new(p->fd, PEER_URGENT_MAX);
	if (!p->rx || !p->tx || !p->urg) {
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
	udp_tx_free(p->urg);
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

void peer_lane(struct peer *p, enum peer_lane lane) { p->urgent = lane == PEER_LANE_URGENT; }

/* urgent_slot: the urgent lane's free slot, when the lane is urgent and
 * the urgent queue has room. It never flushes on its own: a full urgent
 * queue sends its overflow down the bulk lane instead. */
static uint8_t *urgent_slot(struct peer *p)
{
	if (!p->urgent || udp_tx_pending(p->urg) == udp_tx_capacity(p->urg))
		return NULL;
	return udp_tx_slot(p->urg);
}

uint8_t *peer_slot(struct peer *p, size_t *cap)
{
	uint8_t *slot = urgent_slot(p);

	if (!slot)
		slot = udp_tx_slot(p->tx);
	*cap = slot ? UDP_DATAGRAM_MAX : 0;
	return slot;
}

int peer_send(struct peer *p, const uint8_t *d, size_t len, const struct sockaddr_storage *to)
{
	uint8_t *u = urgent_slot(p);

	/* Sealed in place (peer_slot): no copy. */
	if (d && u && d == u)
		return udp_tx_commit(p->urg, len, to);
	if (d && d == udp_tx_slot(p->tx))
		return udp_tx_commit(p->tx, len, to);
	if (u && len > 0 && len <= UDP_DATAGRAM_MAX) {
		memcpy(u, d, len);
		return udp_tx_commit(p->urg, len, to);
	}
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
	if (!p)
		return 0;
	/* The urgent lane first: at most PEER_URGENT_MAX datagrams (its
	 * capacity) go ahead of the bulk queue per flush. */
	if (udp_tx_pending(p->urg) > 0 && udp_tx_flush(p->urg) == KS_ERR_AGAIN)
		return KS_ERR_AGAIN;
	if (udp_tx_pending(p->tx) == 0)
		return 0;
	return udp_tx_flush(p->tx) == KS_ERR_AGAIN ? KS_ERR_AGAIN : 0;
}

size_t peer_pending(const struct peer *p) { return udp_tx_pending(p->tx) + udp_tx_pending(p->urg); }

void peer_stats(const struct peer *p, struct peer_stats *st)
{
	const struct udp_tx_stats *b = udp_tx_stats(p->tx), *u = udp_tx_stats(p->urg);
	struct udp_tx_stats *sum = &st->tx;

	sum->queued = b->queued + u->queued;
	sum->sent = b->sent + u->sent;
	sum->bytes = b->bytes + u->bytes;
	sum->calls = b->calls + u->calls;
	sum->gso_messages = b->gso_messages + u->gso_messages;
	sum->full_drops = b->full_drops + u->full_drops;
	sum->errors = b->errors + u->errors;
	sum->blocked = b->blocked + u->blocked;
	st->rx = udp_rx_stats(p->rx);
	st->urgent_sent = u->sent;
}

int peer_local_addr(const struct peer *p, struct sockaddr_storage *out)
{
	return udp_local_addr(p->fd, out);
}
