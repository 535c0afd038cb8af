/* test_io_daemon.c - SIGPIPE, open-files limit, privilege drop (in a child
 * process), and the signal-driven graceful stop on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/daemon.h"
#include "io/log.h"

enum { GUARD_MS = 3000 };

static void sigpipe_is_ignored(void **state)
{
	(void)state;
	int sv[2];

	assert_int_equal(daemon_ignore_sigpipe(), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	/* write(2), not send(MSG_NOSIGNAL): only the disposition saves us. */
	assert_int_equal(write(sv[0], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(sv[0]);
}

static void nofile_raise_and_report(void **state)
{
	(void)state;
	struct rlimit old, now;
	struct daemon_nofile got;
	char err[128] = "";

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* Lower the soft limit a little so there is room to raise it. */
	assert_true(old.rlim_cur > 256);
	struct rlimit low = { old.rlim_cur - 64, old.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	/* Never lowers. */
	assert_int_equal(daemon_raise_nofile(16, &got, err, sizeof err), 0);
	assert_int_equal(got.before, low.rlim_cur);
	assert_int_equal(got.after, low.rlim_cur);

	/* Up to a value under the hard limit. */
	assert_int_equal(daemon_raise_nofile(low.rlim_cur + 32, &got, err, sizeof err), 0);
	assert_int_equal(got.after, low.rlim_cur + 32);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
	assert_int_equal(now.rlim_cur, low.rlim_cur + 32);

	/* 0: as high as the hard limit. */
	assert_int_equal(daemon_raise_nofile(0, &got, NULL, 0), 0);
	assert_int_equal(got.after, old.rlim_max);

	/* Far above anything allowed (fs.nr_open caps even root): the hard
	 * limit, no error. */
	if (old.rlim_max != RLIM_INFINITY) {
		assert_int_equal(daemon_raise_nofile(RLIM_INFINITY - 1, &got, NULL, 0), 0);
		assert_int_equal(got.after, got.hard);
		assert_true(got.hard >= old.rlim_max);
	}
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

static void drop_privileges_errors(void **state)
{
	(void)state;
	char err[160] = "";

	assert_int_equal(daemon_drop_privileges(NULL, err, sizeof err), 0);
	assert_int_equal(daemon_drop_privileges("", err, sizeof err), 0);
	assert_int_equal(daemon_drop_privileges("no-such-user-kcpsocks", err, sizeof err),
	                 KS_ERR_INVAL);
	assert_string_equal(err, "run_as = no-such-user-kcpsocks: no such user");
	assert_int_equal(daemon_drop_privileges("root", err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err, "run_as = root: not an unprivileged user");
}

/* The real drop runs in a child: it cannot be undone. */
static void drop_privileges_in_child(void **state)
{
	(void)state;
	struct passwd *pw = getpwnam("nobody");
	int status = 0;
	pid_t pid;

	if (!pw)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[160] = "";
		int rc;
		alarm(10); /* bound the child whatever happens */
		rc = daemon_drop_privileges("nobody", err, sizeof err);
		if (geteuid() == pw->pw_uid && rc == 0 && setuid(0) < 0)
			_exit(0);
		if (rc == KS_ERR_STATE && strstr(err, "must start as root"))
			_exit(2); /* not root: the refusal is the right answer */
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (getuid() == 0)
		assert_int_equal(WEXITSTATUS(status), 0);
	else
		assert_int_equal(WEXITSTATUS(status), 2);
}

/* ---- signals ---- */

struct fix {
	struct ev_loop *loop;
	ev_timer guard;
	ev_timer kick; /* raises the next signal from inside the loop */
	bool expired;
	struct daemon_signals *d;
	int drains;
	bool drain_at_once;
	int second; /* signal to raise while draining, 0 for none */
	int reloads;
};

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;
	(void)revents;
	f->expired = true;
	ev_break(loop, EVBREAK_ALL);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;
	(void)loop;
	(void)revents;
	assert_int_equal(raise(f->second), 0);
}

static void on_drain(void *arg)
{
	struct fix *f = arg;
	f->drains++;
	if (f->drain_at_once)
		daemon_drained(f->d);
	else if (f->second) {
		ev_timer_set(&f->kick, 0.01, 0.);
		ev_timer_start(f->loop, &f->kick);
	}
}

/* A SIGHUP: count it, then stop with SIGTERM (drained at once). */
static void on_reload(void *arg)
{
	struct fix *f = arg;

	f->reloads++;
	assert_int_equal(daemon_state(f->d), DAEMON_RUNNING);
	f->drain_at_once = true;
	assert_int_equal(raise(SIGTERM), 0);
}

static int setup(void **state)
{
	static struct fix f;

	memset(&f, 0, sizeof f);
	f.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f.loop);
	ev_timer_init(&f.guard, on_guard, GUARD_MS / 1000.0, 0.);
	ev_timer_init(&f.kick, on_kick, 0., 0.);
	f.guard.data = f.kick.data = &f;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	daemon_signals_free(f->d);
	ev_timer_stop(f->loop, &f->kick);
	ev_loop_destroy(f->loop);
	return 0;
}

static void run(struct fix *f, uint32_t drain_ms, int first)
{
	struct daemon_stop_cb cb = { .on_drain = on_drain, .on_reload = on_reload, .arg = f };

	f->d = daemon_signals_new(f->loop, drain_ms, &cb);
	assert_non_null(f->d);
	assert_int_equal(daemon_state(f->d), DAEMON_RUNNING);
	daemon_drained(f->d); /* not draining: nothing happens */
	assert_int_equal(daemon_state(f->d), DAEMON_RUNNING);
	ev_timer_start(f->loop, &f->guard);
	assert_int_equal(raise(first), 0);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
	assert_false(f->expired);
	assert_int_equal(daemon_stop_signal(f->d), first);
	assert_int_equal(f->drains, 1);
}

static void term_then_drained(void **state)
{
	struct fix *f = *state;
	f->drain_at_once = true;
	run(f, 2000, SIGTERM);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED_DRAINED);
}

static void int_then_drain_timeout(void **state)
{
	struct fix *f = *state;
	ev_now_update(f->loop);
	ev_tstamp t0 = ev_now(f->loop);
	run(f, 100, SIGINT);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED_TIMEOUT);
	assert_true(ev_now(f->loop) - t0 >= 0.09);
}

static void second_signal_forces(void **state)
{
	struct fix *f = *state;
	f->second = SIGINT;
	run(f, 2000, SIGTERM);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED_FORCED);
}

/* SIGHUP reloads and the daemon runs on; the reload callback then stops
 * it with SIGTERM (drained at once). */
static void hup_reloads(void **state)
{
	struct fix *f = *state;
	struct daemon_stop_cb cb = { .on_drain = on_drain, .on_reload = on_reload, .arg = f };

	f->d = daemon_signals_new(f->loop, 2000, &cb);
	assert_non_null(f->d);
	ev_timer_start(f->loop, &f->guard);
	assert_int_equal(raise(SIGHUP), 0);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
	assert_false(f->expired);
	assert_int_equal(f->reloads, 1);
	assert_int_equal(f->drains, 1);
	assert_int_equal(daemon_stop_signal(f->d), SIGTERM);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED_DRAINED);
}

static void bad_drain_time(void **state)
{
	struct fix *f = *state;
	assert_null(daemon_signals_new(f->loop, DAEMON_DRAIN_MAX_MS + 1, NULL));
	daemon_signals_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sigpipe_is_ignored),
		cmocka_unit_test(nofile_raise_and_report),
		cmocka_unit_test(drop_privileges_errors),
		cmocka_unit_test(drop_privileges_in_child),
		cmocka_unit_test_setup_teardown(term_then_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(int_then_drain_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(second_signal_forces, setup, teardown),
		cmocka_unit_test_setup_teardown(hup_reloads, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_drain_time, setup, teardown),
	};
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
