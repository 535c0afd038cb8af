/* connstr.h - kcpsocks:// connection strings: parse and format.
 *
 *   kcpsocks://USER:PSK@HOST:PORT[,HOST:PORT...]?key=SERVERPUB[&profile=NAME]
 *
 * (several servers: in order of preference, one key: one deployment). One string carries what a
 * local daemon needs to reach a server (the config's `connect` key; `kcpsocks-server adduser`
 * prints one). Pure: no I/O, no globals.
 */
#ifndef KCPSOCKS_CONNSTR_H
#define KCPSOCKS_CONNSTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"
#include "core/cfgtext.h"
#include "core/profile.h"

/* A kcpsocks:// connection string, parsed. */
struct config_connstr {
	char user[CONFIG_NAME_MAX + 1];
	uint8_t psk[CONFIG_KEY_LEN];   /* secret */
	struct config_endpoint server; /* servers.e[0] */
	struct config_servers servers; /* HOST:PORT[,HOST:PORT...] */
	uint8_t server_key[CONFIG_KEY_LEN];
	char profile[PROFILE_NAME_MAX + 1]; /* "" if the string names none */
};

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

#endif
