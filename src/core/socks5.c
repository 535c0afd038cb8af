/* socks5.c - RFC 1928/1929 incremental parser, encoder and server steps.
 *
 * Parsers are stateless over the bytes they are given: they walk a struct rd
 * field by field in wire order, answer "need more" the moment a field is
 * missing and fail the moment a present field is bad. That order is what
 * makes the result independent of how the input was split.
 */
#include "core/socks5.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "base/rd.h"
#include "base/wr.h"

/* --- faults ------------------------------------------------------------ */

const char *socks5_fault_name(enum socks5_fault f)
{
	switch (f) {
	case SOCKS5_FAULT_NONE: return "none";
	case SOCKS5_FAULT_VERSION: return "bad version";
	case SOCKS5_FAULT_NMETHODS: return "no methods";
	case SOCKS5_FAULT_ULEN: return "empty username";
	case SOCKS5_FAULT_PLEN: return "empty password";
	case SOCKS5_FAULT_CMD: return "unknown command";
	case SOCKS5_FAULT_RSV: return "reserved field not zero";
	case SOCKS5_FAULT_ATYP: return "unknown address type";
	case SOCKS5_FAULT_DOMAIN_LEN: return "empty domain";
	case SOCKS5_FAULT_DOMAIN_BYTE: return "control byte in domain";
	case SOCKS5_FAULT_REP: return "unknown reply code";
	case SOCKS5_FAULT_TRUNCATED: return "truncated datagram";
	case SOCKS5_FAULT_NO_METHOD: return "no acceptable method";
	case SOCKS5_FAULT_AUTH: return "credentials refused";
	}
	return "unknown fault";
}

bool socks5_fault_reply(enum socks5_fault f, uint8_t *rep)
{
	switch (f) {
	case SOCKS5_FAULT_VERSION: return false;
	case SOCKS5_FAULT_CMD: *rep = SOCKS5_REP_CMD_UNSUPPORTED; return true;
	case SOCKS5_FAULT_ATYP: *rep = SOCKS5_REP_ATYP_UNSUPPORTED; return true;
	default: *rep = SOCKS5_REP_GENERAL_FAILURE; return true;
	}
}

const char *socks5_rep_name(uint8_t rep)
{
	switch (rep) {
	case SOCKS5_REP_SUCCEEDED: return "succeeded";
	case SOCKS5_REP_GENERAL_FAILURE: return "general failure";
	case SOCKS5_REP_NOT_ALLOWED: return "not allowed by ruleset";
	case SOCKS5_REP_NET_UNREACHABLE: return "network unreachable";
	case SOCKS5_REP_HOST_UNREACHABLE: return "host unreachable";
	case SOCKS5_REP_CONN_REFUSED: return "connection refused";
	case SOCKS5_REP_TTL_EXPIRED: return "TTL expired";
	case SOCKS5_REP_CMD_UNSUPPORTED: return "command not supported";
	case SOCKS5_REP_ATYP_UNSUPPORTED: return "address type not supported";
	}
	return "unassigned";
}

uint8_t socks5_rep_from_errno(int err)
{
	switch (err) {
	case 0: return SOCKS5_REP_SUCCEEDED;
	case ENETUNREACH:
	case ENETDOWN: return SOCKS5_REP_NET_UNREACHABLE;
	case EHOSTUNREACH:
	case EHOSTDOWN: return SOCKS5_REP_HOST_UNREACHABLE;
	case ECONNREFUSED: return SOCKS5_REP_CONN_REFUSED;
	/* RFC 1928 has no "timed out"; 06 is what clients show for it. */
	case ETIMEDOUT: return SOCKS5_REP_TTL_EXPIRED;
	case EACCES:
	case EPERM: return SOCKS5_REP_NOT_ALLOWED;
	}
	return SOCKS5_REP_GENERAL_FAILURE;
}

/* fail records f and returns the code for it: the two "valid but not ours"
 * fields are KS_ERR_UNSUPPORTED, everything else is malformed. */
static int fail(enum socks5_fault *fault, enum socks5_fault f)
{
	if (fault)
		*fault = f;
	if (f == SOCKS5_FAULT_CMD || f == SOCKS5_FAULT_ATYP)
		return KS_ERR_UNSUPPORTED;
	return KS_ERR_PROTO;
}

static void clear_fault(enum socks5_fault *fault)
{
	if (fault)
		*fault = SOCKS5_FAULT_NONE;
}

/* --- addresses ----------------------------------------------------------- */

/* A domain is 1..255 bytes with no control byte: NUL would cut the C string
 * handed to the resolver, and CR/LF or ESC have no business in a host name. */
static bool domain_byte_ok(uint8_t c) { return c >= 0x20 && c != 0x7f; }

static bool domain_ok(const uint8_t *name, size_t len)
{
	if (len == 0 || len > SOCKS5_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!domain_byte_ok(name[i]))
			return false;
	return true;
}

void socks5_addr_ipv4(struct socks5_addr *a, const uint8_t ip[static 4], uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->type = SOCKS5_ATYP_IPV4;
	a->port = port;
	memcpy(a->ipv4, ip, 4);
}

void socks5_addr_ipv6(struct socks5_addr *a, const uint8_t ip[static 16], uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->type = SOCKS5_ATYP_IPV6;
	a->port = port;
	memcpy(a->ipv6, ip, 16);
}

int socks5_addr_domain(struct socks5_addr *a, const char *name, size_t len, uint16_t port)
{
	if (!domain_ok((const uint8_t *)name, len))
		return KS_ERR_INVAL;
	memset(a, 0, sizeof *a);
	a->type = SOCKS5_ATYP_DOMAIN;
	a->port = port;
	a->domain_len = (uint8_t)len;
	memcpy(a->domain, name, len);
	return 0;
}

/* read_addr reads ATYP ADDR PORT into *a (zeroed first). Returns 0,
 * KS_ERR_AGAIN, or a failure through fail(). */
static int read_addr(struct rd *r, struct socks5_addr *a, enum socks5_fault *fault)
{
	uint8_t atyp, n = 0;
	const uint8_t *v;
	size_t alen;

	memset(a, 0, sizeof *a);
	if (!rd_u8(r, &atyp))
		return KS_ERR_AGAIN;
	switch (atyp) {
	case SOCKS5_ATYP_IPV4: alen = 4; break;
	case SOCKS5_ATYP_IPV6: alen = 16; break;
	case SOCKS5_ATYP_DOMAIN:
		if (!rd_u8(r, &n))
			return KS_ERR_AGAIN;
		if (n == 0)
			return fail(fault, SOCKS5_FAULT_DOMAIN_LEN);
		alen = n;
		break;
	default: return fail(fault, SOCKS5_FAULT_ATYP);
	}
	if (!rd_view(r, &v, alen))
		return KS_ERR_AGAIN;
	if (atyp == SOCKS5_ATYP_DOMAIN && !domain_ok(v, alen))
		return fail(fault, SOCKS5_FAULT_DOMAIN_BYTE);
	if (!rd_u16be(r, &a->port))
		return KS_ERR_AGAIN;
	a->type = atyp;
	a->domain_len = n;
	memcpy(a->domain, v, alen); /* domain is the union's largest member */
	return 0;
}

static size_t addr_body_len(const struct socks5_addr *a)
{
	switch (a->type) {
	case SOCKS5_ATYP_IPV4: return 4;
	case SOCKS5_ATYP_IPV6: return 16;
	case SOCKS5_ATYP_DOMAIN: return a->domain_len;
	}
	return 0;
}

static bool addr_valid(const struct socks5_addr *a)
{
	if (a->type == SOCKS5_ATYP_DOMAIN)
		return domain_ok((const uint8_t *)a->domain, a->domain_len);
	return a->type == SOCKS5_ATYP_IPV4 || a->type == SOCKS5_ATYP_IPV6;
}

/* write_addr writes ATYP ADDR PORT; the address was checked by the caller. */
static bool write_addr(struct wr *w, const struct socks5_addr *a)
{
	if (!wr_u8(w, a->type))
		return false;
	if (a->type == SOCKS5_ATYP_DOMAIN && !wr_u8(w, a->domain_len))
		return false;
	return wr_bytes(w, a->domain, addr_body_len(a)) && wr_u16be(w, a->port);
}

/* --- text form ----------------------------------------------------------- */

static bool put_str(struct wr *w, const char *s) { return wr_bytes(w, s, strlen(s)); }

static bool put_dec(struct wr *w, unsigned v)
{
	char d[10];
	size_t n = 0;

	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof d);
	return wr_bytes(w, d + sizeof d - n, n);
}

static bool put_hex16(struct wr *w, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	bool started = false;

	for (int shift = 12; shift >= 0; shift -= 4) {
		unsigned nib = (v >> shift) & 0xf;
		if (nib == 0 && !started && shift > 0)
			continue; /* RFC 5952 4.1: no leading zeros */
		started = true;
		if (!wr_u8(w, (uint8_t)hex[nib]))
			return false;
	}
	return true;
}

static bool put_ipv4(struct wr *w, const uint8_t ip[static 4])
{
	for (int i = 0; i < 4; i++)
		if ((i && !wr_u8(w, '.')) || !put_dec(w, ip[i]))
			return false;
	return true;
}

/* longest_zero_run finds the first longest run of two or more zero groups
 * (RFC 5952 4.2.2, 4.2.3); *start is -1 when there is none. */
static void longest_zero_run(const uint16_t g[static 8], int *start, int *len)
{
	*start = -1;
	*len = 0;
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > *len && j - i >= 2) {
			*start = i;
			*len = j - i;
		}
		i = j > i ? j : i + 1;
	}
}

static bool put_ipv6(struct wr *w, const uint8_t ip[static 16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint16_t g[8];
	int zs, zl;

	if (memcmp(ip, mapped, sizeof mapped) == 0) /* RFC 5952 5 */
		return put_str(w, "::ffff:") && put_ipv4(w, ip + 12);
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(ip[2 * i] << 8 | ip[2 * i + 1]);
	longest_zero_run(g, &zs, &zl);
	for (int i = 0; i < 8;) {
		if (i == zs) {
			if (!put_str(w, "::"))
				return false;
			i += zl;
			continue;
		}
		if (i > 0 && i != zs + zl && !wr_u8(w, ':'))
			return false;
		if (!put_hex16(w, g[i++]))
			return false;
	}
	return true;
}

static bool put_domain(struct wr *w, const char *d, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)d[i];
		bool plain = c >= 0x21 && c <= 0x7e && c != '\\';
		if (plain ? !wr_u8(w, c)
		          : !(put_str(w, "\\x") && wr_u8(w, (uint8_t)hex[c >> 4]) &&
		              wr_u8(w, (uint8_t)hex[c & 0xf])))
			return false;
	}
	return true;
}

ssize_t socks5_addr_format(const struct socks5_addr *a, char *out, size_t cap)
{
	struct wr w = wr_init(out, cap);
	bool ok;

	switch (a->type) {
	case SOCKS5_ATYP_IPV4: ok = put_ipv4(&w, a->ipv4); break;
	case SOCKS5_ATYP_IPV6:
		ok = wr_u8(&w, '[') && put_ipv6(&w, a->ipv6) && wr_u8(&w, ']');
		break;
	case SOCKS5_ATYP_DOMAIN: ok = put_domain(&w, a->domain, a->domain_len); break;
	default: return KS_ERR_INVAL;
	}
	if (!ok || !wr_u8(&w, ':') || !put_dec(&w, a->port) || !wr_u8(&w, '\0')) {
		if (cap)
			out[0] = '\0';
		return KS_ERR_FULL;
	}
	return (ssize_t)wr_len(&w) - 1;
}

/* --- parsers: what a server reads ----------------------------------------- */

bool socks5_greeting_offers(const struct socks5_greeting *g, uint8_t method)
{
	return memchr(g->methods, method, g->nmethods) != NULL;
}

/* read_version is the first field of every message. */
static int read_version(struct rd *r, uint8_t want, enum socks5_fault *fault)
{
	uint8_t v;

	if (!rd_u8(r, &v))
		return KS_ERR_AGAIN;
	return v == want ? 0 : fail(fault, SOCKS5_FAULT_VERSION);
}

static ssize_t consumed(const struct rd *r, const uint8_t *in) { return (ssize_t)(r->p - in); }

ssize_t socks5_parse_greeting(const uint8_t *in, size_t len, struct socks5_greeting *out,
                              enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	struct socks5_greeting g;
	int rc;

	clear_fault(fault);
	if ((rc = read_version(&r, SOCKS5_VERSION, fault)) < 0)
		return rc;
	if (!rd_u8(&r, &g.nmethods))
		return KS_ERR_AGAIN;
	if (g.nmethods == 0)
		return fail(fault, SOCKS5_FAULT_NMETHODS);
	if (!rd_view(&r, &g.methods, g.nmethods))
		return KS_ERR_AGAIN;
	*out = g;
	return consumed(&r, in);
}

/* read_cred reads one RFC 1929 length-prefixed field (1..255 bytes). */
static int read_cred(struct rd *r, const uint8_t **v, size_t *n, enum socks5_fault empty,
                     enum socks5_fault *fault)
{
	uint8_t len;

	if (!rd_u8(r, &len))
		return KS_ERR_AGAIN;
	if (len == 0)
		return fail(fault, empty);
	if (!rd_view(r, v, len))
		return KS_ERR_AGAIN;
	*n = len;
	return 0;
}

ssize_t socks5_parse_auth_request(const uint8_t *in, size_t len, struct socks5_auth *out,
                                  enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	struct socks5_auth a;
	int rc;

	clear_fault(fault);
	if ((rc = read_version(&r, SOCKS5_AUTH_VERSION, fault)) < 0 ||
	    (rc = read_cred(&r, &a.user, &a.user_len, SOCKS5_FAULT_ULEN, fault)) < 0 ||
	    (rc = read_cred(&r, &a.pass, &a.pass_len, SOCKS5_FAULT_PLEN, fault)) < 0)
		return rc;
	*out = a;
	return consumed(&r, in);
}

ssize_t socks5_parse_request(const uint8_t *in, size_t len, struct socks5_request *out,
                             enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	struct socks5_request q;
	uint8_t rsv;
	int rc;

	clear_fault(fault);
	if ((rc = read_version(&r, SOCKS5_VERSION, fault)) < 0)
		return rc;
	if (!rd_u8(&r, &q.cmd))
		return KS_ERR_AGAIN;
	if (q.cmd < SOCKS5_CMD_CONNECT || q.cmd > SOCKS5_CMD_UDP_ASSOCIATE)
		return fail(fault, SOCKS5_FAULT_CMD);
	if (!rd_u8(&r, &rsv))
		return KS_ERR_AGAIN;
	if (rsv != 0)
		return fail(fault, SOCKS5_FAULT_RSV);
	if ((rc = read_addr(&r, &q.dst, fault)) < 0)
		return rc;
	q.raw = in;
	q.raw_len = (size_t)consumed(&r, in);
	*out = q;
	return consumed(&r, in);
}

ssize_t socks5_parse_udp_header(const uint8_t *in, size_t len, struct socks5_udp_header *out,
                                enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	struct socks5_udp_header h;
	uint16_t rsv;
	int rc = 0;

	clear_fault(fault);
	if (!rd_u16be(&r, &rsv))
		rc = KS_ERR_AGAIN;
	else if (rsv != 0)
		return fail(fault, SOCKS5_FAULT_RSV);
	else if (!rd_u8(&r, &h.frag))
		rc = KS_ERR_AGAIN;
	else
		rc = read_addr(&r, &h.dst, fault);
	if (rc == KS_ERR_AGAIN) /* a datagram is whole: short is malformed */
		return fail(fault, SOCKS5_FAULT_TRUNCATED);
	if (rc < 0)
		return rc;
	h.data = r.p;
	h.data_len = rd_left(&r);
	*out = h;
	return consumed(&r, in);
}

/* --- parsers: what a client reads ----------------------------------------- */

/* parse_pair reads the two-byte answers: VER then one free byte. */
static ssize_t parse_pair(const uint8_t *in, size_t len, uint8_t ver, uint8_t *val,
                          enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	uint8_t v;
	int rc;

	clear_fault(fault);
	if ((rc = read_version(&r, ver, fault)) < 0)
		return rc;
	if (!rd_u8(&r, &v))
		return KS_ERR_AGAIN;
	*val = v;
	return consumed(&r, in);
}

ssize_t socks5_parse_method_reply(const uint8_t *in, size_t len, uint8_t *method,
                                  enum socks5_fault *fault)
{
	return parse_pair(in, len, SOCKS5_VERSION, method, fault);
}

ssize_t socks5_parse_auth_reply(const uint8_t *in, size_t len, uint8_t *status,
                                enum socks5_fault *fault)
{
	return parse_pair(in, len, SOCKS5_AUTH_VERSION, status, fault);
}

ssize_t socks5_parse_reply(const uint8_t *in, size_t len, struct socks5_reply *out,
                           enum socks5_fault *fault)
{
	struct rd r = rd_init(in, len);
	struct socks5_reply p;
	uint8_t rsv;
	int rc;

	clear_fault(fault);
	if ((rc = read_version(&r, SOCKS5_VERSION, fault)) < 0)
		return rc;
	if (!rd_u8(&r, &p.rep))
		return KS_ERR_AGAIN;
	if (p.rep > SOCKS5_REP_LAST)
		return fail(fault, SOCKS5_FAULT_REP);
	if (!rd_u8(&r, &rsv))
		return KS_ERR_AGAIN;
	if (rsv != 0)
		return fail(fault, SOCKS5_FAULT_RSV);
	if ((rc = read_addr(&r, &p.bnd, fault)) < 0)
		return rc;
	*out = p;
	return consumed(&r, in);
}

/* --- encoders ------------------------------------------------------------ */

static ssize_t written(const struct wr *w, bool ok)
{
	return ok ? (ssize_t)wr_len(w) : KS_ERR_FULL;
}

ssize_t socks5_encode_method_reply(uint8_t *out, size_t cap, uint8_t method)
{
	struct wr w = wr_init(out, cap);

	return written(&w, wr_u8(&w, SOCKS5_VERSION) && wr_u8(&w, method));
}

ssize_t socks5_encode_auth_reply(uint8_t *out, size_t cap, uint8_t status)
{
	struct wr w = wr_init(out, cap);

	return written(&w, wr_u8(&w, SOCKS5_AUTH_VERSION) && wr_u8(&w, status));
}

/* encode_cmd writes VER CODE RSV ATYP ADDR PORT, the shape of S4 and S5
 * (tests/lib/socks5_client.c writes S4 through socks5_encode_reply). */
static ssize_t encode_cmd(uint8_t *out, size_t cap, uint8_t code, const struct socks5_addr *a)
{
	struct wr w = wr_init(out, cap);

	if (!addr_valid(a))
		return KS_ERR_INVAL;
	return written(&w, wr_u8(&w, SOCKS5_VERSION) && wr_u8(&w, code) && wr_u8(&w, 0) &&
	                           write_addr(&w, a));
}

ssize_t socks5_encode_reply(uint8_t *out, size_t cap, uint8_t rep, const struct socks5_addr *bnd)
{
	static const uint8_t zero[4];
	struct socks5_addr none;

	if (rep > SOCKS5_REP_LAST)
		return KS_ERR_INVAL;
	if (!bnd) {
		socks5_addr_ipv4(&none, zero, 0);
		bnd = &none;
	}
	return encode_cmd(out, cap, rep, bnd);
}

ssize_t socks5_encode_udp_header(uint8_t *out, size_t cap, uint8_t frag,
                                 const struct socks5_addr *dst)
{
	struct wr w = wr_init(out, cap);

	if (!addr_valid(dst))
		return KS_ERR_INVAL;
	return written(&w, wr_u16be(&w, 0) && wr_u8(&w, frag) && write_addr(&w, dst));
}

/* --- credentials --------------------------------------------------------- */

bool socks5_secret_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	/* [0] is the length, so "ab" and "ab\0" differ; the rest is zero
	 * padded, so the compare below always covers the same 256 bytes. */
	uint8_t x[1 + SOCKS5_CRED_MAX] = { 0 }, y[1 + SOCKS5_CRED_MAX] = { 0 };
	int diff;

	if (a_len > SOCKS5_CRED_MAX || b_len > SOCKS5_CRED_MAX)
		return false;
	x[0] = (uint8_t)a_len;
	y[0] = (uint8_t)b_len;
	if (a_len)
		memcpy(x + 1, a, a_len);
	if (b_len)
		memcpy(y + 1, b, b_len);
	diff = sodium_memcmp(x, y, sizeof x);
	sodium_memzero(x, sizeof x);
	sodium_memzero(y, sizeof y);
	return diff == 0;
}

bool socks5_cred_table_verify(const uint8_t *user, size_t user_len, const uint8_t *pass,
                              size_t pass_len, void *arg)
{
	const struct socks5_cred_table *t = arg;
	unsigned ok = 0;

	/* Bitwise & and |, never && or a break: every entry costs the same. */
	for (size_t i = 0; i < t->n; i++) {
		const struct socks5_cred *c = &t->v[i];
		unsigned u = socks5_secret_equal(c->user, c->user_len, user, user_len);
		unsigned p = socks5_secret_equal(c->pass, c->pass_len, pass, pass_len);
		ok |= u & p;
	}
	return ok != 0;
}

void socks5_wipe(void *p, size_t n) { sodium_memzero(p, n); }

/* --- server state machine ----------------------------------------------- */

_Static_assert(SOCKS5_SERVER_OUT_MAX >= 2 + 2 + 10,
               "one feed may answer the greeting, the auth request and a failed request");

int socks5_server_init(struct socks5_server *s, const struct socks5_server_config *cfg)
{
	if (cfg->method != SOCKS5_METHOD_NONE && cfg->method != SOCKS5_METHOD_USERPASS)
		return KS_ERR_INVAL;
	if (cfg->method == SOCKS5_METHOD_USERPASS && !cfg->verify)
		return KS_ERR_INVAL;
	s->state = SOCKS5_SERVER_GREETING;
	s->cfg = *cfg;
	return 0;
}

/* put_pair appends a two-byte answer (S2 or S3) to the step's output. */
static int put_pair(struct socks5_step *st, uint8_t ver, uint8_t val)
{
	struct wr w = wr_init(st->out + st->out_len, sizeof st->out - st->out_len);

	if (!wr_u8(&w, ver) || !wr_u8(&w, val))
		return KS_ERR_FULL;
	st->out_len += 2;
	return 0;
}

/* S1 -> S2: pick our method if offered, else answer FF and fail. */
static ssize_t on_greeting(const struct socks5_server *s, const uint8_t *in, size_t len,
                           struct socks5_step *st, enum socks5_server_state *next)
{
	struct socks5_greeting g;
	ssize_t n = socks5_parse_greeting(in, len, &g, &st->fault);
	int rc;

	if (n == KS_ERR_AGAIN)
		return n;
	if (n < 0) {
		/* A wrong VER gets silence; a SOCKS5 greeting with no methods
		 * is answered like one that offers none we take. */
		if (st->fault == SOCKS5_FAULT_NMETHODS &&
		    (rc = put_pair(st, SOCKS5_VERSION, SOCKS5_METHOD_UNACCEPTABLE)) < 0)
			return rc;
		return n;
	}
	if (!socks5_greeting_offers(&g, s->cfg.method)) {
		st->fault = SOCKS5_FAULT_NO_METHOD;
		rc = put_pair(st, SOCKS5_VERSION, SOCKS5_METHOD_UNACCEPTABLE);
		return rc < 0 ? rc : KS_ERR_AUTH;
	}
	if ((rc = put_pair(st, SOCKS5_VERSION, s->cfg.method)) < 0)
		return rc;
	*next = s->cfg.method == SOCKS5_METHOD_USERPASS ? SOCKS5_SERVER_AUTH
	                                                : SOCKS5_SERVER_REQUEST;
	return n;
}

/* S3: check the credentials, wipe them from in, answer 00 or 01. RFC 1929
 * says a failure status must be followed by a close. */
static ssize_t on_auth(const struct socks5_server *s, uint8_t *in, size_t len,
                       struct socks5_step *st, enum socks5_server_state *next)
{
	struct socks5_auth a;
	ssize_t n = socks5_parse_auth_request(in, len, &a, &st->fault);
	bool ok;
	int rc;

	if (n == KS_ERR_AGAIN)
		return n;
	if (n < 0) {
		if (st->fault != SOCKS5_FAULT_VERSION &&
		    (rc = put_pair(st, SOCKS5_AUTH_VERSION, SOCKS5_AUTH_FAIL)) < 0)
			return rc;
		return n;
	}
	ok = s->cfg.verify(a.user, a.user_len, a.pass, a.pass_len, s->cfg.verify_arg);
	socks5_wipe(in, (size_t)n);
	if ((rc = put_pair(st, SOCKS5_AUTH_VERSION, ok ? SOCKS5_AUTH_OK : SOCKS5_AUTH_FAIL)) < 0)
		return rc;
	if (!ok) {
		st->fault = SOCKS5_FAULT_AUTH;
		return KS_ERR_AUTH;
	}
	*next = SOCKS5_SERVER_REQUEST;
	return n;
}

/* S4: hand the request out, or answer the mapped REP and fail. */
static ssize_t on_request(const uint8_t *in, size_t len, struct socks5_step *st,
                          enum socks5_server_state *next)
{
	ssize_t n = socks5_parse_request(in, len, &st->request, &st->fault);
	ssize_t w;
	uint8_t rep;

	if (n == KS_ERR_AGAIN)
		return n;
	if (n < 0) {
		if (!socks5_fault_reply(st->fault, &rep))
			return n;
		w = socks5_encode_reply(st->out + st->out_len, sizeof st->out - st->out_len, rep,
		                        NULL);
		if (w < 0)
			return w;
		st->out_len += (size_t)w;
		st->rep = rep;
		return n;
	}
	*next = SOCKS5_SERVER_DONE;
	return n;
}

int socks5_server_feed(struct socks5_server *s, uint8_t *in, size_t len, struct socks5_step *st)
{
	enum socks5_server_state state = s->state;
	size_t off = 0;
	ssize_t n;

	memset(st, 0, sizeof *st);
	st->rep = -1;
	if (state == SOCKS5_SERVER_DONE || state == SOCKS5_SERVER_FAILED)
		return KS_ERR_STATE;
	if (len == 0)
		return KS_ERR_AGAIN; /* in may be NULL: nothing to offset */
	/* At most three messages (greeting, auth, request): each success moves
	 * the state forward, and DONE ends the loop. */
	while (state != SOCKS5_SERVER_DONE) {
		switch (state) {
		case SOCKS5_SERVER_GREETING:
			n = on_greeting(s, in + off, len - off, st, &state);
			break;
		case SOCKS5_SERVER_AUTH: n = on_auth(s, in + off, len - off, st, &state); break;
		default: n = on_request(in + off, len - off, st, &state); break;
		}
		if (n == KS_ERR_AGAIN)
			break;
		if (n < 0) {
			st->consumed = off;
			s->state = SOCKS5_SERVER_FAILED;
			return (int)n;
		}
		off += (size_t)n;
	}
	st->consumed = off;
	s->state = state;
	return state == SOCKS5_SERVER_DONE ? 0 : KS_ERR_AGAIN;
}
