/* smetrics.c - per-user session families and the UDP counters (see smetrics.h). */
#include "io/smetrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

enum combine { SUM, MAX };

struct family {
	const char *name;
	enum metrics_type type;
	enum combine combine; /* how one user's sessions add up */
	bool ms;              /* the value is milliseconds: written as seconds */
	const char *help;
	uint64_t (*get)(const struct session_stats *st);
};

#define GET(fn, expr)                                                                              \
	static uint64_t fn(const struct session_stats *st) { return (uint64_t)(expr); }
GET(g_srtt, st->kcp.srtt)
GET(g_rttvar, st->kcp.rttvar)
GET(g_rto, st->kcp.rto)
GET(g_cwnd, st->kcp.cwnd)
GET(g_inflight, st->kcp.inflight)
GET(g_waitsnd, st->kcp.waitsnd)
GET(g_retx_timeout, st->kcp.seg_retx_timeout)
GET(g_retx_fast, st->kcp.seg_retx_fast)
GET(g_retx_spurious, st->kcp.seg_retx_spurious)
GET(g_dup, st->kcp.seg_dup)
GET(g_seg_sent, st->kcp.seg_sent)
GET(g_dup_thin, st->kcp.seg_dup_thin)
GET(g_bytes_in, st->bytes_in)
GET(g_bytes_out, st->bytes_out)
GET(g_dgram_in, st->dgram_in)
GET(g_dgram_out, st->dgram_out)
GET(g_dropped, st->dropped)
GET(g_streams, st->streams)
GET(g_mem, st->mem_bytes)
GET(g_keepalives, st->keepalives)
GET(g_rekeys, st->rekeys)
GET(g_ping_rtt, st->rtt_ms)
GET(g_udp_in, st->udp_in)
GET(g_udp_out, st->udp_out)
GET(g_udp_dropped, st->udp_dropped)
#undef GET

static const struct family fams[] = {
	{ "kcpsocks_session_srtt_seconds", METRICS_GAUGE, MAX, true,
	  "smoothed round-trip time of the tunnel (the largest of the user's sessions)", g_srtt },
	{ "kcpsocks_session_rttvar_seconds", METRICS_GAUGE, MAX, true,
	  "variation of the tunnel's round-trip time", g_rttvar },
	{ "kcpsocks_session_rto_seconds", METRICS_GAUGE, MAX, true,
	  "retransmission timeout: how long a lost packet waits before it is sent again", g_rto },
	{ "kcpsocks_session_cwnd_segments", METRICS_GAUGE, SUM, false,
	  "congestion window: packets allowed in flight", g_cwnd },
	{ "kcpsocks_session_inflight_segments", METRICS_GAUGE, SUM, false,
	  "packets sent and not yet acknowledged", g_inflight },
	{ "kcpsocks_session_waitsnd_segments", METRICS_GAUGE, SUM, false,
	  "packets queued or in flight", g_waitsnd },
	{ "kcpsocks_session_retransmits_timeout_total", METRICS_COUNTER, SUM, false,
	  "packets sent again because no acknowledgement came in time", g_retx_timeout },
	{ "kcpsocks_session_retransmits_fast_total", METRICS_COUNTER, SUM, false,
	  "packets sent again early because later ones were acknowledged (likely lost)",
	  g_retx_fast },
	{ "kcpsocks_session_retransmits_spurious_total", METRICS_COUNTER, SUM, false,
	  "resends that turned out unnecessary (the original arrived)", g_retx_spurious },
	{ "kcpsocks_session_duplicate_segments_total", METRICS_COUNTER, SUM, false,
	  "data packets received more than once", g_dup },
	{ "kcpsocks_session_segments_sent_total", METRICS_COUNTER, SUM, false,
	  "data packets sent for the first time", g_seg_sent },
	{ "kcpsocks_session_thin_copies_total", METRICS_COUNTER, SUM, false,
	  "extra copies of packets sent while little data was in flight (profile lossy)",
	  g_dup_thin },
	{ "kcpsocks_session_received_bytes_total", METRICS_COUNTER, SUM, false,
	  "bytes of authenticated datagrams received", g_bytes_in },
	{ "kcpsocks_session_sent_bytes_total", METRICS_COUNTER, SUM, false,
	  "bytes of datagrams sent", g_bytes_out },
	{ "kcpsocks_session_received_datagrams_total", METRICS_COUNTER, SUM, false,
	  "authenticated datagrams received", g_dgram_in },
	{ "kcpsocks_session_sent_datagrams_total", METRICS_COUNTER, SUM, false, "datagrams sent",
	  g_dgram_out },
	{ "kcpsocks_session_dropped_datagrams_total", METRICS_COUNTER, SUM, false,
	  "datagrams of the session that did not decrypt", g_dropped },
	{ "kcpsocks_session_streams", METRICS_GAUGE, SUM, false, "connections carried now",
	  g_streams },
	{ "kcpsocks_session_memory_bytes", METRICS_GAUGE, SUM, false, "memory held by the sessions",
	  g_mem },
	{ "kcpsocks_session_keepalives_total", METRICS_COUNTER, SUM, false, "keepalive pings sent",
	  g_keepalives },
	{ "kcpsocks_session_rekeys_total", METRICS_COUNTER, SUM, false,
	  "times the tunnel's keys were replaced in place (either side started it)", g_rekeys },
	{ "kcpsocks_session_ping_rtt_seconds", METRICS_GAUGE, MAX, true,
	  "round trip of the last ping, queueing included", g_ping_rtt },
	{ "kcpsocks_session_udp_frames_received_total", METRICS_COUNTER, SUM, false,
	  "UDP datagram frames received beside KCP (UDP ASSOCIATE)", g_udp_in },
	{ "kcpsocks_session_udp_frames_sent_total", METRICS_COUNTER, SUM, false,
	  "UDP datagram frames sent beside KCP, never retransmitted", g_udp_out },
	{ "kcpsocks_session_udp_frames_dropped_total", METRICS_COUNTER, SUM, false,
	  "UDP datagram frames received malformed or not agreed", g_udp_dropped },
};

static int by_user(const void *a, const void *b)
{
	const struct smetrics_session *x = a, *y = b;

	return strcmp(x->user ? x->user : "", y->user ? y->user : "");
}

static bool same_user(const struct smetrics_session *x, const struct smetrics_session *y)
{
	return by_user(x, y) == 0;
}

/* One sample for the user whose sessions are v[0..n). */
static void user_sample(struct metrics_buf *b, const struct family *f,
                        const struct smetrics_session *v, size_t n)
{
	struct metrics_label l = { "user", v[0].user ? v[0].user : "" };
	uint64_t acc = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t x = f->get(&v[i].st);

		if (f->combine == MAX)
			acc = x > acc ? x : acc;
		else
			acc += x;
	}
	if (f->ms)
		metrics_sample_f64(b, f->name, &l, 1, (double)acc / 1000.0);
	else
		metrics_sample_u64(b, f->name, &l, 1, acc);
}

/* Upper bounds (seconds) of the RTT histogram's buckets; +Inf follows. */
static const double rtt_le[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};

/* rtt_histogram: every session's KCP srtt (those with a sample), in
 * seconds, as one histogram: the RTT picture of a busy server in 15 lines
 * whatever the number of sessions. */
static void rtt_histogram(struct metrics_buf *b, const struct smetrics_session *v, size_t n)
{
	static const char name[] = "kcpsocks_session_rtt_seconds";
	uint64_t counts[sizeof rtt_le / sizeof rtt_le[0]] = { 0 }, total = 0;
	double sum = 0;
	char le[16];

	for (size_t i = 0; i < n; i++) {
		double rtt = v[i].st.kcp.srtt / 1000.0;

		if (!v[i].st.kcp.srtt)
			continue;
		total++;
		sum += rtt;
		for (size_t k = 0; k < sizeof rtt_le / sizeof rtt_le[0]; k++)
			counts[k] += rtt <= rtt_le[k];
	}
	metrics_family(b, name, METRICS_HISTOGRAM,
	               "smoothed round-trip time of every session up, in seconds");
	for (size_t k = 0; k < sizeof rtt_le / sizeof rtt_le[0]; k++) {
		struct metrics_label l = { "le", le };

		snprintf(le, sizeof le, "%g", rtt_le[k]);
		metrics_sample_u64(b, "kcpsocks_session_rtt_seconds_bucket", &l, 1, counts[k]);
	}
	metrics_sample_u64(b, "kcpsocks_session_rtt_seconds_bucket",
	                   &(struct metrics_label){ "le", "+Inf" }, 1, total);
	metrics_sample_f64(b, "kcpsocks_session_rtt_seconds_sum", NULL, 0, sum);
	metrics_sample_u64(b, "kcpsocks_session_rtt_seconds_count", NULL, 0, total);
}

/* The end of the run of v[i]'s user in the sorted v[0..n). */
static size_t run_end(const struct smetrics_session *v, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && same_user(&v[i], &v[j]))
		j++;
	return j;
}

void smetrics_sessions(struct metrics_buf *b, struct smetrics_session *v, size_t n)
{
	size_t users = 0, shown;

	if (n > 1)
		qsort(v, n, sizeof *v, by_user);
	for (size_t i = 0; i < n; i = run_end(v, n, i))
		users++;
	shown = users < METRICS_SESSION_SERIES_MAX ? users : METRICS_SESSION_SERIES_MAX;
	rtt_histogram(b, v, n);
	metrics_gauge(b, "kcpsocks_session_series_omitted",
	              "users with a session up whose series below are left out (too many to show)",
	              (double)(users - shown));
	for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
		metrics_family(b, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0, u = 0, j; i < n && u < shown; i = j, u++) {
			j = run_end(v, n, i);
			user_sample(b, &fams[f], &v[i], j - i);
		}
	}
}

void smetrics_udp(struct metrics_buf *b, const struct peer_stats *ps, uint64_t timer_fires)
{
	metrics_counter(b, "kcpsocks_udp_received_datagrams_total",
	                "datagrams received on the UDP socket", ps->rx->datagrams);
	metrics_counter(b, "kcpsocks_udp_sent_datagrams_total", "datagrams sent on the UDP socket",
	                ps->tx.sent);
	metrics_counter(b, "kcpsocks_udp_sendmmsg_calls_total",
	                "batched send calls (datagrams per call = sent datagrams / calls)",
	                ps->tx.calls);
	metrics_counter(b, "kcpsocks_udp_gso_messages_total",
	                "sends that handed the kernel several datagrams at once (UDP GSO)",
	                ps->tx.gso_messages);
	metrics_counter(b, "kcpsocks_udp_recvmmsg_calls_total", "batched receive calls",
	                ps->rx->calls);
	metrics_counter(b, "kcpsocks_timer_wakeups_total",
	                "wake-ups of the session timer (an idle daemon adds almost none)",
	                timer_fires);
}
