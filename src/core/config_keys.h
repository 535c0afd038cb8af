/* config_keys.h - the key table of config.c, for the modules that describe
 * it (configdoc.c) and the tests; internal to the config modules.
 *
 * Each entry gives a key its section, type, place in struct config (or
 * struct config_user), range or values, default and help text.
 */
#ifndef KCPSOCKS_CONFIG_KEYS_H
#define KCPSOCKS_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

enum section { SEC_COMMON, SEC_LOCAL, SEC_SERVER, SEC_TRANSPORT, SEC_USER, SEC_COUNT };

/* "common", "local", ... as written between the brackets (in config.c). */
extern const char *const config_section_names[SEC_COUNT];

enum ktype {
	T_U32,          /* decimal in [min, max] */
	T_ENUM,         /* one of values[], stored as int */
	T_ENDPOINT,     /* HOST:PORT */
	T_ENDPOINTS,    /* HOST:PORT[,HOST:PORT...]: a struct config_servers */
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

struct config_key {
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

/* The table (config.c) and its length. */
extern const struct config_key config_keys[];
extern const size_t config_key_count;

#endif
