/* config.c - the config file and options of both daemons, from one table.
 *
 * Shape: `config_keys[]` below is the table. config_new applies each key's
 * default through the same setter the file and the options use; config_load
 * feeds libinih line by line from the caller's text (a reader that counts
 * lines, so every message carries FILE:LINE); config_set is the command
 * line; config_finish applies profile + overrides and checks what a role
 * needs. The value syntaxes are cfgtext.c's, the connection string
 * connstr.c's, the rules policy.c's; --help and CONFIG.md are configdoc.c's.
 */
#include "core/config.h"

#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/rd.h"
#include "core/config_keys.h"

const char *const config_section_names[SEC_COUNT] = { "common", "local", "server", "transport",
	                                              "user NAME" };

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_targets[] = { "stderr", "syslog", NULL };
static const char *const lookups[] = { "fb", "files", "b", NULL }; /* config_resolver_lookups */
static const char *const ciphers[] = { "auto", "chacha20", NULL }; /* enum config_cipher */
static const char *const onoff[] = { "off", "on", NULL };          /* enum config_stream_delivery */

#define OFF(f)    offsetof(struct config, f)
#define UOFF(f)   offsetof(struct config_user, f)
#define STRMAX(f) (uint32_t)(sizeof(((struct config *)0)->f) - 1)

const struct config_key config_keys[] = {
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
	{ SEC_COMMON, "udp_associations", T_U32, OFF(udp_associations), NO_FLAG, 0,
	  UDP_ASSOCIATIONS_MAX, NULL, "N", "16",
	  "UDP ASSOCIATE: associations one session may hold at once (beyond: REP 01); 0: "
	  "UDP ASSOCIATE refused (REP 07 from the local daemon, REP 02 from the server)" },
	{ SEC_COMMON, "udp_rate", T_U32, OFF(udp_rate), NO_FLAG, 0, UDP_RATE_MAX, NULL, "N", "2000",
	  "datagrams per second per UDP association and direction, burst 1 s worth; beyond: "
	  "dropped, counted (0: unlimited)" },
	{ SEC_COMMON, "udp_queue_bytes", T_U32, OFF(udp_queue_bytes), NO_FLAG, UDP_QUEUE_BYTES_MIN,
	  UDP_QUEUE_BYTES_MAX, NULL, "BYTES", "65536",
	  "datagram bytes per UDP association waiting for a name lookup (server); beyond: "
	  "dropped, counted" },
	{ SEC_COMMON, "udp_idle_timeout_ms", T_U32, OFF(udp_idle_timeout_ms), NO_FLAG,
	  UDP_IDLE_MS_MIN, UDP_IDLE_MS_MAX, NULL, "MS", "120000",
	  "a UDP association with no datagram either way for this long ends (and its TCP control "
	  "connection is closed)" },
	{ SEC_COMMON, "cipher", T_ENUM, OFF(cipher), NO_FLAG, 0, 0, ciphers, "CIPHER", "auto",
	  "datagram encryption after the handshake. auto: AES-256-GCM when this CPU has AES "
	  "instructions (AES-NI) and the peer offers it too, else ChaCha20-Poly1305; chacha20: "
	  "ChaCha20-Poly1305 always (AES-256-GCM never offered). The handshake itself is "
	  "ChaCha20-Poly1305 either way" },
	{ SEC_COMMON, "stream_delivery", T_ENUM, OFF(stream_delivery), NO_FLAG, 0, 0, onoff, "MODE",
	  "on",
	  "on or off. on: per-stream delivery: a lost datagram stalls only the streams whose data "
	  "it carried, not every stream behind it. Used only when both ends have it on (the local "
	  "daemon offers it, the server accepts it; a peer without it gets the ordered stream); "
	  "off: one ordered byte stream. On by default: at loss a small request under bulk "
	  "waits about half as long (median), and bulk transfers lose a few % (2% more "
	  "segments; docs/bench/concurrency.md)" },

	{ SEC_LOCAL, "listen", T_ENDPOINT, OFF(local_listen), NO_FLAG, 0, 0, NULL, "HOST:PORT",
	  "127.0.0.1:1080", "SOCKS5 listen address (TCP)" },
	{ SEC_LOCAL, "server", T_ENDPOINTS, OFF(servers), NO_FLAG, 0, 0, NULL, "HOST:PORT,...",
	  NULL,
	  "the kcpsocks-server to tunnel to (UDP); required unless connect is set. Several, "
	  "comma-separated (at most 4, one key): the first that completes a handshake is used, "
	  "the next on failure (docs/OPERATIONS.md)" },
	{ SEC_LOCAL, "server_return_ms", T_U32, OFF(server_return_ms), NO_FLAG, 0, 86400000, NULL,
	  "MS", "60000",
	  "on a fallback server: every MS, one handshake with the first server; once it "
	  "answers, go back to it at a moment no stream is open (0: stay)" },
	{ SEC_LOCAL, "resolver_lookups", T_ENUM, OFF(resolver_lookups), NO_FLAG, 0, 0, lookups,
	  "ORDER", "fb",
	  "how server names are looked up: fb (hosts file, then DNS), files or b (DNS only)" },
	{ SEC_LOCAL, "resolver_servers", T_STR, OFF(resolver_servers), NO_FLAG, 0,
	  STRMAX(resolver_servers), NULL, "IP[:PORT],...", NULL,
	  "DNS servers for the server names instead of /etc/resolv.conf's (at most 8)" },
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
	{ SEC_SERVER, "allow", T_RULES, OFF(policy.allow), OFF(policy.n_allow), 0, 0, NULL, "RULES",
	  "",
	  "destinations always allowed: comma-separated ADDR[/PREFIX][:PORT[-PORT]], * or self" },
	{ SEC_SERVER, "deny", T_RULES, OFF(policy.deny), OFF(policy.n_deny), 0, 0, NULL, "RULES",
	  CONFIG_DEFAULT_DENY,
	  "destinations refused unless allowed; setting it replaces the default" },
	{ SEC_SERVER, "profiles", T_PROFILE_LIST, OFF(accepted_profiles), NO_FLAG, 0, 0, NULL,
	  "NAMES", "default, fast, lossy, mobile, low-memory",
	  "profiles a client may ask for (comma-separated)" },
	{ SEC_SERVER, "max_sessions", T_U32, OFF(max_sessions), NO_FLAG, 1, SESSIONS_MAX, NULL, "N",
	  "1024", "client sessions at once" },
	{ SEC_SERVER, "sessions_per_user", T_U32, OFF(sessions_per_user), NO_FLAG, 1,
	  SESSIONS_PER_USER_MAX, NULL, "N", "8",
	  "sessions one user may hold at once (devices); beyond, the idlest goes; 1: a new "
	  "session replaces the old one at once" },
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

#define KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

const size_t config_key_count = KEY_COUNT;

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

static bool is_loopback(const char *host)
{
	uint8_t a[16];
	static const uint8_t one6[16] = { [15] = 1 };

	if (strcmp(host, "localhost") == 0)
		return true;
	if (cfgtext_pton(4, host, strlen(host), a))
		return a[0] == 127;
	return cfgtext_pton(6, host, strlen(host), a) && memcmp(a, one6, 16) == 0;
}

/* ---- the setters: one per key type, each all-or-nothing ---------------- */

static int set_u32(void *dst, const struct config_key *k, const char *v, size_t n,
                   struct cfgtext_msg m)
{
	uint64_t x;
	uint32_t x32;

	if (!cfgtext_parse_u64(v, n, &x)) {
		cfgtext_say(m, "'%.32s' is not a number", v);
		return KS_ERR_INVAL;
	}
	if (x < k->min || x > k->max) {
		cfgtext_say(m, "%s is out of range %u..%u", v, k->min, k->max);
		return KS_ERR_INVAL;
	}
	x32 = (uint32_t)x;
	memcpy(dst, &x32, sizeof x32);
	return 0;
}

static int set_enum(void *dst, const struct config_key *k, const char *v, struct cfgtext_msg m)
{
	for (int i = 0; k->values[i]; i++) {
		if (strcmp(v, k->values[i]) == 0) {
			memcpy(dst, &i, sizeof i);
			return 0;
		}
	}
	/* The names, "a, b or c", from the table rather than the help text. */
	char names[128] = "";
	size_t used = 0;

	for (int i = 0; k->values[i] && used < sizeof names; i++) {
		const char *sep = i == 0 ? "" : k->values[i + 1] ? ", " : " or ";
		int w = snprintf(names + used, sizeof names - used, "%s%s", sep, k->values[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	cfgtext_say(m, "'%.32s' is not one of: %s", v, names);
	return KS_ERR_INVAL;
}

static int set_endpoint(void *dst, const struct config_key *k, const char *v, size_t n,
                        struct cfgtext_msg m)
{
	struct config_endpoint e = { .set = false };

	if (k->type == T_LOOPBACK && strcmp(v, "off") == 0) {
		memcpy(dst, &e, sizeof e);
		return 0;
	}
	if (!cfgtext_parse_endpoint(v, n, &e)) {
		cfgtext_say(m, "'%.64s' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)", v);
		return KS_ERR_INVAL;
	}
	if (k->type == T_LOOPBACK && !is_loopback(e.host)) {
		cfgtext_say(m,
		            "'%.64s' is not on a loopback address (127.0.0.0/8, [::1], localhost)",
		            v);
		return KS_ERR_INVAL;
	}
	memcpy(dst, &e, sizeof e);
	return 0;
}

/* HOST:PORT[,HOST:PORT...] into a struct config_servers; the first also
 * into cfg->server. */
static int set_endpoints(struct config *cfg, void *dst, const char *v, size_t n,
                         struct cfgtext_msg m)
{
	struct config_servers l = { 0 };
	const char *s = v, *end = v + n;

	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);

		while (len && *s == ' ')
			s++, len--;
		while (len && s[len - 1] == ' ')
			len--;
		if (l.n == CONFIG_SERVERS_MAX) {
			cfgtext_say(m, "more than %d servers", CONFIG_SERVERS_MAX);
			return KS_ERR_INVAL;
		}
		if (!cfgtext_parse_endpoint(s, len, &l.e[l.n])) {
			cfgtext_say(m,
			            "'%.*s' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)",
			            cfgtext_shown(s, len), s);
			return KS_ERR_INVAL;
		}
		l.n++;
		if (!comma)
			break;
		s = comma + 1;
	}
	memcpy(dst, &l, sizeof l);
	cfg->server = l.e[0];
	return 0;
}

static int set_str(void *dst, const struct config_key *k, const char *v, size_t n,
                   struct cfgtext_msg m)
{
	bool secret = k->type == T_SECRET_STR;

	if (k->type == T_NAME && !cfgtext_valid_name(v, n)) {
		cfgtext_say(m, "'%.64s' is not a name (1..%d of A-Z a-z 0-9 . _ -)", v,
		            CONFIG_NAME_MAX);
		return KS_ERR_INVAL;
	}
	if (n > k->max) {
		cfgtext_say(m, "longer than %u characters", k->max);
		return KS_ERR_INVAL;
	}
	if (!cfgtext_printable(v, n)) {
		cfgtext_say(m, "%s%.64s%s holds control characters", secret ? "" : "'",
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

static int set_key32(void *dst, bool *has, const struct config_key *k, const char *v, size_t n,
                     struct cfgtext_msg m)
{
	if (!cfgtext_parse_key32(v, n, dst)) {
		if (placeholder(v, n))
			cfgtext_say(
			        m,
			        "'%.*s' is a placeholder: put the real key here (kcpsocks-server "
			        "keygen and adduser print them)",
			        cfgtext_shown(v, n), v);
		else if (k->type == T_SECRET_KEY)
			cfgtext_say(m, "not a base64url 32-byte key (%d characters)",
			            CONFIG_KEY_B64_LEN);
		else
			cfgtext_say(m, "'%.64s' is not a base64url 32-byte key (%d characters)", v,
			            CONFIG_KEY_B64_LEN);
		return KS_ERR_INVAL;
	}
	*has = true;
	return 0;
}

static int set_profile_list(void *dst, const char *v, size_t n, struct cfgtext_msg m)
{
	struct rd r = rd_init(v, n);
	uint32_t set = 0;
	const char *item;
	size_t in;

	while (rd_left(&r)) {
		char name[PROFILE_NAME_MAX + 1];
		cfgtext_take_until(&r, ',', &item, &in);
		cfgtext_trim(&item, &in);
		if (!cfgtext_profile_name(name, item, in)) {
			cfgtext_say(m, "unknown profile '%.*s'", (int)(in > 32 ? 32 : in), item);
			return KS_ERR_INVAL;
		}
		for (size_t i = 0; i < profile_count(); i++)
			if (strcmp(profile_at(i)->name, name) == 0)
				set |= 1u << i;
	}
	if (!set) {
		cfgtext_say(m, "empty list");
		return KS_ERR_INVAL;
	}
	memcpy(dst, &set, sizeof set);
	return 0;
}

/* set_rules parses a comma-separated list. A list keeps growing while the
 * same source (file or options) adds to it; a new source starts it over. */
static int set_rules(struct config *cfg, const struct config_key *k, const char *v, size_t n,
                     enum list_src src, struct cfgtext_msg m)
{
	_Static_assert(CONFIG_RULES_MAX <= 256, "the parse buffer is on the stack");
	size_t idx = (size_t)(k - config_keys), have, got = 0;
	struct config_rule tmp[CONFIG_RULES_MAX];
	size_t *count = (size_t *)((char *)cfg + k->has_off);
	struct rd r = rd_init(v, n);
	const char *item;
	size_t in;

	have = cfg->priv->list_src[idx] == src ? *count : 0;
	while (rd_left(&r)) {
		cfgtext_take_until(&r, ',', &item, &in);
		if (have + got == CONFIG_RULES_MAX) {
			cfgtext_say(m, "more than %d rules", CONFIG_RULES_MAX);
			return KS_ERR_LIMIT;
		}
		if (config_rule_parse(item, in, &tmp[got]) != 0) {
			cfgtext_trim(&item, &in);
			cfgtext_say(m, "'%.*s' is not ADDR[/PREFIX][:PORT[-PORT]] or *",
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
static int set_connect(struct config *cfg, const char *v, struct cfgtext_msg m)
{
	struct config_connstr c;

	if (config_connstr_parse(v, &c, m.p, m.n) != 0)
		return KS_ERR_INVAL;
	cfg->server = c.server;
	cfg->servers = c.servers;
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
static int set_value(struct config *cfg, const struct config_key *k, void *base, const char *v,
                     enum list_src src, struct cfgtext_msg m)
{
	char *dst = (char *)base + k->off;
	size_t n = strlen(v);
	bool dummy;

	if (n == 0 && k->type != T_RULES) {
		cfgtext_say(m, "empty value");
		return KS_ERR_INVAL;
	}
	switch (k->type) {
	case T_U32: return set_u32(dst, k, v, n, m);
	case T_ENUM: return set_enum(dst, k, v, m);
	case T_ENDPOINT:
	case T_LOOPBACK: return set_endpoint(dst, k, v, n, m);
	case T_ENDPOINTS: return set_endpoints(cfg, dst, v, n, m);
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
		if (!cfgtext_profile_name(dst, v, n)) {
			cfgtext_say(m, "unknown profile '%.32s'", v);
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
                        struct cfgtext_msg m)
{
	size_t i = (size_t)(f - profile_field_at(0));
	uint64_t x;
	uint32_t b;

	if (f->is_bool) {
		if (!parse_bool(v, &b)) {
			cfgtext_say(m, "'%.32s' is not true or false", v);
			return KS_ERR_INVAL;
		}
		x = b;
	} else if (!cfgtext_parse_u64(v, strlen(v), &x)) {
		cfgtext_say(m, "'%.32s' is not a number", v);
		return KS_ERR_INVAL;
	} else if (x < f->min || x > f->max) {
		cfgtext_say(m, "%s is out of range %u..%u", v, f->min, f->max);
		return KS_ERR_INVAL;
	}
	cfg->priv->ovr[i] = (uint32_t)x;
	cfg->priv->ovr_set[i] = true;
	return 0;
}

/* ---- lookups ----------------------------------------------------------- */

static const struct config_key *find_key(enum section sec, const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (config_keys[i].sec == sec && strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* targets lists the keys that `connect` (value v) sets, for duplicate
 * checks: profile only if the string names one. */
static size_t targets(const struct config_key *out[static 5], const char *v)
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

	cfgtext_trim(&s, &n);
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
		cfgtext_trim(uname, un);
		*sec = SEC_USER;
		return cfgtext_valid_name(*uname, *un);
	} else
		return false;
	return true;
}

/* user_index is the index of [user NAME], or n_users. */
static size_t user_index(const struct config *cfg, const char *name)
{
	size_t i = 0;

	while (i < cfg->n_users && strcmp(cfg->users[i].name, name) != 0)
		i++;
	return i;
}

const struct config_user *config_find_user(const struct config *cfg, const char *name)
{
	size_t i = user_index(cfg, name);

	return i < cfg->n_users ? &cfg->users[i] : NULL;
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
	struct cfgtext_msg m;
};

__attribute__((format(printf, 3, 4))) static int load_fail(struct load *ld, uint32_t line,
                                                           const char *fmt, ...)
{
	char what[CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	cfgtext_say(ld->m, "%s:%u: %s", ld->cfg->priv->name, line, what);
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
	const struct config_key *k = find_key(SEC_USER, name);
	char nm[CONFIG_NAME_MAX + 1] = { 0 };
	struct config_user tmp = { 0 }, *u;
	char why[CONFIG_ERR_MAX];
	size_t i;
	int rc;

	memcpy(nm, uname, un);
	if (!k)
		return load_fail(ld, ld->line, "unknown key '%.64s' in [user %s]", name, nm);
	i = user_index(cfg, nm);
	u = i < cfg->n_users ? &cfg->users[i] : NULL;
	if (u && u->has_psk)
		return load_fail(ld, ld->line, "duplicate key '%s' in [user %s] (first on line %u)",
		                 name, nm, u->line);
	rc = set_value(cfg, k, &tmp, v, LIST_FILE, (struct cfgtext_msg){ why, sizeof why });
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
	if (set_override(ld->cfg, f, v, (struct cfgtext_msg){ why, sizeof why }) != 0)
		return load_fail(ld, ld->line, "%s: %s", name, why);
	pv->ovr_line[i] = ld->line;
	return 1;
}

/* dup_check: has the file set k (or, for connect, any key it sets)? */
static int dup_check(struct load *ld, const struct config_key *k, const char *v)
{
	struct config_private *pv = ld->cfg->priv;
	const struct config_key *t[5];
	size_t n = 1, idx;

	t[0] = k;
	if (k->type == T_CONNSTR)
		n = targets(t, v);
	for (size_t j = 0; j < n; j++) {
		idx = (size_t)(t[j] - config_keys);
		if (!pv->line[idx] || t[j]->type == T_RULES)
			continue;
		if (k->type == T_CONNSTR)
			return load_fail(ld, ld->line, "connect: '%s' is already set on line %u",
			                 t[j]->name, pv->line[idx]);
		return load_fail(ld, ld->line, "duplicate key '%s' in [%s] (%s on line %u)",
		                 k->name, config_section_names[k->sec],
		                 pv->via_connect[idx] ? "already set by connect" : "first",
		                 pv->line[idx]);
	}
	return 1;
}

static void mark(struct load *ld, const struct config_key *k, const char *v)
{
	struct config_private *pv = ld->cfg->priv;
	const struct config_key *t[5];
	size_t n = 1;

	t[0] = k;
	if (k->type == T_CONNSTR)
		n = targets(t, v);
	for (size_t j = 0; j < n; j++) {
		pv->line[t[j] - config_keys] = ld->line;
		pv->via_connect[t[j] - config_keys] = k->type == T_CONNSTR;
	}
	pv->line[k - config_keys] = ld->line;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	enum section sec;
	const char *uname = NULL;
	size_t un = 0;
	const struct config_key *k;
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
		                 config_section_names[sec]);
	if (!dup_check(ld, k, value))
		return 0;
	if (set_value(ld->cfg, k, ld->cfg, value, LIST_FILE,
	              (struct cfgtext_msg){ why, sizeof why }))
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
		cfgtext_say(ld.m, "%s: larger than %d bytes", cfg->priv->name, CONFIG_TEXT_MAX);
		return KS_ERR_TOOBIG;
	}
	ld.text = rd_init(text, len);
	e = ini_parse_stream(next_line, &ld, on_key, &ld);
	if (e < 0) {
		cfgtext_say(ld.m, "%s: out of memory", cfg->priv->name);
		return KS_ERR_NOMEM;
	}
	/* libinih reports the first bad line; if it comes before ours it is a
	 * line that is neither a [section] nor a key = value. */
	if (e > 0 && (!ld.fail_line || (uint32_t)e < ld.fail_line)) {
		cfgtext_say(ld.m, "%s:%d: expected [section] or key = value", cfg->priv->name, e);
		return KS_ERR_INVAL;
	}
	return ld.rc;
}

/* ---- options, defaults, finish ----------------------------------------- */

int config_set(struct config *cfg, enum config_role role, const char *key, const char *value,
               char *err, size_t errlen)
{
	struct cfgtext_msg m = { err, errlen };
	char why[CONFIG_ERR_MAX];
	struct cfgtext_msg w = { why, sizeof why };
	const struct config_key *k = find_key(SEC_COMMON, key);
	const struct profile_field *f;
	int rc;

	if (role != CONFIG_ROLE_LOCAL && role != CONFIG_ROLE_SERVER) {
		cfgtext_say(m, "unknown role %d", (int)role);
		return KS_ERR_INVAL;
	}
	if (!k)
		k = find_key(role == CONFIG_ROLE_LOCAL ? SEC_LOCAL : SEC_SERVER, key);
	if (k)
		rc = set_value(cfg, k, cfg, value, LIST_OPTION, w);
	else if ((f = profile_field_find(key)))
		rc = set_override(cfg, f, value, w);
	else {
		cfgtext_say(m, "unknown option '--%.64s'", key);
		return KS_ERR_INVAL;
	}
	if (rc)
		cfgtext_say(m, "--%s: %s", key, why);
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
		if (config_keys[i].def && set_value(cfg, &config_keys[i], cfg, config_keys[i].def,
		                                    LIST_DEFAULT, (struct cfgtext_msg){ 0 })) {
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

static int build_profile(struct config *cfg, struct profile *p, struct cfgtext_msg m)
{
	char why[CONFIG_ERR_MAX];

	*p = *profile_find(cfg->profile_name);
	for (size_t i = 0; i < PROFILE_F_COUNT; i++)
		if (cfg->priv->ovr_set[i] && profile_set(p, profile_field_at(i), cfg->priv->ovr[i]))
			return KS_ERR_INVAL; /* unreachable: set_override checked the range */
	if (profile_validate(p, why, sizeof why) != 0) {
		cfgtext_say(m, "%s: profile '%s' with its [transport] overrides: %s", cfg_name(cfg),
		            p->name, why);
		return KS_ERR_INVAL;
	}
	return 0;
}

static int finish_local(const struct config *cfg, struct cfgtext_msg m)
{
	const char *missing = !cfg->server.set              ? "server"
	                      : !cfg->has_server_public_key ? "server_public_key"
	                      : !cfg->user[0]               ? "user"
	                      : !cfg->has_psk               ? "psk"
	                                                    : NULL;

	if (missing) {
		cfgtext_say(m, "%s: missing key '%s' in [local] (or set %sconnect)", cfg_name(cfg),
		            missing, strcmp(missing, "psk") ? "" : "psk_file or ");
		return KS_ERR_INVAL;
	}
	if (!cfg->socks_user[0] != !cfg->socks_password[0]) {
		cfgtext_say(m, "%s: socks_user and socks_password go together", cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	return 0;
}

static int finish_server(const struct config *cfg, struct cfgtext_msg m)
{
	if (cfg->has_private_key && cfg->private_key_file[0]) {
		cfgtext_say(m,
		            "%s: set one of private_key and private_key_file in [server], not both",
		            cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	if (!cfg->has_private_key && !cfg->private_key_file[0]) {
		cfgtext_say(m, "%s: missing key 'private_key' or 'private_key_file' in [server]",
		            cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	if (cfg->n_users == 0) {
		cfgtext_say(
		        m,
		        "%s: no [user NAME] section: nobody could connect (kcpsocks-server adduser "
		        "NAME -c FILE prints one)",
		        cfg_name(cfg));
		return KS_ERR_INVAL;
	}
	return 0;
}

int config_finish(struct config *cfg, enum config_role role, char *err, size_t errlen)
{
	struct cfgtext_msg m = { err, errlen };
	struct profile p;
	int rc;

	if (role != CONFIG_ROLE_LOCAL && role != CONFIG_ROLE_SERVER) {
		cfgtext_say(m, "unknown role %d", (int)role);
		return KS_ERR_INVAL;
	}
	rc = build_profile(cfg, &p, m);
	if (rc == 0)
		rc = role == CONFIG_ROLE_LOCAL ? finish_local(cfg, m) : finish_server(cfg, m);
	if (rc == 0)
		cfg->profile = p;
	return rc;
}
