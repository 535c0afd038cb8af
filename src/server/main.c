/* main.c - kcpsocks-server: `keygen`, `adduser`, or options -> config ->
 * the exit daemon on one loop. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/keys.h"
#include "io/dconf.h"
#include "io/log.h"
#include "io/sysrng.h"
#include "server/exitd.h"

#define USAGE                                                                                      \
	"usage: kcpsocks-server [--config FILE] [--check-config] [--KEY VALUE]...\n"               \
	"       kcpsocks-server keygen [--out FILE]\n"                                             \
	"       kcpsocks-server adduser NAME --config FILE [--host HOST]"

/* --- keys --------------------------------------------------------------------------- */

/* load_key fills k from private_key or private_key_file. */
static int load_key(const struct config *cfg, struct keys_server *k, char *err, size_t errlen)
{
	int rc = 0;

	if (cfg->has_private_key) {
		memcpy(k->sec, cfg->private_key, KEYS_LEN);
	} else {
		size_t len;
		char *text = dconf_read_file(cfg->private_key_file, KEYFILE_MAX, &len, err, errlen);

		if (!text)
			return KS_ERR_IO;
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
		                   text[len - 1] == ' ' || text[len - 1] == '\t'))
			len--;
		if (keys_decode(k->sec, text, len) != 0) {
			snprintf(err, errlen, "%s: not a base64url key of 43 characters",
			         cfg->private_key_file);
			rc = KS_ERR_INVAL;
		}
		sodium_memzero(text, len);
		free(text);
	}
	if (rc == 0 && crypto_scalarmult_base(k->pub, k->sec) != 0) {
		snprintf(err, errlen, "private key: unusable (X25519)");
		rc = KS_ERR_INVAL;
	}
	return rc;
}

static int write_secret_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return KS_ERR_IO;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return KS_ERR_IO;
	}
	close(fd);
	return 0;
}

static int cmd_keygen(int argc, char **argv)
{
	struct rng_source rng = sysrng_source();
	struct keys_server k;
	char sec[KEYS_TEXT_LEN + 2], pub[KEYS_TEXT_LEN + 1], err[512];
	const char *out = NULL;
	int rc = EXIT_SUCCESS;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else {
			fprintf(stderr, "%s\n", USAGE);
			return 2;
		}
	}
	if (keys_server_generate(&k, &rng) != 0) {
		log_error("keygen: X25519 failed");
		return EXIT_FAILURE;
	}
	keys_encode(sec, k.sec);
	keys_encode(pub, k.pub);
	if (out) {
		strcat(sec, "\n");
		if (write_secret_file(out, sec, err, sizeof err) != 0) {
			log_error("keygen: %s", err);
			rc = EXIT_FAILURE;
		} else {
			printf("private key written to %s (mode 0600)\n"
			       "add to [server]: private_key_file = %s\n",
			       out, out);
		}
	} else {
		printf("private_key = %s\n", sec);
	}
	if (rc == EXIT_SUCCESS)
		printf("public key: %s\n", pub);
	sodium_memzero(&k, sizeof k);
	sodium_memzero(sec, sizeof sec);
	return rc;
}

/* adduser needs the file's key and listen address but no user yet, so it
 * loads the file without config_finish. */
static int cmd_adduser(int argc, char **argv)
{
	struct rng_source rng = sysrng_source();
	const char *name = argc > 2 ? argv[2] : NULL, *path = NULL, *host = NULL;
	struct config *cfg = NULL;
	struct config_connstr cs = { 0 };
	struct keys_server k;
	struct keys_user u;
	char err[CONFIG_ERR_MAX + 64], psk[KEYS_TEXT_LEN + 1], url[CONFIG_CONNSTR_MAX];
	int rc = EXIT_FAILURE;
	size_t len;
	char *text;

	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--config"))
			path = argv[i + 1];
		else if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
	}
	if (!name || !path || argc % 2 == 0) {
		fprintf(stderr, "%s\n", USAGE);
		return 2;
	}
	keys_psk_generate(cs.psk, &rng);
	if (keys_user_set(&u, name, cs.psk) != 0) {
		log_error("adduser: '%s': a name is 1..%d of A-Z a-z 0-9 . _ -", name,
		          KEYS_NAME_MAX);
		goto out;
	}
	cfg = config_new();
	text = cfg ? dconf_read_file(path, CONFIG_TEXT_MAX, &len, err, sizeof err) : NULL;
	if (!text) {
		log_error("adduser: %s", cfg ? err : "out of memory");
		goto out;
	}
	rc = config_load(cfg, path, text, len, err, sizeof err);
	sodium_memzero(text, len);
	free(text);
	if (rc != 0 || load_key(cfg, &k, err, sizeof err) != 0) {
		log_error("adduser: %s", err);
		rc = EXIT_FAILURE;
		goto out;
	}
	rc = EXIT_FAILURE;
	if (config_find_user(cfg, name)) {
		log_error("adduser: %s: user '%s' exists already", path, name);
		goto out;
	}
	snprintf(cs.user, sizeof cs.user, "%s", name);
	snprintf(cs.server.host, sizeof cs.server.host, "%s",
	         host ? host : cfg->server_listen.host);
	cs.server.port = cfg->server_listen.port;
	memcpy(cs.server_key, k.pub, KEYS_LEN);
	if (strcmp(cfg->profile_name, "default") != 0)
		snprintf(cs.profile, sizeof cs.profile, "%s", cfg->profile_name);
	if (config_connstr_format(&cs, url, sizeof url) < 0) {
		log_error("adduser: cannot make a connection string for host '%s'", cs.server.host);
		goto out;
	}
	keys_encode(psk, cs.psk);
	printf("# add to %s:\n[user %s]\npsk = %s\n\n", path, name, psk);
	if (!host && (!strcmp(cs.server.host, "0.0.0.0") || !strcmp(cs.server.host, "::")))
		printf("# replace %s with the server's public address (or use --host HOST)\n",
		       cs.server.host);
	printf("# the client runs:\nkcpsocks-local --connect '%s'\n", url);
	rc = EXIT_SUCCESS;
out:
	sodium_memzero(&k, sizeof k);
	sodium_memzero(&u, sizeof u);
	sodium_memzero(&cs, sizeof cs);
	sodium_memzero(psk, sizeof psk);
	sodium_memzero(url, sizeof url);
	config_free(cfg);
	return rc;
}

/* --- the daemon ------------------------------------------------------------------------- */

static void *start(struct ev_loop *loop, const struct config *cfg, void *arg, char *err,
                   size_t errlen)
{
	const struct keys_server *key = arg;
	struct exitd *x = exitd_new(loop, cfg, key, err, errlen);
	char pub[KEYS_TEXT_LEN + 1];

	if (x) {
		keys_encode(pub, key->pub);
		log_info("kcpsocks-server %s: UDP %s:%u, %zu user(s), profile %s, public key %s",
		         KCPSOCKS_VERSION, cfg->server_listen.host,
		         (unsigned)cfg->server_listen.port, cfg->n_users, cfg->profile.name, pub);
	}
	return x;
}

static void drain(void *obj, void (*on_empty)(void *), void *arg)
{
	exitd_drain(obj, on_empty, arg);
}

static void stop(void *obj) { exitd_free(obj); }

/* run loads the server key, serves, and wipes the key. */
static int run(const struct config *cfg)
{
	struct keys_server key;
	char err[512];
	int rc;

	if (load_key(cfg, &key, err, sizeof err) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	rc = dconf_serve(cfg, &(struct dconf_service){ start, drain, stop, &key });
	sodium_memzero(&key, sizeof key);
	return rc;
}

int main(int argc, char **argv)
{
	struct config *cfg = NULL;
	enum dconf_action act;
	char err[CONFIG_ERR_MAX + 64];
	int rc;

	if (sysrng_init() != 0) {
		log_error("libsodium: no usable random source");
		return EXIT_FAILURE;
	}
	if (argc > 1 && !strcmp(argv[1], "keygen"))
		return cmd_keygen(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "adduser"))
		return cmd_adduser(argc, argv);
	if (dconf_parse(argc, argv, 1, CONFIG_ROLE_SERVER, USAGE, &cfg, &act, err, sizeof err) !=
	    0) {
		log_error("%s", err);
		return 2;
	}
	if (act == DCONF_HELP || act == DCONF_VERSION)
		return EXIT_SUCCESS;
	if (act == DCONF_CHECK) {
		struct keys_server k;

		rc = load_key(cfg, &k, err, sizeof err);
		sodium_memzero(&k, sizeof k);
		if (rc != 0)
			log_error("%s", err);
		else
			printf("config ok (profile %s, %zu user(s))\n", cfg->profile.name,
			       cfg->n_users);
		config_free(cfg);
		return rc ? 2 : EXIT_SUCCESS;
	}
	dconf_log_open("kcpsocks-server", cfg);
	rc = run(cfg);
	config_free(cfg);
	return rc;
}
