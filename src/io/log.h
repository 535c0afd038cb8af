/* log.h - leveled logging to stderr or syslog, with per-call-site rate limits.
 *
 * The io layer holds the process-wide logging state (level, sink, ident);
 * cores never log. Set it once at startup with log_open(); until then lines
 * go to stderr at LOG_LEVEL_INFO under the ident "kcpsocks", so early
 * errors are never lost. Single-threaded by design, like the event loop.
 *
 * stderr lines look like
 *   2026-11-25T21:50:14.123Z kcpcat[4242] warn: bind 127.0.0.1:9000: Address already in use
 * (UTC, millisecond resolution) and are written with one write(2) each, at
 * most LOG_LINE_MAX bytes (longer lines are cut and end in "...").
 *
 * Per-packet trouble goes through log_limited(): each call site passes at
 * most LOG_RATELIMIT_BURST lines per LOG_RATELIMIT_WINDOW_MS; the first line
 * after a quiet spell says how many were suppressed before it.
 */
#ifndef KCPSOCKS_LOG_H
#define KCPSOCKS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

enum log_sink {
	LOG_SINK_STDERR = 0,
	LOG_SINK_SYSLOG = 1, /* facility LOG_DAEMON, with the pid */
};

enum {
	LOG_LINE_MAX = 1024,     /* bytes per line, newline included */
	LOG_RATELIMIT_BURST = 5, /* lines per window per call site */
	LOG_RATELIMIT_WINDOW_MS = 1000,
};

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* log_open sets the ident (borrowed: must outlive the process's logging,
 * a string literal or argv[0]), the level and the sink. It may be called
 * again to change them; switching away from syslog closes it. */
void log_open(const char *ident, enum log_level level, enum log_sink sink);

/* log_close closes syslog if it was open and returns to stderr. */
void log_close(void);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* log_enabled tells whether a line at level would be written; use it to
 * skip expensive formatting of debug lines. */
bool log_enabled(enum log_level level);

/* log_level_parse maps "error", "warn", "info", "debug" (exact, lower case)
 * to a level. Returns 0, or KS_ERR_INVAL (*out unchanged). */
KS_MUST_CHECK int log_level_parse(const char *text, enum log_level *out);

/* log_level_name returns "error", "warn", "info", "debug" or "?". */
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_vmsg(enum log_level level, const char *fmt, va_list ap) LOG_PRINTF(2, 0);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* One rate limiter; zero-initialised is a valid, empty state. */
struct log_ratelimit {
	uint64_t window_start_ms; /* start of the current window */
	uint32_t passed;          /* lines passed in the current window */
	uint32_t suppressed;      /* lines refused in the current window */
	bool started;             /* false until the first line */
};

/* log_ratelimit_pass is the limiter's whole logic, with the time injected:
 * it returns true if a line at now_ms may be written, and then sets
 * *suppressed_before to the number of lines refused in the window(s) that
 * ended since the last passed line (0 if none). A new window starts at the
 * first call at or after window_start_ms + LOG_RATELIMIT_WINDOW_MS. */
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed_before);

/* log_msg_limited writes the line if rl lets it pass at the monotonic now,
 * with " (suppressed N similar lines)" appended when N > 0. */
void log_msg_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
        LOG_PRINTF(3, 4);

/* log_limited(level, fmt, ...) rate-limits per call site (a static limiter
 * at the place of the macro). The arguments are not evaluated when the
 * level is disabled. */
#define log_limited(level, ...)                                                                    \
	do {                                                                                       \
		static struct log_ratelimit log_rl_;                                               \
		if (log_enabled(level))                                                            \
			log_msg_limited(&log_rl_, (level), __VA_ARGS__);                           \
	} while (0)

#endif
