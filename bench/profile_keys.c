/* profile_keys.c - bulk throughput and retransmissions of every built-in
 * profile on four simulated paths, both ends configured by the production
 * mapping (core/transport.h) as the daemons configure themselves. Not part
 * of make: it reuses tests/sim/sim_session.c's world. Build and run from the
 * top of the tree after `make test-sim`:
 *
 *   cc -O2 -Isrc -I. -D_GNU_SOURCE -o build/profile_keys bench/profile_keys.c \
 *      build/libksio.a build/libkscore.a -lcmocka -lev -lcares -linih -lsodium -lm
 *   build/profile_keys
 *
 * Results and the before/after table: docs/bench/profile-keys.md.
 */
#define main sim_main
#include "tests/sim/sim_session.c"
#undef main

static void run2(const char *name, const struct netsim_config *link, uint64_t bytes, uint64_t seed)
{
	struct transport_params tp;
	struct session_stats st;
	struct world *w;
	struct bulk b;
	uint64_t took;

	w = profile_world(name, link, seed, &tp);
	add_flow(w, 100, bytes);
	uint64_t t0 = w->now;
	int dnf = 0;
	for (uint64_t i = 0; !all_done(w); i++) {
		if (w->now - t0 >= 120000 || i > 3000000) {
			dnf = 1;
			break;
		}
		step(w, w->now + 120000);
	}
	took = w->now - t0;
	if (dnf)
		printf("DNF(%llu bytes in %llu ms) ", (unsigned long long)w->f[0].down_rcvd,
		       (unsigned long long)took);
	session_stats(server_session(w->srv, session_sid(w->cli)), &st);
	b.mbps = (double)bytes / 1000.0 / (double)took;
	printf("%-10s %-10s %7.2f MB/s retx %6llu (to %5llu fast %5llu spur %5llu) sent %7llu "
	       "dgrams c %7llu s %7llu lost %llu\n",
	       name, "", b.mbps,
	       (unsigned long long)(st.kcp.seg_retx_timeout + st.kcp.seg_retx_fast),
	       (unsigned long long)st.kcp.seg_retx_timeout,
	       (unsigned long long)st.kcp.seg_retx_fast,
	       (unsigned long long)st.kcp.seg_retx_spurious, (unsigned long long)st.kcp.seg_sent,
	       (unsigned long long)w->c_dgrams, (unsigned long long)w->s_dgrams,
	       (unsigned long long)(w->c_lost + w->s_lost));
	world_free(w);
}

int main(void)
{
	static const struct netsim_config links[] = { LOOPBACK(0), LOOPBACK(0.01), LOSS5,
		                                      BOTTLENECK(0.01) };
	static const char *ln[] = { "clean", "loss1", "loss5", "bneck1" };
	for (size_t l = 0; l < 4; l++) {
		printf("== %s\n", ln[l]);
		for (size_t i = 0; i < profile_count(); i++)
			run2(profile_at(i)->name, &links[l], 8 << 20, 40 + l);
	}
	return 0;
}
