/* socks5.h - sans-I/O parser and encoder for SOCKS5 (RFC 1928) and its
 * username/password sub-negotiation (RFC 1929), plus a small server-side
 * state machine (greeting -> [auth] -> request) that the daemons drive with
 * bytes. docs/PROTOCOL.md (SOCKS5) describes what we accept; the step numbers
 * (S1..S5) in comments refer to it.
 *
 * Parsers. Every socks5_parse_* takes (in, len) and returns:
 *   > 0            done: the number of bytes of one whole message consumed
 *                  from the front of in; *out is filled. Bytes after it are
 *                  not looked at (they are the next message or stream data).
 *   KS_ERR_AGAIN   need more: in is a valid prefix of a message. Nothing is
 *                  kept between calls; call again with the same bytes plus
 *                  more. A message never needs more than its *_MAX bytes
 *                  (src/base/limits.h), so a buffer of SOCKS5_MESSAGE_MAX
 *                  always makes progress.
 *   KS_ERR_PROTO   malformed; KS_ERR_UNSUPPORTED for an unknown CMD or ATYP.
 *                  *fault (if fault is not NULL) says which field;
 *                  socks5_fault_reply() says what to answer.
 * Fields are checked in wire order as soon as their bytes are present, so
 * the result is the same whatever the split of the input: a prefix gives
 * either KS_ERR_AGAIN or the final answer. On anything but done, *out is
 * unchanged. *fault is set to SOCKS5_FAULT_NONE unless the call fails.
 * Views (const uint8_t * fields) point into in and are valid as long as the
 * caller keeps those bytes in place.
 *
 * Encoders. Every socks5_encode_* writes one message to out and returns its
 * length, KS_ERR_FULL if cap is too small, or KS_ERR_INVAL for an argument
 * the wire cannot carry; on error nothing useful is in out. Encoding what a
 * parser returned gives back exactly the bytes it consumed (every field is
 * determined by the parsed result).
 *
 * Nothing here allocates, and no function keeps a pointer past its return
 * except the views documented on each struct.
 */
#ifndef KCPSOCKS_SOCKS5_H
#define KCPSOCKS_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"

enum {
	SOCKS5_VERSION = 0x05,
	SOCKS5_AUTH_VERSION = 0x01, /* RFC 1929 sub-negotiation version */

	SOCKS5_METHOD_NONE = 0x00,
	SOCKS5_METHOD_GSSAPI = 0x01,
	SOCKS5_METHOD_USERPASS = 0x02,
	SOCKS5_METHOD_UNACCEPTABLE = 0xff,

	SOCKS5_AUTH_OK = 0x00,   /* RFC 1929 STATUS: success */
	SOCKS5_AUTH_FAIL = 0x01, /* any other value is a failure too */

	SOCKS5_CMD_CONNECT = 0x01,
	SOCKS5_CMD_BIND = 0x02,
	SOCKS5_CMD_UDP_ASSOCIATE = 0x03,

	SOCKS5_ATYP_IPV4 = 0x01,
	SOCKS5_ATYP_DOMAIN = 0x03,
	SOCKS5_ATYP_IPV6 = 0x04,

	SOCKS5_REP_SUCCEEDED = 0x00,
	SOCKS5_REP_GENERAL_FAILURE = 0x01,
	SOCKS5_REP_NOT_ALLOWED = 0x02,
	SOCKS5_REP_NET_UNREACHABLE = 0x03,
	SOCKS5_REP_HOST_UNREACHABLE = 0x04,
	SOCKS5_REP_CONN_REFUSED = 0x05,
	SOCKS5_REP_TTL_EXPIRED = 0x06,
	SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
	SOCKS5_REP_ATYP_UNSUPPORTED = 0x08,
	SOCKS5_REP_LAST = SOCKS5_REP_ATYP_UNSUPPORTED,
};

/* Why a message was refused: the first bad field in wire order, or an
 * outcome of the state machine. */
enum socks5_fault {
	SOCKS5_FAULT_NONE = 0,
	SOCKS5_FAULT_VERSION,     /* VER is not 5 (not 1 in RFC 1929 messages) */
	SOCKS5_FAULT_NMETHODS,    /* NMETHODS is 0 */
	SOCKS5_FAULT_ULEN,        /* RFC 1929 ULEN is 0 */
	SOCKS5_FAULT_PLEN,        /* RFC 1929 PLEN is 0 */
	SOCKS5_FAULT_CMD,         /* CMD is not 1, 2 or 3 */
	SOCKS5_FAULT_RSV,         /* a reserved field is not 0 */
	SOCKS5_FAULT_ATYP,        /* ATYP is not 1, 3 or 4 */
	SOCKS5_FAULT_DOMAIN_LEN,  /* domain length is 0 */
	SOCKS5_FAULT_DOMAIN_BYTE, /* domain has a control byte (0x00-0x1f, 0x7f) */
	SOCKS5_FAULT_REP,         /* REP in a reply is above 8 */
	SOCKS5_FAULT_TRUNCATED,   /* a UDP datagram ends inside its header */
	SOCKS5_FAULT_NO_METHOD,   /* state machine: the client did not offer ours */
	SOCKS5_FAULT_AUTH,        /* state machine: the credentials were refused */
};

/* socks5_fault_name returns a static lower-case name for logs. */
const char *socks5_fault_name(enum socks5_fault f);

/* socks5_fault_reply maps a fault in a request (S4) to what a server sends
 * before it closes: true with *rep set to the REP code (08 for ATYP, 07 for
 * CMD, 01 for everything else), or false when the connection is closed with
 * no reply at all (a wrong VER: the peer does not speak SOCKS5, so a SOCKS5
 * reply would mean nothing to it). NONE gives true with 01. */
bool socks5_fault_reply(enum socks5_fault f, uint8_t *rep);

/* socks5_rep_name returns a static name for a REP code ("succeeded",
 * "connection refused", ...; "unassigned" above 8). */
const char *socks5_rep_name(uint8_t rep);

/* socks5_rep_from_errno maps the errno of a failed outbound connect (or 0)
 * to the REP code the daemons send (docs/PROTOCOL.md (SOCKS5), S5):
 * 0 -> 00, ENETUNREACH/ENETDOWN -> 03, EHOSTUNREACH/EHOSTDOWN -> 04,
 * ECONNREFUSED -> 05, ETIMEDOUT -> 06, EACCES/EPERM -> 02, anything else
 * -> 01. A pure function: errno values are constants, no I/O. */
uint8_t socks5_rep_from_errno(int err);

/* --- addresses ------------------------------------------------------- */

/* A SOCKS5 address: ATYP, the address bytes and the port. */
struct socks5_addr {
	uint8_t type;       /* SOCKS5_ATYP_IPV4, _DOMAIN or _IPV6 */
	uint8_t domain_len; /* ATYP 3: 1..SOCKS5_DOMAIN_MAX; 0 for IP addresses */
	uint16_t port;      /* host byte order */
	union {
		uint8_t ipv4[4];                    /* network order */
		uint8_t ipv6[16];                   /* network order */
		char domain[SOCKS5_DOMAIN_MAX + 1]; /* NUL at [domain_len] */
	};
};

/* Constructors: fill *a (all unused bytes zero). socks5_addr_domain checks
 * the name as the parser does (1..255 bytes, no control byte) and returns
 * 0 or KS_ERR_INVAL with *a unchanged. */
void socks5_addr_ipv4(struct socks5_addr *a, const uint8_t ip[static 4], uint16_t port);
void socks5_addr_ipv6(struct socks5_addr *a, const uint8_t ip[static 16], uint16_t port);
KS_MUST_CHECK int socks5_addr_domain(struct socks5_addr *a, const char *name, size_t len,
                                     uint16_t port);

/* socks5_addr_format writes a NUL-terminated text form for logs into out:
 * "192.0.2.1:80", "[2001:db8::1]:443" (RFC 5952: lower case, longest run of
 * two or more zero groups shortened, IPv4-mapped as ::ffff:a.b.c.d),
 * "example.com:443" (bytes outside 0x21..0x7e and '\' are written as \xHH,
 * so a name cannot forge a log line). Returns the length without the NUL,
 * KS_ERR_FULL if cap is too small (SOCKS5_ADDR_TEXT_MAX always suffices) or
 * KS_ERR_INVAL for an unknown type. Uses no libc network function. */
KS_MUST_CHECK ssize_t socks5_addr_format(const struct socks5_addr *a, char *out, size_t cap);

/* --- messages a server reads ----------------------------------------- */

/* S1: VER NMETHODS METHODS */
struct socks5_greeting {
	uint8_t nmethods;       /* 1..SOCKS5_METHODS_MAX */
	const uint8_t *methods; /* view into the input, nmethods bytes */
};

/* socks5_greeting_offers tells whether the client listed method. */
bool socks5_greeting_offers(const struct socks5_greeting *g, uint8_t method);

KS_MUST_CHECK ssize_t socks5_parse_greeting(const uint8_t *in, size_t len,
                                            struct socks5_greeting *out, enum socks5_fault *fault);

/* S3 (RFC 1929): VER ULEN UNAME PLEN PASSWD. The views point at secrets in
 * the caller's buffer: wipe it (socks5_wipe) once they are checked. */
struct socks5_auth {
	const uint8_t *user; /* view into the input */
	size_t user_len;     /* 1..SOCKS5_CRED_MAX */
	const uint8_t *pass; /* view into the input */
	size_t pass_len;     /* 1..SOCKS5_CRED_MAX */
};

KS_MUST_CHECK ssize_t socks5_parse_auth_request(const uint8_t *in, size_t len,
                                                struct socks5_auth *out, enum socks5_fault *fault);

/* S4: VER CMD RSV ATYP DST.ADDR DST.PORT. Every CMD the RFC defines parses
 * (CONNECT, BIND, UDP ASSOCIATE); the daemon decides which it serves. */
struct socks5_request {
	uint8_t cmd;            /* SOCKS5_CMD_* */
	struct socks5_addr dst; /* copied out of the input */
	const uint8_t *raw;     /* view: the exact request bytes consumed */
	size_t raw_len;         /* == the parser's return value */
};

KS_MUST_CHECK ssize_t socks5_parse_request(const uint8_t *in, size_t len,
                                           struct socks5_request *out, enum socks5_fault *fault);

/* S6: the header in front of every UDP ASSOCIATE datagram: RSV(2) FRAG
 * ATYP DST.ADDR DST.PORT DATA. A datagram is always whole, so a short one is
 * KS_ERR_PROTO with SOCKS5_FAULT_TRUNCATED, never KS_ERR_AGAIN. Returns the
 * header length; data is the rest of the datagram (may be empty). */
struct socks5_udp_header {
	uint8_t frag; /* 0 for a standalone datagram */
	struct socks5_addr dst;
	const uint8_t *data; /* view into the input */
	size_t data_len;
};

KS_MUST_CHECK ssize_t socks5_parse_udp_header(const uint8_t *in, size_t len,
                                              struct socks5_udp_header *out,
                                              enum socks5_fault *fault);

/* --- messages a client reads ----------------------------------------- */

/* S2: VER METHOD. *method may be SOCKS5_METHOD_UNACCEPTABLE; the caller
 * checks it is one it offered. */
KS_MUST_CHECK ssize_t socks5_parse_method_reply(const uint8_t *in, size_t len, uint8_t *method,
                                                enum socks5_fault *fault);

/* S3 answer: VER(1) STATUS. Any STATUS parses; only SOCKS5_AUTH_OK is
 * success. */
KS_MUST_CHECK ssize_t socks5_parse_auth_reply(const uint8_t *in, size_t len, uint8_t *status,
                                              enum socks5_fault *fault);

/* S5: VER REP RSV ATYP BND.ADDR BND.PORT, REP 0..8. */
struct socks5_reply {
	uint8_t rep; /* SOCKS5_REP_* */
	struct socks5_addr bnd;
};

KS_MUST_CHECK ssize_t socks5_parse_reply(const uint8_t *in, size_t len, struct socks5_reply *out,
                                         enum socks5_fault *fault);

/* --- encoders ---------------------------------------------------------- */

/* What a client writes (S1, the RFC 1929 request, S4) only tests send:
 * tests/lib/socks5_client.h. */
KS_MUST_CHECK ssize_t socks5_encode_method_reply(uint8_t *out, size_t cap, uint8_t method);
KS_MUST_CHECK ssize_t socks5_encode_auth_reply(uint8_t *out, size_t cap, uint8_t status);
/* rep must be 0..SOCKS5_REP_LAST. bnd NULL means IPv4 0.0.0.0:0, which is
 * what a failure reply carries. */
KS_MUST_CHECK ssize_t socks5_encode_reply(uint8_t *out, size_t cap, uint8_t rep,
                                          const struct socks5_addr *bnd);
/* Writes only the header (RSV FRAG ATYP ADDR PORT); the data follows it. */
KS_MUST_CHECK ssize_t socks5_encode_udp_header(uint8_t *out, size_t cap, uint8_t frag,
                                               const struct socks5_addr *dst);

/* --- credentials ------------------------------------------------------- */

/* socks5_secret_equal compares two byte strings of up to SOCKS5_CRED_MAX
 * bytes in time that does not depend on their contents, nor on where they
 * differ, nor on whether their lengths match: both are copied into
 * zero-padded fixed buffers with their length in front and those are
 * compared whole with sodium_memcmp. What remains is the copy time of each
 * input, which depends only on its own length (known to whoever sent it,
 * fixed for a stored one). Longer inputs compare unequal. */
KS_MUST_CHECK bool socks5_secret_equal(const uint8_t *a, size_t a_len, const uint8_t *b,
                                       size_t b_len);

/* One user of a credential table. All borrowed from the caller. */
struct socks5_cred {
	const uint8_t *user;
	size_t user_len;
	const uint8_t *pass;
	size_t pass_len;
};

struct socks5_cred_table {
	const struct socks5_cred *v; /* borrowed, n entries */
	size_t n;
};

/* socks5_cred_table_verify has the shape of socks5_server_config.verify with
 * arg a const struct socks5_cred_table *. It checks every entry, user and
 * password, without stopping at a match, so its time depends on the table
 * size and not on which entry (if any) matched. */
KS_MUST_CHECK bool socks5_cred_table_verify(const uint8_t *user, size_t user_len,
                                            const uint8_t *pass, size_t pass_len, void *arg);

/* socks5_wipe zeroes n bytes in a way the compiler keeps (sodium_memzero). */
void socks5_wipe(void *p, size_t n);

/* --- server state machine ---------------------------------------------- */

enum socks5_server_state {
	SOCKS5_SERVER_GREETING = 0, /* waiting for the greeting (S1) */
	SOCKS5_SERVER_AUTH,         /* USERPASS chosen, waiting for S3 */
	SOCKS5_SERVER_REQUEST,      /* negotiated, waiting for the request (S4) */
	SOCKS5_SERVER_DONE,         /* request handed out; SOCKS5 is over */
	SOCKS5_SERVER_FAILED,       /* refused; the caller closes */
};

struct socks5_server_config {
	uint8_t method; /* SOCKS5_METHOD_NONE or SOCKS5_METHOD_USERPASS */
	/* USERPASS only: true if the credentials are good. Called from inside
	 * socks5_server_feed; must not call back into it. */
	bool (*verify)(const uint8_t *user, size_t user_len, const uint8_t *pass, size_t pass_len,
	               void *arg);
	void *verify_arg; /* borrowed: passed to verify */
};

struct socks5_server {
	enum socks5_server_state state;
	struct socks5_server_config cfg; /* copied; verify_arg still borrowed */
};

/* What one socks5_server_feed call did. */
struct socks5_step {
	size_t consumed; /* bytes to drop from the front of the input */
	uint8_t out[SOCKS5_SERVER_OUT_MAX];
	size_t out_len;                /* bytes of out to send to the client, in order */
	struct socks5_request request; /* filled when feed returned 0 */
	enum socks5_fault fault;       /* why feed failed, else NONE */
	int rep; /* a refused request (S4): the REP code of the reply out ends with; else -1 */
};

/* socks5_server_init readies s for a new connection. Returns 0, or
 * KS_ERR_INVAL (s unchanged) for a method other than NONE/USERPASS or
 * USERPASS without verify. */
KS_MUST_CHECK int socks5_server_init(struct socks5_server *s,
                                     const struct socks5_server_config *cfg);

/* socks5_server_feed handles as many whole messages at the front of in as it
 * can (a client may send greeting, auth and request back to back). Every
 * outcome fills *step: first send step->out_len bytes of step->out, then drop
 * step->consumed bytes of in. After a failure step->out is the whole and only
 * answer (05 FF to a greeting, 01 01 to an RFC 1929 request, one S5 reply to
 * a request, or nothing to a wrong VER): the caller sends it and closes,
 * adding no reply of its own. Returns:
 *   0                   the request is in step->request (its raw view points
 *                       into in); state is DONE. Bytes after it are stream
 *                       data for the caller. The reply (S5) is the caller's,
 *                       once it knows the outcome: socks5_encode_reply.
 *   KS_ERR_AGAIN        need more bytes; call again with the rest of in
 *                       (after dropping step->consumed) plus new bytes.
 *   KS_ERR_PROTO, KS_ERR_UNSUPPORTED  the client sent a bad message;
 *   KS_ERR_AUTH         no acceptable method, or credentials refused:
 *                       send step->out (possibly empty) and close.
 *                       step->fault says why; state is FAILED, which is
 *                       final (the connection is over, so there is nothing to
 *                       roll back to).
 *   KS_ERR_STATE        s is DONE or FAILED; step is empty.
 * The bytes of an RFC 1929 request are overwritten with zeros in in once
 * checked, so the password does not stay in the caller's buffer; a partial
 * one (KS_ERR_AGAIN) is the caller's to wipe if it gives up. */
KS_MUST_CHECK int socks5_server_feed(struct socks5_server *s, uint8_t *in, size_t len,
                                     struct socks5_step *step);

#endif
