/* test_io_mstatus.c - the status view's parser and renderer: samples with
 * and without labels, escapes, timestamps, comments; malformed lines
 * refused; a server scrape rendered with its totals and one row per user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mstatus.h"

static int parse(const char *line, struct mstatus_sample *s)
{
	return mstatus_parse_line(line, strlen(line), s);
}

static void lines(void **state)
{
	struct mstatus_sample s;

	(void)state;
	assert_int_equal(parse("kcpsocks_sessions 1", &s), 1);
	assert_string_equal(s.name, "kcpsocks_sessions");
	assert_string_equal(s.label, "");
	assert_true(s.value == 1.0);
	assert_int_equal(parse("kcpsocks_session_srtt_seconds{user=\"alice\"} 0.012", &s), 1);
	assert_string_equal(s.label_name, "user");
	assert_string_equal(s.label, "alice");
	assert_true(s.value == 0.012);
	assert_int_equal(parse("x{u=\"a\\\"b\\\\c\\n\",v=\"w\",} +Inf 1700000000000", &s), 1);
	assert_string_equal(s.label, "a\"b\\c\n");
	assert_true(s.value > 1e308);
	assert_int_equal(parse("x{} NaN", &s), 1);
	assert_int_equal(parse("# HELP x a help text", &s), 0);
	assert_int_equal(parse("", &s), 0);
	assert_int_equal(parse("   ", &s), 0);
	/* malformed */
	assert_int_equal(parse("x{u=\"open} 1", &s), KS_ERR_PROTO);
	assert_int_equal(parse("x{u=a} 1", &s), KS_ERR_PROTO);
	assert_int_equal(parse("x{u=\"\\q\"} 1", &s), KS_ERR_PROTO);
	assert_int_equal(parse("x 1 2 3", &s), KS_ERR_PROTO);
	assert_int_equal(parse("x one", &s), KS_ERR_PROTO);
	assert_int_equal(parse("x", &s), KS_ERR_PROTO);
	assert_int_equal(parse("1x 1", &s), KS_ERR_PROTO);
	/* a long label value is cut, still terminated */
	{
		char l[300];

		snprintf(l, sizeof l, "x{u=\"%0200d\"} 2", 0);
		assert_int_equal(parse(l, &s), 1);
		assert_int_equal(strlen(s.label), MSTATUS_LABEL_MAX - 1);
	}
}

static void render_server(void **state)
{
	static const char scrape[] =
	        "# HELP kcpsocks_sessions sessions\n"
	        "kcpsocks_sessions 1\n"
	        "kcpsocks_handshakes_ok_total 3\n"
	        "kcpsocks_streams 2\n"
	        "kcpsocks_streams_total 40\n"
	        "kcpsocks_relay_up_bytes_total 2048\n"
	        "kcpsocks_relay_down_bytes_total 3145728\n"
	        "kcpsocks_user_up_bytes_total{user=\"alice\"} 2048\n"
	        "kcpsocks_user_sessions_total{user=\"alice\"} 3\n"
	        "kcpsocks_user_sessions_total{user=\"bob\"} 0\n"
	        "kcpsocks_session_srtt_seconds{user=\"alice\"} 0.025\n"
	        "kcpsocks_session_segments_sent_total{user=\"alice\"} 200\n"
	        "kcpsocks_session_retransmits_fast_total{user=\"alice\"} 3\n"
	        "kcpsocks_session_retransmits_timeout_total{user=\"alice\"} 1\n"
	        "garbage line {\n";
	char out[4096] = "";
	FILE *f = fmemopen(out, sizeof out - 1, "w");

	(void)state;
	assert_non_null(f);
	assert_int_equal(mstatus_render(f, CONFIG_ROLE_SERVER, scrape, sizeof scrape - 1), 0);
	fclose(f);
	assert_non_null(strstr(out, "sessions   1 established, 3 made"));
	assert_non_null(strstr(out, "streams    2 open, 40 opened"));
	assert_non_null(strstr(out, "up 2.0 KiB, down 3.0 MiB"));
	assert_non_null(strstr(out, "alice"));
	assert_non_null(strstr(out, "25.0"));   /* srtt in ms */
	assert_non_null(strstr(out, "2.00%"));  /* 4 resent of 200 */
	assert_non_null(strstr(out, "\nbob ")); /* configured, no session: a row of dashes */
	assert_int_equal(mstatus_render(stdout, CONFIG_ROLE_SERVER, "nothing 1\n", 10),
	                 KS_ERR_PROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines),
		cmocka_unit_test(render_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
