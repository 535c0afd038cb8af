/* test_transport.c - the one mapping from a profile to the engines: every
 * built-in maps to valid settings, every profile key reaches the engine it
 * is for (the handshake, KCP on both ends, or the mux), nodelay 2 is not
 * collapsed, and a server applies its own policy, not the client's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/transport.h"

/* What one profile becomes when both ends run it: the proposal, the answer
 * a server with this profile (accepting every built-in) gives, each end's
 * KCP configuration and the mux configuration. */
struct mapped {
	struct transport_params proposal, agreed;
	struct kcp_config kcp_client, kcp_server;
	struct mux_config mux;
};

static uint32_t all_profiles(void) { return (1u << profile_count()) - 1; }

static void map(const struct profile *p, struct mapped *m)
{
	struct transport_params min, max, def;
	struct transport_local local;

	memset(m, 0, sizeof *m);
	transport_proposal(p, &m->proposal);
	assert_true(tparams_valid(&m->proposal));
	transport_ranges(p, all_profiles(), &min, &max, &def);
	tparams_clamp(&m->agreed, &m->proposal, &min, &max, &def);
	assert_true(tparams_valid(&m->agreed));
	transport_local_of(p, &local);
	transport_kcp(&m->kcp_client, &m->agreed, &local, false);
	transport_kcp(&m->kcp_server, &m->agreed, &local, true);
	assert_int_equal(kcp_config_check(&m->kcp_client), 0);
	assert_int_equal(kcp_config_check(&m->kcp_server), 0);
	transport_mux(p, 0, &m->mux);
	assert_int_equal(mux_config_check(&m->mux), 0);
}

static bool kcp_same(const struct kcp_config *a, const struct kcp_config *b)
{
	return a->nodelay == b->nodelay && a->interval == b->interval && a->resend == b->resend &&
	       a->nc == b->nc && a->snd_wnd == b->snd_wnd && a->rcv_wnd == b->rcv_wnd &&
	       a->snd_queue == b->snd_queue && a->mtu == b->mtu && a->min_rto == b->min_rto &&
	       a->dead_link == b->dead_link && a->stream == b->stream &&
	       a->flush_on_send == b->flush_on_send && a->ack_immediate == b->ack_immediate &&
	       a->pace == b->pace && a->dup_thin == b->dup_thin && a->initial_sn == b->initial_sn;
}

static bool mux_same(const struct mux_config *a, const struct mux_config *b)
{
	return a->window == b->window && a->send_buffer == b->send_buffer &&
	       a->max_streams == b->max_streams && a->quantum == b->quantum &&
	       a->budget == b->budget;
}

static void every_builtin_maps_to_valid_settings(void **state)
{
	(void)state;
	for (size_t i = 0; i < profile_count(); i++) {
		const struct profile *p = profile_at(i);
		struct mapped m;

		map(p, &m);
		assert_int_equal(m.proposal.profile, i);
		assert_int_equal(m.proposal.mtu, p->mtu);
		assert_int_equal(m.proposal.nodelay, p->nodelay);
		assert_int_equal(m.proposal.keepalive_ms, p->keepalive_ms);
		assert_true(tparams_equal(&m.proposal, &m.agreed));
		assert_int_equal(m.kcp_client.min_rto, p->min_rto_ms);
		assert_int_equal(m.kcp_client.dead_link, p->dead_link);
		assert_int_equal(m.kcp_client.dup_thin, p->dup_thin);
		assert_int_equal(m.kcp_client.snd_wnd, p->snd_wnd);
		assert_int_equal(m.kcp_server.snd_wnd, p->rcv_wnd);
		assert_int_equal(m.kcp_client.mtu, p->mtu - ENVELOPE_OVERHEAD);
		assert_int_equal(m.mux.window, p->stream_window);
		assert_int_equal(m.mux.budget, p->session_window);
		assert_int_equal(m.mux.max_streams, p->max_streams);
		transport_mux(p, 7, &m.mux);
		assert_int_equal(m.mux.max_streams, 7);
	}
	assert_int_equal(transport_profile_id("lossy"), 2);
	assert_int_equal(transport_profile_id("no-such"), 0);
	assert_int_equal(transport_profile_id(NULL), 0);
}

/* Regression: lossy's nodelay 2 (gentle RTO backoff) went out as 1. */
static void nodelay_two_reaches_kcp(void **state)
{
	(void)state;
	struct mapped m;

	map(profile_find("lossy"), &m);
	assert_int_equal(profile_find("lossy")->nodelay, 2);
	assert_int_equal(m.proposal.nodelay, 2);
	assert_int_equal(m.agreed.nodelay, 2);
	assert_int_equal(m.kcp_client.nodelay, 2);
	assert_int_equal(m.kcp_server.nodelay, 2);
}

static void padding_modes(void **state)
{
	struct profile p = *profile_default();
	struct transport_params t;

	(void)state;
	p.pad_bucket = 32;
	transport_proposal(&p, &t);
	assert_int_equal(t.pad_mode, TPARAMS_PAD_BUCKET);
	assert_int_equal(t.pad_max, 32);
	p.pad_bucket = 4; /* below the wire's bucket floor: raised to it */
	transport_proposal(&p, &t);
	assert_true(tparams_valid(&t));
	assert_int_equal(t.pad_max, TPARAMS_BUCKET_MIN);
	p.pad_bucket = 0;
	p.pad_max = 20;
	transport_proposal(&p, &t);
	assert_int_equal(t.pad_mode, TPARAMS_PAD_RANDOM);
	assert_int_equal(t.pad_max, 20);
	p.pad_max = 0;
	p.interval_ms = 1; /* below the wire's minimum: clamped */
	transport_proposal(&p, &t);
	assert_int_equal(t.pad_mode, TPARAMS_PAD_NONE);
	assert_true(tparams_valid(&t));
}

/* Where each key must arrive. */
enum dest {
	TO_WIRE = 1, /* the agreed transport parameters */
	TO_KCP = 2,  /* both ends' KCP configuration */
	TO_MUX = 4,  /* the mux configuration */
};

static const struct {
	const char *key;
	unsigned dest;
} reach[] = {
	{ "mtu", TO_WIRE | TO_KCP },
	{ "pad_bucket", TO_WIRE },
	{ "pad_max", TO_WIRE }, /* while pad_bucket is 0: the wire carries one mode */
	{ "keepalive_ms", TO_WIRE },
	{ "idle_timeout_ms", TO_WIRE },
	{ "nodelay", TO_WIRE | TO_KCP },
	{ "interval_ms", TO_WIRE | TO_KCP },
	{ "resend", TO_WIRE | TO_KCP },
	{ "nc", TO_WIRE | TO_KCP },
	{ "snd_wnd", TO_WIRE | TO_KCP },
	{ "rcv_wnd", TO_WIRE | TO_KCP },
	{ "min_rto_ms", TO_KCP },
	{ "dead_link", TO_KCP },
	{ "stream_window", TO_MUX },
	{ "session_window", TO_MUX },
	{ "max_streams", TO_MUX },
	/* fast_open is read by the client daemon alone (client.c), not by an
	 * engine: tests/integration/fast_fastopen.sh shows what it changes. */
	{ "fast_open", 0 },
	{ "dup_thin", TO_KCP },
	/* dead_path_ms goes from the client daemon into its session's
	 * configuration (docs/PROTOCOL.md (session) L6), not into an engine:
	 * sim test_dead_path and fault_deadpath.sh show what it changes. */
	{ "dead_path_ms", 0 },
	/* fast_open_known, as fast_open: the client daemon's (client.c);
	 * fast_fastopen.sh shows it. */
	{ "fast_open_known", 0 },
};

/* A valid value of f other than p's, or false if none fits. */
static bool other_value(const struct profile *base, const struct profile_field *f,
                        struct profile *out)
{
	uint32_t cur = profile_get(base, f);
	const uint32_t cand[] = { cur + 1, cur - 1, cur * 2, cur / 2, f->min, f->max, 16 };

	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
		*out = *base;
		if (cand[i] == cur || profile_set(out, f, cand[i]) != 0)
			continue;
		if (profile_validate(out, NULL, 0) == 0)
			return true;
	}
	return false;
}

/* Issue: every profile key reaches the engine. Two profiles that differ in
 * one key only must give different settings where that key belongs. */
static void every_key_reaches_its_engine(void **state)
{
	(void)state;
	struct profile base = *profile_default(), v;
	struct mapped a, b;

	assert_int_equal(sizeof reach / sizeof reach[0], PROFILE_F_COUNT);
	base.pad_bucket = 0; /* no padding: either key turns one on */
	base.pad_max = 0;
	map(&base, &a);
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_find(reach[i].key);

		assert_non_null(f);
		assert_ptr_equal(f, profile_field_at(i));
		if (!reach[i].dest)
			continue;
		if (!other_value(&base, f, &v))
			fail_msg("%s: no other valid value", f->key);
		map(&v, &b);
		if ((reach[i].dest & TO_WIRE) && tparams_equal(&a.agreed, &b.agreed))
			fail_msg("%s changes nothing the handshake agrees", f->key);
		if ((reach[i].dest & TO_KCP) && (kcp_same(&a.kcp_client, &b.kcp_client) ||
		                                 kcp_same(&a.kcp_server, &b.kcp_server)))
			fail_msg("%s changes nothing in KCP", f->key);
		if ((reach[i].dest & TO_MUX) && mux_same(&a.mux, &b.mux))
			fail_msg("%s changes nothing in the mux", f->key);
	}
}

/* The server applies its own policy: its KCP settings that are not agreed
 * come from its own profile, whatever the client proposed; what is agreed
 * is the client's proposal clamped into the server's ranges. */
static void server_applies_its_own_policy(void **state)
{
	(void)state;
	/* A server whose own profile does not copy thin flights, facing a client
	 * whose profile does. */
	struct profile own_p = *profile_find("default");
	const struct profile *own = &own_p, *client = profile_find("lossy");
	own_p.dup_thin = false;
	struct transport_params min, max, def, proposal, agreed;
	struct transport_local local;
	struct kcp_config kc;

	assert_true(client->dup_thin && !own->dup_thin);
	assert_int_not_equal(client->min_rto_ms, own->min_rto_ms);
	transport_proposal(client, &proposal);
	transport_ranges(own, 1u << 0, &min, &max, &def); /* accepts `default` only */
	tparams_clamp(&agreed, &proposal, &min, &max, &def);
	assert_int_equal(agreed.nodelay, own->nodelay); /* lossy's 2 clamped to 1 */
	assert_int_equal(agreed.nc, own->nc);
	transport_local_of(own, &local);
	transport_kcp(&kc, &agreed, &local, true);
	assert_false(kc.dup_thin);
	assert_true(kc.bundle); /* K13 is local and always on in the tunnel */
	assert_int_equal(kc.min_rto, own->min_rto_ms);
	assert_int_equal(kc.dead_link, own->dead_link);
	/* Accepting lossy widens the ranges so its proposal stands. */
	transport_ranges(own, all_profiles(), &min, &max, &def);
	tparams_clamp(&agreed, &proposal, &min, &max, &def);
	assert_int_equal(agreed.nodelay, 2);
	assert_int_equal(agreed.nc, 1);
	/* Timing is the client's within the wire's hard range. */
	assert_int_equal(min.keepalive_ms, TPARAMS_KEEPALIVE_MIN_MS);
	assert_int_equal(max.idle_timeout_ms, TPARAMS_IDLE_MAX_MS);
}

/* Zero local policy means the engine's defaults (tests and tools that give
 * none keep the old behaviour). */
static void zero_local_is_engine_default(void **state)
{
	(void)state;
	struct transport_params t;
	struct transport_local zero = { 0 };
	struct kcp_config a, b, d;

	tparams_default(&t);
	transport_kcp(&a, &t, &zero, false);
	transport_kcp(&b, &t, NULL, false);
	kcp_config_default(&d);
	assert_true(kcp_same(&a, &b));
	assert_int_equal(a.min_rto, 0);
	assert_int_equal(a.dead_link, d.dead_link);
	assert_false(a.dup_thin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_builtin_maps_to_valid_settings),
		cmocka_unit_test(nodelay_two_reaches_kcp),
		cmocka_unit_test(padding_modes),
		cmocka_unit_test(every_key_reaches_its_engine),
		cmocka_unit_test(server_applies_its_own_policy),
		cmocka_unit_test(zero_local_is_engine_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
