/* test_socks5.c - RFC 1928/1929 parsers, encoders, formatter, credentials and
 * the server state machine, against hand-written golden bytes. Every input
 * is also fed in every two-way split and one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "core/socks5.h"
#include "lib/socks5_client.h"

/* S("...") is a byte string literal and its length without the final NUL.
 * Hex escapes are closed by string concatenation before any letter. */
#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

/* --- one dispatcher over every parser, with a comparable result --------- */

enum kind { K_GREETING, K_AUTH, K_REQUEST, K_UDP, K_METHOD, K_AUTH_REPLY, K_REPLY };

struct res {
	ssize_t rc;
	enum socks5_fault fault;
	uint8_t enc[SOCKS5_AUTH_REQUEST_MAX]; /* the parsed result, encoded again */
	size_t enc_len;
	size_t view_off, view_len; /* where the result's view points in the input */
	struct socks5_addr addr;   /* request, UDP and reply addresses */
	uint8_t code;              /* cmd, method, status, rep or frag */
};

static void encode_ok(struct res *r, ssize_t n)
{
	assert_true(n > 0);
	r->enc_len = (size_t)n;
}

static void encode_greeting(struct res *r, const uint8_t *in, const struct socks5_greeting *g)
{
	r->view_off = (size_t)(g->methods - in);
	r->view_len = g->nmethods;
	encode_ok(r, socks5_encode_greeting(r->enc, sizeof r->enc, g->methods, g->nmethods));
}

static void encode_auth(struct res *r, const uint8_t *in, const struct socks5_auth *a)
{
	r->view_off = (size_t)(a->user - in);
	r->view_len = a->user_len;
	assert_true(a->pass == a->user + a->user_len + 1);
	encode_ok(r, socks5_encode_auth_request(r->enc, sizeof r->enc, a->user, a->user_len,
	                                        a->pass, a->pass_len));
}

static void encode_request(struct res *r, const uint8_t *in, const struct socks5_request *q)
{
	r->view_off = (size_t)(q->raw - in);
	r->view_len = q->raw_len;
	r->addr = q->dst;
	r->code = q->cmd;
	assert_true(q->raw_len == (size_t)r->rc);
	encode_ok(r, socks5_encode_request(r->enc, sizeof r->enc, q->cmd, &q->dst));
}

static void encode_udp(struct res *r, const uint8_t *in, const struct socks5_udp_header *h)
{
	r->view_off = (size_t)(h->data - in);
	r->view_len = h->data_len;
	r->addr = h->dst;
	r->code = h->frag;
	encode_ok(r, socks5_encode_udp_header(r->enc, sizeof r->enc, h->frag, &h->dst));
}

static void encode_reply(struct res *r, const struct socks5_reply *p)
{
	r->addr = p->bnd;
	r->code = p->rep;
	encode_ok(r, socks5_encode_reply(r->enc, sizeof r->enc, p->rep, &p->bnd));
}

/* parse runs the parser of kind k and, on success, re-encodes its result. */
static struct res parse(enum kind k, const uint8_t *in, size_t len)
{
	struct res r;
	union {
		struct socks5_greeting g;
		struct socks5_auth a;
		struct socks5_request q;
		struct socks5_udp_header h;
		struct socks5_reply p;
	} u;

	memset(&r, 0, sizeof r);
	memset(&u, 0, sizeof u);
	r.fault = (enum socks5_fault)77; /* the parser must set it */
	switch (k) {
	case K_GREETING: r.rc = socks5_parse_greeting(in, len, &u.g, &r.fault); break;
	case K_AUTH: r.rc = socks5_parse_auth_request(in, len, &u.a, &r.fault); break;
	case K_REQUEST: r.rc = socks5_parse_request(in, len, &u.q, &r.fault); break;
	case K_UDP: r.rc = socks5_parse_udp_header(in, len, &u.h, &r.fault); break;
	case K_METHOD: r.rc = socks5_parse_method_reply(in, len, &r.code, &r.fault); break;
	case K_AUTH_REPLY: r.rc = socks5_parse_auth_reply(in, len, &r.code, &r.fault); break;
	case K_REPLY: r.rc = socks5_parse_reply(in, len, &u.p, &r.fault); break;
	}
	if (r.rc <= 0)
		return r;
	switch (k) {
	case K_GREETING: encode_greeting(&r, in, &u.g); break;
	case K_AUTH: encode_auth(&r, in, &u.a); break;
	case K_REQUEST: encode_request(&r, in, &u.q); break;
	case K_UDP: encode_udp(&r, in, &u.h); break;
	case K_METHOD:
		encode_ok(&r, socks5_encode_method_reply(r.enc, sizeof r.enc, r.code));
		break;
	case K_AUTH_REPLY:
		encode_ok(&r, socks5_encode_auth_reply(r.enc, sizeof r.enc, r.code));
		break;
	case K_REPLY: encode_reply(&r, &u.p); break;
	}
	return r;
}

static void assert_same(const struct res *a, const struct res *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->fault, b->fault);
	assert_int_equal(a->enc_len, b->enc_len);
	assert_memory_equal(a->enc, b->enc, sizeof a->enc);
	assert_int_equal(a->view_off, b->view_off);
	assert_int_equal(a->view_len, b->view_len);
	assert_memory_equal(&a->addr, &b->addr, sizeof a->addr);
	assert_int_equal(a->code, b->code);
}

/* feed_split plays a caller that receives in[] in chunks ending at cuts[]
 * and calls the parser after each chunk on everything it has so far, until
 * the parser stops saying "need more". */
static struct res feed_split(enum kind k, const uint8_t *in, size_t len, const size_t *cuts,
                             size_t ncuts)
{
	uint8_t buf[SOCKS5_AUTH_REQUEST_MAX + 64];
	struct res r = { .rc = KS_ERR_AGAIN };
	size_t have = 0;

	assert_true(len <= sizeof buf);
	for (size_t i = 0; i <= ncuts && r.rc == KS_ERR_AGAIN; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		memcpy(buf + have, in + have, to - have);
		have = to;
		r = parse(k, buf, have);
	}
	return r;
}

/* check_every_split compares the whole-input result with every two-way
 * split, one byte at a time, and (for a done result) every proper prefix
 * answering "need more" without touching the output. */
static void check_every_split(enum kind k, const uint8_t *in, size_t len)
{
	struct res whole = parse(k, in, len), r;
	size_t cuts[SOCKS5_AUTH_REQUEST_MAX + 64];

	for (size_t cut = 0; cut <= len; cut++) {
		r = feed_split(k, in, len, &cut, 1);
		assert_same(&whole, &r);
	}
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	r = feed_split(k, in, len, cuts, len);
	assert_same(&whole, &r);
	for (size_t p = 0; whole.rc > 0 && p < (size_t)whole.rc; p++) {
		r = parse(k, in, p);
		assert_int_equal(r.rc, KS_ERR_AGAIN);
		assert_int_equal(r.fault, SOCKS5_FAULT_NONE);
		assert_int_equal(r.enc_len, 0);
	}
}

/* --- golden vectors: good messages --------------------------------------- */

struct good {
	const char *name;
	enum kind kind;
	const uint8_t *in;
	size_t len;
	size_t want; /* bytes consumed; the rest is trailing data */
};

static const struct good goods[] = {
	{ "greeting no-auth", K_GREETING, S("\x05\x01\x00"), 3 },
	{ "greeting two", K_GREETING, S("\x05\x02\x00\x02"), 4 },
	{ "greeting + request", K_GREETING, S("\x05\x03\x00\x01\x02\x05\x01\x00"), 5 },
	{ "greeting 255", K_GREETING,
	  S("\x05\xff"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"),
	  257 },
	{ "auth", K_AUTH,
	  S("\x01\x04"
	    "user\x06"
	    "secret"),
	  13 },
	{ "auth one byte each", K_AUTH, S("\x01\x01u\x01p\x05"), 5 },
	{ "connect ipv4", K_REQUEST, S("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"), 10 },
	{ "connect domain", K_REQUEST,
	  S("\x05\x01\x00\x03\x0b"
	    "example.com\x01\xbb"),
	  18 },
	{ "connect ipv6", K_REQUEST,
	  S("\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\x1f\x90"),
	  22 },
	{ "bind ipv4", K_REQUEST, S("\x05\x02\x00\x01\xc0\x00\x02\x01\xff\xff"), 10 },
	{ "udp associate any", K_REQUEST, S("\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"), 10 },
	{ "connect + early data", K_REQUEST,
	  S("\x05\x01\x00\x03\x01"
	    "a\x00\x50GET / HTTP/1.1\r\n"),
	  8 },
	{ "udp ipv4 + data", K_UDP, S("\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35qdns"), 10 },
	{ "udp domain frag", K_UDP,
	  S("\x00\x00\x02\x03\x03"
	    "a.b\x00\x35"),
	  10 },
	{ "udp ipv6 empty", K_UDP,
	  S("\x00\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\x01\xbb"),
	  22 },
	{ "method none", K_METHOD, S("\x05\x00"), 2 },
	{ "method userpass", K_METHOD, S("\x05\x02"), 2 },
	{ "method unacceptable", K_METHOD, S("\x05\xff\x05"), 2 },
	{ "auth ok", K_AUTH_REPLY, S("\x01\x00"), 2 },
	{ "auth fail", K_AUTH_REPLY, S("\x01\x01"), 2 },
	{ "reply ipv4", K_REPLY, S("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"), 10 },
	{ "reply domain", K_REPLY,
	  S("\x05\x00\x00\x03\x09"
	    "localhost\x00\x50"),
	  16 },
	{ "reply ipv6 refused", K_REPLY,
	  S("\x05\x05\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01"
	    "\x00\x00"),
	  22 },
};

static void good_vectors_parse_split_and_roundtrip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
		const struct good *g = &goods[i];
		struct res r = parse(g->kind, g->in, g->len);

		print_message("%s\n", g->name);
		assert_int_equal(r.rc, g->want);
		assert_int_equal(r.fault, SOCKS5_FAULT_NONE);
		/* every field is determined by the result: encode(parse(x)) == x */
		assert_int_equal(r.enc_len, g->want);
		assert_memory_equal(r.enc, g->in, g->want);
		if (g->kind != K_UDP)
			check_every_split(g->kind, g->in, g->len);
	}
}

static void parsed_fields_are_right(void **state)
{
	(void)state;
	struct socks5_greeting g;
	struct socks5_auth a;
	struct socks5_request q;
	struct socks5_udp_header h;
	struct socks5_reply p;
	enum socks5_fault f;
	const uint8_t *in;

	in = (const uint8_t *)"\x05\x02\x00\x02";
	assert_int_equal(socks5_parse_greeting(in, 4, &g, &f), 4);
	assert_int_equal(g.nmethods, 2);
	assert_ptr_equal(g.methods, in + 2);
	assert_true(socks5_greeting_offers(&g, SOCKS5_METHOD_USERPASS));
	assert_false(socks5_greeting_offers(&g, SOCKS5_METHOD_GSSAPI));

	in = (const uint8_t *)"\x01\x04user\x06secret";
	assert_int_equal(socks5_parse_auth_request(in, 13, &a, NULL), 13);
	assert_int_equal(a.user_len, 4);
	assert_memory_equal(a.user, "user", 4);
	assert_int_equal(a.pass_len, 6);
	assert_memory_equal(a.pass, "secret", 6);

	in = (const uint8_t *)"\x05\x01\x00\x03\x0b"
	                      "example.com\x01\xbbXY";
	assert_int_equal(socks5_parse_request(in, 20, &q, &f), 18);
	assert_int_equal(q.cmd, SOCKS5_CMD_CONNECT);
	assert_int_equal(q.dst.type, SOCKS5_ATYP_DOMAIN);
	assert_int_equal(q.dst.domain_len, 11);
	assert_string_equal(q.dst.domain, "example.com");
	assert_int_equal(q.dst.port, 443);
	assert_ptr_equal(q.raw, in);
	assert_int_equal(q.raw_len, 18);

	in = (const uint8_t *)"\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35qdns";
	assert_int_equal(socks5_parse_udp_header(in, 14, &h, &f), 10);
	assert_int_equal(h.frag, 0);
	assert_memory_equal(h.dst.ipv4, "\x7f\x00\x00\x01", 4);
	assert_int_equal(h.dst.port, 53);
	assert_ptr_equal(h.data, in + 10);
	assert_int_equal(h.data_len, 4);

	in = (const uint8_t *)"\x05\x04\x00\x01\x0a\x00\x00\x01\x04\x38";
	assert_int_equal(socks5_parse_reply(in, 10, &p, &f), 10);
	assert_int_equal(p.rep, SOCKS5_REP_HOST_UNREACHABLE);
	assert_int_equal(p.bnd.type, SOCKS5_ATYP_IPV4);
	assert_memory_equal(p.bnd.ipv4, "\x0a\x00\x00\x01", 4);
	assert_int_equal(p.bnd.port, 1080);
}

/* --- golden vectors: bad messages ---------------------------------------- */

struct bad {
	const char *name;
	enum kind kind;
	const uint8_t *in;
	size_t len;
	ssize_t rc;
	enum socks5_fault fault;
	int rep; /* socks5_fault_reply: the REP code, or -1 for close silently */
};

static const struct bad bads[] = {
	{ "greeting v4", K_GREETING, S("\x04\x01\x00"), KS_ERR_PROTO, SOCKS5_FAULT_VERSION, -1 },
	{ "greeting http", K_GREETING, S("GET / HTTP/1.1"), KS_ERR_PROTO, SOCKS5_FAULT_VERSION,
	  -1 },
	{ "nmethods 0", K_GREETING, S("\x05\x00\x00"), KS_ERR_PROTO, SOCKS5_FAULT_NMETHODS, 1 },
	{ "auth v5", K_AUTH, S("\x05\x01u\x01p"), KS_ERR_PROTO, SOCKS5_FAULT_VERSION, -1 },
	{ "ulen 0", K_AUTH, S("\x01\x00\x01p"), KS_ERR_PROTO, SOCKS5_FAULT_ULEN, 1 },
	{ "plen 0", K_AUTH, S("\x01\x01u\x00"), KS_ERR_PROTO, SOCKS5_FAULT_PLEN, 1 },
	{ "request v4", K_REQUEST, S("\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_VERSION, -1 },
	{ "cmd 0", K_REQUEST, S("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50"), KS_ERR_UNSUPPORTED,
	  SOCKS5_FAULT_CMD, 7 },
	{ "cmd 9", K_REQUEST, S("\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50"), KS_ERR_UNSUPPORTED,
	  SOCKS5_FAULT_CMD, 7 },
	{ "cmd 9 atyp 2", K_REQUEST, S("\x05\x09\x00\x02"), KS_ERR_UNSUPPORTED, SOCKS5_FAULT_CMD,
	  7 },
	{ "rsv 1", K_REQUEST, S("\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_RSV, 1 },
	{ "atyp 2", K_REQUEST, S("\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50"), KS_ERR_UNSUPPORTED,
	  SOCKS5_FAULT_ATYP, 8 },
	{ "atyp 0", K_REQUEST, S("\x05\x01\x00\x00"), KS_ERR_UNSUPPORTED, SOCKS5_FAULT_ATYP, 8 },
	{ "domain len 0", K_REQUEST, S("\x05\x01\x00\x03\x00\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_DOMAIN_LEN, 1 },
	{ "domain nul", K_REQUEST, S("\x05\x01\x00\x03\x03\x61\x00\x62\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_DOMAIN_BYTE, 1 },
	{ "domain newline", K_REQUEST,
	  S("\x05\x01\x00\x03\x02"
	    "a\n\x00\x50"),
	  KS_ERR_PROTO, SOCKS5_FAULT_DOMAIN_BYTE, 1 },
	{ "domain del", K_REQUEST, S("\x05\x01\x00\x03\x01\x7f"), KS_ERR_PROTO,
	  SOCKS5_FAULT_DOMAIN_BYTE, 1 },
	{ "udp rsv", K_UDP, S("\x00\x01\x00\x01\x7f\x00\x00\x01\x00\x35"), KS_ERR_PROTO,
	  SOCKS5_FAULT_RSV, 1 },
	{ "udp short", K_UDP, S("\x00\x00\x00\x01\x7f\x00"), KS_ERR_PROTO, SOCKS5_FAULT_TRUNCATED,
	  1 },
	{ "udp empty", K_UDP, S(""), KS_ERR_PROTO, SOCKS5_FAULT_TRUNCATED, 1 },
	{ "udp atyp 5", K_UDP, S("\x00\x00\x00\x05"), KS_ERR_UNSUPPORTED, SOCKS5_FAULT_ATYP, 8 },
	{ "method reply v4", K_METHOD, S("\x04\x00"), KS_ERR_PROTO, SOCKS5_FAULT_VERSION, -1 },
	{ "auth reply v5", K_AUTH_REPLY, S("\x05\x00"), KS_ERR_PROTO, SOCKS5_FAULT_VERSION, -1 },
	{ "reply rep 9", K_REPLY, S("\x05\x09\x00\x01\x00\x00\x00\x00\x00\x00"), KS_ERR_PROTO,
	  SOCKS5_FAULT_REP, 1 },
	{ "reply rsv", K_REPLY, S("\x05\x00\x07\x01\x00\x00\x00\x00\x00\x00"), KS_ERR_PROTO,
	  SOCKS5_FAULT_RSV, 1 },
	{ "reply atyp 2", K_REPLY, S("\x05\x00\x00\x02"), KS_ERR_UNSUPPORTED, SOCKS5_FAULT_ATYP,
	  8 },
	{ "reply v4", K_REPLY, S("\x00\x5a\x00\x00\x00\x00\x00\x00"), KS_ERR_PROTO,
	  SOCKS5_FAULT_VERSION, -1 },
};

static void bad_vectors_fail_with_their_fault(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		const struct bad *b = &bads[i];
		struct res r = parse(b->kind, b->in, b->len);
		uint8_t rep = 0xee;
		bool send;

		print_message("%s\n", b->name);
		assert_int_equal(r.rc, b->rc);
		assert_int_equal(r.fault, b->fault);
		assert_int_equal(r.enc_len, 0);
		send = socks5_fault_reply(r.fault, &rep);
		assert_int_equal(send ? rep : -1, b->rep);
		if (b->kind != K_UDP)
			check_every_split(b->kind, b->in, b->len);
	}
}

static void udp_header_prefixes_are_truncated(void **state)
{
	(void)state;
	const uint8_t *in = (const uint8_t *)"\x00\x00\x00\x03\x03"
	                                     "a.b\x00\x35xyz";
	struct socks5_udp_header h;
	enum socks5_fault f;

	for (size_t p = 0; p < 10; p++) {
		assert_int_equal(socks5_parse_udp_header(in, p, &h, &f), KS_ERR_PROTO);
		assert_int_equal(f, SOCKS5_FAULT_TRUNCATED);
	}
	for (size_t p = 10; p <= 13; p++) {
		assert_int_equal(socks5_parse_udp_header(in, p, &h, &f), 10);
		assert_int_equal(h.data_len, p - 10);
	}
}

static void failed_parse_leaves_output_alone(void **state)
{
	(void)state;
	struct socks5_request q, before;

	memset(&q, 0x5a, sizeof q);
	before = q;
	assert_int_equal(socks5_parse_request(S("\x05\x01\x00\x03\x05"
	                                        "abc"),
	                                      &q, NULL),
	                 KS_ERR_AGAIN);
	assert_memory_equal(&q, &before, sizeof q);
	assert_int_equal(socks5_parse_request(S("\x05\x01\x00\x03\x02\x61\x01"), &q, NULL),
	                 KS_ERR_PROTO);
	assert_memory_equal(&q, &before, sizeof q);
}

static void fault_reply_maps_every_fault(void **state)
{
	(void)state;
	uint8_t rep;

	assert_false(socks5_fault_reply(SOCKS5_FAULT_VERSION, &rep));
	for (int f = SOCKS5_FAULT_NONE; f <= SOCKS5_FAULT_AUTH; f++) {
		assert_string_not_equal(socks5_fault_name((enum socks5_fault)f), "unknown fault");
		if (f == SOCKS5_FAULT_VERSION)
			continue;
		assert_true(socks5_fault_reply((enum socks5_fault)f, &rep));
		assert_int_equal(rep, f == SOCKS5_FAULT_CMD ? 7 : f == SOCKS5_FAULT_ATYP ? 8 : 1);
	}
}

static void rep_codes_have_names_and_errno_map(void **state)
{
	(void)state;
	static const struct {
		int err;
		uint8_t rep;
	} map[] = {
		{ 0, 0 },
		{ EPIPE, 1 },
		{ EACCES, 2 },
		{ EPERM, 2 },
		{ ENETUNREACH, 3 },
		{ ENETDOWN, 3 },
		{ EHOSTUNREACH, 4 },
		{ EHOSTDOWN, 4 },
		{ ECONNREFUSED, 5 },
		{ ETIMEDOUT, 6 },
		{ ENOMEM, 1 },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		assert_int_equal(socks5_rep_from_errno(map[i].err), map[i].rep);
	assert_string_equal(socks5_rep_name(0), "succeeded");
	assert_string_equal(socks5_rep_name(5), "connection refused");
	assert_string_equal(socks5_rep_name(8), "address type not supported");
	for (int rep = 0; rep <= SOCKS5_REP_LAST; rep++)
		assert_string_not_equal(socks5_rep_name((uint8_t)rep), "unassigned");
	assert_string_equal(socks5_rep_name(9), "unassigned");
}

/* --- encoders -------------------------------------------------------------- */

static void reply_encodes_every_code_and_address(void **state)
{
	(void)state;
	static const uint8_t v4[4] = { 192, 0, 2, 7 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 9 };
	struct socks5_addr a4, a6, ad;
	uint8_t out[SOCKS5_REPLY_MAX];
	uint8_t want[SOCKS5_REPLY_MAX];

	socks5_addr_ipv4(&a4, v4, 1080);
	socks5_addr_ipv6(&a6, v6, 443);
	assert_int_equal(socks5_addr_domain(&ad, "proxy.test", 10, 8080), 0);
	for (uint8_t rep = 0; rep <= SOCKS5_REP_LAST; rep++) {
		memcpy(want, "\x05\x00\x00\x01\xc0\x00\x02\x07\x04\x38", 10);
		want[1] = rep;
		assert_int_equal(socks5_encode_reply(out, sizeof out, rep, &a4), 10);
		assert_memory_equal(out, want, 10);
		check_every_split(K_REPLY, out, 10);

		memcpy(want, "\x05\x00\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09\x01\xbb",
		       22);
		want[1] = rep;
		assert_int_equal(socks5_encode_reply(out, sizeof out, rep, &a6), 22);
		assert_memory_equal(out, want, 22);

		memcpy(want,
		       "\x05\x00\x00\x03\x0a"
		       "proxy.test\x1f\x90",
		       17);
		want[1] = rep;
		assert_int_equal(socks5_encode_reply(out, sizeof out, rep, &ad), 17);
		assert_memory_equal(out, want, 17);

		memcpy(want, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
		want[1] = rep;
		assert_int_equal(socks5_encode_reply(out, sizeof out, rep, NULL), 10);
		assert_memory_equal(out, want, 10);
	}
	assert_int_equal(socks5_encode_reply(out, sizeof out, 9, NULL), KS_ERR_INVAL);
}

static void encoders_write_golden_bytes(void **state)
{
	(void)state;
	static const uint8_t lo[4] = { 127, 0, 0, 1 };
	struct socks5_addr a;
	uint8_t out[SOCKS5_AUTH_REQUEST_MAX];

	assert_int_equal(socks5_encode_greeting(out, sizeof out, S("\x00\x02")), 4);
	assert_memory_equal(out, "\x05\x02\x00\x02", 4);
	assert_int_equal(socks5_encode_method_reply(out, sizeof out, 0xff), 2);
	assert_memory_equal(out, "\x05\xff", 2);
	assert_int_equal(socks5_encode_auth_request(out, sizeof out, S("bob"), S("pw")), 8);
	assert_memory_equal(out,
	                    "\x01\x03"
	                    "bob\x02"
	                    "pw",
	                    8);
	assert_int_equal(socks5_encode_auth_reply(out, sizeof out, 1), 2);
	assert_memory_equal(out, "\x01\x01", 2);
	socks5_addr_ipv4(&a, lo, 80);
	assert_int_equal(socks5_encode_request(out, sizeof out, SOCKS5_CMD_BIND, &a), 10);
	assert_memory_equal(out, "\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 10);
	assert_int_equal(socks5_encode_udp_header(out, sizeof out, 1, &a), 10);
	assert_memory_equal(out, "\x00\x00\x01\x01\x7f\x00\x00\x01\x00\x50", 10);
}

static void encoders_refuse_what_the_wire_cannot_carry(void **state)
{
	(void)state;
	static const uint8_t lo[4] = { 127, 0, 0, 1 };
	uint8_t big[300] = { 0 }, out[600];
	struct socks5_addr a;

	assert_int_equal(socks5_encode_greeting(out, sizeof out, big, 0), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_greeting(out, sizeof out, big, 256), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_greeting(out, sizeof out, big, 255), 257);
	assert_int_equal(socks5_encode_greeting(out, 256, big, 255), KS_ERR_FULL);
	assert_int_equal(socks5_encode_auth_request(out, sizeof out, big, 0, big, 1), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_auth_request(out, sizeof out, big, 1, big, 256),
	                 KS_ERR_INVAL);
	assert_int_equal(socks5_encode_auth_request(out, sizeof out, big, 255, big, 255), 513);
	assert_int_equal(socks5_encode_auth_request(out, 512, big, 255, big, 255), KS_ERR_FULL);
	assert_int_equal(socks5_encode_method_reply(out, 1, 0), KS_ERR_FULL);
	assert_int_equal(socks5_encode_auth_reply(out, 0, 0), KS_ERR_FULL);

	socks5_addr_ipv4(&a, lo, 1);
	assert_int_equal(socks5_encode_request(out, sizeof out, 0, &a), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_request(out, sizeof out, 4, &a), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_request(out, 9, SOCKS5_CMD_CONNECT, &a), KS_ERR_FULL);
	a.type = 2;
	assert_int_equal(socks5_encode_request(out, sizeof out, 1, &a), KS_ERR_INVAL);
	assert_int_equal(socks5_encode_udp_header(out, sizeof out, 0, &a), KS_ERR_INVAL);
	a.type = SOCKS5_ATYP_DOMAIN; /* domain_len 0 */
	assert_int_equal(socks5_encode_reply(out, sizeof out, 0, &a), KS_ERR_INVAL);

	assert_int_equal(socks5_addr_domain(&a, "", 0, 1), KS_ERR_INVAL);
	assert_int_equal(socks5_addr_domain(&a, "a\0b", 3, 1), KS_ERR_INVAL);
	memset(big, 'a', sizeof big);
	assert_int_equal(socks5_addr_domain(&a, (const char *)big, 256, 1), KS_ERR_INVAL);
	assert_int_equal(socks5_addr_domain(&a, (const char *)big, 255, 1), 0);
	assert_int_equal(socks5_encode_request(out, sizeof out, 1, &a), 262);
	assert_int_equal(socks5_encode_request(out, 261, 1, &a), KS_ERR_FULL);
	check_every_split(K_REQUEST, out, 262);
}

/* random addresses of every type round-trip through request, reply and UDP */
static void random_roundtrips(void **state)
{
	(void)state;
	struct prng g;
	uint8_t out[SOCKS5_REQUEST_MAX + 8];

	prng_seed(&g, 0x50c55);
	for (int i = 0; i < 3000; i++) {
		struct socks5_addr a;
		uint8_t raw[SOCKS5_DOMAIN_MAX];
		uint16_t port = (uint16_t)prng_next(&g);
		size_t n = 1 + prng_below(&g, SOCKS5_DOMAIN_MAX);
		ssize_t w;
		struct res r;

		prng_fill(&g, raw, sizeof raw);
		switch (prng_below(&g, 3)) {
		case 0: socks5_addr_ipv4(&a, raw, port); break;
		case 1: socks5_addr_ipv6(&a, raw, port); break;
		default:
			for (size_t j = 0; j < n; j++)
				raw[j] = (uint8_t)(0x20 + raw[j] % 0x5f); /* 0x20..0x7e */
			assert_int_equal(socks5_addr_domain(&a, (char *)raw, n, port), 0);
		}
		w = socks5_encode_request(out, sizeof out, (uint8_t)(1 + i % 3), &a);
		assert_true(w > 0);
		r = parse(K_REQUEST, out, (size_t)w);
		assert_int_equal(r.rc, w);
		assert_memory_equal(&r.addr, &a, sizeof a);
		w = socks5_encode_reply(out, sizeof out, (uint8_t)(i % 9), &a);
		r = parse(K_REPLY, out, (size_t)w);
		assert_int_equal(r.rc, w);
		assert_int_equal(r.code, i % 9);
		assert_memory_equal(&r.addr, &a, sizeof a);
		w = socks5_encode_udp_header(out, sizeof out, (uint8_t)i, &a);
		r = parse(K_UDP, out, (size_t)w);
		assert_int_equal(r.rc, w);
		assert_memory_equal(&r.addr, &a, sizeof a);
	}
}

/* --- formatting ------------------------------------------------------------ */

static void fmt_is(const struct socks5_addr *a, const char *want)
{
	char buf[SOCKS5_ADDR_TEXT_MAX];
	ssize_t n = socks5_addr_format(a, buf, sizeof buf);

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
	/* exactly enough room works, one byte less does not */
	assert_int_equal(socks5_addr_format(a, buf, strlen(want) + 1), n);
	assert_int_equal(socks5_addr_format(a, buf, strlen(want)), KS_ERR_FULL);
	assert_string_equal(buf, "");
}

static void ipv6_is(const char *text, uint16_t port, const char *want)
{
	uint8_t ip[16];
	struct socks5_addr a;

	assert_int_equal(inet_pton(AF_INET6, text, ip), 1);
	socks5_addr_ipv6(&a, ip, port);
	fmt_is(&a, want);
}

static void formats_addresses(void **state)
{
	(void)state;
	static const uint8_t v4[4] = { 192, 0, 2, 255 };
	struct socks5_addr a;
	char buf[SOCKS5_ADDR_TEXT_MAX];
	uint8_t name[SOCKS5_DOMAIN_MAX];

	socks5_addr_ipv4(&a, v4, 0);
	fmt_is(&a, "192.0.2.255:0");
	ipv6_is("::1", 80, "[::1]:80");
	ipv6_is("::", 65535, "[::]:65535");
	ipv6_is("1::", 1, "[1::]:1");
	ipv6_is("2001:DB8:0:0:0:0:0:1", 443, "[2001:db8::1]:443");
	ipv6_is("2001:db8:0:1:1:1:1:1", 2, "[2001:db8:0:1:1:1:1:1]:2");
	ipv6_is("2001:0:0:1:0:0:0:1", 3, "[2001:0:0:1::1]:3");
	ipv6_is("2001:db8:0:0:1:0:0:1", 4, "[2001:db8::1:0:0:1]:4");
	ipv6_is("fe80::abcd:0ef0", 5, "[fe80::abcd:ef0]:5");
	ipv6_is("::ffff:192.0.2.1", 6, "[::ffff:192.0.2.1]:6");
	ipv6_is("1:2:3:4:5:6:7:0", 7, "[1:2:3:4:5:6:7:0]:7");
	ipv6_is("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 8,
	        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:8");

	assert_int_equal(socks5_addr_domain(&a, "example.com", 11, 443), 0);
	fmt_is(&a, "example.com:443");
	assert_int_equal(socks5_addr_domain(&a, "a b\\\xc3\xa9", 6, 1), 0);
	fmt_is(&a, "a\\x20b\\x5c\\xc3\\xa9:1");

	/* the longest text: 255 escaped bytes */
	memset(name, 0xff, sizeof name);
	assert_int_equal(socks5_addr_domain(&a, (char *)name, sizeof name, 65535), 0);
	assert_int_equal(socks5_addr_format(&a, buf, sizeof buf), SOCKS5_ADDR_TEXT_MAX - 1);

	a.type = 2;
	assert_int_equal(socks5_addr_format(&a, buf, sizeof buf), KS_ERR_INVAL);
}

/* Our IPv6 text must match glibc's inet_ntop (RFC 5952) on addresses with
 * many zero groups, except the deprecated IPv4-compatible ::a.b.c.d form
 * that glibc still prints and RFC 5952 does not ask for. */
static void ipv6_matches_inet_ntop(void **state)
{
	(void)state;
	struct prng g;

	prng_seed(&g, 6);
	for (int i = 0; i < 20000; i++) {
		uint8_t ip[16] = { 0 };
		char want[INET6_ADDRSTRLEN + 16], ntop[INET6_ADDRSTRLEN], got[SOCKS5_ADDR_TEXT_MAX];
		struct socks5_addr a;
		bool compat = true;

		for (int j = 0; j < 8; j++)
			if (prng_below(&g, 2)) {
				uint16_t v = (uint16_t)prng_below(&g, 4) == 0
				                     ? 0xffff
				                     : (uint16_t)prng_next(&g);
				ip[2 * j] = (uint8_t)(v >> 8);
				ip[2 * j + 1] = (uint8_t)v;
			}
		for (int j = 0; j < 12; j++)
			compat = compat && ip[j] == 0;
		if (compat && (ip[12] | ip[13]) != 0)
			continue;
		assert_non_null(inet_ntop(AF_INET6, ip, ntop, sizeof ntop));
		snprintf(want, sizeof want, "[%s]:9", ntop);
		socks5_addr_ipv6(&a, ip, 9);
		assert_true(socks5_addr_format(&a, got, sizeof got) > 0);
		assert_string_equal(got, want);
	}
}

/* --- credentials ------------------------------------------------------------ */

static void secret_equal_is_exact(void **state)
{
	(void)state;
	uint8_t big[256] = { 0 };

	assert_true(socks5_secret_equal(S("secret"), S("secret")));
	assert_false(socks5_secret_equal(S("secret"), S("secreT")));
	assert_false(socks5_secret_equal(S("secret"), S("secre")));
	assert_false(socks5_secret_equal(S("ab"), S("ab\0")));
	assert_false(socks5_secret_equal(S(""), S("\0")));
	assert_true(socks5_secret_equal(S(""), S("")));
	assert_true(socks5_secret_equal(big, 255, big, 255));
	assert_false(socks5_secret_equal(big, 256, big, 256));
	assert_false(socks5_secret_equal(big, 255, big, 256));
}

static const struct socks5_cred creds[] = {
	{ S("alice"), S("wonderland") },
	{ S("bob"), S("builder") },
};
static const struct socks5_cred_table table = { creds, 2 };

static void cred_table_checks_user_and_password_together(void **state)
{
	(void)state;
	void *t = (void *)&table;
	struct socks5_cred_table empty = { NULL, 0 };

	assert_true(socks5_cred_table_verify(S("alice"), S("wonderland"), t));
	assert_true(socks5_cred_table_verify(S("bob"), S("builder"), t));
	assert_false(socks5_cred_table_verify(S("bob"), S("wonderland"), t));
	assert_false(socks5_cred_table_verify(S("alice"), S("wonderlan"), t));
	assert_false(socks5_cred_table_verify(S("carol"), S("builder"), t));
	assert_false(socks5_cred_table_verify(S("bob"), S("builder"), &empty));
}

/* --- server state machine -------------------------------------------------- */

struct run {
	int rc;
	enum socks5_fault fault;
	int rep;         /* step.rep of the last feed */
	uint8_t out[64]; /* everything sent to the client */
	size_t out_len;
	uint8_t raw[SOCKS5_REQUEST_MAX]; /* the request's raw bytes */
	size_t raw_len;
	struct socks5_addr dst;
	uint8_t cmd;
	size_t left;            /* bytes not consumed: early data */
	uint8_t buf[1024];      /* the caller's buffer after the run */
	size_t feeds, max_have; /* how the run went */
};

static void take_step(struct run *u, const struct socks5_step *st, int rc)
{
	assert_true(u->out_len + st->out_len <= sizeof u->out);
	memcpy(u->out + u->out_len, st->out, st->out_len);
	u->out_len += st->out_len;
	u->rc = rc;
	u->fault = st->fault;
	u->rep = st->rep;
	if (rc == 0) {
		memcpy(u->raw, st->request.raw, st->request.raw_len);
		u->raw_len = st->request.raw_len;
		u->dst = st->request.dst;
		u->cmd = st->request.cmd;
	}
}

/* serve plays a daemon: receive chunks ending at cuts[], feed what it holds,
 * send step->out, drop step->consumed. */
static struct run serve(const struct socks5_server_config *cfg, const uint8_t *in, size_t len,
                        const size_t *cuts, size_t ncuts)
{
	struct socks5_server s;
	struct socks5_step st;
	struct run u;
	size_t have = 0, pos = 0;

	memset(&u, 0, sizeof u);
	u.rc = KS_ERR_AGAIN;
	assert_int_equal(socks5_server_init(&s, cfg), 0);
	for (size_t i = 0; i <= ncuts && u.rc == KS_ERR_AGAIN; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		memcpy(u.buf + have, in + pos, to - pos);
		have += to - pos;
		pos = to;
		u.max_have = have > u.max_have ? have : u.max_have;
		take_step(&u, &st, socks5_server_feed(&s, u.buf, have, &st));
		u.feeds++;
		assert_true(st.consumed <= have);
		memmove(u.buf, u.buf + st.consumed, have - st.consumed);
		have -= st.consumed;
	}
	u.left = have + (len - pos);
	assert_int_equal(s.state, u.rc == 0              ? SOCKS5_SERVER_DONE
	                          : u.rc == KS_ERR_AGAIN ? s.state
	                                                 : SOCKS5_SERVER_FAILED);
	if (u.rc != KS_ERR_AGAIN) {
		assert_int_equal(socks5_server_feed(&s, u.buf, have, &st), KS_ERR_STATE);
		assert_int_equal(st.out_len + st.consumed, 0);
	}
	return u;
}

static void assert_same_run(const struct run *a, const struct run *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->fault, b->fault);
	assert_int_equal(a->rep, b->rep);
	assert_int_equal(a->out_len, b->out_len);
	assert_memory_equal(a->out, b->out, a->out_len);
	assert_int_equal(a->raw_len, b->raw_len);
	assert_memory_equal(a->raw, b->raw, a->raw_len);
	assert_memory_equal(&a->dst, &b->dst, sizeof a->dst);
	assert_int_equal(a->cmd, b->cmd);
	assert_int_equal(a->left, b->left);
}

/* serve_every_split runs in[] whole, in every two-way split and one byte at
 * a time, checks the runs agree and returns the whole one. */
static struct run serve_every_split(const struct socks5_server_config *cfg, const uint8_t *in,
                                    size_t len)
{
	struct run whole = serve(cfg, in, len, NULL, 0), r;
	size_t cuts[1024];

	assert_true(len <= sizeof cuts / sizeof cuts[0]);
	for (size_t cut = 0; cut <= len; cut++) {
		r = serve(cfg, in, len, &cut, 1);
		assert_same_run(&whole, &r);
	}
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	r = serve(cfg, in, len, cuts, len);
	assert_same_run(&whole, &r);
	assert_true(r.max_have <= SOCKS5_MESSAGE_MAX);
	return whole;
}

static const struct socks5_server_config noauth = { SOCKS5_METHOD_NONE, NULL, NULL };
static const struct socks5_server_config userpass = { SOCKS5_METHOD_USERPASS,
	                                              socks5_cred_table_verify, (void *)&table };

static void server_noauth_pipelined(void **state)
{
	(void)state;
	struct run u = serve_every_split(&noauth, S("\x05\x02\x02\x00"
	                                            "\x05\x01\x00\x03\x09localhost\x00\x50"
	                                            "GET /"));

	assert_int_equal(u.rc, 0);
	assert_int_equal(u.fault, SOCKS5_FAULT_NONE);
	assert_int_equal(u.out_len, 2);
	assert_memory_equal(u.out, "\x05\x00", 2);
	assert_int_equal(u.raw_len, 16);
	assert_memory_equal(u.raw, "\x05\x01\x00\x03\x09localhost\x00\x50", 16);
	assert_string_equal(u.dst.domain, "localhost");
	assert_int_equal(u.dst.port, 80);
	assert_int_equal(u.left, 5);
	assert_memory_equal(u.buf, "GET /", 5);
}

static void server_userpass_ok_and_wiped(void **state)
{
	(void)state;
	struct run u = serve_every_split(&userpass, S("\x05\x02\x00\x02"
	                                              "\x01\x03"
	                                              "bob\x07"
	                                              "builder"
	                                              "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"));
	struct socks5_server s;
	struct socks5_step st;
	uint8_t buf[] = "\x01\x05"
	                "alice\x0a"
	                "wonderland";

	assert_int_equal(u.rc, 0);
	assert_int_equal(u.out_len, 4);
	assert_memory_equal(u.out, "\x05\x02\x01\x00", 4);
	assert_int_equal(u.cmd, SOCKS5_CMD_UDP_ASSOCIATE);
	assert_int_equal(u.left, 0);

	/* the checked RFC 1929 bytes are zero in the caller's buffer */
	assert_int_equal(socks5_server_init(&s, &userpass), 0);
	s.state = SOCKS5_SERVER_AUTH;
	assert_int_equal(socks5_server_feed(&s, buf, sizeof buf - 1, &st), KS_ERR_AGAIN);
	assert_int_equal(st.consumed, sizeof buf - 1);
	for (size_t i = 0; i < sizeof buf; i++)
		assert_int_equal(buf[i], 0);
}

struct server_case {
	const char *name;
	const struct socks5_server_config *cfg;
	const uint8_t *in;
	size_t len;
	int rc;
	enum socks5_fault fault;
	const uint8_t *out;
	size_t out_len;
};

static const struct server_case server_cases[] = {
	{ "wrong password", &userpass,
	  S("\x05\x01\x02\x01\x03"
	    "bob\x03"
	    "bad"),
	  KS_ERR_AUTH, SOCKS5_FAULT_AUTH, S("\x05\x02\x01\x01") },
	{ "method not offered", &userpass, S("\x05\x01\x00"), KS_ERR_AUTH, SOCKS5_FAULT_NO_METHOD,
	  S("\x05\xff") },
	{ "noauth not offered", &noauth, S("\x05\x02\x01\x02"), KS_ERR_AUTH, SOCKS5_FAULT_NO_METHOD,
	  S("\x05\xff") },
	{ "greeting v4", &noauth, S("\x04\x01\x00\x50\x7f\x00\x00\x01\x00"), KS_ERR_PROTO,
	  SOCKS5_FAULT_VERSION, S("") },
	{ "nmethods 0", &noauth, S("\x05\x00"), KS_ERR_PROTO, SOCKS5_FAULT_NMETHODS,
	  S("\x05\xff") },
	{ "auth version", &userpass, S("\x05\x01\x02\x05\x01u\x01p"), KS_ERR_PROTO,
	  SOCKS5_FAULT_VERSION, S("\x05\x02") },
	{ "ulen 0", &userpass, S("\x05\x01\x02\x01\x00"), KS_ERR_PROTO, SOCKS5_FAULT_ULEN,
	  S("\x05\x02\x01\x01") },
	{ "plen 0", &userpass, S("\x05\x01\x02\x01\x01u\x00"), KS_ERR_PROTO, SOCKS5_FAULT_PLEN,
	  S("\x05\x02\x01\x01") },
	{ "request v4", &noauth, S("\x05\x01\x00\x04\x01\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_VERSION, S("\x05\x00") },
	{ "cmd 9", &noauth, S("\x05\x01\x00\x05\x09\x00\x01"), KS_ERR_UNSUPPORTED, SOCKS5_FAULT_CMD,
	  S("\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ "atyp 2", &noauth, S("\x05\x01\x00\x05\x01\x00\x02"), KS_ERR_UNSUPPORTED,
	  SOCKS5_FAULT_ATYP, S("\x05\x00\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ "rsv", &userpass,
	  S("\x05\x01\x02\x01\x05"
	    "alice\x0a"
	    "wonderland\x05\x01\x01"),
	  KS_ERR_PROTO, SOCKS5_FAULT_RSV,
	  S("\x05\x02\x01\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ "domain nul", &noauth, S("\x05\x01\x00\x05\x01\x00\x03\x01\x00\x00\x50"), KS_ERR_PROTO,
	  SOCKS5_FAULT_DOMAIN_BYTE, S("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ "domain len 0", &noauth, S("\x05\x01\x00\x05\x01\x00\x03\x00"), KS_ERR_PROTO,
	  SOCKS5_FAULT_DOMAIN_LEN, S("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00") },
	{ "incomplete", &noauth, S("\x05\x01\x00\x05\x01\x00\x01\x7f"), KS_ERR_AGAIN,
	  SOCKS5_FAULT_NONE, S("\x05\x00") },
};

static void server_refuses_with_the_right_answer(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof server_cases / sizeof server_cases[0]; i++) {
		const struct server_case *c = &server_cases[i];
		struct run u;

		print_message("%s\n", c->name);
		u = serve_every_split(c->cfg, c->in, c->len);
		assert_int_equal(u.rc, c->rc);
		assert_int_equal(u.fault, c->fault);
		assert_int_equal(u.out_len, c->out_len);
		assert_memory_equal(u.out, c->out, c->out_len);
		/* out is the one answer: a refused request ends with one S5
		 * reply whose REP step.rep names; anything else has no REP */
		if (u.rc == KS_ERR_PROTO || u.rc == KS_ERR_UNSUPPORTED || u.rc == KS_ERR_AUTH) {
			bool request = c->out_len >= 10 && c->out[c->out_len - 10] == 0x05 &&
			               c->fault != SOCKS5_FAULT_AUTH &&
			               c->fault != SOCKS5_FAULT_NMETHODS &&
			               c->fault != SOCKS5_FAULT_ULEN &&
			               c->fault != SOCKS5_FAULT_PLEN;
			assert_int_equal(u.rep, request ? c->out[c->out_len - 9] : -1);
		} else {
			assert_int_equal(u.rep, -1);
		}
	}
}

static void server_init_checks_config(void **state)
{
	(void)state;
	struct socks5_server s = { SOCKS5_SERVER_FAILED };
	struct socks5_server_config c = { SOCKS5_METHOD_GSSAPI, NULL, NULL };

	assert_int_equal(socks5_server_init(&s, &c), KS_ERR_INVAL);
	c.method = SOCKS5_METHOD_USERPASS;
	assert_int_equal(socks5_server_init(&s, &c), KS_ERR_INVAL);
	assert_int_equal(s.state, SOCKS5_SERVER_FAILED);
	c.verify = socks5_cred_table_verify;
	assert_int_equal(socks5_server_init(&s, &c), 0);
	assert_int_equal(s.state, SOCKS5_SERVER_GREETING);
}

/* Regression: an empty input may come without a buffer. Every parser and
 * the server step take (NULL, 0) as "need more" without offsetting the
 * NULL (socks5_server_feed computed in + 0, undefined in C; clang
 * -fsanitize=undefined reported it). */
static void empty_input_without_a_buffer(void **state)
{
	(void)state;
	struct socks5_server_config cfg = { .method = SOCKS5_METHOD_NONE };
	struct socks5_server s;
	struct socks5_step st;
	struct socks5_greeting g;
	struct socks5_request q;
	struct socks5_udp_header h;
	enum socks5_fault f;

	assert_int_equal(socks5_server_init(&s, &cfg), 0);
	assert_int_equal(socks5_server_feed(&s, NULL, 0, &st), KS_ERR_AGAIN);
	assert_int_equal(st.consumed, 0);
	assert_int_equal(st.out_len, 0);
	assert_int_equal(s.state, SOCKS5_SERVER_GREETING);
	assert_int_equal(socks5_parse_greeting(NULL, 0, &g, &f), KS_ERR_AGAIN);
	assert_int_equal(socks5_parse_request(NULL, 0, &q, &f), KS_ERR_AGAIN);
	assert_int_equal(socks5_parse_udp_header(NULL, 0, &h, &f), KS_ERR_PROTO);
	assert_int_equal(f, SOCKS5_FAULT_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_vectors_parse_split_and_roundtrip),
		cmocka_unit_test(parsed_fields_are_right),
		cmocka_unit_test(bad_vectors_fail_with_their_fault),
		cmocka_unit_test(udp_header_prefixes_are_truncated),
		cmocka_unit_test(failed_parse_leaves_output_alone),
		cmocka_unit_test(fault_reply_maps_every_fault),
		cmocka_unit_test(rep_codes_have_names_and_errno_map),
		cmocka_unit_test(reply_encodes_every_code_and_address),
		cmocka_unit_test(encoders_write_golden_bytes),
		cmocka_unit_test(encoders_refuse_what_the_wire_cannot_carry),
		cmocka_unit_test(random_roundtrips),
		cmocka_unit_test(formats_addresses),
		cmocka_unit_test(ipv6_matches_inet_ntop),
		cmocka_unit_test(secret_equal_is_exact),
		cmocka_unit_test(cred_table_checks_user_and_password_together),
		cmocka_unit_test(server_noauth_pipelined),
		cmocka_unit_test(server_userpass_ok_and_wiped),
		cmocka_unit_test(server_refuses_with_the_right_answer),
		cmocka_unit_test(server_init_checks_config),
		cmocka_unit_test(empty_input_without_a_buffer),
	};
	return cmocka_run_group_tests_name("socks5", tests, NULL, NULL);
}
