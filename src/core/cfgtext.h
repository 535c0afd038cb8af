/* cfgtext.h - the value syntaxes the config modules share: names, decimals,
 * base64url keys, IP literals, HOST:PORT, and the message buffer they
 * report into.
 *
 * config.c (the key table), connstr.c (kcpsocks:// strings) and policy.c
 * (destination rules) read these forms from users; each function checks its
 * whole input and leaves its output unchanged when it returns false. Pure: no
 * I/O, no globals.
 */
#ifndef KCPSOCKS_CFGTEXT_H
#define KCPSOCKS_CFGTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "base/rd.h"
#include "core/profile.h"

/* HOST:PORT. host is a DNS name, an IPv4 literal or an IPv6 literal (written
 * in brackets in the file, stored without them). */
struct config_endpoint {
	bool set; /* false: not configured (e.g. metrics_listen = off) */
	char host[CONFIG_HOST_MAX + 1];
	uint16_t port;
};

/* The servers a client may use, in order of preference (docs/CONFIG.md
 * `server`: a comma list). */
enum { CONFIG_SERVERS_MAX = 4 };
struct config_servers {
	size_t n;
	struct config_endpoint e[CONFIG_SERVERS_MAX];
};

/* A message buffer: cores cannot print, they format into the caller's.
 * p may be NULL (no message wanted). */
struct cfgtext_msg {
	char *p; /* borrowed */
	size_t n;
};

/* cfgtext_say formats into m (truncated, NUL-terminated); no-op if m has no
 * buffer. */
__attribute__((format(printf, 2, 3))) void cfgtext_say(struct cfgtext_msg m, const char *fmt, ...);

/* cfgtext_valid_name: 1..CONFIG_NAME_MAX of [A-Za-z0-9._-]. */
bool cfgtext_valid_name(const char *s, size_t n);

/* cfgtext_valid_hostname: a DNS name of 1..CONFIG_HOST_MAX of [A-Za-z0-9.-]
 * that does not start with '-' or '.'. */
bool cfgtext_valid_hostname(const char *s, size_t n);

/* cfgtext_printable: no control byte (< 0x20, 0x7f) in s. */
bool cfgtext_printable(const char *s, size_t n);

/* cfgtext_shown is the precision to quote s with in a message ("%.*s"): n,
 * at most 64, when s is printable, else 0 (a message carries no control
 * bytes). */
int cfgtext_shown(const char *s, size_t n);

/* cfgtext_parse_u64 reads a plain decimal of at most 10 digits (no sign, no
 * blanks). */
bool cfgtext_parse_u64(const char *s, size_t n, uint64_t *out);

/* cfgtext_parse_port reads a decimal port 1..65535. */
bool cfgtext_parse_port(const char *s, size_t n, uint16_t *out);

/* cfgtext_parse_key32 reads exactly CONFIG_KEY_B64_LEN characters of
 * unpadded base64url into CONFIG_KEY_LEN bytes; wipes its scratch copy. */
bool cfgtext_parse_key32(const char *s, size_t n, uint8_t out[static CONFIG_KEY_LEN]);

/* cfgtext_pton parses an IPv4 (family 4) or IPv6 (family 6) literal of n
 * bytes into out, network order, zero-filled to 16 bytes. */
bool cfgtext_pton(int family, const char *s, size_t n, uint8_t out[static 16]);

/* cfgtext_parse_endpoint reads HOST:PORT or [V6]:PORT (a bare IPv6 literal
 * is refused: it needs its brackets); sets out->set. */
bool cfgtext_parse_endpoint(const char *s, size_t n, struct config_endpoint *out);

/* cfgtext_profile_name copies s (n bytes) NUL-terminated into out if it
 * names a built-in profile. */
bool cfgtext_profile_name(char out[static PROFILE_NAME_MAX + 1], const char *s, size_t n);

/* cfgtext_take_until returns in *v, *n the bytes before the first c (or all
 * that is left: then it returns false) and consumes them and the c. *v is a
 * view into r's buffer. */
bool cfgtext_take_until(struct rd *r, uint8_t c, const char **v, size_t *n);

/* cfgtext_trim drops blanks (space, tab) at both ends of the view *s, *n. */
void cfgtext_trim(const char **s, size_t *n);

#endif
