/* peer.c - the UDP side of a daemon (see peer.h). */
#include "io/peer.h"

#include <errno.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/addr.h"
#include "io/clock.h"
#include "io/log.h"

struct peer {
	struct ev_loop *loop; /* borrowed */
	struct peer_cb cb;
	int fd;            /* owned */
	struct udp_rx *rx; /* owned */
	struct udp_tx *tx; /* owned */
	ev_io rio, wio;
	ev_prepare prep;
	ev_timer timer;
	uint64_t timer_at; /* armed for (absolute ms); PEER_NEVER: stopped */
	uint64_t timer_fires;
};

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer *p = w->data;
	ssize_t n = udp_rx_read(p->rx, p->fd);
	uint64_t now = clock_mono_ms();

	(void)loop, (void)revents;
	if (n < 0) {
		log_limited(LOG_LEVEL_ERROR, "recvmmsg: %s", strerror(errno));
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		p->cb.on_datagram(p->cb.arg, udp_rx_get(p->rx, (size_t)i), now);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer *p = w->data;

	(void)revents;
	if (udp_tx_flush(p->tx) == 0)
		ev_io_stop(loop, w);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct peer *p = w->data;

	(void)loop, (void)revents;
	p->timer_fires++;
	p->timer_at = PEER_NEVER;
	p->cb.on_timer(p->cb.arg, clock_mono_ms());
}

static void arm(struct peer *p, uint64_t at, uint64_t now)
{
	if (at == p->timer_at && (at == PEER_NEVER || ev_is_active(&p->timer)))
		return;
	ev_timer_stop(p->loop, &p->timer);
	p->timer_at = at;
	if (at == PEER_NEVER)
		return;
	ev_timer_set(&p->timer, at > now ? (double)(at - now) / 1000.0 : 0.0, 0.0);
	ev_timer_start(p->loop, &p->timer);
}

/* Before the loop sleeps: the daemon's work, one flush, the timer. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct peer *p = w->data;
	uint64_t now, at;

	(void)revents;
	ev_now_update(loop); /* so the timer is not armed from a stale base */
	now = clock_mono_ms();
	at = p->cb.before_sleep(p->cb.arg, now);
	if (udp_tx_pending(p->tx) > 0 && !ev_is_active(&p->wio) &&
	    udp_tx_flush(p->tx) == KS_ERR_AGAIN)
		ev_io_start(loop, &p->wio);
	arm(p, at, now);
}

struct peer *peer_new(struct ev_loop *loop, const struct sockaddr_storage *bind_addr,
                      const struct peer_cb *cb, char *err, size_t errlen)
{
	struct udp_opts uo = udp_opts_default();
	struct peer *p = calloc(1, sizeof *p);

	if (!p) {
		snprintf(err, errlen, "udp: out of memory");
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
		snprintf(err, errlen, "udp: out of memory");
		udp_rx_free(p->rx);
		udp_tx_free(p->tx);
		close(p->fd);
		free(p);
		return NULL;
	}
	p->loop = loop;
	p->cb = *cb;
	p->timer_at = PEER_NEVER;
	ev_io_init(&p->rio, on_read, p->fd, EV_READ);
	ev_io_init(&p->wio, on_write, p->fd, EV_WRITE);
	ev_prepare_init(&p->prep, on_prepare);
	ev_timer_init(&p->timer, on_timer, 0.0, 0.0);
	p->rio.data = p->wio.data = p->prep.data = p->timer.data = p;
	ev_io_start(loop, &p->rio);
	ev_prepare_start(loop, &p->prep);
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	ev_io_stop(p->loop, &p->rio);
	ev_io_stop(p->loop, &p->wio);
	ev_prepare_stop(p->loop, &p->prep);
	ev_timer_stop(p->loop, &p->timer);
	udp_rx_free(p->rx);
	udp_tx_free(p->tx);
	close(p->fd);
	free(p);
}

int peer_send(struct peer *p, const uint8_t *d, size_t len, const struct sockaddr_storage *to)
{
	return udp_tx_queue(p->tx, d, len, to);
}

int peer_connect(struct peer *p, const struct sockaddr_storage *to, char *err, size_t errlen)
{
	char a[ADDR_TEXT_MAX];

	if (connect(p->fd, (const struct sockaddr *)to, addr_len(to)) != 0) {
		snprintf(err, errlen, "connect udp %s: %s", addr_format(to, a), strerror(errno));
		return KS_ERR_IO;
	}
	return 0;
}

void peer_flush(struct peer *p)
{
	if (p)
		(void)udp_tx_flush(p->tx);
}

void peer_stats(const struct peer *p, struct peer_stats *st)
{
	st->rx = udp_rx_stats(p->rx);
	st->tx = udp_tx_stats(p->tx);
	st->timer_fires = p->timer_fires;
}

int peer_local_addr(const struct peer *p, struct sockaddr_storage *out)
{
	return udp_local_addr(p->fd, out);
}
