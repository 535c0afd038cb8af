/* udpmetrics.h - the UDP ASSOCIATE counters (core/udpassoc.h) as
 * Prometheus samples, the same names in both daemons. */
#ifndef KCPSOCKS_UDPMETRICS_H
#define KCPSOCKS_UDPMETRICS_H

#include "core/udpassoc.h"

struct metrics_buf;

/* udp_metrics_write appends kcpsocks_udp_* families for c. */
void udp_metrics_write(struct metrics_buf *b, const struct udpassoc_counters *c);

#endif
