/* test_session.c - the session state machines in small steps: the client's
 * handshake schedule (retransmission, backoff, timeout), what it does with
 * garbage, the established deadline, event order, configuration checks;
 * the server collection's deadline heap, dispatch and close. Datagrams go
 * through in-memory queues; time is virtual. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/session.c"

#include "core/server.h"
#include "core/transport.h"

#define UNIX0 1764000000000ULL

enum { QMAX = 64 };

struct queue {
	uint8_t d[QMAX][ENVELOPE_MAX_DATAGRAM];
	size_t len[QMAX];
	struct sessions_addr to[QMAX];
	size_t n, sent;                      /* queued now; handed to output ever */
	uint8_t slot[ENVELOPE_MAX_DATAGRAM]; /* lent by q_slot */
	size_t lends, in_place;              /* slot calls; outputs of the lent slot */
};

struct fix {
	struct prng gc, gs;
	struct rng_source rc, rs;
	struct keys_server key;
	struct keys_user users[3];
	struct server_config scfg;
	struct session_client_config ccfg;
	struct queue c2s, s2c;
};

static int q_out(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct queue *q = user;

	q->sent++;
	q->in_place += d == q->slot;
	if (q->n == QMAX)
		return KS_ERR_FULL;
	memcpy(q->d[q->n], d, len);
	q->len[q->n] = len;
	if (to)
		q->to[q->n] = *to;
	q->n++;
	return 0;
}

static uint8_t *q_slot(size_t *cap, void *user)
{
	struct queue *q = user;

	q->lends++;
	*cap = sizeof q->slot;
	return q->slot;
}

static struct sessions_addr addr_of(uint8_t last)
{
	struct sessions_addr a = { .len = 4, .bytes = { 127, 0, 0, last } };
	return a;
}

static struct fix *fix_new(uint64_t seed)
{
	struct fix *f = calloc(1, sizeof *f);
	struct transport_params *min, *max, *def;
	uint8_t psk[KEYS_LEN];
	static const char *names[] = { "u0", "u1", "u2" };

	assert_non_null(f);
	prng_seed(&f->gc, seed * 2 + 1);
	prng_seed(&f->gs, seed * 2 + 2);
	f->rc = prng_source(&f->gc);
	f->rs = prng_source(&f->gs);
	assert_int_equal(keys_server_generate(&f->key, &f->rs), 0);
	for (int i = 0; i < 3; i++) {
		memset(psk, 'a' + i, sizeof psk);
		assert_int_equal(keys_user_set(&f->users[i], names[i], psk), 0);
	}
	min = &f->scfg.table.min, max = &f->scfg.table.max, def = &f->scfg.table.def;
	f->scfg.table.key = &f->key;
	f->scfg.table.users = f->users;
	f->scfg.table.n_users = 3;
	f->scfg.table.capacity = 8;
	tparams_default(def);
	*min = *max = *def;
	min->keepalive_ms = TPARAMS_KEEPALIVE_MIN_MS;
	min->idle_timeout_ms = TPARAMS_IDLE_MIN_MS;
	max->keepalive_ms = TPARAMS_KEEPALIVE_MAX_MS;
	max->idle_timeout_ms = TPARAMS_IDLE_MAX_MS;
	f->scfg.rng = &f->rs;
	f->scfg.output = q_out;
	f->scfg.output_user = &f->s2c;

	f->ccfg.server_pub = f->key.pub;
	f->ccfg.user = &f->users[0];
	tparams_default(&f->ccfg.proposal);
	f->ccfg.rng = &f->rc;
	f->ccfg.output = q_out;
	f->ccfg.output_user = &f->c2s;
	return f;
}

/* Deliver everything queued, both ways, at now. */
static void exchange(struct fix *f, struct session *c, struct server *srv,
                     const struct sessions_addr *from, uint64_t now)
{
	for (int round = 0; round < 8 && (f->c2s.n || f->s2c.n); round++) {
		size_t n = f->c2s.n;

		f->c2s.n = 0;
		for (size_t i = 0; i < n; i++)
			(void)server_on_datagram(srv, from, f->c2s.d[i], f->c2s.len[i], now,
			                         UNIX0 + now);
		server_flush(srv, now); /* the batch ends (E6) */
		n = f->s2c.n;
		f->s2c.n = 0;
		for (size_t i = 0; i < n; i++)
			(void)session_on_datagram(c, f->s2c.d[i], f->s2c.len[i], now, UNIX0 + now);
		session_flush(c, now);
	}
	assert_true(session_check(c));
	assert_true(server_check(srv));
}

static int next_type(struct session *s)
{
	struct session_event ev;

	return session_next_event(s, &ev) == 0 ? (int)ev.type : -1;
}

/* --- client handshake schedule --------------------------------------------------- */

static void test_client_starts_quiet(void **state)
{
	struct fix *f = fix_new(1);
	struct session *c;

	(void)state;
	assert_int_equal(session_client_new(&c, &f->ccfg, 500), 0);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_int_equal(session_next_deadline(c), 500);
	assert_int_equal(f->c2s.sent, 0);
	assert_null(session_mux(c));
	assert_null(session_params(c));
	assert_int_equal(session_sid(c), 0);
	assert_int_equal(session_role(c), SESSION_CLIENT);
	session_on_timer(c, 500, UNIX0);
	assert_int_equal(f->c2s.sent, 1);
	assert_in_range(f->c2s.len[0], HANDSHAKE_INIT_MIN, HANDSHAKE_INIT_MAX);
	assert_int_equal(session_next_deadline(c), 500 + SESSION_HS_RTO_MS);
	/* Early calls send nothing. */
	session_on_timer(c, 900, UNIX0);
	assert_int_equal(f->c2s.sent, 1);
	assert_int_equal(next_type(c), -1);
	session_free(c);
	session_free(NULL);
	free(f);
}

/* Inits at +0, +1, +3, +7 s (doubling, capped at 4 s), the attempt fails at
 * 10 s; backoffs double from 1 s to 30 s with at most a quarter of jitter. */
static void test_client_retransmit_backoff(void **state)
{
	struct fix *f = fix_new(2);
	struct session *c;
	uint64_t sent_at[64], now = 0, attempt_start = 0, backoff = 0;
	size_t n = 0;
	int failures = 0;

	(void)state;
	assert_int_equal(session_client_new(&c, &f->ccfg, 0), 0);
	while (failures < 8) {
		uint64_t before = f->c2s.sent;

		now = session_next_deadline(c);
		session_on_timer(c, now, UNIX0 + now);
		if (f->c2s.sent > before) {
			assert_true(n < 64);
			assert_true(now < attempt_start + SESSION_HS_TIMEOUT_MS);
			sent_at[n++] = now;
		}
		if (next_type(c) == SESSION_EV_HANDSHAKE_FAILED) {
			uint64_t want = backoff ? backoff * 2 : SESSION_RETRY_MIN_MS;

			failures++;
			assert_int_equal(now, attempt_start + SESSION_HS_TIMEOUT_MS);
			assert_int_equal(session_state(c), SESSION_BACKOFF);
			backoff = want > SESSION_RETRY_MAX_MS ? SESSION_RETRY_MAX_MS : want;
			assert_in_range(session_next_deadline(c), now + backoff,
			                now + backoff + backoff / 4);
			attempt_start = session_next_deadline(c);
		}
	}
	/* The first attempt's inits. */
	assert_int_equal(sent_at[0], 0);
	assert_int_equal(sent_at[1], 1000);
	assert_int_equal(sent_at[2], 3000);
	assert_int_equal(sent_at[3], 7000);
	assert_true(sent_at[4] > 10000);
	assert_int_equal(backoff, SESSION_RETRY_MAX_MS);
	/* Each init is fresh. */
	assert_memory_not_equal(f->c2s.d[0], f->c2s.d[1], f->c2s.len[0]);
	{
		struct session_stats st;

		session_stats(c, &st);
		assert_int_equal(st.hs_inits, n);
		assert_int_equal(st.hs_failed, 8);
		assert_int_equal(st.hs_ok, 0);
	}
	session_free(c);
	free(f);
}

static void test_client_ignores_garbage(void **state)
{
	struct fix *f = fix_new(3);
	struct session *c;
	uint8_t junk[600];
	struct session_stats st;

	(void)state;
	assert_int_equal(session_client_new(&c, &f->ccfg, 0), 0);
	session_on_timer(c, 0, UNIX0);
	for (size_t len = 0; len < sizeof junk; len += 37) {
		prng_fill(&f->gs, junk, len);
		assert_true(session_on_datagram(c, junk, len, 10, UNIX0) < 0);
	}
	/* Its own init echoed back is no response either. */
	assert_true(session_on_datagram(c, f->c2s.d[0], f->c2s.len[0], 10, UNIX0) < 0);
	assert_int_equal(f->c2s.sent, 1);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_int_equal(session_next_deadline(c), SESSION_HS_RTO_MS);
	assert_int_equal(next_type(c), -1);
	session_stats(c, &st);
	assert_int_equal(st.dropped, sizeof junk / 37 + 1 + 1);
	session_free(c);
	free(f);
}

static void test_client_config_checks(void **state)
{
	struct fix *f = fix_new(4);
	struct session_client_config cfg;
	struct session *c = NULL;
	struct mux_config mc;

	(void)state;
	cfg = f->ccfg;
	cfg.output = NULL;
	assert_int_equal(session_client_new(&c, &cfg, 0), KS_ERR_INVAL);
	cfg = f->ccfg;
	cfg.proposal.mtu = 10;
	assert_int_equal(session_client_new(&c, &cfg, 0), KS_ERR_INVAL);
	cfg = f->ccfg;
	cfg.silent_ms = SESSION_SILENT_MS_MIN - 1;
	assert_int_equal(session_client_new(&c, &cfg, 0), KS_ERR_INVAL);
	cfg = f->ccfg;
	cfg.hs_timeout_ms = 10;
	assert_int_equal(session_client_new(&c, &cfg, 0), KS_ERR_INVAL);
	cfg = f->ccfg;
	mux_config_default(&mc);
	mc.window = 1;
	cfg.mux = &mc;
	assert_int_equal(session_client_new(&c, &cfg, 0), KS_ERR_INVAL);
	assert_null(c);
	free(f);
}

/* --- established ---------------------------------------------------------------- */

static void connect_pair(struct fix *f, struct session **c, struct server **srv, uint64_t now)
{
	assert_int_equal(server_new(srv, &f->scfg), 0);
	assert_int_equal(session_client_new(c, &f->ccfg, now), 0);
	session_on_timer(*c, now, UNIX0 + now);
	exchange(f, *c, *srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } }, now);
	assert_int_equal(session_state(*c), SESSION_ESTABLISHED);
}

static void test_established_deadline(void **state)
{
	struct fix *f = fix_new(5);
	struct session *c;
	struct server *srv;
	struct server_event sev;
	const struct transport_params *p;

	(void)state;
	connect_pair(f, &c, &srv, 1000);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	assert_int_equal(next_type(c), -1);
	assert_non_null(session_mux(c));
	p = session_params(c);
	assert_non_null(p);
	assert_int_equal(p->keepalive_ms, f->ccfg.proposal.keepalive_ms);
	assert_int_not_equal(session_sid(c), 0);
	/* The server made the matching session. */
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_ESTABLISHED);
	assert_int_equal(sev.sid, session_sid(c));
	assert_ptr_equal(sev.session, server_session(srv, sev.sid));
	assert_int_equal(session_role(sev.session), SESSION_SERVER);
	assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	/* Idle: nothing before the keepalive at the client, nothing before the
	 * idle window at the server. */
	assert_int_equal(session_next_deadline(c), 1000 + p->keepalive_ms);
	assert_int_equal(server_next_deadline(srv), 1000 + p->idle_timeout_ms);
	/* The keepalive PING: KCP's retransmission timer now, until the
	 * server's answer clears it. */
	session_on_timer(c, 1000 + p->keepalive_ms, UNIX0);
	assert_int_equal(f->c2s.n, 1);
	assert_true(session_next_deadline(c) < 1000 + 2 * p->keepalive_ms);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } },
	         1000 + p->keepalive_ms + 20);
	assert_int_equal(session_next_deadline(c), 1000 + 2 * p->keepalive_ms + 20);
	assert_int_equal(server_next_deadline(srv),
	                 1000 + p->keepalive_ms + 20 + p->idle_timeout_ms);
	assert_true(session_mem_bytes(c) > sizeof(struct session));
	assert_true(server_mem_bytes(srv) > 0);
	server_free(srv);
	session_free(c);
	free(f);
}

/* A lent slot: every KCP datagram is sealed straight into it, both
 * roles, and it still opens at the other end; the handshake's datagrams
 * go through the scratch. */
static void test_seal_into_slot(void **state)
{
	struct fix *f = fix_new(6);
	struct session *c;
	struct server *srv;
	const struct transport_params *p;

	(void)state;
	f->ccfg.slot = q_slot;
	f->scfg.slot = q_slot;
	connect_pair(f, &c, &srv, 1000);
	assert_int_equal(f->c2s.in_place, 0); /* the init */
	p = session_params(c);
	session_on_timer(c, 1000 + p->keepalive_ms, UNIX0); /* a PING: KCP */
	assert_int_equal(f->c2s.in_place, 1);
	assert_true(f->c2s.lends >= 1);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } },
	         1000 + p->keepalive_ms + 20);
	assert_true(f->s2c.in_place >= 1); /* the PONG and ACK, sealed in place */
	/* The answer opened: nothing is left in flight at the client. */
	assert_int_equal(session_next_deadline(c), 1000 + 2 * p->keepalive_ms + 20);
	server_free(srv);
	session_free(c);
	free(f);
}

/* Deliver what the client queued to the server as one batch, without
 * ending it. */
static void deliver_c2s(struct fix *f, struct server *srv, uint64_t now)
{
	struct sessions_addr from = addr_of(9);
	size_t n = f->c2s.n;

	f->c2s.n = 0;
	for (size_t i = 0; i < n; i++)
		(void)server_on_datagram(srv, &from, f->c2s.d[i], f->c2s.len[i], now, UNIX0 + now);
}

/* The server session of the one stream the client opened, with that
 * stream's OPEN taken from its events. */
static struct session *take_open(struct server *srv, uint32_t *id)
{
	struct server_event sev;
	struct session *ss = NULL;

	while (server_next_event(srv, &sev) == 0)
		if (sev.ev.type == SESSION_EV_STREAM && sev.ev.stream.type == MUX_EV_OPEN) {
			ss = server_session(srv, sev.sid);
			*id = sev.ev.stream.id;
		}
	assert_non_null(ss);
	return ss;
}

/* E6: ACK batching. A data datagram is not acknowledged by itself: its ACK
 * waits in KCP (deadline now) and leaves in the same datagram as the data
 * the application writes in answer. Without an answer, the batch's end
 * sends the ACK alone, still before the loop would sleep. */
static void test_ack_rides_with_data(void **state)
{
	static const uint8_t req[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
	static const uint8_t rep[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	struct fix *f = fix_new(11);
	struct session *c, *ss;
	struct server *srv;
	struct session_stats before, after;
	uint32_t cid, sid = 0;
	size_t sent;

	(void)state;
	connect_pair(f, &c, &srv, 1000);
	while (next_type(c) != -1)
		;
	/* The client opens a stream: one datagram with the OPEN frame. */
	assert_int_equal(mux_open_stream(session_mux(c), req, sizeof req, &cid), 0);
	session_pump(c, 1010);
	assert_int_equal(f->c2s.n, 1);
	/* The server takes it: nothing leaves yet, the ACK is due now. */
	sent = f->s2c.sent;
	deliver_c2s(f, srv, 1030);
	assert_int_equal(f->s2c.sent, sent);
	assert_int_equal(server_next_deadline(srv), 1030);
	assert_true(server_check(srv)); /* the session is on the flush list */
	/* The application answers: reply and data, then one pump. */
	ss = take_open(srv, &sid);
	assert_int_equal(mux_stream_reply(session_mux(ss), sid, rep, sizeof rep), 0);
	assert_int_equal(mux_stream_write(session_mux(ss), sid, "hello", 5), 5);
	session_pump(ss, 1030);
	assert_int_equal(f->s2c.sent, sent + 1);
	assert_true(server_next_deadline(srv) > 1030);
	server_flush(srv, 1030);
	assert_int_equal(f->s2c.sent, sent + 1);
	/* That one datagram carries both: the client's OPEN is acknowledged
	 * (nothing left in flight) and the reply's bytes arrive. */
	session_stats(c, &before);
	assert_int_equal(f->s2c.n, 1);
	f->s2c.n = 0;
	assert_int_equal(session_on_datagram(c, f->s2c.d[0], f->s2c.len[0], 1050, UNIX0), 0);
	session_stats(c, &after);
	assert_int_equal(after.kcp.ack_recv, before.kcp.ack_recv + 1);
	assert_int_equal(after.kcp.seg_recv, before.kcp.seg_recv + 1);
	assert_int_equal(kcp_waitsnd(c->kcp), 0);
	assert_int_equal(next_type(c), SESSION_EV_STREAM);
	/* No answer this time: the client's batch ends with the ACK alone. */
	sent = f->c2s.sent;
	assert_int_equal(session_next_deadline(c), 1050);
	session_flush(c, 1050);
	assert_int_equal(f->c2s.sent, sent + 1);
	assert_true(session_next_deadline(c) > 1050);
	/* A daemon that only follows the deadline gets the ACK from the timer,
	 * at once, not after KCP's interval. */
	f->c2s.n = 0;
	assert_int_equal(mux_stream_write(session_mux(c), cid, "x", 1), 1);
	session_pump(c, 1060);
	assert_int_equal(f->c2s.n, 1);
	sent = f->s2c.sent;
	deliver_c2s(f, srv, 1070);
	assert_int_equal(f->s2c.sent, sent);
	assert_int_equal(server_next_deadline(srv), 1070);
	server_on_timer(srv, 1070);
	assert_int_equal(f->s2c.sent, sent + 1);
	assert_true(server_next_deadline(srv) > 1070);
	server_free(srv);
	session_free(c);
	free(f);
}

/* L4 with the rekey feature (secure layer 8.1): epochs started in turn by
 * the client and by the server while a stream is open; the bytes written
 * both ways across every switch arrive intact, in one session. */
static void test_rekey_streams(void **state)
{
	static const uint8_t req[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
	static const uint8_t rep[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	struct fix *f = fix_new(21);
	struct session *c, *ss;
	struct server *srv;
	struct envelope *se;
	struct session_event ev;
	struct session_stats st;
	uint8_t buf[256];
	uint32_t cid, sid = 0, up = 0, down = 0, got_up = 0, got_down = 0;
	uint64_t now = 1000;
	ssize_t n;

	(void)state;
	connect_pair(f, &c, &srv, now);
	while (next_type(c) != -1)
		;
	assert_int_equal(mux_open_stream(session_mux(c), req, sizeof req, &cid), 0);
	session_pump(c, now);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } }, now);
	ss = take_open(srv, &sid);
	assert_int_equal(mux_stream_reply(session_mux(ss), sid, rep, sizeof rep), 0);
	/* Either end owns its envelope. */
	se = session_envelope(server_session(srv, session_sid(c)));
	assert_true(c->env.rekey && se->rekey);
	for (int round = 0; round < 8; round++) {
		struct envelope *starter = round % 2 ? se : &c->env;

		now += ENVELOPE_REKEY_GRACE_MS + 100;
		session_on_timer(c, now, UNIX0 + now);
		server_on_timer(srv, now);
		envelope_tick(se, now);
		assert_int_equal(envelope_rekey(starter, now), 0);
		for (int k = 0; k < 4; k++) {
			uint8_t a[40], b[40];

			for (size_t i = 0; i < sizeof a; i++) {
				a[i] = (uint8_t)(up + i);
				b[i] = (uint8_t)(down + i * 3);
			}
			assert_int_equal(mux_stream_write(session_mux(c), cid, a, sizeof a), 40);
			assert_int_equal(mux_stream_write(session_mux(ss), sid, b, sizeof b), 40);
			up += 40;
			down += 40;
			session_pump(c, now);
			session_pump(ss, now);
			server_flush(srv, now);
			exchange(f, c, srv,
			         &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } },
			         now);
			now += 10;
		}
		while ((n = mux_stream_read(session_mux(ss), sid, buf, sizeof buf)) > 0)
			for (ssize_t i = 0; i < n; i++, got_up++)
				assert_int_equal(buf[i], (uint8_t)(got_up / 40 * 40 + got_up % 40));
		while ((n = mux_stream_read(session_mux(c), cid, buf, sizeof buf)) > 0)
			for (ssize_t i = 0; i < n; i++, got_down++)
				assert_int_equal(buf[i], (uint8_t)(got_down / 40 * 40 +
				                                   (got_down % 40) * 3));
		assert_int_equal(c->env.epoch, (uint32_t)round + 1);
		assert_int_equal(se->epoch, (uint32_t)round + 1);
		assert_true(c->env.confirmed && se->confirmed);
	}
	assert_int_equal(got_up, up);
	assert_int_equal(got_down, down);
	assert_int_equal(c->env.rekeys_started, 4);
	assert_int_equal(se->rekeys_started, 4);
	/* What the metrics export: epochs either side started, on both ends. */
	session_stats(c, &st);
	assert_int_equal(st.rekeys, 8);
	session_stats(ss, &st);
	assert_int_equal(st.rekeys, 8);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	while (session_next_event(c, &ev) == 0)
		assert_true(ev.type != SESSION_EV_LOST);
	server_free(srv);
	session_free(c);
	free(f);
}

/* A response that arrives after its attempt timed out is still taken. */
static void test_late_response(void **state)
{
	struct fix *f = fix_new(6);
	struct session *c;
	struct server *srv;
	struct sessions_addr a = addr_of(7);

	(void)state;
	assert_int_equal(server_new(&srv, &f->scfg), 0);
	assert_int_equal(session_client_new(&c, &f->ccfg, 0), 0);
	for (uint64_t now = 0; session_state(c) != SESSION_BACKOFF;) {
		session_on_timer(c, now, UNIX0 + now);
		now = session_next_deadline(c);
	}
	/* Only the last init gets through, after the attempt timed out. */
	assert_int_equal(f->c2s.n, 4);
	memcpy(f->c2s.d[0], f->c2s.d[3], f->c2s.len[3]);
	f->c2s.len[0] = f->c2s.len[3];
	f->c2s.n = 1;
	exchange(f, c, srv, &a, 10500);
	assert_int_equal(next_type(c), SESSION_EV_HANDSHAKE_FAILED);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	server_free(srv);
	session_free(c);
	free(f);
}

/* A LOST clears an undelivered ESTABLISHED; the client handshakes again. */
static void test_lost_order(void **state)
{
	struct fix *f = fix_new(7);
	struct session *c;
	struct server *srv;
	struct session_event ev;
	uint64_t idle;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	idle = session_params(c)->idle_timeout_ms;
	/* Nothing comes back: the path is gone. Restart detection probes with
	 * handshakes (no answer), and the dead-path window (L6) after the
	 * keepalive PING ends the session, long before the idle window. */
	for (uint64_t now = 0; session_state(c) == SESSION_ESTABLISHED;) {
		now = session_next_deadline(c);
		assert_true(now <= session_params(c)->keepalive_ms + SESSION_DEAD_PATH_MS_DEFAULT);
		assert_true(now < idle);
		session_on_timer(c, now, UNIX0 + now);
	}
	assert_int_equal(session_next_event(c, &ev), 0);
	assert_int_equal(ev.type, SESSION_EV_LOST);
	assert_int_equal(ev.reason, SESSION_LOST_NO_ANSWER);
	assert_int_equal(next_type(c), -1);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_null(session_mux(c));
	server_free(srv);
	session_free(c);
	free(f);
}

/* Run the client's timers with nothing delivered (datagrams other than
 * handshake inits are dropped) until it has sent n inits in all. */
static uint64_t run_silent(struct fix *f, struct session *c, uint64_t now, uint64_t n)
{
	struct session_stats st;

	for (int i = 0; i < 1000; i++) {
		size_t keep = 0;

		session_stats(c, &st);
		if (st.hs_inits >= n)
			return now;
		now = session_next_deadline(c);
		session_on_timer(c, now, UNIX0 + now);
		for (size_t k = 0; k < f->c2s.n; k++) {
			uint64_t sid;

			if (envelope_peek_sid(c->dial->hdr, f->c2s.d[k], f->c2s.len[k], &sid) ==
			            0 &&
			    sid == 0) {
				memmove(f->c2s.d[keep], f->c2s.d[k], f->c2s.len[k]);
				f->c2s.len[keep++] = f->c2s.len[k];
			}
		}
		f->c2s.n = keep;
	}
	fail();
	return now;
}

/* L3 with a restarted server: the probe is answered, the old session stays
 * silent through the hold, and the new session replaces it. */
static void test_probe_switch(void **state)
{
	struct fix *f = fix_new(12);
	struct session *c;
	struct server *old, *fresh;
	struct sessions_addr a = addr_of(3);
	uint64_t now, sid;
	struct session_event ev;

	(void)state;
	connect_pair(f, &c, &old, 0);
	sid = session_sid(c);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	assert_int_equal(server_new(&fresh, &f->scfg), 0);
	now = run_silent(f, c, 0, 2);
	/* keepalive + silent_ms (3 s) */
	assert_int_equal(now, f->ccfg.proposal.keepalive_ms + SESSION_SILENT_MS_DEFAULT);
	assert_int_equal(c->dial->probe, PROBE_HANDSHAKE);
	assert_int_equal(f->c2s.n, 1);
	exchange(f, c, fresh, &a, now + 20);
	assert_int_equal(c->dial->probe, PROBE_CONFIRM);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	assert_int_equal(session_sid(c), sid);
	assert_true(c->dial->switch_at > now + 20);
	assert_int_equal(session_next_deadline(c) <= c->dial->switch_at, true);
	while (session_sid(c) == sid) {
		now = session_next_deadline(c);
		assert_true(now <= c->dial->switch_at);
		session_on_timer(c, now, UNIX0 + now);
		f->c2s.n = 0;
	}
	assert_int_equal(session_next_event(c, &ev), 0);
	assert_int_equal(ev.type, SESSION_EV_LOST);
	assert_int_equal(ev.reason, SESSION_LOST_SILENT);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	assert_non_null(server_session(fresh, session_sid(c)));
	server_free(old);
	server_free(fresh);
	session_free(c);
	free(f);
}

/* L3 after an outage: the probe is answered, but the old session's next
 * retransmission is answered during the hold: the old session stays. */
static void test_probe_old_alive(void **state)
{
	struct fix *f = fix_new(13);
	struct session *c;
	struct server *srv;
	struct sessions_addr a = { .len = 4, .bytes = { 127, 0, 0, 9 } };
	uint64_t now, sid;
	struct session_stats st;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	sid = session_sid(c);
	now = run_silent(f, c, 0, 2);
	exchange(f, c, srv, &a, now + 20); /* only the init: answered */
	assert_int_equal(c->dial->probe, PROBE_CONFIRM);
	/* The old session's retransmission now gets through. */
	while (c->dial->probe == PROBE_CONFIRM) {
		now = session_next_deadline(c);
		assert_true(now < c->dial->switch_at);
		session_on_timer(c, now, UNIX0 + now);
		exchange(f, c, srv, &a, now + 20);
	}
	assert_int_equal(c->dial->probe, PROBE_NONE);
	assert_int_equal(session_sid(c), sid);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED); /* the first one */
	assert_int_equal(next_type(c), -1);
	session_stats(c, &st);
	assert_int_equal(st.hs_ok, 1);
	assert_int_equal(st.lost[SESSION_LOST_SILENT], 0);
	/* The server holds the orphan of the probe until its idle window. */
	assert_int_equal(sessions_live(server_table(srv)), 2);
	server_free(srv);
	session_free(c);
	free(f);
}

/* --- server ----------------------------------------------------------------------- */

static void test_server_garbage(void **state)
{
	struct fix *f = fix_new(8);
	struct server *srv;
	struct server_event sev;
	struct server_stats st;
	uint8_t junk[1500];
	struct sessions_addr a = addr_of(1);

	(void)state;
	assert_int_equal(server_new(&srv, &f->scfg), 0);
	assert_int_equal(server_next_deadline(srv), KS_NEVER);
	for (size_t len = 0; len <= sizeof junk; len += 29) {
		prng_fill(&f->gc, junk, len);
		assert_true(server_on_datagram(srv, &a, junk, len, 5, UNIX0) < 0);
	}
	assert_int_equal(f->s2c.sent, 0);
	assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	server_stats(srv, &st);
	assert_int_equal(st.dropped, sizeof junk / 29 + 1);
	assert_int_equal(st.live, 0);
	assert_int_equal(server_close(srv, 12345), KS_ERR_CLOSED);
	assert_null(server_session(srv, 12345));
	server_free(srv);
	server_free(NULL);
	free(f);
}

/* Three clients with different idle windows: the server's one deadline is
 * the earliest, and they expire in that order, each with its LOST. */
static void test_server_heap(void **state)
{
	struct fix *f = fix_new(9);
	struct server *srv;
	struct session *c[3];
	struct server_event sev;
	uint64_t sid[3], idle[3] = { 30000, 10000, 20000 };

	(void)state;
	assert_int_equal(server_new(&srv, &f->scfg), 0);
	for (int i = 0; i < 3; i++) {
		struct sessions_addr a = addr_of((uint8_t)(20 + i));

		f->ccfg.user = &f->users[i];
		f->ccfg.proposal.idle_timeout_ms = (uint32_t)idle[i];
		assert_int_equal(session_client_new(&c[i], &f->ccfg, 0), 0);
		session_on_timer(c[i], 0, UNIX0);
		exchange(f, c[i], srv, &a, 0);
		assert_int_equal(session_state(c[i]), SESSION_ESTABLISHED);
		sid[i] = session_sid(c[i]);
	}
	while (server_next_event(srv, &sev) == 0)
		assert_int_equal(sev.ev.type, SESSION_EV_ESTABLISHED);
	assert_int_equal(server_next_deadline(srv), 10000);
	int order[3] = { 1, 2, 0 };
	for (int k = 0; k < 3; k++) {
		uint64_t t = server_next_deadline(srv);

		assert_int_equal(t, idle[order[k]]);
		server_on_timer(srv, t - 1);
		assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
		server_on_timer(srv, t);
		assert_int_equal(server_next_event(srv, &sev), 0);
		assert_int_equal(sev.ev.type, SESSION_EV_LOST);
		assert_int_equal(sev.ev.reason, SESSION_LOST_IDLE);
		assert_int_equal(sev.sid, sid[order[k]]);
		assert_null(sev.session);
		assert_null(server_session(srv, sid[order[k]]));
		assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	}
	assert_int_equal(server_next_deadline(srv), KS_NEVER);
	assert_int_equal(sessions_live(server_table(srv)), 0);
	for (int i = 0; i < 3; i++)
		session_free(c[i]);
	server_free(srv);
	free(f);
}

/* server_close: LOST(CLOSED), nothing sent; the client notices later. */
static void test_server_close(void **state)
{
	struct fix *f = fix_new(10);
	struct session *c;
	struct server *srv;
	struct server_event sev;
	struct server_stats st;
	uint64_t sid, sent;
	int owner;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	sid = session_sid(c);
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_null(sev.owner);
	/* The daemon's pointer rides on every later event, LOST included. */
	assert_null(server_owner(srv, sid));
	assert_int_equal(server_set_owner(srv, sid, &owner), 0);
	assert_int_equal(server_set_owner(srv, sid + 1, &owner), KS_ERR_CLOSED);
	assert_ptr_equal(server_owner(srv, sid), &owner);
	assert_null(server_owner(srv, sid + 1));
	sent = f->s2c.sent;
	assert_int_equal(server_close(srv, sid), 0);
	assert_null(server_owner(srv, sid)); /* closed: out of the table */
	assert_int_equal(server_close(srv, sid), KS_ERR_CLOSED);
	assert_int_equal(server_set_owner(srv, sid, NULL), KS_ERR_CLOSED);
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_LOST);
	assert_int_equal(sev.ev.reason, SESSION_LOST_CLOSED);
	assert_ptr_equal(sev.owner, &owner);
	assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	assert_int_equal(f->s2c.sent, sent);
	server_stats(srv, &st);
	assert_int_equal(st.lost[SESSION_LOST_CLOSED], 1);
	assert_int_equal(st.created, 1);
	server_free(srv);
	session_free(c);
	free(f);
}

/* The table's per-user cap: a user's ninth session supersedes its idlest;
 * the server ends that session (LOST SUPERSEDED) before the new one's
 * ESTABLISHED. */
static void test_server_table_supersede(void **state)
{
	struct fix *f = fix_new(14);
	struct server *srv;
	struct session *c[SESSIONS_PER_USER_MAX + 1];
	struct server_event sev;
	uint64_t first;

	(void)state;
	assert_int_equal(server_new(&srv, &f->scfg), 0);
	for (int i = 0; i <= SESSIONS_PER_USER_MAX; i++) {
		struct sessions_addr a = addr_of((uint8_t)(40 + i));
		uint64_t now = (uint64_t)i * 100;

		assert_int_equal(session_client_new(&c[i], &f->ccfg, now), 0);
		session_on_timer(c[i], now, UNIX0 + now);
		exchange(f, c[i], srv, &a, now);
		assert_int_equal(session_state(c[i]), SESSION_ESTABLISHED);
		if (i < SESSIONS_PER_USER_MAX) {
			assert_int_equal(server_next_event(srv, &sev), 0);
			assert_int_equal(sev.ev.type, SESSION_EV_ESTABLISHED);
		}
	}
	first = session_sid(c[0]);
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_LOST);
	assert_int_equal(sev.ev.reason, SESSION_LOST_SUPERSEDED);
	assert_int_equal(sev.sid, first);
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_ESTABLISHED);
	assert_int_equal(sev.sid, session_sid(c[SESSIONS_PER_USER_MAX]));
	assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	assert_null(server_session(srv, first));
	assert_int_equal(sessions_live(server_table(srv)), SESSIONS_PER_USER_MAX);
	assert_true(server_check(srv));
	for (int i = 0; i <= SESSIONS_PER_USER_MAX; i++)
		session_free(c[i]);
	server_free(srv);
	free(f);
}

/* Secure 6.3: a second session of one client instance replaces the
 * instance's first when it carries its first payload, not before (an L3
 * probe's answer may be dropped); another instance of the same user stays. */
static void test_server_instance_replace(void **state)
{
	static const uint8_t ida[HANDSHAKE_INSTANCE_LEN] = { 'a' },
	                     idb[HANDSHAKE_INSTANCE_LEN] = { 'b' };
	struct fix *f = fix_new(15);
	struct server *srv;
	struct session *c[3];
	struct server_event sev;
	struct sessions_addr a[3] = { addr_of(60), addr_of(61), addr_of(62) };
	const uint8_t *ids[3] = { ida, idb, ida };

	(void)state;
	assert_int_equal(server_new(&srv, &f->scfg), 0);
	for (int i = 0; i < 3; i++) {
		uint64_t now = (uint64_t)i * 100;

		f->ccfg.instance = ids[i];
		assert_int_equal(session_client_new(&c[i], &f->ccfg, now), 0);
		session_on_timer(c[i], now, UNIX0 + now);
		exchange(f, c[i], srv, &a[i], now);
		assert_int_equal(session_state(c[i]), SESSION_ESTABLISHED);
		assert_int_equal(server_next_event(srv, &sev), 0);
		assert_int_equal(sev.ev.type, SESSION_EV_ESTABLISHED);
	}
	assert_int_equal(sessions_live(server_table(srv)), 3);
	assert_int_equal(server_next_event(srv, &sev), KS_ERR_AGAIN);
	/* The new session of instance a carries a PING: a's old one goes. */
	assert_int_equal(mux_ping(session_mux(c[2])), 0);
	session_pump(c[2], 300);
	exchange(f, c[2], srv, &a[2], 300);
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_LOST);
	assert_int_equal(sev.ev.reason, SESSION_LOST_SUPERSEDED);
	assert_true(sev.sid == session_sid(c[0]));
	assert_null(server_session(srv, session_sid(c[0])));
	assert_non_null(server_session(srv, session_sid(c[1])));
	assert_int_equal(sessions_live(server_table(srv)), 2);
	assert_true(server_check(srv));
	for (int i = 0; i < 3; i++)
		session_free(c[i]);
	server_free(srv);
	free(f);
}

static void test_server_new_checks(void **state)
{
	struct fix *f = fix_new(11);
	struct server *srv = NULL;
	struct server_config cfg = f->scfg;
	struct session *s = NULL;
	struct session_server_config sc = { 0 };

	(void)state;
	cfg.output = NULL;
	assert_int_equal(server_new(&srv, &cfg), KS_ERR_INVAL);
	cfg = f->scfg;
	cfg.table.capacity = 0;
	assert_int_equal(server_new(&srv, &cfg), KS_ERR_INVAL);
	assert_null(srv);
	assert_int_equal(session_server_new(&s, &sc, 0), KS_ERR_INVAL);
	assert_null(s);
	free(f);
}

/* --- L6-L8: dead path, stall probes, hints, close ------------------------------ */

/* Run the client's timers with nothing delivered until it is no longer
 * established or now passes limit; returns the time it ended. */
static uint64_t run_dark(struct fix *f, struct session *c, uint64_t now, uint64_t limit)
{
	while (session_state(c) == SESSION_ESTABLISHED) {
		now = session_next_deadline(c);
		assert_true(now <= limit);
		session_on_timer(c, now, UNIX0 + now);
		assert_true(session_check(c));
		f->c2s.n = 0;
	}
	return now;
}

/* A download (a stream open, the client only receives) over a path that
 * goes dark: the client has nothing of its own unanswered, so a stall
 * probe (L7) goes out after SESSION_STALL_MIN_MS of silence, and the
 * session is declared down dead_path_ms after it (L6). */
static void test_dead_path_download(void **state)
{
	struct fix *f = fix_new(31);
	struct session *c;
	struct server *srv;
	struct session_event ev;
	struct session_stats st;
	uint32_t id;
	uint64_t end;

	(void)state;
	f->ccfg.dead_path_ms = 4000;
	connect_pair(f, &c, &srv, 0);
	assert_int_equal(
	        mux_open_stream(session_mux(c),
	                        (const uint8_t *)"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10,
	                        &id),
	        0);
	session_pump(c, 0);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } }, 10);
	/* Everything is acknowledged: nothing of the client's is unanswered. */
	assert_int_equal(kcp_inflight(c->kcp), 0);
	/* The probe went out 1 s into the silence (under half of dead_path_ms),
	 * so that second counts: down dead_path_ms after the last datagram. */
	end = run_dark(f, c, 10, 10 + 4000);
	assert_int_equal(end, 10 + 4000);
	session_stats(c, &st);
	/* The first probe (a PING) 1 s in, unanswered: from the next one, 2 s
	 * in, the path is silent and a probe goes every
	 * SESSION_STALL_SILENT_MS until the end (L7). */
	assert_int_equal(st.stall_probes, 1 + 2000 / SESSION_STALL_SILENT_MS);
	assert_int_equal(st.lost[SESSION_LOST_NO_ANSWER], 1);
	while (session_next_event(c, &ev) == 0 && ev.type != SESSION_EV_LOST)
		;
	assert_int_equal(ev.type, SESSION_EV_LOST);
	assert_int_equal(ev.reason, SESSION_LOST_NO_ANSWER);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	server_free(srv);
	session_free(c);
	free(f);
}

static const uint8_t req10[] = "\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50";

/* L6: a request made during an outage not yet detected (the path went
 * dark at 0, the stream opens at 2 s): the silence before it counts, so
 * the session is down dead_path_ms after the last datagram, 8 s after the
 * request, not 10 s after it. */
static void test_dead_path_request(void **state)
{
	struct fix *f = fix_new(36);
	struct session *c;
	struct server *srv;
	struct session_stats st;
	uint32_t id;
	uint64_t end;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	f->c2s.n = f->s2c.n = 0;
	session_on_timer(c, 2000, UNIX0 + 2000);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	assert_int_equal(mux_open_stream(session_mux(c), req10, 10, &id), 0);
	session_pump(c, 2000);
	assert_true(f->c2s.n > 0); /* the OPEN went out */
	f->c2s.n = 0;
	end = run_dark(f, c, 2000, 2000 + SESSION_DEAD_PATH_MS_DEFAULT);
	assert_int_equal(end, SESSION_DEAD_PATH_MS_DEFAULT);
	session_stats(c, &st);
	assert_int_equal(st.lost[SESSION_LOST_NO_ANSWER], 1);
	server_free(srv);
	session_free(c);
	free(f);
}

/* L6 stays safe: a request after a long silence still gets half of
 * dead_path_ms to be answered, and an answer 1 ms before that keeps the
 * session; unanswered, it ends exactly then. */
static void test_dead_path_request_late(void **state)
{
	struct fix *f = fix_new(37);
	struct session *c;
	struct server *srv;
	uint32_t id;
	uint64_t half = SESSION_DEAD_PATH_MS_DEFAULT / 2, t0 = 9000, now;

	(void)state;
	f->ccfg.proposal.keepalive_ms = 60000;
	f->ccfg.proposal.idle_timeout_ms = 240000;
	connect_pair(f, &c, &srv, 0);
	f->c2s.n = f->s2c.n = 0;
	assert_int_equal(mux_open_stream(session_mux(c), req10, 10, &id), 0);
	session_pump(c, t0);
	assert_true(f->c2s.n > 0);
	/* Retransmissions and probes go unanswered until t0 + half - 1. */
	for (now = t0; session_next_deadline(c) < t0 + half - 1;) {
		now = session_next_deadline(c);
		session_on_timer(c, now, UNIX0 + now);
		assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	}
	session_on_timer(c, t0 + half - 1, UNIX0 + t0 + half - 1);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } },
	         t0 + half - 1);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	assert_int_equal(kcp_inflight(c->kcp), 0);
	server_free(srv);
	session_free(c);
	free(f);

	/* The same without the answer: down at t0 + half. */
	f = fix_new(37);
	f->ccfg.proposal.keepalive_ms = 60000;
	f->ccfg.proposal.idle_timeout_ms = 240000;
	connect_pair(f, &c, &srv, 0);
	f->c2s.n = f->s2c.n = 0;
	assert_int_equal(mux_open_stream(session_mux(c), req10, 10, &id), 0);
	session_pump(c, t0);
	assert_int_equal(run_dark(f, c, t0, t0 + half), t0 + half);
	server_free(srv);
	session_free(c);
	free(f);
}

/* C5: after a lost session the first init of the new attempt went to the
 * old address; when the address changes, session_handshake_now sends a
 * fresh init at once instead of at the next retransmission (1 s later),
 * from HANDSHAKING and from BACKOFF. No-op while established. */
static void test_handshake_now(void **state)
{
	struct fix *f = fix_new(38);
	struct session *c;
	struct server *srv;
	struct session_stats st;
	uint64_t end, inits;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	f->c2s.n = f->s2c.n = 0;
	session_handshake_now(c, 5, UNIX0 + 5); /* established: nothing */
	assert_int_equal(f->c2s.n, 0);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	/* The path goes dark under a request: lost, and the new attempt's
	 * first init goes out at once (to the old address). */
	assert_int_equal(mux_open_stream(session_mux(c), req10, 10, &(uint32_t){ 0 }), 0);
	session_pump(c, 10);
	end = run_dark(f, c, 10, 10 + SESSION_DEAD_PATH_MS_DEFAULT);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_int_equal(session_next_deadline(c), end + SESSION_HS_RTO_MS);
	session_stats(c, &st);
	inits = st.hs_inits;
	/* The lookup of the next server answers 20 ms later: an init now. */
	f->c2s.n = 0;
	session_handshake_now(c, end + 20, UNIX0 + end + 20);
	assert_int_equal(f->c2s.n, 1);
	session_stats(c, &st);
	assert_int_equal(st.hs_inits, inits + 1);
	assert_int_equal(session_next_deadline(c), end + 20 + SESSION_HS_RTO_MS);
	assert_true(session_check(c));
	/* That init reaches a server: established. */
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } },
	         end + 30);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	server_free(srv);
	session_free(c);
	free(f);

	/* From BACKOFF: the attempt restarts and its init goes now. */
	f = fix_new(39);
	assert_int_equal(session_client_new(&c, &f->ccfg, 0), 0);
	for (end = 0; session_state(c) != SESSION_BACKOFF;) {
		session_on_timer(c, end, UNIX0 + end);
		end = session_next_deadline(c);
	}
	f->c2s.n = 0;
	session_handshake_now(c, end + 1, UNIX0 + end + 1);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_int_equal(f->c2s.n, 1);
	assert_int_equal(session_next_deadline(c), end + 1 + SESSION_HS_RTO_MS);
	assert_true(session_check(c));
	session_free(c);
	free(f);
}

/* A quiet but healthy stream: every stall probe is answered, the gap
 * doubles up to the keepalive interval, and the session never ends. */
static void test_stall_probe_backoff(void **state)
{
	struct fix *f = fix_new(32);
	struct session *c;
	struct server *srv;
	struct sessions_addr a = addr_of(9);
	struct session_stats st;
	uint32_t id;
	uint64_t now = 0;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	assert_int_equal(
	        mux_open_stream(session_mux(c),
	                        (const uint8_t *)"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10,
	                        &id),
	        0);
	session_pump(c, 0);
	exchange(f, c, srv, &a, 0);
	while (now < 120000) {
		now = min_u64(session_next_deadline(c), server_next_deadline(srv));
		session_on_timer(c, now, UNIX0 + now);
		server_on_timer(srv, now);
		exchange(f, c, srv, &a, now);
		assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	}
	session_stats(c, &st);
	/* 1 + 2 + 4 + 8 + 10 (keepalive cap) ..: about 15 in 120 s, not 120. */
	assert_true(st.stall_probes >= 5 && st.stall_probes <= 20);
	assert_int_equal(st.lost[SESSION_LOST_NO_ANSWER], 0);
	server_free(srv);
	session_free(c);
	free(f);
}

/* An ICMP refusal is a hint: the restart probe starts at once, but the
 * session stays up and a live server's answer keeps it. */
static void test_unreachable_hint(void **state)
{
	struct fix *f = fix_new(33);
	struct session *c;
	struct server *srv;
	struct session_stats st;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	session_stats(c, &st);
	assert_int_equal(st.hs_inits, 1);
	session_on_unreachable(c, 100);
	assert_int_equal(c->dial->probe, PROBE_HANDSHAKE);
	assert_int_equal(session_next_deadline(c), 100);
	session_on_timer(c, 100, UNIX0 + 100);
	session_stats(c, &st);
	assert_int_equal(st.hs_inits, 2);
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	assert_int_equal(next_type(c), -1);
	/* A second hint while probing changes nothing. */
	session_on_unreachable(c, 150);
	assert_int_equal(c->dial->probe, PROBE_HANDSHAKE);
	assert_true(session_check(c));
	/* The old session spoke: the probe ended. A hint within silent_ms of
	 * the last hinted probe starts none (forged ICMP buys little). */
	f->c2s.n = 0;
	c->dial->probe = PROBE_NONE; /* as if the old session had answered */
	session_on_unreachable(c, 100 + SESSION_SILENT_MS_DEFAULT - 1);
	assert_int_equal(c->dial->probe, PROBE_NONE);
	session_on_unreachable(c, 100 + SESSION_SILENT_MS_DEFAULT);
	assert_int_equal(c->dial->probe, PROBE_HANDSHAKE);
	assert_true(session_check(c));
	server_free(srv);
	session_free(c);
	free(f);
}

/* A client backing off starts its next attempt when a stream is wanted. */
static void test_on_demand(void **state)
{
	struct fix *f = fix_new(34);
	struct session *c;
	uint64_t now = 0;

	(void)state;
	assert_int_equal(session_client_new(&c, &f->ccfg, 0), 0);
	for (;;) {
		session_on_timer(c, now, UNIX0 + now);
		f->c2s.n = 0;
		if (session_state(c) == SESSION_BACKOFF)
			break;
		now = session_next_deadline(c);
	}
	assert_true(session_next_deadline(c) > now + 500);
	session_on_demand(c, now + 1);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_int_equal(session_next_deadline(c), now + 1);
	session_on_timer(c, now + 1, UNIX0 + now + 1); /* the init */
	assert_int_equal(session_next_deadline(c), now + 1 + SESSION_HS_RTO_MS);
	session_on_demand(c, now + 2); /* the last init is too recent */
	assert_int_equal(session_next_deadline(c), now + 1 + SESSION_HS_RTO_MS);
	session_on_timer(c, now + 1 + SESSION_HS_RTO_MS, UNIX0); /* the second, 2 s to the third */
	assert_int_equal(session_next_deadline(c), now + 1 + 3 * SESSION_HS_RTO_MS);
	session_on_demand(c, now + 1 + 2 * SESSION_HS_RTO_MS); /* a request: sooner */
	assert_int_equal(session_next_deadline(c), now + 1 + 2 * SESSION_HS_RTO_MS);
	assert_true(session_check(c));
	session_free(c);
	free(f);
}

/* L8: a client's close reaches the server, which drops the session at
 * once (LOST PEER_CLOSED); a replay of it is refused; the client does not
 * handshake again by itself. */
static void test_close_client(void **state)
{
	struct fix *f = fix_new(35);
	struct session *c;
	struct server *srv;
	struct server_event sev;
	struct sessions_addr a = addr_of(9);
	uint8_t copy[ENVELOPE_MAX_DATAGRAM];
	size_t copy_len;
	uint64_t sid;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	sid = session_sid(c);
	assert_int_equal(server_next_event(srv, &sev), 0);
	f->c2s.n = 0;
	session_close(c, 50);
	assert_int_equal(f->c2s.n, 1);
	memcpy(copy, f->c2s.d[0], f->c2s.len[0]);
	copy_len = f->c2s.len[0];
	assert_int_equal(next_type(c), SESSION_EV_LOST); /* it clears the ESTABLISHED */
	assert_int_equal(next_type(c), -1);
	assert_int_equal(session_state(c), SESSION_BACKOFF);
	assert_int_equal(session_next_deadline(c), KS_NEVER);
	assert_true(session_check(c));
	assert_int_equal(server_on_datagram(srv, &a, copy, copy_len, 60, UNIX0 + 60), 0);
	server_flush(srv, 60);
	assert_null(server_session(srv, sid));
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_LOST);
	assert_int_equal(sev.ev.reason, SESSION_LOST_PEER_CLOSED);
	assert_int_equal(sessions_live(server_table(srv)), 0);
	assert_int_equal(f->s2c.n, 0); /* never answered */
	/* The same datagram again: no session, nothing happens. */
	assert_int_not_equal(server_on_datagram(srv, &a, copy, copy_len, 70, UNIX0 + 70), 0);
	assert_int_equal(f->s2c.n, 0);
	/* A stream wanted later brings a new session. */
	session_on_demand(c, 100);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_true(server_check(srv));
	server_free(srv);
	session_free(c);
	free(f);
}

/* L8 the other way: the server closes its sessions (a stopping daemon);
 * the client resets everything at once and handshakes again. A replayed
 * close on the new session is dropped by the envelope. */
static void test_close_server(void **state)
{
	struct fix *f = fix_new(36);
	struct session *c, *ss;
	struct server *srv;
	struct server_event sev;
	struct session_event ev;
	uint64_t sid;

	(void)state;
	connect_pair(f, &c, &srv, 0);
	sid = session_sid(c);
	assert_int_equal(next_type(c), SESSION_EV_ESTABLISHED);
	assert_int_equal(server_next_event(srv, &sev), 0);
	ss = server_session(srv, sid);
	assert_non_null(ss);
	f->s2c.n = 0;
	session_close(ss, 40);
	assert_int_equal(f->s2c.n, 1);
	assert_null(server_session(srv, sid));
	assert_int_equal(server_next_event(srv, &sev), 0);
	assert_int_equal(sev.ev.type, SESSION_EV_LOST);
	assert_int_equal(sev.ev.reason, SESSION_LOST_CLOSED);
	assert_int_equal(session_on_datagram(c, f->s2c.d[0], f->s2c.len[0], 50, UNIX0 + 50), 0);
	assert_int_equal(session_next_event(c, &ev), 0);
	assert_int_equal(ev.type, SESSION_EV_LOST);
	assert_int_equal(ev.reason, SESSION_LOST_PEER_CLOSED);
	assert_int_equal(session_state(c), SESSION_HANDSHAKING);
	assert_true(session_check(c));
	server_free(srv);
	session_free(c);
	free(f);
}

/* Every reason has a metric label (no spaces, no capitals) and words for
 * a log line; the peer's close reads from each side; out of range is
 * "unknown", never NULL. */
static void test_lost_reason_names(void **state)
{
	(void)state;
	for (int r = 0; r < SESSION_LOST_REASONS; r++) {
		const char *l = session_lost_label((enum session_lost_reason)r);

		assert_non_null(l);
		assert_true(l[0] != '\0');
		for (const char *c = l; *c; c++)
			assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
		assert_non_null(session_lost_text((enum session_lost_reason)r, SESSION_CLIENT));
		assert_non_null(session_lost_text((enum session_lost_reason)r, SESSION_SERVER));
	}
	assert_string_equal(session_lost_text(SESSION_LOST_PEER_CLOSED, SESSION_CLIENT),
	                    "closed by the server");
	assert_string_equal(session_lost_text(SESSION_LOST_PEER_CLOSED, SESSION_SERVER),
	                    "closed by the client");
	assert_string_equal(session_lost_label(SESSION_LOST_REASONS), "unknown");
}

/* An old peer (kcp.c knows no close command) drops a close as a malformed
 * KCP datagram: counted, nothing else changes. */
static void test_close_old_peer(void **state)
{
	struct fix *f = fix_new(37);
	struct session *c;
	struct server *srv;
	struct kcp_stats ks;
	uint8_t seg[KCP_HEADER_LEN];

	(void)state;
	connect_pair(f, &c, &srv, 0);
	close_segment(c, seg);
	assert_int_equal(kcp_input(c->kcp, seg, sizeof seg, 10), KS_ERR_PROTO);
	kcp_stats(c->kcp, &ks);
	assert_int_equal(ks.dropped[KCP_DROP_CMD], 1);
	assert_true(kcp_check(c->kcp));
	assert_int_equal(session_state(c), SESSION_ESTABLISHED);
	server_free(srv);
	session_free(c);
	free(f);
}

/* UDP U2/U3: datagram frames go both ways beside KCP, one envelope each,
 * with nothing retransmitted; without the feature or a callback they are
 * dropped and counted; too big is refused before sealing. */
struct dg_seen {
	uint64_t sid;
	uint32_t id;
	uint8_t body[ENVELOPE_MAX_DATAGRAM];
	size_t len, n;
};

static void dg_up(uint64_t sid, uint32_t id, const uint8_t *p, size_t len, void *user)
{
	struct dg_seen *d = user;

	d->sid = sid;
	d->id = id;
	memcpy(d->body, p, len);
	d->len = len;
	d->n++;
}

static void test_datagram_frames(void **state)
{
	struct fix *f = fix_new(41);
	struct dg_seen up = { 0 }, down = { 0 };
	static const uint8_t msg[] = "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35hello";
	uint8_t big[ENVELOPE_MAX_DATAGRAM];
	struct session *c, *ss;
	struct server *srv;
	struct session_stats st;
	uint64_t sid;
	size_t sent;

	(void)state;
	f->scfg.datagram = dg_up;
	f->scfg.datagram_user = &up;
	f->ccfg.datagram = dg_up;
	f->ccfg.datagram_user = &down;
	connect_pair(f, &c, &srv, 1000);
	assert_true(session_params(c)->features & TPARAMS_FEAT_DATAGRAM);
	sid = session_sid(c);
	ss = server_session(srv, sid);
	assert_non_null(ss);
	sent = f->c2s.sent;
	assert_int_equal(session_send_datagram(c, 7, msg, sizeof msg - 1, 1010), 0);
	assert_int_equal(f->c2s.sent, sent + 1); /* at once, one envelope */
	deliver_c2s(f, srv, 1011);
	assert_int_equal(up.n, 1);
	assert_int_equal(up.sid, sid);
	assert_int_equal(up.id, 7);
	assert_int_equal(up.len, sizeof msg - 1);
	assert_memory_equal(up.body, msg, sizeof msg - 1);
	assert_int_equal(session_send_datagram(ss, 7, msg, 4, 1012), 0);
	assert_int_equal(f->s2c.n, 1);
	assert_int_equal(session_on_datagram(c, f->s2c.d[0], f->s2c.len[0], 1013, UNIX0), 0);
	f->s2c.n = 0;
	assert_int_equal(down.n, 1);
	assert_int_equal(down.id, 7);
	assert_int_equal(down.len, 4);
	/* A frame lost on the way is gone: nothing is sent again. */
	assert_int_equal(session_send_datagram(c, 7, msg, sizeof msg - 1, 1020), 0);
	f->c2s.n = 0;
	session_on_timer(c, 5000, UNIX0 + 5000);
	exchange(f, c, srv, &(struct sessions_addr){ .len = 4, .bytes = { 127, 0, 0, 9 } }, 5000);
	assert_int_equal(up.n, 1);
	/* Too big for one envelope of this mtu. */
	memset(big, 0, sizeof big);
	assert_int_equal(session_send_datagram(
	                         c, 7, big, udpassoc_max_frame(session_params(c)->mtu) + 1, 5001),
	                 KS_ERR_TOOBIG);
	assert_int_equal(
	        session_send_datagram(c, 7, big, udpassoc_max_frame(session_params(c)->mtu), 5001),
	        0);
	deliver_c2s(f, srv, 5002);
	assert_int_equal(up.n, 2);
	session_stats(c, &st);
	assert_int_equal(st.udp_out, 3);
	assert_int_equal(st.udp_in, 1);
	assert_true(session_check(c));
	server_free(srv);
	session_free(c);
	free(f);
}

/* Without the feature bit agreed (an older peer), nothing is sent and a
 * frame that arrives anyway is dropped, counted. */
static void test_datagram_not_agreed(void **state)
{
	struct fix *f = fix_new(42);
	struct dg_seen up = { 0 };
	static const uint8_t msg[] = "\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35";
	struct session *c;
	struct server *srv;
	struct session_stats st;

	(void)state;
	f->scfg.datagram = dg_up;
	f->scfg.datagram_user = &up;
	connect_pair(f, &c, &srv, 1000);
	/* The client lost the bit (as if it came from an older server). */
	c->params.features &= ~(uint32_t)TPARAMS_FEAT_DATAGRAM;
	assert_int_equal(session_send_datagram(c, 1, msg, sizeof msg - 1, 1001),
	                 KS_ERR_UNSUPPORTED);
	session_stats(c, &st);
	assert_int_equal(st.udp_out, 0);
	/* No callback on the client: a frame from the server is dropped. */
	assert_int_equal(session_send_datagram(server_session(srv, session_sid(c)), 1, msg,
	                                       sizeof msg - 1, 1002),
	                 0);
	assert_int_equal(session_on_datagram(c, f->s2c.d[0], f->s2c.len[0], 1003, UNIX0), 0);
	session_stats(c, &st);
	assert_int_equal(st.udp_in, 0);
	assert_int_equal(st.udp_dropped, 1);
	server_free(srv);
	session_free(c);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_starts_quiet),
		cmocka_unit_test(test_client_retransmit_backoff),
		cmocka_unit_test(test_client_ignores_garbage),
		cmocka_unit_test(test_client_config_checks),
		cmocka_unit_test(test_established_deadline),
		cmocka_unit_test(test_seal_into_slot),
		cmocka_unit_test(test_ack_rides_with_data),
		cmocka_unit_test(test_rekey_streams),
		cmocka_unit_test(test_late_response),
		cmocka_unit_test(test_lost_order),
		cmocka_unit_test(test_probe_switch),
		cmocka_unit_test(test_probe_old_alive),
		cmocka_unit_test(test_server_garbage),
		cmocka_unit_test(test_server_heap),
		cmocka_unit_test(test_server_close),
		cmocka_unit_test(test_server_table_supersede),
		cmocka_unit_test(test_server_instance_replace),
		cmocka_unit_test(test_server_new_checks),
		cmocka_unit_test(test_dead_path_download),
		cmocka_unit_test(test_dead_path_request),
		cmocka_unit_test(test_dead_path_request_late),
		cmocka_unit_test(test_handshake_now),
		cmocka_unit_test(test_stall_probe_backoff),
		cmocka_unit_test(test_unreachable_hint),
		cmocka_unit_test(test_on_demand),
		cmocka_unit_test(test_close_client),
		cmocka_unit_test(test_close_server),
		cmocka_unit_test(test_close_old_peer),
		cmocka_unit_test(test_lost_reason_names),
		cmocka_unit_test(test_datagram_frames),
		cmocka_unit_test(test_datagram_not_agreed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
