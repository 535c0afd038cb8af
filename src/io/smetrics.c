/* smetrics.c - per-session Prometheus families (see smetrics.h). */
#include "io/smetrics.h"

#include <stdint.h>
#include <stdio.h>

#include "base/limits.h"

struct family {
	const char *name;
	enum metrics_type type;
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
GET(g_ping_rtt, st->rtt_ms)
#undef GET

static const struct family fams[] = {
	{ "kcpsocks_session_srtt_ms", METRICS_GAUGE, "KCP smoothed round-trip time", g_srtt },
	{ "kcpsocks_session_rttvar_ms", METRICS_GAUGE, "KCP round-trip time variation", g_rttvar },
	{ "kcpsocks_session_rto_ms", METRICS_GAUGE, "KCP retransmission timeout", g_rto },
	{ "kcpsocks_session_cwnd_segments", METRICS_GAUGE, "KCP congestion window", g_cwnd },
	{ "kcpsocks_session_inflight_segments", METRICS_GAUGE,
	  "KCP segments sent, not acknowledged", g_inflight },
	{ "kcpsocks_session_waitsnd_segments", METRICS_GAUGE, "KCP segments queued or in flight",
	  g_waitsnd },
	{ "kcpsocks_session_retransmits_timeout_total", METRICS_COUNTER,
	  "KCP segments retransmitted after an RTO", g_retx_timeout },
	{ "kcpsocks_session_retransmits_fast_total", METRICS_COUNTER,
	  "KCP segments retransmitted by fast retransmit", g_retx_fast },
	{ "kcpsocks_session_retransmits_spurious_total", METRICS_COUNTER,
	  "retransmissions found unnecessary (the original arrived)", g_retx_spurious },
	{ "kcpsocks_session_duplicate_segments_total", METRICS_COUNTER,
	  "KCP data segments received more than once", g_dup },
	{ "kcpsocks_session_segments_sent_total", METRICS_COUNTER,
	  "KCP data segments sent (first transmissions)", g_seg_sent },
	{ "kcpsocks_session_thin_copies_total", METRICS_COUNTER,
	  "KCP second copies of thin-flight segments (K11)", g_dup_thin },
	{ "kcpsocks_session_received_bytes_total", METRICS_COUNTER,
	  "bytes of authenticated datagrams received", g_bytes_in },
	{ "kcpsocks_session_sent_bytes_total", METRICS_COUNTER, "bytes of datagrams sent",
	  g_bytes_out },
	{ "kcpsocks_session_received_datagrams_total", METRICS_COUNTER,
	  "authenticated datagrams received", g_dgram_in },
	{ "kcpsocks_session_sent_datagrams_total", METRICS_COUNTER, "datagrams sent", g_dgram_out },
	{ "kcpsocks_session_dropped_datagrams_total", METRICS_COUNTER,
	  "datagrams of this session that did not open", g_dropped },
	{ "kcpsocks_session_streams", METRICS_GAUGE, "mux streams held", g_streams },
	{ "kcpsocks_session_memory_bytes", METRICS_GAUGE, "heap bytes held by the session", g_mem },
	{ "kcpsocks_session_keepalives_total", METRICS_COUNTER, "keepalive PINGs sent",
	  g_keepalives },
	{ "kcpsocks_session_ping_rtt_ms", METRICS_GAUGE, "last PING round trip through every queue",
	  g_ping_rtt },
};

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
	               "KCP smoothed round-trip time of the sessions up, in seconds");
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

void smetrics_sessions(struct metrics_buf *b, const struct smetrics_session *v, size_t n)
{
	size_t shown = n < METRICS_SESSION_SERIES_MAX ? n : METRICS_SESSION_SERIES_MAX;

	rtt_histogram(b, v, n);
	metrics_gauge(b, "kcpsocks_session_series_omitted",
	              "sessions up whose per-session series are not shown (bound "
	              "METRICS_SESSION_SERIES_MAX)",
	              (double)(n - shown));
	for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
		metrics_family(b, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < shown; i++) {
			struct metrics_label l[2] = { { "sid", v[i].sid },
				                      { "user", v[i].user ? v[i].user : "" } };

			metrics_sample_u64(b, fams[f].name, l, 2, fams[f].get(&v[i].st));
		}
	}
}

void smetrics_udp(struct metrics_buf *b, const struct peer_stats *ps)
{
	metrics_counter(b, "kcpsocks_udp_received_datagrams_total", "datagrams received",
	                ps->rx->datagrams);
	metrics_counter(b, "kcpsocks_udp_sent_datagrams_total", "datagrams sent", ps->tx->sent);
	metrics_counter(b, "kcpsocks_udp_sendmmsg_calls_total", "sendmmsg calls", ps->tx->calls);
	metrics_counter(b, "kcpsocks_udp_gso_messages_total",
	                "sendmmsg messages that carried several datagrams (UDP GSO)",
	                ps->tx->gso_messages);
	metrics_counter(b, "kcpsocks_udp_recvmmsg_calls_total", "recvmmsg calls", ps->rx->calls);
	metrics_counter(b, "kcpsocks_timer_wakeups_total", "session timer expiries",
	                ps->timer_fires);
}
