/* kcp.h - our KCP engine: a sans-I/O ARQ, wire-compatible with the reference
 * KCP segment format (docs/PROTOCOL.md (KCP)).
 *
 * The engine owns one KCP session (one conv): a send queue, a send window of
 * segments in flight, a receive window, the RTO estimate and the congestion
 * window. It never does I/O and never reads a clock: bytes and `now`
 * (uint64_t milliseconds, never decreasing) go in; datagrams come out through
 * the output callback, and kcp_next_deadline() says when it must be called
 * next. Memory is bounded by the configured windows (kcp_mem_bytes).
 *
 * Re-entrancy: the output callback must not call any kcp_* function on the
 * same engine. Every other function may be called from anywhere (one thread
 * per engine).
 */
#ifndef KCPSOCKS_KCP_H
#define KCPSOCKS_KCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/deadline.h"
#include "base/err.h"
#include "base/limits.h"

enum {
	KCP_HEADER_LEN = 24, /* bytes of one segment header on the wire */
	KCP_CMD_PUSH = 81,   /* data */
	KCP_CMD_ACK = 82,    /* acknowledges one sn, echoes its ts */
	KCP_CMD_WASK = 83,   /* window probe: "tell me your window" */
	KCP_CMD_WINS = 84,   /* window tell: answer to WASK / window reopened */
};

/* Configuration. Start from kcp_config_default(), optionally apply a preset
 * with kcp_config_preset(), then change single fields. Defaults in brackets.
 * Both peers must agree on mtu (a PUSH longer than our MSS is dropped as
 * malformed), stream and initial_sn. */
struct kcp_config {
	uint32_t nodelay;    /* [0] 0: min RTO 100 ms, RTO x2 on timeout;
	                        1: min RTO 30 ms, x1.5; 2: min RTO 30 ms, +rto/2 */
	uint32_t interval;   /* [100] ms, KCP_INTERVAL_MIN..MAX: upper bound on
	                        how long ACKs and queued data wait for a flush */
	uint32_t resend;     /* [0] fast retransmit after this many ACK datagrams
	                        (arrivals in one ms count once) that skipped a
	                        segment; raised when it proves too eager on a
	                        reordering path (docs K5); 0 = off */
	bool nc;             /* [false] true: no congestion window, send window
	                        is min(snd_wnd, remote window) */
	uint32_t snd_wnd;    /* [KCP_SND_WND_DEFAULT] segments in flight, max */
	uint32_t rcv_wnd;    /* [KCP_RCV_WND_DEFAULT] segments, >= KCP_RCV_WND_MIN */
	uint32_t snd_queue;  /* [0 = snd_wnd] segments queued before kcp_send
	                        refuses (backpressure) */
	uint32_t mtu;        /* [KCP_MTU_DEFAULT] bytes per output datagram */
	uint32_t min_rto;    /* [0 = by nodelay: 100 or 30] ms */
	uint32_t dead_link;  /* [KCP_DEAD_LINK_DEFAULT] transmissions of one
	                        segment after which the link is dead */
	bool stream;         /* [false] byte stream instead of messages */
	bool flush_on_send;  /* [true] kcp_send and window openings output at
	                        once instead of waiting up to interval */
	bool ack_immediate;  /* [true] ACKs (and window tells) go out at the end
	                        of kcp_input instead of waiting up to interval */
	bool ack_lazy;       /* [false] with ack_immediate: ACKs of in-order data
	                        less than a full segment wait for data going
	                        back, at most interval (TCP's delayed ACK, for
	                        thin flows); a full segment's worth, a hole or
	                        a window tell send at once */
	bool pace;           /* [false] spread new data over the RTT instead of
	                        sending what the window allows at once (K10);
	                        kcp_next_deadline then asks for calls between
	                        flushes */
	bool dup_thin;       /* [false] K11: send new data twice, in two
	                        datagrams, when the flight is thin (at most
	                        KCP_THIN_FLIGHT segments) and nothing is queued
	                        behind it; local, the peer needs no support */
	bool bundle;         /* [false] K13: a datagram carrying new data also
	                        carries copies of older unacknowledged segments
	                        in its spare room, when the flight is thin (at
	                        most KCP_BUNDLE_FLIGHT segments); local */
	bool early;          /* [false] message mode only: a one-segment
	                        message that arrives above a hole is also
	                        offered at once (kcp_early_peek); nothing on
	                        the wire changes (per-stream delivery, K14) */
	uint32_t initial_sn; /* [0] first sn sent and expected (both peers) */
};

/* Counters (monotonic) and gauges (current values). */
enum kcp_drop {
	KCP_DROP_SHORT, /* shorter than one header, or trailing bytes */
	KCP_DROP_LEN,   /* len runs past the datagram or exceeds the MSS */
	KCP_DROP_CMD,   /* unknown cmd, or len != 0 on a control segment */
	KCP_DROP_CONV,  /* conv is not ours */
	KCP_DROP_FRG,   /* frg invalid for the mode */
	KCP_DROP_SN,    /* PUSH sn far outside the receive window */
	KCP_DROP_ACK,   /* ACK sn or una refers to data we never sent */
	KCP_DROP_REASONS
};

struct kcp_stats {
	uint64_t seg_sent;                  /* data segments, first transmissions */
	uint64_t seg_retx_timeout;          /* retransmitted after RTO expiry */
	uint64_t seg_retx_fast;             /* fast retransmissions */
	uint64_t seg_recv;                  /* data segments accepted (new) */
	uint64_t seg_dup;                   /* data segments received again */
	uint64_t ack_sent;                  /* ACK segments sent (first copies) */
	uint64_t ack_recv;                  /* ACK segments received */
	uint64_t probe_sent;                /* WASK sent */
	uint64_t tell_sent;                 /* WINS sent */
	uint64_t dgram_out;                 /* datagrams handed to output */
	uint64_t dgram_in;                  /* datagrams accepted by kcp_input */
	uint64_t bytes_out;                 /* datagram bytes handed to output */
	uint64_t bytes_in;                  /* datagram bytes accepted */
	uint64_t data_bytes_sent;           /* payload bytes, first transmissions */
	uint64_t data_bytes_retx;           /* payload bytes, retransmissions */
	uint64_t seg_retx_spurious;         /* fast or RTO retransmissions an
	                                       older echo proved unnecessary */
	uint64_t output_errors;             /* output callback returned < 0 */
	uint64_t seg_retx_isolated;         /* of seg_retx_timeout: while later
	                                       data was acknowledged (no backoff) */
	uint64_t cwnd_undo;                 /* reductions undone: spurious */
	uint64_t ack_repeated;              /* ACK copies repeated (K3) */
	uint64_t loss_random;               /* loss episodes without queueing
	                                       delay: window kept (K7) */
	uint64_t seg_dup_thin;              /* K11 copies of thin-flight data
	                                       (not retransmissions) */
	uint64_t seg_wake;                  /* K12 wake copies: the peer heard
	                                       while our probe was backed off */
	uint64_t seg_bundled;               /* K13 copies bundled with new data
	                                       (not retransmissions) */
	uint64_t rto_stall_deferred;        /* RTO expiries deferred because the
	                                       caller had not run for a while:
	                                       their ACKs may wait unread (K4) */
	uint64_t seg_early;                 /* K14 messages taken early */
	uint64_t dropped[KCP_DROP_REASONS]; /* whole datagrams, by reason */
	/* gauges */
	uint32_t srtt, rttvar, rto; /* ms */
	uint32_t cwnd, ssthresh;    /* segments */
	uint32_t rmt_wnd;           /* last window the peer advertised */
	uint32_t rcv_free;          /* window we advertise now */
	uint32_t resend;            /* fast retransmit threshold now (learned) */
	uint32_t inflight;          /* sent, not yet acknowledged */
	uint32_t waitsnd;           /* queued + in flight */
};

/* output is called with each datagram to send (1..mtu bytes, a view valid
 * only during the call). The caller seals and queues it; a negative return
 * counts as an output error and the data is treated as lost (it will be
 * retransmitted). Must not call back into the engine. */
typedef int (*kcp_output_fn)(const uint8_t *dgram, size_t len, void *user);

struct kcp;

/* kcp_config_default fills cfg with the defaults listed above. */
void kcp_config_default(struct kcp_config *cfg);

/* kcp_config_preset sets nodelay, interval, resend, nc, ack_lazy and
 * bundle from a named preset, leaving the other fields as they are:
 *   "normal" (0, 40, 0, 0)   "fast" (0, 30, 2, 1)
 *   "fast2"  (1, 20, 2, 1)   "fast3" (1, 10, 2, 1)
 * "normal" clears ack_lazy and bundle, the fast ones set both.
 * Returns 0, or KS_ERR_INVAL for an unknown name (cfg unchanged). */
KS_MUST_CHECK int kcp_config_preset(struct kcp_config *cfg, const char *name);

/* kcp_config_check returns 0 if cfg is usable, else KS_ERR_INVAL. */
KS_MUST_CHECK int kcp_config_check(const struct kcp_config *cfg);

/* kcp_new creates an engine for session conv at time now. cfg is copied;
 * user is borrowed and passed to output. On success *out owns the engine
 * (release with kcp_free) and 0 is returned; KS_ERR_INVAL for a bad config
 * or NULL output, KS_ERR_NOMEM. */
KS_MUST_CHECK int kcp_new(struct kcp **out, uint32_t conv, const struct kcp_config *cfg,
                          uint64_t now, kcp_output_fn output, void *user);

/* kcp_free releases everything the engine owns; kcp_free(NULL) is a no-op. */
void kcp_free(struct kcp *k);

/* kcp_send queues len bytes from buf (copied). Stream mode accepts as many
 * bytes as fit and returns that count (> 0). Message mode accepts the whole
 * message or nothing; len 0 sends an empty message.
 * Returns bytes accepted, or KS_ERR_FULL (no room: stop reading the source
 * until kcp_send_room() > 0), KS_ERR_TOOBIG (message needs more than
 * KCP_MAX_FRAGMENTS segments), KS_ERR_INVAL (buf NULL with len > 0, or
 * len 0 in stream mode), KS_ERR_DEAD, KS_ERR_NOMEM.
 * With flush_on_send, datagrams may be output before it returns. */
KS_MUST_CHECK ssize_t kcp_send(struct kcp *k, const void *buf, size_t len, uint64_t now);

/* Zero-copy send, message mode only: a one-segment message written in
 * place. kcp_send_reserve sets *buf to the payload buffer of the next
 * queued segment (owned by the engine) and returns its size, the MSS; the
 * caller writes up to that many bytes and then either commits them with
 * kcp_send_commit or walks away (nothing is queued; the next reserve or
 * kcp_send reuses the buffer). The reservation, and *buf, last until the
 * commit or the next kcp_send or kcp_send_reserve; any other call in
 * between may end it, and the commit then fails with KS_ERR_INVAL.
 * kcp_send_reserve returns the MSS, or KS_ERR_FULL (no room for a message:
 * as kcp_send's), KS_ERR_INVAL (stream mode, buf NULL), KS_ERR_DEAD,
 * KS_ERR_NOMEM; *buf is NULL on error. */
KS_MUST_CHECK ssize_t kcp_send_reserve(struct kcp *k, uint8_t **buf);

/* kcp_send_commit queues the first len bytes of the reserved buffer as one
 * message: on the wire and in every count exactly what kcp_send of those
 * bytes would have made (len 0: an empty message). Returns len, or
 * KS_ERR_INVAL (no live reservation, or len > MSS; nothing queued),
 * KS_ERR_DEAD. Ends the reservation either way. With flush_on_send,
 * datagrams may be output before it returns. */
KS_MUST_CHECK ssize_t kcp_send_commit(struct kcp *k, size_t len, uint64_t now);

/* kcp_send_room returns how many bytes kcp_send would accept now (message
 * mode: the largest message it would accept now); 0 when dead. */
size_t kcp_send_room(const struct kcp *k);

/* kcp_recv copies received data into buf. Stream mode: up to cap bytes in
 * order. Message mode: exactly one whole message.
 * Returns bytes copied (message mode: may be 0 for an empty message), or
 * KS_ERR_AGAIN (nothing complete yet), KS_ERR_TOOBIG (message mode: the next
 * message is larger than cap; see kcp_peek_size; nothing consumed),
 * KS_ERR_INVAL (buf NULL with cap > 0). Reading may reopen a closed window;
 * kcp_next_deadline then asks for a call to announce it. */
KS_MUST_CHECK ssize_t kcp_recv(struct kcp *k, void *buf, size_t cap);

/* kcp_peek_size returns the size of the next whole message (message mode) or
 * the bytes readable now (stream mode), or KS_ERR_AGAIN. */
ssize_t kcp_peek_size(const struct kcp *k);

/* Early delivery (K14, cfg.early). A message of one segment (frg 0) that
 * arrives while an earlier sn is still missing is offered through
 * kcp_early_peek, oldest arrival first. The caller either takes it
 * (kcp_early_done(k, true): the engine forgets the payload and the ordered
 * path skips that message when the hole fills) or leaves it
 * (kcp_early_done(k, false): kcp_recv returns it in order, as without the
 * option). ACKs, una, the window and the receive memory bound are exactly
 * as without the option; only the moment data is handed up changes.
 *
 * kcp_early_peek sets *sn, and *data and *len to a view of the payload valid
 * until the next call on the engine, and returns 0; KS_ERR_AGAIN when
 * nothing is offered (always, without cfg.early). */
KS_MUST_CHECK int kcp_early_peek(struct kcp *k, uint32_t *sn, const uint8_t **data, size_t *len);

/* kcp_early_done answers the offer kcp_early_peek made last (no-op if
 * none): taken or left for the ordered path. */
void kcp_early_done(struct kcp *k, bool taken);

/* kcp_input hands the engine one received datagram (borrowed for the call).
 * The whole datagram is validated first; if any segment is malformed
 * nothing is applied, stats.dropped[reason] goes up and KS_ERR_PROTO is
 * returned. Returns 0, KS_ERR_PROTO, KS_ERR_DEAD (engine dead, ignored),
 * KS_ERR_NOMEM (nothing applied), KS_ERR_INVAL (dgram NULL with len > 0). With ack_immediate /
 * flush_on_send, datagrams may be output before it returns. */
KS_MUST_CHECK int kcp_input(struct kcp *k, const uint8_t *dgram, size_t len, uint64_t now);

/* kcp_update does whatever is due at now: delayed ACKs and data after the
 * interval, retransmissions whose RTO expired, window probes. Call it when
 * now >= kcp_next_deadline(); calling it early is harmless. */
void kcp_update(struct kcp *k, uint64_t now);

/* kcp_flush outputs everything pending now (ACKs, window tells, sendable
 * data, eligible retransmissions), regardless of the interval. */
void kcp_flush(struct kcp *k, uint64_t now);

/* kcp_next_deadline returns the exact time kcp_update must next be called:
 * the earliest of the pending flush, RTO expiry and probe time, never less
 * than now; KS_NEVER when nothing is scheduled (idle, or dead). */
uint64_t kcp_next_deadline(const struct kcp *k, uint64_t now);

/* kcp_waitsnd returns segments queued plus in flight (unacknowledged). */
uint32_t kcp_waitsnd(const struct kcp *k);

/* kcp_inflight returns segments sent and not yet acknowledged. */
uint32_t kcp_inflight(const struct kcp *k);

/* kcp_path_changed: the peer was proven at a new address (a NAT moved
 * it), so what is in flight went to the old one and the old path's
 * silence says nothing about the new one. Every unacknowledged segment is
 * due at now, its RTO back at the engine's without backoff, and a silent
 * episode (K12) ends. */
void kcp_path_changed(struct kcp *k, uint64_t now);

/* kcp_seed_rtt takes rtt (ms, the handshake's round trip, measured
 * unambiguously) as the estimator's first sample before KCP has one of its
 * own (K4): srtt, rttvar and rto as RFC 6298 2.2 sets them, the sample and
 * the rto at most KCP_SEED_MAX, the rto at least min_rto. bound: rtt is
 * only an upper bound of the round trip (the peer may have waited before
 * it answered), taken only when it lowers the rto. KCP's first sample of
 * its own then starts the estimator over. Call it before the first
 * kcp_send; a no-op once KCP has a sample. */
void kcp_seed_rtt(struct kcp *k, uint64_t rtt, bool bound);

/* kcp_rtt sets *srtt (smoothed) and *min_rtt (smallest sample seen), in
 * ms; both 0 before the first RTT sample. */
void kcp_rtt(const struct kcp *k, uint32_t *srtt, uint32_t *min_rtt);

/* kcp_is_dead: a segment reached dead_link transmissions. Terminal: sends
 * and inputs are refused, no more deadlines; received data stays readable. */
bool kcp_is_dead(const struct kcp *k);

/* kcp_nudge sends a copy of the oldest unacknowledged segment at once, in
 * a datagram of its own, whatever the window and the pace: the peer's
 * ACK shows the path answers (the client's probe of a silent path,
 * docs/PROTOCOL.md (session) L7). xmit, the RTO and cwnd are left alone;
 * seg_dup_thin counts it. Returns false when nothing is in flight. */
bool kcp_nudge(struct kcp *k, uint64_t now);

/* kcp_stats copies the counters and current gauges into *st. */
void kcp_stats(const struct kcp *k, struct kcp_stats *st);

/* kcp_mem_bytes returns the bytes the engine holds now (struct, rings,
 * segment buffers); never more than the bound its config implies. */
size_t kcp_mem_bytes(const struct kcp *k);

/* kcp_check verifies the engine's internal invariants (O(window); for tests
 * and fuzzing). Returns true when they hold. */
bool kcp_check(const struct kcp *k);

#endif
