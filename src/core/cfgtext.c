/* cfgtext.c - the value syntaxes the config modules share (cfgtext.h). */
#include "core/cfgtext.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void cfgtext_say(struct cfgtext_msg m, const char *fmt, ...)
{
	va_list ap;

	if (!m.p || !m.n)
		return;
	va_start(ap, fmt);
	vsnprintf(m.p, m.n, fmt, ap);
	va_end(ap);
}

static bool is_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool cfgtext_valid_name(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]))
			return false;
	return true;
}

bool cfgtext_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

bool cfgtext_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

bool cfgtext_parse_key32(const char *s, size_t n, uint8_t out[static CONFIG_KEY_LEN])
{
	uint8_t tmp[CONFIG_KEY_LEN];
	size_t got = 0;
	const char *end = NULL;
	bool ok;

	if (n != CONFIG_KEY_B64_LEN)
		return false;
	ok = sodium_base642bin(tmp, sizeof tmp, s, n, NULL, &got, &end,
	                       sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
	     got == CONFIG_KEY_LEN && end == s + n;
	if (ok)
		memcpy(out, tmp, sizeof tmp);
	sodium_memzero(tmp, sizeof tmp);
	return ok;
}

bool cfgtext_take_until(struct rd *r, uint8_t c, const char **v, size_t *n)
{
	const uint8_t *hit = memchr(r->p, c, rd_left(r));
	size_t len = hit ? (size_t)(hit - r->p) : rd_left(r);
	const uint8_t *view;

	if (!rd_view(r, &view, len))
		return false;
	*v = (const char *)view;
	*n = len;
	if (hit)
		rd_skip(r, 1);
	return hit != NULL;
}

void cfgtext_trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

bool cfgtext_pton(int family, const char *s, size_t n, uint8_t out[static 16])
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, 16);
	return inet_pton(family == 4 ? AF_INET : AF_INET6, buf, out) == 1;
}

bool cfgtext_valid_hostname(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_HOST_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]) || s[i] == '_')
			return false;
	return true;
}

bool cfgtext_parse_port(const char *s, size_t n, uint16_t *out)
{
	uint64_t v;

	if (!cfgtext_parse_u64(s, n, &v) || v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

bool cfgtext_parse_endpoint(const char *s, size_t n, struct config_endpoint *out)
{
	struct config_endpoint e = { .set = true };
	const char *host = s, *colon;
	size_t hn;
	uint8_t a[16];

	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close + 1 == s + n || close[1] != ':')
			return false;
		host = s + 1;
		hn = (size_t)(close - host);
		if (!cfgtext_pton(6, host, hn, a))
			return false;
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', n);
		if (!colon)
			return false;
		hn = (size_t)(colon - s);
		if (memchr(s, ':', hn) || !cfgtext_valid_hostname(s, hn))
			return false; /* a bare IPv6 literal needs its brackets */
	}
	if (!cfgtext_parse_port(colon + 1, (size_t)(s + n - colon - 1), &e.port))
		return false;
	memcpy(e.host, host, hn);
	e.host[hn] = '\0';
	*out = e;
	return true;
}

bool cfgtext_profile_name(char out[static PROFILE_NAME_MAX + 1], const char *s, size_t n)
{
	char tmp[PROFILE_NAME_MAX + 1];

	if (n > PROFILE_NAME_MAX)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (!profile_find(tmp))
		return false;
	memcpy(out, tmp, n + 1);
	return true;
}

int cfgtext_shown(const char *s, size_t n)
{
	return cfgtext_printable(s, n) ? (int)(n > 64 ? 64 : n) : 0;
}
