/* transport.c - the one mapping from a profile to the engines' settings
 * (see transport.h; the table of what goes where: docs/PROTOCOL.md E1). */
#include "core/transport.h"

#include <string.h>

#include "base/limits.h"
#include "base/minmax.h"

/* The engine takes every window the handshake may agree. */
_Static_assert((int)TPARAMS_WND_MAX <= (int)KCP_WND_MAX, "KCP must take the agreed windows");

uint8_t transport_profile_id(const char *name)
{
	for (size_t i = 0; name && i < profile_count(); i++)
		if (!strcmp(profile_at(i)->name, name))
			return (uint8_t)i;
	return 0;
}

static void padding(const struct profile *p, struct transport_params *out)
{
	if (p->pad_bucket) {
		out->pad_mode = TPARAMS_PAD_BUCKET;
		out->pad_max =
		        (uint16_t)clamp_u32(p->pad_bucket, TPARAMS_BUCKET_MIN, TPARAMS_PAD_MAX);
	} else if (p->pad_max) {
		out->pad_mode = TPARAMS_PAD_RANDOM;
		out->pad_max = (uint16_t)clamp_u32(p->pad_max, 1, TPARAMS_PAD_MAX);
	} else {
		out->pad_mode = TPARAMS_PAD_NONE;
		out->pad_max = 0;
	}
}

void transport_proposal(const struct profile *p, struct transport_params *out)
{
	struct transport_params t = { 0 };

	t.mtu = (uint16_t)clamp_u32(p->mtu, TPARAMS_MTU_MIN, TPARAMS_MTU_MAX);
	padding(p, &t);
	t.interval =
	        (uint16_t)clamp_u32(p->interval_ms, TPARAMS_INTERVAL_MIN, TPARAMS_INTERVAL_MAX);
	t.nodelay = (uint8_t)clamp_u32(p->nodelay, 0, TPARAMS_NODELAY_MAX);
	t.resend = (uint8_t)clamp_u32(p->resend, 0, TPARAMS_RESEND_MAX);
	t.nc = p->nc ? 1 : 0;
	t.snd_wnd = (uint16_t)clamp_u32(p->snd_wnd, TPARAMS_WND_MIN, TPARAMS_WND_MAX);
	t.rcv_wnd = (uint16_t)clamp_u32(p->rcv_wnd, TPARAMS_WND_MIN, TPARAMS_WND_MAX);
	t.keepalive_ms =
	        clamp_u32(p->keepalive_ms, TPARAMS_KEEPALIVE_MIN_MS, TPARAMS_KEEPALIVE_MAX_MS);
	t.idle_timeout_ms = clamp_u32(p->idle_timeout_ms, TPARAMS_IDLE_MIN_MS, TPARAMS_IDLE_MAX_MS);
	t.profile = transport_profile_id(p->name);
	*out = t;
}

void transport_local_of(const struct profile *p, struct transport_local *out)
{
	*out = (struct transport_local){
		.min_rto_ms = clamp_u32(p->min_rto_ms, 1, KCP_RTO_MAX),
		.dead_link = clamp_u32(p->dead_link, 1, KCP_DEAD_LINK_MAX),
		.dup_thin = p->dup_thin,
	};
}

static void fold(struct transport_params *min, struct transport_params *max,
                 const struct transport_params *p)
{
#define FOLD(f)                                                                                    \
	do {                                                                                       \
		if (p->f < min->f)                                                                 \
			min->f = p->f;                                                             \
		if (p->f > max->f)                                                                 \
			max->f = p->f;                                                             \
	} while (0)
	FOLD(mtu);
	FOLD(pad_mode);
	FOLD(pad_max);
	FOLD(interval);
	FOLD(nodelay);
	FOLD(resend);
	FOLD(nc);
	FOLD(snd_wnd);
	FOLD(rcv_wnd);
	FOLD(profile);
#undef FOLD
}

void transport_ranges(const struct profile *own, uint32_t accepted, struct transport_params *min,
                      struct transport_params *max, struct transport_params *def)
{
	transport_proposal(own, def);
	*min = *max = *def;
	for (size_t i = 0; i < profile_count() && i < 32; i++) {
		struct transport_params p;

		if (!(accepted & (1u << i)))
			continue;
		transport_proposal(profile_at(i), &p);
		fold(min, max, &p);
	}
	min->keepalive_ms = TPARAMS_KEEPALIVE_MIN_MS;
	max->keepalive_ms = TPARAMS_KEEPALIVE_MAX_MS;
	min->idle_timeout_ms = TPARAMS_IDLE_MIN_MS;
	max->idle_timeout_ms = TPARAMS_IDLE_MAX_MS;
}

void transport_kcp(struct kcp_config *c, const struct transport_params *p,
                   const struct transport_local *local, bool server)
{
	uint32_t snd = server ? p->rcv_wnd : p->snd_wnd;
	uint32_t rcv = server ? p->snd_wnd : p->rcv_wnd;

	kcp_config_default(c);
	/* Agreed in the handshake: the same on both ends. */
	c->nodelay = p->nodelay;
	c->interval = p->interval;
	c->resend = p->resend;
	c->nc = p->nc != 0;
	c->snd_wnd = snd;
	c->rcv_wnd = rcv < KCP_RCV_WND_MIN ? KCP_RCV_WND_MIN : rcv;
	c->mtu = (uint32_t)p->mtu - ENVELOPE_OVERHEAD;
	/* This end's own policy. */
	if (local && local->min_rto_ms)
		c->min_rto = local->min_rto_ms;
	if (local && local->dead_link)
		c->dead_link = local->dead_link;
	c->dup_thin = local && local->dup_thin;
	/* K13: a datagram carrying new data of a thin flight also carries
	 * copies of its older unacknowledged segments in its spare room: a
	 * lost one is repaired by the next send, not by fast retransmit or an
	 * RTO, and no datagram is added. Local (the copies are ordinary PUSH
	 * segments a receiver takes as duplicates), so every tunnel has it. */
	c->bundle = true;
	/* What waits below the mux stays small, so the mux's fair scheduler
	 * decides the order; the session's pump refills it after every input. */
	c->snd_queue = snd < SESSION_KCP_QUEUE ? snd : SESSION_KCP_QUEUE;
	/* Mux step 10: with per-stream delivery agreed, one KCP message per
	 * mux message (whole frames, at most one segment), and messages above
	 * a hole offered at once (K14). */
	c->stream = !(p->features & TPARAMS_FEAT_STREAM_DELIVERY);
	c->early = !c->stream;
	/* E6: the session flushes KCP once per batch (the pump after the
	 * daemon's writes, or session_flush), so the ACKs of a batch of
	 * received datagrams and the data answering them share datagrams. */
	c->flush_on_send = false;
	c->ack_immediate = false;
	/* K10: what one batch of ACKs opens leaves spread over the RTT, not as
	 * one burst into the receiver's socket buffer. */
	c->pace = true;
}

void transport_mux(const struct profile *p, uint32_t cap, struct mux_config *out)
{
	mux_config_default(out);
	out->window = clamp_u32(p->stream_window, MUX_WINDOW_MIN, MUX_WINDOW_MAX);
	out->budget = clamp_u32(p->session_window, MUX_BUDGET_MIN, MUX_BUDGET_MAX);
	out->max_streams = clamp_u32(p->max_streams, 1, MUX_STREAMS_MAX);
	if (cap && out->max_streams > cap)
		out->max_streams = cap;
}

/* The one default set is the built-in profile `default`. */
void tparams_default(struct transport_params *p) { transport_proposal(profile_default(), p); }
