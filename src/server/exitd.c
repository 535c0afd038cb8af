/* exitd.c - kcpsocks-server's loop side (see exitd.h).
 *
 * Objects: struct exitd (the process), struct tunnel (one established
 * session: its streams by id, found by session id) and struct estream
 * (one stream: RESOLVE -> CONNECT -> RELAY). Teardown is two steps: an
 * estream leaves its tunnel's table and cancels its lookup/connect at
 * once (zombie) and is freed in the loop's deferred frees (io/loop.h).
 */
#include "server/exitd.h"
#include "base/errbuf.h"
#include "base/list.h"

#include <arpa/inet.h>
#include <ev.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/server.h"
#include "core/socks5.h"
#include "core/transport.h"
#include "io/addr.h"
#include "io/cipher.h"
#include "io/clock.h"
#include "io/dconf.h"
#include "io/ifaddrs.h"
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
#include "server/udpexit.h"

enum estream_phase { ES_RESOLVE, ES_CONNECT, ES_RELAY, ES_ZOMBIE };

struct tunnel {
	struct exitd *x;   /* borrowed */
	struct session *s; /* borrowed from the server: valid until its LOST is handled */
	uint64_t sid;
	char user[KEYS_NAME_MAX + 1]; /* a copy: a reload frees the config's */
	size_t ui;                    /* index of user in x->cu, or x->n_users if unknown */
	struct relay_host host;
	struct list_node link; /* on x->tunnels */
};

struct estream {
	struct exitd *x;  /* borrowed */
	struct tunnel *t; /* borrowed; NULL once the session is gone */
	enum estream_phase phase;
	struct relay relay;
	struct resolver_query *q; /* owned while RESOLVE */
	struct tcp_connect *tc;   /* owned while CONNECT */
	struct socks5_addr dst;
	char dst_text[SOCKS5_ADDR_TEXT_MAX];
	char user[KEYS_NAME_MAX + 1]; /* a copy: it may outlive a reload */
	char from[ADDR_TEXT_MAX];     /* the client's address when the stream opened */
	uint64_t start_ms;            /* monotonic */
	uint8_t rep;                  /* the SOCKS5 reply given */
	const char *why;              /* why it failed, or NULL */
	struct loop_deferred dead;    /* the free after ES_ZOMBIE */
};

/* Per-user accounting (the metrics' user label): kept for the process's
 * life, so the counters never go back when a session ends. Up is from the
 * client towards the destination, down the other way. */
struct user_acct {
	uint64_t up, down, streams, sessions;
};

struct exitd {
	struct ev_loop *loop;     /* borrowed */
	const struct config *cfg; /* borrowed */
	/* What a reload swaps (exitd_reload): the users and the policy of
	 * the latest config, borrowed from it. */
	const struct config_user *cu;
	size_t n_users;
	const struct config_policy *policy;
	struct rng_source rng;
	struct keys_user *users;        /* owned, n_users */
	struct server *core;            /* owned */
	struct loop *ioloop;            /* owned: the rounds, the timer, deferred frees */
	struct peer *peer;              /* owned */
	struct resolver *res;           /* owned */
	struct udpexit *udp;            /* owned: UDP associations */
	struct metrics_server *metrics; /* owned, may be NULL */
	struct list tunnels;            /* owned: one per established session, each hung on
	                                   its session (server_set_owner): no table of ours */
	struct relay_host *dirty_hosts; /* tunnels with mux calls to pump (relay_host_mark) */
	size_t ntunnels, nstreams;
	size_t tunnels_peak;       /* most tunnels since the last trim (trim_after_burst) */
	struct ifaddrs_cache self; /* own addresses for the policy's `self` rule */
	bool draining;
	void (*on_empty)(void *arg);
	void *on_empty_arg;
	/* counters for /metrics */
	uint64_t streams_total, replies[SOCKS5_REP_LAST + 1], handshakes_ok;
	struct cipher_counts ciphers;  /* sessions established, by AEAD */
	uint64_t relay_up, relay_down; /* of tunnels already gone */
	struct user_acct *acct;        /* owned, n_users */
};

static void reply_count(struct exitd *x, uint8_t rep)
{
	x->replies[rep <= SOCKS5_REP_LAST ? rep : SOCKS5_REP_GENERAL_FAILURE]++;
}

/* --- tunnels ---------------------------------------------------------------------- */

/* The tunnel of live session sid: the server table's one lookup. */
static struct tunnel *tunnel_find(struct exitd *x, uint64_t sid)
{
	return server_owner(x->core, sid);
}

static struct tunnel *first_tunnel(struct exitd *x)
{
	return list_first(&x->tunnels, struct tunnel, link);
}

static struct tunnel *next_tunnel(struct tunnel *t) { return list_next(t, struct tunnel, link); }

/* The mux of a tunnel (NULL once its session ended). */
static struct mux *tunnel_mux(void *ctx)
{
	const struct tunnel *t = ctx;

	return session_mux(t->s);
}

/* --- streams --------------------------------------------------------------------- */

/* The access log: one line per stream. Up is client -> destination
 * (mux -> TCP here), down the other way. Failures are rate-limited, so a
 * client hammering a refused destination cannot flood the log. */
static void access_log(const struct estream *es)
{
	uint64_t ms = clock_mono_ms() - es->start_ms;
	char line[LOG_LINE_MAX];

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	/* A longer line (a long host name) is cut, like any log line. */
	if (snprintf(line, sizeof line,
	             "stream user=%s client=%s dest=%s result=\"%s\"%s%s%s up=%llu down=%llu "
	             "duration=%llu.%03llus",
	             es->user, es->from, es->dst_text, socks5_rep_name(es->rep),
	             es->why ? " reason=\"" : "", es->why ? es->why : "", es->why ? "\"" : "",
	             (unsigned long long)es->relay.bytes_down,
	             (unsigned long long)es->relay.bytes_up, (unsigned long long)(ms / 1000),
	             (unsigned long long)(ms % 1000)) < 0)
		return;
	if (es->rep == SOCKS5_REP_SUCCEEDED && !es->why)
		log_info("%s", line);
	else
		log_limited(LOG_LEVEL_INFO, "%s", line);
}

static void estream_free(struct loop_deferred *d)
{
	free((char *)d - offsetof(struct estream, dead));
}

static void estream_kill(struct estream *es)
{
	struct exitd *x = es->x;

	if (es->phase == ES_ZOMBIE)
		return;
	access_log(es);
	resolver_cancel(es->q);
	tcp_connect_cancel(es->tc);
	es->q = NULL;
	es->tc = NULL;
	if (es->relay.phase == RELAY_PENDING && es->relay.host)
		relay_remove(&es->relay);
	es->phase = ES_ZOMBIE;
	x->nstreams--;
	loop_defer(x->ioloop, &es->dead, estream_free);
}

/* The SOCKS5 reply on the stream; a failure also ends our direction. */
static void stream_reply(struct exitd *x, struct relay_host *h, uint32_t id, uint8_t rep,
                         const struct socks5_addr *bnd)
{
	uint8_t out[SOCKS5_REPLY_MAX];
	ssize_t n = socks5_encode_reply(out, sizeof out, rep, bnd);
	struct mux *m = relay_host_mux(h);

	reply_count(x, rep);
	if (!m)
		return;
	if (n < 0 || mux_stream_reply(m, id, out, (size_t)n) != 0)
		(void)mux_stream_reset(m, id, MUX_RST_CONNECT);
	else if (rep != SOCKS5_REP_SUCCEEDED && mux_stream_shutdown(m, id) != 0)
		(void)mux_stream_reset(m, id, MUX_RST_CONNECT);
	relay_host_mark(h);
}

static void estream_fail(struct estream *es, uint8_t rep, const char *why)
{
	es->rep = rep;
	es->why = why;
	if (es->t)
		stream_reply(es->x, &es->t->host, es->relay.id, rep, NULL);
	else
		reply_count(es->x, rep);
	estream_kill(es);
}

static void relay_done(struct relay *r, void *arg)
{
	(void)r;
	estream_kill(arg);
}

static void on_tcp(struct tcp_conn *c, const struct tcp_conn_event *ev, void *arg)
{
	struct estream *es = arg;

	(void)c;
	if (es->phase == ES_RELAY)
		relay_on_tcp_event(&es->relay, ev);
}

static void bound_addr(const struct sockaddr_storage *ss, struct socks5_addr *out)
{
	if (ss && ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		socks5_addr_ipv4(out, (const uint8_t *)&a->sin_addr, ntohs(a->sin_port));
	} else if (ss && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		socks5_addr_ipv6(out, a->sin6_addr.s6_addr, ntohs(a->sin6_port));
	} else {
		static const uint8_t zero[4];

		socks5_addr_ipv4(out, zero, 0);
	}
}

static void on_connected(const struct tcp_connect_result *res, void *arg)
{
	struct estream *es = arg;
	struct tcp_conn_cb cb = { on_tcp, es };
	struct socks5_addr bnd;
	struct tcp_conn *c;

	es->tc = NULL;
	if (res->err) {
		estream_fail(es, socks5_rep_from_errno(res->err), strerror(res->err));
		return;
	}
	c = tcp_conn_new(es->x->loop, res->fd, NULL, &cb);
	if (!c) {
		close(res->fd);
		estream_fail(es, SOCKS5_REP_GENERAL_FAILURE, "out of memory");
		return;
	}
	bound_addr(res->local, &bnd);
	es->rep = SOCKS5_REP_SUCCEEDED;
	stream_reply(es->x, &es->t->host, es->relay.id, SOCKS5_REP_SUCCEEDED, &bnd);
	log_debug("stream %u to %s: connected", es->relay.id, es->dst_text);
	es->phase = ES_RELAY;
	relay_start(&es->relay, c);
}

/* Keeps the addresses the policy allows, in order. The host's own
 * addresses are re-read when the copy is over a second old. */
static size_t allowed(struct exitd *x, const struct sockaddr_storage *in, size_t n,
                      struct sockaddr_storage *out)
{
	const struct config_self *self = ifaddrs_current(&x->self, clock_mono_ms());
	size_t k = 0;

	for (size_t i = 0; i < n && k < TCP_CONNECT_ADDRS_MAX; i++) {
		const uint8_t *a;
		int fam;

		if (in[i].ss_family == AF_INET) {
			a = (const uint8_t *)&((const struct sockaddr_in *)&in[i])->sin_addr;
			fam = 4;
		} else if (in[i].ss_family == AF_INET6) {
			a = ((const struct sockaddr_in6 *)&in[i])->sin6_addr.s6_addr;
			fam = 6;
		} else
			continue;
		if (config_dest_allowed_with(x->policy, self, fam, a, addr_port(&in[i])))
			out[k++] = in[i];
	}
	return k;
}

static void connect_to(struct estream *es, const struct sockaddr_storage *addrs, size_t n)
{
	struct sockaddr_storage ok[TCP_CONNECT_ADDRS_MAX];
	struct tcp_connect_cb cb = { on_connected, es };
	size_t k = allowed(es->x, addrs, n, ok);

	if (k == 0) {
		estream_fail(es, SOCKS5_REP_NOT_ALLOWED, "destination policy");
		return;
	}
	es->tc = tcp_connect_start(es->x->loop, ok, k, es->x->cfg->connect_timeout_ms, &cb);
	if (!es->tc) {
		estream_fail(es, SOCKS5_REP_GENERAL_FAILURE, "connect: out of memory");
		return;
	}
	es->phase = ES_CONNECT;
}

static void on_resolved(const struct resolver_result *res, void *arg)
{
	struct estream *es = arg;

	es->q = NULL;
	if (res->status != RESOLVER_OK) {
		estream_fail(es, socks5_rep_from_errno(resolver_status_errno(res->status)),
		             resolver_status_name(res->status));
		return;
	}
	connect_to(es, res->addrs, res->n);
}

static void start_stream(struct estream *es)
{
	struct sockaddr_storage ss;
	struct resolver_cb cb = { on_resolved, es };
	int rc;

	memset(&ss, 0, sizeof ss);
	switch (es->dst.type) {
	case SOCKS5_ATYP_IPV4: {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(es->dst.port);
		memcpy(&a->sin_addr, es->dst.ipv4, 4);
		connect_to(es, &ss, 1);
		return;
	}
	case SOCKS5_ATYP_IPV6: {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(es->dst.port);
		memcpy(&a->sin6_addr, es->dst.ipv6, 16);
		connect_to(es, &ss, 1);
		return;
	}
	default: break;
	}
	rc = resolver_resolve(es->x->res, es->dst.domain, es->dst.port, RESOLVER_ANY, &cb, &es->q);
	if (rc != 0)
		estream_fail(es, SOCKS5_REP_GENERAL_FAILURE, ks_strerror(rc));
}

/* The client's address now (it may move: NAT rebinding), as text. */
static void tunnel_peer(struct exitd *x, const struct tunnel *t, char out[static ADDR_TEXT_MAX])
{
	const struct sessions_slot *slot = sessions_get(server_table(x->core), t->sid);
	struct sockaddr_storage ss;

	snprintf(out, ADDR_TEXT_MAX, "?");
	if (!slot || slot->peer.len == 0 || slot->peer.len > sizeof ss)
		return;
	memset(&ss, 0, sizeof ss);
	memcpy(&ss, slot->peer.bytes, slot->peer.len);
	addr_format(&ss, out);
}

/* --- UDP ASSOCIATE (docs/PROTOCOL.md (UDP) U4, U6; server/udpexit.c) ------- */

/* The OPEN of a UDP ASSOCIATE: the association is the stream; it lives
 * until the stream ends either way. */
static void udp_assoc_open(struct exitd *x, struct tunnel *t, const struct mux_event *ev)
{
	struct session *s = server_session(x->core, t->sid);
	const struct transport_params *p = s ? session_params(s) : NULL;
	int rc = KS_ERR_UNSUPPORTED;

	if (p && (p->features & TPARAMS_FEAT_DATAGRAM))
		rc = udpexit_open(x->udp, t->sid, ev->id, clock_mono_ms());
	if (rc != 0) {
		log_limited(LOG_LEVEL_INFO, "udp association user=%s refused: %s", t->user,
		            !p || !(p->features & TPARAMS_FEAT_DATAGRAM) ? "datagrams not agreed"
		            : rc == KS_ERR_UNSUPPORTED                   ? "udp_associations is 0"
		            : rc == KS_ERR_LIMIT ? "udp_associations reached"
		                                 : ks_strerror(rc));
		stream_reply(x, &t->host, ev->id,
		             !p || !(p->features & TPARAMS_FEAT_DATAGRAM)
		                     ? SOCKS5_REP_CMD_UNSUPPORTED
		             : rc == KS_ERR_UNSUPPORTED ? SOCKS5_REP_NOT_ALLOWED
		                                        : SOCKS5_REP_GENERAL_FAILURE,
		             NULL);
		return;
	}
	log_limited(LOG_LEVEL_INFO, "udp association user=%s stream %u opened", t->user, ev->id);
	stream_reply(x, &t->host, ev->id, SOCKS5_REP_SUCCEEDED, NULL);
}

/* The association's stream carries nothing; its end ends the association
 * (a FIN is answered with ours, so the mux frees the stream). */
static void udp_stream_event(struct exitd *x, struct tunnel *t, const struct mux_event *ev)
{
	struct mux *m = relay_host_mux(&t->host);
	uint8_t buf[1024];
	ssize_t n;

	if (ev->type == MUX_EV_RESET || !m) {
		udpexit_close(x->udp, t->sid, ev->id);
		return;
	}
	if (ev->type != MUX_EV_READABLE && ev->type != MUX_EV_FIN)
		return;
	while ((n = mux_stream_read(m, ev->id, buf, sizeof buf)) > 0)
		;
	relay_host_mark(&t->host);
	if (n == 0) {
		udpexit_close(x->udp, t->sid, ev->id);
		if (mux_stream_shutdown(m, ev->id) != 0)
			(void)mux_stream_reset(m, ev->id, MUX_RST_CANCEL);
	}
}

static int udp_send(uint64_t sid, uint32_t id, const uint8_t *p, size_t n, void *ctx)
{
	struct exitd *x = ctx;
	struct session *s = server_session(x->core, sid);
	int rc;

	if (!s)
		return KS_ERR_CLOSED;
	/* The frame goes out ahead of queued bulk datagrams (io/peer.h). */
	if (x->peer)
		peer_lane(x->peer, PEER_LANE_URGENT);
	rc = session_send_datagram(s, id, p, n, clock_mono_ms());
	if (x->peer)
		peer_lane(x->peer, PEER_LANE_BULK);
	return rc;
}

static size_t allowed(struct exitd *x, const struct sockaddr_storage *in, size_t n,
                      struct sockaddr_storage *out);

static bool udp_allowed(const struct sockaddr_storage *a, void *ctx)
{
	struct sockaddr_storage ok;

	return allowed(ctx, a, 1, &ok) == 1;
}

/* An association idled out: reset its stream, the client's control
 * connection closes. */
static void udp_ended(uint64_t sid, uint32_t id, void *ctx)
{
	struct exitd *x = ctx;
	struct tunnel *t = tunnel_find(x, sid);
	struct mux *m = t ? relay_host_mux(&t->host) : NULL;

	if (m) {
		(void)mux_stream_reset(m, id, MUX_RST_CANCEL);
		relay_host_mark(&t->host);
	}
}

static void on_udp_frame(uint64_t sid, uint32_t id, const uint8_t *p, size_t len, void *user)
{
	struct exitd *x = user;

	udpexit_on_frame(x->udp, sid, id, p, len, clock_mono_ms());
}

static int make_udp(struct exitd *x, char *err, size_t errlen)
{
	struct udpexit_ops ops = { x->loop, x->res, udp_send, udp_allowed, udp_ended, x };
	struct udpexit_limits lim = { x->cfg->udp_associations, x->cfg->udp_rate,
		                      x->cfg->udp_queue_bytes, x->cfg->udp_idle_timeout_ms };

	x->udp = udpexit_new(&ops, &lim);
	if (!x->udp) {
		errbuf_set(err, errlen, "out of memory");
		return KS_ERR_NOMEM;
	}
	return 0;
}

/* MUX_EV_OPEN: the client's SOCKS5 request, verbatim. */
static void on_open(struct exitd *x, struct tunnel *t, const struct mux_event *ev)
{
	struct relay_ops ops = { relay_done, NULL };
	struct socks5_request rq;
	enum socks5_fault fault;
	struct estream *es;
	ssize_t n = socks5_parse_request(ev->data, ev->len, &rq, &fault);
	uint8_t rep = SOCKS5_REP_GENERAL_FAILURE;

	x->streams_total++;
	if (t->ui < x->n_users)
		x->acct[t->ui].streams++;
	if (n < 0 || (size_t)n != ev->len) {
		(void)socks5_fault_reply(fault, &rep);
		log_limited(LOG_LEVEL_INFO, "stream user=%s refused: bad SOCKS5 request (%s)",
		            t->user, socks5_fault_name(fault));
		stream_reply(x, &t->host, ev->id, rep, NULL);
		return;
	}
	if (rq.cmd == SOCKS5_CMD_UDP_ASSOCIATE && !x->draining) {
		udp_assoc_open(x, t, ev);
		return;
	}
	if (rq.cmd != SOCKS5_CMD_CONNECT || x->draining) {
		log_limited(LOG_LEVEL_INFO, "stream user=%s refused: %s", t->user,
		            x->draining ? "the server is shutting down" : "not a CONNECT request");
		stream_reply(x, &t->host, ev->id,
		             x->draining ? SOCKS5_REP_GENERAL_FAILURE : SOCKS5_REP_CMD_UNSUPPORTED,
		             NULL);
		return;
	}
	es = calloc(1, sizeof *es);
	ops.arg = es;
	if (!es || relay_add(&t->host, &es->relay, ev->id, &ops) != 0) {
		free(es);
		stream_reply(x, &t->host, ev->id, SOCKS5_REP_GENERAL_FAILURE, NULL);
		return;
	}
	es->x = x;
	es->t = t;
	es->dst = rq.dst;
	es->phase = ES_RESOLVE;
	memcpy(es->user, t->user, sizeof es->user);
	es->start_ms = clock_mono_ms();
	es->rep = SOCKS5_REP_GENERAL_FAILURE;
	tunnel_peer(x, t, es->from);
	if (socks5_addr_format(&rq.dst, es->dst_text, sizeof es->dst_text) < 0)
		snprintf(es->dst_text, sizeof es->dst_text, "?");
	x->nstreams++;
	start_stream(es);
}

/* --- session events ------------------------------------------------------------------ */

static struct estream *of_relay(struct relay *r)
{
	return (struct estream *)((char *)r - offsetof(struct estream, relay));
}

static void on_stream_event(struct exitd *x, struct tunnel *t, const struct mux_event *ev)
{
	struct relay *r;

	if (ev->type == MUX_EV_OPEN) {
		on_open(x, t, ev);
		return;
	}
	if (udpexit_has(x->udp, t->sid, ev->id)) {
		udp_stream_event(x, t, ev);
		return;
	}
	r = relay_find(&t->host, ev->id);
	if (!r) {
		relay_host_drain_orphan(&t->host, ev);
		return;
	}
	if (r->phase == RELAY_RUNNING)
		relay_on_mux_event(r, ev);
	else if (ev->type == MUX_EV_RESET) {
		of_relay(r)->why = "the client gave up before the reply";
		estream_kill(of_relay(r));
	}
}

static void pending_lost(struct relay *r, void *arg)
{
	struct estream *es = of_relay(r);

	(void)arg;
	es->t = NULL;
	es->why = "the session ended";
	estream_kill(es);
}

static void profile_check(struct exitd *x, struct session *s, uint64_t sid)
{
	const struct transport_params *p = session_params(s);
	const struct profile *pr = p ? profile_at(p->profile) : NULL;

	if (pr && !(x->cfg->accepted_profiles & (1u << p->profile)))
		log_warn("session %016llx: profile %s is not accepted here; its parameters were "
		         "clamped to the accepted profiles' ranges",
		         (unsigned long long)sid, pr->name);
}

static void on_established(struct exitd *x, uint64_t sid, struct session *s)
{
	const struct sessions_slot *slot = sessions_get(server_table(x->core), sid);
	struct tunnel *t;

	if (tunnel_find(x, sid))
		return;
	t = calloc(1, sizeof *t);
	if (!t) {
		log_error("session %016llx: out of memory", (unsigned long long)sid);
		(void)server_close(x->core, sid);
		return;
	}
	t->x = x;
	t->s = s;
	t->sid = sid;
	/* Its events carry t from now on: no lookup of ours per datagram. */
	(void)server_set_owner(x->core, sid, t);
	t->ui = slot && slot->user < x->n_users ? slot->user : x->n_users;
	snprintf(t->user, sizeof t->user, "%s", t->ui < x->n_users ? x->cu[t->ui].name : "?");
	if (t->ui < x->n_users)
		x->acct[t->ui].sessions++;
	relay_host_init(&t->host, tunnel_mux, t);
	t->host.dirty_list = &x->dirty_hosts;
	list_push(&x->tunnels, &t->link);
	x->ntunnels++;
	if (x->ntunnels > x->tunnels_peak)
		x->tunnels_peak = x->ntunnels;
	x->handshakes_ok++;
	cipher_count(&x->ciphers, session_params(s) ? session_params(s)->features : 0);
	/* Rate-limited: one user's flood of inits must not flood the log. */
	log_limited(
	        LOG_LEVEL_INFO, "session %016llx of user %s established (wire version %u, %s%s%s)",
	        (unsigned long long)sid, t->user, session_params(s) ? session_params(s)->wire : 0,
	        tparams_cipher_name(session_params(s) ? session_params(s)->features : 0),
	        session_params(s) && session_params(s)->features & TPARAMS_FEAT_STREAM_DELIVERY
	                ? ", per-stream delivery"
	                : "",
	        session_params(s) && session_params(s)->wire < HANDSHAKE_WIRE_VERSION
	                ? ", an older client: no fast open offered"
	                : "");
	profile_check(x, s, sid);
}

/* t: the LOST event's owner (NULL: the session never got a tunnel). */
static void on_lost(struct exitd *x, struct tunnel *t, uint64_t sid,
                    enum session_lost_reason reason)
{
	if (!t)
		return;
	list_remove(&x->tunnels, &t->link);
	x->ntunnels--;
	log_limited(LOG_LEVEL_INFO, "session %016llx of user %s ended: %s", (unsigned long long)sid,
	            t->user, session_lost_text(reason, SESSION_SERVER));
	relay_host_lost(&t->host, pending_lost, x);
	udpexit_close_session(x->udp, sid);
	/* After relay_host_lost: the bytes of the streams it closed count.
	 * The host's up (TCP -> mux) is towards the client: our down. */
	x->relay_up += t->host.bytes_down;
	x->relay_down += t->host.bytes_up;
	if (t->ui < x->n_users) {
		x->acct[t->ui].up += t->host.bytes_down;
		x->acct[t->ui].down += t->host.bytes_up;
	}
	relay_host_unmark(&t->host);
	free(t);
}

static void on_event(struct exitd *x, const struct server_event *ev)
{
	struct tunnel *t;

	switch (ev->ev.type) {
	case SESSION_EV_ESTABLISHED: on_established(x, ev->sid, ev->session); break;
	case SESSION_EV_LOST: on_lost(x, ev->owner, ev->sid, ev->ev.reason); break;
	case SESSION_EV_HANDSHAKE_FAILED: break;
	case SESSION_EV_STREAM:
		t = ev->owner;
		if (t && ev->session)
			on_stream_event(x, t, &ev->ev.stream);
		break;
	}
}

/* trim_after_burst gives freed heap back to the system once many sessions
 * ended since the last time (glibc keeps it otherwise: issue 19 saw 1 GB
 * stay after 10,000 sessions expired). O(heap), so only after a drop of
 * EXITD_TRIM_SESSIONS sessions, not per session. */
static void trim_after_burst(struct exitd *x)
{
	if (x->tunnels_peak < x->ntunnels + EXITD_TRIM_SESSIONS)
		return;
	malloc_trim(0);
	x->tunnels_peak = x->ntunnels;
}

/* While draining: the last stream gone ends the drain. */
static void drain_check(struct exitd *x)
{
	if (x->draining && x->nstreams == 0 && x->on_empty) {
		void (*f)(void *) = x->on_empty;

		x->on_empty = NULL;
		f(x->on_empty_arg);
	}
}

/* Pumps every session whose streams moved bytes. */
static bool pump_dirty(struct exitd *x, uint64_t now)
{
	bool any = false;
	struct relay_host *h;

	/* Only the dirty ones: no walk over every session per loop turn. */
	while ((h = relay_host_take_dirty(&x->dirty_hosts)) != NULL) {
		struct tunnel *t =
		        (struct tunnel *)(void *)((char *)h - offsetof(struct tunnel, host));
		/* t->s is valid while t is: a closed one waits for its LOST. */
		if (session_state(t->s) == SESSION_ESTABLISHED) {
			session_pump(t->s, now);
			any = true;
		}
	}
	return any;
}

/* --- the loop's turn (io/loop.h) ---------------------------------------------- */

/* One round: events, the dirty sessions' pumps, one flush. */
static bool round_once(uint64_t now, void *arg)
{
	struct exitd *x = arg;
	struct server_event ev;
	bool any = false;

	while (server_next_event(x->core, &ev) == 0) {
		on_event(x, &ev);
		any = true;
	}
	any = pump_dirty(x, now) || any;
	/* One flush per batch: ACKs of what was read ride with the answers;
	 * events it raises are taken in the next round. */
	server_flush(x->core, now);
	return any;
}

static void after(uint64_t now, void *arg)
{
	struct exitd *x = arg;

	(void)now;
	trim_after_burst(x);
	drain_check(x);
}

static uint64_t deadline(void *arg)
{
	const struct exitd *x = arg;

	return server_next_deadline(x->core);
}

static void on_timer(uint64_t now, void *arg)
{
	struct exitd *x = arg;

	server_on_timer(x->core, now);
}

/* --- datagrams ------------------------------------------------------------------------ */

static int on_output(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct exitd *x = user;
	struct sockaddr_storage ss;

	if (!to || to->len > sizeof ss)
		return KS_ERR_INVAL;
	memset(&ss, 0, sizeof ss);
	memcpy(&ss, to->bytes, to->len);
	return peer_send(x->peer, d, len, &ss);
}

/* The seal goes straight into the socket's send queue (peer_slot). */
static uint8_t *on_slot(size_t *cap, void *user)
{
	struct exitd *x = user;

	return x->peer ? peer_slot(x->peer, cap) : NULL;
}

/* Handshake refusals a user can fix, at info, rate-limited (a flood of
 * them is the counters' business): found by what the datagram added to
 * the handshake counters. */
static void refusal_log(const struct exitd *x, const struct handshake_counters *was,
                        uint64_t was_no_session, const struct sockaddr_storage *from)
{
	const struct handshake_counters *n = sessions_hs_counters(server_table(x->core));
	const char *why = NULL;
	char a[ADDR_TEXT_MAX];

	if (sessions_counters(server_table(x->core))->no_session != was_no_session) {
		log_limited(
		        LOG_LEVEL_INFO,
		        "datagram from %s matches no session: a client of this server before a "
		        "restart (it handshakes again), or one with another server's public key",
		        addr_format(from, a));
		return;
	}
	if (n->bad_mac1 != was->bad_mac1)
		why = "not for this server's key (the client's server_public_key is wrong, or it "
		      "is not a kcpsocks client)";
	else if (n->bad_user != was->bad_user)
		why = "unknown user";
	else if (n->bad_auth != was->bad_auth)
		why = "wrong psk for the user";
	else if (n->stale != was->stale)
		why = "stale timestamp (the client's clock is off, or the init was replayed "
		      "from before this server started)";
	else
		return;
	log_limited(LOG_LEVEL_INFO, "handshake from %s refused: %s", addr_format(from, a), why);
}

static void on_datagram(const struct udp_dgram *d, uint64_t now, void *arg)
{
	struct exitd *x = arg;
	struct sessions_addr from;
	socklen_t l = addr_len(d->from);
	char a[ADDR_TEXT_MAX];
	struct handshake_counters was = *sessions_hs_counters(server_table(x->core));
	uint64_t was_no_session = sessions_counters(server_table(x->core))->no_session;
	int rc;

	if (l == 0 || l > sizeof from.bytes)
		return;
	from.len = (uint8_t)l;
	memcpy(from.bytes, d->from, l);
	rc = server_on_datagram(x->core, &from, d->data, d->len, now, clock_wall_ms());
	refusal_log(x, &was, was_no_session, d->from);
	if (rc == KS_ERR_FULL) {
		log_limited(LOG_LEVEL_WARN, "handshake from %s refused: max_sessions (%u) reached",
		            addr_format(d->from, a), (unsigned)x->cfg->max_sessions);
	} else if (rc == KS_ERR_UNSUPPORTED) {
		const struct handshake_refusal *r = sessions_last_refusal(server_table(x->core));

		log_limited(LOG_LEVEL_WARN,
		            "handshake from %s (user %s) refused: it speaks wire versions %u..%u, "
		            "this server %u..%u; the client was told",
		            addr_format(d->from, a),
		            r->user < x->n_users ? x->cu[r->user].name : "?",
		            (unsigned)r->client_min, (unsigned)r->client_max,
		            (unsigned)r->server_min, (unsigned)r->server_max);
	}
}

/* --- metrics ------------------------------------------------------------------------- */

static void write_sessions(struct exitd *x, struct metrics_buf *b)
{
	struct smetrics_session *v = calloc(x->ntunnels ? x->ntunnels : 1, sizeof *v);
	size_t n = 0;

	if (!v)
		return;
	for (struct tunnel *t = first_tunnel(x); t && n < x->ntunnels; t = next_tunnel(t)) {
		struct session *s = server_session(x->core, t->sid);

		if (!s)
			continue;
		snprintf(v[n].sid, sizeof v[n].sid, "%016llx", (unsigned long long)t->sid);
		v[n].user = t->user;
		session_stats(s, &v[n].st);
		n++;
	}
	smetrics_sessions(b, v, n);
	free(v);
}

static void drop_sample(struct metrics_buf *b, const char *reason, uint64_t v)
{
	struct metrics_label l = { "reason", reason };

	metrics_sample_u64(b, "kcpsocks_dropped_datagrams_total", &l, 1, v);
}

/* Why handshake inits were refused (docs/PROTOCOL.md security): the
 * cost-control counters show a flood and what it cost. */
static void write_handshake(struct metrics_buf *b, const struct handshake_counters *n)
{
	static const char name[] = "kcpsocks_handshake_inits_total";
	const struct {
		const char *result;
		uint64_t v;
	} r[] = {
		{ "accepted", n->accepted },
		{ "bad_length", n->bad_len },
		{ "bad_mac1", n->bad_mac1 },
		{ "known_bad", n->known_bad },
		{ "stale", n->stale },
		{ "replay", n->replay },
		{ "over_budget", n->budget },
		{ "bad_dh", n->bad_dh },
		{ "unknown_user", n->bad_user },
		{ "bad_psk", n->bad_auth },
		{ "bad_payload", n->bad_payload },
		{ "version_refused", n->refused },
	};

	metrics_family(b, name, METRICS_COUNTER,
	               "handshake inits by outcome (bad_dh, unknown_user, bad_psk and bad_payload "
	               "cost an X25519 each; the others did not)");
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		struct metrics_label l = { "result", r[i].result };

		metrics_sample_u64(b, name, &l, 1, r[i].v);
	}
	metrics_counter(b, "kcpsocks_handshake_legacy_clients_total",
	                "handshakes accepted from wire version 1 clients", n->legacy);
}

/* Per-user accounting: one sample per configured user, live sessions'
 * bytes included. */
static void write_users(struct exitd *x, struct metrics_buf *b)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{ "kcpsocks_user_up_bytes_total", "bytes the user's clients sent to destinations" },
		{ "kcpsocks_user_down_bytes_total",
		  "bytes destinations sent back to the user's clients" },
		{ "kcpsocks_user_streams_total", "connections the user's clients asked for" },
		{ "kcpsocks_user_sessions_total", "sessions the user's clients established" },
	};
	size_t n = x->n_users;
	struct user_acct *now = calloc(n ? n : 1, sizeof *now);

	if (!now)
		return;
	memcpy(now, x->acct, n * sizeof *now);
	for (struct tunnel *t = first_tunnel(x); t; t = next_tunnel(t))
		if (t->ui < n) {
			now[t->ui].up += t->host.bytes_down;
			now[t->ui].down += t->host.bytes_up;
		}
	for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
		metrics_family(b, fam[f].name, METRICS_COUNTER, fam[f].help);
		for (size_t u = 0; u < n; u++) {
			const uint64_t v[] = { now[u].up, now[u].down, now[u].streams,
				               now[u].sessions };
			struct metrics_label l = { "user", x->cu[u].name };

			metrics_sample_u64(b, fam[f].name, &l, 1, v[f]);
		}
	}
	free(now);
}

static void write_metrics(struct metrics_buf *b, void *arg)
{
	struct exitd *x = arg;
	struct server_stats st;
	struct peer_stats ps;
	uint64_t up = x->relay_up, down = x->relay_down;
	char rep[12];

	server_stats(x->core, &st);
	peer_stats(x->peer, &ps);
	for (struct tunnel *t = first_tunnel(x); t; t = next_tunnel(t)) {
		up += t->host.bytes_down;
		down += t->host.bytes_up;
	}
	metrics_gauge(b, "kcpsocks_sessions", "sessions established now", (double)st.live);
	metrics_counter(b, "kcpsocks_handshakes_ok_total", "handshakes accepted (sessions made)",
	                st.created);
	cipher_metrics(b, &x->ciphers);
	metrics_counter(b, "kcpsocks_handshakes_failed_total",
	                "handshake inits refused (bad, replayed, stale)", st.table.init_refused);
	metrics_counter(b, "kcpsocks_sessions_full_total",
	                "handshakes refused: max_sessions reached", st.table.full);
	metrics_counter(b, "kcpsocks_sessions_superseded_total",
	                "sessions replaced by a newer one of the same user", st.table.superseded);
	metrics_counter(b, "kcpsocks_sessions_roamed_total",
	                "times a session's peer address moved (NAT rebinding)", st.table.moved);
	metrics_counter(b, "kcpsocks_path_challenges_total",
	                "address checks (PATH_CHALLENGE) sent to a session's new address",
	                st.table.path_challenges);
	metrics_counter(
	        b, "kcpsocks_path_challenges_refused_total",
	        "address checks not sent: the new address would get over 3x the bytes it sent",
	        st.table.path_refused);
	metrics_counter(b, "kcpsocks_path_kept_total",
	                "candidate addresses dropped because the proven path spoke",
	                st.table.path_kept);
	metrics_family(b, "kcpsocks_sessions_lost_total", METRICS_COUNTER,
	               "sessions that ended, by reason");
	for (int i = 0; i < SESSION_LOST_REASONS; i++) {
		struct metrics_label l = { "reason", session_lost_label(i) };

		metrics_sample_u64(b, "kcpsocks_sessions_lost_total", &l, 1, st.lost[i]);
	}
	metrics_gauge(b, "kcpsocks_streams", "streams being resolved, connected or relayed",
	              (double)x->nstreams);
	metrics_counter(b, "kcpsocks_streams_total", "streams opened by clients", x->streams_total);
	metrics_family(b, "kcpsocks_server_replies_total", METRICS_COUNTER,
	               "SOCKS5 replies sent, by REP code");
	for (int i = 0; i <= SOCKS5_REP_LAST; i++) {
		struct metrics_label l = { "rep", rep };

		snprintf(rep, sizeof rep, "%d", i);
		metrics_sample_u64(b, "kcpsocks_server_replies_total", &l, 1, x->replies[i]);
	}
	metrics_counter(b, "kcpsocks_relay_up_bytes_total",
	                "bytes relayed up: from applications towards their destinations", up);
	metrics_counter(b, "kcpsocks_relay_down_bytes_total",
	                "bytes relayed down: from destinations back to applications", down);
	smetrics_udp(b, &ps, loop_timer_fires(x->ioloop));
	metrics_gauge(b, "kcpsocks_resolver_pending", "name lookups in flight",
	              (double)resolver_pending(x->res));
	metrics_family(b, "kcpsocks_dropped_datagrams_total", METRICS_COUNTER,
	               "datagrams dropped, by reason");
	drop_sample(b, "bad_length", st.table.bad_len);
	drop_sample(b, "no_session", st.table.no_session);
	drop_sample(b, "not_authentic", st.table.refused);
	drop_sample(b, "handshake_refused", st.table.init_refused);
	drop_sample(b, "table_full", st.table.full);
	drop_sample(b, "truncated", ps.rx->truncated);
	drop_sample(b, "send_queue_full", ps.tx.full_drops);
	drop_sample(b, "send_error", ps.tx.errors);
	write_handshake(b, sessions_hs_counters(server_table(x->core)));
	udp_metrics_write(b, udpexit_counters(x->udp));
	write_users(x, b);
	write_sessions(x, b);
}

/* --- set-up ---------------------------------------------------------------------------- */

/* A client holds its session slot for its idle timeout:
 * max_idle_timeout_ms bounds what it may ask for, and the keepalive with
 * it (two fit in the window). */
static void idle_cap(const struct config *cfg, struct transport_params *min,
                     struct transport_params *max, struct transport_params *def)
{
	if (max->idle_timeout_ms > cfg->max_idle_timeout_ms)
		max->idle_timeout_ms = cfg->max_idle_timeout_ms;
	if (max->keepalive_ms > max->idle_timeout_ms / 2)
		max->keepalive_ms = max->idle_timeout_ms / 2;
	if (min->keepalive_ms > max->keepalive_ms)
		min->keepalive_ms = max->keepalive_ms;
	if (def->idle_timeout_ms > max->idle_timeout_ms)
		def->idle_timeout_ms = max->idle_timeout_ms;
	if (def->keepalive_ms > max->keepalive_ms)
		def->keepalive_ms = max->keepalive_ms;
}

static int make_core(struct exitd *x, const struct keys_server *key, char *err, size_t errlen)
{
	struct server_config sc = { 0 };
	struct mux_config mc;
	int rc;

	x->users = calloc(x->n_users ? x->n_users : 1, sizeof *x->users);
	x->acct = calloc(x->n_users ? x->n_users : 1, sizeof *x->acct);
	if (!x->users || !x->acct) {
		errbuf_set(err, errlen, "out of memory");
		return KS_ERR_NOMEM;
	}
	for (size_t i = 0; i < x->n_users; i++)
		if (keys_user_set(&x->users[i], x->cu[i].name, x->cu[i].psk) != 0) {
			errbuf_set(err, errlen, "[user %s]: not a valid user name", x->cu[i].name);
			return KS_ERR_INVAL;
		}
	sc.table.key = key;
	sc.table.users = x->users;
	sc.table.n_users = x->n_users;
	sc.table.capacity = x->cfg->max_sessions;
	/* Inits stamped before this process started are refused: a restart
	 * does not reopen the replay window (docs/PROTOCOL.md security). */
	sc.table.start_unix_ms = clock_wall_ms();
	/* The server's own policy: the ranges a proposal is clamped into, the
	 * mux and every session's KCP settings come from its configured
	 * profile (and the accepted list), never from the client's. */
	transport_ranges(&x->cfg->profile, x->cfg->accepted_profiles, &sc.table.min, &sc.table.max,
	                 &sc.table.def);
	idle_cap(x->cfg, &sc.table.min, &sc.table.max, &sc.table.def);
	/* AES-256-GCM is granted where this CPU has it (io/cipher.h). */
	sc.table.def.features = cipher_offer(x->cfg->cipher, "server");
	if (x->cfg->stream_delivery == CONFIG_STREAM_DELIVERY_ON)
		sc.table.def.features |= TPARAMS_FEAT_STREAM_DELIVERY; /* accepted (mux step 10) */
	transport_mux(&x->cfg->profile, x->cfg->max_streams_per_session, &mc);
	transport_local_of(&x->cfg->profile, &sc.local);
	sc.mux = &mc;
	sc.rng = &x->rng;
	sc.output = on_output;
	sc.output_user = x;
	sc.slot = on_slot;
	sc.datagram = on_udp_frame;
	sc.datagram_user = x;
	/* Several devices of one user coexist up to sessions_per_user (the
	 * idlest is superseded beyond it). With 1, a user is one client: a
	 * restarted client's new session frees the old one's streams at once. */
	sc.table.per_user = x->cfg->sessions_per_user;
	sc.one_session_per_user = x->cfg->sessions_per_user == 1;
	rc = server_new(&x->core, &sc);
	if (rc != 0)
		errbuf_set(err, errlen, "server: %s", ks_strerror(rc));
	return rc;
}

static int open_sockets(struct exitd *x, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	const struct loop_cb lcb = { NULL, round_once, after, deadline, on_timer, x };
	struct metrics_handlers mh = { write_metrics, NULL, x };
	struct resolver_opts ro = { 0 };

	static const char *const lookups[] = { [CONFIG_LOOKUPS_FB] = "fb",
		                               [CONFIG_LOOKUPS_FILES] = "files",
		                               [CONFIG_LOOKUPS_B] = "b" };

	ro.lookups = lookups[x->cfg->resolver_lookups];
	ro.servers = x->cfg->resolver_servers;
	x->res = resolver_new(x->loop, &ro, err, errlen);
	if (!x->res)
		return KS_ERR_INVAL;
	if (dconf_endpoint_addr(&x->cfg->server_listen, &sa, err, errlen) != 0)
		return KS_ERR_INVAL;
	x->ioloop = loop_new(x->loop, &lcb);
	if (!x->ioloop) {
		errbuf_set(err, errlen, "out of memory");
		return KS_ERR_NOMEM;
	}
	x->peer = peer_new(&sa, err, errlen);
	if (!x->peer)
		return KS_ERR_IO;
	if (loop_attach(x->ioloop, x->peer, on_datagram, x) != 0) {
		errbuf_set(err, errlen, "udp: too many sockets on the loop");
		return KS_ERR_FULL;
	}
	if (x->cfg->metrics_listen.set) {
		if (dconf_endpoint_addr(&x->cfg->metrics_listen, &sa, err, errlen) != 0)
			return KS_ERR_INVAL;
		x->metrics = metrics_server_new(x->loop, &sa, NULL, &mh, err, errlen);
		if (!x->metrics)
			return KS_ERR_IO;
	}
	return 0;
}

struct exitd *exitd_new(struct ev_loop *loop, const struct config *cfg,
                        const struct keys_server *key, char *err, size_t errlen)
{
	struct exitd *x = calloc(1, sizeof *x);

	if (!x) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	x->loop = loop;
	x->cfg = cfg;
	x->cu = cfg->users;
	x->n_users = cfg->n_users;
	x->policy = &cfg->policy;
	x->rng = sysrng_source();
	if (make_core(x, key, err, errlen) != 0 || open_sockets(x, err, errlen) != 0 ||
	    make_udp(x, err, errlen) != 0) {
		exitd_free(x);
		return NULL;
	}
	(void)ifaddrs_current(&x->self, clock_mono_ms());
	if (x->self.last_errno)
		log_warn("getifaddrs: %s: the policy's 'self' rule matches nothing until it works",
		         strerror(x->self.last_errno));
	else
		log_debug("policy: %zu own interface address(es) for 'self'", x->self.self.n);
	return x;
}

void exitd_drain(struct exitd *x, void (*on_empty)(void *arg), void *arg)
{
	x->draining = true;
	/* The metrics port is free for a new instance at once; the UDP
	 * socket stays: the streams being drained need it. */
	metrics_server_free(x->metrics);
	x->metrics = NULL;
	x->on_empty = on_empty;
	x->on_empty_arg = arg;
	log_info("draining: %zu stream(s) open", x->nstreams);
	drain_check(x);
}

/* L8: a close for every established session, so each client resets its
 * streams and looks for a server now instead of after its dead-path
 * window. Flushed in batches: the send queue is bounded. */
static void close_sessions(struct exitd *x)
{
	uint64_t now = clock_mono_ms();
	size_t n = 0;

	for (struct tunnel *t = first_tunnel(x); t; t = next_tunnel(t)) {
		struct session *s = server_session(x->core, t->sid);

		if (!s || session_state(s) != SESSION_ESTABLISHED)
			continue;
		session_close(s, now);
		if (++n % 32 == 0)
			(void)peer_flush(x->peer);
	}
	(void)peer_flush(x->peer);
	if (n)
		log_info("sent a close to %zu session(s)", n);
}

/* --- reload (SIGHUP) --------------------------------------------------------------- */

/* user_map gives each current user its index among ncfg's users, or
 * HANDSHAKE_USER_NONE when it is gone or its psk changed (a new psk is a
 * new user: the old one's sessions close). */
static void user_map(const struct exitd *x, const struct config *ncfg, uint32_t *map)
{
	for (size_t i = 0; i < x->n_users; i++) {
		const struct config_user *u = config_find_user(ncfg, x->cu[i].name);

		map[i] = HANDSHAKE_USER_NONE;
		if (u && sodium_memcmp(u->psk, x->cu[i].psk, sizeof u->psk) == 0)
			map[i] = (uint32_t)(u - ncfg->users);
	}
}

/* close_removed ends the sessions of users map drops: a close to each
 * client (so it gives up now), then out of the table; their tunnels go
 * through on_lost at once, so every tunnel left belongs to a user that
 * remains. Returns how many. */
static size_t close_removed(struct exitd *x, const uint32_t *map)
{
	const struct sessions *tab = server_table(x->core);
	const struct sessions_slot *sl;
	uint64_t now = clock_mono_ms(), *sids;
	struct server_event ev;
	size_t n = 0, live = sessions_live(tab), at = 0;

	sids = calloc(live ? live : 1, sizeof *sids);
	if (!sids)
		return 0;
	while (n < live && (sl = sessions_next(tab, &at)) != NULL) {
		struct session *s;

		if (sl->user >= x->n_users || map[sl->user] != HANDSHAKE_USER_NONE)
			continue;
		sids[n++] = sl->sid;
		s = server_session(x->core, sl->sid);
		if (s && session_state(s) == SESSION_ESTABLISHED)
			session_close(s, now);
	}
	server_flush(x->core, now);
	(void)peer_flush(x->peer);
	for (size_t i = 0; i < n; i++)
		(void)server_close(x->core, sids[i]); /* the flush may have ended it */
	while (server_next_event(x->core, &ev) == 0)
		on_event(x, &ev);
	free(sids);
	return n;
}

int exitd_reload(struct exitd *x, const struct config *ncfg, struct exitd_reload_stats *st,
                 char *err, size_t errlen)
{
	size_t n = ncfg->n_users;
	struct keys_user *users = calloc(n ? n : 1, sizeof *users);
	struct user_acct *acct = calloc(n ? n : 1, sizeof *acct);
	uint32_t *map = calloc(x->n_users ? x->n_users : 1, sizeof *map);
	bool *kept = calloc(n ? n : 1, sizeof *kept);
	int rc = KS_ERR_NOMEM;

	memset(st, 0, sizeof *st);
	if (!users || !acct || !map || !kept) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	rc = KS_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (keys_user_set(&users[i], ncfg->users[i].name, ncfg->users[i].psk) != 0) {
			errbuf_set(err, errlen, "[user %s]: not a valid user name",
			           ncfg->users[i].name);
			goto out;
		}
	user_map(x, ncfg, map);
	for (size_t i = 0; i < x->n_users; i++)
		if (map[i] == HANDSHAKE_USER_NONE)
			st->removed++;
		else
			kept[map[i]] = true;
	for (size_t i = 0; i < n; i++)
		st->added += !kept[i];
	st->closed = close_removed(x, map);
	rc = server_set_users(x->core, users, n, map, clock_wall_ms());
	if (rc != 0) {
		/* Only a removed user's sessions are gone; the rest runs on. */
		errbuf_set(err, errlen, "users: %s", ks_strerror(rc));
		goto out;
	}
	/* Accounting and tunnels follow their users; a psk change starts
	 * the user's counters anew. */
	for (size_t i = 0; i < x->n_users; i++)
		if (map[i] != HANDSHAKE_USER_NONE)
			acct[map[i]] = x->acct[i];
	for (struct tunnel *t = first_tunnel(x); t; t = next_tunnel(t))
		t->ui = t->ui < x->n_users && map[t->ui] != HANDSHAKE_USER_NONE ? map[t->ui] : n;
	sodium_memzero(x->users, (x->n_users ? x->n_users : 1) * sizeof *x->users);
	free(x->users);
	free(x->acct);
	x->users = users;
	x->acct = acct;
	users = NULL;
	acct = NULL;
	x->cu = ncfg->users;
	x->n_users = n;
	x->policy = &ncfg->policy;
	rc = 0;
out:
	if (users)
		sodium_memzero(users, (n ? n : 1) * sizeof *users);
	free(users);
	free(acct);
	free(map);
	free(kept);
	return rc;
}

void exitd_free(struct exitd *x)
{
	if (!x)
		return;
	if (x->core && x->peer)
		close_sessions(x);
	while (!list_empty(&x->tunnels)) {
		struct tunnel *t = list_first(&x->tunnels, struct tunnel, link);

		on_lost(x, t, t->sid, SESSION_LOST_CLOSED);
	}
	x->on_empty = NULL;
	udpexit_free(x->udp);
	loop_detach(x->ioloop, x->peer);
	loop_free(x->ioloop); /* the deferred frees run here */
	metrics_server_free(x->metrics);
	peer_free(x->peer);
	resolver_free(x->res);
	server_free(x->core);
	if (x->users)
		sodium_memzero(x->users, (x->n_users ? x->n_users : 1) * sizeof *x->users);
	free(x->users);
	free(x->acct);
	free(x);
}
