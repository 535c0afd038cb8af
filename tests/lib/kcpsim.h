/* kcpsim.h - two KCP engines joined by two netsim links on virtual time:
 * the harness tests/sim/sim_kcp.c and bench/bench_kcp.c share, and the
 * engine configuration the tunnel runs. No cmocka: calls report failure
 * by return value and the caller asserts (a test) or exits (a bench). */
#ifndef KCPSOCKS_KCPSIM_H
#define KCPSOCKS_KCPSIM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/kcp.h"
#include "core/netsim.h"

struct kcpsim_end {
	struct kcp *k;          /* owned */
	struct netsim_link *tx; /* owned: what this end outputs goes here */
	const uint64_t *now;    /* borrowed: the simulation clock */
};

/* A sends on a.tx, which B reads; B sends on b.tx, which A reads. */
struct kcpsim {
	uint64_t now;
	struct kcpsim_end a, b;
	uint64_t steps; /* the caller's step count (kcpsim leaves it alone) */
};

/* kcpsim_init starts both engines (conversation conv, configuration kc)
 * and both links (nc; seeded from seed) at virtual time t0. Returns 0, or
 * the first error (then nothing is allocated: no kcpsim_free). */
int kcpsim_init(struct kcpsim *s, const struct kcp_config *kc, const struct netsim_config *nc,
                uint64_t seed, uint64_t t0, uint32_t conv);

/* kcpsim_free frees both engines and links. */
void kcpsim_free(struct kcpsim *s);

/* kcpsim_drain moves every datagram due on link l at s->now into engine
 * k. Returns 0, or the error of kcp_input or netsim_link_recv. */
int kcpsim_drain(struct kcpsim *s, struct netsim_link *l, struct kcp *k);

/* kcpsim_next_deadline is the earliest engine deadline or arrival. */
uint64_t kcpsim_next_deadline(const struct kcpsim *s);

/* kcpsim_advance moves the clock to the next event, or to limit if that
 * comes first, delivers what is due both ways and updates both engines
 * (A first); the caller's application code then runs at that instant.
 * Returns 1, 0 when nothing is scheduled before limit (KS_NEVER: at all),
 * or an error of kcpsim_drain. */
int kcpsim_advance(struct kcpsim *s, uint64_t limit);

/* kcpsim_tunnel_config fills c with the engine configuration a tunnel
 * session of the built-in profile `default` runs (transport_kcp: its
 * nodelay, interval, resend, nc and min_rto, one flush per batch, pacing,
 * the send queue below the mux), with what the KCP sims hold fixed
 * instead: both windows wnd, KCP's default MTU (not the envelope's), one
 * byte stream (no per-stream delivery), the default dead_link, no K11
 * duplicates, and K13 bundling only if bundle. */
void kcpsim_tunnel_config(struct kcp_config *c, uint32_t wnd, bool bundle);

#endif
