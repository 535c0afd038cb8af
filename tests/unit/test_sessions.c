/* test_sessions.c - the server's session table: handshake to data, the
 * roaming rule, the probe storm that must get no answer and no allocation,
 * server restart, per-user supersede, idle expiry, a full table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

/* Count the table's allocations: sessions.c is the only allocating module
 * of the secure layer, and it must allocate only in sessions_new. */
static size_t n_allocs, n_frees;
static void *counting_calloc(size_t n, size_t size)
{
	n_allocs++;
	return calloc(n, size);
}
static void counting_free(void *p)
{
	if (p)
		n_frees++;
	free(p);
}
#define calloc counting_calloc
#define free   counting_free
#include "core/sessions.c"
#include "core/transport.h"
#undef calloc
#undef free

#define NOW_UNIX 1764000000000ULL

struct server {
	struct prng g;
	struct rng_source rng;
	struct keys_server key;
	struct keys_user users[4];
	struct sessions_config cfg;
	struct sessions *t;
	struct envelope envs[64]; /* the sessions' own envelopes, by slot (sessions_attach) */
};

struct client {
	struct prng g;
	struct rng_source rng;
	struct handshake_client hc;
	struct envelope env;
	struct sessions_addr addr;
	const struct keys_user *user;
	uint8_t spub[KEYS_LEN];
};

static struct sessions_addr addr_of(uint8_t last)
{
	struct sessions_addr a = { .len = 16 };

	memcpy(a.bytes, "\x02\x00\x1f\x90\x7f\x00\x00", 7);
	a.bytes[7] = last;
	return a;
}

static void server_start(struct server *s, uint64_t seed, size_t cap)
{
	static const char *names[] = { "u0", "u1", "u2", "u3" };
	uint8_t psk[KEYS_LEN];

	memset(s, 0, sizeof *s);
	prng_seed(&s->g, seed);
	s->rng = prng_source(&s->g);
	assert_int_equal(keys_server_generate(&s->key, &s->rng), 0);
	for (int i = 0; i < 4; i++) {
		memset(psk, 'a' + i, sizeof psk);
		assert_int_equal(keys_user_set(&s->users[i], names[i], psk), 0);
	}
	s->cfg = (struct sessions_config){ &s->key, s->users, 4 };
	tparams_default(&s->cfg.def);
	s->cfg.min = s->cfg.max = s->cfg.def;
	s->cfg.capacity = cap;
	assert_int_equal(sessions_new(&s->t, &s->cfg), 0);
}

/* A restart: a new table with the same keys and users, no sessions. */
static void server_restart(struct server *s)
{
	sessions_free(s->t);
	assert_int_equal(sessions_new(&s->t, &s->cfg), 0);
}

static void client_init(struct client *c, const struct server *s, int user, uint64_t seed)
{
	struct transport_params tp;

	prng_seed(&c->g, seed);
	c->rng = prng_source(&c->g);
	tparams_default(&tp);
	assert_int_equal(handshake_client_init(&c->hc, s->key.pub, &s->users[user], &tp), 0);
	c->user = &s->users[user];
	memcpy(c->spub, s->key.pub, KEYS_LEN);
	c->addr = addr_of((uint8_t)(10 + user));
}

/* After a completed handshake, a new one starts from a fresh client. */
static void client_rearm(struct client *c)
{
	struct transport_params tp;

	struct handshake_client old = c->hc;

	tparams_default(&tp);
	if (c->hc.state == HANDSHAKE_CLIENT_DONE) {
		assert_int_equal(handshake_client_init(&c->hc, c->spub, c->user, &tp), 0);
		if (old.has_instance) /* the same process: the same instance id */
			handshake_client_set_instance(&c->hc, old.instance);
	}
}

/* One datagram into the table; a new session's owner (here: the test)
 * takes its envelope at once, as struct server does. */
static int deliver(struct server *s, const struct sessions_addr *from, const uint8_t *d, size_t n,
                   uint64_t now, struct sessions_event *ev, uint8_t *out)
{
	int rc = sessions_on_datagram(s->t, from, d, n, now, NOW_UNIX + now, &s->rng, out,
	                              ENVELOPE_MAX_DATAGRAM, ev);

	if (rc == 0 && ev->kind == SESSIONS_EV_NEW)
		assert_int_equal(
		        sessions_attach(s->t, ev->sid, &s->envs[ev->sid & SLOT_MASK], NULL), 0);
	return rc;
}

/* The owner's side of a send: its own envelope seals, to the slot's peer. */
static ssize_t table_seal(struct server *s, uint64_t sid, const uint8_t *p, size_t len,
                          uint8_t *out, size_t cap, const struct sessions_addr **to)
{
	const struct sessions_slot *sl = sessions_get(s->t, sid);

	if (!sl)
		return KS_ERR_CLOSED;
	*to = &sl->peer;
	return envelope_seal(sl->env, &s->rng, p, len, out, cap);
}

/* Run a handshake through the table; returns the new session id. */
static uint64_t client_connect(struct client *c, struct server *s, uint64_t now)
{
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	struct handshake_result res;
	ssize_t n;

	client_rearm(c);
	n = handshake_client_write_init(&c->hc, &c->rng, NOW_UNIX + now, init, sizeof init);
	assert_true(n > 0);
	assert_int_equal(deliver(s, &c->addr, init, (size_t)n, now, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NEW);
	assert_int_equal(handshake_client_read_response(&c->hc, out, ev.len, &res), 0);
	envelope_init(&c->env, c->hc.pub.hdr, res.sid, &res.tx, &res.rx, &res.params, now);
	assert_true(res.sid == ev.sid);
	assert_int_equal(res.conv, sessions_get(s->t, ev.sid)->conv);
	return res.sid;
}

static ssize_t client_seal(struct client *c, const char *msg, uint8_t *d)
{
	ssize_t n = envelope_seal(&c->env, &c->rng, (const uint8_t *)msg, strlen(msg), d,
	                          ENVELOPE_MAX_DATAGRAM);

	assert_true(n > 0);
	return n;
}

static void data_flows_both_ways(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	const struct sessions_addr *to;
	struct sessions_event ev;
	struct envelope_rx rx;
	uint64_t sid;
	ssize_t n;

	server_start(&s, 1, 16);
	client_init(&c, &s, 2, 100);
	sid = client_connect(&c, &s, 1000);
	assert_int_equal(sessions_live(s.t), 1);
	assert_int_equal(sessions_get(s.t, sid)->user, 2);
	n = client_seal(&c, "hello", d);
	assert_int_equal(deliver(&s, &c.addr, d, (size_t)n, 1001, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_DATA);
	assert_true(ev.sid == sid && !ev.moved);
	assert_int_equal(ev.len, 5);
	assert_memory_equal(out, "hello", 5);
	n = table_seal(&s, sid, (const uint8_t *)"world", 5, d, sizeof d, &to);
	assert_true(n > 0);
	assert_memory_equal(to, &c.addr, sizeof c.addr);
	assert_int_equal(envelope_open(&c.env, d, (size_t)n, 1002, out, sizeof out, &rx), 5);
	assert_memory_equal(out, "world", 5);
	assert_int_equal(sessions_close(s.t, sid), 0);
	assert_int_equal(sessions_close(s.t, sid), KS_ERR_CLOSED);
	assert_int_equal(table_seal(&s, sid, out, 1, d, sizeof d, &to), KS_ERR_CLOSED);
	sessions_free(s.t);
}

/* The table borrows the owner's envelope: nothing opens before the owner
 * took it, it is taken once, and a superseding NEW names the owner of the
 * session it replaced. */
static void owner_takes_the_envelope(void **state)
{
	(void)state;
	struct server s;
	struct client c, c2;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM], d[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	struct envelope env, other;
	struct handshake_result res;
	int mine = 1;
	ssize_t n;

	server_start(&s, 31, 1);
	s.cfg.per_user = 1;
	server_restart(&s);
	client_init(&c, &s, 1, 131);
	n = handshake_client_write_init(&c.hc, &c.rng, NOW_UNIX, init, sizeof init);
	assert_int_equal(sessions_on_datagram(s.t, &c.addr, init, (size_t)n, 0, NOW_UNIX, &s.rng,
	                                      out, sizeof out, &ev),
	                 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NEW);
	assert_int_equal(handshake_client_read_response(&c.hc, out, ev.len, &res), 0);
	envelope_init(&c.env, c.hc.pub.hdr, res.sid, &res.tx, &res.rx, &res.params, 0);
	/* Not attached yet: the session's datagrams do not open. */
	n = client_seal(&c, "early", d);
	assert_int_equal(sessions_on_datagram(s.t, &c.addr, d, (size_t)n, 1, NOW_UNIX, &s.rng, out,
	                                      sizeof out, &ev),
	                 KS_ERR_AUTH);
	assert_int_equal(sessions_attach(s.t, res.sid + 1, &env, &mine), KS_ERR_CLOSED);
	assert_int_equal(sessions_attach(s.t, res.sid, &env, &mine), 0);
	assert_int_equal(sessions_attach(s.t, res.sid, &other, &mine), KS_ERR_STATE);
	assert_ptr_equal(sessions_get(s.t, res.sid)->env, &env);
	assert_true(env.sid == res.sid);
	n = client_seal(&c, "hello", d);
	assert_int_equal(sessions_on_datagram(s.t, &c.addr, d, (size_t)n, 2, NOW_UNIX, &s.rng, out,
	                                      sizeof out, &ev),
	                 0);
	assert_int_equal(ev.kind, SESSIONS_EV_DATA);
	assert_ptr_equal(ev.owner, &mine);
	/* A second session of the user in a full table replaces this one. */
	client_init(&c2, &s, 1, 132);
	n = handshake_client_write_init(&c2.hc, &c2.rng, NOW_UNIX + 3, init, sizeof init);
	assert_int_equal(sessions_on_datagram(s.t, &c2.addr, init, (size_t)n, 3, NOW_UNIX + 3,
	                                      &s.rng, out, sizeof out, &ev),
	                 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NEW);
	assert_true(ev.superseded == res.sid);
	assert_ptr_equal(ev.owner, &mine);
	envelope_wipe(&env);
	sessions_free(s.t);
}

/* The client's side of 6.2: open a PATH_CHALLENGE (its token into token),
 * and seal a PATH_RESPONSE carrying a token into r. */
static void client_open_challenge(struct client *c, uint32_t conv, const uint8_t *d, size_t n,
                                  uint8_t token[static SESSIONS_TOKEN_LEN])
{
	uint8_t pt[ENVELOPE_MAX_DATAGRAM];
	struct envelope_rx rx;
	ssize_t m = envelope_open(&c->env, d, n, 0, pt, sizeof pt, &rx);

	assert_int_equal(m, SESSIONS_PATH_LEN);
	assert_int_equal(sessions_path_read(pt, (size_t)m, conv, token), SESSIONS_PATH_CHALLENGE);
}

static ssize_t client_respond(struct client *c, uint32_t conv, const uint8_t *token, uint8_t *r)
{
	uint8_t frame[SESSIONS_PATH_LEN];
	ssize_t m;

	sessions_path_write(frame, conv, SESSIONS_PATH_RESPONSE, token);
	m = envelope_seal(&c->env, &c->rng, frame, sizeof frame, r, ENVELOPE_MAX_DATAGRAM);
	assert_true(m > 0);
	return m;
}

/* 6.2: a new address gets a challenge, and the peer moves only when the
 * challenge's token comes back from that address. */
static void roaming_needs_path_validation(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t d0[ENVELOPE_MAX_DATAGRAM], d1[ENVELOPE_MAX_DATAGRAM], d2[ENVELOPE_MAX_DATAGRAM];
	uint8_t out[ENVELOPE_MAX_DATAGRAM], ch[ENVELOPE_MAX_DATAGRAM], r[ENVELOPE_MAX_DATAGRAM];
	uint8_t token[SESSIONS_TOKEN_LEN], wrong[SESSIONS_TOKEN_LEN];
	struct sessions_addr a, b = addr_of(200), third = addr_of(66);
	const struct sessions_addr *to;
	struct sessions_event ev;
	ssize_t n0, n1, n2, nc, nr;
	uint64_t sid;
	uint32_t conv;

	server_start(&s, 2, 16);
	client_init(&c, &s, 0, 101);
	a = c.addr;
	sid = client_connect(&c, &s, 0);
	conv = sessions_get(s.t, sid)->conv;
	n0 = client_seal(&c, "zero", d0);
	n1 = client_seal(&c, "one", d1);
	n2 = client_seal(&c, "two", d2);
	assert_int_equal(deliver(&s, &a, d0, (size_t)n0, 1, &ev, out), 0);
	assert_false(ev.challenge);
	assert_int_equal(sessions_seal_challenge(s.t, sid, &s.rng, 1, ch, sizeof ch, &to),
	                 KS_ERR_STATE);
	/* The client's NAT rebinds: its next datagram comes from b. It is
	 * delivered, but the peer stays until b proves it receives. */
	assert_int_equal(deliver(&s, &b, d2, (size_t)n2, 2, &ev, out), 0);
	assert_int_equal(ev.len, 3);
	assert_false(ev.moved);
	assert_true(ev.challenge);
	assert_memory_equal(&sessions_get(s.t, sid)->peer, &a, sizeof a);
	nc = sessions_seal_challenge(s.t, sid, &s.rng, 2, ch, sizeof ch, &to);
	assert_true(nc > 0);
	assert_memory_equal(to, &b, sizeof b);
	assert_true((uint64_t)nc <= SESSIONS_AMPLIFY * (uint64_t)n2);
	client_open_challenge(&c, conv, ch, (size_t)nc, token);
	/* Data still goes to the proven address. */
	assert_true(table_seal(&s, sid, (const uint8_t *)"x", 1, out, sizeof out, &to) > 0);
	assert_memory_equal(to, &a, sizeof a);
	/* A replay from a third address: refused, nothing moves. */
	assert_int_equal(deliver(&s, &third, d2, (size_t)n2, 3, &ev, out), KS_ERR_REPLAY);
	assert_int_equal(deliver(&s, &third, d0, (size_t)n0, 3, &ev, out), KS_ERR_REPLAY);
	assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	/* A late (older, unseen) datagram opens but does not make its source
	 * the candidate. */
	assert_int_equal(deliver(&s, &third, d1, (size_t)n1, 4, &ev, out), 0);
	assert_false(ev.moved);
	assert_false(ev.challenge);
	/* The response from another address does not validate b... */
	nr = client_respond(&c, conv, token, r);
	assert_int_equal(deliver(&s, &third, r, (size_t)nr, 5, &ev, out), 0);
	assert_false(ev.moved);
	assert_int_equal(ev.len, 0);
	/* ...nor a wrong token from b, nor a forged datagram. */
	memcpy(wrong, token, sizeof wrong);
	wrong[0] ^= 1;
	nr = client_respond(&c, conv, wrong, r);
	assert_int_equal(deliver(&s, &b, r, (size_t)nr, 5, &ev, out), 0);
	assert_false(ev.moved);
	nr = client_respond(&c, conv, token, r);
	r[nr - 1] ^= 1;
	assert_int_equal(deliver(&s, &b, r, (size_t)nr, 5, &ev, out), KS_ERR_AUTH);
	r[nr - 1] ^= 1;
	assert_memory_equal(&sessions_get(s.t, sid)->peer, &a, sizeof a);
	/* The right token from b moves the peer; replies go to b. */
	assert_int_equal(deliver(&s, &b, r, (size_t)nr, 6, &ev, out), 0);
	assert_true(ev.moved);
	assert_int_equal(ev.len, 0);
	assert_memory_equal(&sessions_get(s.t, sid)->peer, &b, sizeof b);
	assert_true(table_seal(&s, sid, (const uint8_t *)"x", 1, out, sizeof out, &to) > 0);
	assert_memory_equal(to, &b, sizeof b);
	assert_int_equal(s.t->n.moved, 1);
	sessions_free(s.t);
}

/* 6.2 against a racer: copies of the client's datagrams from the
 * attacker's address arrive first. The session stays on the proven path,
 * the attacker's address gets challenges only, never more than 3x what it
 * sent, and the originals (duplicates now) keep dropping the candidate. */
static void racer_gets_at_most_three_times(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM], ch[ENVELOPE_MAX_DATAGRAM];
	struct sessions_addr evil = addr_of(99);
	const struct sessions_addr *to;
	struct sessions_event ev;
	uint64_t sid, sent = 0, got = 0, delivered = 0;
	ssize_t n;

	server_start(&s, 3, 16);
	client_init(&c, &s, 1, 102);
	sid = client_connect(&c, &s, 0);
	for (uint64_t i = 0; i < 200; i++) {
		uint64_t now = 10 + i * 7;

		n = client_seal(&c, i % 3 ? "a small ack" : "a longer datagram with stream data",
		                d);
		/* The copy first, from the attacker. */
		assert_int_equal(deliver(&s, &evil, d, (size_t)n, now, &ev, out), 0);
		sent += (uint64_t)n;
		delivered += ev.len > 0;
		if (ev.challenge) {
			ssize_t m =
			        sessions_seal_challenge(s.t, sid, &s.rng, now, ch, sizeof ch, &to);

			if (m > 0) {
				assert_memory_equal(to, &evil, sizeof evil);
				got += (uint64_t)m;
			} else {
				assert_int_equal(m, KS_ERR_LIMIT);
			}
		}
		assert_true(got <= 3 * sent);
		/* Then the original: a genuine duplicate from the proven path. */
		assert_int_equal(deliver(&s, &c.addr, d, (size_t)n, now + 1, &ev, out),
		                 KS_ERR_REPLAY);
		assert_false(sessions_get(s.t, sid)->cand.active);
		assert_memory_equal(&sessions_get(s.t, sid)->peer, &c.addr, sizeof c.addr);
	}
	assert_int_equal(delivered, 200); /* nothing lost: the copies carried it */
	assert_int_equal(s.t->n.moved, 0);
	assert_true(s.t->n.path_kept >= 200);
	assert_true(got > 0);
	/* A forged duplicate from the proven path does not count. */
	n = client_seal(&c, "x", d);
	assert_int_equal(deliver(&s, &evil, d, (size_t)n, 5000, &ev, out), 0);
	d[n - 1] ^= 1;
	assert_int_equal(deliver(&s, &c.addr, d, (size_t)n, 5001, &ev, out), KS_ERR_REPLAY);
	assert_true(sessions_get(s.t, sid)->cand.active);
	sessions_free(s.t);
}

/* 100,000 probes: random, truncated, bit-flipped and replayed datagrams of
 * both kinds. The server must emit nothing, allocate nothing, and keep its
 * sessions as they were. */
static void probes_get_no_answer(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	struct prng g;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], data[ENVELOPE_MAX_DATAGRAM];
	uint8_t p[ENVELOPE_MAX_DATAGRAM + 64], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_addr from = addr_of(99);
	struct sessions_event ev;
	size_t allocs, live;
	ssize_t ni, nd;
	uint64_t sid;

	server_start(&s, 3, 64);
	client_init(&c, &s, 1, 102);
	sid = client_connect(&c, &s, 0);
	client_rearm(&c);
	ni = handshake_client_write_init(&c.hc, &c.rng, NOW_UNIX, init, sizeof init);
	assert_int_equal(deliver(&s, &c.addr, init, (size_t)ni, 0, &ev, out), 0); /* now a replay */
	nd = client_seal(&c, "payload", data);
	assert_int_equal(deliver(&s, &c.addr, data, (size_t)nd, 0, &ev, out), 0);
	allocs = n_allocs;
	live = sessions_live(s.t);
	struct sessions_counters before = s.t->n;
	prng_seed(&g, 12345);
	memset(out, 0xa5, sizeof out);
	for (int i = 0; i < 100000; i++) {
		const uint8_t *src = i % 2 ? init : data;
		size_t n = (size_t)(i % 2 ? ni : nd), len;

		switch (i % 5) {
		case 0: /* random bytes, random length */
			len = prng_below(&g, sizeof p);
			prng_fill(&g, p, len);
			break;
		case 1: /* truncated */
			len = prng_below(&g, (uint32_t)n);
			memcpy(p, src, len);
			break;
		case 2: /* one or more bits flipped */
			len = n;
			memcpy(p, src, n);
			for (uint32_t k = 0; k <= prng_below(&g, 3); k++)
				p[prng_below(&g, (uint32_t)n)] ^=
				        (uint8_t)(1u << prng_below(&g, 8));
			break;
		case 3: /* replayed as is */
			len = n;
			memcpy(p, src, n);
			break;
		default: /* extended with random bytes */
			len = n + 1 + prng_below(&g, 63);
			memcpy(p, src, n);
			prng_fill(&g, p + n, len - n);
			break;
		}
		assert_true(deliver(&s, &from, p, len, 10 + (uint64_t)i / 100, &ev, out) < 0);
		assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	}
	/* No plaintext ever reached out: libsodium zeroes it after a failed
	 * verification, otherwise it is untouched. */
	for (size_t i = 0; i < sizeof out; i++)
		assert_true(out[i] == 0xa5 || out[i] == 0);
	assert_int_equal(n_allocs, allocs);
	assert_int_equal(sessions_live(s.t), live);
	assert_true(s.t->n.created == before.created && s.t->n.opened == before.opened);
	assert_true(s.t->n.moved == 0);
	uint64_t refused =
	        (s.t->n.bad_len - before.bad_len) + (s.t->n.no_session - before.no_session) +
	        (s.t->n.refused - before.refused) + (s.t->n.init_refused - before.init_refused);
	printf("# probes: 100000 sent, %llu refused (bad_len %llu, no_session %llu, refused %llu, "
	       "init_refused %llu), 0 answered\n",
	       (unsigned long long)refused, (unsigned long long)(s.t->n.bad_len - before.bad_len),
	       (unsigned long long)(s.t->n.no_session - before.no_session),
	       (unsigned long long)(s.t->n.refused - before.refused),
	       (unsigned long long)(s.t->n.init_refused - before.init_refused));
	assert_int_equal(refused, 100000);
	/* The session is intact: the client's next datagram opens. */
	nd = client_seal(&c, "still here", data);
	assert_int_equal(deliver(&s, &c.addr, data, (size_t)nd, 2000, &ev, out), 0);
	assert_true(ev.sid == sid);
	sessions_free(s.t);
}

/* PROTOCOL.md (secure layer) 7: after a server restart the client's data gets no answer;
 * the client notices within ENVELOPE_PEER_SILENT_MS of outstanding data
 * and handshakes again. */
static void restart_is_noticed_and_healed(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	uint64_t now = 0, sent_at = 0, old;
	ssize_t n;

	server_start(&s, 4, 16);
	client_init(&c, &s, 3, 103);
	old = client_connect(&c, &s, now);
	server_restart(&s);
	/* The client sends every 100 ms; nothing authenticated comes back. */
	for (now = 1000; now < 20000; now += 100) {
		n = client_seal(&c, "data", d);
		if (sent_at == 0)
			sent_at = now;
		assert_int_equal(deliver(&s, &c.addr, d, (size_t)n, now, &ev, out), KS_ERR_AUTH);
		assert_int_equal(ev.kind, SESSIONS_EV_NONE);
		if (envelope_status(&c.env, now, sent_at) == ENVELOPE_PEER_SILENT)
			break;
	}
	assert_int_equal(now, sent_at + ENVELOPE_PEER_SILENT_MS);
	assert_true(client_connect(&c, &s, now) != old);
	n = client_seal(&c, "again", d);
	assert_int_equal(deliver(&s, &c.addr, d, (size_t)n, now + 1, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_DATA);
	sessions_free(s.t);
}

static void user_sessions_are_capped(void **state)
{
	(void)state;
	struct server s;
	struct client c[SESSIONS_PER_USER_MAX + 1];
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	uint64_t sid[SESSIONS_PER_USER_MAX + 1];
	ssize_t n;

	server_start(&s, 5, 64);
	for (int i = 0; i < SESSIONS_PER_USER_MAX; i++) {
		client_init(&c[i], &s, 0, 200 + (uint64_t)i);
		sid[i] = client_connect(&c[i], &s, 10 + (uint64_t)i);
	}
	/* Session 3 is the quietest: all others send later. */
	for (int i = 0; i < SESSIONS_PER_USER_MAX; i++) {
		if (i == 3)
			continue;
		n = client_seal(&c[i], "x", d);
		assert_int_equal(deliver(&s, &c[i].addr, d, (size_t)n, 100, &ev, out), 0);
	}
	client_init(&c[8], &s, 0, 300);
	n = handshake_client_write_init(&c[8].hc, &c[8].rng, NOW_UNIX + 200, init, sizeof init);
	assert_int_equal(deliver(&s, &c[8].addr, init, (size_t)n, 200, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NEW);
	assert_true(ev.superseded == sid[3]);
	assert_null(sessions_get(s.t, sid[3]));
	assert_int_equal(sessions_live(s.t), SESSIONS_PER_USER_MAX);
	/* Another user is not affected. */
	client_init(&c[0], &s, 1, 301);
	client_connect(&c[0], &s, 300);
	assert_int_equal(sessions_live(s.t), SESSIONS_PER_USER_MAX + 1);
	/* sessions_next walks exactly the live ones, the superseded one not. */
	{
		const struct sessions_slot *sl;
		size_t at = 0, walked = 0;

		while ((sl = sessions_next(s.t, &at)) != NULL) {
			assert_ptr_equal(sessions_get(s.t, sl->sid), sl);
			assert_true(sl->sid != sid[3]);
			walked++;
		}
		assert_int_equal(walked, SESSIONS_PER_USER_MAX + 1);
		assert_null(sessions_next(s.t, &at));
	}
	sessions_free(s.t);
}

/* A configured cap of 2 (sessions_per_user): two devices coexist, a third
 * session supersedes the quieter of them; a cap above the maximum is
 * refused. */
static void user_cap_is_configurable(void **state)
{
	(void)state;
	struct server s;
	struct client c[3];
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	struct sessions *bad = NULL;
	uint64_t sid[3];
	ssize_t n;

	server_start(&s, 6, 64);
	sessions_free(s.t);
	s.cfg.per_user = SESSIONS_PER_USER_MAX + 1;
	assert_int_equal(sessions_new(&bad, &s.cfg), KS_ERR_INVAL);
	s.cfg.per_user = 2;
	assert_int_equal(sessions_new(&s.t, &s.cfg), 0);
	for (int i = 0; i < 2; i++) {
		client_init(&c[i], &s, 0, 400 + (uint64_t)i);
		sid[i] = client_connect(&c[i], &s, 10 + (uint64_t)i);
	}
	assert_int_equal(sessions_live(s.t), 2);
	n = client_seal(&c[0], "x", d); /* device 1 is the quieter one */
	assert_int_equal(deliver(&s, &c[0].addr, d, (size_t)n, 100, &ev, out), 0);
	client_init(&c[2], &s, 0, 402);
	sid[2] = client_connect(&c[2], &s, 200);
	assert_int_not_equal(sid[2], 0);
	assert_null(sessions_get(s.t, sid[1]));
	assert_non_null(sessions_get(s.t, sid[0]));
	assert_int_equal(sessions_live(s.t), 2);
	sessions_free(s.t);
}

/* 6.3: a new session of the same client instance replaces that
 * instance's older one, and only that one: at the cap it is the victim even
 * when another device was quieter; below the cap the table reports the pair
 * (the server closes the old one on the new one's first payload). A client
 * without an instance id (an older release) keeps the idlest rule. */
static void instance_replaces_only_its_own(void **state)
{
	(void)state;
	static const uint8_t ida[HANDSHAKE_INSTANCE_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t idb[HANDSHAKE_INSTANCE_LEN] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	struct server s;
	struct client a, b, old;
	uint8_t d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	uint64_t a1, a2, a3, b1, o1;
	ssize_t n;

	server_start(&s, 9, 64);
	sessions_free(s.t);
	s.cfg.per_user = 2;
	assert_int_equal(sessions_new(&s.t, &s.cfg), 0);
	client_init(&a, &s, 0, 700);
	client_init(&b, &s, 0, 701);
	handshake_client_set_instance(&a.hc, ida);
	handshake_client_set_instance(&b.hc, idb);
	a1 = client_connect(&a, &s, 10);
	b1 = client_connect(&b, &s, 11);
	assert_true(sessions_get(s.t, a1)->has_instance);
	assert_memory_equal(sessions_get(s.t, a1)->instance, ida, HANDSHAKE_INSTANCE_LEN);
	assert_false(sessions_same_instance(s.t, a1, b1));
	n = client_seal(&a, "x", d); /* b is now the quieter device */
	assert_int_equal(deliver(&s, &a.addr, d, (size_t)n, 100, &ev, out), 0);
	a2 = client_connect(&a, &s, 200);
	assert_null(sessions_get(s.t, a1)); /* its own old session went */
	assert_non_null(sessions_get(s.t, b1));
	assert_int_equal(sessions_live(s.t), 2);
	/* Below the cap both stay; the table names them one instance. */
	server_restart(&s);
	s.cfg.per_user = 0;
	server_restart(&s);
	a2 = client_connect(&a, &s, 300);
	b1 = client_connect(&b, &s, 301);
	a3 = client_connect(&a, &s, 302);
	assert_int_equal(sessions_live(s.t), 3);
	assert_true(sessions_same_instance(s.t, a2, a3));
	assert_false(sessions_same_instance(s.t, a3, b1));
	/* No instance id: never "the same instance", even as itself. */
	client_init(&old, &s, 0, 702);
	old.hc.features &= ~(uint32_t)TPARAMS_FEAT_INSTANCE_ID;
	handshake_client_set_instance(&old.hc, ida); /* not sent without the feature */
	o1 = client_connect(&old, &s, 303);
	assert_false(sessions_get(s.t, o1)->has_instance);
	assert_false(sessions_same_instance(s.t, o1, a3));
	assert_false(sessions_same_instance(s.t, o1, o1));
	sessions_free(s.t);
}

static void full_table_answers_nothing(void **state)
{
	(void)state;
	struct server s;
	struct client a, b, c;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	ssize_t n;

	server_start(&s, 7, 2);
	client_init(&a, &s, 0, 500);
	client_init(&b, &s, 1, 501);
	client_init(&c, &s, 2, 502);
	client_connect(&a, &s, 0);
	client_connect(&b, &s, 0);
	n = handshake_client_write_init(&c.hc, &c.rng, NOW_UNIX, init, sizeof init);
	assert_int_equal(deliver(&s, &c.addr, init, (size_t)n, 0, &ev, out), KS_ERR_FULL);
	assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	assert_int_equal(s.t->n.full, 1);
	struct sessions_addr huge = { .len = SESSIONS_ADDR_MAX + 1 };
	assert_int_equal(deliver(&s, &huge, init, (size_t)n, 0, &ev, out), KS_ERR_INVAL);
	sessions_free(s.t);
}

/* Stale, wrong-key, wrong-PSK and unknown-user inits: refused through the
 * table with no output at all (out untouched) and no session. */
static void bad_inits_get_no_answer(void **state)
{
	(void)state;
	struct server s, other;
	struct client c;
	struct keys_user bad;
	struct transport_params tp;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	ssize_t n;

	server_start(&s, 9, 8);
	server_start(&other, 10, 1);
	tparams_default(&tp);
	memset(out, 0xa5, sizeof out);
	for (int k = 0; k < 4; k++) {
		uint64_t ts = NOW_UNIX;

		client_init(&c, &s, 0, 600 + (uint64_t)k);
		bad = s.users[0];
		if (k == 0)
			ts -= HANDSHAKE_CLOCK_SKEW_MS + 1000; /* stale */
		if (k == 1)                                   /* another server's key */
			assert_int_equal(handshake_client_init(&c.hc, other.key.pub, &bad, &tp), 0);
		if (k == 2) { /* wrong PSK */
			bad.psk[31] ^= 0x40;
			assert_int_equal(handshake_client_init(&c.hc, s.key.pub, &bad, &tp), 0);
		}
		if (k == 3) { /* a user the server does not list */
			assert_int_equal(keys_user_set(&bad, "stranger", s.users[0].psk), 0);
			assert_int_equal(handshake_client_init(&c.hc, s.key.pub, &bad, &tp), 0);
		}
		n = handshake_client_write_init(&c.hc, &c.rng, ts, init, sizeof init);
		assert_true(n > 0);
		assert_true(deliver(&s, &c.addr, init, (size_t)n, 0, &ev, out) < 0);
		assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	}
	for (size_t i = 0; i < sizeof out; i++)
		assert_int_equal(out[i], 0xa5);
	assert_int_equal(sessions_live(s.t), 0);
	/* Under another server's key the session-id field does not unmask to
	 * 0: that init is just a datagram of no session. */
	assert_int_equal(s.t->n.init_refused, 3);
	assert_int_equal(s.t->n.no_session, 1);
	assert_int_equal(s.t->hs.n.stale, 1);
	assert_int_equal(s.t->hs.n.bad_auth, 1);
	assert_int_equal(s.t->hs.n.bad_user, 1);
	sessions_free(s.t);
	sessions_free(other.t);
}

static void bad_configuration_is_refused(void **state)
{
	(void)state;
	struct server s;
	struct sessions *t = NULL;
	size_t frees = n_frees;

	server_start(&s, 8, 1);
	s.cfg.capacity = 0;
	assert_int_equal(sessions_new(&t, &s.cfg), KS_ERR_INVAL);
	s.cfg.capacity = SESSIONS_MAX + 1;
	assert_int_equal(sessions_new(&t, &s.cfg), KS_ERR_INVAL);
	s.cfg.capacity = 4;
	s.cfg.n_users = 0;
	assert_int_equal(sessions_new(&t, &s.cfg), KS_ERR_INVAL);
	assert_null(t);
	sessions_free(NULL);
	sessions_free(s.t);
	assert_true(n_frees > frees);
}

/* handshake 4.6 through the table: an authenticated init of a wire version
 * the server does not speak gets a REFUSED event with the refusal, no
 * slot; the client reads it as a refusal. */
static void version_mismatch_gets_a_refusal_and_no_slot(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	struct handshake_result res;
	ssize_t n;

	server_start(&s, 40, 4);
	client_init(&c, &s, 1, 140);
	c.hc.wire_min = c.hc.wire_max = 7;
	n = handshake_client_write_init(&c.hc, &c.rng, NOW_UNIX, init, sizeof init);
	assert_true(n > 0);
	assert_int_equal(deliver(&s, &c.addr, init, (size_t)n, 0, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_REFUSED);
	assert_true(ev.len > 0 && ev.len <= (size_t)n);
	assert_int_equal(sessions_live(s.t), 0);
	assert_int_equal(s.t->n.init_refused, 1);
	assert_int_equal(handshake_client_read_response(&c.hc, out, ev.len, &res),
	                 KS_ERR_UNSUPPORTED);
	assert_int_equal(c.hc.refusal.server_max, HANDSHAKE_WIRE_VERSION);
	sessions_free(s.t);
}

/* Issue 14, attack 3 through the table: a table started at start_unix_ms
 * answers no init stamped before it, so a capture from before a restart
 * gets nothing; a fresh init gets in. */
static void restart_does_not_reopen_the_replay_window(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	uint8_t init[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	struct sessions_event ev;
	ssize_t n;

	server_start(&s, 41, 4);
	client_init(&c, &s, 2, 141);
	n = handshake_client_write_init(&c.hc, &c.rng, NOW_UNIX, init, sizeof init);
	assert_int_equal(deliver(&s, &c.addr, init, (size_t)n, 0, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NEW);
	s.cfg.start_unix_ms = NOW_UNIX + 21000;
	server_restart(&s);
	assert_int_equal(deliver(&s, &c.addr, init, (size_t)n, 21000, &ev, out), KS_ERR_STALE);
	assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	assert_int_equal(sessions_live(s.t), 0);
	client_connect(&c, &s, 21001);
	assert_int_equal(sessions_live(s.t), 1);
	sessions_free(s.t);
}

/* A reload (sessions_set_users): a live session of a removed user blocks
 * the swap and nothing changes; once it is closed, the remaining user's
 * session keeps its keys under the user's new index, a new user can
 * connect, and a removed user's init is refused. */
static void reload_keeps_remaining_users_sessions(void **state)
{
	(void)state;
	struct server s;
	struct client c0, c2, c4, again;
	struct keys_user nu[2];
	uint8_t psk[KEYS_LEN], d[ENVELOPE_MAX_DATAGRAM], out[ENVELOPE_MAX_DATAGRAM];
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	const uint32_t map[4] = { HANDSHAKE_USER_NONE, HANDSHAKE_USER_NONE, 0,
		                  HANDSHAKE_USER_NONE };
	const uint32_t bad[4] = { 5, HANDSHAKE_USER_NONE, 0, HANDSHAKE_USER_NONE };
	struct sessions_event ev;
	uint64_t sid0, sid2;
	ssize_t n;

	server_start(&s, 21, 16);
	client_init(&c0, &s, 0, 400);
	client_init(&c2, &s, 2, 401);
	sid0 = client_connect(&c0, &s, 10);
	sid2 = client_connect(&c2, &s, 11);
	nu[0] = s.users[2];
	memset(psk, 'z', sizeof psk);
	assert_int_equal(keys_user_set(&nu[1], "u4", psk), 0);
	/* u0 still has a session: refused, nothing changed. */
	assert_int_equal(sessions_set_users(s.t, nu, 2, map, NOW_UNIX + 15), KS_ERR_INVAL);
	assert_int_equal(sessions_close(s.t, sid0), 0);
	assert_int_equal(sessions_set_users(s.t, nu, 2, bad, NOW_UNIX + 15), KS_ERR_INVAL);
	assert_int_equal(sessions_get(s.t, sid2)->user, 2);
	assert_int_equal(sessions_set_users(s.t, nu, 2, map, NOW_UNIX + 15), 0);
	assert_int_equal(sessions_get(s.t, sid2)->user, 0);
	n = client_seal(&c2, "still", d);
	assert_int_equal(deliver(&s, &c2.addr, d, (size_t)n, 20, &ev, out), 0);
	assert_int_equal(ev.kind, SESSIONS_EV_DATA);
	assert_true(ev.sid == sid2);
	/* The new user connects under index 1; an init it stamped before the
	 * reload is stale. */
	s.users[3] = nu[1]; /* client_init takes the user from s.users */
	client_init(&c4, &s, 3, 402);
	n = handshake_client_write_init(&c4.hc, &c4.rng, NOW_UNIX + 14, init, sizeof init);
	assert_true(n > 0);
	assert_int_equal(deliver(&s, &c4.addr, init, (size_t)n, 25, &ev, out), KS_ERR_STALE);
	client_init(&c4, &s, 3, 405);
	assert_int_equal(sessions_get(s.t, client_connect(&c4, &s, 30))->user, 1);
	/* The remaining user's next session joins its list at the new index. */
	client_init(&again, &s, 2, 403);
	assert_int_equal(sessions_get(s.t, client_connect(&again, &s, 40))->user, 0);
	assert_int_equal(sessions_live(s.t), 3);
	/* The removed user's init authenticates no more. */
	client_init(&c0, &s, 0, 404);
	n = handshake_client_write_init(&c0.hc, &c0.rng, NOW_UNIX + 50, init, sizeof init);
	assert_true(n > 0);
	assert_true(deliver(&s, &c0.addr, init, (size_t)n, 50, &ev, out) < 0);
	assert_int_equal(ev.kind, SESSIONS_EV_NONE);
	sessions_free(s.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(data_flows_both_ways),
		cmocka_unit_test(owner_takes_the_envelope),
		cmocka_unit_test(roaming_needs_path_validation),
		cmocka_unit_test(racer_gets_at_most_three_times),
		cmocka_unit_test(probes_get_no_answer),
		cmocka_unit_test(restart_is_noticed_and_healed),
		cmocka_unit_test(user_sessions_are_capped),
		cmocka_unit_test(user_cap_is_configurable),
		cmocka_unit_test(instance_replaces_only_its_own),
		cmocka_unit_test(full_table_answers_nothing),
		cmocka_unit_test(bad_inits_get_no_answer),
		cmocka_unit_test(bad_configuration_is_refused),
		cmocka_unit_test(version_mismatch_gets_a_refusal_and_no_slot),
		cmocka_unit_test(restart_does_not_reopen_the_replay_window),
		cmocka_unit_test(reload_keeps_remaining_users_sessions),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
