/* udpexit.c - kcpsocks-server's UDP associations (see udpexit.h;
 * docs/PROTOCOL.md (UDP) U6). */
#include "server/udpexit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/resolver.h"

enum {
	UDPEXIT_BUCKETS = 1024,
	UDPEXIT_CACHE = 4,        /* names remembered per association */
	UDPEXIT_CACHE_MS = 30000, /* how long a looked-up address is used */
	UDPEXIT_READ_BUDGET = 64, /* datagrams read per socket wakeup */
	UDPEXIT_RECV_MAX = 65536, /* a UDP datagram */
};

struct uassoc;

/* A datagram waiting for its name (the body as it came, re-parsed). */
struct waiting {
	struct waiting *next;
	size_t len;
	uint8_t body[];
};

struct lookup {
	struct uassoc *a;         /* borrowed: the owner */
	struct resolver_query *q; /* NULL: slot free */
	char name[256];
};

struct cached {
	char name[256];
	struct sockaddr_storage addr; /* port 0 */
	uint64_t until;               /* 0: empty */
};

struct uassoc {
	struct udpexit *u; /* borrowed */
	uint64_t sid;
	uint32_t id;
	int fd[2]; /* IPv4, IPv6; -1 until needed */
	ev_io io[2];
	ev_timer idle;
	uint64_t last; /* ms of the last datagram either way */
	struct udpassoc_bucket up, down;
	struct waiting *wq, **wq_tail;
	size_t wq_bytes;
	struct lookup look[UDP_SERVER_LOOKUPS_MAX];
	struct cached cache[UDPEXIT_CACHE];
	size_t cache_next;
	struct uassoc *next; /* hash chain */
};

struct udpexit {
	struct udpexit_ops ops;
	struct udpexit_limits lim;
	struct udpassoc_counters c;
	struct uassoc *bucket[UDPEXIT_BUCKETS];
	uint8_t rbuf[UDPASSOC_SOCKS_HDR_MAX + UDPEXIT_RECV_MAX];
};

static void drop(struct udpexit *u, enum udpassoc_drop why) { u->c.drops[why]++; }

static struct uassoc **slot(struct udpexit *u, uint64_t sid, uint32_t id)
{
	struct uassoc **pp = &u->bucket[(sid ^ sid >> 20 ^ id * 2654435761u) % UDPEXIT_BUCKETS];

	while (*pp && ((*pp)->sid != sid || (*pp)->id != id))
		pp = &(*pp)->next;
	return pp;
}

static struct uassoc *find(const struct udpexit *u, uint64_t sid, uint32_t id)
{
	return *slot((struct udpexit *)u, sid, id);
}

/* --- life cycle ---------------------------------------------------------------- */

struct udpexit *udpexit_new(const struct udpexit_ops *ops, const struct udpexit_limits *lim)
{
	struct udpexit *u = calloc(1, sizeof *u);

	if (!u)
		return NULL;
	u->ops = *ops;
	u->lim = *lim;
	return u;
}

void udpexit_set_limits(struct udpexit *u, const struct udpexit_limits *lim) { u->lim = *lim; }

static size_t session_count(const struct udpexit *u, uint64_t sid)
{
	size_t n = 0;

	for (size_t i = 0; i < UDPEXIT_BUCKETS; i++)
		for (const struct uassoc *a = u->bucket[i]; a; a = a->next)
			n += a->sid == sid;
	return n;
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents);

int udpexit_open(struct udpexit *u, uint64_t sid, uint32_t id, uint64_t now)
{
	struct uassoc **pp = slot(u, sid, id), *a;

	if (*pp)
		return KS_ERR_STATE;
	u->c.refused++; /* until it is made */
	if (u->lim.per_session == 0)
		return KS_ERR_UNSUPPORTED;
	if (session_count(u, sid) >= u->lim.per_session)
		return KS_ERR_LIMIT;
	a = calloc(1, sizeof *a);
	if (!a)
		return KS_ERR_NOMEM;
	u->c.refused--;
	a->u = u;
	a->sid = sid;
	a->id = id;
	a->fd[0] = a->fd[1] = -1;
	a->last = now;
	a->wq_tail = &a->wq;
	for (size_t i = 0; i < UDP_SERVER_LOOKUPS_MAX; i++)
		a->look[i].a = a;
	ev_timer_init(&a->idle, on_idle, u->lim.idle_ms / 1000.0, u->lim.idle_ms / 1000.0);
	a->idle.data = a;
	ev_timer_start(u->ops.loop, &a->idle);
	*pp = a;
	u->c.opened++;
	u->c.active++;
	log_debug("udp association %016llx/%u opened", (unsigned long long)sid, id);
	return 0;
}

bool udpexit_has(const struct udpexit *u, uint64_t sid, uint32_t id)
{
	return find(u, sid, id) != NULL;
}

static void assoc_free(struct udpexit *u, struct uassoc *a)
{
	for (int f = 0; f < 2; f++)
		if (a->fd[f] >= 0) {
			ev_io_stop(u->ops.loop, &a->io[f]);
			close(a->fd[f]);
		}
	ev_timer_stop(u->ops.loop, &a->idle);
	for (size_t i = 0; i < UDP_SERVER_LOOKUPS_MAX; i++)
		resolver_cancel(a->look[i].q);
	while (a->wq) {
		struct waiting *w = a->wq;

		a->wq = w->next;
		free(w);
	}
	u->c.queued_bytes -= a->wq_bytes;
	u->c.closed++;
	u->c.active--;
	log_debug("udp association %016llx/%u closed", (unsigned long long)a->sid, a->id);
	free(a);
}

void udpexit_close(struct udpexit *u, uint64_t sid, uint32_t id)
{
	struct uassoc **pp = slot(u, sid, id), *a = *pp;

	if (!a)
		return;
	*pp = a->next;
	assoc_free(u, a);
}

void udpexit_close_session(struct udpexit *u, uint64_t sid)
{
	for (size_t i = 0; i < UDPEXIT_BUCKETS; i++) {
		struct uassoc **pp = &u->bucket[i];

		while (*pp) {
			struct uassoc *a = *pp;

			if (a->sid != sid) {
				pp = &a->next;
				continue;
			}
			*pp = a->next;
			assoc_free(u, a);
		}
	}
}

void udpexit_free(struct udpexit *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < UDPEXIT_BUCKETS; i++)
		while (u->bucket[i]) {
			struct uassoc *a = u->bucket[i];

			u->bucket[i] = a->next;
			assoc_free(u, a);
		}
	free(u);
}

const struct udpassoc_counters *udpexit_counters(struct udpexit *u) { return &u->c; }

/* An association with no datagram either way for idle_ms ends; the owner
 * resets its stream, so the client's control connection closes too. */
static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct uassoc *a = w->data;
	struct udpexit *u = a->u;
	uint64_t now = clock_mono_ms(), sid = a->sid;
	uint32_t id = a->id;

	(void)loop, (void)revents;
	if (now - a->last < u->lim.idle_ms) {
		w->repeat = (double)(u->lim.idle_ms - (now - a->last)) / 1000.0;
		ev_timer_again(u->ops.loop, w);
		return;
	}
	log_debug("udp association %016llx/%u: idle for %u ms", (unsigned long long)sid, id,
	          u->lim.idle_ms);
	udpexit_close(u, sid, id);
	u->ops.ended(sid, id, u->ops.ctx);
}

/* --- replies: destination -> client ----------------------------------------------- */

/* The SOCKS5 address of a reply's source; an IPv4-mapped IPv6 source is
 * written as IPv4, as the application sent to it. */
static void source_addr(const struct sockaddr_storage *ss, struct socks5_addr *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		socks5_addr_ipv4(out, (const uint8_t *)&a->sin_addr, ntohs(a->sin_port));
		return;
	}
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

	if (memcmp(a6->sin6_addr.s6_addr, mapped, 12) == 0)
		socks5_addr_ipv4(out, a6->sin6_addr.s6_addr + 12, ntohs(a6->sin6_port));
	else
		socks5_addr_ipv6(out, a6->sin6_addr.s6_addr, ntohs(a6->sin6_port));
}

static void reply(struct uassoc *a, const struct sockaddr_storage *from, size_t n, uint64_t now)
{
	struct udpexit *u = a->u;
	uint8_t *data = u->rbuf + UDPASSOC_SOCKS_HDR_MAX;
	struct socks5_addr src;
	uint8_t hdr[UDPASSOC_SOCKS_HDR_MAX];
	ssize_t h;
	int rc;

	if (!u->ops.allowed(from, u->ops.ctx)) {
		drop(u, UDPASSOC_DROP_POLICY);
		return;
	}
	if (!udpassoc_bucket_take(&a->down, u->lim.rate, now)) {
		drop(u, UDPASSOC_DROP_RATE);
		return;
	}
	source_addr(from, &src);
	h = socks5_encode_udp_header(hdr, sizeof hdr, 0, &src);
	if (h < 0) {
		drop(u, UDPASSOC_DROP_BAD_HDR);
		return;
	}
	/* The header goes right in front of the data: one contiguous body. */
	memcpy(data - h, hdr, (size_t)h);
	rc = u->ops.send(a->sid, a->id, data - h, (size_t)h + n, u->ops.ctx);
	if (rc != 0) {
		drop(u, rc == KS_ERR_TOOBIG ? UDPASSOC_DROP_OVERSIZE : UDPASSOC_DROP_SEND);
		return;
	}
	a->last = now;
	u->c.down++;
	u->c.bytes_down += n;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct uassoc *a = w->data;
	struct udpexit *u = a->u;
	uint64_t sid = a->sid;
	uint32_t id = a->id;

	(void)loop, (void)revents;
	for (int i = 0; i < UDPEXIT_READ_BUDGET; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(w->fd, u->rbuf + UDPASSOC_SOCKS_HDR_MAX, UDPEXIT_RECV_MAX, 0,
		                     (struct sockaddr *)&from, &fl);

		if (n < 0)
			break;
		reply(a, &from, (size_t)n, clock_mono_ms());
		/* send may not end the association, but stay safe. */
		if (find(u, sid, id) != a)
			return;
	}
}

/* --- datagrams: client -> destination --------------------------------------------- */

static int sock_for(struct uassoc *a, int family)
{
	int f = family == AF_INET ? 0 : 1;
	int fd;

	if (a->fd[f] >= 0)
		return a->fd[f];
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_limited(LOG_LEVEL_WARN, "udp association socket: %s", strerror(errno));
		return -1;
	}
	/* Bursts wait in the kernel, not lost there (best effort: capped
	 * by net.core.rmem_max). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ UDP_ASSOC_RCVBUF }, sizeof(int));
	a->fd[f] = fd;
	ev_io_init(&a->io[f], on_readable, fd, EV_READ);
	a->io[f].data = a;
	ev_io_start(a->u->ops.loop, &a->io[f]);
	return fd;
}

static void send_to(struct uassoc *a, struct sockaddr_storage *to, const uint8_t *p, size_t n,
                    uint64_t now)
{
	struct udpexit *u = a->u;
	int fd;

	if (!u->ops.allowed(to, u->ops.ctx)) {
		drop(u, UDPASSOC_DROP_POLICY);
		return;
	}
	fd = sock_for(a, to->ss_family);
	if (fd < 0 ||
	    sendto(fd, p, n, 0, (struct sockaddr *)to,
	           to->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                    : sizeof(struct sockaddr_in6)) != (ssize_t)n) {
		drop(u, UDPASSOC_DROP_SEND);
		return;
	}
	a->last = now;
	u->c.up++;
	u->c.bytes_up += n;
}

static const struct cached *cache_find(struct uassoc *a, const char *name, uint64_t now)
{
	for (size_t i = 0; i < UDPEXIT_CACHE; i++)
		if (a->cache[i].until > now && strcmp(a->cache[i].name, name) == 0)
			return &a->cache[i];
	return NULL;
}

static void with_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The queued datagrams for name: sent to addr (NULL: the name failed). */
static void flush_waiting(struct uassoc *a, const char *name, const struct sockaddr_storage *addr,
                          uint64_t now)
{
	struct waiting **pp = &a->wq;

	while (*pp) {
		struct waiting *w = *pp;
		struct socks5_udp_header h;
		enum udpassoc_drop why;

		if (udpassoc_check(w->body, w->len, &h, &why) != 0 ||
		    strcmp(h.dst.domain, name) != 0) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		a->wq_bytes -= w->len;
		a->u->c.queued_bytes -= w->len;
		if (addr) {
			struct sockaddr_storage to = *addr;

			with_port(&to, h.dst.port);
			send_to(a, &to, h.data, h.data_len, now);
		} else
			drop(a->u, UDPASSOC_DROP_RESOLVE);
		free(w);
	}
	a->wq_tail = &a->wq;
	for (struct waiting *w = a->wq; w; w = w->next)
		a->wq_tail = &w->next;
}

/* The destination port of the first datagram waiting for name. */
static uint16_t first_port(const struct uassoc *a, const char *name)
{
	for (const struct waiting *w = a->wq; w; w = w->next) {
		struct socks5_udp_header h;
		enum udpassoc_drop why;

		if (udpassoc_check(w->body, w->len, &h, &why) == 0 &&
		    strcmp(h.dst.domain, name) == 0)
			return h.dst.port;
	}
	return 0;
}

static void on_resolved(const struct resolver_result *res, void *arg)
{
	struct lookup *l = arg;
	struct uassoc *a = l->a;
	struct udpexit *u = a->u;
	uint64_t now = clock_mono_ms();
	const struct sockaddr_storage *pick = NULL;
	char name[sizeof l->name];

	l->q = NULL;
	memcpy(name, l->name, sizeof name);
	/* The first address the policy allows for the port of the first
	 * datagram waiting (send_to checks each datagram's own port again). */
	uint16_t port = first_port(a, name);

	for (size_t i = 0; res->status == RESOLVER_OK && i < res->n && !pick; i++) {
		struct sockaddr_storage t = res->addrs[i];

		with_port(&t, port);
		if (u->ops.allowed(&t, u->ops.ctx))
			pick = &res->addrs[i];
	}
	if (res->status == RESOLVER_OK && !pick && res->n > 0)
		pick = &res->addrs[0]; /* send_to refuses it, counted as policy */
	if (pick) {
		struct cached *c = &a->cache[a->cache_next++ % UDPEXIT_CACHE];

		memcpy(c->name, name, sizeof c->name);
		c->addr = *pick;
		with_port(&c->addr, 0);
		c->until = now + UDPEXIT_CACHE_MS;
	}
	flush_waiting(a, name, pick, now);
}

static void wait_for_name(struct uassoc *a, const struct socks5_udp_header *h, const uint8_t *p,
                          size_t n)
{
	struct udpexit *u = a->u;
	struct lookup *free_slot = NULL;
	struct waiting *w;
	bool asked = false;

	if (a->wq_bytes + n > u->lim.queue_bytes) {
		drop(u, UDPASSOC_DROP_QUEUE);
		return;
	}
	for (size_t i = 0; i < UDP_SERVER_LOOKUPS_MAX; i++) {
		if (a->look[i].q && strcmp(a->look[i].name, h->dst.domain) == 0)
			asked = true;
		else if (!a->look[i].q && !free_slot)
			free_slot = &a->look[i];
	}
	if (!asked) {
		struct resolver_cb cb = { on_resolved, free_slot };

		if (!free_slot) {
			drop(u, UDPASSOC_DROP_QUEUE);
			return;
		}
		snprintf(free_slot->name, sizeof free_slot->name, "%s", h->dst.domain);
		if (resolver_resolve(u->ops.res, h->dst.domain, 0, RESOLVER_ANY, &cb,
		                     &free_slot->q) != 0) {
			free_slot->q = NULL;
			drop(u, UDPASSOC_DROP_RESOLVE);
			return;
		}
	}
	w = malloc(sizeof *w + n);
	if (!w) {
		drop(u, UDPASSOC_DROP_QUEUE);
		return;
	}
	w->next = NULL;
	w->len = n;
	memcpy(w->body, p, n);
	*a->wq_tail = w;
	a->wq_tail = &w->next;
	a->wq_bytes += n;
	u->c.queued_bytes += n;
}

void udpexit_on_frame(struct udpexit *u, uint64_t sid, uint32_t id, const uint8_t *p, size_t n,
                      uint64_t now)
{
	struct uassoc *a = find(u, sid, id);
	struct socks5_udp_header h;
	enum udpassoc_drop why;
	struct sockaddr_storage to;

	if (!a) {
		drop(u, UDPASSOC_DROP_NO_ASSOC);
		return;
	}
	if (udpassoc_check(p, n, &h, &why) != 0) {
		drop(u, why);
		return;
	}
	if (!udpassoc_bucket_take(&a->up, u->lim.rate, now)) {
		drop(u, UDPASSOC_DROP_RATE);
		return;
	}
	memset(&to, 0, sizeof to);
	switch (h.dst.type) {
	case SOCKS5_ATYP_IPV4: {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, h.dst.ipv4, 4);
		break;
	}
	case SOCKS5_ATYP_IPV6: {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, h.dst.ipv6, 16);
		break;
	}
	default: {
		const struct cached *c = cache_find(a, h.dst.domain, now);

		if (!c) {
			wait_for_name(a, &h, p, n);
			return;
		}
		to = c->addr;
		break;
	}
	}
	with_port(&to, h.dst.port);
	send_to(a, &to, h.data, h.data_len, now);
}
