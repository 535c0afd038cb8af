/* udpmetrics.c - UDP ASSOCIATE counters as metrics (see udpmetrics.h). */
#include "io/udpmetrics.h"

#include "io/metrics.h"

void udp_metrics_write(struct metrics_buf *b, const struct udpassoc_counters *c)
{
	static const char drops[] = "kcpsocks_udp_assoc_dropped_total";

	metrics_counter(b, "kcpsocks_udp_assoc_opened_total", "UDP associations opened", c->opened);
	metrics_counter(b, "kcpsocks_udp_assoc_refused_total",
	                "UDP ASSOCIATE requests refused (off, or udp_associations reached)",
	                c->refused);
	metrics_gauge(b, "kcpsocks_udp_assoc_active", "UDP associations open now",
	              (double)c->active);
	metrics_gauge(b, "kcpsocks_udp_assoc_queued_bytes",
	              "bytes of UDP datagrams waiting for a name lookup now",
	              (double)c->queued_bytes);
	metrics_counter(b, "kcpsocks_udp_assoc_up_datagrams_total",
	                "UDP datagrams relayed towards destinations", c->up);
	metrics_counter(b, "kcpsocks_udp_assoc_down_datagrams_total",
	                "UDP datagrams relayed back towards clients", c->down);
	metrics_counter(b, "kcpsocks_udp_assoc_up_bytes_total",
	                "their data bytes, towards destinations", c->bytes_up);
	metrics_counter(b, "kcpsocks_udp_assoc_down_bytes_total",
	                "their data bytes, towards clients", c->bytes_down);
	metrics_family(b, drops, METRICS_COUNTER,
	               "UDP datagrams dropped without an answer, by reason");
	for (int r = 0; r < UDPASSOC_DROP_REASONS; r++) {
		struct metrics_label l = { "reason", udpassoc_drop_label((enum udpassoc_drop)r) };

		metrics_sample_u64(b, drops, &l, 1, c->drops[r]);
	}
}
