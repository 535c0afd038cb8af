/* config.c - the config file and options of both daemons, from one table.
 *
 * Shape: `keys[]` below is the table. config_new applies each key's default
 * through the same setter the file and the options use; config_load feeds
 * libinih line by line from the caller's text (a reader that counts lines,
 * so every message carries FILE:LINE); config_set is the command line;
 * config_finish applies profile + overrides and checks what a role needs.
 * The rule (CIDR) and connection-string parsers live here because only the
 * config reads them from users.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/rd.h"
#include "base/wr.h"

enum section { SEC_COMMON, SEC_LOCAL, SEC_SERVER, SEC_TRANSPORT, SEC_USER, SEC_COUNT };

static const char *const section_names[SEC_COUNT] = { "common", "local", "server", "transport",
	                                              "user NAME" };

enum ktype {
	T_U32,          /* decimal in [min, max] */
	T_ENUM,         /* one of values[], stored as int */
	T_ENDPOINT,     /* HOST:PORT */
	T_LOOPBACK,     /* off, or HOST:PORT on a loopback address */
	T_NAME,         /* 1..CONFIG_NAME_MAX of [A-Za-z0-9._-] */
	T_STR,          /* 1..max printable bytes */
	T_SECRET_STR,   /* T_STR never echoed in messages */
	T_KEY,          /* base64url of CONFIG_KEY_LEN bytes */
	T_SECRET_KEY,   /* T_KEY never echoed */
	T_RULES,        /* comma-separated config_rule list, accumulates */
	T_PROFILE,      /* a built-in profile name */
	T_PROFILE_LIST, /* comma-separated built-in names, stored as a bit set */
	T_CONNSTR,      /* kcpsocks://..., sets server, user, psk, key, profile */
};

#define NO_FLAG ((size_t)-1)

struct key {
	enum section sec;
	const char *name;
	enum ktype type;
	size_t off;        /* of the value in struct config (struct config_user for SEC_USER) */
	size_t has_off;    /* of a bool set with the value, or NO_FLAG */
	uint32_t min, max; /* T_U32 range; string types: max length */
	const char *const *values; /* T_ENUM names, NULL-terminated */
	const char *metavar;
	const char *def; /* default, as text through the setter; NULL: none */
	const char *help;
};

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_targets[] = { "stderr", "syslog", NULL };
static const char *const lookups[] = { "fb", "files", "b", NULL }; /* config_resolver_lookups */

/* The host's own addresses, then the IANA special-purpose blocks (RFC 6890
 * and the registries it set up) that are not the public Internet:
 * "this network", private, shared (CGN), loopback, link-local, IETF
 * protocol assignments, the documentation nets, benchmarking, multicast
 * and reserved; IPv4-compatible and IPv4-mapped IPv6, NAT64 (well-known and
 * local-use), 6to4, unique-local, site-local (deprecated), link-local,
 * documentation, multicast. */
#define DEFAULT_DENY                                                                               \
	"self, 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, " \
	"192.0.0.0/24, 192.0.2.0/24, 192.168.0.0/16, 198.18.0.0/15, 198.51.100.0/24, "             \
	"203.0.113.0/24, 224.0.0.0/3, ::/96, ::ffff:0:0/96, 64:ff9b::/96, 64:ff9b:1::/48, "        \
	"2001:db8::/32, 2002::/16, fc00::/7, fe80::/10, fec0::/10, ff00::/8"

#define OFF(f)    offsetof(struct config, f)
#define UOFF(f)   offsetof(struct config_user, f)
#define STRMAX(f) (uint32_t)(sizeof(((struct config *)0)->f) - 1)

static const struct key keys[] = {
	{ SEC_COMMON, "profile", T_PROFILE, OFF(profile_name), NO_FLAG, 0, PROFILE_NAME_MAX, NULL,
	  "NAME", "default", "transport profile (see Profiles); [transport] keys override it" },
	{ SEC_COMMON, "log_level", T_ENUM, OFF(log_level), NO_FLAG, 0, 0, log_levels, "LEVEL",
	  "info", "error, warn, info or debug" },
	{ SEC_COMMON, "log_target", T_ENUM, OFF(log_target), NO_FLAG, 0, 0, log_targets, "TARGET",
	  "stderr", "stderr or syslog" },
	{ SEC_COMMON, "metrics_listen", T_LOOPBACK, OFF(metrics_listen), NO_FLAG, 0, 0, NULL,
	  "HOST:PORT", "off",
	  "HTTP metrics on a loopback address, e.g. 127.0.0.1:9100; off: none" },
	{ SEC_COMMON, "run_as", T_NAME, OFF(run_as), NO_FLAG, 0, CONFIG_NAME_MAX, NULL, "USER",
	  NULL, "drop privileges to this user after binding" },
	{ SEC_COMMON, "max_fds", T_U32, OFF(max_fds), NO_FLAG, 0, CONFIG_MAX_FDS_MAX, NULL, "N",
	  "0", "raise the open-file limit to N at start (0: keep the inherited limit)" },

	{ SEC_LOCAL, "listen", T_ENDPOINT, OFF(local_listen), NO_FLAG, 0, 0, NULL, "HOST:PORT",
	  "127.0.0.1:1080", "SOCKS5 listen address (TCP)" },
	{ SEC_LOCAL, "server", T_ENDPOINT, OFF(server), NO_FLAG, 0, 0, NULL, "HOST:PORT", NULL,
	  "the kcpsocks-server to tunnel to (UDP); required unless connect is set" },
	{ SEC_LOCAL, "server_public_key", T_KEY, OFF(server_public_key), OFF(has_server_public_key),
	  0, 0, NULL, "KEY", NULL, "the server's public key, base64url (43 characters); required" },
	{ SEC_LOCAL, "user", T_NAME, OFF(user), NO_FLAG, 0, CONFIG_NAME_MAX, NULL, "NAME", NULL,
	  "our user name on the server; required" },
	{ SEC_LOCAL, "psk", T_SECRET_KEY, OFF(psk), OFF(has_psk), 0, 0, NULL, "KEY", NULL,
	  "our pre-shared key, base64url (43 characters); required (or psk_file); secret: "
	  "as an option it shows in ps, prefer psk_file" },
	{ SEC_LOCAL, "psk_file", T_STR, OFF(psk_file), NO_FLAG, 0, STRMAX(psk_file), NULL, "PATH",
	  NULL, "file holding the psk (keeps it off the command line); mode 0600" },
	{ SEC_LOCAL, "socks_user", T_STR, OFF(socks_user), NO_FLAG, 0, STRMAX(socks_user), NULL,
	  "NAME", NULL,
	  "require RFC 1929 username/password from SOCKS5 clients (with socks_password)" },
	{ SEC_LOCAL, "socks_password", T_SECRET_STR, OFF(socks_password), NO_FLAG, 0,
	  STRMAX(socks_password), NULL, "PASSWORD", NULL, "the RFC 1929 password; secret" },
	{ SEC_LOCAL, "connect", T_CONNSTR, 0, NO_FLAG, 0, 0, NULL, "URL", NULL,
	  "kcpsocks://USER:PSK@HOST:PORT?key=SERVERPUB[&profile=NAME]: sets server, user, psk, "
	  "server_public_key and profile at once; - reads it from standard input" },
	{ SEC_LOCAL, "connect_file", T_STR, OFF(connect_file), NO_FLAG, 0, STRMAX(connect_file),
	  NULL, "PATH", NULL, "file holding the connect string (- for standard input); mode 0600" },

	{ SEC_SERVER, "listen", T_ENDPOINT, OFF(server_listen), NO_FLAG, 0, 0, NULL, "HOST:PORT",
	  "0.0.0.0:8443", "UDP listen address" },
	{ SEC_SERVER, "private_key", T_SECRET_KEY, OFF(private_key), OFF(has_private_key), 0, 0,
	  NULL, "KEY", NULL, "the server's private key, base64url; secret (or private_key_file)" },
	{ SEC_SERVER, "private_key_file", T_STR, OFF(private_key_file), NO_FLAG, 0,
	  STRMAX(private_key_file), NULL, "PATH", NULL,
	  "file holding the private key in base64url (or private_key)" },
	{ SEC_SERVER, "allow", T_RULES, OFF(allow), OFF(n_allow), 0, 0, NULL, "RULES", "",
	  "destinations always allowed: comma-separated ADDR[/PREFIX][:PORT[-PORT]], * or self" },
	{ SEC_SERVER, "deny", T_RULES, OFF(deny), OFF(n_deny), 0, 0, NULL, "RULES", DEFAULT_DENY,
	  "destinations refused unless allowed; setting it replaces the default" },
	{ SEC_SERVER, "profiles", T_PROFILE_LIST, OFF(accepted_profiles), NO_FLAG, 0, 0, NULL,
	  "NAMES", "default, fast, lossy, mobile, low-memory",
	  "profiles a client may ask for (comma-separated)" },
	{ SEC_SERVER, "max_sessions", T_U32, OFF(max_sessions), NO_FLAG, 1, SESSIONS_MAX, NULL, "N",
	  "1024", "client sessions at once" },
	{ SEC_SERVER, "max_streams_per_session", T_U32, OFF(max_streams_per_session), NO_FLAG, 1,
	  MUX_STREAMS_MAX, NULL, "N", "1024", "cap on any profile's max_streams" },
	{ SEC_SERVER, "max_idle_timeout_ms", T_U32, OFF(max_idle_timeout_ms), NO_FLAG,
	  TPARAMS_IDLE_MIN_MS, TPARAMS_IDLE_MAX_MS, NULL, "MS", "600000",
	  "longest idle timeout a client may ask for (its session's slot is held that long)" },
	{ SEC_SERVER, "connect_timeout_ms", T_U32, OFF(connect_timeout_ms), NO_FLAG,
	  CONFIG_CONNECT_TIMEOUT_MIN, CONFIG_CONNECT_TIMEOUT_MAX, NULL, "MS", "10000",
	  "give up a TCP connect to a destination after this long" },
	{ SEC_SERVER, "resolver_lookups", T_ENUM, OFF(resolver_lookups), NO_FLAG, 0, 0, lookups,
	  "ORDER", "fb",
	  "name lookups: fb (hosts file, then DNS), files (hosts file only) or b (DNS only)" },
	{ SEC_SERVER, "resolver_servers", T_STR, OFF(resolver_servers), NO_FLAG, 0,
	  STRMAX(resolver_servers), NULL, "IP[:PORT],...", NULL,
	  "DNS servers to ask instead of /etc/resolv.conf's (at most 8)" },

	{ SEC_USER, "psk", T_SECRET_KEY, UOFF(psk), UOFF(has_psk), 0, 0, NULL, "KEY", NULL,
	  "this user's pre-shared key, base64url; required; secret" },
};

#define KEY_COUNT (sizeof keys / sizeof keys[0])

enum list_src { LIST_DEFAULT, LIST_FILE, LIST_OPTION };

struct config_private {
	char name[CONFIG_FILE_NAME_MAX + 1]; /* for messages; "" before config_load */
	uint32_t line[KEY_COUNT];            /* where the file set key i; 0: not by the file */
	bool via_connect[KEY_COUNT];         /* ... and whether it was through connect */
	enum list_src list_src[KEY_COUNT];
	uint32_t ovr[PROFILE_F_COUNT]; /* [transport] overrides */
	bool ovr_set[PROFILE_F_COUNT];
	uint32_t ovr_line[PROFILE_F_COUNT];
	size_t cap_users;
};

/* A message buffer: cores cannot print, they format into the caller's. */
struct msg {
	char *p;
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void say(struct msg m, const char *fmt, ...)
{
	va_list ap;

	if (!m.p || !m.n)
		return;
	va_start(ap, fmt);
	vsnprintf(m.p, m.n, fmt, ap);
	va_end(ap);
}

/* ---- small text helpers ------------------------------------------------ */

static bool is_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* parse_u64 reads a plain decimal of at most 10 digits (no sign, no blanks). */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
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

static bool parse_bool(const char *s, uint32_t *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return true;
		}
	}
	return false;
}

static bool parse_key32(const char *s, size_t n, uint8_t out[static CONFIG_KEY_LEN])
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

/* take_until returns in *v, *n the bytes before the first c (or all that is
 * left) and consumes them and the c. */
static bool take_until(struct rd *r, uint8_t c, const char **v, size_t *n)
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

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* ---- addresses --------------------------------------------------------- */

/* pton parses an IPv4 (family 4) or IPv6 (family 6) literal of n bytes. */
static bool pton(int family, const char *s, size_t n, uint8_t out[static 16])
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, 16);
	return inet_pton(family == 4 ? AF_INET : AF_INET6, buf, out) == 1;
}

static bool valid_hostname(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_HOST_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)s[i]) || s[i] == '_')
			return false;
	return true;
}

static bool parse_port(const char *s, size_t n, uint16_t *out)
{
	uint64_t v;

	if (!parse_u64(s, n, &v) || v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* parse_endpoint reads HOST:PORT, [V6]:PORT. */
static bool parse_endpoint(const char *s, size_t n, struct config_endpoint *out)
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
		if (!pton(6, host, hn, a))
			return false;
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', n);
		if (!colon)
			return false;
		hn = (size_t)(colon - s);
		if (memchr(s, ':', hn) || !valid_hostname(s, hn))
			return false; /* a bare IPv6 literal needs its brackets */
	}
	if (!parse_port(colon + 1, (size_t)(s + n - colon - 1), &e.port))
		return false;
	memcpy(e.host, host, hn);
	e.host[hn] = '\0';
	*out = e;
	return true;
}

static bool is_loopback(const char *host)
{
	uint8_t a[16];
	static const uint8_t one6[16] = { [15] = 1 };

	if (strcmp(host, "localhost") == 0)
		return true;
	if (pton(4, host, strlen(host), a))
		return a[0] == 127;
	return pton(6, host, strlen(host), a) && memcmp(a, one6, 16) == 0;
}

/* ---- destination rules ------------------------------------------------- */

static void mask_addr(uint8_t addr[static 16], unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* rule_addr reads the address part; leaves r at what follows it. */
static bool rule_addr(struct rd *r, struct config_rule *o)
{
	const char *s = (const char *)r->p;
	size_t n = rd_left(r);
	const char *v;
	size_t vn;

	if (n && s[0] == '*') {
		o->family = 0;
		return rd_skip(r, 1);
	}
	if (n >= 4 && memcmp(s, "self", 4) == 0 && (n == 4 || s[4] == ':')) {
		o->family = CONFIG_RULE_SELF;
		return rd_skip(r, 4);
	}
	if (n && s[0] == '[') {
		rd_skip(r, 1);
		o->family = 6;
		return take_until(r, ']', &v, &vn) && pton(6, v, vn, o->addr);
	}
	/* Bare: the address runs to '/', or is the whole text, or is IPv4
	 * before the last ':'. */
	const char *slash = memchr(s, '/', n);
	if (slash)
		vn = (size_t)(slash - s);
	else if (pton(4, s, n, o->addr) || pton(6, s, n, o->addr))
		vn = n;
	else
		vn = memrchr(s, ':', n) ? (size_t)((const char *)memrchr(s, ':', n) - s) : n;
	o->family = pton(4, s, vn, o->addr) ? 4 : pton(6, s, vn, o->addr) ? 6 : 0;
	return o->family != 0 && rd_skip(r, vn);
}

static bool rule_ports(const char *s, size_t n, struct config_rule *o)
{
	const char *dash = memchr(s, '-', n);

	if (!dash) {
		if (!parse_port(s, n, &o->port_lo))
			return false;
		o->port_hi = o->port_lo;
		return true;
	}
	return parse_port(s, (size_t)(dash - s), &o->port_lo) &&
	       parse_port(dash + 1, (size_t)(s + n - dash - 1), &o->port_hi) &&
	       o->port_lo <= o->port_hi;
}

int config_rule_parse(const char *text, size_t len, struct config_rule *out)
{
	struct config_rule o = { .port_lo = 0, .port_hi = 65535 };
	struct rd r;
	uint64_t prefix;
	const char *v;
	size_t vn;

	trim(&text, &len);
	r = rd_init(text, len);
	if (!rule_addr(&r, &o))
		return KS_ERR_INVAL;
	o.prefix = o.family == 4 ? 32 : o.family == 6 ? 128 : 0;
	if (rd_left(&r) && *r.p == '/') {
		rd_skip(&r, 1);
		bool has_port = take_until(&r, ':', &v, &vn);
		if (o.prefix == 0 || !parse_u64(v, vn, &prefix) || vn > 3 || prefix > o.prefix)
			return KS_ERR_INVAL;
		o.prefix = (uint8_t)prefix;
		if (has_port && !rule_ports((const char *)r.p, rd_left(&r), &o))
			return KS_ERR_INVAL;
	} else if (rd_left(&r)) {
		if (*r.p != ':' || !rule_ports((const char *)r.p + 1, rd_left(&r) - 1, &o))
			return KS_ERR_INVAL;
	}
	mask_addr(o.addr, o.prefix);
	*out = o;
	return 0;
}

bool config_self_has(const struct config_self *self, int family, const uint8_t *addr)
{
	size_t len = family == 4 ? 4 : 16;

	if (!self || (family != 4 && family != 6))
		return false;
	for (size_t i = 0; i < self->n && i < CONFIG_SELF_MAX; i++)
		if (self->a[i].family == family && memcmp(self->a[i].addr, addr, len) == 0)
			return true;
	return false;
}

static bool rule_match(const struct config_rule *r, const struct config_self *self, int family,
                       const uint8_t *addr, uint16_t port)
{
	uint8_t a[16] = { 0 };

	if (port < r->port_lo || port > r->port_hi)
		return false;
	if (r->family == 0)
		return true;
	if (r->family == CONFIG_RULE_SELF)
		return config_self_has(self, family, addr);
	if (r->family != family || (family != 4 && family != 6))
		return false;
	memcpy(a, addr, family == 4 ? 4 : 16);
	mask_addr(a, r->prefix);
	return memcmp(a, r->addr, 16) == 0;
}

bool config_rule_match(const struct config_rule *r, int family, const uint8_t *addr, uint16_t port)
{
	return rule_match(r, NULL, family, addr, port);
}

static bool any_match(const struct config_rule *rs, size_t n, const struct config_self *self,
                      int family, const uint8_t *addr, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (rule_match(&rs[i], self, family, addr, port))
			return true;
	return false;
}

/* mapped_v4 says whether addr is an IPv4-mapped IPv6 address ::ffff:a.b.c.d
 * and copies a.b.c.d into v4: a dual-stack socket reaches that IPv4 host. */
static bool mapped_v4(const uint8_t addr[static 16], uint8_t v4[static 16])
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(addr, prefix, sizeof prefix) != 0)
		return false;
	memset(v4, 0, 16);
	memcpy(v4, addr + 12, 4);
	return true;
}

/* The destination is judged in each form it can be reached by: an
 * IPv4-mapped address meets both the IPv6 and the IPv4 rules. An address
 * family the rules do not know is refused (fail closed). */
bool config_dest_allowed_with(const struct config *cfg, const struct config_self *self, int family,
                              const uint8_t *addr, uint16_t port)
{
	uint8_t v4[16];
	bool mapped;

	if (family != 4 && family != 6)
		return false;
	mapped = family == 6 && mapped_v4(addr, v4);
	if (any_match(cfg->allow, cfg->n_allow, self, family, addr, port) ||
	    (mapped && any_match(cfg->allow, cfg->n_allow, self, 4, v4, port)))
		return true;
	return !any_match(cfg->deny, cfg->n_deny, self, family, addr, port) &&
	       !(mapped && any_match(cfg->deny, cfg->n_deny, self, 4, v4, port));
}

bool config_dest_allowed(const struct config *cfg, int family, const uint8_t *addr, uint16_t port)
{
	return config_dest_allowed_with(cfg, NULL, family, addr, port);
}

/* ---- connection strings ------------------------------------------------ */

static const char scheme[] = "kcpsocks://";

/* copy_profile_name copies s (n bytes) into out if it names a built-in. */
static bool copy_profile_name(char out[static PROFILE_NAME_MAX + 1], const char *s, size_t n)
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

static int connstr_query(struct rd *r, struct config_connstr *c, bool *has_key, struct msg m)
{
	const char *v, *eq;
	size_t n;

	bool more = rd_left(r) > 0;

	while (more) {
		more = take_until(r, '&', &v, &n);
		eq = memchr(v, '=', n);
		if (eq && (size_t)(eq - v) == 3 && memcmp(v, "key", 3) == 0 && !*has_key) {
			if (!parse_key32(eq + 1, (size_t)(v + n - eq - 1), c->server_key)) {
				say(m,
				    "key=: the server's public key is not a base64url 32-byte key "
				    "(%d characters)",
				    CONFIG_KEY_B64_LEN);
				return KS_ERR_INVAL;
			}
			*has_key = true;
		} else if (eq && (size_t)(eq - v) == 7 && memcmp(v, "profile", 7) == 0 &&
		           !c->profile[0]) {
			size_t pn = (size_t)(v + n - eq - 1);
			if (!copy_profile_name(c->profile, eq + 1, pn)) {
				say(m, "unknown profile '%.*s'", (int)(pn > 32 ? 32 : pn), eq + 1);
				return KS_ERR_INVAL;
			}
		} else {
			say(m, "unknown or repeated parameter '%.*s'", (int)(n > 64 ? 64 : n), v);
			return KS_ERR_INVAL;
		}
	}
	return 0;
}

/* shown quotes n bytes of s in a message when they are printable (at most
 * 64 of them), else nothing: a message must not carry control bytes. */
static int shown(const char *s, size_t n) { return printable(s, n) ? (int)(n > 64 ? 64 : n) : 0; }

/* connstr_userinfo parses USER:PSK (the part before '@'). The psk is never
 * quoted in a message. */
static int connstr_userinfo(const char *s, size_t n, struct config_connstr *c, struct msg m)
{
	const char *colon = memchr(s, ':', n);
	size_t un = colon ? (size_t)(colon - s) : n, pn = colon ? n - un - 1 : 0;

	if (un == 0) {
		say(m, "missing user name (kcpsocks://USER:PSK@...)");
		return KS_ERR_INVAL;
	}
	if (!valid_name(s, un)) {
		say(m, "bad user name '%.*s': 1..%d of A-Z a-z 0-9 . _ -", shown(s, un), s,
		    CONFIG_NAME_MAX);
		return KS_ERR_INVAL;
	}
	if (!colon || pn == 0) {
		say(m, "missing psk after the user name (kcpsocks://USER:PSK@...)");
		return KS_ERR_INVAL;
	}
	if (!parse_key32(colon + 1, pn, c->psk)) {
		say(m, "the psk is not a base64url 32-byte key (%d characters; %zu given)",
		    CONFIG_KEY_B64_LEN, pn);
		return KS_ERR_INVAL;
	}
	memcpy(c->user, s, un);
	c->user[un] = '\0';
	return 0;
}

/* connstr_server parses HOST:PORT (between '@' and '?'), saying which part
 * is wrong. */
static int connstr_server(const char *s, size_t n, struct config_endpoint *e, struct msg m)
{
	const char *close = n && s[0] == '[' ? memchr(s, ']', n) : NULL;
	const char *colon = close ? (close + 1 < s + n && close[1] == ':' ? close + 1 : NULL)
	                          : memrchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;

	if (parse_endpoint(s, n, e))
		return 0;
	if (n == 0)
		say(m, "missing HOST:PORT after '@'");
	else if (s[0] == '[' && !close)
		say(m, "unclosed '[' in the server address '%.*s'", shown(s, n), s);
	else if (!colon && s[0] != '[' && memchr(s, ':', n))
		say(m, "an IPv6 server address goes in brackets: [ADDR]:PORT");
	else if (!colon)
		say(m, "missing :PORT after the server address '%.*s'", shown(s, n), s);
	else if (s[0] != '[' && memchr(s, ':', hn))
		say(m, "an IPv6 server address goes in brackets: [ADDR]:PORT");
	else if (s[0] == '[' || hn == 0 || !valid_hostname(s, hn))
		say(m, "bad server host '%.*s'", shown(s, hn), s);
	else
		say(m, "bad server port '%.*s': 1..65535",
		    shown(colon + 1, (size_t)(s + n - colon - 1)), colon + 1);
	return KS_ERR_INVAL;
}

int config_connstr_parse(const char *s, struct config_connstr *out, char *err, size_t errlen)
{
	struct msg m = { err, errlen };
	struct config_connstr c = { 0 };
	size_t len = strnlen(s, CONFIG_CONNSTR_MAX);
	struct rd r = rd_init(s, len);
	const char *v;
	size_t n;
	bool has_key = false, query;
	int rc = KS_ERR_INVAL;

	if (len == CONFIG_CONNSTR_MAX) {
		say(m, "connection string longer than %d characters", CONFIG_CONNSTR_MAX - 1);
		return KS_ERR_INVAL;
	}
	if (len < sizeof scheme - 1 || strncasecmp(s, scheme, sizeof scheme - 1) != 0) {
		say(m, "does not start with kcpsocks:// (kcpsocks://USER:PSK@HOST:PORT?key=KEY)");
		return KS_ERR_INVAL;
	}
	rd_skip(&r, sizeof scheme - 1);
	if (!take_until(&r, '@', &v, &n)) {
		say(m, "missing '@' between USER:PSK and HOST:PORT");
		return KS_ERR_INVAL;
	}
	if (connstr_userinfo(v, n, &c, m) != 0)
		goto out;
	query = take_until(&r, '?', &v, &n);
	if (connstr_server(v, n, &c.server, m) != 0)
		goto out;
	if (!query) {
		say(m, "missing ?key=SERVERPUB (the server's public key) after HOST:PORT");
		goto out;
	}
	rc = connstr_query(&r, &c, &has_key, m);
	if (rc == 0 && !has_key) {
		say(m, "missing key=SERVERPUB (the server's public key) after '?'");
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

ssize_t config_connstr_format(const struct config_connstr *c, char *buf, size_t len)
{
	struct wr w = wr_init(buf, len);
	bool v6 = strchr(c->server.host, ':') != NULL;
	char port[8];
	bool ok;

	if (!valid_name(c->user, strnlen(c->user, sizeof c->user)) || !c->server.host[0] ||
	    c->server.port == 0 || (c->profile[0] && !profile_find(c->profile)))
		return KS_ERR_INVAL;
	snprintf(port, sizeof port, "%u", c->server.port);
	ok = wr_str(&w, scheme) && wr_str(&w, c->user) && wr_u8(&w, ':') && wr_key(&w, c->psk) &&
	     wr_u8(&w, '@') && (!v6 || wr_u8(&w, '[')) && wr_str(&w, c->server.host) &&
	     (!v6 || wr_u8(&w, ']')) && wr_u8(&w, ':') && wr_str(&w, port) && wr_str(&w, "?key=") &&
	     wr_key(&w, c->server_key) &&
	     (!c->profile[0] || (wr_str(&w, "&profile=") && wr_str(&w, c->profile))) &&
	     wr_u8(&w, '\0');
	if (!ok) {
		sodium_memzero(buf, len);
		return KS_ERR_FULL;
	}
	return (ssize_t)wr_len(&w) - 1;
}

/* ---- the setters: one per key type, each all-or-nothing ---------------- */

static int set_u32(void *dst, const struct key *k, const char *v, size_t n, struct msg m)
{
	uint64_t x;
	uint32_t x32;

	if (!parse_u64(v, n, &x)) {
		say(m, "'%.32s' is not a number", v);
		return KS_ERR_INVAL;
	}
	if (x < k->min || x > k->max) {
		say(m, "%s is out of range %u..%u", v, k->min, k->max);
		return KS_ERR_INVAL;
	}
	x32 = (uint32_t)x;
	memcpy(dst, &x32, sizeof x32);
	return 0;
}

static int set_enum(void *dst, const struct key *k, const char *v, struct msg m)
{
	for (int i = 0; k->values[i]; i++) {
		if (strcmp(v, k->values[i]) == 0) {
			memcpy(dst, &i, sizeof i);
			return 0;
		}
	}
	say(m, "'%.32s' is not one of: %s", v, k->help);
	return KS_ERR_INVAL;
}

static int set_endpoint(void *dst, const struct key *k, const char *v, size_t n, struct msg m)
{
	struct config_endpoint e = { .set = false };

	if (k->type == T_LOOPBACK && strcmp(v, "off") == 0) {
		memcpy(dst, &e, sizeof e);
		return 0;
	}
	if (!parse_endpoint(v, n, &e)) {
		say(m, "'%.64s' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)", v);
		return KS_ERR_INVAL;
	}
	if (k->type == T_LOOPBACK && !is_loopback(e.host)) {
		say(m, "'%.64s' is not on a loopback address (127.0.0.0/8, [::1], localhost)", v);
		return KS_ERR_INVAL;
	}
	memcpy(dst, &e, sizeof e);
	return 0;
}

static int set_str(void *dst, const struct key *k, const char *v, size_t n, struct msg m)
{
	bool secret = k->type == T_SECRET_STR;

	if (k->type == T_NAME && !valid_name(v, n)) {
		say(m, "'%.64s' is not a name (1..%d of A-Z a-z 0-9 . _ -)", v, CONFIG_NAME_MAX);
		return KS_ERR_INVAL;
	}
	if (n > k->max) {
		say(m, "longer than %u characters", k->max);
		return KS_ERR_INVAL;
	}
	if (!printable(v, n)) {
		say(m, "%s%.64s%s holds control characters", secret ? "" : "'",
		    secret ? "value" : v, secret ? "" : "'");
		return KS_ERR_INVAL;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

/* placeholder: a value that cannot be a key and has no lower-case letter,
 * like the PASTE_PSK_HERE of the examples. */
static bool placeholder(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] >= 'a' && v[i] <= 'z')
			return false;
	return n > 0;
}

static int set_key32(void *dst, bool *has, const struct key *k, const char *v, size_t n,
                     struct msg m)
{
	if (!parse_key32(v, n, dst)) {
		if (placeholder(v, n))
			say(m,
			    "'%.*s' is a placeholder: put the real key here (kcpsocks-server "
			    "keygen and adduser print them)",
			    shown(v, n), v);
		else if (k->type == T_SECRET_KEY)
			say(m, "not a base64url 32-byte key (%d characters)", CONFIG_KEY_B64_LEN);
		else
			say(m, "'%.64s' is not a base64url 32-byte key (%d characters)", v,
			    CONFIG_KEY_B64_LEN);
		return KS_ERR_INVAL;
	}
	*has = true;
	return 0;
}

static int set_profile_list(void *dst, const char *v, size_t n, struct msg m)
{
	struct rd r = rd_init(v, n);
	uint32_t set = 0;
	const char *item;
	size_t in;

	while (rd_left(&r)) {
		char name[PROFILE_NAME_MAX + 1];
		take_until(&r, ',', &item, &in);
		trim(&item, &in);
		if (!copy_profile_name(name, item, in)) {
			say(m, "unknown profile '%.*s'", (int)(in > 32 ? 32 : in), item);
			return KS_ERR_INVAL;
		}
		for (size_t i = 0; i < profile_count(); i++)
			if (strcmp(profile_at(i)->name, name) == 0)
				set |= 1u << i;
	}
	if (!set) {
		say(m, "empty list");
		return KS_ERR_INVAL;
	}
	memcpy(dst, &set, sizeof set);
	return 0;
}

/* set_rules parses a comma-separated list. A list keeps growing while the
 * same source (file or options) adds to it; a new source starts it over. */
static int set_rules(struct config *cfg, const struct key *k, const char *v, size_t n,
                     enum list_src src, struct msg m)
{
	_Static_assert(CONFIG_RULES_MAX <= 256, "the parse buffer is on the stack");
	size_t idx = (size_t)(k - keys), have, got = 0;
	struct config_rule tmp[CONFIG_RULES_MAX];
	size_t *count = (size_t *)((char *)cfg + k->has_off);
	struct rd r = rd_init(v, n);
	const char *item;
	size_t in;

	have = cfg->priv->list_src[idx] == src ? *count : 0;
	while (rd_left(&r)) {
		take_until(&r, ',', &item, &in);
		if (have + got == CONFIG_RULES_MAX) {
			say(m, "more than %d rules", CONFIG_RULES_MAX);
			return KS_ERR_LIMIT;
		}
		if (config_rule_parse(item, in, &tmp[got]) != 0) {
			trim(&item, &in);
			say(m, "'%.*s' is not ADDR[/PREFIX][:PORT[-PORT]] or *",
			    (int)(in > 64 ? 64 : in), item);
			return KS_ERR_INVAL;
		}
		got++;
	}
	memcpy((struct config_rule *)((char *)cfg + k->off) + have, tmp, got * sizeof tmp[0]);
	*count = have + got;
	cfg->priv->list_src[idx] = src;
	return 0;
}

/* set_connect commits a connection string over server, user, psk,
 * server_public_key and (if named) profile. */
static int set_connect(struct config *cfg, const char *v, struct msg m)
{
	struct config_connstr c;

	if (config_connstr_parse(v, &c, m.p, m.n) != 0)
		return KS_ERR_INVAL;
	cfg->server = c.server;
	memcpy(cfg->user, c.user, sizeof cfg->user);
	memcpy(cfg->psk, c.psk, sizeof cfg->psk);
	cfg->has_psk = true;
	memcpy(cfg->server_public_key, c.server_key, sizeof c.server_key);
	cfg->has_server_public_key = true;
	if (c.profile[0])
		memcpy(cfg->profile_name, c.profile, sizeof c.profile);
	sodium_memzero(&c, sizeof c);
	return 0;
}

/* set_value stores text v for key k into base (cfg, or a config_user).
 * On failure nothing changes and m holds the reason. */
static int set_value(struct config *cfg, const struct key *k, void *base, const char *v,
                     enum list_src src, struct msg m)
{
	char *dst = (char *)base + k->off;
	size_t n = strlen(v);
	bool dummy;

	if (n == 0 && k->type != T_RULES) {
		say(m, "empty value");
		return KS_ERR_INVAL;
	}
	switch (k->type) {
	case T_U32: return set_u32(dst, k, v, n, m);
	case T_ENUM: return set_enum(dst, k, v, m);
	case T_ENDPOINT:
	case T_LOOPBACK: return set_endpoint(dst, k, v, n, m);
	case T_NAME:
	case T_STR:
	case T_SECRET_STR: return set_str(dst, k, v, n, m);
	case T_KEY:
	case T_SECRET_KEY:
		return set_key32(
		        dst, k->has_off == NO_FLAG ? &dummy : (bool *)((char *)base + k->has_off),
		        k, v, n, m);
	case T_RULES: return set_rules(cfg, k, v, n, src, m);
	case T_PROFILE:
		if (!copy_profile_name(dst, v, n)) {
			say(m, "unknown profile '%.32s'", v);
			return KS_ERR_INVAL;
		}
		return 0;
	case T_PROFILE_LIST: return set_profile_list(dst, v, n, m);
	case T_CONNSTR: return set_connect(cfg, v, m);
	}
	return KS_ERR_INVAL;
}

/* set_override parses a [transport] value for field f (range-checked now,
 * applied over the profile by config_finish). */
static int set_override(struct config *cfg, const struct profile_field *f, const char *v,
                        struct msg m)
{
	size_t i = (size_t)(f - profile_field_at(0));
	uint64_t x;
	uint32_t b;

	if (f->is_bool) {
		if (!parse_bool(v, &b)) {
			say(m, "'%.32s' is not true or false", v);
			return KS_ERR_INVAL;
		}
		x = b;
	} else if (!parse_u64(v, strlen(v), &x)) {
		say(m, "'%.32s' is not a number", v);
		return KS_ERR_INVAL;
	} else if (x < f->min || x > f->max) {
		say(m, "%s is out of range %u..%u", v, f->min, f->max);
		return KS_ERR_INVAL;
	}
	cfg->priv->ovr[i] = (uint32_t)x;
	cfg->priv->ovr_set[i] = true;
	return 0;
}

/* ---- lookups ----------------------------------------------------------- */

static const struct key *find_key(enum section sec, const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (keys[i].sec == sec && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* targets lists the keys that `connect` (value v) sets, for duplicate
 * checks: profile only if the string names one. */
static size_t targets(const struct key *out[static 5], const char *v)
{
	struct config_connstr c;
	bool named = config_connstr_parse(v, &c, NULL, 0) == 0 && c.profile[0];

	sodium_memzero(&c, sizeof c);
	out[0] = find_key(SEC_LOCAL, "server");
	out[1] = find_key(SEC_LOCAL, "server_public_key");
	out[2] = find_key(SEC_LOCAL, "user");
	out[3] = find_key(SEC_LOCAL, "psk");
	out[4] = find_key(SEC_COMMON, "profile");
	return named ? 5 : 4;
}

/* parse_section maps "local", "user alice", ... to a section; for users,
 * *uname points at the name inside s. */
static bool parse_section(const char *s, enum section *sec, const char **uname, size_t *un)
{
	size_t n = strlen(s);

	trim(&s, &n);
	if (n == 0 || (n == 6 && memcmp(s, "common", 6) == 0))
		*sec = SEC_COMMON;
	else if (n == 5 && memcmp(s, "local", 5) == 0)
		*sec = SEC_LOCAL;
	else if (n == 6 && memcmp(s, "server", 6) == 0)
		*sec = SEC_SERVER;
	else if (n == 9 && memcmp(s, "transport", 9) == 0)
		*sec = SEC_TRANSPORT;
	else if (n > 5 && memcmp(s, "user", 4) == 0 && (s[4] == ' ' || s[4] == '\t')) {
		*uname = s + 5;
		*un = n - 5;
		trim(uname, un);
		*sec = SEC_USER;
		return valid_name(*uname, *un);
	} else
		return false;
	return true;
}

const struct config_user *config_find_user(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_users; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

/* add_user appends an empty user. The array grows by copying and wiping,
 * never by realloc, so no psk is left behind in freed memory. */
static struct config_user *add_user(struct config *cfg, const char *name, size_t n)
{
	struct config_private *pv = cfg->priv;
	struct config_user *u;

	if (cfg->n_users == CONFIG_USERS_MAX)
		return NULL;
	if (cfg->n_users == pv->cap_users) {
		size_t cap = pv->cap_users ? pv->cap_users * 2 : 8;
		struct config_user *a = calloc(cap, sizeof *a);
		if (!a)
			return NULL;
		if (cfg->n_users) {
			memcpy(a, cfg->users, cfg->n_users * sizeof *a);
			sodium_memzero(cfg->users, cfg->n_users * sizeof *a);
		}
		free(cfg->users);
		cfg->users = a;
		pv->cap_users = cap;
	}
	u = &cfg->users[cfg->n_users++];
	memset(u, 0, sizeof *u);
	memcpy(u->name, name, n);
	return u;
}

/* ---- the file: libinih, fed line by line ------------------------------- */

struct load {
	struct config *cfg;
	struct rd text;        /* what is left of the file */
	uint32_t line;         /* of the line last handed to libinih */
	uint32_t section_line; /* of the last [section] header */
	uint32_t fail_line;    /* of our first error; 0: none */
	int rc;
	struct msg m;
};

__attribute__((format(printf, 3, 4))) static int load_fail(struct load *ld, uint32_t line,
                                                           const char *fmt, ...)
{
	char what[CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	say(ld->m, "%s:%u: %s", ld->cfg->priv->name, line, what);
	ld->fail_line = ld->line;
	if (!ld->rc)
		ld->rc = KS_ERR_INVAL;
	return 0;
}

/* next_line is libinih's reader: one line of the caller's text per call, so
 * ld->line is the line the handler is looking at. */
static char *next_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	size_t left = rd_left(&ld->text), n;
	const uint8_t *nl, *p = ld->text.p;
	size_t cap = num > 3 ? (size_t)num - 3 : 0;

	if (ld->fail_line || left == 0)
		return NULL;
	nl = memchr(p, '\n', left);
	n = nl ? (size_t)(nl - p) : left;
	ld->line++;
	if (memchr(p, '\0', n)) {
		load_fail(ld, ld->line, "NUL byte in the line");
		return NULL;
	}
	if (n > CONFIG_LINE_MAX || n > cap) {
		load_fail(ld, ld->line, "line longer than %d characters",
		          (int)(cap < CONFIG_LINE_MAX ? cap : CONFIG_LINE_MAX));
		return NULL;
	}
	/* Leading blanks go: libinih would read an indented line as the
	 * continuation of the previous value, and we have no such values. */
	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
		rd_skip(&ld->text, 1);
	}
	rd_bytes(&ld->text, str, n);
	str[n] = '\0';
	rd_skip(&ld->text, nl ? 1 : 0);
	if (str[0] == '[')
		ld->section_line = ld->line;
	return str;
}

static int file_user(struct load *ld, const char *uname, size_t un, const char *name, const char *v)
{
	struct config *cfg = ld->cfg;
	const struct key *k = find_key(SEC_USER, name);
	char nm[CONFIG_NAME_MAX + 1] = { 0 };
	struct config_user tmp = { 0 }, *u;
	char why[CONFIG_ERR_MAX];
	int rc;

	memcpy(nm, uname, un);
	if (!k)
		return load_fail(ld, ld->line, "unknown key '%.64s' in [user %s]", name, nm);
	u = (struct config_user *)config_find_user(cfg, nm);
	if (u && u->has_psk)
		return load_fail(ld, ld->line, "duplicate key '%s' in [user %s] (first on line %u)",
		                 name, nm, u->line);
	rc = set_value(cfg, k, &tmp, v, LIST_FILE, (struct msg){ why, sizeof why });
	if (rc == 0 && !u && !(u = add_user(cfg, nm, un)))
		rc = cfg->n_users == CONFIG_USERS_MAX ? KS_ERR_LIMIT : KS_ERR_NOMEM;
	if (rc == 0) {
		memcpy(u->psk, tmp.psk, sizeof u->psk);
		u->has_psk = true;
		u->line = ld->line;
	}
	sodium_memzero(&tmp, sizeof tmp);
	if (rc == KS_ERR_LIMIT || rc == KS_ERR_NOMEM) {
		if (rc == KS_ERR_NOMEM)
			load_fail(ld, ld->line, "out of memory");
		else
			load_fail(ld, ld->line, "more than %d users", CONFIG_USERS_MAX);
		ld->rc = rc == KS_ERR_NOMEM ? KS_ERR_NOMEM : KS_ERR_INVAL;
		return 0;
	}
	return rc ? load_fail(ld, ld->line, "%s: %s", name, why) : 1;
}

static int file_transport(struct load *ld, const char *name, const char *v)
{
	const struct profile_field *f = profile_field_find(name);
	struct config_private *pv = ld->cfg->priv;
	char why[CONFIG_ERR_MAX];
	size_t i;

	if (!f)
		return load_fail(ld, ld->line, "unknown key '%.64s' in [transport]", name);
	i = (size_t)(f - profile_field_at(0));
	if (pv->ovr_line[i])
		return load_fail(ld, ld->line,
		                 "duplicate key '%s' in [transport] (first on line %u)", name,
		                 pv->ovr_line[i]);
	if (set_override(ld->cfg, f, v, (struct msg){ why, sizeof why }) != 0)
		return load_fail(ld, ld->line, "%s: %s", name, why);
	pv->ovr_line[i] = ld->line;
	return 1;
}

/* dup_check: has the file set k (or, for connect, any key it sets)? */
static int dup_check(struct load *ld, const struct key *k, const char *v)
{
	struct config_private *pv = ld->cfg->priv;
	const struct key *t[5];
	size_t n = 1, idx;

	t[0] = k;
	if (k->type == T_CONNSTR)
		n = targets(t, v);
	for (size_t j = 0; j < n; j++) {
		idx = (size_t)(t[j] - keys);
		if (!pv->line[idx] || t[j]->type == T_RULES)
			continue;
		if (k->type == T_CONNSTR)
			return load_fail(ld, ld->line, "connect: '%s' is already set on line %u",
			                 t[j]->name, pv->line[idx]);
		return load_fail(ld, ld->line, "duplicate key '%s' in [%s] (%s on line %u)",
		                 k->name, section_names[k->sec],
		                 pv->via_connect[idx] ? "already set by connect" : "first",
		                 pv->line[idx]);
	}
	return 1;
}

static void mark(struct load *ld, const struct key *k, const char *v)
{
	struct config_private *pv = ld->cfg->priv;
	const struct key *t[5];
	size_t n = 1;

	t[0] = k;
	if (k->type == T_CONNSTR)
		n = targets(t, v);
	for (size_t j = 0; j < n; j++) {
		pv->line[t[j] - keys] = ld->line;
		pv->via_connect[t[j] - keys] = k->type == T_CONNSTR;
	}
	pv->line[k - keys] = ld->line;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	enum section sec;
	const char *uname = NULL;
	size_t un = 0;
	const struct key *k;
	char why[CONFIG_ERR_MAX];

	if (ld->fail_line)
		return 1;
	if (!parse_section(section, &sec, &uname, &un))
		return load_fail(ld, ld->section_line, "unknown section [%.64s]", section);
	if (sec == SEC_USER)
		return file_user(ld, uname, un, name, value);
	if (sec == SEC_TRANSPORT)
		return file_transport(ld, name, value);
	k = find_key(sec, name);
	if (!k)
		return load_fail(ld, ld->line, "unknown key '%.64s' in [%s]", name,
		                 section_names[sec]);
	if (!dup_check(ld, k, value))
		return 0;
	if (set_value(ld->cfg, k, ld->cfg, value, LIST_FILE, (struct msg){ why, sizeof why }))
		return load_fail(ld, ld->line, "%s: %s", k->name, why);
	mark(ld, k, value);
	return 1;
}

int config_load(struct config *cfg, const char *name, const char *text, size_t len, char *err,
                size_t errlen)
{
	struct load ld = { .cfg = cfg, .m = { err, errlen } };
	int e;

	snprintf(cfg->priv->name, sizeof cfg->priv->name, "%s", name);
	if (len > CONFIG_TEXT_MAX) {
		say(ld.m, "%s: larger than %d bytes", cfg->priv->name, CONFIG_TEXT_MAX);
		return KS_ERR_TOOBIG;
	}
	ld.text = rd_init(text, len);
	e = ini_parse_stream(next_line, &ld, on_key, &ld);
	if (e < 0) {
		say(ld.m, "%s: out of memory", cfg->priv->name);
		return KS_ERR_NOMEM;
	}
	/* libinih reports the first bad line; if it comes before ours it is a
	 * line that is neither a [section] nor a key = value. */
	if (e > 0 && (!ld.fail_line || (uint32_t)e < ld.fail_line)) {
		say(ld.m, "%s:%d: expected [section] or key = value", cfg->priv->name, e);
		return KS_ERR_INVAL;
	}
	return ld.rc;
}

/* ---- options, defaults, finish ----------------------------------------- */

int config_set(struct config *cfg, enum config_role role, const char *key, const char *value,
               char *err, size_t errlen)
{
	struct msg m = { err, errlen };
	char why[CONFIG_ERR_MAX];
	struct msg w = { why, sizeof why };
	const struct key *k = find_key(SEC_COMMON, key);
	const struct profile_field *f;
	int rc;

	if (role != CONFIG_ROLE_LOCAL && role != CONFIG_ROLE_SERVER) {
		say(m, "unknown role %d", (int)role);
		return KS_ERR_INVAL;
	}
	if (!k)
		k = find_key(role == CONFIG_ROLE_LOCAL ? SEC_LOCAL : SEC_SERVER, key);
	if (k)
		rc = set_value(cfg, k, cfg, value, LIST_OPTION, w);
	else if ((f = profile_field_find(key)))
		rc = set_override(cfg, f, value, w);
	else {
		say(m, "unknown option '--%.64s'", key);
		return KS_ERR_INVAL;
	}
	if (rc)
		say(m, "--%s: %s", key, why);
	return rc == KS_ERR_LIMIT ? KS_ERR_INVAL : rc;
}

struct config *config_new(void)
{
	struct config *cfg = calloc(1, sizeof *cfg);

	if (!cfg || !(cfg->priv = calloc(1, sizeof *cfg->priv))) {
		free(cfg);
		return NULL;
	}
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (keys[i].def &&
		    set_value(cfg, &keys[i], cfg, keys[i].def, LIST_DEFAULT, (struct msg){ 0 })) {
			config_free(cfg);
			return NULL;
		}
	}
	cfg->profile = *profile_find(cfg->profile_name);
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	if (cfg->users) {
		sodium_memzero(cfg->users, cfg->priv->cap_users * sizeof *cfg->users);
		free(cfg->users);
	}
	sodium_memzero(cfg->priv, sizeof *cfg->priv);
	free(cfg->priv);
	sodium_memzero(cfg, sizeof *cfg);
	free(cfg);
}

static const char *cfg_name(const struct config *cfg)
{
	return cfg->priv->name[0] ? cfg->priv->name : "options";
}

static int build_profile(struct config *cfg, struct profile *p, struct msg m)
{
	char why[CONFIG_ERR_MAX];

	*p = *profile_find(cfg->profile_name);
	for (size_t i = 0; i < PROFILE_F_COUNT; i++)
		if (cfg->priv->ovr_set[i] && profile_set(p, profile_field_at(i), cfg->priv->ovr[i]))
			return KS_ERR_INVAL; /* unreachable: set_override checked the range */
	if (profile_validate(p, why, sizeof why) != 0) {
		say(m, "%s: profile '%s' with its [transport] overrides: %s", cfg_name(cfg),
		    p->name, why);
		return KS_ERR_INVAL;
	}
	return 0;
}

static int finish_local(const struct config *cfg, struct msg m)
{
	const char *missing = !cfg->server.set              ? "server"
	                      : !cfg->has_server_public_key ? "server_public_key"
	                      : !cfg->user[0]               ? "user"
	                      : !cfg->has_psk               ? "psk"
	                                                    : NULL;

	if (missing) {
		say(m, "%s: missing key '%s' in [local] (or set %sconnect)", cfg_name(cfg), missing,
		    strcmp(missing, "psk") ? "" : "psk_file or ");
		return KS_ERR_INVAL;
	}
	if (!cfg->socks_user[0] != !cfg->socks_password[0]) {
		say(m, "%s: socks_user and socks_password go together", cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	return 0;
}

static int finish_server(const struct config *cfg, struct msg m)
{
	if (cfg->has_private_key && cfg->private_key_file[0]) {
		say(m, "%s: set one of private_key and private_key_file in [server], not both",
		    cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	if (!cfg->has_private_key && !cfg->private_key_file[0]) {
		say(m, "%s: missing key 'private_key' or 'private_key_file' in [server]",
		    cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	if (cfg->n_users == 0) {
		say(m,
		    "%s: no [user NAME] section: nobody could connect (kcpsocks-server adduser "
		    "NAME -c FILE prints one)",
		    cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	return 0;
}

int config_finish(struct config *cfg, enum config_role role, char *err, size_t errlen)
{
	struct msg m = { err, errlen };
	struct profile p;
	int rc;

	if (role != CONFIG_ROLE_LOCAL && role != CONFIG_ROLE_SERVER) {
		say(m, "unknown role %d", (int)role);
		return KS_ERR_INVAL;
	}
	rc = build_profile(cfg, &p, m);
	if (rc == 0)
		rc = role == CONFIG_ROLE_LOCAL ? finish_local(cfg, m) : finish_server(cfg, m);
	if (rc == 0)
		cfg->profile = p;
	return rc;
}

/* ---- --help and docs/CONFIG.md, from the same tables ------------------- */

__attribute__((format(printf, 3, 4))) static void out(config_writer w, void *ctx, const char *fmt,
                                                      ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0)
		w(ctx, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void field_value(const struct profile_field *f, uint32_t v, char *buf, size_t n)
{
	if (f->is_bool)
		snprintf(buf, n, "%s", v ? "true" : "false");
	else
		snprintf(buf, n, "%u", v);
}

enum { HELP_WIDTH = 79, HELP_INDENT = 31 };

/* help_item writes "  --opt ARG   text", the text wrapped at blanks to
 * HELP_WIDTH columns, continuation lines indented to HELP_INDENT. */
static void help_item(config_writer w, void *ctx, const char *opt, const char *text)
{
	size_t col = 2 + strlen(opt), n;

	out(w, ctx, "  %s", opt);
	while (*text) {
		n = strcspn(text, " ");
		if (col >= HELP_INDENT && col + 1 + n > HELP_WIDTH) {
			out(w, ctx, "\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		} else {
			out(w, ctx, "%*s", col < HELP_INDENT ? (int)(HELP_INDENT - col) : 1, "");
			col = col < HELP_INDENT ? HELP_INDENT : col + 1;
		}
		out(w, ctx, "%.*s", (int)n, text);
		col += n;
		text += n;
		text += strspn(text, " ");
	}
	out(w, ctx, "\n");
}

static void help_section(enum section sec, config_writer w, void *ctx)
{
	char opt[64], text[512];

	out(w, ctx, "\n[%s]\n", section_names[sec]);
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const struct key *k = &keys[i];
		if (k->sec != sec)
			continue;
		snprintf(opt, sizeof opt, "--%s %s", k->name, k->metavar);
		if (k->type == T_U32)
			snprintf(text, sizeof text, "%s [%u..%u, default %s]", k->help, k->min,
			         k->max, k->def);
		else if (k->def && k->def[0])
			snprintf(text, sizeof text, "%s [default %s]", k->help, k->def);
		else
			snprintf(text, sizeof text, "%s", k->help);
		help_item(w, ctx, opt, text);
	}
}

void config_write_help(enum config_role role, config_writer w, void *ctx)
{
	char opt[64], text[512];

	out(w, ctx, "Every option is also a key of the config file, in the section shown.\n");
	help_section(SEC_COMMON, w, ctx);
	help_section(role == CONFIG_ROLE_SERVER ? SEC_SERVER : SEC_LOCAL, w, ctx);
	out(w, ctx, "\n[transport] (each overrides the chosen profile)\n");
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		snprintf(opt, sizeof opt, "--%s %s", f->key, f->is_bool ? "BOOL" : "N");
		if (f->is_bool)
			snprintf(text, sizeof text, "%s", f->help);
		else
			snprintf(text, sizeof text, "%s [%u..%u%s%s]", f->help, f->min, f->max,
			         f->unit[0] ? " " : "", f->unit);
		help_item(w, ctx, opt, text);
	}
	out(w, ctx, "\nProfiles (--profile NAME):\n");
	for (size_t i = 0; i < profile_count(); i++)
		help_item(w, ctx, profile_at(i)->name, profile_at(i)->summary);
}

static void doc_section(enum section sec, config_writer w, void *ctx)
{
	out(w, ctx,
	    "\n### [%s]\n\n| Key | Value | Default | Description |\n"
	    "| --- | --- | --- | --- |\n",
	    section_names[sec]);
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const struct key *k = &keys[i];
		char val[64];
		if (k->sec != sec)
			continue;
		if (k->type == T_U32)
			snprintf(val, sizeof val, "%s (%u..%u)", k->metavar, k->min, k->max);
		else
			snprintf(val, sizeof val, "%s", k->metavar);
		out(w, ctx, "| `%s` | %s | %s%s%s | %s |\n", k->name, val,
		    k->def && k->def[0] ? "`" : "", k->def && k->def[0] ? k->def : "-",
		    k->def && k->def[0] ? "`" : "", k->help);
	}
}

static void doc_transport(config_writer w, void *ctx)
{
	char v[32];

	out(w, ctx, "\n### [transport]\n\n| Key | Range |");
	for (size_t j = 0; j < profile_count(); j++)
		out(w, ctx, " %s |", profile_at(j)->name);
	out(w, ctx, " Description |\n| --- | --- |");
	for (size_t j = 0; j < profile_count(); j++)
		out(w, ctx, " --- |");
	out(w, ctx, " --- |\n");
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		if (f->is_bool)
			out(w, ctx, "| `%s` | true, false |", f->key);
		else
			out(w, ctx, "| `%s` | %u..%u%s%s |", f->key, f->min, f->max,
			    f->unit[0] ? " " : "", f->unit);
		for (size_t j = 0; j < profile_count(); j++) {
			field_value(f, profile_get(profile_at(j), f), v, sizeof v);
			out(w, ctx, " %s |", v);
		}
		out(w, ctx, " %s |\n", f->help);
	}
}

void config_write_doc(config_writer w, void *ctx)
{
	out(w, ctx, "### Profiles\n\n| Profile | Use it for |\n| --- | --- |\n");
	for (size_t i = 0; i < profile_count(); i++)
		out(w, ctx, "| `%s` | %s |\n", profile_at(i)->name, profile_at(i)->summary);
	doc_section(SEC_COMMON, w, ctx);
	doc_section(SEC_LOCAL, w, ctx);
	doc_section(SEC_SERVER, w, ctx);
	doc_section(SEC_USER, w, ctx);
	doc_transport(w, ctx);
}
