/* log.c - the process-wide logger of the io layer. */
/* 64-bit time_t on 32-bit glibc targets as well (a no-op on 64-bit ones and
 * on musl, where it is always 64 bits), so the wall clock does not overflow
 * in 2038. Safe here: these calls go to libc only, no time_t crosses into a
 * library built with another setting (c-ares' struct timeval does, so the
 * tree as a whole keeps the platform default). Before any header. */
#define _FILE_OFFSET_BITS 64
#define _TIME_BITS        64

#include "io/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "io/clock.h"

static struct {
	const char *ident; /* borrowed from log_open's caller */
	enum log_level level;
	enum log_sink sink;
} lg = { "kcpsocks", LOG_LEVEL_INFO, LOG_SINK_STDERR };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_open(const char *ident, enum log_level level, enum log_sink sink)
{
	if (lg.sink == LOG_SINK_SYSLOG)
		closelog();
	lg.ident = ident ? ident : "kcpsocks";
	lg.level = level;
	lg.sink = sink;
	if (sink == LOG_SINK_SYSLOG)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_close(void)
{
	if (lg.sink == LOG_SINK_SYSLOG)
		closelog();
	lg.sink = LOG_SINK_STDERR;
}

void log_set_level(enum log_level level) { lg.level = level; }

enum log_level log_get_level(void) { return lg.level; }

bool log_enabled(enum log_level level) { return level <= lg.level; }

int log_level_parse(const char *text, enum log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return KS_ERR_INVAL;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level < sizeof level_names / sizeof level_names[0])
		return level_names[level];
	return "?";
}

static int syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return LOG_ERR;
	case LOG_LEVEL_WARN: return LOG_WARNING;
	case LOG_LEVEL_INFO: return LOG_INFO;
	case LOG_LEVEL_DEBUG: return LOG_DEBUG;
	}
	return LOG_INFO;
}

/* stamp writes "2026-11-25T21:50:14.123Z" (24 chars) into buf. */
static size_t stamp(char *buf, size_t len)
{
	uint64_t ms = clock_wall_ms();
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&secs, &tm))
		return 0;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return 0;
	int m = snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ms % 1000));
	return m > 0 && (size_t)m < len - n ? n + (size_t)m : n;
}

/* put_line formats a whole line into one buffer so that one write(2) puts
 * it out: lines from several processes sharing a stderr never interleave. */
LOG_PRINTF(3, 0)
static void put_line(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t cap = sizeof line - 1; /* room kept for the newline */
	size_t n = stamp(line, cap);
	int m = snprintf(line + n, cap - n, " %s[%ld] %s: ", lg.ident, (long)getpid(),
	                 log_level_name(level));

	n = m > 0 ? n + (size_t)m : n;
	if (n < cap) {
		m = vsnprintf(line + n, cap - n, fmt, ap);
		n = m > 0 ? n + (size_t)m : n;
	}
	if (n < cap && suffix) {
		m = snprintf(line + n, cap - n, "%s", suffix);
		n = m > 0 ? n + (size_t)m : n;
	}
	if (n >= cap) {
		n = cap;
		memcpy(line + n - 3, "...", 3);
	}
	line[n++] = '\n';
	/* Nothing sensible is left to do if stderr itself fails. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

LOG_PRINTF(3, 0)
static void emit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	int saved = errno; /* callers often log, then look at errno again */

	if (lg.sink == LOG_SINK_SYSLOG) {
		char msg[LOG_LINE_MAX];
		vsnprintf(msg, sizeof msg, fmt, ap);
		syslog(syslog_priority(level), "%s%s", msg, suffix ? suffix : "");
	} else {
		put_line(level, suffix, fmt, ap);
	}
	errno = saved;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (log_enabled(level))
		emit(level, NULL, fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed_before)
{
	if (!rl->started || now_ms < rl->window_start_ms ||
	    now_ms - rl->window_start_ms >= LOG_RATELIMIT_WINDOW_MS) {
		rl->started = true;
		rl->window_start_ms = now_ms;
		rl->passed = 0;
	}
	if (rl->passed >= LOG_RATELIMIT_BURST) {
		/* Saturate rather than wrap: a count is still a count. */
		if (rl->suppressed < UINT32_MAX)
			rl->suppressed++;
		return false;
	}
	rl->passed++;
	*suppressed_before = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

void log_msg_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	uint32_t suppressed = 0;
	char suffix[64];
	va_list ap;

	if (!log_enabled(level) || !log_ratelimit_pass(rl, clock_mono_ms(), &suppressed))
		return;
	if (suppressed)
		snprintf(suffix, sizeof suffix, " (suppressed %u similar lines)", suppressed);
	va_start(ap, fmt);
	emit(level, suppressed ? suffix : NULL, fmt, ap);
	va_end(ap);
}
