/* session.c - one peer's stack: envelope -> KCP -> mux, the same for both
 * roles. A role's own behaviour comes in through its struct session_ops
 * (session_int.h): the client's (handshake, backoff, restart probing,
 * keepalive, liveness) is in dial.c, a server session's is only how it
 * ends (server_ops below).
 *
 * Steps (C1.. for the client's handshake, E1.. for an established session,
 * L1.. for liveness) refer to docs/PROTOCOL.md (session). Every public entry
 * point records `now`, does its work, and ends in finish(), which
 * recomputes the one deadline; nothing else schedules anything.
 */
#include "core/session.h"
#include "core/session_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/minmax.h"
#include "base/rd.h"
#include "base/wr.h"
#include "core/envelope.h"
#include "core/feed.h"
#include "core/transport.h"
#include "core/udpassoc.h"

/* L8: a close is one KCP-shaped control segment with this command, alone
 * in its datagram. Reference KCP and our kcp.c before L8 drop a segment
 * with an unknown command (KCP_DROP_CMD) and the datagram with it, so an
 * old peer ignores a close. */
enum { SESSION_CLOSE_CMD = 85 };

#define after session_after

/* --- output ---------------------------------------------------------------- */

void session_emit(struct session *s, const uint8_t *d, size_t len)
{
	if (s->output(d, len, s->peer, s->output_user) < 0) {
		s->st.output_drops++;
		return;
	}
	s->st.dgram_out++;
	s->st.bytes_out += len;
	s->last_tx = s->now;
}

/* E4: every datagram of the session is sealed here, by its own envelope,
 * straight into the caller's send slot when it lends one. */
int session_seal_out(struct session *s, const uint8_t *payload, size_t len)
{
	uint8_t *out = s->scratch->seal;
	size_t cap = sizeof s->scratch->seal;
	ssize_t n;

	if (s->slot) {
		size_t slot_cap = 0;
		uint8_t *slot = s->slot(&slot_cap, s->output_user);

		if (slot && slot_cap >= ENVELOPE_MAX_DATAGRAM) {
			out = slot;
			cap = slot_cap;
		}
	}
	n = envelope_seal(&s->env, s->rng, payload, len, out, cap);
	if (n < 0) {
		s->st.output_drops++;
		return (int)n;
	}
	session_emit(s, out, (size_t)n);
	return 0;
}

static int kcp_out(const uint8_t *dgram, size_t len, void *user)
{
	return session_seal_out(user, dgram, len);
}

/* --- establishing ---------------------------------------------------------- */

/* E1-E2: build KCP and mux; nothing changes on failure. */
int session_establish(struct session *s, uint64_t sid, uint32_t conv,
                      const struct transport_params *p, uint64_t now)
{
	struct kcp_config kc;
	struct kcp *k = NULL;
	struct mux *m = NULL;
	int rc;

	/* E1: agreed parameters plus this end's own policy (transport.h). */
	transport_kcp(&kc, p, &s->local, s->ops->server_side);
	rc = kcp_new(&k, conv, &kc, now, kcp_out, s);
	if (rc == 0)
		rc = mux_new(&m, s->ops->mux_role, &s->mux_cfg);
	if (rc != 0) {
		kcp_free(k);
		return rc;
	}
	s->kcp = k;
	s->mux = m;
	if (kc.early)
		mux_stream_delivery(m); /* mux step 10, agreed (transport_kcp) */
	feed_init(&s->feed, now);
	s->mss = kc.mtu - KCP_HEADER_LEN;
	s->sid = sid;
	s->conv = conv;
	s->params = *p;
	s->last_rx = s->last_tx = now;
	s->state = SESSION_ESTABLISHED;
	s->ev_established = true;
	if (s->ops->established)
		s->ops->established(s, now);
	return 0;
}

/* L5: the session ended. KCP, mux and streams go at once, and the daemon
 * hears of it before anything else. */
void session_teardown(struct session *s, enum session_lost_reason reason)
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
	envelope_wipe(&s->env);
}

/* L5: torn down; the role says what follows (a client handshakes again,
 * a server session waits to be collected). */
void session_lose(struct session *s, enum session_lost_reason reason)
{
	if (s->state != SESSION_ESTABLISHED)
		return;
	session_teardown(s, reason);
	s->ops->lost(s, reason);
}

/* --- the deadline ---------------------------------------------------------- */

/* E6: a batch that was never flushed is due now, never at KCP's interval:
 * a daemon that follows the deadline sends the ACKs before it sleeps. The
 * role adds its own timers (dial.c). */
static uint64_t deadline_of(const struct session *s, uint64_t now)
{
	uint64_t d = KS_NEVER;

	if (s->state == SESSION_ESTABLISHED)
		d = s->flush_owed ? now
		                  : min_u64(kcp_next_deadline(s->kcp, now),
		                            after(s->last_rx, s->params.idle_timeout_ms));
	return s->ops->deadline ? s->ops->deadline(s, now, d) : d;
}

void session_finish(struct session *s, uint64_t now)
{
	if (s->state == SESSION_ESTABLISHED && s->ops->track)
		s->ops->track(s, now);
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

/* KCP runs in message mode exactly when per-stream delivery was agreed
 * (transport_kcp). */
static bool message_mode(const struct session *s)
{
	return s->params.features & TPARAMS_FEAT_STREAM_DELIVERY;
}

/* E5: a mux error (n < 0) or nothing to write (0); the session is lost on
 * an error. */
static ssize_t produced_none(struct session *s, ssize_t n)
{
	if (n < 0)
		session_lose(s, n == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_PROTO);
	return n;
}

/* E5: KCP refused what it said it had room for; the session is lost. */
static ssize_t refused(struct session *s, ssize_t w)
{
	session_lose(s, w == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_DEAD);
	return w < 0 ? w : KS_ERR_DEAD;
}

/* E5, message mode (mux step 10): the mux writes one message straight into
 * KCP's next segment, no copy in between. Returns the bytes queued, 0 when
 * the mux had nothing (the reservation is dropped), < 0 when the session
 * was lost. */
static ssize_t produce_in_place(struct session *s, size_t room, uint64_t now)
{
	uint8_t *seg;
	ssize_t cap = kcp_send_reserve(s->kcp, &seg), n, w;

	if (cap < 0)
		return refused(s, cap);
	n = mux_produce(s->mux, seg, min_size(room, (size_t)cap), now);
	if (n <= 0)
		return produced_none(s, n);
	w = kcp_send_commit(s->kcp, (size_t)n, now);
	return w == n ? n : refused(s, w);
}

/* E5, stream mode: the mux writes into the scratch buffer, KCP copies it
 * into its segments. Returns as produce_in_place. */
static ssize_t produce_copied(struct session *s, size_t room, uint64_t now)
{
	uint8_t *buf = s->scratch->pump;
	ssize_t n = mux_produce(s->mux, buf, min_size(room, SESSION_PUMP_CHUNK), now), w;

	if (n <= 0)
		return produced_none(s, n);
	/* room >= n, and the engine takes all it has room for. */
	w = kcp_send(s->kcp, buf, (size_t)n, now);
	return w == n ? n : refused(s, w);
}

/* E5: mux output into KCP, never more than KCP takes now (so nothing piles
 * up below the mux) nor more than the feed allows. The flush is left to
 * the caller (E6). */
static void fill(struct session *s, uint64_t now)
{
	bool queued = false;

	while (s->state == SESSION_ESTABLISHED && mux_want_produce(s->mux)) {
		size_t room = min_size(kcp_send_room(s->kcp), feed_room(s, now));
		ssize_t n;

		if (s->params.features & TPARAMS_FEAT_STREAM_DELIVERY)
			room = min_size(room, s->mss); /* mux step 10: one segment */
		if (room == 0)
			break;
		n = message_mode(s) ? produce_in_place(s, room, now) : produce_copied(s, room, now);
		if (n <= 0)
			break;
		feed_sent(&s->feed, (uint64_t)n);
		queued = true;
	}
	if (queued && s->state == SESSION_ESTABLISHED)
		s->flush_owed = true;
}

/* E5-E6: fill, then flush what is owed. */
void session_do_pump(struct session *s, uint64_t now)
{
	fill(s, now);
	flush(s, now);
}

/* E3: stream bytes KCP delivered, in order, into the mux; then (mux step
 * 8) the messages that arrived above a hole, each applied at once if the
 * mux can, else left to come in order. */
static void drain(struct session *s, uint64_t now)
{
	uint8_t *buf = s->scratch->pump;
	const uint8_t *early;
	size_t len;
	uint32_t sn;
	ssize_t n = 0;
	int rc;

	while (s->state == SESSION_ESTABLISHED &&
	       (n = kcp_recv(s->kcp, buf, SESSION_PUMP_CHUNK)) >= 0) {
		rc = n ? mux_input(s->mux, buf, (size_t)n, now) : 0;
		s->rx_stream += (uint64_t)n;
		if (rc != 0)
			session_lose(s,
			             rc == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_PROTO);
	}
	if (n == KS_ERR_TOOBIG) /* message mode: more than a message may be */
		session_lose(s, SESSION_LOST_PROTO);
	while (s->state == SESSION_ESTABLISHED && kcp_early_peek(s->kcp, &sn, &early, &len) == 0) {
		rc = mux_input_early(s->mux, early, len, now);
		kcp_early_done(s->kcp, rc == 1);
		if (rc == 1)
			s->rx_stream += len;
		if (rc < 0)
			session_lose(s,
			             rc == KS_ERR_NOMEM ? SESSION_LOST_NOMEM : SESSION_LOST_PROTO);
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

static void rekey(struct session *s, uint64_t now)
{
	if (s->ops->rekey)
		s->ops->rekey(s, now);
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
int session_input(struct session *s, const uint8_t *p, size_t len, uint64_t now)
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
		session_lose(s, SESSION_LOST_PEER_CLOSED);
		return 0;
	}
	rc = kcp_input(s->kcp, p, len, now);
	if (rc == KS_ERR_NOMEM) {
		session_lose(s, SESSION_LOST_NOMEM);
		return rc;
	}
	/* E6: ACKs wait for the end of the batch (KCP holds them). */
	if (rc == 0)
		s->flush_owed = true;
	drain(s, now);
	fill(s, now);
	if (s->state == SESSION_ESTABLISHED && kcp_is_dead(s->kcp))
		session_lose(s, SESSION_LOST_DEAD);
	rekey(s, now);
	return rc == KS_ERR_PROTO ? rc : 0;
}

/* --- public: life cycle ------------------------------------------------------ */

int session_mux_config_set(struct mux_config *dst, const struct mux_config *src)
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

/* --- the server role ------------------------------------------------------------ */

/* A server session that ended waits, closed, for its server to collect it. */
static void server_lost(struct session *s, enum session_lost_reason reason)
{
	(void)reason;
	s->state = SESSION_CLOSED;
}

static bool server_ok(const struct session *s)
{
	return s->state == SESSION_ESTABLISHED || s->state == SESSION_CLOSED;
}

static const struct session_ops server_ops = {
	.role = SESSION_SERVER,
	.mux_role = MUX_SERVER,
	.server_side = true,
	.lost = server_lost,
	.check = server_ok,
};

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
	rc = session_mux_config_set(&s->mux_cfg, cfg->mux);
	s->ops = &server_ops;
	s->local = cfg->local;
	s->rng = cfg->rng;
	s->scratch = cfg->scratch;
	s->output = cfg->output;
	s->output_user = cfg->output_user;
	s->slot = cfg->slot;
	s->peer = &slot->peer;
	s->changed = cfg->changed;
	s->changed_ctx = cfg->changed_ctx;
	s->datagram = cfg->datagram;
	s->datagram_user = cfg->datagram_user;
	s->now = now;
	if (rc == 0)
		rc = session_establish(s, cfg->sid, slot->conv, &slot->params, now);
	/* The session takes its keys from the table, which borrows them back
	 * to open its datagrams (sessions_attach). */
	if (rc == 0 && (rc = sessions_attach(cfg->table, cfg->sid, &s->env, cfg->owner)) != 0) {
		mux_free(s->mux);
		kcp_free(s->kcp);
	}
	if (rc != 0) {
		free(s);
		return rc;
	}
	session_finish(s, now);
	*out = s;
	return 0;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	mux_free(s->mux);
	kcp_free(s->kcp);
	envelope_wipe(&s->env); /* either role owns it: frees an AES session's keys */
	if (s->ops->release)
		s->ops->release(s);
	sodium_memzero(s, sizeof *s);
	free(s);
}

void session_end(struct session *s, enum session_lost_reason reason)
{
	session_lose(s, reason);
	session_finish(s, s->now);
}

/* --- public: entry points ---------------------------------------------------- */

int session_on_payload(struct session *s, const uint8_t *p, size_t len, uint64_t now)
{
	int rc = 0;

	s->now = now;
	if (s->state == SESSION_ESTABLISHED)
		rc = session_input(s, p, len, now);
	session_finish(s, now);
	return rc;
}

void session_on_peer_moved(struct session *s, uint64_t now)
{
	s->now = now;
	if (s->state == SESSION_ESTABLISHED)
		kcp_path_changed(s->kcp, now);
	session_finish(s, now);
}

void session_seed_rtt(struct session *s, uint64_t rtt, bool bound)
{
	if (s->state == SESSION_ESTABLISHED)
		kcp_seed_rtt(s->kcp, rtt, bound);
}

/* L1, L5 for an established session; the role's own timers run between
 * KCP's update and the pump (dial.c: keepalive, probes, dead path). */
static void established_timer(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	if (now >= after(s->last_rx, s->params.idle_timeout_ms)) {
		session_lose(s, SESSION_LOST_IDLE);
		return;
	}
	kcp_update(s->kcp, now);
	if (kcp_is_dead(s->kcp)) {
		session_lose(s, SESSION_LOST_DEAD);
		return;
	}
	if (s->ops->liveness)
		s->ops->liveness(s, now, now_unix_ms);
	if (s->state != SESSION_ESTABLISHED)
		return;
	session_do_pump(s, now);
	rekey(s, now);
}

void session_on_timer(struct session *s, uint64_t now, uint64_t now_unix_ms)
{
	s->now = now;
	if (s->state == SESSION_ESTABLISHED)
		established_timer(s, now, now_unix_ms);
	if (s->ops->timer)
		s->ops->timer(s, now, now_unix_ms);
	session_finish(s, now);
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
	/* U2: sealed like any datagram; KCP never sees the frame. */
	(void)session_seal_out(s, frame, (size_t)len);
	if (s->st.output_drops != drops)
		return KS_ERR_AGAIN;
	s->st.udp_out++;
	session_finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
	return 0;
}

uint64_t session_next_deadline(const struct session *s) { return s->deadline; }

/* L8: one close datagram, sealed like any KCP output (session_seal_out), then the
 * session ends. It is sent once: a lost close costs the peer its idle or
 * dead-path window, as before L8. */
void session_close(struct session *s, uint64_t now)
{
	uint8_t seg[KCP_HEADER_LEN];

	s->now = now;
	if (s->state == SESSION_ESTABLISHED) {
		flush(s, now);
		close_segment(s, seg);
		if (session_seal_out(s, seg, sizeof seg) == 0)
			s->st.closes_sent++;
		session_lose(s, SESSION_LOST_CLOSED);
	}
	session_finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

void session_pump(struct session *s, uint64_t now)
{
	s->now = now;
	session_do_pump(s, now);
	rekey(s, now);
	session_finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

void session_flush(struct session *s, uint64_t now)
{
	s->now = now;
	flush(s, now);
	session_finish(s, now);
	if (s->changed)
		s->changed(s, s->changed_ctx);
}

struct mux *session_mux(struct session *s)
{
	return s->state == SESSION_ESTABLISHED ? s->mux : NULL;
}

struct envelope *session_envelope(struct session *s)
{
	return s->state == SESSION_ESTABLISHED ? &s->env : NULL;
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

enum session_role session_role(const struct session *s) { return s->ops->role; }
enum session_state session_state(const struct session *s) { return s->state; }
uint64_t session_sid(const struct session *s) { return s->sid; }
enum session_lost_reason session_last_lost(const struct session *s) { return s->lost_reason; }

const struct transport_params *session_params(const struct session *s)
{
	return s->state == SESSION_ESTABLISHED ? &s->params : NULL;
}

size_t session_mem_bytes(const struct session *s)
{
	size_t n = sizeof *s + s->own_bytes;

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
	st->rekeys = s->state == SESSION_ESTABLISHED
	                     ? s->env.rekeys_started + s->env.rekeys_followed
	                     : 0;
}

bool session_check(const struct session *s)
{
	bool up = s->state == SESSION_ESTABLISHED;

	if (up != (s->kcp != NULL) || up != (s->mux != NULL) || up != (s->sid != 0))
		return false;
	if (s->ops->check && !s->ops->check(s))
		return false;
	if (up && !kcp_check(s->kcp))
		return false;
	return s->deadline == deadline_of(s, s->now);
}
