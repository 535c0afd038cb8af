/* client.c - kcpsocks-local (see client.h).
 *
 * Objects: struct client (the process: listener, UDP peer, session,
 * metrics; defined in client_int.h, which failover.c shares for the
 * server list, failover and the return to the first server) and struct
 * lconn (one accepted SOCKS5 connection). An lconn
 * goes NEGOTIATE -> WAIT (for the session) -> OPENING (OPEN sent) ->
 * RELAY (io/relay.c moves the bytes), or to CLOSING (a SOCKS5 failure
 * reply is being flushed) from any of them. With fast open it goes from
 * the OPEN straight to RELAY (fast_start) and takes the server's reply
 * there (on_fast_answer). Teardown is two steps: an
 * lconn leaves every list and its socket is closed at once (zombie), and
 * its memory goes in the loop's deferred frees (io/loop.h), when no
 * callback can still hold it.
 */
#include "local/client.h"
#include "base/errbuf.h"
#include "local/client_int.h"

#include <ev.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/list.h"
#include "base/minmax.h"
#include "core/session.h"
#include "core/socks5.h"
#include "core/transport.h"
#include "io/addr.h"
#include "io/cipher.h"
#include "io/clock.h"
#include "io/dconf.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/metrics.h"
#include "io/peer.h"
#include "io/relay.h"
#include "io/resolver.h"
#include "io/smetrics.h"
#include "io/sysrng.h"
#include "io/tcp.h"
#include "io/udpmetrics.h"
#include "local/failover.h"
#include "local/udprelay.h"

enum lconn_phase {
	LC_NEGOTIATE, /* SOCKS5 greeting, auth, request */
	LC_WAIT,      /* request read; waiting for the session */
	LC_OPENING,   /* OPEN sent; waiting for the server's reply */
	LC_RELAY,     /* the relay owns the bytes */
	LC_CLOSING,   /* a failure reply is being flushed, then close */
	LC_ZOMBIE,    /* closed; freed before the loop sleeps */
};

enum { LCONN_IN_MAX = 2 * SOCKS5_MESSAGE_MAX + SOCKS5_REQUEST_MAX };

struct lconn {
	struct client *cl;    /* borrowed: the owner */
	struct tcp_conn *tcp; /* owned until RELAY (then the relay's), closed at zombie */
	enum lconn_phase phase;
	struct socks5_server s5;
	uint8_t req[SOCKS5_REQUEST_MAX]; /* the request, verbatim */
	size_t req_len;
	char dst[SOCKS5_ADDR_TEXT_MAX]; /* for log lines */
	struct relay relay;             /* in the session's table from OPENING on */
	struct list_node link;          /* on cl->conns: all live lconns */
	struct lconn *next_wait;        /* LC_WAIT queue */
	struct loop_deferred dead;      /* the free after LC_ZOMBIE */
	ev_timer negotiate_timer;       /* runs while LC_NEGOTIATE, then while LC_WAIT */
	uint64_t id;
	bool fast_pending;            /* fast open: SUCCEEDED given, the server's reply not yet */
	char from[ADDR_TEXT_MAX];     /* the application's address, for the access log */
	uint64_t start_ms;            /* monotonic, at accept */
	int rep;                      /* the SOCKS5 REP given to the application, -1 before */
	struct sockaddr_storage peer; /* the application's address */
	struct udprelay *udp;         /* owned: UDP ASSOCIATE's relay socket, or NULL */
	struct socks5_addr udp_bnd;   /* its address, for the reply */
};

/* The host's mux: the session's, as long as it is the same session. */
static struct mux *host_mux(void *ctx)
{
	struct client *cl = ctx;

	return session_sid(cl->sess) == cl->sid ? session_mux(cl->sess) : NULL;
}

/* --- lconn life cycle ------------------------------------------------------- */

/* The access log: one line per request (up is application -> server).
 * Failures are rate-limited, so a refused flood cannot flood the log. */
static void access_log(const struct lconn *lc)
{
	uint64_t ms = clock_mono_ms() - lc->start_ms;
	char line[LOG_LINE_MAX];

	if (!lc->dst[0] || !log_enabled(LOG_LEVEL_INFO))
		return;
	/* A longer line (a long host name) is cut, like any log line. */
	if (snprintf(line, sizeof line,
	             "stream user=%s client=%s dest=%s result=\"%s\" up=%llu down=%llu "
	             "duration=%llu.%03llus",
	             lc->cl->cfg->user, lc->from, lc->dst,
	             lc->rep < 0 ? "no reply" : socks5_rep_name((uint8_t)lc->rep),
	             (unsigned long long)lc->relay.bytes_up,
	             (unsigned long long)lc->relay.bytes_down, (unsigned long long)(ms / 1000),
	             (unsigned long long)(ms % 1000)) < 0)
		return;
	if (lc->rep == SOCKS5_REP_SUCCEEDED)
		log_info("%s", line);
	else
		log_limited(LOG_LEVEL_INFO, "%s", line);
}

/* wait_unlink takes lc off the queue of requests waiting for a session. */
static void wait_unlink(struct client *cl, struct lconn *lc)
{
	struct lconn **pp = &cl->wait_head;

	while (*pp && *pp != lc)
		pp = &(*pp)->next_wait;
	if (*pp)
		*pp = lc->next_wait;
	cl->wait_tail = NULL;
	for (struct lconn *w = cl->wait_head; w; w = w->next_wait)
		cl->wait_tail = w;
}

static void lconn_free(struct loop_deferred *d)
{
	struct lconn *lc = (struct lconn *)(void *)((char *)d - offsetof(struct lconn, dead));

	socks5_wipe(lc->req, sizeof lc->req);
	free(lc);
}

static void lconn_kill(struct lconn *lc)
{
	struct client *cl = lc->cl;

	if (lc->phase == LC_ZOMBIE)
		return;
	access_log(lc);
	ev_timer_stop(cl->loop, &lc->negotiate_timer);
	if (lc->phase == LC_WAIT)
		wait_unlink(cl, lc);
	if (lc->relay.phase == RELAY_PENDING && lc->relay.host)
		relay_remove(&lc->relay);
	if (lc->phase == LC_NEGOTIATE)
		tcp_conn_consume_wipe(lc->tcp, SIZE_MAX); /* a partial RFC 1929 request */
	if (lc->phase != LC_RELAY)
		tcp_conn_close(lc->tcp);
	lc->tcp = NULL;
	udprelay_free(lc->udp);
	lc->udp = NULL;
	lc->phase = LC_ZOMBIE;
	list_remove(&cl->conns, &lc->link);
	cl->nconns--;
	loop_defer(cl->ioloop, &lc->dead, lconn_free);
	if (cl->listener)
		tcp_listener_release(cl->listener);
	log_debug("conn#%llu closed", (unsigned long long)lc->id);
}

/* While draining: the last connection gone ends the drain. */
static void drain_check(struct client *cl)
{
	if (cl->draining && cl->nconns == 0 && cl->on_empty) {
		void (*f)(void *) = cl->on_empty;

		cl->on_empty = NULL;
		f(cl->on_empty_arg);
	}
}

/* A SOCKS5 failure: send REP rep (IPv4 zero address), then close. */
static void lconn_fail(struct lconn *lc, uint8_t rep)
{
	uint8_t out[SOCKS5_REPLY_MAX];
	ssize_t n = socks5_encode_reply(out, sizeof out, rep, NULL);

	lc->cl->replies[rep <= SOCKS5_REP_LAST ? rep : SOCKS5_REP_GENERAL_FAILURE]++;
	lc->rep = rep;
	log_debug("conn#%llu %s: %s", (unsigned long long)lc->id, lc->dst, socks5_rep_name(rep));
	if (n < 0 || tcp_conn_write(lc->tcp, out, (size_t)n) != n || tcp_conn_shutdown(lc->tcp)) {
		lconn_kill(lc);
		return;
	}
	tcp_conn_read_stop(lc->tcp);
	lc->phase = LC_CLOSING;
}

static void relay_done(struct relay *r, void *arg)
{
	struct lconn *lc = arg;

	(void)r;
	lconn_kill(lc);
}

/* --- opening streams --------------------------------------------------------- */

/* Fast open: the application gets SUCCEEDED (IPv4 zero address, as RFC
 * 1928 allows when the bound address means nothing to it) right behind the
 * OPEN, and its first bytes follow as early data (docs/PROTOCOL.md (mux)
 * 4.4). The server's real reply comes later: on_fast_answer. */
static void fast_start(struct lconn *lc)
{
	struct client *cl = lc->cl;
	uint8_t out[SOCKS5_REPLY_MAX];
	ssize_t n = socks5_encode_reply(out, sizeof out, SOCKS5_REP_SUCCEEDED, NULL);

	if (n < 0 || tcp_conn_write(lc->tcp, out, (size_t)n) != n) {
		(void)mux_stream_reset(relay_host_mux(&cl->host), lc->relay.id, MUX_RST_CANCEL);
		cl->host.dirty = true;
		relay_remove(&lc->relay);
		lconn_kill(lc);
		return;
	}
	cl->fast_opened++;
	cl->replies[SOCKS5_REP_SUCCEEDED]++;
	lc->rep = SOCKS5_REP_SUCCEEDED;
	log_debug("conn#%llu %s: fast open", (unsigned long long)lc->id, lc->dst);
	lc->fast_pending = true;
	lc->phase = LC_RELAY;
	relay_start(&lc->relay, lc->tcp); /* may end lc at once */
}

/* Fast open only when the server advertised it in the handshake (an
 * older server would end the session on early data). */
static bool fast_open_agreed(const struct client *cl)
{
	const struct transport_params *p = session_params(cl->sess);

	return p && (p->features & TPARAMS_FEAT_FAST_OPEN);
}

static bool datagram_agreed(const struct client *cl)
{
	const struct transport_params *p = session_params(cl->sess);

	return p && (p->features & TPARAMS_FEAT_DATAGRAM);
}

/* Fast open for this connection: fast_open, or fast_open_known and the
 * server reached this destination lately (dstseen.h), so a first contact
 * and a destination that failed still get the server's real reply. Only
 * where the server agreed it, never for UDP. */
static bool fast_open_wanted(struct lconn *lc)
{
	struct client *cl = lc->cl;
	const struct profile *p = &cl->cfg->profile;

	if (lc->udp || !fast_open_agreed(cl))
		return false;
	return p->fast_open || (p->fast_open_known &&
	                        dstseen_known(&cl->seen, lc->req, lc->req_len, clock_mono_ms()));
}

/* What the server answered for lc's destination (fast_open_known). */
static void seen_note(struct lconn *lc, uint8_t rep)
{
	if (!lc->udp)
		dstseen_note(&lc->cl->seen, lc->req, lc->req_len, rep == SOCKS5_REP_SUCCEEDED,
		             clock_mono_ms());
}

static void lconn_open(struct lconn *lc)
{
	struct client *cl = lc->cl;
	struct relay_ops ops = { .done = relay_done, .arg = lc };
	uint32_t id;
	int rc;

	/* UDP U1: a server that did not agree datagrams gets no request. */
	if (lc->udp && !datagram_agreed(cl)) {
		log_limited(LOG_LEVEL_INFO, "UDP ASSOCIATE from %s: the server does not carry UDP",
		            lc->from);
		lconn_fail(lc, SOCKS5_REP_CMD_UNSUPPORTED);
		return;
	}
	rc = mux_open_stream(relay_host_mux(&cl->host), lc->req, lc->req_len, &id);
	if (rc != 0) {
		log_limited(LOG_LEVEL_WARN, "open stream to %s: %s", lc->dst, ks_strerror(rc));
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
		return;
	}
	if (relay_add(&cl->host, &lc->relay, id, &ops) != 0) {
		(void)mux_stream_reset(relay_host_mux(&cl->host), id, MUX_RST_CANCEL);
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
		return;
	}
	cl->host.dirty = true;
	cl->streams_opened++;
	if (fast_open_wanted(lc))
		fast_start(lc);
	else
		lc->phase = LC_OPENING;
}

static void wait_push(struct client *cl, struct lconn *lc)
{
	lc->phase = LC_WAIT;
	lc->next_wait = NULL;
	if (cl->wait_tail)
		cl->wait_tail->next_wait = lc;
	else
		cl->wait_head = lc;
	cl->wait_tail = lc;
}

/* The session changed state: open (or fail) what waits. */
static void wait_flush(struct client *cl, bool open)
{
	struct lconn *lc;

	while ((lc = cl->wait_head) != NULL) {
		cl->wait_head = lc->next_wait;
		if (!cl->wait_head)
			cl->wait_tail = NULL;
		lc->phase = LC_NEGOTIATE; /* off the queue */
		ev_timer_stop(cl->loop, &lc->negotiate_timer);
		if (open)
			lconn_open(lc);
		else
			lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
	}
}

/* --- UDP ASSOCIATE (docs/PROTOCOL.md (UDP) U4, U5; local/udprelay.c) --- */

static int udp_send(uint32_t id, const uint8_t *p, size_t n, void *ctx)
{
	struct client *cl = ctx;
	int rc;

	/* The frame goes out ahead of queued bulk datagrams (io/peer.h). */
	if (cl->peer)
		peer_lane(cl->peer, PEER_LANE_URGENT);
	rc = session_send_datagram(cl->sess, id, p, n, clock_mono_ms());
	if (cl->peer)
		peer_lane(cl->peer, PEER_LANE_BULK);
	return rc;
}

/* U4 step 1: the relay socket is opened before the request goes out, so
 * the reply can name it. false: the request was answered (refused). */
static bool udp_request(struct lconn *lc, const struct socks5_request *rq)
{
	struct client *cl = lc->cl;
	struct udprelay_ops ops = { cl->loop, udp_send, cl, &cl->udp, cl->cfg->udp_rate };
	struct sockaddr_storage local;
	socklen_t ll = sizeof local;
	char err[256] = "getsockname failed";

	if (cl->cfg->udp_associations == 0) {
		cl->udp.refused++;
		lconn_fail(lc, SOCKS5_REP_CMD_UNSUPPORTED);
		return false;
	}
	if (cl->udp.active >= cl->cfg->udp_associations) {
		cl->udp.refused++;
		log_limited(LOG_LEVEL_WARN,
		            "UDP ASSOCIATE from %s refused: udp_associations (%u) "
		            "reached",
		            lc->from, (unsigned)cl->cfg->udp_associations);
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
		return false;
	}
	if (getsockname(tcp_conn_fd(lc->tcp), (struct sockaddr *)&local, &ll) != 0 ||
	    !(lc->udp = udprelay_new(&ops, &local, &lc->peer, rq->dst.port, &lc->udp_bnd, err,
	                             sizeof err))) {
		cl->udp.refused++;
		log_limited(LOG_LEVEL_WARN, "UDP ASSOCIATE from %s: %s", lc->from, err);
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
		return false;
	}
	return true;
}

/* U4 step 2: the server made the association; the application gets our
 * relay socket as BND. */
static bool udp_reply(struct lconn *lc, uint32_t id)
{
	uint8_t out[SOCKS5_REPLY_MAX];
	ssize_t n = socks5_encode_reply(out, sizeof out, SOCKS5_REP_SUCCEEDED, &lc->udp_bnd);

	udprelay_start(lc->udp, id);
	return n > 0 && tcp_conn_write(lc->tcp, out, (size_t)n) == n;
}

/* U3: a frame of the current session for association id. */
static void on_udp_frame(uint64_t sid, uint32_t id, const uint8_t *p, size_t len, void *user)
{
	struct client *cl = user;
	struct relay *r = sid == cl->sid ? relay_find(&cl->host, id) : NULL;
	struct lconn *lc = r ? (struct lconn *)((char *)r - offsetof(struct lconn, relay)) : NULL;

	if (!lc || !lc->udp || lc->phase != LC_RELAY) {
		cl->udp.drops[UDPASSOC_DROP_NO_ASSOC]++;
		return;
	}
	udprelay_on_frame(lc->udp, p, len);
}

/* The request is complete: CONNECT and UDP ASSOCIATE go to the server,
 * the rest is 07. */
static void on_request(struct lconn *lc, const struct socks5_request *rq)
{
	struct client *cl = lc->cl;

	ev_timer_stop(cl->loop, &lc->negotiate_timer);
	if (socks5_addr_format(&rq->dst, lc->dst, sizeof lc->dst) < 0)
		snprintf(lc->dst, sizeof lc->dst, "?");
	if (rq->cmd == SOCKS5_CMD_UDP_ASSOCIATE) {
		if (!udp_request(lc, rq))
			return;
	} else if (rq->cmd != SOCKS5_CMD_CONNECT) {
		lconn_fail(lc, SOCKS5_REP_CMD_UNSUPPORTED);
		return;
	}
	memcpy(lc->req, rq->raw, rq->raw_len);
	lc->req_len = rq->raw_len;
	/* Bytes after the request wait in the read buffer for the relay. */
	tcp_conn_read_stop(lc->tcp);
	if (relay_host_mux(&cl->host)) {
		lconn_open(lc);
		return;
	}
	/* No session: wait for one, at most LOCAL_SESSION_WAIT_MS. A client
	 * backing off starts its next attempt now (the server may be back). */
	session_on_demand(cl->sess, clock_mono_ms());
	wait_push(cl, lc);
	ev_timer_set(&lc->negotiate_timer, LOCAL_SESSION_WAIT_MS / 1000.0, 0.0);
	ev_timer_start(cl->loop, &lc->negotiate_timer);
}

/* --- SOCKS5 negotiation ---------------------------------------------------------- */

/* A refused negotiation: the codec's step holds the one answer it gets
 * (05 FF, 01 01, one S5 reply, or nothing for a wrong VER). Send that and
 * close; nothing is added here, so each failure gets exactly one answer. */
static void negotiate_failed(struct lconn *lc, int rc, const struct socks5_step *st)
{
	struct client *cl = lc->cl;

	cl->socks_failed++;
	if (st->rep >= 0 && st->rep <= SOCKS5_REP_LAST)
		cl->replies[st->rep]++;
	log_limited(LOG_LEVEL_INFO, "socks5 client=%s refused: %s", lc->from,
	            st->fault == SOCKS5_FAULT_AUTH ? "wrong username or password"
	                                           : socks5_fault_name(st->fault));
	log_debug("conn#%llu socks5: %s (%s)", (unsigned long long)lc->id, ks_strerror(rc),
	          socks5_fault_name(st->fault));
	/* A refused RFC 1929 request may still sit in the read buffer. */
	tcp_conn_consume_wipe(lc->tcp, SIZE_MAX);
	if (st->out_len == 0 || rc == KS_ERR_FULL || tcp_conn_shutdown(lc->tcp) != 0) {
		lconn_kill(lc);
		return;
	}
	/* Reading on (and discarding) until the answer is out: a close with
	 * unread bytes would send a reset that can overtake it. */
	lc->phase = LC_CLOSING;
}

static void negotiate(struct lconn *lc)
{
	uint8_t in[LCONN_IN_MAX];
	const uint8_t *data;
	size_t n = tcp_conn_peek(lc->tcp, &data);
	struct socks5_step st;
	int rc;

	if (n > sizeof in)
		n = sizeof in;
	memcpy(in, data, n);
	rc = socks5_server_feed(&lc->s5, in, n, &st);
	/* The codec wiped a checked password in its copy; wipe the original
	 * in the read buffer too (docs/PROTOCOL.md (SOCKS5), S3). */
	tcp_conn_consume_wipe(lc->tcp, st.consumed);
	if (st.out_len && tcp_conn_write(lc->tcp, st.out, st.out_len) != (ssize_t)st.out_len)
		rc = KS_ERR_FULL;
	if (rc == 0)
		on_request(lc, &st.request);
	socks5_wipe(in, sizeof in);
	if (rc == 0 || rc == KS_ERR_AGAIN) {
		if (rc == KS_ERR_AGAIN && n == sizeof in)
			lconn_kill(lc); /* cannot happen: a message fits in */
		else if (rc == KS_ERR_AGAIN && tcp_conn_eof(lc->tcp))
			lconn_kill(lc);
		return;
	}
	negotiate_failed(lc, rc, &st);
}

static void on_tcp(struct tcp_conn *c, const struct tcp_conn_event *ev, void *arg)
{
	struct lconn *lc = arg;

	(void)c;
	switch (lc->phase) {
	case LC_NEGOTIATE:
		if (ev->type == TCP_CONN_ERROR)
			lconn_kill(lc);
		else if (ev->type == TCP_CONN_DATA || ev->type == TCP_CONN_EOF)
			negotiate(lc);
		break;
	case LC_WAIT:
	case LC_OPENING:
		if (ev->type == TCP_CONN_ERROR) {
			struct mux *m = relay_host_mux(&lc->cl->host);

			if (lc->phase == LC_OPENING && m) {
				(void)mux_stream_reset(m, lc->relay.id, MUX_RST_CANCEL);
				lc->cl->host.dirty = true;
			}
			lconn_kill(lc);
		}
		break;
	case LC_RELAY: relay_on_tcp_event(&lc->relay, ev); break;
	case LC_CLOSING:
		if (ev->type == TCP_CONN_SHUTDOWN || ev->type == TCP_CONN_ERROR)
			lconn_kill(lc);
		else if (ev->type == TCP_CONN_DATA)
			tcp_conn_consume_wipe(lc->tcp, ev->n);
		break;
	case LC_ZOMBIE: break;
	}
}

/* A request that waited LOCAL_SESSION_WAIT_MS with no session: REP 01. */
static void wait_timeout(struct lconn *lc)
{
	struct client *cl = lc->cl;

	wait_unlink(cl, lc);
	lc->phase = LC_NEGOTIATE; /* off the queue */
	cl->wait_failed++;
	log_debug("conn#%llu %s: no session within %d ms", (unsigned long long)lc->id, lc->dst,
	          LOCAL_SESSION_WAIT_MS);
	lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
}

/* A client that does not finish SOCKS5 in time loses its slot. */
static void on_negotiate_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lconn *lc = w->data;

	(void)loop, (void)revents;
	if (lc->phase == LC_WAIT) {
		wait_timeout(lc);
		return;
	}
	log_debug("conn#%llu: no SOCKS5 request within %d ms", (unsigned long long)lc->id,
	          LOCAL_NEGOTIATE_TIMEOUT_MS);
	lc->cl->socks_failed++;
	lconn_kill(lc);
}

static void on_accept(int fd, const struct sockaddr_storage *peer, void *arg)
{
	struct client *cl = arg;
	struct lconn *lc = calloc(1, sizeof *lc);
	struct tcp_conn_cb cb = { .on_event = on_tcp, .arg = lc };
	char a[ADDR_TEXT_MAX];

	if (!lc || socks5_server_init(&lc->s5, &cl->s5cfg) != 0 ||
	    !(lc->tcp = tcp_conn_new(cl->loop, fd, NULL, &cb))) {
		log_limited(LOG_LEVEL_WARN, "accept %s: out of memory", addr_format(peer, a));
		free(lc);
		close(fd);
		if (cl->listener)
			tcp_listener_release(cl->listener);
		return;
	}
	lc->cl = cl;
	lc->id = ++cl->next_id;
	lc->rep = -1;
	lc->start_ms = clock_mono_ms();
	lc->peer = *peer;
	addr_format(peer, lc->from);
	lc->phase = LC_NEGOTIATE;
	list_push(&cl->conns, &lc->link);
	cl->nconns++;
	cl->accepted++;
	log_debug("conn#%llu from %s", (unsigned long long)lc->id, addr_format(peer, a));
	ev_timer_init(&lc->negotiate_timer, on_negotiate_timeout,
	              LOCAL_NEGOTIATE_TIMEOUT_MS / 1000.0, 0.0);
	lc->negotiate_timer.data = lc;
	ev_timer_start(cl->loop, &lc->negotiate_timer);
	tcp_conn_read_start(lc->tcp);
}

/* --- the session ------------------------------------------------------------------- */

static struct lconn *of_relay(struct relay *r)
{
	return (struct lconn *)((char *)r - offsetof(struct lconn, relay));
}

/* The server's reply to our OPEN, passed on verbatim. */
static void on_reply(struct lconn *lc, const struct mux_event *ev)
{
	struct client *cl = lc->cl;
	struct socks5_reply rep;
	ssize_t n = socks5_parse_reply(ev->data, ev->len, &rep, NULL);

	if (n <= 0 || (size_t)n != ev->len) {
		log_limited(LOG_LEVEL_WARN, "stream %u: bad SOCKS5 reply from the server", ev->id);
		(void)mux_stream_reset(relay_host_mux(&cl->host), ev->id, MUX_RST_CANCEL);
		cl->host.dirty = true;
		relay_remove(&lc->relay);
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
		return;
	}
	cl->replies[rep.rep]++;
	lc->rep = rep.rep;
	seen_note(lc, rep.rep);
	log_debug("conn#%llu %s: %s", (unsigned long long)lc->id, lc->dst,
	          socks5_rep_name(rep.rep));
	if (lc->udp && rep.rep == SOCKS5_REP_SUCCEEDED) {
		if (!udp_reply(lc, ev->id)) {
			relay_abort(&lc->relay, true);
			return;
		}
	} else if (tcp_conn_write(lc->tcp, ev->data, ev->len) != (ssize_t)ev->len) {
		relay_abort(&lc->relay, true); /* done() kills lc */
		return;
	}
	if (rep.rep != SOCKS5_REP_SUCCEEDED) {
		(void)mux_stream_reset(relay_host_mux(&cl->host), ev->id, MUX_RST_CANCEL);
		cl->host.dirty = true;
		relay_remove(&lc->relay);
		if (tcp_conn_shutdown(lc->tcp) != 0)
			lconn_kill(lc);
		else
			lc->phase = LC_CLOSING;
		return;
	}
	lc->phase = LC_RELAY;
	relay_start(&lc->relay, lc->tcp); /* the relay owns the socket now */
}

/* The server's answer to a fast-open stream (REPLY or RST). Success is
 * dropped: the application had its reply. A failure cannot be told as a
 * SOCKS5 code any more, so the application's connection is reset; it sees
 * ECONNRESET, never a hang. RST counts as a general failure. */
static void on_fast_answer(struct lconn *lc, const struct mux_event *ev)
{
	struct client *cl = lc->cl;
	struct socks5_reply rep;
	uint8_t code = SOCKS5_REP_GENERAL_FAILURE;

	lc->fast_pending = false;
	if (ev->type == MUX_EV_REPLY) {
		ssize_t n = socks5_parse_reply(ev->data, ev->len, &rep, NULL);

		if (n > 0 && (size_t)n == ev->len)
			code = rep.rep;
		else
			log_limited(LOG_LEVEL_WARN, "stream %u: bad SOCKS5 reply from the server",
			            ev->id);
	} else if (ev->reason == MUX_RST_LIMIT || ev->reason == MUX_RST_RESOURCE) {
		log_limited(LOG_LEVEL_WARN, "stream to %s refused by the server: %s", lc->dst,
		            ev->reason == MUX_RST_LIMIT ? "max_streams reached" : "out of memory");
	}
	seen_note(lc, code);
	if (code == SOCKS5_REP_SUCCEEDED)
		return;
	cl->fast_failed[code <= SOCKS5_REP_LAST ? code : SOCKS5_REP_GENERAL_FAILURE]++;
	lc->rep = code; /* the application saw a reset, not this code */
	log_debug("conn#%llu %s: %s after fast open: connection reset", (unsigned long long)lc->id,
	          lc->dst, socks5_rep_name(code));
	relay_reset(&lc->relay); /* done() kills lc */
}

/* The session ended under fast-open streams still waiting for their reply:
 * their destination never answered, so they end like a failure (reset),
 * not with an orderly EOF. Before relay_host_lost, which closes the rest. */
static void fast_lost(struct client *cl)
{
	struct lconn *lc = list_first(&cl->conns, struct lconn, link), *next;

	for (; lc; lc = next) {
		next = list_next(lc, struct lconn, link);
		if (lc->phase == LC_RELAY && lc->fast_pending) {
			lc->fast_pending = false;
			cl->fast_failed[SOCKS5_REP_GENERAL_FAILURE]++;
			relay_reset(&lc->relay); /* the mux is gone: no RST is queued */
		}
	}
}

static void on_stream_event(struct client *cl, const struct mux_event *ev)
{
	struct relay *r = relay_find(&cl->host, ev->id);
	struct lconn *lc;

	if (!r) {
		relay_host_drain_orphan(&cl->host, ev);
		return;
	}
	lc = of_relay(r);
	if (lc->fast_pending && (ev->type == MUX_EV_REPLY || ev->type == MUX_EV_RESET)) {
		on_fast_answer(lc, ev);
		return;
	}
	if (r->phase == RELAY_RUNNING) {
		relay_on_mux_event(r, ev);
		return;
	}
	if (ev->type == MUX_EV_REPLY)
		on_reply(lc, ev);
	else if (ev->type == MUX_EV_RESET) {
		if (ev->reason == MUX_RST_LIMIT || ev->reason == MUX_RST_RESOURCE)
			log_limited(LOG_LEVEL_WARN, "stream to %s refused by the server: %s",
			            lc->dst,
			            ev->reason == MUX_RST_LIMIT ? "max_streams reached"
			                                        : "out of memory");
		relay_remove(r);
		lconn_fail(lc, SOCKS5_REP_GENERAL_FAILURE);
	}
}

static void pending_lost(struct relay *r, void *arg)
{
	(void)arg;
	relay_remove(r);
	lconn_fail(of_relay(r), SOCKS5_REP_GENERAL_FAILURE);
}

/* The server restarted (SESSION_LOST_SILENT: it answered a new handshake
 * while the old session stayed silent) and the new session follows at
 * once. A request still waiting for its reply went to a server that no
 * longer exists and no application byte followed it (reading stops at
 * the request), so it is sent again on the new session rather than
 * failed. */
static void pending_replay(struct relay *r, void *arg)
{
	struct client *cl = arg;
	struct lconn *lc = of_relay(r);

	relay_remove(r);
	cl->replayed++;
	log_debug("conn#%llu %s: server restarted; request sent again", (unsigned long long)lc->id,
	          lc->dst);
	wait_push(cl, lc);
}

/* A server that never answers looks the same whatever the cause (it drops
 * a handshake it cannot authenticate without a word), so the likely
 * causes are listed, once until a session is established. */
static void silent_hint(struct client *cl)
{
	const struct config_endpoint *e = &cl->cfg->servers.e[cl->cur];

	if (cl->silent_hinted)
		return;
	cl->silent_hinted = true;
	log_warn("the server %s:%u does not answer. Likely causes: server_public_key or this "
	         "user's psk does not match the server's (it drops such handshakes silently; "
	         "its log shows them at info), UDP to port %u is blocked on the way, or the "
	         "server is not running",
	         e->host, (unsigned)e->port, (unsigned)e->port);
}

/* An outage starts at a loss that leaves no session behind (every reason
 * but a restart switch, which brings its new session along) or at a
 * failed handshake; it ends at the next ESTABLISHED. */
static void outage_begin(struct client *cl, uint64_t now)
{
	if (cl->in_outage)
		return;
	cl->in_outage = true;
	cl->outage_since = now;
	cl->outages++;
}

static void outage_end(struct client *cl, uint64_t now)
{
	if (!cl->in_outage)
		return;
	cl->in_outage = false;
	cl->outage_ms += now - cl->outage_since;
	log_info("server reachable again after %llu ms",
	         (unsigned long long)(now - cl->outage_since));
}

static void on_session_event(struct client *cl, const struct session_event *ev)
{
	switch (ev->type) {
	case SESSION_EV_ESTABLISHED:
		cl->established++;
		cl->silent_hinted = false;
		cl->sid = session_sid(cl->sess);
		cl->fallback_since = clock_mono_ms();
		cl->probe_at = cl->fallback_since + cl->cfg->server_return_ms;
		cl->first_ok = false;
		outage_end(cl, clock_mono_ms());
		cl->refused_logged = false; /* heard the server: log the next refusal */
		relay_host_init(&cl->host, host_mux, cl);
		cipher_count(&cl->ciphers, session_params(cl->sess)->features);
		log_info("session %016llx established (wire version %u, %s%s%s%s)",
		         (unsigned long long)session_sid(cl->sess),
		         (unsigned)session_params(cl->sess)->wire,
		         tparams_cipher_name(session_params(cl->sess)->features),
		         session_params(cl->sess)->features & TPARAMS_FEAT_STREAM_DELIVERY
		                 ? ", per-stream delivery"
		                 : "",
		         session_params(cl->sess)->wire < HANDSHAKE_WIRE_VERSION
		                 ? ", an older server"
		                 : "",
		         cl->cfg->profile.fast_open && !fast_open_agreed(cl)
		                 ? "; fast open off: the server does not offer it"
		                 : "");
		wait_flush(cl, true);
		break;
	case SESSION_EV_HANDSHAKE_FAILED:
		cl->hs_failed++;
		log_limited(LOG_LEVEL_WARN, "handshake with %s:%u: no answer; retrying",
		            failover_target(cl)->host, (unsigned)failover_target(cl)->port);
		silent_hint(cl);
		outage_begin(cl, clock_mono_ms());
		wait_flush(cl, false);
		failover_next(cl, "no answer");
		break;
	case SESSION_EV_LOST:
		cl->lost++;
		cl->last_lost = ev->reason;
		cl->ever_lost = true;
		if (ev->reason != SESSION_LOST_SILENT && ev->reason != SESSION_LOST_REKEY)
			outage_begin(cl, clock_mono_ms());
		log_info("session lost: %s; handshaking again",
		         session_lost_text(ev->reason, SESSION_CLIENT));
		fast_lost(cl);
		relay_host_lost(&cl->host,
		                ev->reason == SESSION_LOST_SILENT ? pending_replay : pending_lost,
		                cl);
		cl->relay_up += cl->host.bytes_up;
		cl->relay_down += cl->host.bytes_down;
		cl->host.bytes_up = cl->host.bytes_down = 0;
		if (cl->returning && ev->reason == SESSION_LOST_CLOSED) {
			cl->returning = false;
			failover_go_to(cl, 0, "returning to the first server");
		} else if (ev->reason == SESSION_LOST_REKEY) {
			failover_resolve(cl); /* the same server: follow its name */
		} else if (ev->reason != SESSION_LOST_SILENT && ev->reason != SESSION_LOST_CLOSED) {
			failover_next(cl, session_lost_text(ev->reason, SESSION_CLIENT));
		}
		break;
	case SESSION_EV_STREAM: on_stream_event(cl, &ev->stream); break;
	}
}

static int on_output(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct client *cl = user;

	(void)to;
	return peer_send(cl->peer, d, len, NULL);
}

/* The seal goes straight into the socket's send queue (peer_slot). */
static uint8_t *on_slot(size_t *cap, void *user)
{
	struct client *cl = user;

	return cl->peer ? peer_slot(cl->peer, cap) : NULL;
}

void client_on_datagram(const struct udp_dgram *d, uint64_t now, void *arg)
{
	struct client *cl = arg;

	int rc = session_on_datagram(cl->sess, d->data, d->len, now, clock_wall_ms());

	if (rc == KS_ERR_UNSUPPORTED) /* authenticated: the server said so */
		log_limited(LOG_LEVEL_ERROR,
		            "handshake with %s:%u refused by the server: no wire version in common "
		            "(this build speaks %d..%d); upgrade one side",
		            failover_target(cl)->host, (unsigned)failover_target(cl)->port,
		            HANDSHAKE_WIRE_MIN, HANDSHAKE_WIRE_VERSION);
}

/* The kernel reported that the server's address refused our datagrams
 * (ICMP port unreachable: ECONNREFUSED on the connected socket). Not
 * authenticated, so only a hint to the session (session_on_unreachable);
 * logged once until a session is established again. */
static void check_refused(struct client *cl, uint64_t now)
{
	struct peer_stats ps;

	peer_stats(cl->peer, &ps);
	if (ps.rx->refused == cl->refused_seen)
		return;
	cl->refused_seen = ps.rx->refused;
	session_on_unreachable(cl->sess, now);
	if (!cl->refused_logged) {
		cl->refused_logged = true;
		log_warn("server %s:%u refuses datagrams (ICMP port unreachable): is it running?",
		         failover_target(cl)->host, (unsigned)failover_target(cl)->port);
	}
}

/* --- the loop's turn (io/loop.h) ---------------------------------------------- */

static void on_timer(uint64_t now, void *arg)
{
	struct client *cl = arg;

	session_on_timer(cl->sess, now, clock_wall_ms());
	if (cl->probe && !cl->probe_done)
		session_on_timer(cl->probe, now, clock_wall_ms());
}

static void before(uint64_t now, void *arg)
{
	struct client *cl = arg;

	check_refused(cl, now);
	failover_maybe_return(cl, now); /* before the rounds: its LOST is handled in them */
}

/* One round: events, one pump, one flush. */
static bool round_once(uint64_t now, void *arg)
{
	struct client *cl = arg;
	struct session_event ev;
	bool any = failover_probe_round(cl, now);

	while (session_next_event(cl->sess, &ev) == 0) {
		on_session_event(cl, &ev);
		any = true;
	}
	if (cl->host.dirty) {
		cl->host.dirty = false;
		session_pump(cl->sess, now);
		any = true;
	}
	/* One flush per batch: ACKs of what was read ride with the answers. */
	session_flush(cl->sess, now);
	return any;
}

static void after(uint64_t now, void *arg)
{
	(void)now;
	drain_check(arg);
}

static uint64_t deadline(void *arg)
{
	const struct client *cl = arg;

	return min_u64(min_u64(session_next_deadline(cl->sess), failover_return_deadline(cl)),
	               failover_probe_deadline(cl));
}

/* --- metrics ---------------------------------------------------------------------- */

/* Outages and the session's liveness (docs/METRICS.md, "Outages"). */
static void write_outage_metrics(struct metrics_buf *b, struct client *cl,
                                 const struct peer_stats *ps)
{
	struct session_stats st;
	uint64_t ms = cl->outage_ms;

	session_stats(cl->sess, &st);
	if (cl->in_outage)
		ms += clock_mono_ms() - cl->outage_since;
	metrics_gauge(b, "kcpsocks_local_session_up",
	              "1 while a session to the server is established, else 0",
	              session_state(cl->sess) == SESSION_ESTABLISHED ? 1 : 0);
	metrics_counter(b, "kcpsocks_local_outages_total",
	                "times the session was lost with no new one at hand, or a first "
	                "handshake failed",
	                cl->outages);
	metrics_family(b, "kcpsocks_local_outage_seconds_total", METRICS_COUNTER,
	               "time spent in outages, the current one included");
	metrics_sample_f64(b, "kcpsocks_local_outage_seconds_total", NULL, 0, (double)ms / 1000.0);
	metrics_counter(b, "kcpsocks_local_sessions_dead_path_total",
	                "sessions declared down: data went unanswered for dead_path_ms",
	                st.lost[SESSION_LOST_NO_ANSWER]);
	metrics_counter(b, "kcpsocks_local_sessions_closed_by_server_total",
	                "sessions the server closed with a close datagram",
	                st.lost[SESSION_LOST_PEER_CLOSED]);
	metrics_counter(b, "kcpsocks_local_requests_wait_failed_total",
	                "SOCKS5 requests failed (REP 1) after waiting for a session",
	                cl->wait_failed);
	metrics_counter(b, "kcpsocks_local_server_refused_total",
	                "receive errors from the server's address (ICMP unreachable)",
	                ps->rx->refused);
	metrics_counter(b, "kcpsocks_local_stall_probes_total",
	                "PINGs sent because open streams heard nothing", st.stall_probes);
	metrics_gauge(b, "kcpsocks_local_server_index",
	              "which server of the list the client uses, 0: the first", cl->cur);
	metrics_counter(b, "kcpsocks_local_server_failovers_total",
	                "moves to another server of the list (returns to the first included)",
	                cl->failovers);
	metrics_counter(b, "kcpsocks_local_server_lookups_failed_total",
	                "lookups of a server name that found no address", cl->lookups_failed);
}

static void write_metrics(struct metrics_buf *b, void *arg)
{
	struct client *cl = arg;
	struct smetrics_session s = { .user = cl->cfg->user };
	struct peer_stats ps;
	char rep[12];

	metrics_counter(b, "kcpsocks_local_connections_accepted_total",
	                "SOCKS5 connections accepted", cl->accepted);
	metrics_gauge(b, "kcpsocks_local_connections", "SOCKS5 connections open",
	              (double)cl->nconns);
	metrics_counter(b, "kcpsocks_local_socks_failed_total",
	                "SOCKS5 negotiations refused (bad message, method or password)",
	                cl->socks_failed);
	metrics_counter(b, "kcpsocks_local_streams_opened_total",
	                "streams opened through the tunnel (one per CONNECT)", cl->streams_opened);
	metrics_family(b, "kcpsocks_local_replies_total", METRICS_COUNTER,
	               "SOCKS5 replies given to applications, by REP code");
	for (int i = 0; i <= SOCKS5_REP_LAST; i++) {
		struct metrics_label l = { "rep", rep };

		snprintf(rep, sizeof rep, "%d", i);
		metrics_sample_u64(b, "kcpsocks_local_replies_total", &l, 1, cl->replies[i]);
	}
	metrics_counter(b, "kcpsocks_local_fast_open_streams_total",
	                "streams opened with fast open (SUCCEEDED given before the server's reply)",
	                cl->fast_opened);
	metrics_family(b, "kcpsocks_local_fast_open_failed_total", METRICS_COUNTER,
	               "fast-open streams the server failed, so the application's connection was "
	               "reset, by the server's REP code (1 also for a reset or lost session)");
	for (int i = 1; i <= SOCKS5_REP_LAST; i++) {
		struct metrics_label l = { "rep", rep };

		snprintf(rep, sizeof rep, "%d", i);
		metrics_sample_u64(b, "kcpsocks_local_fast_open_failed_total", &l, 1,
		                   cl->fast_failed[i]);
	}
	metrics_counter(b, "kcpsocks_handshakes_ok_total", "handshakes completed", cl->established);
	metrics_counter(b, "kcpsocks_handshakes_failed_total", "handshake attempts that timed out",
	                cl->hs_failed);
	metrics_counter(b, "kcpsocks_sessions_lost_total", "sessions that ended", cl->lost);
	cipher_metrics(b, &cl->ciphers);
	metrics_gauge(b, "kcpsocks_sessions", "sessions established now",
	              session_state(cl->sess) == SESSION_ESTABLISHED ? 1 : 0);
	metrics_counter(b, "kcpsocks_relay_up_bytes_total",
	                "bytes relayed up: from applications towards their destinations",
	                cl->relay_up + cl->host.bytes_up);
	metrics_counter(b, "kcpsocks_relay_down_bytes_total",
	                "bytes relayed down: from destinations back to applications",
	                cl->relay_down + cl->host.bytes_down);
	peer_stats(cl->peer, &ps);
	smetrics_udp(b, &ps, loop_timer_fires(cl->ioloop));
	write_outage_metrics(b, cl, &ps);
	udp_metrics_write(b, &cl->udp);
	metrics_counter(b, "kcpsocks_local_requests_replayed_total",
	                "requests sent again on a new session after a server restart",
	                cl->replayed);
	metrics_family(b, "kcpsocks_dropped_datagrams_total", METRICS_COUNTER,
	               "datagrams dropped, by reason");
	{
		struct session_stats st;
		struct metrics_label l = { "reason", "" };

		session_stats(cl->sess, &st);
		l.value = "truncated";
		metrics_sample_u64(b, "kcpsocks_dropped_datagrams_total", &l, 1, ps.rx->truncated);
		l.value = "send_queue_full";
		metrics_sample_u64(b, "kcpsocks_dropped_datagrams_total", &l, 1, ps.tx.full_drops);
		l.value = "send_error";
		metrics_sample_u64(b, "kcpsocks_dropped_datagrams_total", &l, 1, ps.tx.errors);
		l.value = "not_authentic";
		metrics_sample_u64(b, "kcpsocks_dropped_datagrams_total", &l, 1, st.dropped);
		s.st = st;
	}
	snprintf(s.sid, sizeof s.sid, "%016llx", (unsigned long long)session_sid(cl->sess));
	smetrics_sessions(b, &s, session_state(cl->sess) == SESSION_ESTABLISHED ? 1 : 0);
}

/* /healthz: 200 only while a session is up; else 503 and why. */
static bool healthy(char *why, size_t whylen, void *arg)
{
	struct client *cl = arg;
	uint64_t now = clock_mono_ms();

	switch (session_state(cl->sess)) {
	case SESSION_ESTABLISHED: return true;
	case SESSION_HANDSHAKING:
	case SESSION_BACKOFF:
	case SESSION_CLOSED: break;
	}
	if (cl->in_outage)
		snprintf(why, whylen, "no session to %s:%u for %llu ms (%s)",
		         failover_target(cl)->host, (unsigned)failover_target(cl)->port,
		         (unsigned long long)(now - cl->outage_since),
		         cl->ever_lost ? session_lost_text(cl->last_lost, SESSION_CLIENT)
		                       : "handshake got no answer");
	else
		snprintf(why, whylen, "handshaking with %s:%u", failover_target(cl)->host,
		         (unsigned)failover_target(cl)->port);
	return false;
}

/* --- set-up ------------------------------------------------------------------------ */

int client_new_session(struct client *cl, struct session **out, session_output_fn output,
                       session_slot_fn slot, char *err, size_t errlen)
{
	struct session_client_config sc = { 0 };
	struct keys_user user;
	struct mux_config mc;
	int rc;

	if (keys_user_set(&user, cl->cfg->user, cl->cfg->psk) != 0) {
		errbuf_set(err, errlen, "user '%s': not a valid user name", cl->cfg->user);
		return KS_ERR_INVAL;
	}
	transport_proposal(&cl->cfg->profile, &sc.proposal);
	sc.proposal.features = cl->cipher_offer; /* AES-256-GCM, where this CPU has it */
	if (cl->cfg->stream_delivery == CONFIG_STREAM_DELIVERY_ON)
		sc.proposal.features |= TPARAMS_FEAT_STREAM_DELIVERY; /* offered (mux step 10) */
	transport_local_of(&cl->cfg->profile, &sc.local);
	transport_mux(&cl->cfg->profile, 0, &mc);
	sc.server_pub = cl->cfg->server_public_key;
	sc.user = &user;
	sc.mux = &mc;
	sc.dead_path_ms = cl->cfg->profile.dead_path_ms;
	sc.rng = &cl->rng;
	sc.output = output;
	sc.output_user = cl;
	sc.slot = slot;
	sc.instance = cl->instance;
	sc.datagram = on_udp_frame;
	sc.datagram_user = cl;
	rc = session_client_new(out, &sc, clock_mono_ms());
	socks5_wipe(&user, sizeof user);
	if (rc != 0)
		errbuf_set(err, errlen, "session: %s", ks_strerror(rc));
	return rc;
}

static int make_session(struct client *cl, char *err, size_t errlen)
{
	return client_new_session(cl, &cl->sess, on_output, on_slot, err, errlen);
}

static int open_sockets(struct client *cl, char *err, size_t errlen)
{
	struct sockaddr_storage la;
	struct tcp_listener_cb lcb = { on_accept, cl };
	struct metrics_handlers mh = { write_metrics, healthy, cl };
	struct resolver_opts ro = { 0 };
	static const char *const lookups[] = { [CONFIG_LOOKUPS_FB] = "fb",
		                               [CONFIG_LOOKUPS_FILES] = "files",
		                               [CONFIG_LOOKUPS_B] = "b" };

	ro.servers = cl->cfg->resolver_servers;
	ro.lookups = lookups[cl->cfg->resolver_lookups];
	cl->res = resolver_new(cl->loop, &ro, err, errlen);
	if (!cl->res)
		return KS_ERR_INVAL;
	/* The server's address comes from c-ares (resolve_target); until then
	 * an IPv4 socket drives the session's timer and sends nothing. */
	if (failover_new_peer(cl, AF_INET, err, errlen) != 0)
		return KS_ERR_IO;
	failover_resolve(cl);
	if (dconf_endpoint_addr(&cl->cfg->local_listen, &la, err, errlen) != 0)
		return KS_ERR_INVAL;
	cl->listener = tcp_listener_new(cl->loop, &la, NULL, &lcb, err, errlen);
	if (!cl->listener)
		return KS_ERR_IO;
	if (cl->cfg->metrics_listen.set) {
		if (dconf_endpoint_addr(&cl->cfg->metrics_listen, &la, err, errlen) != 0)
			return KS_ERR_INVAL;
		cl->metrics = metrics_server_new(cl->loop, &la, NULL, &mh, err, errlen);
		if (!cl->metrics)
			return KS_ERR_IO;
	}
	return 0;
}

struct client *client_new(struct ev_loop *loop, const struct config *cfg, char *err, size_t errlen)
{
	struct client *cl = calloc(1, sizeof *cl);
	const struct loop_cb lcb = { before, round_once, after, deadline, on_timer, cl };

	if (!cl) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	cl->loop = loop;
	cl->cfg = cfg;
	cl->rng = sysrng_source();
	cl->cipher_offer = cipher_offer(cfg->cipher, "local");
	rng_fill(&cl->rng, cl->instance, sizeof cl->instance);
	{
		uint8_t key[DSTSEEN_KEY_LEN];

		rng_fill(&cl->rng, key, sizeof key);
		dstseen_init(&cl->seen, key);
	}
	cl->s5cfg.method = SOCKS5_METHOD_NONE;
	if (cfg->socks_user[0]) {
		cl->cred = (struct socks5_cred){ (const uint8_t *)cfg->socks_user,
			                         strlen(cfg->socks_user),
			                         (const uint8_t *)cfg->socks_password,
			                         strlen(cfg->socks_password) };
		cl->creds = (struct socks5_cred_table){ &cl->cred, 1 };
		cl->s5cfg = (struct socks5_server_config){ SOCKS5_METHOD_USERPASS,
			                                   socks5_cred_table_verify, &cl->creds };
	}
	relay_host_init(&cl->host, host_mux, cl);
	if (make_session(cl, err, errlen) == 0) {
		cl->ioloop = loop_new(loop, &lcb);
		if (!cl->ioloop)
			errbuf_set(err, errlen, "out of memory");
	}
	if (!cl->ioloop || open_sockets(cl, err, errlen) != 0) {
		client_free(cl);
		return NULL;
	}
	return cl;
}

void client_drain(struct client *cl, void (*on_empty)(void *arg), void *arg)
{
	cl->draining = true;
	/* Closed, not paused: a new instance can bind the port at once, and
	 * a new connection is refused instead of waiting in the backlog. */
	tcp_listener_free(cl->listener);
	cl->listener = NULL;
	metrics_server_free(cl->metrics);
	cl->metrics = NULL;
	cl->on_empty = on_empty;
	cl->on_empty_arg = arg;
	log_info("draining: %zu connection(s) open", cl->nconns);
	drain_check(cl);
}

void client_free(struct client *cl)
{
	if (!cl)
		return;
	while (!list_empty(&cl->conns)) {
		struct lconn *lc = list_first(&cl->conns, struct lconn, link);

		if (lc->phase == LC_RELAY)
			relay_abort(&lc->relay, false);
		else
			lconn_kill(lc);
	}
	cl->on_empty = NULL;
	if (cl->ioloop)
		loop_reap(cl->ioloop);
	/* L8: tell the server, so it frees the session and its streams now. */
	if (cl->sess && cl->peer && session_state(cl->sess) == SESSION_ESTABLISHED) {
		session_close(cl->sess, clock_mono_ms());
		(void)peer_flush(cl->peer);
	}
	metrics_server_free(cl->metrics);
	tcp_listener_free(cl->listener);
	failover_free_probe(cl);
	resolver_free(cl->res);
	if (cl->ioloop)
		loop_detach(cl->ioloop, cl->peer);
	loop_free(cl->ioloop);
	peer_free(cl->peer);
	session_free(cl->sess);
	free(cl);
}
