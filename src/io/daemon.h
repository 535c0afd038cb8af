/* daemon.h - process plumbing shared by kcpsocks-local and kcpsocks-server.
 *
 * The order a daemon main follows:
 *   1. log_open (io/log.h: stderr or syslog, the level)
 *   2. daemon_ignore_sigpipe, daemon_raise_nofile (size the connection
 *      limits from what it reports)
 *   3. open every socket (privileged ports need root)
 *   4. daemon_drop_privileges (--user NAME)
 *   5. daemon_signals_new, then ev_run until the stop
 * Everything here reports errors as text naming the operation and the
 * input, ready for log_error; nothing calls exit().
 */
#ifndef KCPSOCKS_DAEMON_H
#define KCPSOCKS_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "base/err.h"
#include "base/limits.h"

struct ev_loop;

/* daemon_ignore_sigpipe sets SIGPIPE to SIG_IGN, so a write to a reset
 * socket returns EPIPE instead of killing the process. Returns 0 or
 * KS_ERR_IO (errno set). */
KS_MUST_CHECK int daemon_ignore_sigpipe(void);

/* daemon_malloc_policy makes every allocation of DAEMON_MMAP_THRESHOLD
 * bytes or more a mapping of its own, so a stream buffer that grew for a
 * burst (up to its credit window) goes back to the system when it is
 * freed, instead of staying in the heap (glibc only; elsewhere a no-op). */
void daemon_malloc_policy(void);

/* ---- open files ---- */

struct daemon_nofile {
	rlim_t before; /* soft limit found */
	rlim_t after;  /* soft limit now */
	rlim_t hard;   /* hard limit now */
};

/* daemon_raise_nofile raises the RLIMIT_NOFILE soft limit to want (0 means
 * "as high as the hard limit"); never lowers it. Above the hard limit it
 * also raises the hard limit when allowed (root, up to fs.nr_open), else
 * stops at the hard limit: that is not an error, *out says what was got,
 * and a warning is logged ("open files limit: wanted 1048576, got 20000").
 * Returns 0, or KS_ERR_IO with err ("getrlimit RLIMIT_NOFILE: ...").
 * out may be NULL. */
KS_MUST_CHECK int daemon_raise_nofile(rlim_t want, struct daemon_nofile *out, char *err,
                                      size_t errlen);

/* ---- privileges ---- */

/* daemon_drop_privileges becomes user (a name from the passwd database):
 * initgroups, setgid, setuid, then checks that getuid/geteuid/getgid/
 * getegid are the user's and that setuid(0) fails. NULL or "" does
 * nothing. Call after every privileged socket is open. Returns 0, or with
 * a message in err:
 *   KS_ERR_INVAL  "--user NAME: no such user", "--user root: not an
 *                 unprivileged user"
 *   KS_ERR_STATE  "--user NAME: must start as root to switch user
 *                 (running as uid 1000)" (already being NAME is fine)
 *   KS_ERR_IO     "--user NAME: setgid 65534: Operation not permitted",
 *                 "--user NAME: root could be regained after setuid"
 * A failure part-way leaves the process in an unknown state: exit. */
KS_MUST_CHECK int daemon_drop_privileges(const char *user, char *err, size_t errlen);

/* ---- signals and the graceful stop ---- */

enum daemon_state {
	DAEMON_RUNNING = 0,
	DAEMON_DRAINING,        /* first SIGTERM/SIGINT: on_drain ran, timer running */
	DAEMON_STOPPED_DRAINED, /* daemon_drained came in time */
	DAEMON_STOPPED_TIMEOUT, /* the drain time ran out */
	DAEMON_STOPPED_FORCED,  /* a second signal */
};

struct daemon_stop_cb {
	/* on_drain: stop accepting (tcp_listener_pause), let streams finish,
	 * and call daemon_drained once nothing is left (it may do so at once,
	 * from inside on_drain). Called once, from the loop. */
	void (*on_drain)(void *arg);
	/* on_reload: SIGHUP while running (re-read the config); NULL: SIGHUP
	 * is logged and ignored. Not called while draining. */
	void (*on_reload)(void *arg);
	void *arg;
};

struct daemon_signals;

/* daemon_signals_new watches SIGTERM, SIGINT and SIGHUP on loop (borrowed; libev
 * lets one loop at a time watch a signal). On the first signal it logs,
 * calls on_drain and allows drain_ms (0 means DAEMON_DRAIN_DEFAULT_MS, at
 * most DAEMON_DRAIN_MAX_MS) before stopping the loop anyway; a second
 * signal stops the loop at once. "Stopping the loop" is
 * ev_break(EVBREAK_ALL): ev_run returns and main frees and exits.
 * Returns NULL on a bad argument or no memory. */
struct daemon_signals *daemon_signals_new(struct ev_loop *loop, uint32_t drain_ms,
                                          const struct daemon_stop_cb *cb);

/* daemon_signals_free stops the watchers (default dispositions return);
 * NULL is a no-op. */
void daemon_signals_free(struct daemon_signals *d);

/* daemon_drained says everything has drained: while draining it stops the
 * loop (DAEMON_STOPPED_DRAINED); otherwise it does nothing. */
void daemon_drained(struct daemon_signals *d);

enum daemon_state daemon_state(const struct daemon_signals *d);

/* daemon_stop_signal is the first signal received (0 if none). */
int daemon_stop_signal(const struct daemon_signals *d);

#endif
