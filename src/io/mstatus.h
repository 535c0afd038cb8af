/* mstatus.h - `kcpsocks-server status` and `kcpsocks-local status`: a live
 * view of a running daemon, read from its own /metrics endpoint.
 *
 * Three parts: mstatus_fetch (one blocking GET of /metrics on a loopback
 * address, bounded in time and size: a command, never the daemon's loop),
 * mstatus_parse_line (one line of the exposition text into a sample: the
 * parser of outside input, fuzzed by tests/fuzz/fuzz_io_mstatus.c) and
 * mstatus_render (the summary and the per-user table). mstatus_main is the
 * whole subcommand for both daemons' main().
 */
#ifndef KCPSOCKS_MSTATUS_H
#define KCPSOCKS_MSTATUS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/err.h"
#include "core/config.h"

enum {
	MSTATUS_NAME_MAX = 128,              /* metric name, NUL included */
	MSTATUS_LABEL_MAX = 64,              /* first label's value, NUL included (cut) */
	MSTATUS_BODY_MAX = 16 * 1024 * 1024, /* bytes of a scrape */
	MSTATUS_SAMPLES_MAX = 65536,         /* samples kept of a scrape */
	MSTATUS_TIMEOUT_MS = 3000,           /* connect, send, each read */
};

/* One sample: its name, its first label (name and value, unescaped; empty
 * when it has none) and its value. */
struct mstatus_sample {
	char name[MSTATUS_NAME_MAX];
	char label_name[MSTATUS_NAME_MAX];
	char label[MSTATUS_LABEL_MAX];
	double value;
};

/* mstatus_parse_line reads one line line[0..n) (without its newline) of the
 * text format: `name{l="v",...} value [timestamp]`. Returns 1 and fills
 * *out for a sample, 0 for a comment or a blank line, KS_ERR_PROTO for
 * anything else (*out then unspecified). Reads only line[0..n). */
KS_MUST_CHECK int mstatus_parse_line(const char *line, size_t n, struct mstatus_sample *out);

/* mstatus_fetch GETs /metrics from addr. Returns 0 with *body (malloc'ed,
 * NUL-terminated, free it) and *len, or KS_ERR_IO / KS_ERR_PROTO /
 * KS_ERR_TOOBIG / KS_ERR_NOMEM with a message in err. */
int mstatus_fetch(const struct sockaddr_storage *addr, char **body, size_t *len, char *err,
                  size_t errlen);

/* mstatus_render writes the view of body[0..len) (a scrape of the role's
 * daemon) to f. Returns 0, or KS_ERR_PROTO when no line of it is a
 * kcpsocks sample. */
int mstatus_render(FILE *f, enum config_role role, const char *body, size_t len);

/* mstatus_main is `DAEMON status [--config FILE] [--KEY VALUE]...`:
 * argv[first..argc) are the daemon's own options (the endpoint is its
 * metrics_listen). Returns the process's exit status. */
int mstatus_main(int argc, char **argv, int first, enum config_role role, const char *usage);

#endif
