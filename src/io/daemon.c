/* daemon.c - signals, graceful stop, privilege drop, open-files limit. */
#include "io/daemon.h"
#include "base/errbuf.h"

#include <errno.h>
#include <ev.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/log.h"

int daemon_ignore_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGPIPE, &sa, NULL) < 0 ? KS_ERR_IO : 0;
}

void daemon_malloc_policy(void)
{
#ifdef __GLIBC__
	/* A fixed threshold also turns off glibc's sliding one, which rises to
	 * 32 MiB after the first large free and then keeps freed stream
	 * buffers in the heap. */
	(void)mallopt(M_MMAP_THRESHOLD, DAEMON_MMAP_THRESHOLD);
#endif
}

/* ---- open files ---- */

/* try_limit sets soft (and hard); true on success. */
static bool try_limit(rlim_t soft, rlim_t hard)
{
	struct rlimit rl = { soft, hard };

	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

int daemon_raise_nofile(rlim_t want, struct daemon_nofile *out, char *err, size_t errlen)
{
	struct rlimit rl;
	struct daemon_nofile got;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		errbuf_set(err, errlen, "getrlimit RLIMIT_NOFILE: %s", strerror(errno));
		return KS_ERR_IO;
	}
	got = (struct daemon_nofile){ rl.rlim_cur, rl.rlim_cur, rl.rlim_max };
	if (want == 0)
		want = rl.rlim_max;
	if (want > rl.rlim_cur) {
		/* Above the hard limit only a privileged process succeeds (and
		 * only up to fs.nr_open); otherwise settle for the hard limit. */
		if (want > rl.rlim_max && try_limit(want, want))
			got.after = got.hard = want;
		else if (try_limit(want < rl.rlim_max ? want : rl.rlim_max, rl.rlim_max))
			got.after = want < rl.rlim_max ? want : rl.rlim_max;
	}
	if (got.after != got.before)
		log_info("open files limit: %llu -> %llu", (unsigned long long)got.before,
		         (unsigned long long)got.after);
	if (got.after < want)
		log_warn("open files limit: wanted %llu, got %llu", (unsigned long long)want,
		         (unsigned long long)got.after);
	if (out)
		*out = got;
	return 0;
}

/* ---- privileges ---- */

/* lookup_user fills *pw (strings in *buf, which the caller frees). */
static int lookup_user(const char *user, struct passwd *pw, char **buf, char *err, size_t errlen)
{
	struct passwd *res = NULL;
	size_t len = 1024;
	int e;

	for (;;) {
		*buf = malloc(len);
		if (!*buf) {
			errbuf_set(err, errlen, "run_as = %s: %s", user, strerror(ENOMEM));
			return KS_ERR_NOMEM;
		}
		e = getpwnam_r(user, pw, *buf, len, &res);
		if (e != ERANGE || len >= DAEMON_PWBUF_MAX)
			break;
		free(*buf);
		len *= 2;
	}
	if (res)
		return 0;
	if (e == 0 || e == ENOENT || e == ESRCH)
		errbuf_set(err, errlen, "run_as = %s: no such user", user);
	else
		errbuf_set(err, errlen, "run_as = %s: getpwnam: %s", user, strerror(e));
	free(*buf);
	*buf = NULL;
	return KS_ERR_INVAL;
}

static int switch_ids(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (initgroups(user, gid) < 0) {
		errbuf_set(err, errlen, "run_as = %s: initgroups: %s", user, strerror(errno));
		return KS_ERR_IO;
	}
	if (setgid(gid) < 0) {
		errbuf_set(err, errlen, "run_as = %s: setgid %u: %s", user, (unsigned)gid,
		           strerror(errno));
		return KS_ERR_IO;
	}
	if (setuid(uid) < 0) {
		errbuf_set(err, errlen, "run_as = %s: setuid %u: %s", user, (unsigned)uid,
		           strerror(errno));
		return KS_ERR_IO;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
		errbuf_set(err, errlen, "run_as = %s: ids did not change", user);
		return KS_ERR_IO;
	}
	if (setuid(0) == 0) {
		errbuf_set(err, errlen, "run_as = %s: root could be regained after setuid", user);
		return KS_ERR_IO;
	}
	return 0;
}

int daemon_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd pw;
	char *buf = NULL;
	int rc;

	if (!user || !*user)
		return 0;
	rc = lookup_user(user, &pw, &buf, err, errlen);
	if (rc < 0)
		return rc;
	if (pw.pw_uid == 0) {
		errbuf_set(err, errlen, "run_as = %s: not an unprivileged user", user);
		rc = KS_ERR_INVAL;
	} else if (geteuid() != 0) {
		if (geteuid() != pw.pw_uid || getegid() != pw.pw_gid) {
			errbuf_set(err, errlen,
			           "run_as = %s: must start as root to switch user (running as uid "
			           "%u)",
			           user, (unsigned)geteuid());
			rc = KS_ERR_STATE;
		}
	} else {
		rc = switch_ids(user, pw.pw_uid, pw.pw_gid, err, errlen);
		if (rc == 0)
			log_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw.pw_uid,
			         (unsigned)pw.pw_gid);
	}
	free(buf);
	return rc;
}

/* ---- signals ---- */

struct daemon_signals {
	struct ev_loop *loop; /* borrowed */
	ev_signal term, intr, hup;
	ev_timer drain;
	uint32_t drain_ms;
	struct daemon_stop_cb cb;
	enum daemon_state state;
	int first_signal;
};

static void stop_loop(struct daemon_signals *d, enum daemon_state st)
{
	d->state = st;
	ev_timer_stop(d->loop, &d->drain);
	ev_break(d->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon_signals *d = w->data;

	(void)loop;
	(void)revents;
	if (d->state == DAEMON_RUNNING) {
		d->state = DAEMON_DRAINING;
		d->first_signal = w->signum;
		log_info("received %s: stopping, draining for up to %u ms (again to exit now)",
		         strsignal(w->signum), (unsigned)d->drain_ms);
		ev_timer_set(&d->drain, d->drain_ms / 1000.0, 0.);
		ev_timer_start(d->loop, &d->drain);
		if (d->cb.on_drain)
			d->cb.on_drain(d->cb.arg); /* may call daemon_drained at once */
		return;
	}
	if (d->state == DAEMON_DRAINING) {
		log_warn("received %s again: exiting now", strsignal(w->signum));
		stop_loop(d, DAEMON_STOPPED_FORCED);
	}
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon_signals *d = w->data;

	(void)loop;
	(void)revents;
	if (d->state != DAEMON_RUNNING) {
		log_info("received SIGHUP while stopping: no reload");
		return;
	}
	if (!d->cb.on_reload) {
		log_info("received SIGHUP: nothing to reload");
		return;
	}
	log_info("received SIGHUP: reloading the config");
	d->cb.on_reload(d->cb.arg);
}

static void on_drain_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon_signals *d = w->data;

	(void)loop;
	(void)revents;
	log_warn("drain time (%u ms) over with work left: exiting", (unsigned)d->drain_ms);
	stop_loop(d, DAEMON_STOPPED_TIMEOUT);
}

struct daemon_signals *daemon_signals_new(struct ev_loop *loop, uint32_t drain_ms,
                                          const struct daemon_stop_cb *cb)
{
	struct daemon_signals *d;

	if (drain_ms > DAEMON_DRAIN_MAX_MS)
		return NULL;
	d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->loop = loop;
	d->drain_ms = drain_ms ? drain_ms : DAEMON_DRAIN_DEFAULT_MS;
	if (cb)
		d->cb = *cb;
	ev_signal_init(&d->term, on_signal, SIGTERM);
	ev_signal_init(&d->intr, on_signal, SIGINT);
	ev_signal_init(&d->hup, on_hup, SIGHUP);
	ev_timer_init(&d->drain, on_drain_timeout, 0., 0.);
	d->term.data = d->intr.data = d->hup.data = d->drain.data = d;
	ev_signal_start(loop, &d->term);
	ev_signal_start(loop, &d->intr);
	ev_signal_start(loop, &d->hup);
	return d;
}

void daemon_signals_free(struct daemon_signals *d)
{
	if (!d)
		return;
	ev_signal_stop(d->loop, &d->term);
	ev_signal_stop(d->loop, &d->intr);
	ev_signal_stop(d->loop, &d->hup);
	ev_timer_stop(d->loop, &d->drain);
	free(d);
}

void daemon_drained(struct daemon_signals *d)
{
	if (d->state != DAEMON_DRAINING)
		return;
	log_info("drained: exiting");
	stop_loop(d, DAEMON_STOPPED_DRAINED);
}

enum daemon_state daemon_state(const struct daemon_signals *d) { return d->state; }

int daemon_stop_signal(const struct daemon_signals *d) { return d->first_signal; }
