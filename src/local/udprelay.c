/* udprelay.c - one UDP association's relay socket in kcpsocks-local (see
 * udprelay.h; docs/PROTOCOL.md (UDP) U5). */
#include "local/udprelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "base/limits.h"
#include "io/addr.h"
#include "io/clock.h"

enum {
	UDPRELAY_READ_BUDGET = 64, /* datagrams read per wakeup */
	UDPRELAY_RECV_MAX = 65536,
};

/* An address reduced to what identifies a host: IPv4-mapped IPv6 is the
 * IPv4 address, so a client seen on a dual-stack listener matches. */
struct host {
	bool v4;
	uint8_t a[16];
	uint16_t port;
};

struct udprelay {
	struct udprelay_ops ops;
	int fd;
	ev_io io;
	uint32_t id;
	bool started;
	struct host client;                /* port 0 until known */
	struct sockaddr_storage client_sa; /* where replies go, once the port is known */
	struct udpassoc_bucket rate;
	uint8_t buf[UDPRELAY_RECV_MAX];
};

static void host_of(const struct sockaddr_storage *ss, struct host *h)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(h, 0, sizeof *h);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		h->v4 = true;
		memcpy(h->a, &a->sin_addr, 4);
		h->port = ntohs(a->sin_port);
		return;
	}
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

	h->port = ntohs(a6->sin6_port);
	if (memcmp(a6->sin6_addr.s6_addr, mapped, 12) == 0) {
		h->v4 = true;
		memcpy(h->a, a6->sin6_addr.s6_addr + 12, 4);
	} else
		memcpy(h->a, a6->sin6_addr.s6_addr, 16);
}

/* The sockaddr the relay socket sends to for h (its family is the
 * socket's: IPv4 for an IPv4 or IPv4-mapped client). */
static void sa_of(const struct host *h, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (h->v4) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, h->a, 4);
		a->sin_port = htons(h->port);
		return;
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	memcpy(&a6->sin6_addr, h->a, 16);
	a6->sin6_port = htons(h->port);
}

static void drop(struct udprelay *r, enum udpassoc_drop why) { r->ops.c->drops[why]++; }

/* U5: from the application. */
static void from_app(struct udprelay *r, const struct sockaddr_storage *from, size_t n)
{
	struct socks5_udp_header h;
	enum udpassoc_drop why;
	struct host src;
	int rc;

	host_of(from, &src);
	if (src.v4 != r->client.v4 || memcmp(src.a, r->client.a, 16) != 0 ||
	    (r->client.port && src.port != r->client.port)) {
		drop(r, UDPASSOC_DROP_STRANGER);
		return;
	}
	if (udpassoc_check(r->buf, n, &h, &why) != 0) {
		drop(r, why);
		return;
	}
	if (!r->started) {
		drop(r, UDPASSOC_DROP_NO_ASSOC);
		return;
	}
	if (!udpassoc_bucket_take(&r->rate, r->ops.rate, clock_mono_ms())) {
		drop(r, UDPASSOC_DROP_RATE);
		return;
	}
	if (!r->client.port) { /* the port is known from now on */
		r->client.port = src.port;
		r->client_sa = *from;
	}
	rc = r->ops.send(r->id, r->buf, n, r->ops.ctx);
	if (rc != 0) {
		drop(r, rc == KS_ERR_TOOBIG ? UDPASSOC_DROP_OVERSIZE : UDPASSOC_DROP_SEND);
		return;
	}
	r->ops.c->up++;
	r->ops.c->bytes_up += h.data_len;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udprelay *r = w->data;

	(void)loop, (void)revents;
	for (int i = 0; i < UDPRELAY_READ_BUDGET; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(r->fd, r->buf, sizeof r->buf, MSG_TRUNC,
		                     (struct sockaddr *)&from, &fl);

		if (n < 0)
			break;
		if ((size_t)n > sizeof r->buf) {
			drop(r, UDPASSOC_DROP_OVERSIZE);
			continue;
		}
		from_app(r, &from, (size_t)n);
	}
}

void udprelay_on_frame(struct udprelay *r, const uint8_t *p, size_t n)
{
	struct socks5_udp_header h;
	enum udpassoc_drop why;

	if (udpassoc_check(p, n, &h, &why) != 0) {
		drop(r, why);
		return;
	}
	/* No datagram from the application yet: nowhere to send. */
	if (!r->client.port) {
		drop(r, UDPASSOC_DROP_NO_ASSOC);
		return;
	}
	if (sendto(r->fd, p, n, 0, (const struct sockaddr *)&r->client_sa,
	           addr_len(&r->client_sa)) != (ssize_t)n) {
		drop(r, UDPASSOC_DROP_SEND);
		return;
	}
	r->ops.c->down++;
	r->ops.c->bytes_down += h.data_len;
}

static int open_socket(struct udprelay *r, const struct sockaddr_storage *ctl_local,
                       struct socks5_addr *bnd, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	struct host h;
	char text[ADDR_TEXT_MAX];

	/* A client on a dual-stack listener talks IPv4: the relay is an IPv4
	 * socket on that IPv4 address, and BND says IPv4. */
	host_of(ctl_local, &h);
	memset(&sa, 0, sizeof sa);
	if (h.v4) {
		struct sockaddr_in *a = (struct sockaddr_in *)&sa;

		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, h.a, 4);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;

		*a = *(const struct sockaddr_in6 *)ctl_local;
		a->sin6_port = 0;
	}
	r->fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, addr_len(&sa)) != 0 ||
	    getsockname(r->fd, (struct sockaddr *)&sa, &sl) != 0) {
		errbuf_set(err, errlen, "udp relay socket on %s: %s", addr_format(&sa, text),
		           strerror(errno));
		return -1;
	}
	/* Bursts wait in the kernel (best effort: capped by rmem_max). */
	(void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &(int){ UDP_ASSOC_RCVBUF }, sizeof(int));
	host_of(&sa, &h);
	if (h.v4)
		socks5_addr_ipv4(bnd, h.a, h.port);
	else
		socks5_addr_ipv6(bnd, h.a, h.port);
	return 0;
}

struct udprelay *udprelay_new(const struct udprelay_ops *ops,
                              const struct sockaddr_storage *ctl_local,
                              const struct sockaddr_storage *client, uint16_t want_port,
                              struct socks5_addr *bnd, char *err, size_t errlen)
{
	struct udprelay *r = calloc(1, sizeof *r);

	if (!r) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	r->ops = *ops;
	r->fd = -1;
	if (open_socket(r, ctl_local, bnd, err, errlen) != 0) {
		if (r->fd >= 0)
			close(r->fd);
		free(r);
		return NULL;
	}
	host_of(client, &r->client);
	r->client.port = want_port;
	sa_of(&r->client, &r->client_sa);
	ev_io_init(&r->io, on_readable, r->fd, EV_READ);
	r->io.data = r;
	ev_io_start(r->ops.loop, &r->io);
	r->ops.c->opened++;
	r->ops.c->active++;
	return r;
}

void udprelay_start(struct udprelay *r, uint32_t id)
{
	r->id = id;
	r->started = true;
}

void udprelay_free(struct udprelay *r)
{
	if (!r)
		return;
	ev_io_stop(r->ops.loop, &r->io);
	close(r->fd);
	r->ops.c->closed++;
	r->ops.c->active--;
	free(r);
}
