/* connstr.c - kcpsocks:// connection strings (connstr.h). Each part is
 * parsed by its own function, which says what is wrong with it; the psk is
 * never quoted in a message.
 */
#include "core/connstr.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/rd.h"
#include "base/wr.h"

static const char scheme[] = "kcpsocks://";

static int connstr_query(struct rd *r, struct config_connstr *c, bool *has_key,
                         struct cfgtext_msg m)
{
	const char *v, *eq;
	size_t n;

	bool more = rd_left(r) > 0;

	while (more) {
		more = cfgtext_take_until(r, '&', &v, &n);
		eq = memchr(v, '=', n);
		if (eq && (size_t)(eq - v) == 3 && memcmp(v, "key", 3) == 0 && !*has_key) {
			if (!cfgtext_parse_key32(eq + 1, (size_t)(v + n - eq - 1), c->server_key)) {
				cfgtext_say(m,
				            "key=: the server's public key is not a base64url "
				            "32-byte key "
				            "(%d characters)",
				            CONFIG_KEY_B64_LEN);
				return KS_ERR_INVAL;
			}
			*has_key = true;
		} else if (eq && (size_t)(eq - v) == 7 && memcmp(v, "profile", 7) == 0 &&
		           !c->profile[0]) {
			size_t pn = (size_t)(v + n - eq - 1);
			if (!cfgtext_profile_name(c->profile, eq + 1, pn)) {
				cfgtext_say(m, "unknown profile '%.*s'", (int)(pn > 32 ? 32 : pn),
				            eq + 1);
				return KS_ERR_INVAL;
			}
		} else {
			cfgtext_say(m, "unknown or repeated parameter '%.*s'",
			            (int)(n > 64 ? 64 : n), v);
			return KS_ERR_INVAL;
		}
	}
	return 0;
}

/* connstr_userinfo parses USER:PSK (the part before '@'). The psk is never
 * quoted in a message. */
static int connstr_userinfo(const char *s, size_t n, struct config_connstr *c, struct cfgtext_msg m)
{
	const char *colon = memchr(s, ':', n);
	size_t un = colon ? (size_t)(colon - s) : n, pn = colon ? n - un - 1 : 0;

	if (un == 0) {
		cfgtext_say(m, "missing user name (kcpsocks://USER:PSK@...)");
		return KS_ERR_INVAL;
	}
	if (!cfgtext_valid_name(s, un)) {
		cfgtext_say(m, "bad user name '%.*s': 1..%d of A-Z a-z 0-9 . _ -",
		            cfgtext_shown(s, un), s, CONFIG_NAME_MAX);
		return KS_ERR_INVAL;
	}
	if (!colon || pn == 0) {
		cfgtext_say(m, "missing psk after the user name (kcpsocks://USER:PSK@...)");
		return KS_ERR_INVAL;
	}
	if (!cfgtext_parse_key32(colon + 1, pn, c->psk)) {
		cfgtext_say(m, "the psk is not a base64url 32-byte key (%d characters; %zu given)",
		            CONFIG_KEY_B64_LEN, pn);
		return KS_ERR_INVAL;
	}
	memcpy(c->user, s, un);
	c->user[un] = '\0';
	return 0;
}

/* connstr_server parses HOST:PORT (between '@' and '?'), saying which part
 * is wrong. */
static int connstr_server(const char *s, size_t n, struct config_endpoint *e, struct cfgtext_msg m)
{
	const char *close = n && s[0] == '[' ? memchr(s, ']', n) : NULL;
	const char *colon = close ? (close + 1 < s + n && close[1] == ':' ? close + 1 : NULL)
	                          : memrchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;

	if (cfgtext_parse_endpoint(s, n, e))
		return 0;
	if (n == 0)
		cfgtext_say(m, "missing HOST:PORT after '@'");
	else if (s[0] == '[' && !close)
		cfgtext_say(m, "unclosed '[' in the server address '%.*s'", cfgtext_shown(s, n), s);
	else if (!colon && s[0] != '[' && memchr(s, ':', n))
		cfgtext_say(m, "an IPv6 server address goes in brackets: [ADDR]:PORT");
	else if (!colon)
		cfgtext_say(m, "missing :PORT after the server address '%.*s'", cfgtext_shown(s, n),
		            s);
	else if (s[0] != '[' && memchr(s, ':', hn))
		cfgtext_say(m, "an IPv6 server address goes in brackets: [ADDR]:PORT");
	else if (s[0] == '[' || hn == 0 || !cfgtext_valid_hostname(s, hn))
		cfgtext_say(m, "bad server host '%.*s'", cfgtext_shown(s, hn), s);
	else
		cfgtext_say(m, "bad server port '%.*s': 1..65535",
		            cfgtext_shown(colon + 1, (size_t)(s + n - colon - 1)), colon + 1);
	return KS_ERR_INVAL;
}

/* HOST:PORT[,HOST:PORT...]: at most CONFIG_SERVERS_MAX. */
static int connstr_servers(const char *s, size_t n, struct config_servers *l, struct cfgtext_msg m)
{
	const char *end = s + n;

	l->n = 0;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);

		if (l->n == CONFIG_SERVERS_MAX) {
			cfgtext_say(m, "more than %d servers", CONFIG_SERVERS_MAX);
			return KS_ERR_INVAL;
		}
		if (connstr_server(s, len, &l->e[l->n], m) != 0)
			return KS_ERR_INVAL;
		l->n++;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

int config_connstr_parse(const char *s, struct config_connstr *out, char *err, size_t errlen)
{
	struct cfgtext_msg m = { err, errlen };
	struct config_connstr c = { 0 };
	size_t len = strnlen(s, CONFIG_CONNSTR_MAX);
	struct rd r = rd_init(s, len);
	const char *v;
	size_t n;
	bool has_key = false, query;
	int rc = KS_ERR_INVAL;

	if (len == CONFIG_CONNSTR_MAX) {
		cfgtext_say(m, "connection string longer than %d characters",
		            CONFIG_CONNSTR_MAX - 1);
		return KS_ERR_INVAL;
	}
	if (len < sizeof scheme - 1 || strncasecmp(s, scheme, sizeof scheme - 1) != 0) {
		cfgtext_say(
		        m,
		        "does not start with kcpsocks:// (kcpsocks://USER:PSK@HOST:PORT?key=KEY)");
		return KS_ERR_INVAL;
	}
	rd_skip(&r, sizeof scheme - 1);
	if (!cfgtext_take_until(&r, '@', &v, &n)) {
		cfgtext_say(m, "missing '@' between USER:PSK and HOST:PORT");
		return KS_ERR_INVAL;
	}
	if (connstr_userinfo(v, n, &c, m) != 0)
		goto out;
	query = cfgtext_take_until(&r, '?', &v, &n);
	if (connstr_servers(v, n, &c.servers, m) != 0)
		goto out;
	c.server = c.servers.e[0];
	if (!query) {
		cfgtext_say(m, "missing ?key=SERVERPUB (the server's public key) after HOST:PORT");
		goto out;
	}
	rc = connstr_query(&r, &c, &has_key, m);
	if (rc == 0 && !has_key) {
		cfgtext_say(m, "missing key=SERVERPUB (the server's public key) after '?'");
		rc = KS_ERR_INVAL;
	}
	if (rc == 0)
		*out = c;
out:
	sodium_memzero(&c, sizeof c);
	return rc == 0 ? 0 : KS_ERR_INVAL;
}

static bool wr_str(struct wr *w, const char *s) { return wr_bytes(w, s, strlen(s)); }

static bool wr_key(struct wr *w, const uint8_t key[static CONFIG_KEY_LEN])
{
	char b64[sodium_base64_ENCODED_LEN(CONFIG_KEY_LEN,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	bool ok;

	sodium_bin2base64(b64, sizeof b64, key, CONFIG_KEY_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ok = wr_str(w, b64);
	sodium_memzero(b64, sizeof b64);
	return ok;
}

/* HOST:PORT, an IPv6 host in brackets. */
static bool wr_endpoint(struct wr *w, const struct config_endpoint *e)
{
	bool v6 = strchr(e->host, ':') != NULL;
	char port[8];

	snprintf(port, sizeof port, "%u", e->port);
	return (!v6 || wr_u8(w, '[')) && wr_str(w, e->host) && (!v6 || wr_u8(w, ']')) &&
	       wr_u8(w, ':') && wr_str(w, port);
}

ssize_t config_connstr_format(const struct config_connstr *c, char *buf, size_t len)
{
	struct wr w = wr_init(buf, len);
	/* servers, or server alone when the list is empty */
	const struct config_endpoint *e = c->servers.n ? c->servers.e : &c->server;
	size_t n = c->servers.n ? c->servers.n : 1;
	bool ok;

	if (!cfgtext_valid_name(c->user, strnlen(c->user, sizeof c->user)) ||
	    n > CONFIG_SERVERS_MAX || (c->profile[0] && !profile_find(c->profile)))
		return KS_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (!e[i].host[0] || e[i].port == 0)
			return KS_ERR_INVAL;
	ok = wr_str(&w, scheme) && wr_str(&w, c->user) && wr_u8(&w, ':') && wr_key(&w, c->psk) &&
	     wr_u8(&w, '@');
	for (size_t i = 0; ok && i < n; i++)
		ok = (i == 0 || wr_u8(&w, ',')) && wr_endpoint(&w, &e[i]);
	ok = ok && wr_str(&w, "?key=") && wr_key(&w, c->server_key) &&
	     (!c->profile[0] || (wr_str(&w, "&profile=") && wr_str(&w, c->profile))) &&
	     wr_u8(&w, '\0');
	if (!ok) {
		sodium_memzero(buf, len);
		return KS_ERR_FULL;
	}
	return (ssize_t)wr_len(&w) - 1;
}
