/* failover.c - kcpsocks-local's servers (docs/OPERATIONS.md "Several
 * servers"): the one the socket points at, looked up again with c-ares
 * before every handshake; failover to the next of the list; and, on a
 * fallback, the return to the first server once a probe handshake of its
 * own shows it answers and no stream is open.
 */
#include "local/failover.h"

#include <string.h>

#include "base/errbuf.h"
#include "io/addr.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/resolver.h"
#include "local/client_int.h"

/* --- servers: the list, lookups, failover ------------------------------------- */

const struct config_endpoint *failover_target(const struct client *cl)
{
	return &cl->cfg->servers.e[cl->cur];
}

/* A UDP socket of family fam, unconnected until the server's address is
 * known (what the session sends before that goes nowhere). */
int failover_new_peer(struct client *cl, int fam, char *err, size_t errlen)
{
	struct sockaddr_storage any;
	struct peer *p;

	memset(&any, 0, sizeof any);
	any.ss_family = (sa_family_t)fam;
	p = peer_new(&any, err, errlen);
	if (!p)
		return KS_ERR_IO;
	loop_detach(cl->ioloop, cl->peer);
	if (loop_attach(cl->ioloop, p, client_on_datagram, cl) != 0) {
		errbuf_set(err, errlen, "udp: too many sockets on the loop");
		peer_free(p);
		return KS_ERR_FULL;
	}
	peer_free(cl->peer);
	cl->peer = p;
	cl->peer_fam = fam;
	cl->refused_seen = 0;
	return 0;
}

/* Point the socket at a (a new socket if the family changed). Returns
 * true when the address changed. */
static bool point_peer(struct client *cl, const struct sockaddr_storage *a)
{
	char err[160], was[ADDR_TEXT_MAX], now_text[ADDR_TEXT_MAX];
	const struct config_endpoint *e = failover_target(cl);

	if (cl->have_addr && addr_equal(&cl->addr, a))
		return false;
	addr_format(a, now_text);
	if (cl->peer_fam != a->ss_family &&
	    failover_new_peer(cl, a->ss_family, err, sizeof err) != 0) {
		log_warn("server %s:%u (%s): %s", e->host, (unsigned)e->port, now_text, err);
		return false;
	}
	if (peer_connect(cl->peer, a, err, sizeof err) != 0) {
		log_warn("server %s:%u (%s): %s", e->host, (unsigned)e->port, now_text, err);
		return false;
	}
	if (cl->have_addr) {
		addr_format(&cl->addr, was);
		log_info("server %s:%u is now %s (was %s)", e->host, (unsigned)e->port, now_text,
		         was);
	} else {
		log_info("server %s:%u is %s", e->host, (unsigned)e->port, now_text);
	}
	cl->addr = *a;
	cl->have_addr = true;
	return true;
}

static void on_server_resolved(const struct resolver_result *res, void *arg)
{
	struct client *cl = arg;
	const struct config_endpoint *e = failover_target(cl);

	cl->rq = NULL;
	if (res->status != RESOLVER_OK || res->n == 0) {
		cl->lookups_failed++;
		log_limited(LOG_LEVEL_WARN, "server %s:%u: lookup %s; keeping %s", e->host,
		            (unsigned)e->port, resolver_status_name(res->status),
		            cl->have_addr ? "the last address" : "no address");
		return;
	}
	/* A handshake waiting for this address goes now, not at its next
	 * retransmission or the end of a backoff: after a failover the init
	 * in flight went to the old server (session_handshake_now). */
	if (point_peer(cl, &res->addrs[0]))
		session_handshake_now(cl->sess, clock_mono_ms(), clock_wall_ms());
	else if (session_state(cl->sess) != SESSION_ESTABLISHED)
		session_on_demand(cl->sess, clock_mono_ms());
}

/* Look server cur up again (c-ares, never blocking); the socket follows
 * the answer. At start and before every new handshake, so DNS changes
 * are followed. */
void failover_resolve(struct client *cl)
{
	struct resolver_cb cb = { on_server_resolved, cl };
	const struct config_endpoint *e = failover_target(cl);
	int rc;

	resolver_cancel(cl->rq);
	cl->rq = NULL;
	rc = resolver_resolve(cl->res, e->host, e->port, RESOLVER_ANY, &cb, &cl->rq);
	if (rc != 0)
		log_limited(LOG_LEVEL_WARN, "server %s:%u: lookup not started: %s", e->host,
		            (unsigned)e->port, ks_strerror(rc));
}

/* Go to server i of the list (the same one: look it up again). */
void failover_go_to(struct client *cl, size_t i, const char *why)
{
	if (i != cl->cur) {
		const struct config_endpoint *from = failover_target(cl);

		cl->failovers++;
		cl->cur = i;
		cl->have_addr = false;
		log_info("server %s:%u: %s; trying %s:%u (%zu of %zu)", from->host,
		         (unsigned)from->port, why, failover_target(cl)->host,
		         (unsigned)failover_target(cl)->port, i + 1, cl->cfg->servers.n);
	}
	failover_resolve(cl);
}

/* The session went down or a handshake got no answer: the next server of
 * the list (after the last: the first again). */
void failover_next(struct client *cl, const char *why)
{
	failover_go_to(cl, (cl->cur + 1) % cl->cfg->servers.n, why);
}

/* --- the return to the first server ---------------------------------------- */

void failover_free_probe(struct client *cl)
{
	resolver_cancel(cl->probe_q);
	cl->probe_q = NULL;
	if (cl->probe_peer)
		(void)peer_flush(cl->probe_peer); /* the probe session's close */
	session_free(cl->probe);
	loop_detach(cl->ioloop, cl->probe_peer);
	peer_free(cl->probe_peer);
	cl->probe = NULL;
	cl->probe_peer = NULL;
	cl->probe_done = cl->probe_ok = false;
}

static int on_probe_output(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct client *cl = user;

	(void)to;
	return cl->probe_peer ? peer_send(cl->probe_peer, d, len, NULL) : -1;
}

static void on_probe_datagram(const struct udp_dgram *d, uint64_t now, void *arg)
{
	struct client *cl = arg;

	if (cl->probe && !cl->probe_done)
		(void)session_on_datagram(cl->probe, d->data, d->len, now, clock_wall_ms());
}

/* The probe's events, in each round: an answer proves the first server;
 * the probe's session is closed at once (the server frees it). No answer
 * within one handshake attempt: try again server_return_ms later (freed
 * by maybe_return in the next turn). Returns true when it did work. */
bool failover_probe_round(struct client *cl, uint64_t now)
{
	struct session_event ev;
	bool any = false;

	while (cl->probe && !cl->probe_done && session_next_event(cl->probe, &ev) == 0) {
		any = true;
		if (ev.type == SESSION_EV_ESTABLISHED) {
			cl->probe_ok = cl->probe_done = true;
			session_close(cl->probe, now);
		} else if (ev.type == SESSION_EV_HANDSHAKE_FAILED) {
			cl->probe_done = true;
		}
	}
	if (cl->probe)
		session_flush(cl->probe, now);
	return any;
}

/* The probe's next deadline: at once when it ended (to free it). */
uint64_t failover_probe_deadline(const struct client *cl)
{
	if (cl->probe_done)
		return 0;
	return cl->probe ? session_next_deadline(cl->probe) : KS_NEVER;
}

static void on_probe_resolved(const struct resolver_result *res, void *arg)
{
	struct client *cl = arg;
	struct sockaddr_storage any;
	char err[160];

	cl->probe_q = NULL;
	memset(&any, 0, sizeof any);
	if (res->status == RESOLVER_OK && res->n > 0) {
		any.ss_family = res->addrs[0].ss_family;
		cl->probe_peer = peer_new(&any, err, sizeof err);
		if (cl->probe_peer &&
		    loop_attach(cl->ioloop, cl->probe_peer, on_probe_datagram, cl) != 0) {
			peer_free(cl->probe_peer);
			cl->probe_peer = NULL;
		}
	}
	if (!cl->probe_peer || peer_connect(cl->probe_peer, &res->addrs[0], err, sizeof err) != 0 ||
	    client_new_session(cl, &cl->probe, on_probe_output, NULL, err, sizeof err) != 0)
		cl->probe_done = true; /* freed by maybe_return; again later */
}

/* On a fallback: every server_return_ms, one handshake with the first
 * server (probe); once it answered, go back at a moment no stream is
 * open: close the fallback's session and handshake with the first. */
void failover_maybe_return(struct client *cl, uint64_t now)
{
	struct resolver_cb cb = { on_probe_resolved, cl };
	const struct config_endpoint *first = &cl->cfg->servers.e[0];
	bool on_fallback = cl->cur != 0 && cl->cfg->server_return_ms != 0 && !cl->draining &&
	                   session_state(cl->sess) == SESSION_ESTABLISHED;

	bool probing = cl->probe || cl->probe_q || cl->probe_peer || cl->probe_done;

	if (probing && (cl->probe_done || !on_fallback)) {
		cl->first_ok = on_fallback && cl->probe_ok;
		if (cl->probe_done && !cl->probe_ok)
			cl->probe_at = now + cl->cfg->server_return_ms;
		failover_free_probe(cl);
	}
	if (!on_fallback)
		return;
	if (!cl->first_ok && !cl->probe && !cl->probe_q && !cl->probe_peer && now >= cl->probe_at &&
	    resolver_resolve(cl->res, first->host, first->port, RESOLVER_ANY, &cb, &cl->probe_q) !=
	            0)
		cl->probe_at = now + cl->cfg->server_return_ms;
	if (!cl->first_ok || cl->nconns != 0)
		return;
	log_info("on fallback server %s:%u for %llu ms, %s:%u answers again and no stream is "
	         "open: going back to it",
	         failover_target(cl)->host, (unsigned)failover_target(cl)->port,
	         (unsigned long long)(now - cl->fallback_since), first->host,
	         (unsigned)first->port);
	cl->first_ok = false;
	cl->returning = true;
	session_close(cl->sess, now);
}

uint64_t failover_return_deadline(const struct client *cl)
{
	if (cl->cur == 0 || cl->cfg->server_return_ms == 0 || cl->probe || cl->probe_q ||
	    session_state(cl->sess) != SESSION_ESTABLISHED)
		return KS_NEVER;
	return cl->probe_at;
}
