/* addr.h - numeric socket addresses: parse, format, compare.
 *
 * Only numeric addresses: nothing here resolves a name (no DNS, no
 * /etc/hosts), so parsing never blocks the loop. Accepted forms:
 *   "HOST:PORT"     HOST a dotted-quad IPv4 address ("127.0.0.1:1080")
 *   "[V6]:PORT"     V6 an IPv6 address, optionally with a %scope given as an
 *                   interface name or number ("[::1]:1080", "[fe80::1%lo]:9")
 *   "PORT"          digits only; the host is the caller's default_host
 * PORT is decimal 0..65535 (0 asks the kernel for an ephemeral port when
 * binding; callers that connect must reject it). No spaces, no signs.
 *
 * Errors come back as KS_ERR_INVAL with a message in the caller's buffer
 * that quotes the input: "bad address '1.2.3:80': not a numeric IPv4
 * address (names are not resolved)". err may be NULL when the caller only
 * needs the code. On error *out is unchanged.
 */
#ifndef KCPSOCKS_ADDR_H
#define KCPSOCKS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"

enum {
	/* "[" + IPv6 text (45) + "%" + interface (15) + "]:" + port (5) + NUL
	 * is 70; rounded up. */
	ADDR_TEXT_MAX = 80,
	ADDR_ERR_MAX = 160, /* a comfortable size for the err buffer */
};

/* addr_parse parses text in one of the forms above into *out. default_host
 * (a numeric IPv4 or IPv6 literal, or NULL to refuse the "PORT" form) is
 * used when text is only a port. Returns 0 or KS_ERR_INVAL. */
KS_MUST_CHECK int addr_parse(const char *text, const char *default_host,
                             struct sockaddr_storage *out, char *err, size_t errlen);

/* addr_parse_host_port parses a separate host (IPv4, IPv6 bare or in
 * brackets) and port, as in "kcpcat ::1 9000". Returns 0 or KS_ERR_INVAL. */
KS_MUST_CHECK int addr_parse_host_port(const char *host, const char *port,
                                       struct sockaddr_storage *out, char *err, size_t errlen);

/* addr_len returns the sockaddr length for ss's family (AF_INET or
 * AF_INET6), or 0 for any other family. */
socklen_t addr_len(const struct sockaddr_storage *ss);

/* addr_port returns the port in host order (0 for an unknown family). */
uint16_t addr_port(const struct sockaddr_storage *ss);

/* addr_format writes "127.0.0.1:1080" or "[::1]:1080" (with "%scope" when
 * the IPv6 scope id is set) into buf and returns buf; an unknown family
 * gives "(family N)". Never fails, never allocates. */
const char *addr_format(const struct sockaddr_storage *ss, char buf[static ADDR_TEXT_MAX]);

/* addr_equal tells whether a and b are the same family, address and port
 * (and IPv6 scope id). An IPv4 address and its IPv4-mapped IPv6 form are
 * different addresses here. Unknown families are never equal. */
bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
