/* fuzz_session.c - arbitrary datagrams into a server collection and into an
 * established client session.
 *
 * Input: one mode byte, then records of u16le length + bytes.
 *   mode bit 0: 0 = into the server (struct server), 1 = into the client
 *   mode bit 1: 0 = raw datagrams (must be refused with no output at all);
 *               1 = each record is sealed with the session's real keys first,
 *               so KCP and the mux see arbitrary authenticated bytes
 *   mode bit 2: (sealed) wrap each record in one KCP PUSH segment of the
 *               session's conv, sn = record index, so the mux sees them
 *   mode bit 3: (sealed, not PUSH) path frames (secure 6.2): the record
 *               becomes a path frame of the session's conv, its type from
 *               bit 0 of the first byte, its token from the bytes after;
 *               into the server, bit 1 of the first byte sends it from a
 *               second address, so candidates, challenges and responses
 *               meet arbitrary tokens
 *   mode bit 4: (sealed, not PUSH, not path) the record's first 4 bytes
 *               become the session's conv, so KCP-shaped records (and the
 *               close of docs/PROTOCOL.md (session) L8) get past the conv
 *               check
 * Between sealed records the clock moves (by the record's first byte, in
 * 10 ms units) and due timers run; the applications answer OPENs, read
 * everything and pump. Invariants: raw input never produces output;
 * nothing crashes or leaks; the session's memory stays within a bound.
 * Public headers only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/rng.h"
#include "base/wr.h"
#include "core/envelope.h"
#include "core/handshake.h"
#include "core/kcp.h"
#include "core/keys.h"
#include "core/mux.h"
#include "core/server.h"
#include "core/session.h"
#include "core/sessions.h"
#include "core/tparams.h"
#include "core/transport.h"

#define UNIX0 1764000000000ULL

enum { MEM_BOUND = 64 * 1024 * 1024 };

static const uint8_t rep5[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

struct world {
	struct prng g;
	struct rng_source rng;
	struct keys_server key;
	struct keys_user user;
	struct transport_params tp;
	uint64_t now;
	uint64_t outputs;
	uint8_t last[ENVELOPE_MAX_DATAGRAM]; /* the last datagram output */
	size_t last_len;
	/* server side under test, with a hand-driven client */
	struct server *srv;
	struct handshake_client hc;
	struct envelope cenv;
	uint32_t cconv;
	/* client under test, with a bare table as its server */
	struct session *cli;
	struct sessions *table;
	uint64_t tsid;
	struct envelope senv; /* the bare table's session's envelope (its owner's) */
};

static int out(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct world *w = user;

	(void)to;
	w->outputs++;
	memcpy(w->last, d, len);
	w->last_len = len;
	return 0;
}

static const struct sessions_addr peer = { .len = 4, .bytes = { 127, 0, 0, 2 } };
static const struct sessions_addr other = { .len = 4, .bytes = { 127, 0, 0, 3 } };

/* Mode bit 3: a path frame of conv from record p. */
static size_t wrap_path(uint8_t out[static SESSIONS_PATH_LEN], uint32_t conv, const uint8_t *p,
                        size_t len)
{
	uint8_t token[SESSIONS_TOKEN_LEN] = { 0 };
	size_t n = len > 1 ? len - 1 : 0;

	if (n)
		memcpy(token, p + 1, n < sizeof token ? n : sizeof token);
	sessions_path_write(out, conv,
	                    len && (p[0] & 1) ? SESSIONS_PATH_RESPONSE : SESSIONS_PATH_CHALLENGE,
	                    token);
	return SESSIONS_PATH_LEN;
}

static int setup_keys(struct world *w)
{
	uint8_t psk[KEYS_LEN];

	prng_seed(&w->g, 77);
	w->rng = prng_source(&w->g);
	if (keys_server_generate(&w->key, &w->rng) != 0)
		return -1;
	memset(psk, 'p', sizeof psk);
	if (keys_user_set(&w->user, "fuzz", psk) != 0)
		return -1;
	tparams_default(&w->tp);
	return 0;
}

static struct sessions_config table_config(struct world *w)
{
	struct sessions_config c = {
		.key = &w->key, .users = &w->user, .n_users = 1, .capacity = 4
	};

	c.min = c.max = c.def = w->tp;
	return c;
}

/* The server under test, and a client by hand that completed a handshake. */
static int setup_server(struct world *w)
{
	struct server_config sc = { .table = table_config(w), .rng = &w->rng, .output = out };
	struct handshake_result res;
	uint8_t init[ENVELOPE_MAX_DATAGRAM];
	ssize_t n;

	sc.output_user = w;
	if (server_new(&w->srv, &sc) != 0)
		return -1;
	if (handshake_client_init(&w->hc, w->key.pub, &w->user, &w->tp) != 0)
		return -1;
	n = handshake_client_write_init(&w->hc, &w->rng, UNIX0, init, sizeof init);
	if (n < 0 || server_on_datagram(w->srv, &peer, init, (size_t)n, 0, UNIX0) != 0)
		return -1;
	if (handshake_client_read_response(&w->hc, w->last, w->last_len, &res) != 0)
		return -1;
	envelope_init(&w->cenv, w->hc.pub.hdr, res.sid, &res.tx, &res.rx, &res.params, 0);
	w->cconv = res.conv;
	sodium_memzero(&res, sizeof res);
	return 0;
}

/* The client under test, established against a bare table. */
static int setup_client(struct world *w)
{
	struct sessions_config tc = table_config(w);
	struct session_client_config cc = { .server_pub = w->key.pub,
		                            .user = &w->user,
		                            .rng = &w->rng };
	struct sessions_event ev;
	uint8_t resp[ENVELOPE_MAX_DATAGRAM];

	cc.proposal = w->tp;
	cc.output = out;
	cc.output_user = w;
	if (sessions_new(&w->table, &tc) != 0 || session_client_new(&w->cli, &cc, 0) != 0)
		return -1;
	session_on_timer(w->cli, 0, UNIX0);
	if (sessions_on_datagram(w->table, &peer, w->last, w->last_len, 0, UNIX0, &w->rng, resp,
	                         sizeof resp, &ev) != 0 ||
	    ev.kind != SESSIONS_EV_NEW)
		return -1;
	w->tsid = ev.sid;
	if (sessions_attach(w->table, ev.sid, &w->senv, NULL) != 0)
		return -1;
	if (session_on_datagram(w->cli, resp, ev.len, 0, UNIX0) != 0)
		return -1;
	return session_state(w->cli) == SESSION_ESTABLISHED ? 0 : -1;
}

/* One KCP PUSH segment around p. */
static size_t wrap_push(uint8_t *dst, size_t cap, uint32_t conv, uint32_t sn, uint32_t ts,
                        const uint8_t *p, size_t len)
{
	struct wr w = wr_init(dst, cap);

	if (!wr_u32le(&w, conv) || !wr_u8(&w, KCP_CMD_PUSH) || !wr_u8(&w, 0) ||
	    !wr_u16le(&w, 128) || !wr_u32le(&w, ts) || !wr_u32le(&w, sn) || !wr_u32le(&w, 0) ||
	    !wr_u32le(&w, (uint32_t)len) || !wr_bytes(&w, p, len))
		return 0;
	return wr_len(&w);
}

/* The applications: the client reads everything; the server also answers
 * OPENs. */
static void client_app(struct world *w)
{
	struct session *s = w->cli;
	struct session_event ev;
	uint8_t buf[4096];

	for (int i = 0; i < 4096 && session_next_event(s, &ev) == 0; i++) {
		struct mux *m = session_mux(s);

		if (ev.type != SESSION_EV_STREAM || !m)
			continue;
		if (ev.stream.type == MUX_EV_READABLE || ev.stream.type == MUX_EV_FIN)
			while (mux_stream_read(m, ev.stream.id, buf, sizeof buf) > 0)
				;
	}
	session_pump(s, w->now);
}

static void server_app(struct world *w)
{
	struct server_event ev;
	uint8_t buf[4096];

	for (int i = 0; i < 4096 && server_next_event(w->srv, &ev) == 0; i++) {
		struct mux *m = ev.session ? session_mux(ev.session) : NULL;

		if (ev.ev.type != SESSION_EV_STREAM || !m)
			continue;
		if (ev.ev.stream.type == MUX_EV_OPEN &&
		    mux_stream_reply(m, ev.ev.stream.id, rep5, sizeof rep5) != 0)
			(void)mux_stream_reset(m, ev.ev.stream.id, MUX_RST_CANCEL);
		else if (ev.ev.stream.type == MUX_EV_READABLE || ev.ev.stream.type == MUX_EV_FIN)
			while (mux_stream_read(m, ev.ev.stream.id, buf, sizeof buf) > 0)
				;
		session_pump(ev.session, w->now);
	}
}

static void run_timers(struct world *w, bool to_client)
{
	if (to_client) {
		if (session_next_deadline(w->cli) <= w->now)
			session_on_timer(w->cli, w->now, UNIX0 + w->now);
	} else if (server_next_deadline(w->srv) <= w->now) {
		server_on_timer(w->srv, w->now);
	}
}

static void feed(struct world *w, int mode, const uint8_t *p, size_t len, uint32_t idx)
{
	bool to_client = mode & 1, sealed = mode & 2, push = mode & 4, path = mode & 8;
	bool conv = mode & 16;
	const struct sessions_addr *from = path && len && (p[0] & 2) ? &other : &peer;
	uint8_t seg[ENVELOPE_MAX_DATAGRAM], dg[ENVELOPE_MAX_DATAGRAM];
	uint64_t before = w->outputs;
	ssize_t n;

	if (!sealed) {
		if (to_client)
			(void)session_on_datagram(w->cli, p, len, w->now, UNIX0 + w->now);
		else
			(void)server_on_datagram(w->srv, &peer, p, len, w->now, UNIX0 + w->now);
		if (w->outputs != before)
			abort(); /* unauthenticated input made us talk */
		return;
	}
	w->now += len ? (uint64_t)p[0] * 10 : 1;
	if (push) {
		len = wrap_push(seg, sizeof seg - ENVELOPE_OVERHEAD - 64,
		                to_client ? sessions_get(w->table, w->tsid)->conv : w->cconv, idx,
		                (uint32_t)w->now, p, len);
		p = seg;
	} else if (path) {
		len = wrap_path(seg, to_client ? sessions_get(w->table, w->tsid)->conv : w->cconv,
		                p, len);
		p = seg;
	} else if (conv && len >= 4 && len <= sizeof seg) {
		const struct sessions_slot *slot = sessions_get(w->table, w->tsid);
		uint32_t c = to_client ? (slot ? slot->conv : 0) : w->cconv;
		struct wr cw = wr_init(seg, 4);

		memcpy(seg, p, len);
		(void)wr_u32le(&cw, c);
		p = seg;
	}
	if (to_client) {
		n = envelope_seal(&w->senv, &w->rng, p, len, dg, sizeof dg);
		if (n > 0)
			(void)session_on_datagram(w->cli, dg, (size_t)n, w->now, UNIX0 + w->now);
		client_app(w);
	} else {
		n = envelope_seal(&w->cenv, &w->rng, p, len, dg, sizeof dg);
		if (n > 0)
			(void)server_on_datagram(w->srv, from, dg, (size_t)n, w->now,
			                         UNIX0 + w->now);
		server_app(w);
	}
	run_timers(w, to_client);
	if (to_client ? !session_check(w->cli) : !server_check(w->srv))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct world *w;
	int mode;
	uint32_t idx = 0;

	if (size < 1 || sodium_init() < 0)
		return 0;
	w = calloc(1, sizeof *w);
	if (!w)
		return 0;
	mode = data[0] & 15;
	if (setup_keys(w) != 0 || (mode & 1 ? setup_client(w) : setup_server(w)) != 0)
		abort();
	data++, size--;
	while (size >= 2 && idx < 256) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;

		data += 2, size -= 2;
		if (len > size)
			len = size;
		if (len > ENVELOPE_MAX_DATAGRAM)
			len = ENVELOPE_MAX_DATAGRAM;
		feed(w, mode, data, len, idx++);
		data += len, size -= len;
	}
	if ((mode & 1 ? session_mem_bytes(w->cli) : server_mem_bytes(w->srv)) > MEM_BOUND)
		abort();
	session_free(w->cli);
	sessions_free(w->table);
	server_free(w->srv);
	handshake_client_wipe(&w->hc);
	envelope_wipe(&w->cenv);
	envelope_wipe(&w->senv);
	free(w);
	return 0;
}
