/* kcp_cc.h - the KCP engine's congestion control and pacing (K7, K10 in
 * docs/PROTOCOL.md). Internal to the engine: only kcp.c includes it.
 *
 * The controller owns the congestion window, the loss-episode state and
 * the pacing token bucket. It never sees segments: the engine describes
 * the path at each call (struct kcp_cc_path, a view built from its own
 * state) and reports events (data acknowledged, a segment about to be
 * resent, the losses of a flush, a resend proved spurious). Pure: no
 * allocation, no I/O, no clock.
 */
#ifndef KCPSOCKS_KCP_CC_H
#define KCPSOCKS_KCP_CC_H

#include <stdbool.h>
#include <stdint.h>

struct kcp_cc {
	uint32_t cwnd, ssthresh, ca_acc;   /* segments; ca_acc: acked towards +1 */
	uint32_t recover;                  /* losses below it belong to the last reduction */
	uint32_t undo_sn;                  /* segment whose resend opened the episode */
	uint32_t undo_cwnd, undo_ssthresh; /* before it; undo_cwnd 0: none */
	uint32_t wmax;                     /* cwnd before a timeout collapse; 0: none */
	uint32_t ep_size, ep_lost;         /* episode: flight at its start, originals lost */
	uint32_t ep_base;                  /* snd_una when the episode began */
	uint32_t ep_spur;                  /* of ep_lost: originals proved delivered */
	bool ep_cut;                       /* the episode has reduced cwnd */
	bool ep_heavy;                     /* ...for its share of losses alone */
	bool ep_forgiven;                  /* heavy, no RTT rise: not cut (K7) */
	bool strike;                       /* an episode was forgiven... */
	uint32_t strike_until;             /* ...and the next one beginning below
	                                      this sn is not */
	uint32_t flush_lost;               /* originals found lost in this flush */
	uint32_t flush_runs, ep_runs;      /* ...in runs of consecutive sn */
	uint32_t lost_next;                /* sn after the last original found lost */
	uint32_t flush_resent;             /* resends of this flush */
	uint32_t flush_relost;             /* ...of segments resent before */
	uint32_t re_sent, re_lost;         /* the same, since the last cut or episode */
	uint64_t pace_tok, pace_t;         /* K10: tokens (1/KCP_PACE_ONE segment), as of */
};

/* What the engine tells the controller about the path, at each call. */
struct kcp_cc_path {
	uint32_t srtt, min_rtt;    /* ms; 0 before the first sample */
	uint32_t rtt_floor;        /* ms: smallest sample of the last one or two srtt */
	uint32_t rtt_peak;         /* ms: largest sample of the last window or two (K4) */
	uint32_t snd_una, snd_nxt; /* the send window's edges */
	uint32_t snd_wnd, rmt_wnd; /* configured; the peer's last advertised */
	uint32_t resend;           /* fast retransmit threshold (cfg) */
	bool nc;                   /* no congestion window */
	bool pace;                 /* K10 on */
};

/* kcp_cc_init starts the controller: cwnd KCP_CWND_INIT, slow start up to
 * snd_wnd, a full pacing bucket as of now. */
void kcp_cc_init(struct kcp_cc *cc, uint32_t snd_wnd, uint32_t initial_sn, uint64_t now);

/* kcp_cc_send_limit: segments that may be in flight now (K2, K7). */
uint32_t kcp_cc_send_limit(const struct kcp_cc *cc, const struct kcp_cc_path *p);

/* kcp_cc_on_ack grows cwnd for `acked` newly acknowledged segments (K7). */
void kcp_cc_on_ack(struct kcp_cc *cc, const struct kcp_cc_path *p, uint32_t acked);

/* kcp_cc_flush_begin starts counting the losses of one flush. */
void kcp_cc_flush_begin(struct kcp_cc *cc, const struct kcp_cc_path *p, uint64_t now);

/* kcp_cc_on_resend notes that segment sn is about to be resent; first:
 * its first transmission was lost. The first one of a new loss episode
 * names the episode for kcp_cc_undo; *episode says one was named in this
 * flush already. */
void kcp_cc_on_resend(struct kcp_cc *cc, uint32_t sn, bool first, bool *episode);

/* kcp_cc_on_loss reacts once per flush to what it resent: isolated losses
 * (the path answers) and/or a whole flight unanswered. Returns true when
 * a new episode was taken as random loss and the window kept. */
bool kcp_cc_on_loss(struct kcp_cc *cc, const struct kcp_cc_path *p, bool isolated, bool flight);

/* kcp_cc_delivered: the original of sn, resent once as lost, proved to
 * have arrived (the receiver echoed its ts for the copy: the ACK, not the
 * data, was lost). Returns true when that undid a cut made for the share
 * of losses the episode no longer has. */
bool kcp_cc_delivered(struct kcp_cc *cc, const struct kcp_cc_path *p, uint32_t sn);

/* kcp_cc_undo: the resend of sn proved spurious. Returns true when that
 * undid the window reduction of the episode sn opened. */
bool kcp_cc_undo(struct kcp_cc *cc, uint32_t sn);

/* K10: the pace in 1/KCP_PACE_ONE segments per ms (0: not paced). */
uint64_t kcp_cc_pace_rate(const struct kcp_cc *cc, const struct kcp_cc_path *p);

/* kcp_cc_pace_avail: tokens at time t under pace `rate`, unchanged. */
uint64_t kcp_cc_pace_avail(const struct kcp_cc *cc, uint64_t rate, uint64_t t);

/* kcp_cc_pace_take spends one new segment's tokens; false when there are
 * none (the segment waits). Always true when not paced. */
bool kcp_cc_pace_take(struct kcp_cc *cc, const struct kcp_cc_path *p);

/* kcp_cc_pace_spend: a retransmission, never held back, uses the pace too. */
void kcp_cc_pace_spend(struct kcp_cc *cc);

#endif
