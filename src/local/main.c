/* main.c - kcpsocks-local: options -> config -> the client on one loop. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "io/daemon.h"
#include "io/dconf.h"
#include "io/log.h"
#include "io/sysrng.h"
#include "local/client.h"

#define USAGE "usage: kcpsocks-local [--config FILE] [--check-config] [--KEY VALUE]..."

struct app {
	struct client *cl;
	struct daemon_signals *sig;
};

static void on_empty(void *arg)
{
	struct app *a = arg;

	daemon_drained(a->sig);
}

static void on_drain(void *arg)
{
	struct app *a = arg;

	client_drain(a->cl, on_empty, a);
}

static int run(struct config *cfg)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct app a = { 0 };
	struct daemon_stop_cb stop = { on_drain, &a };
	char err[512];
	int rc = EXIT_FAILURE;

	if (daemon_ignore_sigpipe() != 0 ||
	    (cfg->max_fds && daemon_raise_nofile(cfg->max_fds, NULL, err, sizeof err) != 0)) {
		log_error("%s", cfg->max_fds ? err : "SIGPIPE");
		return EXIT_FAILURE;
	}
	a.cl = client_new(loop, cfg, err, sizeof err);
	if (!a.cl) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	if (daemon_drop_privileges(cfg->run_as, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out;
	}
	a.sig = daemon_signals_new(loop, 0, &stop);
	if (!a.sig) {
		log_error("signals: out of memory");
		goto out;
	}
	log_info("kcpsocks-local %s: SOCKS5 on %s:%u, server %s:%u, profile %s", KCPSOCKS_VERSION,
	         cfg->local_listen.host, (unsigned)cfg->local_listen.port, cfg->server.host,
	         (unsigned)cfg->server.port, cfg->profile.name);
	ev_run(loop, 0);
	rc = EXIT_SUCCESS;
	log_info("stopped");
out:
	client_free(a.cl);
	daemon_signals_free(a.sig);
	ev_run(loop, EVRUN_NOWAIT); /* reap closed connections */
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
	rc = run(cfg);
	config_free(cfg);
	return rc;
}
