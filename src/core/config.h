/* config.h - the kcpsocks config file and command-line options, from one table:
 * the key table, the setters, the file loader and the checks a role needs.
 *
 * kcpsocks-local and kcpsocks-server read the same INI format:
 *
 *   [common]        profile, log_level, log_target, metrics_listen, run_as, max_fds,
 *                   udp_associations, udp_rate, udp_queue_bytes, udp_idle_timeout_ms
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
 * and docs/CONFIG.md (configdoc.h). Every key of
 * [common], of the binary's own section and of [transport] is also a
 * command-line option `--key value` (config_set), through the same code.
 *
 * The value syntaxes live in cfgtext.h, the connect string in connstr.h and
 * the destination rules (allow, deny) and their verdict in policy.h; this
 * header includes them, so their users need only config.h.
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
#include "core/cfgtext.h"
#include "core/connstr.h"
#include "core/policy.h"
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

/* Which envelope AEAD a daemon offers (docs/PROTOCOL.md secure layer 2.7). */
enum config_cipher {
	CONFIG_CIPHER_AUTO,     /* AES-256-GCM where both ends have it, else ChaCha20 */
	CONFIG_CIPHER_CHACHA20, /* ChaCha20-Poly1305 only: never offer AES-256-GCM */
};

/* Per-stream delivery (docs/PROTOCOL.md mux step 10, K14): offered by a
 * client, accepted by a server, only when on. */
enum config_stream_delivery {
	CONFIG_STREAM_DELIVERY_OFF, /* ordered byte stream */
	CONFIG_STREAM_DELIVERY_ON,  /* offer / accept TPARAMS_FEAT_STREAM_DELIVERY (the default) */
};

/* Where the server looks names up (c-ares lookup orders). */
enum config_resolver_lookups {
	CONFIG_LOOKUPS_FB,    /* "fb": the hosts file, then DNS */
	CONFIG_LOOKUPS_FILES, /* "files": the hosts file only; DNS is never asked */
	CONFIG_LOOKUPS_B,     /* "b": DNS only */
};

struct config_user {
	char name[CONFIG_NAME_MAX + 1];
	uint8_t psk[CONFIG_KEY_LEN]; /* secret; wiped by config_free */
	bool has_psk;
	uint32_t line; /* of the section's first key, for messages */
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
	uint32_t udp_associations;             /* per session; 0: UDP ASSOCIATE refused */
	uint32_t udp_rate;                     /* datagrams/s per association; 0: unlimited */
	uint32_t udp_queue_bytes;              /* per association, waiting for a lookup */
	uint32_t udp_idle_timeout_ms;          /* an association silent this long ends */
	enum config_cipher cipher;             /* envelope AEAD offered */
	/* mux step 10: offered (local) / accepted (server) when on */
	enum config_stream_delivery stream_delivery;

	/* [local] */
	struct config_endpoint local_listen;
	struct config_endpoint server; /* servers.e[0] */
	struct config_servers servers; /* in order of preference, n >= 1 */
	uint32_t server_return_ms;     /* on a fallback: back to the first after this */
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
	struct config_policy policy; /* allow, deny */
	uint32_t accepted_profiles;  /* bit i: profile_at(i) is accepted */
	uint32_t max_sessions;
	uint32_t sessions_per_user;       /* 1: a new session replaces the user's old one */
	uint32_t max_streams_per_session; /* a client gets min(this, profile max_streams) */
	uint32_t connect_timeout_ms;
	uint32_t max_idle_timeout_ms; /* clamp on the idle timeout a client asks for */
	enum config_resolver_lookups resolver_lookups;  /* [local] too: the server's name */
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

#endif
