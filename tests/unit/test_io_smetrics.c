/* test_io_smetrics.c - the session families: one HELP/TYPE per family,
 * one sample per user (no session id: a reconnect keeps the series), a
 * user's sessions summed (times: the largest, in seconds), nothing written
 * for no session but the family headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/smetrics.h"

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void two_users(void **state)
{
	static char mem[65536];
	struct metrics_buf b;
	struct smetrics_session v[3];

	(void)state;
	memset(v, 0, sizeof v);
	snprintf(v[0].sid, sizeof v[0].sid, "%016llx", 0x1234ULL);
	v[0].user = "alice";
	v[0].st.kcp.srtt = 42;
	v[0].st.kcp.seg_retx_fast = 7;
	v[0].st.streams = 3;
	snprintf(v[1].sid, sizeof v[1].sid, "%016llx", 0xbeefULL);
	v[1].user = "bob \"q\"";
	v[1].st.kcp.srtt = 9;
	/* alice again: a second session (the old one not yet gone) */
	snprintf(v[2].sid, sizeof v[2].sid, "%016llx", 0x5678ULL);
	v[2].user = "alice";
	v[2].st.kcp.srtt = 1500;
	v[2].st.kcp.seg_retx_fast = 1;
	v[2].st.streams = 2;
	metrics_buf_init(&b, mem, sizeof mem - 1);
	smetrics_sessions(&b, v, 3);
	assert_true(metrics_buf_ok(&b));
	mem[b.len] = '\0';
	assert_non_null(strstr(mem, "# TYPE kcpsocks_session_srtt_seconds gauge\n"));
	assert_non_null(strstr(mem, "# TYPE kcpsocks_session_retransmits_fast_total counter\n"));
	assert_non_null(strstr(mem, "kcpsocks_session_srtt_seconds{user=\"alice\"} 1.5\n"));
	assert_non_null(strstr(mem, "kcpsocks_session_retransmits_fast_total{user=\"alice\"} 8\n"));
	assert_non_null(strstr(mem, "kcpsocks_session_streams{user=\"alice\"} 5\n"));
	/* label values are escaped; 9 ms is 0.009 s */
	assert_non_null(strstr(mem, "{user=\"bob \\\"q\\\"\"} 0.009\n"));
	assert_int_equal(count(mem, "# TYPE kcpsocks_session_srtt_seconds "), 1);
	assert_int_equal(count(mem, "kcpsocks_session_srtt_seconds{"), 2);
	assert_int_equal(count(mem, "sid="), 0);
	assert_int_equal(count(mem, "_ms"), 0);
}

static void no_session_and_overflow(void **state)
{
	static char mem[65536], small[64];
	struct metrics_buf b;
	struct smetrics_session v = { .sid = "0", .user = NULL };

	(void)state;
	metrics_buf_init(&b, mem, sizeof mem - 1);
	smetrics_sessions(&b, NULL, 0);
	mem[b.len] = '\0';
	assert_true(metrics_buf_ok(&b));
	assert_int_equal(count(mem, "{user="), 0);
	assert_non_null(strstr(mem, "# TYPE kcpsocks_session_rto_seconds gauge"));
	metrics_buf_init(&b, small, sizeof small);
	smetrics_sessions(&b, &v, 1);
	assert_false(metrics_buf_ok(&b)); /* bounded: marked, never overrun */
	assert_true(b.len <= sizeof small);
}

/* Issue 19: a scrape of a server with 1,000 sessions of 1,000 users up (a
 * fake of their stats): the output is complete (no cap), the RTT histogram
 * counts every session, and the per-user series stop at
 * METRICS_SESSION_SERIES_MAX users. */
static void thousand_sessions(void **state)
{
	enum { N = 1000 };
	static struct smetrics_session v[N];
	static char users[N][8];
	struct metrics_buf b;
	char *text;

	(void)state;
	memset(v, 0, sizeof v);
	for (size_t i = 0; i < N; i++) {
		snprintf(v[i].sid, sizeof v[i].sid, "%016zx", i + 1);
		snprintf(users[i], sizeof users[i], "u%03zu", i);
		v[i].user = users[i];
		v[i].st.kcp.srtt = (uint32_t)i; /* ms; session 0 has no sample yet */
	}
	metrics_buf_init_grow(&b);
	smetrics_sessions(&b, v, N);
	assert_true(metrics_buf_ok(&b));
	text = malloc(b.len + 1);
	assert_non_null(text);
	memcpy(text, b.p, b.len);
	text[b.len] = '\0';
	metrics_buf_free(&b);
	assert_non_null(strstr(text, "# TYPE kcpsocks_session_rtt_seconds histogram\n"));
	assert_non_null(strstr(text, "kcpsocks_session_rtt_seconds_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(strstr(text, "kcpsocks_session_rtt_seconds_bucket{le=\"0.01\"} 10\n"));
	assert_non_null(strstr(text, "kcpsocks_session_rtt_seconds_bucket{le=\"0.5\"} 500\n"));
	assert_non_null(strstr(text, "kcpsocks_session_rtt_seconds_bucket{le=\"+Inf\"} 999\n"));
	assert_non_null(strstr(text, "kcpsocks_session_rtt_seconds_count 999\n"));
	assert_non_null(strstr(text, "kcpsocks_session_series_omitted 936\n"));
	assert_int_equal(count(text, "kcpsocks_session_srtt_seconds{"), METRICS_SESSION_SERIES_MAX);
	assert_int_equal(count(text, "sid="), 0);
	assert_int_equal(count(text, "# TYPE "), count(text, "# HELP "));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_users),
		cmocka_unit_test(no_session_and_overflow),
		cmocka_unit_test(thousand_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
