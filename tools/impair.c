/* impair.c - the UDP impairment relay: an I/O shell around two netsim links.
 *
 *   client --> [listen socket] --(link "up")--> [upstream socket] --> server
 *   client <-- [listen socket] <-(link "down")- [upstream socket] <-- server
 *
 * Datagrams from whoever last sent to the listen socket (the client) go
 * through the "up" link to the upstream address; replies come back through
 * the "down" link to the client's latest address. Both links get the same
 * impairment, each its own seed. Rebinding (timer or SIGUSR1) replaces the
 * upstream socket with a new one, so the server sees the client move to a
 * new source port; a blackhole (schedule or SIGUSR2) drops everything sent
 * while it is on. SIGTERM/SIGINT print the counters and exit.
 *
 * One libev loop, non-blocking sockets, recvmmsg/sendmmsg batches into
 * buffers allocated once at start, and one delivery timer armed for the
 * earliest deadline of the two links (no fixed tick). Time is
 * CLOCK_MONOTONIC in milliseconds, the `now` that netsim expects.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "core/netsim.h"
#include "io/addr.h"
#include "io/clock.h"

/* ==== sockets ============================================================ */

enum { SOCKBUF_BYTES = 4 * 1024 * 1024 };

/* udp_open makes a non-blocking, close-on-exec UDP socket with large
 * buffers (best effort: the kernel caps them at rmem_max/wmem_max). */
static int udp_open(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int sz = SOCKBUF_BYTES;

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	return fd;
}

/* gso_works: does the kernel know UDP_SEGMENT (Linux 4.18+)? Setting the
 * socket default to 0 changes nothing but fails where it is unknown. */
static bool gso_works(int fd)
{
	int zero = 0;

	return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
}

static int local_addr(int fd, struct sockaddr_storage *a)
{
	socklen_t len = sizeof *a;

	return getsockname(fd, (struct sockaddr *)a, &len);
}

/* ==== options ============================================================ */

#define DEFAULT_REORDER_MS 10
#define DEFAULT_SEED       1
#define STR_(x)            #x
#define STR(x)             STR_(x)

enum only { ONLY_BOTH, ONLY_UP, ONLY_DOWN };

struct opts {
	struct sockaddr_storage listen, upstream;
	enum only only; /* which directions the model impairs */
	bool have_listen, have_upstream;
	struct netsim_config cfg;
	uint64_t seed;
	double rebind_every; /* seconds, 0 = never */
	double bh_start, bh_len;
	bool bh;
	const char *stats_file; /* borrowed from argv */
	bool no_gso;
	bool help;
};

/* Each setter returns NULL or what the value should have been. */
struct option_def {
	const char *name; /* without the leading "--" */
	const char *arg;  /* shown in --help; NULL for a flag */
	const char *help;
	long long def; /* default printed by --help, or NODEF */
	const char *(*set)(struct opts *o, const char *v);
};

static bool num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

/* Split "A,B[,C]" into at most n numbers; returns how many were read or -1. */
static int nums(const char *s, double *out, int n, double lo, double hi)
{
	char tmp[128], *save = NULL, *tok;
	int k = 0;

	if (strlen(s) >= sizeof tmp)
		return -1;
	strcpy(tmp, s);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (k == n || !num(tok, lo, hi, &out[k]))
			return -1;
		k++;
	}
	return k;
}

static const char *set_listen(struct opts *o, const char *v)
{
	o->have_listen = addr_parse(v, NULL, &o->listen, NULL, 0) == 0;
	return o->have_listen ? NULL : "a numeric IPv4:PORT or [IPv6]:PORT";
}

static const char *set_upstream(struct opts *o, const char *v)
{
	o->have_upstream = addr_parse(v, NULL, &o->upstream, NULL, 0) == 0;
	return o->have_upstream ? NULL : "a numeric IPv4:PORT or [IPv6]:PORT";
}

static const char *set_loss(struct opts *o, const char *v)
{
	return num(v, 0, 1, &o->cfg.loss) ? NULL : "a probability in [0, 1]";
}

static const char *set_burst(struct opts *o, const char *v)
{
	double d[3] = { 0, 0, 1.0 };
	int k = nums(v, d, 3, 0, 1);

	if (k < 2 || (d[0] > 0 && d[1] <= 0))
		return "P,R[,L]: probabilities, R > 0 when P > 0";
	o->cfg.ge_p = d[0];
	o->cfg.ge_r = d[1];
	o->cfg.ge_loss = d[2];
	return NULL;
}

static const char *set_ms(uint32_t *dst, const char *v)
{
	double d;

	if (!num(v, 0, NETSIM_MAX_DELAY_MS, &d) || d != floor(d))
		return "whole milliseconds, at most 600000";
	*dst = (uint32_t)d;
	return NULL;
}

static const char *set_delay(struct opts *o, const char *v) { return set_ms(&o->cfg.delay_ms, v); }

static const char *set_jitter(struct opts *o, const char *v)
{
	return set_ms(&o->cfg.jitter_ms, v);
}

static const char *set_reorder(struct opts *o, const char *v)
{
	double d[2] = { 0, DEFAULT_REORDER_MS };
	int k = nums(v, d, 2, 0, NETSIM_MAX_DELAY_MS);

	if (k < 1 || d[0] > 1 || d[1] < 1 || d[1] != floor(d[1]))
		return "P[,MS]: a probability, then whole milliseconds >= 1";
	o->cfg.reorder = d[0];
	o->cfg.reorder_ms = (uint32_t)d[1];
	return NULL;
}

static const char *set_dup(struct opts *o, const char *v)
{
	return num(v, 0, 1, &o->cfg.dup) ? NULL : "a probability in [0, 1]";
}

static const char *set_size(size_t *dst, const char *v, double max)
{
	double d;

	if (!num(v, 0, max, &d) || d != floor(d))
		return "a whole number of bytes in range";
	*dst = (size_t)d;
	return NULL;
}

static const char *set_rate(struct opts *o, const char *v)
{
	double d;

	if (!num(v, 0, (double)NETSIM_MAX_RATE, &d) || d != floor(d))
		return "whole bytes per second, 0 = unlimited";
	o->cfg.rate = (uint64_t)d;
	return NULL;
}

static const char *set_queue(struct opts *o, const char *v)
{
	return set_size(&o->cfg.queue_bytes, v, NETSIM_MAX_QUEUE_BYTES);
}

static const char *set_limit(struct opts *o, const char *v)
{
	return set_size(&o->cfg.limit_bytes, v, NETSIM_MAX_LIMIT_BYTES);
}

static const char *set_seed(struct opts *o, const char *v)
{
	char *end;

	errno = 0;
	o->seed = strtoull(v, &end, 0);
	/* strtoull would wrap "-1" around silently */
	return (*v && *v != '-' && !*end && !errno) ? NULL : "an unsigned 64-bit number";
}

static const char *set_rebind(struct opts *o, const char *v)
{
	return num(v, 0, 86400, &o->rebind_every) ? NULL : "seconds in [0, 86400], 0 = never";
}

static const char *set_blackhole(struct opts *o, const char *v)
{
	double d[2];

	if (nums(v, d, 2, 0, 86400) != 2)
		return "START_S,DURATION_S: seconds after start, each in [0, 86400]";
	o->bh = true;
	o->bh_start = d[0];
	o->bh_len = d[1];
	return NULL;
}

static const char *set_stats(struct opts *o, const char *v)
{
	o->stats_file = v;
	return NULL;
}

static const char *set_only(struct opts *o, const char *v)
{
	if (!strcmp(v, "up"))
		o->only = ONLY_UP;
	else if (!strcmp(v, "down"))
		o->only = ONLY_DOWN;
	else
		return "up or down";
	return NULL;
}

static const char *set_no_gso(struct opts *o, const char *v)
{
	(void)v;
	o->no_gso = true;
	return NULL;
}

static const char *set_help(struct opts *o, const char *v)
{
	(void)v;
	o->help = true;
	return NULL;
}

/* NODEF: the option has no numeric default to print. */
#define NODEF (-1LL)
static const struct option_def options[] = {
	{ "listen", "ADDR:PORT", "where the client sends (required; port 0 picks one)", NODEF,
	  set_listen },
	{ "upstream", "ADDR:PORT", "where the server listens (required)", NODEF, set_upstream },
	{ "loss", "P", "independent loss probability", 0, set_loss },
	{ "burst", "P,R[,L]",
	  "Gilbert-Elliott loss: P(good->bad), P(bad->good), loss when bad (L=1)", NODEF,
	  set_burst },
	{ "delay", "MS", "one-way delay in each direction", 0, set_delay },
	{ "jitter", "MS", "extra delay, uniform in [0, MS]; reorders too", 0, set_jitter },
	{ "reorder", "P[,MS]", "probability of MS extra delay (MS=" STR(DEFAULT_REORDER_MS) ")",
	  NODEF, set_reorder },
	{ "dup", "P", "duplication probability", 0, set_dup },
	{ "rate", "BYTES_PER_S", "rate limit per direction, 0 = unlimited", 0, set_rate },
	{ "queue", "BYTES", "rate limiter queue, tail drop beyond", NETSIM_DEFAULT_QUEUE_BYTES,
	  set_queue },
	{ "limit", "BYTES", "bytes held per direction, tail drop beyond",
	  NETSIM_DEFAULT_LIMIT_BYTES, set_limit },
	{ "only", "up|down",
	  "impair one direction only (up: client->upstream); blackholes still cut both", NODEF,
	  set_only },
	{ "seed", "N", "seed of the model; the down link uses N+1", DEFAULT_SEED, set_seed },
	{ "rebind-every", "SECONDS",
	  "new upstream socket (source port) every SECONDS; also SIGUSR1", NODEF, set_rebind },
	{ "blackhole", "START_S,DURATION_S",
	  "drop everything from START_S for DURATION_S; SIGUSR2 toggles", NODEF, set_blackhole },
	{ "stats-file", "FILE", "also write the exit counters to FILE", NODEF, set_stats },
	{ "no-gso", NULL, "send datagrams one by one, without UDP GSO batching", NODEF,
	  set_no_gso },
	{ "help", NULL, "this text", NODEF, set_help },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: impair --listen ADDR:PORT --upstream ADDR:PORT [options]\n"
	           "UDP relay that impairs both directions (client->upstream is 'up').\n"
	           "Counters go to stderr on SIGTERM/SIGINT.\n\n");
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
		char lhs[64];
		snprintf(lhs, sizeof lhs, "--%s%s%s", options[i].name, options[i].arg ? " " : "",
		         options[i].arg ? options[i].arg : "");
		fprintf(f, "  %-32s %s", lhs, options[i].help);
		if (options[i].def != NODEF)
			fprintf(f, " (default %lld)", options[i].def);
		fputc('\n', f);
	}
}

static const struct option_def *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len))
			return &options[i];
	return NULL;
}

/* Accepts "--name value" and "--name=value". Returns 0 or KS_ERR_INVAL
 * after saying why on stderr. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	*o = (struct opts){ .seed = DEFAULT_SEED };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v = NULL, *why;
		const struct option_def *d;
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "impair: unexpected argument '%s' (see --help)\n", a);
			return KS_ERR_INVAL;
		}
		a += 2;
		eq = strchr(a, '=');
		d = find_option(a, eq ? (size_t)(eq - a) : strlen(a));
		if (!d) {
			fprintf(stderr, "impair: unknown option '%s' (see --help)\n", argv[i]);
			return KS_ERR_INVAL;
		}
		if (d->arg) {
			v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v) {
				fprintf(stderr, "impair: --%s needs %s\n", d->name, d->arg);
				return KS_ERR_INVAL;
			}
		}
		why = d->set(o, v);
		if (why) {
			fprintf(stderr, "impair: --%s '%s': want %s\n", d->name, v, why);
			return KS_ERR_INVAL;
		}
	}
	if (!o->help && (!o->have_listen || !o->have_upstream)) {
		fprintf(stderr, "impair: --listen and --upstream are required (see --help)\n");
		return KS_ERR_INVAL;
	}
	return 0;
}

/* ==== the relay ========================================================== */

/* One batch of datagrams for recvmmsg, allocated once. */
struct batch {
	struct mmsghdr msg[IMPAIR_BATCH];
	struct iovec iov[IMPAIR_BATCH];
	struct sockaddr_storage from[IMPAIR_BATCH];
	uint8_t buf[IMPAIR_BATCH][NETSIM_MAX_DATAGRAM + 1];
};

/* Datagrams due for one socket, packed back to back in `area` so that a
 * run of equal-sized datagrams (the last may be shorter) leaves as one
 * message with UDP_SEGMENT (UDP GSO): one trip through the kernel's send
 * path for up to UDP_GSO_SEGMENTS_MAX datagrams. Allocated once. */
struct txq {
	struct mmsghdr msg[IMPAIR_BATCH];
	struct iovec iov[IMPAIR_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[IMPAIR_BATCH];
	uint16_t segs[IMPAIR_BATCH];     /* datagrams in msg[i] */
	uint16_t seg_size[IMPAIR_BATCH]; /* size of each but the last */
	bool open[IMPAIR_BATCH];         /* msg[i] may take another datagram */
	int n;                           /* messages queued */
	size_t used;                     /* bytes of area queued */
	uint8_t area[IMPAIR_TX_AREA];
};

/* One direction: its link and what the sockets did with its datagrams. */
struct dir {
	const char *name;
	struct netsim_link *link; /* owned */
	uint64_t rx;              /* datagrams read from the socket into the link */
	uint64_t tx;              /* datagrams the kernel took from us */
	uint64_t tx_dropped;      /* delivered by the link but the socket was full */
	uint64_t tx_errors;       /* delivered by the link, refused by the kernel */
};

struct relay {
	struct ev_loop *loop; /* borrowed: the default loop */
	const struct opts *o; /* borrowed */
	int lfd, ufd;         /* listen and current upstream socket, owned */
	ev_io lio, uio;
	ev_timer deliver; /* armed for the earliest link deadline */
	uint64_t armed;   /* the deadline it is armed for, KS_NEVER if idle */
	ev_timer rebind_timer, bh_timer;
	ev_signal sig[4];
	struct sockaddr_storage client;
	bool have_client;
	bool blackhole;
	struct dir up, down;
	uint64_t rebinds, rx_errors;
	bool gso;         /* UDP GSO works here */
	struct batch *rx; /* owned */
	struct txq *tx;   /* owned */
};

/* Add the datagram of len bytes just written at q->area + q->used: to the
 * last message if it continues its run, else as a new message. The caller
 * made sure a new message fits. */
static void txq_add(struct txq *q, size_t len, bool gso)
{
	int i = q->n - 1;

	/* an empty datagram never joins a run: as a GSO segment it would
	 * vanish (it adds no bytes) */
	if (gso && i >= 0 && q->open[i] && len > 0 && len <= q->seg_size[i] &&
	    q->iov[i].iov_len + len <= UDP_GSO_BYTES_MAX && q->segs[i] < UDP_GSO_SEGMENTS_MAX) {
		q->iov[i].iov_len += len;
		q->segs[i]++;
		q->open[i] = len == q->seg_size[i]; /* a shorter one ends the run */
	} else {
		i = q->n++;
		q->iov[i] = (struct iovec){ q->area + q->used, len };
		q->segs[i] = 1;
		q->seg_size[i] = (uint16_t)len;
		q->open[i] = len > 0;
	}
	q->used += len;
}

/* Fill in the message headers: destination, and UDP_SEGMENT where a
 * message carries more than one datagram. */
static void txq_finish(struct txq *q, const struct sockaddr_storage *to)
{
	for (int i = 0; i < q->n; i++) {
		struct msghdr *h = &q->msg[i].msg_hdr;
		*h = (struct msghdr){
			.msg_name = (void *)to,
			.msg_namelen = to ? addr_len(to) : 0,
			.msg_iov = &q->iov[i],
			.msg_iovlen = 1,
		};
		if (q->segs[i] > 1) {
			memset(q->ctl[i].buf, 0, sizeof q->ctl[i].buf); /* padding too */
			h->msg_control = q->ctl[i].buf;
			h->msg_controllen = sizeof q->ctl[i].buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			memcpy(CMSG_DATA(c), &q->seg_size[i], sizeof(uint16_t));
		}
	}
}

static void gso_off(struct relay *r)
{
	if (r->gso)
		fprintf(stderr, "impair: UDP GSO refused here, sending datagrams one by one\n");
	r->gso = false;
}

/* Send msg[i]'s datagrams one by one: the fallback when the kernel or the
 * route refuses a GSO message (EIO, EINVAL: e.g. a segment over the MTU). */
static void send_split(int fd, struct txq *q, int i, struct dir *d)
{
	struct msghdr h = q->msg[i].msg_hdr;
	uint8_t *p = q->iov[i].iov_base;
	size_t left = q->iov[i].iov_len;

	h.msg_control = NULL;
	h.msg_controllen = 0;
	for (int k = 0; k < q->segs[i]; k++) {
		struct iovec v = { p, left < q->seg_size[i] ? left : q->seg_size[i] };
		h.msg_iov = &v;
		if (sendmsg(fd, &h, MSG_DONTWAIT) >= 0)
			d->tx++;
		else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			d->tx_dropped++;
		else
			d->tx_errors++;
		p += v.iov_len;
		left -= v.iov_len;
	}
}

static uint64_t segs_from(const struct txq *q, int i)
{
	uint64_t n = 0;

	for (; i < q->n; i++)
		n += q->segs[i];
	return n;
}

static void txq_send(struct relay *r, int fd, struct txq *q, const struct sockaddr_storage *to,
                     struct dir *d)
{
	int i = 0;

	txq_finish(q, to);
	while (i < q->n) {
		int k = sendmmsg(fd, q->msg + i, (unsigned)(q->n - i), MSG_DONTWAIT);
		if (k > 0) {
			for (int j = i; j < i + k; j++)
				d->tx += q->segs[j];
			i += k;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
			d->tx_dropped += segs_from(q, i);
			break;
		} else if (q->segs[i] > 1 && (errno == EIO || errno == EINVAL)) {
			gso_off(r);
			send_split(fd, q, i++, d);
		} else {
			/* e.g. ECONNREFUSED from an earlier ICMP: skip that one */
			d->tx_errors += q->segs[i++];
		}
	}
	q->n = 0;
	q->used = 0;
}

/* Send everything d's link has due at now to `to` (NULL: fd is connected). */
static void flush_dir(struct relay *r, struct dir *d, int fd, const struct sockaddr_storage *to,
                      uint64_t now)
{
	struct txq *q = r->tx;
	ssize_t len;

	for (;;) {
		if (q->n == IMPAIR_BATCH || q->used + NETSIM_MAX_DATAGRAM > IMPAIR_TX_AREA)
			txq_send(r, fd, q, to, d);
		len = netsim_link_recv(d->link, now, q->area + q->used, NETSIM_MAX_DATAGRAM);
		if (len < 0)
			break;
		txq_add(q, (size_t)len, r->gso);
	}
	if (q->n)
		txq_send(r, fd, q, to, d);
}

static void rearm(struct relay *r, uint64_t now)
{
	uint64_t a = netsim_link_next_deadline(r->up.link);
	uint64_t b = netsim_link_next_deadline(r->down.link);
	uint64_t next = a < b ? a : b;

	if (next == r->armed)
		return;
	ev_timer_stop(r->loop, &r->deliver);
	r->armed = next;
	if (next == KS_NEVER)
		return;
	ev_timer_set(&r->deliver, next > now ? (double)(next - now) / 1e3 : 0.0, 0.0);
	ev_timer_start(r->loop, &r->deliver);
}

static void flush(struct relay *r)
{
	uint64_t now = clock_mono_ms();

	flush_dir(r, &r->up, r->ufd, NULL, now);
	if (r->have_client) {
		flush_dir(r, &r->down, r->lfd, &r->client, now);
	} else {
		/* nobody to reply to yet: take them out and count them */
		uint8_t *scratch = r->tx->area;
		while (netsim_link_recv(r->down.link, now, scratch, NETSIM_MAX_DATAGRAM) >= 0)
			r->down.tx_errors++;
	}
	rearm(r, now);
}

/* Read up to IMPAIR_READ_BUDGET batches from fd into d's link. */
static void read_into(struct relay *r, int fd, struct dir *d, bool from_client)
{
	struct batch *b = r->rx;

	for (int round = 0; round < IMPAIR_READ_BUDGET; round++) {
		for (int i = 0; i < IMPAIR_BATCH; i++) {
			b->iov[i] = (struct iovec){ b->buf[i], sizeof b->buf[i] };
			b->msg[i].msg_hdr = (struct msghdr){
				.msg_name = &b->from[i],
				.msg_namelen = sizeof b->from[i],
				.msg_iov = &b->iov[i],
				.msg_iovlen = 1,
			};
		}
		int n = recvmmsg(fd, b->msg, IMPAIR_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				r->rx_errors++; /* ECONNREFUSED and the like */
			return;
		}
		uint64_t now = clock_mono_ms();
		for (int i = 0; i < n; i++) {
			/* the buffer is one byte over the largest datagram, so
			 * nothing is ever truncated to fit */
			if (netsim_link_send(d->link, b->buf[i], b->msg[i].msg_len, now) < 0)
				r->rx_errors++;
		}
		d->rx += (uint64_t)n;
		if (from_client && n > 0) {
			memcpy(&r->client, &b->from[n - 1], b->msg[n - 1].msg_hdr.msg_namelen);
			r->have_client = true;
		}
		if (n < IMPAIR_BATCH)
			return;
	}
}

static void on_listen(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay *r = w->data;

	(void)loop;
	(void)revents;
	read_into(r, r->lfd, &r->up, true);
	flush(r);
}

static void on_upstream(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay *r = w->data;

	(void)loop;
	(void)revents;
	read_into(r, r->ufd, &r->down, false);
	flush(r);
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay *r = w->data;

	(void)loop;
	(void)revents;
	r->armed = KS_NEVER; /* a one-shot timer stops itself */
	flush(r);
}

/* Open a new upstream socket connected to the upstream address, so the
 * kernel picks a new source port, then drop the old one. Datagrams the
 * server sends to the old port are lost, as behind a NAT that rebinds. */
static int open_upstream(struct relay *r)
{
	char as[ADDR_TEXT_MAX], ls[ADDR_TEXT_MAX];
	struct sockaddr_storage local;
	int fd = udp_open(r->o->upstream.ss_family);

	if (fd < 0 ||
	    connect(fd, (const struct sockaddr *)&r->o->upstream, addr_len(&r->o->upstream)) < 0 ||
	    local_addr(fd, &local) < 0) {
		fprintf(stderr, "impair: upstream socket to %s: %s\n",
		        addr_format(&r->o->upstream, as), strerror(errno));
		if (fd >= 0)
			close(fd);
		return KS_ERR_IO;
	}
	if (r->ufd >= 0) {
		ev_io_stop(r->loop, &r->uio);
		close(r->ufd);
		r->rebinds++;
	}
	r->ufd = fd;
	ev_io_set(&r->uio, fd, EV_READ);
	ev_io_start(r->loop, &r->uio);
	fprintf(stderr, "impair: upstream %s from %s\n", addr_format(&r->o->upstream, as),
	        addr_format(&local, ls));
	return 0;
}

static void rebind(struct relay *r)
{
	/* on failure the old socket stays in use; open_upstream said why */
	(void)open_upstream(r);
}

static void on_rebind_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rebind(w->data);
}

static void blackhole_switch(struct relay *r, bool on)
{
	r->blackhole = on;
	netsim_link_set_blackhole(r->up.link, on);
	netsim_link_set_blackhole(r->down.link, on);
	fprintf(stderr, "impair: blackhole %s\n", on ? "on" : "off");
}

/* The scheduled blackhole: fires once at its start (turn on, re-arm for
 * the end) and once at its end. */
static void on_bh_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay *r = w->data;

	(void)revents;
	if (!r->blackhole) {
		blackhole_switch(r, true);
		ev_timer_set(w, r->o->bh_len, 0.0);
		ev_timer_start(loop, w);
	} else {
		blackhole_switch(r, false);
	}
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct relay *r = w->data;

	(void)revents;
	switch (w->signum) {
	case SIGUSR1: rebind(r); break;
	case SIGUSR2: blackhole_switch(r, !r->blackhole); break;
	default: ev_break(loop, EVBREAK_ALL); break;
	}
}

static void write_stats(FILE *f, const struct relay *r)
{
	const struct dir *dirs[2] = { &r->up, &r->down };

	for (int i = 0; i < 2; i++) {
		const struct dir *d = dirs[i];
		struct netsim_stats s;
		netsim_link_stats(d->link, &s);
		fprintf(f,
		        "%s rx=%llu sent=%llu delivered=%llu lost_blackhole=%llu lost_burst=%llu "
		        "lost_random=%llu queue_dropped=%llu limit_dropped=%llu dup=%llu "
		        "reordered=%llu bytes_in=%llu bytes_out=%llu held=%llu max_held_bytes=%llu "
		        "tx=%llu tx_dropped=%llu tx_errors=%llu\n",
		        d->name, (unsigned long long)d->rx, (unsigned long long)s.sent,
		        (unsigned long long)s.delivered, (unsigned long long)s.lost_blackhole,
		        (unsigned long long)s.lost_burst, (unsigned long long)s.lost_random,
		        (unsigned long long)s.queue_dropped, (unsigned long long)s.limit_dropped,
		        (unsigned long long)s.dup, (unsigned long long)s.reordered,
		        (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out,
		        (unsigned long long)s.held_datagrams, (unsigned long long)s.max_held_bytes,
		        (unsigned long long)d->tx, (unsigned long long)d->tx_dropped,
		        (unsigned long long)d->tx_errors);
	}
	fprintf(f, "relay rebinds=%llu rx_errors=%llu\n", (unsigned long long)r->rebinds,
	        (unsigned long long)r->rx_errors);
}

static int report(const struct relay *r)
{
	FILE *f;

	write_stats(stderr, r);
	if (!r->o->stats_file)
		return 0;
	f = fopen(r->o->stats_file, "w");
	if (!f) {
		fprintf(stderr, "impair: %s: %s\n", r->o->stats_file, strerror(errno));
		return KS_ERR_IO;
	}
	write_stats(f, r);
	if (fclose(f) != 0) {
		fprintf(stderr, "impair: %s: %s\n", r->o->stats_file, strerror(errno));
		return KS_ERR_IO;
	}
	return 0;
}

static int open_listen(struct relay *r)
{
	char as[ADDR_TEXT_MAX];
	struct sockaddr_storage bound;
	int fd = udp_open(r->o->listen.ss_family);

	if (fd < 0 ||
	    bind(fd, (const struct sockaddr *)&r->o->listen, addr_len(&r->o->listen)) < 0 ||
	    local_addr(fd, &bound) < 0) {
		fprintf(stderr, "impair: bind %s: %s\n", addr_format(&r->o->listen, as),
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return KS_ERR_IO;
	}
	r->lfd = fd;
	ev_io_set(&r->lio, fd, EV_READ);
	ev_io_start(r->loop, &r->lio);
	fprintf(stderr, "impair: listening on %s\n", addr_format(&bound, as));
	return 0;
}

static int make_links(struct relay *r)
{
	/* with --only, the other direction is a clean link of the same size */
	const struct netsim_config clean = { .limit_bytes = r->o->cfg.limit_bytes };
	const struct netsim_config *up = r->o->only == ONLY_DOWN ? &clean : &r->o->cfg;
	const struct netsim_config *down = r->o->only == ONLY_UP ? &clean : &r->o->cfg;
	int err = netsim_link_new(&r->up.link, up, r->o->seed);

	if (err == 0)
		err = netsim_link_new(&r->down.link, down, r->o->seed + 1);
	if (err < 0)
		fprintf(stderr, "impair: impairment model: %s\n", ks_strerror(err));
	return err;
}

static void start_watchers(struct relay *r)
{
	static const int signals[4] = { SIGTERM, SIGINT, SIGUSR1, SIGUSR2 };

	for (int i = 0; i < 4; i++) {
		ev_signal_init(&r->sig[i], on_signal, signals[i]);
		r->sig[i].data = r;
		ev_signal_start(r->loop, &r->sig[i]);
	}
	if (r->o->rebind_every > 0) {
		ev_timer_init(&r->rebind_timer, on_rebind_timer, r->o->rebind_every,
		              r->o->rebind_every);
		r->rebind_timer.data = r;
		ev_timer_start(r->loop, &r->rebind_timer);
	}
	if (r->o->bh) {
		ev_timer_init(&r->bh_timer, on_bh_timer, r->o->bh_start, 0.0);
		r->bh_timer.data = r;
		ev_timer_start(r->loop, &r->bh_timer);
	}
}

static int run(const struct opts *o)
{
	struct relay r = { .o = o, .lfd = -1, .ufd = -1, .armed = KS_NEVER };
	int err = KS_ERR_NOMEM;

	r.up.name = "up";
	r.down.name = "down";
	r.loop = ev_default_loop(EVFLAG_AUTO);
	r.rx = malloc(sizeof *r.rx);
	r.tx = malloc(sizeof *r.tx);
	if (!r.loop || !r.rx || !r.tx) {
		fprintf(stderr, "impair: out of memory\n");
		goto out;
	}
	r.tx->n = 0;
	r.tx->used = 0;
	ev_io_init(&r.lio, on_listen, -1, EV_READ);
	ev_io_init(&r.uio, on_upstream, -1, EV_READ);
	ev_timer_init(&r.deliver, on_deliver, 0.0, 0.0);
	r.lio.data = r.uio.data = r.deliver.data = &r;
	err = make_links(&r);
	if (err == 0)
		err = open_listen(&r);
	if (err == 0)
		err = open_upstream(&r);
	if (err < 0)
		goto out;
	r.gso = !o->no_gso && gso_works(r.lfd) && gso_works(r.ufd);
	start_watchers(&r);
	ev_run(r.loop, 0);
	err = report(&r);
out:
	if (r.ufd >= 0)
		close(r.ufd);
	if (r.lfd >= 0)
		close(r.lfd);
	netsim_link_free(r.down.link);
	netsim_link_free(r.up.link);
	free(r.tx);
	free(r.rx);
	return err;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (parse_args(&o, argc, argv) < 0)
		return 2;
	if (o.help) {
		usage(stdout);
		return 0;
	}
	return run(&o) == 0 ? 0 : 1;
}
