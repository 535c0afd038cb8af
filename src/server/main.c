/* main.c - kcpsocks-server: `keygen`, `adduser`, `status`, or options -> config ->
 * the exit daemon on one loop. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errbuf.h"
#include "core/config.h"
#include "core/keys.h"
#include "io/dconf.h"
#include "io/log.h"
#include "io/mstatus.h"
#include "io/sysrng.h"
#include "server/exitd.h"

#define USAGE                                                                                      \
	"usage: kcpsocks-server [-c|--config FILE] [--check-config] [--KEY VALUE]...\n"            \
	"       kcpsocks-server keygen [--out FILE]\n"                                             \
	"       kcpsocks-server adduser NAME -c|--config FILE [--host HOST] [--client-config "     \
	"OUT]\n"                                                                                   \
	"       kcpsocks-server status [-c|--config FILE] [--KEY VALUE]..."

/* --- keys --------------------------------------------------------------------------- */

/* load_key fills k from private_key or private_key_file. */
static int load_key(const struct config *cfg, struct keys_server *k, char *err, size_t errlen)
{
	int rc = 0;

	if (cfg->has_private_key) {
		memcpy(k->sec, cfg->private_key, KEYS_LEN);
	} else {
		size_t len;
		char *text = dconf_read_secret_file(cfg->private_key_file, KEYFILE_MAX, &len, err,
		                                    errlen);

		if (!text)
			return KS_ERR_IO;
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
		                   text[len - 1] == ' ' || text[len - 1] == '\t'))
			len--;
		if (keys_decode(k->sec, text, len) != 0) {
			errbuf_set(err, errlen, "%s: not a base64url key of 43 characters",
			           cfg->private_key_file);
			rc = KS_ERR_INVAL;
		}
		sodium_memzero(text, len);
		free(text);
	}
	if (rc == 0 && crypto_scalarmult_base(k->pub, k->sec) != 0) {
		errbuf_set(err, errlen, "private key: unusable (X25519)");
		rc = KS_ERR_INVAL;
	}
	return rc;
}

static int write_secret_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	if (fd < 0) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return KS_ERR_IO;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
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

/* adduser's command line. */
struct adduser_args {
	const char *name, *path, *host, *client_out;
};

static int adduser_parse(int argc, char **argv, struct adduser_args *a)
{
	memset(a, 0, sizeof *a);
	a->name = argc > 2 ? argv[2] : NULL;
	for (int i = 3; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return KS_ERR_INVAL;
		if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c"))
			a->path = v;
		else if (!strcmp(argv[i], "--host"))
			a->host = v;
		else if (!strcmp(argv[i], "--client-config"))
			a->client_out = v;
		else
			return KS_ERR_INVAL;
	}
	return a->name && a->name[0] != '-' && a->path ? 0 : KS_ERR_INVAL;
}

static bool unspecified_host(const char *h) { return !strcmp(h, "0.0.0.0") || !strcmp(h, "::"); }

/* client_config writes the client's config file text for cs into buf. The
 * server address goes through the connection-string parser, so a bad
 * --host is refused here with the parser's message. */
static int client_config(const struct config_connstr *cs, char *buf, size_t len, char *err,
                         size_t errlen)
{
	char url[CONFIG_CONNSTR_MAX], pub[KEYS_TEXT_LEN + 1], psk[KEYS_TEXT_LEN + 1];
	struct config_connstr back;
	bool v6 = strchr(cs->server.host, ':') != NULL;
	int n, rc = KS_ERR_INVAL;

	if (config_connstr_format(cs, url, sizeof url) < 0) {
		errbuf_set(err, errlen, "host '%s': not usable in a client config",
		           cs->server.host);
		goto out;
	}
	if (config_connstr_parse(url, &back, err, errlen) != 0)
		goto out;
	keys_encode(pub, cs->server_key);
	keys_encode(psk, cs->psk);
	n = snprintf(buf, len,
	             "# kcpsocks-local config for user %s: kcpsocks-local -c FILE\n"
	             "# It holds the user's psk: keep it mode 0600.\n"
	             "%s%s%s"
	             "[local]\n"
	             "listen = 127.0.0.1:1080\n"
	             "server = %s%s%s:%u\n"
	             "server_public_key = %s\n"
	             "user = %s\n"
	             "psk = %s\n",
	             cs->user, cs->profile[0] ? "profile = " : "", cs->profile,
	             cs->profile[0] ? "\n" : "", v6 ? "[" : "", cs->server.host, v6 ? "]" : "",
	             (unsigned)cs->server.port, pub, cs->user, psk);
	rc = n > 0 && (size_t)n < len ? 0 : KS_ERR_FULL;
	if (rc)
		errbuf_set(err, errlen, "client config: too long");
out:
	sodium_memzero(url, sizeof url);
	sodium_memzero(psk, sizeof psk);
	sodium_memzero(&back, sizeof back);
	return rc;
}

/* adduser_load reads the server's config without config_finish (it may
 * have no user yet) and its key. */
static struct config *adduser_load(const char *path, struct keys_server *k, char *err,
                                   size_t errlen)
{
	struct config *cfg = config_new();
	size_t len;
	char *text = cfg ? dconf_read_file(path, CONFIG_TEXT_MAX, &len, err, errlen) : NULL;
	int rc;

	if (!text) {
		if (!cfg)
			errbuf_set(err, errlen, "out of memory");
		config_free(cfg);
		return NULL;
	}
	rc = config_load(cfg, path, text, len, err, errlen);
	sodium_memzero(text, len);
	free(text);
	if (rc != 0 || load_key(cfg, k, err, errlen) != 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* adduser prints the [user NAME] section for the server's file on stdout
 * (so `>>FILE` appends it) and the client's config file: into
 * --client-config OUT (created mode 0600), else on stdout after the section.
 * No PSK ever goes on a command line. */
static int cmd_adduser(int argc, char **argv)
{
	struct rng_source rng = sysrng_source();
	struct adduser_args a;
	struct config *cfg = NULL;
	struct config_connstr cs = { 0 };
	struct keys_server k;
	struct keys_user u;
	char err[CONFIG_ERR_MAX + 64], psk[KEYS_TEXT_LEN + 1], client[1024];
	int rc = EXIT_FAILURE;

	if (adduser_parse(argc, argv, &a) != 0) {
		fprintf(stderr, "%s\n", USAGE);
		return 2;
	}
	keys_psk_generate(cs.psk, &rng);
	if (keys_user_set(&u, a.name, cs.psk) != 0) {
		log_error("adduser: '%s': a name is 1..%d of A-Z a-z 0-9 . _ -", a.name,
		          KEYS_NAME_MAX);
		goto out;
	}
	if (!(cfg = adduser_load(a.path, &k, err, sizeof err))) {
		log_error("adduser: %s", err);
		goto out;
	}
	if (config_find_user(cfg, a.name)) {
		log_error("adduser: %s: user '%s' exists already", a.path, a.name);
		goto out;
	}
	snprintf(cs.user, sizeof cs.user, "%s", a.name);
	snprintf(cs.server.host, sizeof cs.server.host, "%s",
	         a.host ? a.host : cfg->server_listen.host);
	cs.server.port = cfg->server_listen.port;
	memcpy(cs.server_key, k.pub, KEYS_LEN);
	if (strcmp(cfg->profile_name, "default") != 0)
		snprintf(cs.profile, sizeof cs.profile, "%s", cfg->profile_name);
	if (client_config(&cs, client, sizeof client, err, sizeof err) != 0) {
		log_error("adduser: --host: %s", err);
		goto out;
	}
	if (unspecified_host(cs.server.host))
		log_warn("adduser: the client config names %s (the server's listen address), "
		         "which no client can reach: pass --host with the server's public name or "
		         "address",
		         cs.server.host);
	if (a.client_out && write_secret_file(a.client_out, client, err, sizeof err) != 0) {
		log_error("adduser: %s", err);
		goto out;
	}
	keys_encode(psk, cs.psk);
	printf("\n# added by kcpsocks-server adduser\n[user %s]\npsk = %s\n", a.name, psk);
	if (a.client_out)
		fprintf(stderr, "adduser: the client config of '%s' is in %s (mode 0600)\n", a.name,
		        a.client_out);
	else
		printf("\n# ---- the client's config file (kcpsocks-local -c FILE) ----\n%s",
		       client);
	if (!a.client_out)
		fprintf(stderr,
		        "adduser: add the [user %s] section to %s; give the client its "
		        "config file (it holds the psk) by a private channel\n",
		        a.name, a.path);
	rc = EXIT_SUCCESS;
out:
	sodium_memzero(&k, sizeof k);
	sodium_memzero(&u, sizeof u);
	sodium_memzero(&cs, sizeof cs);
	sodium_memzero(psk, sizeof psk);
	sodium_memzero(client, sizeof client);
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

/* reload: SIGHUP with a config that loaded (dconf_serve): users and the
 * destination policy. */
static int reload(void *obj, const struct config *ncfg, char *summary, size_t sumlen, char *err,
                  size_t errlen)
{
	struct exitd_reload_stats st;

	if (exitd_reload(obj, ncfg, &st, err, errlen) != 0)
		return KS_ERR_INVAL;
	if (st.closed)
		log_info("reload: closed %zu session(s) of removed users", st.closed);
	snprintf(summary, sumlen, "%zu users (+%zu -%zu), policy %zu rules", ncfg->n_users,
	         st.added, st.removed, ncfg->policy.n_allow + ncfg->policy.n_deny);
	return 0;
}

/* run loads the server key, serves, and wipes the key. */
static int run(const struct config *cfg, int argc, char **argv)
{
	struct keys_server key;
	char err[512];
	int rc;

	if (load_key(cfg, &key, err, sizeof err) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	rc = dconf_serve(cfg, &(struct dconf_service){ start, drain, stop, &key, reload, argc, argv,
	                                               1, CONFIG_ROLE_SERVER });
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
	if (argc > 1 && !strcmp(argv[1], "status"))
		return mstatus_main(argc, argv, 2, CONFIG_ROLE_SERVER, USAGE);
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
	rc = run(cfg, argc, argv);
	config_free(cfg);
	return rc;
}
