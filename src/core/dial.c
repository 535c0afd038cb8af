/* dial.c - the client's own behaviour on top of the shared session stack
 * (session.c): the handshake with retransmission, timeout and backoff
 * (C1-C5), keepalive (L2), restart detection (L3), rekey by reconnect
 * (L4), dead-path detection (L6) and stall probes (L7); docs/PROTOCOL.md
 * (session). It plugs into the stack through dial_ops (session_int.h).
 */
#include "core/dial.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/minmax.h"
#include "core/handshake.h"
#include "core/session_int.h"

#define after session_after

/* --- the liveness clocks ------------------------------------------------------ */

/* L6: data goes out on a session that already heard nothing for a while
 * (a request made during an outage not yet detected): the silence before
 * it counts, up to half of dead_path_ms. The session is then declared down
 * once nothing came for dead_path_ms and the data went unanswered for at
 * least dead_path_ms / 2 (a healthy path answers an OPEN or a PING much
 * sooner), so a request fails at most dead_path_ms after it was made
 * rather than dead_path_ms after its answer was first missed. */
static uint64_t inflight_start(const struct session *s, uint64_t now)
{
	uint64_t half = s->dial->dead_path_ms / 2;

	if (s->last_rx >= now)
		return now;
	return now - s->last_rx <= half ? s->last_rx : now - half;
}

/* L3: restart detection needs to know since when something is unanswered. */
static void track_outstanding(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;

	if (kcp_waitsnd(s->kcp) == 0)
		c->outstanding_since = KS_NEVER;
	else if (c->outstanding_since == KS_NEVER)
		c->outstanding_since = now;
	/* L6 counts only what went out: data queued behind a closed peer
	 * window is not unanswered (the peer's window tells answer). */
	if (kcp_inflight(s->kcp) == 0)
		c->inflight_since = KS_NEVER;
	else if (c->inflight_since == KS_NEVER)
		c->inflight_since = inflight_start(s, now);
}

/* L2: a keepalive interval not below the idle window would let the server
 * expire a healthy session; a third of it leaves room for a lost PING. */
static uint64_t keepalive_at(const struct session *s)
{
	uint32_t ka = s->params.keepalive_ms, cap = s->params.idle_timeout_ms / 3;

	return after(max_u64(s->last_tx, s->dial->last_ka), ka < cap ? ka : cap);
}

static uint64_t silent_at(const struct session *s)
{
	const struct dial *c = s->dial;

	if (c->outstanding_since == KS_NEVER)
		return KS_NEVER;
	return after(max_u64(s->last_rx, c->outstanding_since), c->silent_ms);
}

/* L6: something unanswered (KCP data, which includes PINGs and stall
 * probes) and nothing authenticated since for dead_path_ms. A held probe
 * answer (PROBE_CONFIRM) proves the path, so it stops the clock. */
static uint64_t dead_at(const struct session *s)
{
	const struct dial *c = s->dial;

	if (c->inflight_since == KS_NEVER || c->probe == PROBE_CONFIRM)
		return KS_NEVER;
	return after(max_u64(s->last_rx, c->inflight_since), c->dead_path_ms);
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
	return s->dial->last_init_at >= lc ? KS_NEVER : lc;
}

/* L7: streams are open and nothing came for stall_gap: a PING (a download
 * sends only ACKs, which KCP does not retransmit, so without it a dead
 * path under a download would leave nothing unanswered). */
static uint64_t stall_at(const struct session *s)
{
	if (mux_stream_count(s->mux) == 0)
		return KS_NEVER;
	return after(max_u64(s->last_rx, s->dial->last_stall), s->dial->stall_gap);
}

static uint64_t handshake_deadline(const struct dial *c)
{
	return min_u64(c->hs_next, after(c->hs_start, c->hs_timeout_ms));
}

static uint64_t probe_deadline(const struct session *s)
{
	switch (s->dial->probe) {
	case PROBE_HANDSHAKE: return handshake_deadline(s->dial);
	case PROBE_CONFIRM: return s->dial->switch_at;
	case PROBE_NONE: break;
	}
	return silent_at(s);
}

static uint64_t dial_deadline(const struct session *s, uint64_t now, uint64_t d)
{
	(void)now;
	switch (s->state) {
	case SESSION_HANDSHAKING: return handshake_deadline(s->dial);
	case SESSION_BACKOFF: return s->dial->retry_at;
	case SESSION_ESTABLISHED: break;
	case SESSION_CLOSED: return KS_NEVER;
	}
	/* E6: an owed flush is due now, before any timer of ours. */
	if (s->flush_owed)
		return d;
	d = min_u64(d, min_u64(keepalive_at(s), probe_deadline(s)));
	d = min_u64(d, min_u64(dead_at(s), stall_at(s)));
	return min_u64(d, last_call_at(s));
}

/* --- the handshake ------------------------------------------------------------ */

/* C1: arm a handshake attempt; its first init is due now. */
static void arm_handshake(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;

	c->hs_start = now;
	c->hs_next = now;
	c->hs_rto = SESSION_HS_RTO_MS;
	/* The same values passed at creation, so this does not fail; if it
	 * did, no init would go out and the attempt would time out. */
	if (handshake_client_init(&c->hs, c->spub, &c->user, &c->proposal) != 0) {
		c->hs_next = KS_NEVER;
		return;
	}
	if (c->has_instance)
		handshake_client_set_instance(&c->hs, c->instance);
}

static void start_attempt(struct session *s, uint64_t now)
{
	s->state = SESSION_HANDSHAKING;
	arm_handshake(s, now);
}

/* C2: send a fresh init (a server never accepts the same one twice) and
 * double the retransmission interval. */
static void send_init(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	struct dial *c = s->dial;
	ssize_t n = handshake_client_write_init(&c->hs, s->rng, now_unix_ms, s->scratch->seal,
	                                        sizeof s->scratch->seal);

	if (n < 0)
		s->st.output_drops++;
	else {
		s->st.hs_inits++;
		c->last_init_at = now;
		session_emit(s, s->scratch->seal, (size_t)n);
	}
	c->hs_next = after(now, c->hs_rto);
	c->hs_rto = c->hs_rto * 2 > SESSION_HS_RTO_MAX_MS ? SESSION_HS_RTO_MAX_MS : c->hs_rto * 2;
}

/* C4: the attempt timed out; the next one starts after a backoff with
 * jitter, so clients of a restarted server do not come back in step. */
static void attempt_failed(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;
	uint32_t d = c->retry_delay ? c->retry_delay * 2 : SESSION_RETRY_MIN_MS, jitter;

	if (d > SESSION_RETRY_MAX_MS)
		d = SESSION_RETRY_MAX_MS;
	c->retry_delay = d;
	rng_fill(s->rng, &jitter, sizeof jitter);
	c->retry_at = now + d + jitter % (d / 4 + 1);
	s->state = SESSION_BACKOFF;
	s->st.hs_failed++;
	s->ev_failed = true;
}

/* C3: take the agreed session: envelope, KCP, mux. res is wiped. */
static int adopt(struct session *s, struct handshake_result *res, uint64_t now)
{
	struct dial *c = s->dial;
	int rc;

	envelope_init(&s->env, c->hdr, res->sid, &res->tx, &res->rx, &res->params, now);
	s->env.silent_ms = c->silent_ms;
	rc = session_establish(s, res->sid, res->conv, &res->params, now);
	sodium_memzero(res, sizeof *res);
	if (rc != 0) {
		envelope_wipe(&s->env);
		attempt_failed(s, now);
		return rc;
	}
	session_seed_rtt(s, c->hs_rtt, false); /* E1: before the first send */
	s->st.hs_ok++;
	c->retry_delay = 0;
	return 0;
}

/* L3: a response while probing. The path works, but a live old session
 * may simply not have been heard yet (its retransmissions back off in an
 * outage): hold the answer until the old session's next retransmission
 * had two handshake round trips to be answered, and ask with a PING. */
static void hold(struct session *s, const struct handshake_result *res, uint64_t now)
{
	struct dial *c = s->dial;
	uint64_t rtt = now - c->last_init_at, retx = kcp_next_deadline(s->kcp, now);

	c->pending = *res;
	c->probe = PROBE_CONFIRM;
	c->switch_at = after(retx == KS_NEVER ? now : retx, 2 * rtt + SESSION_SWITCH_GRACE_MS);
	if (mux_ping(s->mux) == 0)
		session_do_pump(s, now);
}

/* C3: a response to our init. A late one is still taken during the
 * backoff: the init it answers is the last one sent. */
static int on_response(struct session *s, const uint8_t *d, size_t len, uint64_t now)
{
	struct handshake_result res;
	int rc = handshake_client_read_response(&s->dial->hs, d, len, &res);

	if (rc != 0) {
		s->st.dropped++;
		return rc;
	}
	s->st.dgram_in++;
	s->st.bytes_in += len;
	/* E1: only the last init's response authenticates (its ephemeral),
	 * so this round trip is unambiguous even after retries (Karn). */
	s->dial->hs_rtt = now - s->dial->last_init_at;
	if (s->state == SESSION_ESTABLISHED) {
		hold(s, &res, now);
		sodium_memzero(&res, sizeof res);
		return 0;
	}
	return adopt(s, &res, now);
}

/* --- hooks into the shared stack ------------------------------------------------ */

static void dial_established(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;

	c->last_ka = now;
	c->last_stall = 0;
	c->stall_gap = SESSION_STALL_MIN_MS;
	c->outstanding_since = c->inflight_since = KS_NEVER;
}

/* L5: the client starts handshaking again at once; a close it made itself
 * (session_close) waits for session_on_demand instead. */
static void dial_lost(struct session *s, enum session_lost_reason reason)
{
	struct dial *c = s->dial;

	c->probe = PROBE_NONE;
	sodium_memzero(&c->pending, sizeof c->pending);
	if (reason == SESSION_LOST_CLOSED) {
		s->state = SESSION_BACKOFF;
		c->retry_at = KS_NEVER;
		return;
	}
	start_attempt(s, s->now);
}

/* L3: a silent server. A new handshake goes out while the old session
 * stays: if the old session speaks first, the probe is dropped; if the
 * response comes first and the old session stays silent past switch_at,
 * the new session replaces it. An unanswered probe is re-armed, so a dark
 * path costs inits at the handshake's pace and ends by the idle window. */
static void probe(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	struct dial *c = s->dial;
	struct handshake_result res;
	uint64_t lc = last_call_at(s);

	if (c->probe == PROBE_NONE && (now >= silent_at(s) || now >= lc)) {
		c->probe = PROBE_HANDSHAKE;
		arm_handshake(s, now);
	}
	if (c->probe == PROBE_CONFIRM && now >= c->switch_at) {
		res = c->pending;
		session_teardown(s, SESSION_LOST_SILENT);
		c->probe = PROBE_NONE;
		sodium_memzero(&c->pending, sizeof c->pending);
		(void)adopt(s, &res, now);
		return;
	}
	if (c->probe != PROBE_HANDSHAKE)
		return;
	if (now >= after(c->hs_start, c->hs_timeout_ms)) {
		s->st.hs_failed++;
		arm_handshake(s, now);
	}
	if (now >= c->hs_next || now >= lc)
		send_init(s, now, now_unix_ms);
}

/* L7: a PING for open streams that heard nothing for stall_gap. Its
 * datagram also moves the session's address on the server when a NAT
 * gave us a new source port while we only received. The gap starts at
 * SESSION_STALL_MIN_MS and doubles, up to the keepalive interval, while
 * no more than the last probe's PONG arrived in between, so a quiet but
 * healthy stream costs few probes. Once a probe heard no stream bytes at
 * all (not even its PONG; datagrams that carry none, such as the server's
 * resends of data we hold, whose ACKs are being lost, do not count), the
 * path is silent: a PING every SESSION_STALL_SILENT_MS, at a steady pace
 * whatever is in flight, until something arrives or L6 ends the session.
 * KCP's retransmissions back off, and on a path whose losses come in runs
 * of datagrams (a bad state that ends per datagram, not per second: the
 * bench relay's Gilbert-Elliott chain) a run of 20-40 datagrams would
 * otherwise outlast dead_path_ms; each PING draws an answer that moves
 * the run on. */
static void stall_probe(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;
	uint32_t cap = s->params.keepalive_ms, pong = MUX_HDR_LEN + 8;
	bool silent;

	if (s->state != SESSION_ESTABLISHED || now < stall_at(s))
		return;
	silent = c->last_stall != 0 && s->rx_stream == c->stall_rx;
	if (silent)
		c->stall_gap = SESSION_STALL_SILENT_MS;
	else if (c->last_stall == 0 || s->rx_stream - c->stall_rx > pong)
		c->stall_gap = SESSION_STALL_MIN_MS;
	else
		c->stall_gap = c->stall_gap * 2 < cap ? c->stall_gap * 2 : cap;
	if (!silent && c->stall_gap < SESSION_STALL_MIN_MS)
		c->stall_gap = SESSION_STALL_MIN_MS;
	c->stall_rx = s->rx_stream;
	c->last_stall = now;
	/* Something of ours in flight is retransmitted by KCP, which speaks
	 * from our current address. With nothing in flight a PING goes out
	 * even while the last one's PONG is owed (mux_ping supersedes it):
	 * that PONG may wait behind data the server sends to an address a
	 * NAT took from us, and only a datagram of ours moves it. On a
	 * silent path a datagram goes out whatever is in flight (above): a
	 * copy of the oldest segment out (the congestion window holds new
	 * data back by now), or a PING when nothing is out. */
	if (silent && kcp_nudge(s->kcp, now))
		s->st.stall_probes++;
	else if (kcp_inflight(s->kcp) == 0 && mux_ping(s->mux) == 0)
		s->st.stall_probes++;
}

/* L2-L3, L6-L7: the client's timers of an established session. */
static void dial_liveness(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	if (now >= dead_at(s)) {
		session_lose(s, SESSION_LOST_NO_ANSWER);
		return;
	}
	probe(s, now, now_unix_ms);
	stall_probe(s, now);
	if (s->state != SESSION_ESTABLISHED)
		return;
	/* L2: nothing sent for a keepalive interval: PING. While one is still
	 * unanswered KCP retransmits it; last_ka keeps this from spinning. */
	if (now >= keepalive_at(s)) {
		s->dial->last_ka = now;
		if (mux_ping(s->mux) == 0)
			s->st.keepalives++;
	}
}

/* C1-C4 in the states before a session: the backoff ends, an attempt
 * retransmits or times out. A client that just lost its session
 * handshakes again at once. */
static void dial_timer(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	struct dial *c = s->dial;

	if (s->state == SESSION_BACKOFF && now >= c->retry_at)
		start_attempt(s, now);
	if (s->state != SESSION_HANDSHAKING)
		return;
	if (now >= after(c->hs_start, c->hs_timeout_ms))
		attempt_failed(s, now);
	else if (now >= c->hs_next)
		send_init(s, now, now_unix_ms);
}

/* L4: envelope limits. With TPARAMS_FEAT_REKEY the envelope rekeys in
 * band (it learns the time here); otherwise a due rekey waits until no
 * stream would be cut. */
static void dial_rekey(struct session *s, uint64_t now)
{
	enum envelope_status es;

	if (s->state != SESSION_ESTABLISHED)
		return;
	envelope_tick(&s->env, now);
	es = envelope_status(&s->env, now, ENVELOPE_NOTHING_UNACKED);
	if (es == ENVELOPE_EXHAUSTED || (es == ENVELOPE_REKEY_DUE && mux_stream_count(s->mux) == 0))
		session_lose(s, SESSION_LOST_REKEY);
}

static bool dial_check(const struct session *s)
{
	return s->state != SESSION_CLOSED &&
	       (s->dial->probe == PROBE_NONE || s->state == SESSION_ESTABLISHED);
}

static void dial_release(struct session *s)
{
	sodium_memzero(s->dial, sizeof *s->dial);
	free(s->dial);
	s->dial = NULL;
}

static const struct session_ops dial_ops = {
	.role = SESSION_CLIENT,
	.mux_role = MUX_CLIENT,
	.server_side = false,
	.established = dial_established,
	.lost = dial_lost,
	.deadline = dial_deadline,
	.liveness = dial_liveness,
	.timer = dial_timer,
	.rekey = dial_rekey,
	.track = track_outstanding,
	.check = dial_check,
	.release = dial_release,
};

/* --- public: life cycle ---------------------------------------------------------- */

static int config_check(const struct session_client_config *cfg)
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

/* Fill a new client from its checked configuration. */
static void fill(struct session *s, const struct session_client_config *cfg, uint64_t now)
{
	struct dial *c = s->dial;
	struct keys_public kp;

	s->ops = &dial_ops;
	s->scratch = &c->scratch;
	s->own_bytes = sizeof *c;
	s->rng = cfg->rng;
	s->output = cfg->output;
	s->output_user = cfg->output_user;
	s->slot = cfg->slot;
	s->datagram = cfg->datagram;
	s->datagram_user = cfg->datagram_user;
	s->local = cfg->local;
	memcpy(c->spub, cfg->server_pub, KEYS_LEN);
	keys_derive_public(&kp, c->spub);
	memcpy(c->hdr, kp.hdr, KEYS_LEN);
	c->user = *cfg->user;
	c->proposal = cfg->proposal;
	c->silent_ms = cfg->silent_ms ? cfg->silent_ms : SESSION_SILENT_MS_DEFAULT;
	c->hs_timeout_ms = cfg->hs_timeout_ms ? cfg->hs_timeout_ms : SESSION_HS_TIMEOUT_MS;
	c->dead_path_ms = cfg->dead_path_ms ? cfg->dead_path_ms : SESSION_DEAD_PATH_MS_DEFAULT;
	c->has_instance = cfg->instance != NULL;
	if (cfg->instance)
		memcpy(c->instance, cfg->instance, HANDSHAKE_INSTANCE_LEN);
	s->now = now;
	start_attempt(s, now);
	session_finish(s, now);
}

int session_client_new(struct session **out, const struct session_client_config *cfg, uint64_t now)
{
	struct session *s;
	int rc = config_check(cfg);

	if (rc != 0)
		return rc;
	s = calloc(1, sizeof *s);
	if (!s || !(s->dial = calloc(1, sizeof *s->dial))) {
		free(s);
		return KS_ERR_NOMEM;
	}
	rc = session_mux_config_set(&s->mux_cfg, cfg->mux);
	if (rc != 0) {
		free(s->dial);
		free(s);
		return rc;
	}
	fill(s, cfg, now);
	*out = s;
	return 0;
}

/* --- public: entry points -------------------------------------------------------- */

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
		session_emit(s, s->scratch->seal, (size_t)n);
}

/* The client's dispatch (docs/PROTOCOL.md, secure layer 6.4): session id 0 is a handshake
 * response, our own id goes to the envelope, anything else is dropped. */
static int dispatch(struct session *s, const uint8_t *d, size_t len, uint64_t now)
{
	struct dial *c = s->dial;
	uint8_t token[SESSIONS_TOKEN_LEN];
	struct envelope_rx rx;
	uint64_t sid;
	ssize_t n;

	if (envelope_peek_sid(c->hdr, d, len, &sid) != 0) {
		s->st.dropped++;
		return KS_ERR_PROTO;
	}
	if (sid == 0 && (s->state != SESSION_ESTABLISHED || c->probe == PROBE_HANDSHAKE))
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
	if (c->probe != PROBE_NONE) {
		c->probe = PROBE_NONE;
		sodium_memzero(&c->pending, sizeof c->pending);
	}
	/* secure 6.2: the server asks whether we receive at this address. */
	if (sessions_path_read(s->scratch->open, (size_t)n, s->conv, token) ==
	    SESSIONS_PATH_CHALLENGE) {
		path_response(s, token);
		return 0;
	}
	/* An authenticated datagram that KCP finds malformed is counted by
	 * KCP; the peer is alive all the same. */
	(void)session_input(s, s->scratch->open, (size_t)n, now);
	return 0;
}

int session_on_datagram(struct session *s, const uint8_t *d, size_t len, uint64_t now,
                        uint64_t now_unix_ms)
{
	int rc;

	(void)now_unix_ms;
	if (!s->dial)
		return KS_ERR_STATE; /* a server session: server_on_datagram */
	s->now = now;
	rc = dispatch(s, d, len, now);
	session_finish(s, now);
	return rc;
}

void session_on_unreachable(struct session *s, uint64_t now)
{
	struct dial *c = s->dial;

	if (!c)
		return;
	s->now = now;
	/* At most one hinted probe per silent_ms: forged ICMP must not buy a
	 * handshake per packet. */
	if (s->state == SESSION_ESTABLISHED && c->probe == PROBE_NONE &&
	    (!c->hinted || now >= after(c->hint_at, c->silent_ms))) {
		c->hinted = true;
		c->hint_at = now;
		c->probe = PROBE_HANDSHAKE;
		arm_handshake(s, now);
	}
	session_finish(s, now);
}

void session_on_demand(struct session *s, uint64_t now)
{
	if (!s->dial)
		return;
	s->now = now;
	if (s->state == SESSION_BACKOFF)
		start_attempt(s, now);
	else if (s->state == SESSION_HANDSHAKING &&
	         now >= after(s->dial->last_init_at, SESSION_HS_RTO_MS))
		s->dial->hs_next = now; /* the next init now, not at its backed-off time */
	session_finish(s, now);
}

/* C5: the server's address changed (a lookup answered, or a failover
 * re-pointed the socket): an init of the attempt in flight went to the
 * old address, so a fresh attempt starts and its first init goes out now
 * instead of at the next retransmission. The caller bounds how often
 * (once per lookup). No-op when established. */
void session_handshake_now(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	if (!s->dial)
		return;
	s->now = now;
	if (s->state == SESSION_HANDSHAKING || s->state == SESSION_BACKOFF) {
		start_attempt(s, now);
		send_init(s, now, now_unix_ms);
	}
	session_finish(s, now);
}
