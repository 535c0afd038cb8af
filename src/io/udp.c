/* udp.c - UDP sockets, recvmmsg and sendmmsg batches. */
#include "io/udp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

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
		snprintf(err, errlen, "%s %s: %s", op, addr_format(a, text), strerror(saved));
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
			snprintf(err, errlen, "udp socket: %s",
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
	struct udp_tx_stats stats;
	struct tx_slot slots[]; /* owned, cap of them: a ring */
};

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
}

/* send_some makes one sendmmsg call over up to UDP_BATCH_MAX queued
 * datagrams; returns how many the kernel took, or -1 with errno. */
static int send_some(struct udp_tx *tx)
{
	struct mmsghdr msgs[UDP_BATCH_MAX];
	struct iovec iov[UDP_BATCH_MAX];
	size_t n = tx->count < UDP_BATCH_MAX ? tx->count : UDP_BATCH_MAX;

	memset(msgs, 0, n * sizeof msgs[0]);
	for (size_t k = 0; k < n; k++) {
		struct tx_slot *s = slot_at(tx, k);
		iov[k] = (struct iovec){ s->data, s->len };
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		msgs[k].msg_hdr.msg_name = s->tolen ? &s->to : NULL;
		msgs[k].msg_hdr.msg_namelen = s->tolen;
	}
	tx->stats.calls++;
	int r = sendmmsg(tx->fd, msgs, (unsigned)n, MSG_DONTWAIT);
	for (int k = 0; k < r; k++)
		tx->stats.bytes += msgs[k].msg_len;
	return r;
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

int udp_tx_flush(struct udp_tx *tx)
{
	tx->blocked = false;
	/* Each pass sends at least one datagram, drops one, or returns, so
	 * the loop ends within count passes. */
	while (tx->count) {
		int r = send_some(tx);
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
