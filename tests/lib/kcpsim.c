/* kcpsim.c - two KCP engines through the link simulator (kcpsim.h). */
#include "kcpsim.h"

#include <string.h>
#include <sys/types.h>

#include "base/deadline.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/minmax.h"
#include "core/profile.h"
#include "core/transport.h"

static int output(const uint8_t *dgram, size_t len, void *user)
{
	struct kcpsim_end *e = user;

	return netsim_link_send(e->tx, dgram, len, *e->now);
}

int kcpsim_init(struct kcpsim *s, const struct kcp_config *kc, const struct netsim_config *nc,
                uint64_t seed, uint64_t t0, uint32_t conv)
{
	int rc;

	memset(s, 0, sizeof *s);
	s->now = t0;
	s->a.now = s->b.now = &s->now;
	if ((rc = netsim_link_new(&s->a.tx, nc, seed * 2 + 1)) != 0 ||
	    (rc = netsim_link_new(&s->b.tx, nc, seed * 2 + 2)) != 0 ||
	    (rc = kcp_new(&s->a.k, conv, kc, s->now, output, &s->a)) != 0 ||
	    (rc = kcp_new(&s->b.k, conv, kc, s->now, output, &s->b)) != 0) {
		kcpsim_free(s);
		memset(s, 0, sizeof *s);
	}
	return rc;
}

void kcpsim_free(struct kcpsim *s)
{
	kcp_free(s->a.k);
	kcp_free(s->b.k);
	netsim_link_free(s->a.tx);
	netsim_link_free(s->b.tx);
}

int kcpsim_drain(struct kcpsim *s, struct netsim_link *l, struct kcp *k)
{
	static uint8_t buf[NETSIM_MAX_DATAGRAM];
	ssize_t n;
	int rc;

	while ((n = netsim_link_recv(l, s->now, buf, sizeof buf)) >= 0)
		if ((rc = kcp_input(k, buf, (size_t)n, s->now)) != 0)
			return rc;
	return n == KS_ERR_AGAIN ? 0 : (int)n;
}

uint64_t kcpsim_next_deadline(const struct kcpsim *s)
{
	return min_u64(
	        min_u64(kcp_next_deadline(s->a.k, s->now), kcp_next_deadline(s->b.k, s->now)),
	        min_u64(netsim_link_next_deadline(s->a.tx), netsim_link_next_deadline(s->b.tx)));
}

int kcpsim_advance(struct kcpsim *s, uint64_t limit)
{
	uint64_t t = min_u64(kcpsim_next_deadline(s), limit);
	int rc;

	if (t == KS_NEVER)
		return 0;
	if (t > s->now)
		s->now = t;
	if ((rc = kcpsim_drain(s, s->a.tx, s->b.k)) != 0 ||
	    (rc = kcpsim_drain(s, s->b.tx, s->a.k)) != 0)
		return rc;
	kcp_update(s->a.k, s->now);
	kcp_update(s->b.k, s->now);
	return 1;
}

void kcpsim_tunnel_config(struct kcp_config *c, uint32_t wnd, bool bundle)
{
	const struct profile *pr = profile_default();
	struct transport_local local = { .min_rto_ms = pr->min_rto_ms };
	struct transport_params tp;

	transport_proposal(pr, &tp);
	transport_kcp(c, &tp, &local, false);
	c->snd_wnd = c->rcv_wnd = wnd;
	c->snd_queue = min_u32(wnd, SESSION_KCP_QUEUE);
	c->mtu = KCP_MTU_DEFAULT;
	c->stream = true;
	c->early = false;
	c->bundle = bundle;
}
