/* test_io_log.c - level parsing, line format and the rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/log.h"

/* ---- the limiter's logic, with the time injected ---- */

struct step {
	uint64_t now;
	bool pass;
	uint32_t suppressed_before; /* checked when pass */
};

static void run_steps(const struct step *s, size_t n)
{
	struct log_ratelimit rl = { 0 };

	for (size_t i = 0; i < n; i++) {
		uint32_t sup = 12345;
		bool p = log_ratelimit_pass(&rl, s[i].now, &sup);
		if (p != s[i].pass)
			fail_msg("step %zu at %llu: pass %d, want %d", i,
			         (unsigned long long)s[i].now, p, s[i].pass);
		if (p && sup != s[i].suppressed_before)
			fail_msg("step %zu: suppressed %u, want %u", i, sup,
			         s[i].suppressed_before);
		if (!p)
			assert_int_equal(sup, 12345); /* untouched when refused */
	}
}

static void limiter_passes_a_burst_then_counts(void **state)
{
	(void)state;
	_Static_assert(LOG_RATELIMIT_BURST == 5, "table written for a burst of 5");
	_Static_assert(LOG_RATELIMIT_WINDOW_MS == 1000, "table written for 1 s windows");
	static const struct step s[] = {
		{ 5000, true, 0 },
		{ 5001, true, 0 },
		{ 5001, true, 0 },
		{ 5500, true, 0 },
		{ 5999, true, 0 },
		{ 5999, false, 0 },
		{ 5999, false, 0 },
		{ 5999, false, 0 },
		/* a new window: the first line reports the three refused */
		{ 6000, true, 3 },
		{ 6000, true, 0 },
		{ 6001, true, 0 },
		{ 6002, true, 0 },
		{ 6003, true, 0 },
		{ 6004, false, 0 },
		/* a long quiet spell: still reported, once */
		{ 60000, true, 1 },
		{ 60001, true, 0 },
	};
	run_steps(s, sizeof s / sizeof s[0]);
}

static void limiter_counts_across_refused_windows(void **state)
{
	(void)state;
	struct log_ratelimit rl = { 0 };
	uint32_t sup = 0;
	uint64_t now = 0;

	/* Burst at t=0, then 1000 refusals in the same window. */
	for (int i = 0; i < LOG_RATELIMIT_BURST; i++)
		assert_true(log_ratelimit_pass(&rl, now, &sup));
	for (int i = 0; i < 1000; i++)
		assert_false(log_ratelimit_pass(&rl, now + 999, &sup));
	assert_true(log_ratelimit_pass(&rl, now + 1000, &sup));
	assert_int_equal(sup, 1000);
}

static void limiter_survives_time_going_back(void **state)
{
	(void)state;
	static const struct step s[] = {
		{ 10000, true, 0 },
		{ 10000, true, 0 },
		{ 10000, true, 0 },
		{ 10000, true, 0 },
		{ 10000, true, 0 },
		{ 10000, false, 0 },
		/* a clock that went backwards starts a fresh window */
		{ 9000, true, 1 },
	};
	run_steps(s, sizeof s / sizeof s[0]);
}

/* ---- what reaches stderr ---- */

/* capture runs fn with stderr redirected to a temporary file and returns
 * what was written (NUL-terminated in buf). */
static size_t capture(void (*fn)(void), char *buf, size_t cap)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);

	assert_non_null(tmp);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, cap - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return n;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void write_levels(void)
{
	log_open("testlog", LOG_LEVEL_WARN, LOG_SINK_STDERR);
	log_error("bind %s: %s", "127.0.0.1:9000", "Address already in use");
	log_warn("w%d", 2);
	log_info("not shown");
	log_debug("not shown either");
}

static void lines_have_stamp_ident_level_and_respect_the_level(void **state)
{
	(void)state;
	char out[4096], want[128];

	capture(write_levels, out, sizeof out);
	assert_int_equal(count_lines(out), 2);
	assert_null(strstr(out, "not shown"));
	/* 2026-11-25T21:50:14.123Z testlog[pid] error: ... */
	assert_true(strlen(out) > 24);
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[19], '.');
	assert_int_equal(out[23], 'Z');
	snprintf(want, sizeof want,
	         " testlog[%ld] error: bind 127.0.0.1:9000: Address already in use\n",
	         (long)getpid());
	assert_memory_equal(out + 24, want, strlen(want));
	assert_non_null(strstr(out, "] warn: w2\n"));
}

static void write_long(void)
{
	char big[3 * LOG_LINE_MAX];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_open("testlog", LOG_LEVEL_DEBUG, LOG_SINK_STDERR);
	log_info("%s", big);
}

static void long_lines_are_cut_with_an_ellipsis(void **state)
{
	(void)state;
	char out[4 * LOG_LINE_MAX];
	size_t n = capture(write_long, out, sizeof out);

	assert_int_equal(n, LOG_LINE_MAX);
	assert_memory_equal(out + n - 4, "...\n", 4);
}

static void write_limited(void)
{
	/* The previous window (2 s ago) refused 7 lines. */
	struct log_ratelimit rl = { clock_mono_ms() - 2000, LOG_RATELIMIT_BURST, 7, true };

	log_open("testlog", LOG_LEVEL_DEBUG, LOG_SINK_STDERR);
	log_msg_limited(&rl, LOG_LEVEL_WARN, "sendmmsg to %s: %s", "[::1]:9", "Refused");
	log_msg_limited(&rl, LOG_LEVEL_WARN, "second");
	log_set_level(LOG_LEVEL_ERROR);
	log_msg_limited(&rl, LOG_LEVEL_WARN, "disabled level");
	log_limited(LOG_LEVEL_WARN, "macro, disabled %d", 1);
	log_set_level(LOG_LEVEL_DEBUG);
	/* Many calls from one call site within a second: at most a burst
	 * (or two, if the loop straddles a window boundary). */
	for (int i = 0; i < 50; i++)
		log_limited(LOG_LEVEL_DEBUG, "flood %d", i);
}

static void limited_lines_report_what_was_suppressed(void **state)
{
	(void)state;
	char out[16384];

	capture(write_limited, out, sizeof out);
	assert_non_null(
	        strstr(out, "warn: sendmmsg to [::1]:9: Refused (suppressed 7 similar lines)\n"));
	assert_non_null(strstr(out, "warn: second\n"));
	assert_null(strstr(out, "disabled"));
	size_t floods = 0;
	for (const char *p = out; (p = strstr(p, "flood ")); p++)
		floods++;
	assert_true(floods >= LOG_RATELIMIT_BURST && floods <= 2 * LOG_RATELIMIT_BURST);
}

static void level_names_round_trip(void **state)
{
	(void)state;
	static const char *const names[] = { "error", "warn", "info", "debug" };
	enum log_level l = LOG_LEVEL_INFO;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(log_level_parse(names[i], &l), 0);
		assert_int_equal(l, i);
		assert_string_equal(log_level_name(l), names[i]);
	}
	assert_int_equal(log_level_parse("DEBUG", &l), KS_ERR_INVAL);
	assert_int_equal(log_level_parse("warning", &l), KS_ERR_INVAL);
	assert_int_equal(log_level_parse("", &l), KS_ERR_INVAL);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_string_equal(log_level_name((enum log_level)9), "?");
	log_set_level(LOG_LEVEL_INFO);
	assert_true(log_enabled(LOG_LEVEL_ERROR));
	assert_true(log_enabled(LOG_LEVEL_INFO));
	assert_false(log_enabled(LOG_LEVEL_DEBUG));
	assert_int_equal(log_get_level(), LOG_LEVEL_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(limiter_passes_a_burst_then_counts),
		cmocka_unit_test(limiter_counts_across_refused_windows),
		cmocka_unit_test(limiter_survives_time_going_back),
		cmocka_unit_test(lines_have_stamp_ident_level_and_respect_the_level),
		cmocka_unit_test(long_lines_are_cut_with_an_ellipsis),
		cmocka_unit_test(limited_lines_report_what_was_suppressed),
		cmocka_unit_test(level_names_round_trip),
	};
	return cmocka_run_group_tests_name("io_log", tests, NULL, NULL);
}
