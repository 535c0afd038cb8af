/* main.c - kcpsocks-local: `status`, or options -> config -> the client on one loop. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "io/dconf.h"
#include "io/log.h"
#include "io/mstatus.h"
#include "io/sysrng.h"
#include "local/client.h"

#define USAGE                                                                                      \
	"usage: kcpsocks-local [-c|--config FILE] [--check-config] [--KEY VALUE]...\n"             \
	"       kcpsocks-local status [-c|--config FILE] [--KEY VALUE]..."

static void *start(struct ev_loop *loop, const struct config *cfg, void *arg, char *err,
                   size_t errlen)
{
	struct client *cl = client_new(loop, cfg, err, errlen);

	(void)arg;
	if (cl)
		log_info("kcpsocks-local %s: SOCKS5 on %s:%u, server %s:%u%s, profile %s",
		         KCPSOCKS_VERSION, cfg->local_listen.host, (unsigned)cfg->local_listen.port,
		         cfg->server.host, (unsigned)cfg->server.port,
		         cfg->servers.n > 1 ? " (and fallbacks)" : "", cfg->profile.name);
	return cl;
}

static void drain(void *obj, void (*on_empty)(void *), void *arg)
{
	client_drain(obj, on_empty, arg);
}

static void stop(void *obj) { client_free(obj); }

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
	if (argc > 1 && !strcmp(argv[1], "status"))
		return mstatus_main(argc, argv, 2, CONFIG_ROLE_LOCAL, USAGE);
	if (dconf_parse(argc, argv, 1, CONFIG_ROLE_LOCAL, USAGE, &cfg, &act, err, sizeof err) !=
	    0) {
		log_error("%s", err);
		return 2;
	}
	if (act == DCONF_HELP || act == DCONF_VERSION)
		return EXIT_SUCCESS;
	if (act == DCONF_CHECK) {
		printf("config ok (profile %s)\n", cfg->profile.name);
		config_free(cfg);
		return EXIT_SUCCESS;
	}
	dconf_log_open("kcpsocks-local", cfg);
	/* SIGHUP re-reads the same command line: the log level changes. */
	rc = dconf_serve(cfg, &(struct dconf_service){ start, drain, stop, NULL, NULL, argc, argv,
	                                               1, CONFIG_ROLE_LOCAL });
	config_free(cfg);
	return rc;
}
