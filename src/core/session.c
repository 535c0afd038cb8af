/* session.c - one peer's stack: envelope -> handshake -> KCP -> mux.
 *
 * Steps (C1.. for the client's handshake, E1.. for an established session,
 * L1.. for liveness) refer to docs/PROTOCOL.md (session). Every public entry
 * point records `now`, does its work, and ends in finish(), which
 * recomputes the one deadline; nothing else schedules anything.
 */
#include "core/session.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/minmax.h"
#include "base/rd.h"
#include "base/wr.h"
#include "core/envelope.h"
#include "core/feed.h"
#include "core/handshake.h"
#include "core/transport.h"
#include "core/udpassoc.h"

/* L8: a close is one KCP-shaped control segment with this command, alone
 * in its datagram. Reference KCP and our kcp.c before L8 drop a segment
 * with an unknown command (KCP_DROP_CMD) and the datagram with it, so an
 * old peer ignores a close. */
enum { SESSION_CLOSE_CMD = 85 };

/* Restart detection (L3): silent server -> a new handshake goes out while
 * the old session stays -> the answer is held while the old session gets a
 * last chance to speak -> the new session replaces it. */
enum probe {
	PROBE_NONE,
	PROBE_HANDSHAKE, /* inits out, waiting for a response */
	PROBE_CONFIRM,   /* response held until switch_at */
};

struct session {
	enum session_role role;
	enum session_state state;
	const struct rng_source *rng; /* borrowed */
	session_output_fn output;
	void *output_user;               /* borrowed */
	session_slot_fn slot;            /* may be NULL */
	struct mux_config mux_cfg;       /* copied */
	struct transport_local local;    /* this end's KCP policy, copied */
	struct session_scratch *scratch; /* owned (client) or borrowed (server) */
	uint64_t now;                    /* of the current entry point */
	uint64_t deadline;

	/* client: what a handshake needs, kept for the next one */
	uint8_t spub[KEYS_LEN];
	bool has_instance; /* every init carries instance (secure 6.3) */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
	uint8_t hdr[KEYS_LEN]; /* the server's session-id mask key */
	struct keys_user user; /* secret: wiped on free */
	struct transport_params proposal;
	struct handshake_client hs;
	struct envelope env; /* established: keys of this session */
	uint32_t silent_ms, hs_timeout_ms, dead_path_ms;
	uint64_t hs_start, hs_next, retry_at;
	uint32_t hs_rto, retry_delay;

	/* server */
	struct sessions *table; /* borrowed */
	session_changed_fn changed;
	void *changed_ctx; /* borrowed */

	/* either role: UDP datagram frames (UDP U3) */
	session_datagram_fn datagram;
	void *datagram_user; /* borrowed */

	/* established */
	uint64_t sid;
	uint32_t conv;
	struct transport_params params;
	struct kcp *kcp;  /* owned */
	struct mux *mux;  /* owned */
	struct feed feed; /* E5: what KCP may hold (issue 19) */
	uint32_t mss;     /* KCP payload bytes per segment */
	uint64_t last_rx, last_tx, last_ka;
	uint64_t last_stall;             /* client: the last stall probe (L7) */
	uint32_t stall_gap;              /* ms from max(last_rx, last_stall) to the next */
	uint64_t rx_stream, stall_rx;    /* bytes KCP delivered: all, at the last probe */
	uint64_t outstanding_since;      /* KS_NEVER: nothing unacknowledged */
	uint64_t inflight_since;         /* L6: KS_NEVER: nothing sent unacknowledged */
	bool flush_owed;                 /* E6: KCP holds ACKs or data for this batch */
	enum probe probe;                /* client: restart detection phase (L3) */
	uint64_t switch_at;              /* PROBE_CONFIRM: adopt `pending` at this time */
	uint64_t last_init_at;           /* when the last handshake init went out */
	uint64_t hint_at;                /* the last probe an ICMP hint started */
	bool hinted;                     /* hint_at is set */
	struct handshake_result pending; /* PROBE_CONFIRM: the new session (secret) */

	/* undelivered session-level events */
	bool ev_established, ev_failed, ev_lost;
	enum session_lost_reason lost_reason;

	struct session_stats st; /* counters; gauges filled by session_stats */
};

/* Saturating a + b for deadlines. */
static uint64_t after(uint64_t a, uint64_t b) { return a > KS_NEVER - b ? KS_NEVER : a + b; }

/* --- output ---------------------------------------------------------------- */

static void emit(struct session *s, const uint8_t *d, size_t len, const struct sessions_addr *to)
{
	if (s->output(d, len, to, s->output_user) < 0) {
		s->st.output_drops++;
		return;
	}
	s->st.dgram_out++;
	s->st.bytes_out += len;
	s->last_tx = s->now;
}

/* E4: every KCP datagram is sealed here, by our own envelope (client) or
 * by the server's table, which also knows where the peer is now. */
static int kcp_out(const uint8_t *dgram, size_t len, void *user)
{
	struct session *s = user;
	const struct sessions_addr *to = NULL;
	uint8_t *out = s->scratch->seal;
	size_t cap = sizeof s->scratch->seal;
	ssize_t n;

	/* Straight into the caller's send slot when it lends one. */
	if (s->slot) {
		size_t slot_cap = 0;
		uint8_t *slot = s->slot(&slot_cap, s->output_user);

		if (slot && slot_cap >= ENVELOPE_MAX_DATAGRAM) {
			out = slot;
			cap = slot_cap;
		}
	}
	if (s->role == SESSION_CLIENT)
		n = envelope_seal(&s->env, s->rng, dgram, len, out, cap);
	else
		n = sessions_seal(s->table, s->sid, s->rng, dgram, len, out, cap, &to);
	if (n < 0) {
		s->st.output_drops++;
		return (int)n;
	}
	emit(s, out, (size_t)n, to);
	return 0;
}

/* --- establishing ---------------------------------------------------------- */

/* E1-E2: build KCP and mux; nothing changes on failure. */
static int establish(struct session *s, uint64_t sid, uint32_t conv,
                     const struct transport_params *p, uint64_t now)
{
	struct kcp_config kc;
	struct kcp *k = NULL;
	struct mux *m = NULL;
	int rc;

	/* E1: agreed parameters plus this end's own policy (transport.h). */
	transport_kcp(&kc, p, &s->local, s->role == SESSION_SERVER);
	rc = kcp_new(&k, conv, &kc, now, kcp_out, s);
	if (rc == 0)
		rc = mux_new(&m, s->role == SESSION_CLIENT ? MUX_CLIENT : MUX_SERVER, &s->mux_cfg);
	if (rc != 0) {
		kcp_free(k);
		return rc;
	}
	s->kcp = k;
	s->mux = m;
	feed_init(&s->feed, now);
	s->mss = kc.mtu - KCP_HEADER_LEN;
	s->sid = sid;
	s->conv = conv;
	s->params = *p;
	s->last_rx = s->last_tx = s->last_ka = now;
	s->last_stall = 0;
	s->stall_gap = SESSION_STALL_MIN_MS;
	s->outstanding_since = s->inflight_since = KS_NEVER;
	s->state = SESSION_ESTABLISHED;
	s->ev_established = true;
	return 0;
}

/* C1: arm a handshake attempt; its first init is due now. */
static void arm_handshake(struct session *s, uint64_t now)
{
	s->hs_start = now;
	s->hs_next = now;
	s->hs_rto = SESSION_HS_RTO_MS;
	/* The same values passed at creation, so this does not fail; if it
	 * did, no init would go out and the attempt would time out. */
	if (handshake_client_init(&s->hs, s->spub, &s->user, &s->proposal) != 0)
		s->hs_next = KS_NEVER;
	else if (s->has_instance)
		handshake_client_set_instance(&s->hs, s->instance);
}

static void start_attempt(struct session *s, uint64_t now)
{
	s->state = SESSION_HANDSHAKING;
	arm_handshake(s, now);
}

/* L5: the session ended. KCP, mux and streams go at once, and the daemon
 * hears of it before anything else. */
static void teardown(struct session *s, enum session_lost_reason reason)
{
	mux_free(s->mux);
	kcp_free(s->kcp);
	s->mux = NULL;
	s->kcp = NULL;
	s->st.lost[reason]++;
	s->ev_lost = true;
	s->ev_established = false;
	s->lost_reason = reason;
	s->sid = 0;
	s->flush_owed = false;
	s->probe = PROBE_NONE;
	sodium_memzero(&s->pending, sizeof s->pending);
	if (s->role == SESSION_CLIENT)
		envelope_wipe(&s->env);
}

/* L5: the client starts handshaking again at once; a server session waits
 * to be collected. */
static void lose(struct session *s, enum session_lost_reason reason)
{
	if (s->state != SESSION_ESTABLISHED)
		return;
	teardown(s, reason);
	if (s->role == SESSION_CLIENT)
		start_attempt(s, s->now);
	else
		s->state = SESSION_CLOSED;
}

/* --- the deadline ---------------------------------------------------------- */

/* L6: data goes out on a session that already heard nothing for a while
 * (a request made during an outage not yet detected): the silence before
 * it counts, up to half of dead_path_ms. The session is then declared down
 * once nothing came for dead_path_ms and the data went unanswered for at
 * least dead_path_ms / 2 (a healthy path answers an OPEN or a PING much
 * sooner), so a request fails at most dead_path_ms after it was made
 * rather than dead_path_ms after its answer was first missed. */
static uint64_t inflight_start(const struct session *s, uint64_t now)
{
	uint64_t half = s->dead_path_ms / 2;

	if (s->last_rx >= now)
		return now;
	return now - s->last_rx <= half ? s->last_rx : now - half;
}

/* L3: restart detection needs to know since when something is unanswered. */
static void track_outstanding(struct session *s, uint64_t now)
{
	if (kcp_waitsnd(s->kcp) == 0)
		s->outstanding_since = KS_NEVER;
	else if (s->outstanding_since == KS_NEVER)
		s->outstanding_since = now;
	/* L6 counts only what went out: data queued behind a closed peer
	 * window is not unanswered (the peer's window tells answer). */
	if (kcp_inflight(s->kcp) == 0)
		s->inflight_since = KS_NEVER;
	else if (s->inflight_since == KS_NEVER)
		s->inflight_since = inflight_start(s, now);
}

/* L2: a keepalive interval not below the idle window would let the server
 * expire a healthy session; a third of it leaves room for a lost PING. */
static uint64_t keepalive_at(const struct session *s)
{
	uint32_t ka = s->params.keepalive_ms, cap = s->params.idle_timeout_ms / 3;

	return after(max_u64(s->last_tx, s->last_ka), ka < cap ? ka : cap);
}

static uint64_t silent_at(const struct session *s)
{
	if (s->outstanding_since == KS_NEVER)
		return KS_NEVER;
	return after(max_u64(s->last_rx, s->outstanding_since), s->silent_ms);
}

/* L6: something unanswered (KCP data, which includes PINGs and stall
 * probes) and nothing authenticated since for dead_path_ms. A held probe
 * answer (PROBE_CONFIRM) proves the path, so it stops the clock. */
static uint64_t dead_at(const struct session *s)
{
	if (s->inflight_since == KS_NEVER || s->probe == PROBE_CONFIRM)
		return KS_NEVER;
	return after(max_u64(s->last_rx, s->inflight_since), s->dead_path_ms);
}

/* L6: one more handshake init SESSION_LAST_CALL_MS before dead_at, unless
 * one went out since. Probe inits back off (C2) and so do KCP's
 * retransmissions, so without it a path that came back a few seconds
 * before dead_at might not have been asked again in time. */
static uint64_t last_call_at(const struct session *s)
{
	uint64_t d = dead_at(s), lc;

	if (d == KS_NEVER)
		return KS_NEVER;
	lc = d > SESSION_LAST_CALL_MS ? d - SESSION_LAST_CALL_MS : 0;
	return s->last_init_at >= lc ? KS_NEVER : lc;
}

/* L7: streams are open and nothing came for stall_gap: a PING (a download
 * sends only ACKs, which KCP does not retransmit, so without it a dead
 * path under a download would leave nothing unanswered). */
static uint64_t stall_at(const struct session *s)
{
	if (mux_stream_count(s->mux) == 0)
		return KS_NEVER;
	return after(max_u64(s->last_rx, s->last_stall), s->stall_gap);
}

static uint64_t handshake_deadline(const struct session *s)
{
	return min_u64(s->hs_next, after(s->hs_start, s->hs_timeout_ms));
}

static uint64_t probe_deadline(const struct session *s)
{
	switch (s->probe) {
	case PROBE_HANDSHAKE: return handshake_deadline(s);
	case PROBE_CONFIRM: return s->switch_at;
	case PROBE_NONE: break;
	}
	return silent_at(s);
}

static uint64_t established_deadline(const struct session *s, uint64_t now)
{
	uint64_t d = kcp_next_deadline(s->kcp, now);

	/* E6: a batch that was never flushed is due now, never at KCP's
	 * interval: a daemon that follows the deadline sends the ACKs before
	 * it sleeps. */
	if (s->flush_owed)
		return now;

	d = min_u64(d, after(s->last_rx, s->params.idle_timeout_ms));
	if (s->role == SESSION_CLIENT) {
		d = min_u64(d, min_u64(keepalive_at(s), probe_deadline(s)));
		d = min_u64(d, min_u64(dead_at(s), stall_at(s)));
		d = min_u64(d, last_call_at(s));
	}
	return d;
}

static uint64_t deadline_of(const struct session *s, uint64_t now)
{
	switch (s->state) {
	case SESSION_HANDSHAKING: return handshake_deadline(s);
	case SESSION_BACKOFF: return s->retry_at;
	case SESSION_ESTABLISHED: return established_deadline(s, now);
	case SESSION_CLOSED: break;
	}
	return KS_NEVER;
}

static void finish(struct session *s, uint64_t now)
{
	if (s->state == SESSION_ESTABLISHED)
		track_outstanding(s, now);
	s->deadline = deadline_of(s, now);
}

/* --- the pump ---------------------------------------------------------------- */

/* E6: output what KCP holds for this batch (ACKs, window tells, data). */
static void flush(struct session *s, uint64_t now)
{
	if (s->flush_owed && s->state == SESSION_ESTABLISHED)
		kcp_flush(s->kcp, now);
	s->flush_owed = false;
}

/* E5: how many more bytes KCP may hold by the feed (feed.h): its queue and
 * flight stay about one base RTT of the delivery rate plus FEED_QUEUE_MS,
 * so bulk data does not build a standing queue that new streams wait
 * behind. Held bytes are counted in whole segments (an estimate). */
static size_t feed_room(struct session *s, uint64_t now)
{
	uint64_t held = (uint64_t)kcp_waitsnd(s->kcp) * s->mss, cap;
	uint32_t srtt, min_rtt;

	kcp_rtt(s->kcp, &srtt, &min_rtt);
	cap = feed_cap(&s->feed, held, srtt, min_rtt, now);
	if (cap <= held)
		return 0;
	return cap - held > SIZE_MAX ? SIZE_MAX : (size_t)(cap - held);
}

/* E5: mux output into KCP, never more than KCP takes now (so nothing piles
 * up below the mux) nor more than the feed allows. The flush is left to
 * the caller (E6). */
static void fill(struct session *s, uint64_t now)
{
	uint8_t *buf = s->scratch->pump;
	bool queued = false;

	while (s->state == SESSION_ESTABLISHED && mux_want_produce(s->mux)) {
		size_t room = min_size(kcp_send_room(s->kcp), feed_room(s, now));
		ssize_t n, w;

		if (room == 0)
			break;
		n = mux_produce(s->mux, buf, room < SESSION_PUMP_CHUNK ? room : SESSION_PUMP_CHUNK,
		                now);
		if (n <= 0) {
			if (n < 0)
				lose(s,
				     n == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_PROTO);
			break;
		}
		/* room >= n, and a stream-mode engine takes all it has room for. */
		w = kcp_send(s->kcp, buf, (size_t)n, now);
		if (w != n) {
			lose(s, w == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_DEAD);
			break;
		}
		feed_sent(&s->feed, (uint64_t)n);
		queued = true;
	}
	if (queued && s->state == SESSION_ESTABLISHED)
		s->flush_owed = true;
}

/* E5-E6: fill, then flush what is owed. */
static void pump(struct session *s, uint64_t now)
{
	fill(s, now);
	flush(s, now);
}

/* E3: stream bytes KCP delivered, in order, into the mux. */
static void drain(struct session *s, uint64_t now)
{
	uint8_t *buf = s->scratch->pump;
	ssize_t n;

	while (s->state == SESSION_ESTABLISHED &&
	       (n = kcp_recv(s->kcp, buf, SESSION_PUMP_CHUNK)) > 0) {
		int rc = mux_input(s->mux, buf, (size_t)n, now);

		s->rx_stream += (uint64_t)n;

		if (rc != 0)
			lose(s, rc == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_PROTO);
	}
}

/* L8: the segment a close is made of: conv, SESSION_CLOSE_CMD, every
 * other header field zero. */
static void close_segment(const struct session *s, uint8_t out[KCP_HEADER_LEN])
{
	struct wr w = wr_init(out, KCP_HEADER_LEN);

	memset(out, 0, KCP_HEADER_LEN);
	wr_u32le(&w, s->conv);
	wr_u8(&w, SESSION_CLOSE_CMD);
}

/* L8: an authenticated payload that is exactly this session's close. */
static bool is_close(const struct session *s, const uint8_t *p, size_t len)
{
	uint8_t want[KCP_HEADER_LEN];

	if (len != KCP_HEADER_LEN)
		return false;
	close_segment(s, want);
	return memcmp(p, want, KCP_HEADER_LEN) == 0;
}

/* L4: envelope limits. With TPARAMS_FEAT_REKEY the envelope rekeys in
 * band (it learns the time here); otherwise a due rekey waits until no
 * stream would be cut. */
static void check_rekey(struct session *s, uint64_t now)
{
	enum envelope_status es;

	if (s->role != SESSION_CLIENT || s->state != SESSION_ESTABLISHED)
		return;
	envelope_tick(&s->env, now);
	es = envelope_status(&s->env, now, ENVELOPE_NOTHING_UNACKED);
	if (es == ENVELOPE_EXHAUSTED || (es == ENVELOPE_REKEY_DUE && mux_stream_count(s->mux) == 0))
		lose(s, SESSION_LOST_REKEY);
}

/* UDP U3: a datagram frame goes up at once, never through KCP. */
static void datagram_in(struct session *s, const uint8_t *p, size_t len)
{
	const uint8_t *body;
	size_t body_len;
	uint32_t id;

	if (!(s->params.features & TPARAMS_FEAT_DATAGRAM) || !s->datagram ||
	    udpassoc_frame_read(p, len, s->conv, &id, &body, &body_len) != 0) {
		s->st.udp_dropped++;
		return;
	}
	s->st.udp_in++;
	s->datagram(s->sid, id, body, body_len, s->datagram_user);
}

/* E3: an authenticated payload. */
static int input(struct session *s, const uint8_t *p, size_t len, uint64_t now)
{
	int rc;

	s->last_rx = now;
	s->st.dgram_in++;
	s->st.bytes_in += len;
	if (udpassoc_is_frame(p, len)) {
		datagram_in(s, p, len);
		return 0;
	}
	if (is_close(s, p, len)) {
		lose(s, SESSION_LOST_PEER_CLOSED);
		return 0;
	}
	rc = kcp_input(s->kcp, p, len, now);
	if (rc == KS_ERR_NOMEM) {
		lose(s, SESSION_LOST_NOMEM);
		return rc;
	}
	/* E6: ACKs wait for the end of the batch (KCP holds them). */
	if (rc == 0)
		s->flush_owed = true;
	drain(s, now);
	fill(s, now);
	if (s->state == SESSION_ESTABLISHED && kcp_is_dead(s->kcp))
		lose(s, SESSION_LOST_DEAD);
	check_rekey(s, now);
	return rc == KS_ERR_PROTO ? rc : 0;
}

/* --- client: handshake ------------------------------------------------------ */

/* C2: send a fresh init (a server never accepts the same one twice) and
 * double the retransmission interval. */
static void send_init(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	ssize_t n = handshake_client_write_init(&s->hs, s->rng, now_unix_ms, s->scratch->seal,
	                                        sizeof s->scratch->seal);

	if (n < 0)
		s->st.output_drops++;
	else {
		s->st.hs_inits++;
		s->last_init_at = now;
		emit(s, s->scratch->seal, (size_t)n, NULL);
	}
	s->hs_next = after(now, s->hs_rto);
	s->hs_rto = s->hs_rto * 2 > SESSION_HS_RTO_MAX_MS ? SESSION_HS_RTO_MAX_MS : s->hs_rto * 2;
}

/* C4: the attempt timed out; the next one starts after a backoff with
 * jitter, so clients of a restarted server do not come back in step. */
static void attempt_failed(struct session *s, uint64_t now)
{
	uint32_t d = s->retry_delay ? s->retry_delay * 2 : SESSION_RETRY_MIN_MS, jitter;

	if (d > SESSION_RETRY_MAX_MS)
		d = SESSION_RETRY_MAX_MS;
	s->retry_delay = d;
	rng_fill(s->rng, &jitter, sizeof jitter);
	s->retry_at = now + d + jitter % (d / 4 + 1);
	s->state = SESSION_BACKOFF;
	s->st.hs_failed++;
	s->ev_failed = true;
}

/* C3: take the agreed session: envelope, KCP, mux. res is wiped. */
static int adopt(struct session *s, struct handshake_result *res, uint64_t now)
{
	int rc;

	envelope_init(&s->env, s->hdr, res->sid, &res->tx, &res->rx, &res->params, now);
	s->env.silent_ms = s->silent_ms;
	rc = establish(s, res->sid, res->conv, &res->params, now);
	sodium_memzero(res, sizeof *res);
	if (rc != 0) {
		envelope_wipe(&s->env);
		attempt_failed(s, now);
		return rc;
	}
	s->st.hs_ok++;
	s->retry_delay = 0;
	return 0;
}

/* L3: a response while probing. The path works, but a live old session
 * may simply not have been heard yet (its retransmissions back off in an
 * outage): hold the answer until the old session's next retransmission
 * had two handshake round trips to be answered, and ask with a PING. */
static void hold(struct session *s, const struct handshake_result *res, uint64_t now)
{
	uint64_t rtt = now - s->last_init_at, retx = kcp_next_deadline(s->kcp, now);

	s->pending = *res;
	s->probe = PROBE_CONFIRM;
	s->switch_at = after(retx == KS_NEVER ? now : retx, 2 * rtt + SESSION_SWITCH_GRACE_MS);
	if (mux_ping(s->mux) == 0)
		pump(s, now);
}

/* C3: a response to our init. A late one is still taken during the
 * backoff: the init it answers is the last one sent. */
static int on_response(struct session *s, const uint8_t *d, size_t len, uint64_t now)
{
	struct handshake_result res;
	int rc = handshake_client_read_response(&s->hs, d, len, &res);

	if (rc != 0) {
		s->st.dropped++;
		return rc;
	}
	s->st.dgram_in++;
	s->st.bytes_in += len;
	if (s->state == SESSION_ESTABLISHED) {
		hold(s, &res, now);
		sodium_memzero(&res, sizeof res);
		return 0;
	}
	return adopt(s, &res, now);
}

/* --- public: life cycle ------------------------------------------------------ */

static int client_config_check(const struct session_client_config *cfg)
{
	struct handshake_client hs;
	int rc;

	if (!cfg->server_pub || !cfg->user || !cfg->rng || !cfg->output)
		return KS_ERR_INVAL;
	if (cfg->silent_ms && cfg->silent_ms < SESSION_SILENT_MS_MIN)
		return KS_ERR_INVAL;
	if (cfg->hs_timeout_ms && cfg->hs_timeout_ms < SESSION_HS_TIMEOUT_MIN_MS)
		return KS_ERR_INVAL;
	if (cfg->dead_path_ms && (cfg->dead_path_ms < SESSION_DEAD_PATH_MS_MIN ||
	                          cfg->dead_path_ms > SESSION_DEAD_PATH_MS_MAX))
		return KS_ERR_INVAL;
	rc = handshake_client_init(&hs, cfg->server_pub, cfg->user, &cfg->proposal);
	handshake_client_wipe(&hs);
	return rc;
}

static int mux_config_set(struct mux_config *dst, const struct mux_config *src)
{
	int rc;

	if (!src) {
		mux_config_default(dst);
		return 0;
	}
	rc = mux_config_check(src);
	if (rc == 0)
		*dst = *src;
	return rc;
}

/* Fill a new client from its checked configuration. */
static void client_fill(struct session *s, const struct session_client_config *cfg, uint64_t now)
{
	struct keys_public kp;

	s->role = SESSION_CLIENT;
	s->rng = cfg->rng;
	s->output = cfg->output;
	s->output_user = cfg->output_user;
	s->slot = cfg->slot;
	memcpy(s->spub, cfg->server_pub, KEYS_LEN);
	keys_derive_public(&kp, s->spub);
	memcpy(s->hdr, kp.hdr, KEYS_LEN);
	s->user = *cfg->user;
	s->proposal = cfg->proposal;
	s->silent_ms = cfg->silent_ms ? cfg->silent_ms : SESSION_SILENT_MS_DEFAULT;
	s->hs_timeout_ms = cfg->hs_timeout_ms ? cfg->hs_timeout_ms : SESSION_HS_TIMEOUT_MS;
	s->dead_path_ms = cfg->dead_path_ms ? cfg->dead_path_ms : SESSION_DEAD_PATH_MS_DEFAULT;
	s->datagram = cfg->datagram;
	s->datagram_user = cfg->datagram_user;
	s->local = cfg->local;
	s->has_instance = cfg->instance != NULL;
	if (cfg->instance)
		memcpy(s->instance, cfg->instance, HANDSHAKE_INSTANCE_LEN);
	s->now = now;
	start_attempt(s, now);
	finish(s, now);
}

int session_client_new(struct session **out, const struct session_client_config *cfg, uint64_t now)
{
	struct session *s;
	int rc = client_config_check(cfg);

	if (rc != 0)
		return rc;
	s = calloc(1, sizeof *s);
	if (!s || !(s->scratch = malloc(sizeof *s->scratch))) {
		free(s);
		return KS_ERR_NOMEM;
	}
	rc = mux_config_set(&s->mux_cfg, cfg->mux);
	if (rc != 0) {
		free(s->scratch);
		free(s);
		return rc;
	}
	client_fill(s, cfg, now);
	*out = s;
	return 0;
}

int session_server_new(struct session **out, const struct session_server_config *cfg, uint64_t now)
{
	const struct sessions_slot *slot;
	struct session *s;
	int rc;

	if (!cfg->table || !cfg->rng || !cfg->scratch || !cfg->output)
		return KS_ERR_INVAL;
	slot = sessions_get(cfg->table, cfg->sid);
	if (!slot)
		return KS_ERR_CLOSED;
	s = calloc(1, sizeof *s);
	if (!s)
		return KS_ERR_NOMEM;
	rc = mux_config_set(&s->mux_cfg, cfg->mux);
	s->role = SESSION_SERVER;
	s->local = cfg->local;
	s->rng = cfg->rng;
	s->scratch = cfg->scratch;
	s->output = cfg->output;
	s->output_user = cfg->output_user;
	s->slot = cfg->slot;
	s->table = cfg->table;
	s->changed = cfg->changed;
	s->changed_ctx = cfg->changed_ctx;
	s->datagram = cfg->datagram;
	s->datagram_user = cfg->datagram_user;
	s->now = now;
	if (rc == 0)
		rc = establish(s, cfg->sid, slot->conv, &slot->params, now);
	if (rc != 0) {
		free(s);
		return rc;
	}
	finish(s, now);
	*out = s;
	return 0;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	mux_free(s->mux);
	kcp_free(s->kcp);
	if (s->role == SESSION_CLIENT) {
		envelope_wipe(&s->env); /* frees an AES session's keys */
		sodium_memzero(s->scratch, sizeof *s->scratch);
		free(s->scratch);
	}
	sodium_memzero(s, sizeof *s);
	free(s);
}

void session_end(struct session *s, enum session_lost_reason reason)
{
	if (s->role != SESSION_SERVER)
		return;
	lose(s, reason);
	finish(s, s->now);
}

/* --- public: entry points ---------------------------------------------------- */

/* secure 6.2: echo a PATH_CHALLENGE's token at once, in an envelope of
 * its own (it must come from the address the challenge reached). */
static void path_response(struct session *s, const uint8_t *token)
{
	uint8_t frame[SESSIONS_PATH_LEN];
	ssize_t n;

	sessions_path_write(frame, s->conv, SESSIONS_PATH_RESPONSE, token);
	n = envelope_seal(&s->env, s->rng, frame, sizeof frame, s->scratch->seal,
	                  sizeof s->scratch->seal);
	if (n < 0)
		s->st.output_drops++;
	else
		emit(s, s->scratch->seal, (size_t)n, NULL);
}

/* The client's dispatch (docs/PROTOCOL.md, secure layer 6.4): session id 0 is a handshake
 * response, our own id goes to the envelope, anything else is dropped. */
static int client_datagram(struct session *s, const uint8_t *d, size_t len, uint64_t now)
{
	uint8_t token[SESSIONS_TOKEN_LEN];
	struct envelope_rx rx;
	uint64_t sid;
	ssize_t n;

	if (envelope_peek_sid(s->hdr, d, len, &sid) != 0) {
		s->st.dropped++;
		return KS_ERR_PROTO;
	}
	if (sid == 0 && (s->state != SESSION_ESTABLISHED || s->probe == PROBE_HANDSHAKE))
		return on_response(s, d, len, now);
	if (s->state != SESSION_ESTABLISHED || sid != s->sid) {
		s->st.dropped++;
		return KS_ERR_AUTH;
	}
	n = envelope_open(&s->env, d, len, now, s->scratch->open, sizeof s->scratch->open, &rx);
	if (n < 0) {
		s->st.dropped++;
		return (int)n;
	}
	/* L3: the old session lives after all; a held or late response is
	 * dropped (the server expires that session). */
	if (s->probe != PROBE_NONE) {
		s->probe = PROBE_NONE;
		sodium_memzero(&s->pending, sizeof s->pending);
	}
	/* secure 6.2: the server asks whether we receive at this address. */
	if (sessions_path_read(s->scratch->open, (size_t)n, s->conv, token) ==
	    SESSIONS_PATH_CHALLENGE) {
		path_response(s, token);
		return 0;
	}
	/* An authenticated datagram that KCP finds malformed is counted by
	 * KCP; the peer is alive all the same. */
	(void)input(s, s->scratch->open, (size_t)n, now);
	return 0;
}

int session_on_datagram(struct session *s, const uint8_t *d, size_t len, uint64_t now,
                        uint64_t now_unix_ms)
{
	int rc;

	(void)now_unix_ms;
	if (s->role != SESSION_CLIENT)
		return KS_ERR_STATE;
	s->now = now;
	rc = client_datagram(s, d, len, now);
	finish(s, now);
	return rc;
}

int session_on_payload(struct session *s, const uint8_t *p, size_t len, uint64_t now)
{
	int rc = 0;

	s->now = now;
	if (s->state == SESSION_ESTABLISHED)
		rc = input(s, p, len, now);
	finish(s, now);
	return rc;
}

/* L3: a silent server. A new handshake goes out while the old session
 * stays: if the old session speaks first, the probe is dropped; if the
 * response comes first and the old session stays silent past switch_at,
 * the new session replaces it. An unanswered probe is re-armed, so a dark
 * path costs inits at the handshake's pace and ends by the idle window. */
static void probe(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	struct handshake_result res;

	uint64_t lc = last_call_at(s);

	if (s->probe == PROBE_NONE && (now >= silent_at(s) || now >= lc)) {
		s->probe = PROBE_HANDSHAKE;
		arm_handshake(s, now);
	}
	if (s->probe == PROBE_CONFIRM && now >= s->switch_at) {
		res = s->pending;
		teardown(s, SESSION_LOST_SILENT);
		(void)adopt(s, &res, now);
		return;
	}
	if (s->probe != PROBE_HANDSHAKE)
		return;
	if (now >= after(s->hs_start, s->hs_timeout_ms)) {
		s->st.hs_failed++;
		arm_handshake(s, now);
	}
	if (now >= s->hs_next || now >= lc)
		send_init(s, now, now_unix_ms);
}

/* L7: a PING for open streams that heard nothing for stall_gap. Its
 * datagram also moves the session's address on the server when a NAT
 * gave us a new source port while we only received. The gap starts at
 * SESSION_STALL_MIN_MS and doubles, up to the keepalive interval, while
 * no more than the last probe's PONG arrived in between, so a quiet but
 * healthy stream costs few probes. */
static void stall_probe(struct session *s, uint64_t now)
{
	uint32_t cap = s->params.keepalive_ms, pong = MUX_HDR_LEN + 8;

	if (s->state != SESSION_ESTABLISHED || now < stall_at(s))
		return;
	if (s->last_stall == 0 || s->rx_stream - s->stall_rx > pong)
		s->stall_gap = SESSION_STALL_MIN_MS;
	else
		s->stall_gap = s->stall_gap * 2 < cap ? s->stall_gap * 2 : cap;
	if (s->stall_gap < SESSION_STALL_MIN_MS)
		s->stall_gap = SESSION_STALL_MIN_MS;
	s->stall_rx = s->rx_stream;
	s->last_stall = now;
	if (mux_ping(s->mux) == 0)
		s->st.stall_probes++;
}

/* L1-L3, L6-L7 for an established session. */
static void established_timer(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	if (now >= after(s->last_rx, s->params.idle_timeout_ms)) {
		lose(s, SESSION_LOST_IDLE);
		return;
	}
	kcp_update(s->kcp, now);
	if (kcp_is_dead(s->kcp)) {
		lose(s, SESSION_LOST_DEAD);
		return;
	}
	if (s->role == SESSION_CLIENT && now >= dead_at(s)) {
		lose(s, SESSION_LOST_NO_ANSWER);
		return;
	}
	if (s->role == SESSION_CLIENT) {
		probe(s, now, now_unix_ms);
		stall_probe(s, now);
	}
	if (s->state != SESSION_ESTABLISHED)
		return;
	/* L2: nothing sent for a keepalive interval: PING. While one is still
	 * unanswered KCP retransmits it; last_ka keeps this from spinning. */
	if (s->role == SESSION_CLIENT && now >= keepalive_at(s)) {
		s->last_ka = now;
		if (mux_ping(s->mux) == 0)
			s->st.keepalives++;
	}
	pump(s, now);
	check_rekey(s, now);
}

void session_on_timer(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	s->now = now;
	switch (s->state) {
	case SESSION_ESTABLISHED: established_timer(s, now, now_unix_ms); break;
	case SESSION_BACKOFF:
		if (now >= s->retry_at)
			start_attempt(s, now);
		break;
	case SESSION_HANDSHAKING:
	case SESSION_CLOSED: break;
	}
	/* A client that just lost its session handshakes again at once. */
	if (s->state == SESSION_HANDSHAKING) {
		if (now >= after(s->hs_start, s->hs_timeout_ms))
			attempt_failed(s, now);
		else if (now >= s->hs_next)
			send_init(s, now, now_unix_ms);
	}
	finish(s, now);
}

int session_send_datagram(struct session *s, uint32_t id, const uint8_t *p, size_t n, uint64_t now)
{
	uint8_t frame[ENVELOPE_MAX_DATAGRAM];
	ssize_t len;
	uint64_t drops;

	if (s->state != SESSION_ESTABLISHED)
		return KS_ERR_STATE;
	if (!(s->params.features & TPARAMS_FEAT_DATAGRAM))
		return KS_ERR_UNSUPPORTED;
	if (n > udpassoc_max_frame(s->params.mtu))
		return KS_ERR_TOOBIG;
	len = udpassoc_frame_write(frame, sizeof frame, s->conv, id, p, n);
	if (len < 0)
		return (int)len;
	s->now = now;
	drops = s->st.output_drops;
	/* U2: sealed like any datagram (kcp_out is only the seal-and-emit
	 * path; KCP never sees the frame). */
	(void)kcp_out(frame, (size_t)len, s);
	if (s->st.output_drops != drops)
		return KS_ERR_AGAIN;
	s->st.udp_out++;
	finish(s, now);
	if (s->role == SESSION_SERVER && s->changed)
		s->changed(s, s->changed_ctx);
	return 0;
}

uint64_t session_next_deadline(const struct session *s) { return s->deadline; }

void session_on_unreachable(struct session *s, uint64_t now)
{
	if (s->role != SESSION_CLIENT)
		return;
	s->now = now;
	/* At most one hinted probe per silent_ms: forged ICMP must not buy a
	 * handshake per packet. */
	if (s->state == SESSION_ESTABLISHED && s->probe == PROBE_NONE &&
	    (!s->hinted || now >= after(s->hint_at, s->silent_ms))) {
		s->hinted = true;
		s->hint_at = now;
		s->probe = PROBE_HANDSHAKE;
		arm_handshake(s, now);
	}
	finish(s, now);
}

void session_on_demand(struct session *s, uint64_t now)
{
	if (s->role != SESSION_CLIENT)
		return;
	s->now = now;
	if (s->state == SESSION_BACKOFF)
		start_attempt(s, now);
	else if (s->state == SESSION_HANDSHAKING &&
	         now >= after(s->last_init_at, SESSION_HS_RTO_MS))
		s->hs_next = now; /* the next init now, not at its backed-off time */
	finish(s, now);
}

/* C5: the server's address changed (a lookup answered, or a failover
 * re-pointed the socket): an init of the attempt in flight went to the
 * old address, so a fresh attempt starts and its first init goes out now
 * instead of at the next retransmission. The caller bounds how often
 * (once per lookup). No-op when established. */
void session_handshake_now(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	if (s->role != SESSION_CLIENT)
		return;
	s->now = now;
	if (s->state == SESSION_HANDSHAKING || s->state == SESSION_BACKOFF) {
		start_attempt(s, now);
		send_init(s, now, now_unix_ms);
	}
	finish(s, now);
}

/* L8: one close datagram, sealed like any KCP output (kcp_out), then the
 * session ends. It is sent once: a lost close costs the peer its idle or
 * dead-path window, as before L8. */
void session_close(struct session *s, uint64_t now)
{
	uint8_t seg[KCP_HEADER_LEN];

	s->now = now;
	if (s->state == SESSION_ESTABLISHED) {
		flush(s, now);
		close_segment(s, seg);
		if (kcp_out(seg, sizeof seg, s) == 0)
			s->st.closes_sent++;
		lose(s, SESSION_LOST_CLOSED);
		if (s->role == SESSION_CLIENT) {
			s->state = SESSION_BACKOFF;
			s->retry_at = KS_NEVER;
		}
	}
	finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

void session_pump(struct session *s, uint64_t now)
{
	s->now = now;
	pump(s, now);
	check_rekey(s, now);
	finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

void session_flush(struct session *s, uint64_t now)
{
	s->now = now;
	flush(s, now);
	finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

struct mux *session_mux(struct session *s)
{
	return s->state == SESSION_ESTABLISHED ? s->mux : NULL;
}

struct envelope *session_envelope(struct session *s)
{
	return s->role == SESSION_CLIENT && s->state == SESSION_ESTABLISHED ? &s->env : NULL;
}

int session_next_event(struct session *s, struct session_event *ev)
{
	struct mux_event me;

	memset(ev, 0, sizeof *ev);
	if (s->ev_lost) {
		s->ev_lost = false;
		ev->type = SESSION_EV_LOST;
		ev->reason = s->lost_reason;
		return 0;
	}
	if (s->ev_failed) {
		s->ev_failed = false;
		ev->type = SESSION_EV_HANDSHAKE_FAILED;
		return 0;
	}
	if (s->ev_established) {
		s->ev_established = false;
		ev->type = SESSION_EV_ESTABLISHED;
		return 0;
	}
	while (s->mux && mux_next_event(s->mux, &me) == 0) {
		if (me.type == MUX_EV_PONG) {
			s->st.rtt_ms = me.rtt_ms;
			continue;
		}
		ev->type = SESSION_EV_STREAM;
		ev->stream = me;
		return 0;
	}
	return KS_ERR_AGAIN;
}

/* --- public: accessors --------------------------------------------------------- */

static const struct {
	const char *label, *text;
} lost_reasons[SESSION_LOST_REASONS] = {
	[SESSION_LOST_IDLE] = { "idle", "idle" },
	[SESSION_LOST_SILENT] = { "silent", "server silent" },
	[SESSION_LOST_DEAD] = { "dead_link", "dead link" },
	[SESSION_LOST_PROTO] = { "protocol_error", "protocol error" },
	[SESSION_LOST_NOMEM] = { "out_of_memory", "out of memory" },
	[SESSION_LOST_REKEY] = { "rekey", "rekey" },
	[SESSION_LOST_SUPERSEDED] = { "superseded", "superseded" },
	[SESSION_LOST_CLOSED] = { "closed", "closed" },
	[SESSION_LOST_NO_ANSWER] = { "no_answer", "no answer from the server" },
	[SESSION_LOST_PEER_CLOSED] = { "peer_closed", NULL }, /* by role */
};

const char *session_lost_label(enum session_lost_reason r)
{
	return (unsigned)r < SESSION_LOST_REASONS ? lost_reasons[r].label : "unknown";
}

const char *session_lost_text(enum session_lost_reason r, enum session_role role)
{
	if (r == SESSION_LOST_PEER_CLOSED)
		return role == SESSION_CLIENT ? "closed by the server" : "closed by the client";
	return (unsigned)r < SESSION_LOST_REASONS ? lost_reasons[r].text : "unknown";
}

enum session_role session_role(const struct session *s) { return s->role; }
enum session_state session_state(const struct session *s) { return s->state; }
uint64_t session_sid(const struct session *s) { return s->sid; }
enum session_lost_reason session_last_lost(const struct session *s) { return s->lost_reason; }

const struct transport_params *session_params(const struct session *s)
{
	return s->state == SESSION_ESTABLISHED ? &s->params : NULL;
}

size_t session_mem_bytes(const struct session *s)
{
	size_t n = sizeof *s;

	if (s->role == SESSION_CLIENT)
		n += sizeof *s->scratch;
	if (s->kcp)
		n += kcp_mem_bytes(s->kcp);
	if (s->mux)
		n += mux_mem_bytes(s->mux);
	return n;
}

void session_stats(const struct session *s, struct session_stats *st)
{
	*st = s->st;
	memset(&st->kcp, 0, sizeof st->kcp);
	if (s->kcp)
		kcp_stats(s->kcp, &st->kcp);
	st->streams = s->mux ? mux_stream_count(s->mux) : 0;
	st->mem_bytes = session_mem_bytes(s);
	st->rekeys = 0;
	if (s->state == SESSION_ESTABLISHED) {
		const struct sessions_slot *sl =
		        s->role == SESSION_SERVER ? sessions_get(s->table, s->sid) : NULL;
		const struct envelope *env = s->role == SESSION_CLIENT ? &s->env
		                             : sl                      ? &sl->env
		                                                       : NULL;

		if (env)
			st->rekeys = env->rekeys_started + env->rekeys_followed;
	}
}

bool session_check(const struct session *s)
{
	bool up = s->state == SESSION_ESTABLISHED;

	if (up != (s->kcp != NULL) || up != (s->mux != NULL) || up != (s->sid != 0))
		return false;
	if (s->probe != PROBE_NONE && (!up || s->role != SESSION_CLIENT))
		return false;
	if (s->role == SESSION_SERVER &&
	    (s->state == SESSION_HANDSHAKING || s->state == SESSION_BACKOFF))
		return false;
	if (s->role == SESSION_CLIENT && s->state == SESSION_CLOSED)
		return false;
	if (up && !kcp_check(s->kcp))
		return false;
	return s->deadline == deadline_of(s, s->now);
}
