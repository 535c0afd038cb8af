/* smetrics.h - Prometheus families for sessions, shared by both daemons.
 *
 * smetrics_sessions writes, over all n sessions, the histogram of their
 * RTTs (kcpsocks_session_rtt_seconds) and how many users' series are
 * omitted; then one family per session gauge or counter (docs/METRICS.md,
 * "Daemons"), with one sample per user (label user): never a session id,
 * so a reconnect continues the same series. A user's sessions add up
 * (counters, windows, streams, memory); times are the largest of them, in
 * seconds. Only the first METRICS_SESSION_SERIES_MAX users (by name) get
 * series, so the output is bounded. The caller gathers the stats first; v
 * is sorted by user in place.
 * smetrics_udp writes the UDP socket's counters (datagrams, batching, GSO,
 * timer wakeups), the same in both daemons.
 */
#ifndef KCPSOCKS_SMETRICS_H
#define KCPSOCKS_SMETRICS_H

#include <stddef.h>

#include "core/session.h"
#include "io/metrics.h"
#include "io/peer.h"

struct smetrics_session {
	char sid[17];     /* for the caller's own use; not exported */
	const char *user; /* borrowed; NULL is written as "" */
	struct session_stats st;
};

void smetrics_sessions(struct metrics_buf *b, struct smetrics_session *v, size_t n);

/* smetrics_udp writes the socket's counters and the loop's timer
 * wake-ups (loop_timer_fires). */
void smetrics_udp(struct metrics_buf *b, const struct peer_stats *ps, uint64_t timer_fires);

#endif
