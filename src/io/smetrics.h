/* smetrics.h - Prometheus families for sessions, shared by both daemons.
 *
 * smetrics_sessions writes, over all n sessions, the histogram of their
 * RTTs (kcpsocks_session_rtt_seconds) and how many sessions' series are
 * omitted; then one family per session gauge or counter (docs/METRICS.md,
 * "Daemons"), with a sample per session labelled sid (16 hex digits) and
 * user, for the first METRICS_SESSION_SERIES_MAX sessions of v only, so
 * the output grows with the number of sessions only up to that bound. The
 * caller gathers the stats first.
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
	char sid[17];
	const char *user; /* borrowed */
	struct session_stats st;
};

void smetrics_sessions(struct metrics_buf *b, const struct smetrics_session *v, size_t n);

void smetrics_udp(struct metrics_buf *b, const struct peer_stats *ps);

#endif
