/* udp.c - UDP sockets, recvmmsg and sendmmsg batches. */
#include "io/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "io/addr.h"
#include "io/log.h"

struct udp_opts udp_opts_default(void)
{
	return (struct udp_opts){ UDP_SOCKBUF_DEFAULT, UDP_SOCKBUF_DEFAULT, false };
}

/* ---- open ---- */

/* set_buf asks for bytes of buffer: the FORCE option ignores the
 * net.core.[rw]mem_max cap but needs CAP_NET_ADMIN, so it is tried first
 * and its EPERM is expected. */
static int set_buf(int fd, int force_opt, int opt, int bytes)
{
	if (bytes == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0)
		return 0;
	return setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static int get_buf(int fd, int opt)
{
	int v = 0;
	socklen_t len = sizeof v;

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0)
		return 0;
	return v / 2; /* the kernel doubles the request for its bookkeeping */
}

static int fail_io(int fd, const char *op, const struct sockaddr_storage *a, char *err,
                   size_t errlen)
{
	char text[ADDR_TEXT_MAX];
	int saved = errno;

	if (err && errlen)
		errbuf_set(err, errlen, "%s %s: %s", op, addr_format(a, text), strerror(saved));
	if (fd >= 0)
		close(fd);
	errno = saved;
	return KS_ERR_IO;
}

static bool opts_valid(const struct udp_opts *o)
{
	return o->rcvbuf >= 0 && o->rcvbuf <= UDP_SOCKBUF_MAX && o->sndbuf >= 0 &&
	       o->sndbuf <= UDP_SOCKBUF_MAX;
}

int udp_open(const struct sockaddr_storage *bind_addr, const struct udp_opts *opts,
             struct udp_granted *granted, char *err, size_t errlen)
{
	struct udp_opts def = udp_opts_default();
	socklen_t len = addr_len(bind_addr);
	int one = 1, fd;

	if (!opts)
		opts = &def;
	if (len == 0 || !opts_valid(opts)) {
		if (err && errlen)
			errbuf_set(err, errlen, "udp socket: %s",
			           len ? "buffer size out of range" : "not an IPv4/IPv6 address");
		return KS_ERR_INVAL;
	}
	fd = socket(bind_addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_io(-1, "socket for", bind_addr, err, errlen);
	if (opts->reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
		return fail_io(fd, "SO_REUSEADDR on", bind_addr, err, errlen);
	if (set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, opts->rcvbuf) != 0)
		return fail_io(fd, "SO_RCVBUF on", bind_addr, err, errlen);
	if (set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, opts->sndbuf) != 0)
		return fail_io(fd, "SO_SNDBUF on", bind_addr, err, errlen);
	if (bind(fd, (const struct sockaddr *)bind_addr, len) != 0)
		return fail_io(fd, "bind", bind_addr, err, errlen);
	if (granted) {
		granted->rcvbuf = get_buf(fd, SO_RCVBUF);
		granted->sndbuf = get_buf(fd, SO_SNDBUF);
	}
	return fd;
}

int udp_local_addr(int fd, struct sockaddr_storage *out)
{
	socklen_t len = sizeof *out;

	memset(out, 0, sizeof *out);
	if (getsockname(fd, (struct sockaddr *)out, &len) != 0)
		return KS_ERR_IO;
	return 0;
}

/* ---- receive ---- */

struct udp_rx {
	struct mmsghdr msgs[UDP_BATCH_MAX];
	struct iovec iov[UDP_BATCH_MAX];
	struct sockaddr_storage from[UDP_BATCH_MAX];
	struct udp_dgram out[UDP_BATCH_MAX]; /* the good ones, compacted */
	struct udp_rx_stats stats;
	uint8_t buf[UDP_BATCH_MAX][UDP_DATAGRAM_MAX];
};

struct udp_rx *udp_rx_new(void)
{
	struct udp_rx *rx = calloc(1, sizeof *rx);

	if (!rx)
		return NULL;
	for (size_t i = 0; i < UDP_BATCH_MAX; i++) {
		rx->iov[i] = (struct iovec){ rx->buf[i], UDP_DATAGRAM_MAX };
		rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msgs[i].msg_hdr.msg_iovlen = 1;
		rx->msgs[i].msg_hdr.msg_name = &rx->from[i];
	}
	return rx;
}

void udp_rx_free(struct udp_rx *rx) { free(rx); }

static bool fd_unusable(int e) { return e == EBADF || e == ENOTSOCK || e == EINVAL || e == EFAULT; }

ssize_t udp_rx_read(struct udp_rx *rx, int fd)
{
	size_t good = 0;
	int n;

	for (size_t i = 0; i < UDP_BATCH_MAX; i++)
		rx->msgs[i].msg_hdr.msg_namelen = sizeof rx->from[i];
	n = recvmmsg(fd, rx->msgs, UDP_BATCH_MAX, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (fd_unusable(errno))
			return KS_ERR_IO;
		if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
			rx->stats.refused++;
			return 0;
		}
		rx->stats.errors++;
		log_limited(LOG_LEVEL_WARN, "recvmmsg: %s", strerror(errno));
		return 0;
	}
	rx->stats.calls++;
	for (int i = 0; i < n; i++) {
		/* MSG_TRUNC in msg_flags: the datagram was longer than our
		 * buffer, and the tail is gone; never hand out half of one. */
		if (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			rx->stats.truncated++;
			continue;
		}
		rx->out[good++] =
		        (struct udp_dgram){ rx->buf[i], rx->msgs[i].msg_len, &rx->from[i] };
		rx->stats.bytes += rx->msgs[i].msg_len;
	}
	rx->stats.datagrams += good;
	return (ssize_t)good;
}

const struct udp_dgram *udp_rx_get(const struct udp_rx *rx, size_t i) { return &rx->out[i]; }

const struct udp_rx_stats *udp_rx_stats(const struct udp_rx *rx) { return &rx->stats; }

/* ---- send ---- */

struct tx_slot {
	uint16_t len;
	socklen_t tolen; /* 0: connected socket, no address */
	struct sockaddr_storage to;
	uint8_t data[UDP_DATAGRAM_MAX];
};

struct udp_tx {
	int fd;       /* borrowed */
	size_t cap;   /* slots */
	size_t head;  /* oldest queued slot */
	size_t count; /* queued slots */
	bool blocked; /* the last flush stopped on EAGAIN */
	bool gso;     /* group datagrams with UDP_SEGMENT (a UDP socket, kernel >= 4.18) */
	struct udp_tx_stats stats;
	struct tx_slot slots[]; /* owned, cap of them: a ring */
};

/* gso_usable: fd is a UDP socket whose kernel knows UDP_SEGMENT. Other
 * datagram sockets (AF_UNIX pairs in the tests) would ignore the control
 * message and deliver the group as one datagram, so they never get it. */
static bool gso_usable(int fd)
{
	int proto = 0, v = 0;
	socklen_t len = sizeof proto;

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0 || proto != IPPROTO_UDP)
		return false;
	len = sizeof v;
	return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
}

struct udp_tx *udp_tx_new(int fd, size_t capacity)
{
	struct udp_tx *tx;

	if (capacity == 0)
		capacity = UDP_TX_QUEUE_DEFAULT;
	if (capacity > UDP_TX_QUEUE_MAX)
		return NULL;
	tx = calloc(1, sizeof *tx + capacity * sizeof tx->slots[0]);
	if (!tx)
		return NULL;
	tx->fd = fd;
	tx->cap = capacity;
	tx->gso = gso_usable(fd);
	return tx;
}

void udp_tx_free(struct udp_tx *tx) { free(tx); }

static struct tx_slot *slot_at(struct udp_tx *tx, size_t k)
{
	return &tx->slots[(tx->head + k) % tx->cap];
}

uint8_t *udp_tx_slot(struct udp_tx *tx)
{
	if (tx->count == tx->cap && !tx->blocked)
		udp_tx_flush(tx);
	if (tx->count == tx->cap)
		return NULL;
	return slot_at(tx, tx->count)->data;
}

int udp_tx_commit(struct udp_tx *tx, size_t len, const struct sockaddr_storage *to)
{
	struct tx_slot *s;

	if (len == 0 || len > UDP_DATAGRAM_MAX || (to && addr_len(to) == 0))
		return KS_ERR_TOOBIG;
	if (tx->count == tx->cap) {
		tx->stats.full_drops++;
		return KS_ERR_FULL;
	}
	s = slot_at(tx, tx->count);
	s->len = (uint16_t)len;
	s->tolen = to ? addr_len(to) : 0;
	if (to)
		memcpy(&s->to, to, s->tolen);
	tx->count++;
	tx->stats.queued++;
	return 0;
}

int udp_tx_queue(struct udp_tx *tx, const void *data, size_t len, const struct sockaddr_storage *to)
{
	uint8_t *buf;

	if (len == 0 || len > UDP_DATAGRAM_MAX)
		return KS_ERR_TOOBIG;
	buf = udp_tx_slot(tx);
	if (!buf) {
		tx->stats.full_drops++;
		return KS_ERR_FULL;
	}
	memcpy(buf, data, len);
	return udp_tx_commit(tx, len, to);
}

static void drop_head(struct udp_tx *tx, size_t n)
{
	tx->head = (tx->head + n) % tx->cap;
	tx->count -= n;
	/* Empty: start again at slot 0. A queue that drains at each flush then
	 * reuses its first few slots instead of walking the whole ring, which
	 * made every page of it resident (capacity x 2 KiB: 2.2 MiB by default)
	 * after one long transfer: the footprint of a router. */
	if (tx->count == 0)
		tx->head = 0;
}

/* One sendmmsg call being built: each message carries one datagram, or,
 * with GSO, a run of queued datagrams to the same address, all of the
 * run's first length except a shorter last one, which the kernel cuts
 * back into datagrams of that length (UDP_SEGMENT). */
struct send_batch {
	struct mmsghdr msgs[UDP_BATCH_MAX];
	struct iovec iov[UDP_SEND_SLOTS_MAX];
	uint16_t segs[UDP_BATCH_MAX]; /* datagrams in each message */
	union {                       /* cmsg buffers, aligned as cmsghdr needs */
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[UDP_BATCH_MAX];
	size_t nmsg, nslots;
};

static bool same_dest(const struct tx_slot *a, const struct tx_slot *b)
{
	return a->tolen == b->tolen && (a->tolen == 0 || memcmp(&a->to, &b->to, a->tolen) == 0);
}

/* run_len: how many queued datagrams from slot k on one message carries. */
static size_t run_len(struct udp_tx *tx, size_t k, size_t room)
{
	struct tx_slot *first = slot_at(tx, k);
	size_t n = 1, bytes = first->len;

	if (!tx->gso)
		return 1;
	while (n < room && n < UDP_GSO_SEGMENTS_MAX && k + n < tx->count) {
		struct tx_slot *s = slot_at(tx, k + n);
		if (s->len > first->len || !same_dest(first, s) ||
		    bytes + s->len > UDP_GSO_BYTES_MAX)
			break;
		bytes += s->len;
		n++;
		if (s->len < first->len) /* only the last may be shorter */
			break;
	}
	return n;
}

static void add_message(struct send_batch *b, struct udp_tx *tx, size_t k, size_t n)
{
	struct tx_slot *first = slot_at(tx, k);
	struct msghdr *h = &b->msgs[b->nmsg].msg_hdr;

	memset(h, 0, sizeof *h);
	for (size_t i = 0; i < n; i++) {
		struct tx_slot *s = slot_at(tx, k + i);
		b->iov[b->nslots + i] = (struct iovec){ s->data, s->len };
	}
	h->msg_iov = &b->iov[b->nslots];
	h->msg_iovlen = n;
	h->msg_name = first->tolen ? &first->to : NULL;
	h->msg_namelen = first->tolen;
	if (n > 1) {
		struct cmsghdr *c;
		uint16_t size = first->len;

		h->msg_control = b->ctl[b->nmsg].buf;
		h->msg_controllen = sizeof b->ctl[b->nmsg].buf;
		c = CMSG_FIRSTHDR(h);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof size);
		memcpy(CMSG_DATA(c), &size, sizeof size);
	}
	b->segs[b->nmsg++] = (uint16_t)n;
	b->nslots += n;
}

/* send_some makes one sendmmsg call over up to UDP_BATCH_MAX messages of
 * queued datagrams; returns how many datagrams the kernel took, or -1 with
 * errno. *gso_failed: the call failed on a message of several datagrams. */
static int send_some(struct udp_tx *tx, struct send_batch *b, bool *gso_failed)
{
	size_t k = 0, sent = 0;
	int r;

	b->nmsg = b->nslots = 0;
	while (k < tx->count && b->nmsg < UDP_BATCH_MAX && b->nslots < UDP_SEND_SLOTS_MAX) {
		size_t n = run_len(tx, k, UDP_SEND_SLOTS_MAX - b->nslots);
		add_message(b, tx, k, n);
		k += n;
	}
	tx->stats.calls++;
	r = sendmmsg(tx->fd, b->msgs, (unsigned)b->nmsg, MSG_DONTWAIT);
	*gso_failed = r < 0 && b->segs[0] > 1;
	if (r < 0)
		return -1;
	for (int i = 0; i < r; i++) {
		tx->stats.bytes += b->msgs[i].msg_len;
		sent += b->segs[i];
		if (b->segs[i] > 1)
			tx->stats.gso_messages++;
	}
	return (int)sent;
}

static void drop_failed_head(struct udp_tx *tx, int e)
{
	struct tx_slot *s = slot_at(tx, 0);
	char text[ADDR_TEXT_MAX] = "(connected peer)";

	if (s->tolen)
		addr_format(&s->to, text);
	log_limited(LOG_LEVEL_WARN, "sendmmsg to %s: %s", text, strerror(e));
	tx->stats.errors++;
	drop_head(tx, 1);
}

/* gso_refused: errno says the path cannot take a GSO message at all, as
 * opposed to a transient error (ECONNREFUSED, ENOBUFS, ...) that would
 * hit a single datagram just the same. */
static bool gso_refused(int e)
{
	return e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT;
}

int udp_tx_flush(struct udp_tx *tx)
{
	struct send_batch b;
	bool gso_failed;

	tx->blocked = false;
	/* Each pass sends at least one datagram, drops one, turns GSO off
	 * (once), or returns, so the loop ends within count + 1 passes. */
	while (tx->count) {
		int r = send_some(tx, &b, &gso_failed);
		if (r < 0 && gso_failed && gso_refused(errno)) {
			/* The path refused a GSO message (no checksum offload: EIO;
			 * a datagram above the device MTU: EINVAL): send one
			 * datagram per message from now on, and lose nothing. */
			log_limited(LOG_LEVEL_INFO,
			            "sendmmsg with UDP_SEGMENT: %s; sending without GSO",
			            strerror(errno));
			tx->gso = false;
			continue;
		}
		if (r > 0) {
			tx->stats.sent += (uint64_t)r;
			drop_head(tx, (size_t)r);
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			tx->blocked = true;
			tx->stats.blocked++;
			return KS_ERR_AGAIN;
		} else {
			drop_failed_head(tx, r < 0 ? errno : EIO);
		}
	}
	return 0;
}

size_t udp_tx_pending(const struct udp_tx *tx) { return tx->count; }

size_t udp_tx_capacity(const struct udp_tx *tx) { return tx->cap; }

const struct udp_tx_stats *udp_tx_stats(const struct udp_tx *tx) { return &tx->stats; }
