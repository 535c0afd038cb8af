/* config.h - the kcpsocks config file and command-line options, from one table.
 *
 * kcpsocks-local and kcpsocks-server read the same INI format:
 *
 *   [common]        profile, log_level, log_target, metrics_listen, run_as, max_fds
 *                   (keys before any section belong here too)
 *   [local]         listen, server, server_public_key, user, psk, psk_file,
 *                   socks_user, socks_password, connect, connect_file
 *   [server]        listen, private_key, private_key_file, allow, deny, profiles,
 *                   max_sessions, max_streams_per_session, connect_timeout_ms,
 *                   max_idle_timeout_ms,
 *                   resolver_lookups, resolver_servers
 *   [transport]     overrides of any profile field (profile.h), e.g. mtu = 1300
 *   [user NAME]     psk (one section per user the server accepts)
 *
 * One table (config.c) gives each key its section, type, range or values,
 * default and help; it drives the parser, validation, defaults, --help
 * (config_write_help) and docs/CONFIG.md (config_write_doc). Every key of
 * [common], of the binary's own section and of [transport] is also a
 * command-line option `--key value` (config_set), through the same code.
 *
 * Lifetime: config_new, then config_load (the file) and config_set (the
 * options, which replace file values), then config_finish, then read the
 * fields; config_free wipes the secrets. Pure: the caller reads the file;
 * no I/O, no clock, no globals.
 *
 * Error messages are complete lines without a trailing newline, made for
 * the user: `kcpsocks.conf:12: unknown key 'mtuu' in [local]`. Every
 * function that takes (err, errlen) writes a NUL-terminated message there on
 * failure (truncated to errlen; CONFIG_ERR_MAX always suffices); err may be
 * NULL.
 */
#ifndef KCPSOCKS_CONFIG_H
#define KCPSOCKS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "core/profile.h"

enum config_role {
	CONFIG_ROLE_LOCAL = 1,
	CONFIG_ROLE_SERVER = 2,
};

enum config_log_level {
	CONFIG_LOG_ERROR,
	CONFIG_LOG_WARN,
	CONFIG_LOG_INFO,
	CONFIG_LOG_DEBUG,
};

enum config_log_target {
	CONFIG_LOG_STDERR,
	CONFIG_LOG_SYSLOG,
};

/* Where the server looks names up (c-ares lookup orders). */
enum config_resolver_lookups {
	CONFIG_LOOKUPS_FB,    /* "fb": the hosts file, then DNS */
	CONFIG_LOOKUPS_FILES, /* "files": the hosts file only; DNS is never asked */
	CONFIG_LOOKUPS_B,     /* "b": DNS only */
};

/* HOST:PORT. host is a DNS name, an IPv4 literal or an IPv6 literal (written
 * in brackets in the file, stored without them). */
struct config_endpoint {
	bool set; /* false: not configured (e.g. metrics_listen = off) */
	char host[CONFIG_HOST_MAX + 1];
	uint16_t port;
};

/* One destination rule: an address block and a port range. */
struct config_rule {
	uint8_t family;   /* 0: any address (written `*`), 4 or 6, or
	                     CONFIG_RULE_SELF (written `self`): every address of
	                     the host's own interfaces (struct config_self) */
	uint8_t prefix;   /* bits of addr that must match: 0..32 or 0..128 */
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
	uint16_t port_lo, port_hi;
};

enum { CONFIG_RULE_SELF = 1 };

/* The exit host's own interface addresses as the I/O layer last read them
 * (src/io/ifaddrs.c): the data a `self` rule matches. IPv4 in the first 4
 * bytes of addr, network order. */
struct config_self {
	size_t n;
	struct config_self_addr {
		uint8_t family; /* 4 or 6 */
		uint8_t addr[16];
	} a[CONFIG_SELF_MAX];
};

struct config_user {
	char name[CONFIG_NAME_MAX + 1];
	uint8_t psk[CONFIG_KEY_LEN]; /* secret; wiped by config_free */
	bool has_psk;
	uint32_t line; /* of the section's first key, for messages */
};

/* A kcpsocks:// connection string, parsed. */
struct config_connstr {
	char user[CONFIG_NAME_MAX + 1];
	uint8_t psk[CONFIG_KEY_LEN]; /* secret */
	struct config_endpoint server;
	uint8_t server_key[CONFIG_KEY_LEN];
	char profile[PROFILE_NAME_MAX + 1]; /* "" if the string names none */
};

/* Read the fields after config_finish returned 0. Strings are NUL-terminated;
 * "" means unset. */
struct config {
	/* [common] */
	char profile_name[PROFILE_NAME_MAX + 1];
	struct profile profile; /* the chosen profile with overrides, set by finish */
	enum config_log_level log_level;
	enum config_log_target log_target;
	struct config_endpoint metrics_listen; /* loopback only; set == false: off */
	char run_as[CONFIG_NAME_MAX + 1];      /* drop privileges to this user */
	uint32_t max_fds;                      /* RLIMIT_NOFILE; 0 = keep */

	/* [local] */
	struct config_endpoint local_listen;
	struct config_endpoint server;
	uint8_t server_public_key[CONFIG_KEY_LEN];
	bool has_server_public_key;
	char user[CONFIG_NAME_MAX + 1];
	uint8_t psk[CONFIG_KEY_LEN]; /* secret */
	bool has_psk;
	char socks_user[CONFIG_PASSWORD_MAX + 1];
	char socks_password[CONFIG_PASSWORD_MAX + 1]; /* secret */
	/* Files the daemon reads (this module does no I/O) and hands to
	 * config_set as psk and connect before config_finish ("-": stdin). */
	char psk_file[CONFIG_PATH_MAX + 1];
	char connect_file[CONFIG_PATH_MAX + 1];

	/* [server] */
	struct config_endpoint server_listen;
	uint8_t private_key[CONFIG_KEY_LEN]; /* secret */
	bool has_private_key;
	char private_key_file[CONFIG_PATH_MAX + 1];
	struct config_rule allow[CONFIG_RULES_MAX];
	size_t n_allow;
	struct config_rule deny[CONFIG_RULES_MAX];
	size_t n_deny;
	uint32_t accepted_profiles; /* bit i: profile_at(i) is accepted */
	uint32_t max_sessions;
	uint32_t max_streams_per_session; /* a client gets min(this, profile max_streams) */
	uint32_t connect_timeout_ms;
	uint32_t max_idle_timeout_ms; /* clamp on the idle timeout a client asks for */
	enum config_resolver_lookups resolver_lookups;
	char resolver_servers[CONFIG_DNS_TEXT_MAX + 1]; /* "": resolv.conf's */

	/* [user NAME] */
	struct config_user *users; /* owned; n_users entries */
	size_t n_users;

	/* Parser bookkeeping: private to config.c. */
	struct config_private *priv; /* owned */
};

/* config_new returns a config holding every default from the table, or NULL
 * when out of memory. Free it with config_free. */
struct config *config_new(void);

/* config_free wipes every secret (psk, private_key, socks_password, the
 * users' psks) and frees cfg. NULL is a no-op. */
void config_free(struct config *cfg);

/* config_load parses the text of a config file. name is the file name used
 * in messages ("kcpsocks.conf:7: ..."); text need not be NUL-terminated and
 * is not retained. Call it once, before config_set.
 * Returns 0; KS_ERR_INVAL with the first error in err (file, line, key, what
 * is wrong); KS_ERR_TOOBIG if len > CONFIG_TEXT_MAX; KS_ERR_NOMEM. After an
 * error cfg must only be freed. */
KS_MUST_CHECK int config_load(struct config *cfg, const char *name, const char *text, size_t len,
                              char *err, size_t errlen);

/* config_set applies the command-line option `--key value` for role: key
 * (without the dashes) is looked up in [common], then the role's section,
 * then [transport]. An option replaces a value from the file (lists: the
 * option's entries replace the file's). Returns 0, or KS_ERR_INVAL with
 * e.g. "--mtu: 70000 is out of range 576..1500" or "unknown option
 * '--mtuu'" (cfg unchanged). */
KS_MUST_CHECK int config_set(struct config *cfg, enum config_role role, const char *key,
                             const char *value, char *err, size_t errlen);

/* config_finish applies the chosen profile and then the [transport]
 * overrides (in whatever order they came), validates the result (ranges, and
 * idle_timeout_ms >= 2 * keepalive_ms), and checks what role needs: for
 * local, server + server_public_key + user + psk (directly or via connect),
 * and socks_user and socks_password together; for server, exactly one of
 * private_key / private_key_file and at least one [user NAME] (each has a
 * psk: a user exists only once its psk parsed). The daemons' --check-config
 * runs this. Returns 0 (cfg->profile is then set) or KS_ERR_INVAL with the
 * message in err, e.g. "kcpsocks.conf: missing key 'server' in [local] (or
 * set connect)". May be called again after more config_set calls. */
KS_MUST_CHECK int config_finish(struct config *cfg, enum config_role role, char *err,
                                size_t errlen);

/* config_find_user returns the [user NAME] entry, or NULL. */
const struct config_user *config_find_user(const struct config *cfg, const char *name);

/* config_dest_allowed_with applies the server's destination policy to an
 * address (family 4 or 6, addr in network order, 4 or 16 bytes) and port: a
 * match in allow permits; otherwise a match in deny refuses; otherwise it is
 * allowed. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is also judged as
 * the IPv4 address a.b.c.d, where a dual-stack socket would connect. Any
 * other family is refused. A `self` rule matches the addresses in self
 * (borrowed; NULL: none known). The default deny list holds `self`,
 * loopback, private, link-local and the other IANA special-purpose blocks
 * (docs/CONFIG.md lists them); setting deny replaces it. */
KS_MUST_CHECK bool config_dest_allowed_with(const struct config *cfg,
                                            const struct config_self *self, int family,
                                            const uint8_t *addr, uint16_t port);

/* config_dest_allowed is config_dest_allowed_with without own addresses
 * (a `self` rule matches nothing). */
KS_MUST_CHECK bool config_dest_allowed(const struct config *cfg, int family, const uint8_t *addr,
                                       uint16_t port);

/* config_self_has: is (family, addr) one of self's addresses? NULL: no. */
KS_MUST_CHECK bool config_self_has(const struct config_self *self, int family, const uint8_t *addr);

/* config_rule_parse parses one rule: `*`, `self`, an IPv4 or IPv6 address,
 * with an optional /PREFIX (not after `*` or `self`), then an optional :PORT
 * or :LO-HI. IPv6 with a port and
 * no prefix goes in brackets: `[::1]:80`, `2001:db8::/32:443`.
 * Returns 0 or KS_ERR_INVAL (out unchanged). */
KS_MUST_CHECK int config_rule_parse(const char *text, size_t len, struct config_rule *out);

/* config_rule_match: does the rule cover (family, addr, port)? A `self`
 * rule matches nothing here (it needs the own addresses: see
 * config_dest_allowed_with). */
KS_MUST_CHECK bool config_rule_match(const struct config_rule *r, int family, const uint8_t *addr,
                                     uint16_t port);

/* config_connstr_parse parses
 *   kcpsocks://USER:PSK@HOST:PORT?key=SERVERPUB[&profile=NAME]
 * with PSK and SERVERPUB in unpadded base64url (32 bytes each) and NAME a
 * built-in profile. Returns 0 or KS_ERR_INVAL with the reason in err (out is
 * then unchanged). */
KS_MUST_CHECK int config_connstr_parse(const char *s, struct config_connstr *out, char *err,
                                       size_t errlen);

/* config_connstr_format writes c as a NUL-terminated string into buf.
 * Returns its length (without the NUL), KS_ERR_FULL if buf is too small
 * (CONFIG_CONNSTR_MAX always suffices), or KS_ERR_INVAL if a field is
 * unusable (empty user or host, port 0, unknown profile). */
KS_MUST_CHECK ssize_t config_connstr_format(const struct config_connstr *c, char *buf, size_t len);

/* A sink for generated text: called with pieces of the output in order. */
typedef void (*config_writer)(void *ctx, const char *text, size_t len);

/* config_write_help writes the options of role (one line each: option,
 * argument, help, default or range), then the profiles, for --help. */
void config_write_help(enum config_role role, config_writer w, void *ctx);

/* config_write_doc writes the Markdown key and profile reference that
 * docs/CONFIG.md carries between these two marker lines (each ends in \n). */
#define CONFIG_DOC_BEGIN "<!-- BEGIN generated by tools/gen-config-doc: do not edit -->\n"
#define CONFIG_DOC_END   "<!-- END generated -->\n"
void config_write_doc(config_writer w, void *ctx);

#endif
