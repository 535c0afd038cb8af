/* smetrics.h - Prometheus families for sessions, shared by both daemons.
 *
 * smetrics_sessions writes one family per session gauge or counter
 * (docs/METRICS.md, "Daemons"), with a sample per session labelled sid
 * (16 hex digits) and user. The caller gathers the stats first.
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
