/* dconf.h - what both daemons do with their command line and config:
 * options to a finished struct config, --help/--version, logging set-up.
 * (What a profile becomes in the cores is core/transport.h's.)
 *
 * Command line: `--config FILE` (or `-c FILE`), `--check-config`, `--help`,
 * `--version`, and every config key as `--key value` or `--key=value`
 * (config_set, so the help printed by config_write_help is the truth).
 * Options replace the file's values whatever their order on the line.
 * kcpsocks-local also takes `--connect -` (the string from standard input);
 * its connect_file and psk_file are read here into connect and psk.
 * Secret files open to group or others get a warning; the example keys once
 * published with the source are refused.
 */
#ifndef KCPSOCKS_DCONF_H
#define KCPSOCKS_DCONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct ev_loop;

#include "core/config.h"

#define KCPSOCKS_VERSION "0.1.0"

enum dconf_action {
	DCONF_RUN = 0, /* start the daemon */
	DCONF_CHECK,   /* --check-config: the config is valid; exit 0 */
	DCONF_HELP,    /* --help was printed; exit 0 */
	DCONF_VERSION, /* --version was printed; exit 0 */
};

/* dconf_parse reads argv[first..argc) for role: loads the --config file
 * (at most CONFIG_TEXT_MAX bytes), applies the options, runs
 * config_finish. Returns 0 with *out set (config_free it) and *action
 * set, or KS_ERR_INVAL / KS_ERR_IO with the message in err (warnings go
 * to the log as they are found). For HELP and
 * VERSION *out is NULL. usage is the first help line, e.g.
 * "usage: kcpsocks-local [--config FILE] [--key value]...". */
KS_MUST_CHECK int dconf_parse(int argc, char **argv, int first, enum config_role role,
                              const char *usage, struct config **out, enum dconf_action *action,
                              char *err, size_t errlen);

/* dconf_read_file reads a whole small file (at most max bytes) into a
 * malloc'ed NUL-terminated buffer. Returns it with *len set, or NULL with
 * "PATH: strerror" in err. */
char *dconf_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* dconf_read_secret_file is dconf_read_file for a file that holds a secret:
 * it logs a warning when the file is open to group or others. "-" reads
 * standard input (both functions). Wipe the buffer before freeing it. */
char *dconf_read_secret_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* dconf_log_open applies log_level and log_target. */
void dconf_log_open(const char *ident, const struct config *cfg);

/* What a daemon is to dconf_serve: start builds it on loop (NULL with the
 * reason in err), drain stops taking work and calls on_empty(arg) once
 * nothing is left (possibly at once), stop frees it (NULL is a no-op). */
struct dconf_service {
	void *(*start)(struct ev_loop *loop, const struct config *cfg, void *arg, char *err,
	               size_t errlen);
	void (*drain)(void *obj, void (*on_empty)(void *arg), void *arg);
	void (*stop)(void *obj);
	void *arg; /* passed to start */
	/* SIGHUP: dconf_serve re-reads the config the way it was read at the
	 * start (argv[first..argc) for role: the same file, the same
	 * options), validates all of it, and on success calls reload (NULL:
	 * only the log level changes), which takes what it can from ncfg and
	 * writes a summary for the log line. reload returns 0 with ncfg kept
	 * by the daemon until the next reload or the end (dconf_serve frees
	 * it), or an error with the reason in err (nothing changed). */
	int (*reload)(void *obj, const struct config *ncfg, char *summary, size_t sumlen, char *err,
	              size_t errlen);
	int argc;
	char **argv;
	int first;
	enum config_role role;
};

/* dconf_restart_only names the first setting that differs between a and
 * b and that only a restart applies (listen addresses, keys, profile, ...),
 * or returns NULL. */
const char *dconf_restart_only(const struct config *a, const struct config *b);

/* dconf_serve runs a daemon on the default loop, the same way for both
 * binaries: ignore SIGPIPE, raise RLIMIT_NOFILE to max_fds, start, drop
 * privileges to run_as, drain on SIGTERM/SIGINT (daemon_signals_new), run
 * until stopped, free. Errors are logged. Returns EXIT_SUCCESS after a
 * stop, EXIT_FAILURE when a step failed. */
int dconf_serve(const struct config *cfg, const struct dconf_service *svc);

/* dconf_endpoint_addr turns a numeric config endpoint into a sockaddr.
 * Returns 0 or KS_ERR_INVAL ("HOST is not a numeric address"). */
KS_MUST_CHECK int dconf_endpoint_addr(const struct config_endpoint *e, struct sockaddr_storage *out,
                                      char *err, size_t errlen);

#endif
