/* kcp_cc.c - congestion control and pacing of the KCP engine (see
 * kcp_cc.h; K7 and K10 in docs/PROTOCOL.md). What it borrows, in short:
 * Reno's window (slow start, one segment per window), Veno's backlog
 * estimate to tell random loss from a queue (cwnd * (srtt - min_rtt) /
 * srtt), a Vegas/LEDBAT-like hold of the window once the queueing delay
 * reaches a share of the base RTT, Eifel-style undo of a reduction a
 * spurious resend caused, and a token bucket pacing new data at the
 * window per RTT. */
#include "core/kcp_cc.h"

#include "base/limits.h"
#include "base/minmax.h"
#include "base/seq.h"

void kcp_cc_init(struct kcp_cc *cc, uint32_t snd_wnd, uint32_t initial_sn, uint64_t now)
{
	*cc = (struct kcp_cc){ .cwnd = min_u32(KCP_CWND_INIT, snd_wnd),
		               .ssthresh = snd_wnd,
		               .recover = initial_sn,
		               .pace_t = now,
		               .pace_tok = (uint64_t)KCP_PACE_BURST_MIN * KCP_PACE_ONE };
}

/* queue_delay: how long our data waits in a queue, by the RTT: the recent
 * RTT (srtt, or the recent floor when lower) above the smallest sample
 * seen; 0 before there are samples. A queue delays every datagram and
 * raises the floor; jitter (a loaded machine's scheduling, a radio link)
 * raises srtt only, and is not a queue (K7). */
static uint32_t queue_delay(const struct kcp_cc_path *p)
{
	uint32_t rtt = p->rtt_floor ? p->rtt_floor : p->srtt;

	if (!rtt || !p->min_rtt || rtt <= p->min_rtt)
		return 0;
	return rtt - p->min_rtt;
}

/* queueing: does the RTT show that our own data waits in a queue? The
 * backlog estimate is cwnd * (srtt - min_rtt) / srtt segments (the Veno
 * rule). Below KCP_BACKLOG_CONGESTED segments, a loss is taken as random
 * (a lossy link, not a full queue) and does not reduce the window: halving
 * once per RTT on every random loss drives the window to a few segments at
 * a few percent loss, whatever the capacity (K7). */
static bool queueing(const struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	uint32_t q = queue_delay(p);

	/* With a large window, a few ms of path jitter alone look like a
	 * backlog of many segments: the queueing delay must also be a real
	 * part of the path's RTT (K7). */
	if (q == 0 || q < p->min_rtt / KCP_QUEUE_FRACTION)
		return false;
	return (uint64_t)cc->cwnd * q >= (uint64_t)KCP_BACKLOG_CONGESTED * p->srtt;
}

/* loss_queue: is a loss at this queue congestion? The queue test, and a
 * queueing delay of at least KCP_QUEUE_LOSS_MIN ms: a loaded machine's
 * scheduling and a relay's clock raise even the RTT floor by a few ms,
 * and a quarter of a 20 ms base RTT is no more than that (K7). */
static bool loss_queue(const struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	return queueing(cc, p) && queue_delay(p) >= KCP_QUEUE_LOSS_MIN;
}

/* grow_step: acknowledged segments per +1 of cwnd (K7). Slow start: 1.
 * Below the window held before a timeout collapsed it, while the RTT shows
 * no queue: 1 as well; a timeout says nothing about the capacity, and one
 * must not cost hundreds of RTTs of linear growth on a long fat path.
 * Otherwise Reno, one per window: regrowing fast after a cut for
 * congestion floods a shallow queue again at once. */
static uint32_t grow_step(const struct kcp_cc *cc, bool queue)
{
	if (cc->cwnd < cc->ssthresh || (cc->cwnd < cc->wmax && !queue))
		return 1;
	return cc->cwnd;
}

void kcp_cc_on_ack(struct kcp_cc *cc, const struct kcp_cc_path *p, uint32_t acked)
{
	uint32_t cap = min_u32(p->snd_wnd, max_u32(p->rmt_wnd, 1));
	bool queue;

	if (p->nc)
		return;
	/* K7: a queue of a fraction of the base RTT is enough: hold the
	 * window, so it stays below what overflows a receiver's socket buffer
	 * (or any bottleneck queue) instead of growing until loss says so.
	 * Slow start ends as soon as a queue shows. */
	queue = queueing(cc, p);
	if (queue && queue_delay(p) >= p->min_rtt / KCP_QUEUE_HOLD)
		return;
	if (queue && cc->cwnd < cc->ssthresh)
		cc->ssthresh = cc->cwnd;
	while (acked-- && cc->cwnd < cap) {
		if (++cc->ca_acc >= grow_step(cc, queue)) {
			cc->ca_acc = 0;
			cc->cwnd++;
		}
	}
}

/* lost_net: the episode's lost originals, less those proved delivered
 * since (their ACKs were lost, not they: kcp_cc_delivered). */
static uint32_t lost_net(const struct kcp_cc *cc)
{
	return cc->ep_lost - min_u32(cc->ep_spur, cc->ep_lost);
}

/* heavy: the current episode has lost a large share of the flight it
 * began with. Tail drop at a shallow bottleneck queue shows almost no
 * queueing delay but loses many segments at once; random loss of a few
 * percent does not (K7). A smaller share is enough when the largest recent
 * RTT sample shows that a queue of ours filled (by a quarter of the base
 * RTT at least): the queue of a shallow bottleneck fills and drains within
 * an RTT, so its floor stays low while it overflows every round. */
static bool peaked(const struct kcp_cc_path *p)
{
	return p->rtt_peak && p->min_rtt &&
	       p->rtt_peak >= p->min_rtt + max_u32(p->min_rtt / KCP_QUEUE_FRACTION, 1);
}

static bool severe(const struct kcp_cc *cc)
{
	return lost_net(cc) >= KCP_LOSS_HEAVY_MIN &&
	       (uint64_t)lost_net(cc) * 100 >= (uint64_t)cc->ep_size * KCP_LOSS_HEAVY_PCT;
}

static bool heavy(const struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	uint64_t lost = (uint64_t)lost_net(cc) * 100, flight = cc->ep_size;

	if (lost_net(cc) < KCP_LOSS_HEAVY_MIN)
		return false;
	return severe(cc) || (peaked(p) && lost >= flight * KCP_LOSS_QUEUE_PCT);
}

/* cwnd_cut: only a timeout with the whole flight unanswered collapses cwnd
 * to 1; congestion seen otherwise halves it. The values before the
 * reduction are kept for kcp_cc_undo. */
static void cwnd_cut(struct kcp_cc *cc, const struct kcp_cc_path *p, bool flight)
{
	cc->undo_cwnd = cc->cwnd;
	cc->undo_ssthresh = cc->ssthresh;
	/* A timeout says nothing about the capacity, a queue or a heavy loss
	 * does: only the former may refill (kcp_cc_on_ack). */
	cc->wmax = flight ? cc->cwnd : 0;
	cc->ep_heavy = !flight && !loss_queue(cc, p);
	if (flight) {
		cc->ssthresh = max_u32(cc->cwnd / 2, KCP_SSTHRESH_MIN);
		cc->cwnd = 1;
	} else {
		uint32_t inflight = p->snd_nxt - p->snd_una;
		uint32_t keep = inflight / 2;

		/* A cut for a queue the RTT shows keeps what the path delivers
		 * without that queue, inflight x min_rtt / recent RTT (as
		 * Westwood sets ssthresh to rate x min RTT), and at least half
		 * of it: a queue of a quarter of the base RTT (a busy
		 * receiver) then costs a fifth of the window, not half of it
		 * and hundreds of RTTs of linear regrowth (K7). A heavy loss
		 * without a queue (tail drop at a shallow one) still halves. */
		if (!heavy(cc, p) && loss_queue(cc, p))
			keep = max_u32(keep, (uint32_t)((uint64_t)inflight * p->min_rtt /
			                                (p->min_rtt + queue_delay(p))));
		/* Overflow of a queue the RTT peak showed: the flight was the
		 * path plus a full queue, and keeping KCP_QUEUE_KEEP_PCT of it
		 * (CUBIC's beta) drains the queue without idling the link. */
		else if (!severe(cc))
			keep = max_u32(keep,
			               (uint32_t)((uint64_t)inflight * KCP_QUEUE_KEEP_PCT / 100));
		cc->ssthresh = max_u32(keep, KCP_SSTHRESH_MIN);
		cc->cwnd = cc->ssthresh + p->resend;
	}
	cc->ca_acc = 0;
	cc->cwnd = min_u32(max_u32(cc->cwnd, 1), p->snd_wnd);
	cc->recover = p->snd_nxt;
	cc->ep_cut = true;
	cc->re_sent = cc->re_lost = 0;
}

/* forgive: a heavy loss that shows no queue at all (no RTT rise, not even
 * in the peak) and came in at most KCP_LOSS_BURST_RUNS runs of consecutive
 * segments is a burst on the link (a fade, a bad spell of a bursty
 * channel), not a queue overflowing: a full queue drops what arrives above
 * its rate, so its losses alternate with deliveries. Such an episode is
 * kept as random loss, once: if the next flight's episode is heavy too, it
 * is cut (a queue too shallow to show in the RTT still overflows every
 * round). Without this a burst of 19 datagrams early in slow start halved
 * a window of 91 segments three times over, and Reno's linear growth left
 * the transfer at a tenth of its rate (K7). */
static bool forgive(struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	bool burst = cc->ep_runs <= KCP_LOSS_BURST_RUNS && lost_net(cc) <= KCP_LOSS_BURST_MAX;

	if (cc->ep_forgiven || !burst)
		return cc->ep_forgiven && burst;
	if (peaked(p) || loss_queue(cc, p) || (cc->strike && seq_lt(cc->ep_base, cc->strike_until)))
		return false;
	cc->ep_forgiven = cc->strike = true;
	cc->strike_until = p->snd_nxt + (p->snd_nxt - p->snd_una);
	return true;
}

/* relost: our resends themselves are lost, KCP_LOSS_HEAVY_PCT of them or
 * more (at least KCP_LOSS_HEAVY_MIN) since the last cut or the start of
 * the episode. Random loss takes a resend as rarely as any datagram; a
 * queue that the flight still overflows takes most of them. Once cut, an
 * episode does not cut again for its own losses, and while the window
 * waits for its holes nothing new is sent to start another: without this
 * a flight twice too large for a shallow queue (50 kB at 10 MB/s, 1% loss)
 * lost its repairs there for ever (K7; the lost-retransmission rule of
 * TCP's recovery). */
static bool relost(const struct kcp_cc *cc)
{
	return cc->re_lost >= max_u32(KCP_LOSS_HEAVY_MIN, cc->cwnd / KCP_RELOST_FRACTION) &&
	       (uint64_t)cc->re_lost * 100 >= (uint64_t)cc->re_sent * KCP_LOSS_HEAVY_PCT;
}

/* relost_cut cuts for lost resends, never raising the window: after a
 * timeout collapse (cwnd 1) the probes of a silent path are resends of
 * resends too, and half the flight would be more than the collapse left. */
static void relost_cut(struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	uint32_t was = cc->cwnd, ss = cc->ssthresh;

	cc->re_sent = cc->re_lost = 0;
	if ((p->snd_nxt - p->snd_una) / 2 >= was)
		return;
	cwnd_cut(cc, p, false);
	cc->cwnd = min_u32(cc->cwnd, was);
	cc->ssthresh = min_u32(cc->ssthresh, ss);
}

/* kcp_cc_on_loss reacts once per loss episode: losses of segments sent
 * before the last reduction (sn < recover) are part of the same episode.
 * A new episode cuts cwnd when the whole flight went unanswered, when the
 * RTT shows a queue, or when it is heavy already (and not forgiven as a
 * burst); otherwise it is random loss and the window is kept, unless the
 * episode turns heavy later. */
bool kcp_cc_on_loss(struct kcp_cc *cc, const struct kcp_cc_path *p, bool isolated, bool flight)
{
	cc->re_sent += cc->flush_resent;
	cc->re_lost += cc->flush_relost;
	if (!isolated && !flight) {
		cc->ep_lost += cc->flush_lost;
		cc->ep_runs += cc->flush_runs;
		if (!cc->ep_cut && heavy(cc, p) && !forgive(cc, p))
			cwnd_cut(cc, p, false);
		else if (relost(cc))
			relost_cut(cc, p);
		return false;
	}
	cc->ep_size = max_u32(p->snd_nxt - p->snd_una, 1);
	cc->ep_lost = cc->flush_lost;
	cc->ep_runs = cc->flush_runs;
	cc->ep_base = p->snd_una;
	cc->ep_spur = 0;
	cc->ep_cut = cc->ep_heavy = cc->ep_forgiven = false;
	if (!flight && !loss_queue(cc, p) && (!heavy(cc, p) || forgive(cc, p))) {
		cc->recover = p->snd_nxt;
		return true;
	}
	cwnd_cut(cc, p, flight);
	return false;
}

/* kcp_cc_undo: the retransmission that opened the current loss episode was
 * spurious (the original arrived, its ACK was late or lost): restore the
 * window as it was before the reduction (K7). */
bool kcp_cc_undo(struct kcp_cc *cc, uint32_t sn)
{
	if (!cc->undo_cwnd || sn != cc->undo_sn)
		return false;
	cc->cwnd = max_u32(cc->cwnd, cc->undo_cwnd);
	cc->ssthresh = max_u32(cc->ssthresh, cc->undo_ssthresh);
	cc->undo_cwnd = 0;
	return true;
}

/* kcp_cc_delivered: the receiver echoed the ts of sn's original for the
 * copy we resent: the original arrived and only its ACK was lost (one lost
 * ACK datagram, carrying the ACKs of a whole read batch above a hole, makes
 * dozens of delivered segments look lost). It no longer counts towards the
 * episode's share of losses, and a cut made for that share alone (no queue
 * in the RTT, no silent flight) is undone once the share falls below the
 * heavy rules: the DSACK-based undo of TCP (RFC 3708), in KCP's words. */
bool kcp_cc_delivered(struct kcp_cc *cc, const struct kcp_cc_path *p, uint32_t sn)
{
	if (!seq_ge(sn, cc->ep_base) || !seq_lt(sn, cc->recover))
		return false;
	cc->ep_spur++;
	if (!cc->ep_cut || !cc->ep_heavy || !cc->undo_cwnd || heavy(cc, p))
		return false;
	cc->cwnd = max_u32(cc->cwnd, cc->undo_cwnd);
	cc->ssthresh = max_u32(cc->ssthresh, cc->undo_ssthresh);
	cc->undo_cwnd = 0;
	cc->ep_cut = cc->ep_heavy = false;
	return true;
}

uint32_t kcp_cc_send_limit(const struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	uint32_t lim = min_u32(p->snd_wnd, p->rmt_wnd);
	return p->nc ? lim : min_u32(lim, cc->cwnd);
}

/* K10 pacing: new data leaves at about send_limit / srtt (x KCP_PACE_GAIN
 * / 4; x KCP_PACE_GAIN_SS / 4 in slow start), from a token bucket that
 * holds at most KCP_PACE_BURST_MS of that rate (at least
 * KCP_PACE_BURST_MIN segments). A window opening all at once (una jumping
 * over a repaired hole, slow start doubling) would otherwise leave as one
 * burst and overflow a shallow queue or the receiver's socket buffer: the
 * queue sees the rate, not the window. pace_rate is in 1/KCP_PACE_ONE
 * segments per ms; 0 means not paced (off, or no RTT sample yet). */
uint64_t kcp_cc_pace_rate(const struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	uint64_t gain = !p->nc && cc->cwnd < cc->ssthresh ? KCP_PACE_GAIN_SS : KCP_PACE_GAIN;

	if (!p->pace || !p->srtt)
		return 0;
	return max_u64((uint64_t)kcp_cc_send_limit(cc, p) * KCP_PACE_ONE * gain / 4 / p->srtt, 1);
}

static uint64_t pace_cap(uint64_t rate)
{
	return max_u64(rate * KCP_PACE_BURST_MS, (uint64_t)KCP_PACE_BURST_MIN * KCP_PACE_ONE);
}

/* kcp_cc_pace_avail: tokens at time t (>= pace_t), without changing anything. The
 * bucket's cap bounds the sum; dt is bounded first only so that the product
 * cannot overflow. */
uint64_t kcp_cc_pace_avail(const struct kcp_cc *cc, uint64_t rate, uint64_t t)
{
	uint64_t dt = t > cc->pace_t ? min_u64(t - cc->pace_t, KCP_RTO_MAX) : 0;

	return min_u64(cc->pace_tok + dt * rate, pace_cap(rate));
}

void kcp_cc_flush_begin(struct kcp_cc *cc, const struct kcp_cc_path *p, uint64_t now)
{
	uint64_t rate = kcp_cc_pace_rate(cc, p);

	cc->flush_lost = cc->flush_runs = cc->flush_resent = cc->flush_relost = 0;
	cc->pace_tok = rate ? kcp_cc_pace_avail(cc, rate, now) : 0;
	cc->pace_t = now;
}

/* kcp_cc_pace_take spends one segment's tokens; false when there are none. */
bool kcp_cc_pace_take(struct kcp_cc *cc, const struct kcp_cc_path *p)
{
	if (!kcp_cc_pace_rate(cc, p))
		return true;
	if (cc->pace_tok < KCP_PACE_ONE)
		return false;
	cc->pace_tok -= KCP_PACE_ONE;
	return true;
}

void kcp_cc_pace_spend(struct kcp_cc *cc)
{
	cc->pace_tok = cc->pace_tok > KCP_PACE_ONE ? cc->pace_tok - KCP_PACE_ONE : 0;
}

void kcp_cc_on_resend(struct kcp_cc *cc, uint32_t sn, bool first, bool *episode)
{
	cc->flush_resent++;
	cc->flush_relost += !first;
	if (first) {
		cc->flush_lost++;
		cc->flush_runs += sn != cc->lost_next;
		cc->lost_next = sn + 1;
	}
	if (!seq_ge(sn, cc->recover) || *episode)
		return;
	*episode = true;
	cc->undo_sn = sn;
}
