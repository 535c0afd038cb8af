/* addr.c - numeric address parsing and formatting. */
#include "io/addr.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errbuf.h"

enum {
	HOST_TEXT_MAX = 64, /* longest host part we copy out of the input */
	PORT_DIGITS_MAX = 5,
};

static int fail(char *err, size_t errlen, const char *input, const char *why)
{
	if (err && errlen)
		errbuf_set(err, errlen, "bad address '%s': %s", input, why);
	return KS_ERR_INVAL;
}

/* parse_port reads exactly [s, s+n) as a decimal port. */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
	uint32_t v = 0;

	if (n == 0 || n > PORT_DIGITS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > UINT16_MAX)
		return false;
	*port = (uint16_t)v;
	return true;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* parse_v6 reads "ADDR" or "ADDR%SCOPE" (scope an interface name or a
 * number) into sin6. */
static bool parse_v6(char *host, struct sockaddr_in6 *sin6)
{
	char *pct = strchr(host, '%');
	uint32_t scope = 0;

	if (pct) {
		*pct++ = '\0';
		if (all_digits(pct) && strlen(pct) <= 10) {
			/* unsigned long is 32 bits on 32-bit targets: strtoul
			 * would clamp 4294967296 to UINT32_MAX, not reject it */
			unsigned long long v = strtoull(pct, NULL, 10);
			if (v > UINT32_MAX)
				return false;
			scope = (uint32_t)v;
		} else {
			scope = if_nametoindex(pct);
			if (scope == 0)
				return false;
		}
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return false;
	sin6->sin6_scope_id = scope;
	return true;
}

/* parse_ip reads the host [s, s+n) as IPv4 (v4_ok) or IPv6 (v6_ok) into
 * *ss with port; on failure it returns a reason. */
static const char *parse_ip(const char *s, size_t n, bool v4_ok, bool v6_ok, uint16_t port,
                            struct sockaddr_storage *ss)
{
	char host[HOST_TEXT_MAX];
	struct sockaddr_storage tmp;

	if (n == 0)
		return "missing host";
	if (n >= sizeof host)
		return "host too long";
	memcpy(host, s, n);
	host[n] = '\0';
	memset(&tmp, 0, sizeof tmp);
	if (v4_ok && !strchr(host, ':')) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&tmp;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "not a numeric IPv4 address (names are not resolved)";
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (v6_ok) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&tmp;
		if (!parse_v6(host, sin6))
			return "not a numeric IPv6 address (or unknown %scope)";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		return "an IPv6 address needs brackets, as in [::1]:PORT";
	}
	*ss = tmp;
	return NULL;
}

static const char *parse_bracketed(const char *text, struct sockaddr_storage *ss)
{
	const char *close = strchr(text, ']');
	uint16_t port;

	if (!close)
		return "missing ']'";
	if (close[1] != ':')
		return "expected ':PORT' after ']'";
	if (!parse_port(close + 2, strlen(close + 2), &port))
		return "port must be a number from 0 to 65535";
	return parse_ip(text + 1, (size_t)(close - text - 1), false, true, port, ss);
}

int addr_parse(const char *text, const char *default_host, struct sockaddr_storage *out, char *err,
               size_t errlen)
{
	const char *colon, *why;
	uint16_t port;

	if (!text || !*text)
		return fail(err, errlen, text ? text : "", "empty");
	if (text[0] == '[') {
		why = parse_bracketed(text, out);
	} else if (all_digits(text)) {
		if (!default_host)
			why = "missing host (expected HOST:PORT)";
		else if (!parse_port(text, strlen(text), &port))
			why = "port must be a number from 0 to 65535";
		else
			why = parse_ip(default_host, strlen(default_host), true, true, port, out);
	} else if (!(colon = strrchr(text, ':'))) {
		why = "missing port (expected HOST:PORT)";
	} else if (memchr(text, ':', (size_t)(colon - text))) {
		why = "an IPv6 address needs brackets, as in [::1]:PORT";
	} else if (!parse_port(colon + 1, strlen(colon + 1), &port)) {
		why = "port must be a number from 0 to 65535";
	} else {
		why = parse_ip(text, (size_t)(colon - text), true, false, port, out);
	}
	return why ? fail(err, errlen, text, why) : 0;
}

int addr_parse_host_port(const char *host, const char *port, struct sockaddr_storage *out,
                         char *err, size_t errlen)
{
	size_t n = strlen(host);
	uint16_t p;
	const char *why;

	if (!parse_port(port, strlen(port), &p)) {
		if (err && errlen)
			errbuf_set(err, errlen, "bad port '%s': must be a number from 0 to 65535",
			           port);
		return KS_ERR_INVAL;
	}
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		why = parse_ip(host + 1, n - 2, false, true, p, out);
	else
		why = parse_ip(host, n, true, true, p, out);
	return why ? fail(err, errlen, host, why) : 0;
}

socklen_t addr_len(const struct sockaddr_storage *ss)
{
	switch (ss->ss_family) {
	case AF_INET: return sizeof(struct sockaddr_in);
	case AF_INET6: return sizeof(struct sockaddr_in6);
	}
	return 0;
}

uint16_t addr_port(const struct sockaddr_storage *ss)
{
	switch (ss->ss_family) {
	case AF_INET: return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	case AF_INET6: return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	return 0;
}

static void format_v6(const struct sockaddr_in6 *sin6, char *buf)
{
	char host[INET6_ADDRSTRLEN];
	char scope[IF_NAMESIZE + 1] = "";

	inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
	if (sin6->sin6_scope_id) {
		char ifname[IF_NAMESIZE];
		if (if_indextoname(sin6->sin6_scope_id, ifname))
			snprintf(scope, sizeof scope, "%%%s", ifname);
		else
			snprintf(scope, sizeof scope, "%%%u", (unsigned)sin6->sin6_scope_id);
	}
	snprintf(buf, ADDR_TEXT_MAX, "[%s%s]:%u", host, scope, ntohs(sin6->sin6_port));
}

const char *addr_format(const struct sockaddr_storage *ss, char buf[static ADDR_TEXT_MAX])
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		char host[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(buf, ADDR_TEXT_MAX, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		format_v6((const struct sockaddr_in6 *)ss, buf);
	} else {
		snprintf(buf, ADDR_TEXT_MAX, "(family %u)", (unsigned)ss->ss_family);
	}
	return buf;
}

bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	return false;
}
