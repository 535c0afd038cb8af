/* test_profile.c - the built-in profiles and the field table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/kcp.h"
#include "core/profile.h"
#include "core/tparams.h"
#include "core/transport.h"

static void every_builtin_validates(void **state)
{
	(void)state;
	char err[128];

	assert_true(profile_count() >= 5);
	for (size_t i = 0; i < profile_count(); i++) {
		const struct profile *p = profile_at(i);
		err[0] = '\0';
		assert_int_equal(profile_validate(p, err, sizeof err), 0);
		assert_string_equal(err, "");
		assert_non_null(p->summary);
		assert_true(strlen(p->name) <= PROFILE_NAME_MAX);
		assert_ptr_equal(profile_find(p->name), p);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(profile_at(j)->name, p->name);
	}
	assert_null(profile_at(profile_count()));
}

static void lookup_by_name(void **state)
{
	(void)state;
	static const char *const names[] = { "default", "fast", "lossy", "mobile", "low-memory" };

	for (size_t i = 0; i < 5; i++) {
		assert_non_null(profile_find(names[i]));
		assert_string_equal(profile_find(names[i])->name, names[i]);
	}
	assert_string_equal(profile_default()->name, "default");
	assert_ptr_equal(profile_at(0), profile_default());
	assert_null(profile_find("Default"));
	assert_null(profile_find(""));
	assert_null(profile_find("lossy "));
}

/* The properties the task and docs/CONFIG.md promise for each profile. */
static void profiles_keep_their_promises(void **state)
{
	(void)state;
	const struct profile *d = profile_find("default"), *f = profile_find("fast"),
	                     *l = profile_find("lossy"), *m = profile_find("mobile"),
	                     *s = profile_find("low-memory");

	for (size_t i = 0; i < profile_count(); i++)
		assert_int_equal(profile_at(i)->idle_timeout_ms, 120000);
	assert_false(d->fast_open);
	assert_true(f->fast_open);
	assert_true(m->fast_open);
	assert_false(l->fast_open);
	assert_false(s->fast_open);
	assert_true(l->nc);
	assert_true(l->resend <= d->resend && l->resend > 0);
	/* default's windows are the largest: its congestion window sizes the
	 * flight from the path (K7) and the windows are only its ceiling, at
	 * twice the bandwidth-delay product a hole needs (docs/CONFIG.md).
	 * lossy's are not larger: with nc nothing backs off, and more in
	 * flight would only overflow a loopback receiver's socket buffer. */
	assert_true(l->snd_wnd <= d->snd_wnd && l->rcv_wnd <= d->rcv_wnd);
	assert_true(f->snd_wnd <= d->snd_wnd && f->rcv_wnd <= d->rcv_wnd);
	assert_true(d->stream_window >= l->stream_window);
	assert_true((uint64_t)d->snd_wnd * (d->mtu - ENVELOPE_OVERHEAD - KCP_HEADER_LEN) <=
	            d->stream_window);
	assert_int_equal(m->mtu, 1200);
	/* mobile's memory ceiling stays below default's, but its stream
	 * credit holds a whole send window: with less, the credit and not the
	 * path is the flight (issue 20: 256 KiB per RTT). */
	assert_true(m->snd_wnd < d->snd_wnd && m->stream_window < d->stream_window);
	assert_true(m->snd_wnd > s->snd_wnd && m->stream_window > s->stream_window);
	assert_true((uint64_t)m->snd_wnd * (m->mtu - ENVELOPE_OVERHEAD - KCP_HEADER_LEN) <=
	            m->stream_window);
	assert_true(m->keepalive_ms <= 15000);
	assert_true(s->snd_wnd < d->snd_wnd && s->max_streams < d->max_streams);
	assert_true(s->stream_window < d->stream_window);
	/* low-memory saves memory and wakeups, not repairs: a doubling RTO
	 * (nodelay 0) from a 100 ms floor and a credit update sent once let a
	 * burst of loss stall it for seconds (tests/sim/sim_session.c
	 * test_bulk_low_memory_burst). */
	assert_true(s->nodelay != 0 && s->min_rto_ms <= d->min_rto_ms && s->dup_thin);
	assert_true(f->interval_ms < d->interval_ms);
	assert_true(s->session_window < m->session_window && m->session_window < d->session_window);
	/* The first stream of a session gets the whole stream_window (mux
	 * 4.5.1), and no peer makes a session hold more than 64 MiB unread.
	 * That credit holds a whole send window in every profile: with less,
	 * the credit and not the window or the path is the flight (issue 20:
	 * low-memory's 64 KiB held 50 of its 64 segments, and a hole stopped
	 * the stream sooner than it stopped kcptun with the same windows). */
	for (size_t i = 0; i < profile_count(); i++) {
		const struct profile *p = profile_at(i);
		assert_true((uint64_t)p->snd_wnd * (p->mtu - ENVELOPE_OVERHEAD - KCP_HEADER_LEN) <=
		            p->stream_window);
		assert_true(p->session_window / MUX_BUDGET_SHARE >= p->stream_window);
		assert_true((uint64_t)p->session_window +
		                    (uint64_t)p->max_streams * MUX_WINDOW_FLOOR <=
		            64u << 20);
	}
}

static void field_table_is_consistent(void **state)
{
	(void)state;

	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		assert_non_null(f);
		assert_true(f->min <= f->max);
		assert_ptr_equal(profile_field_find(f->key), f);
		if (f->is_bool)
			assert_true(f->min == 0 && f->max == 1);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(profile_field_at(j)->key, f->key);
	}
	assert_null(profile_field_at(PROFILE_F_COUNT));
	assert_null(profile_field_find("mtuu"));
	assert_int_equal(profile_field_find("mtu")->min, TPARAMS_MTU_MIN);
	assert_int_equal(profile_field_find("mtu")->max, TPARAMS_MTU_MAX);
	assert_int_equal(profile_field_find("snd_wnd")->min, TPARAMS_WND_MIN);
	assert_int_equal(profile_field_find("snd_wnd")->max, TPARAMS_WND_MAX);
	assert_int_equal(profile_field_find("interval_ms")->min, TPARAMS_INTERVAL_MIN);
	assert_int_equal(profile_field_find("interval_ms")->max, 1000);
}

static void set_checks_bounds_and_leaves_profile_unchanged(void **state)
{
	(void)state;
	struct profile p = *profile_default();

	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		uint32_t before = profile_get(&p, f);

		assert_int_equal(profile_set(&p, f, f->min), 0);
		assert_int_equal(profile_get(&p, f), f->min);
		assert_int_equal(profile_set(&p, f, f->max), 0);
		assert_int_equal(profile_get(&p, f), f->max);
		if (f->min > 0) {
			assert_int_equal(profile_set(&p, f, f->min - 1), KS_ERR_INVAL);
			assert_int_equal(profile_get(&p, f), f->max);
		}
		assert_int_equal(profile_set(&p, f, f->max + 1), KS_ERR_INVAL);
		assert_int_equal(profile_get(&p, f), f->max);
		assert_int_equal(profile_set(&p, f, before), 0);
	}
	for (size_t i = 0; i < PROFILE_F_COUNT; i++)
		assert_int_equal(profile_get(&p, profile_field_at(i)),
		                 profile_get(profile_default(), profile_field_at(i)));
}

static void set_reaches_the_named_member(void **state)
{
	(void)state;
	struct profile p = *profile_default();

	assert_int_equal(profile_set(&p, profile_field_find("mtu"), 1300), 0);
	assert_int_equal(p.mtu, 1300);
	assert_int_equal(profile_set(&p, profile_field_find("nc"), 1), 0);
	assert_true(p.nc);
	assert_int_equal(profile_set(&p, profile_field_find("rcv_wnd"), 999), 0);
	assert_int_equal(p.rcv_wnd, 999);
	assert_int_equal(p.snd_wnd, profile_default()->snd_wnd);
	assert_int_equal(profile_set(&p, profile_field_find("fast_open"), 1), 0);
	assert_true(p.fast_open);
	assert_int_equal(profile_get(&p, profile_field_find("fast_open")), 1);
}

static void validate_names_the_field(void **state)
{
	(void)state;
	struct profile p = *profile_default();
	char err[128];

	p.mtu = 70000;
	assert_int_equal(profile_validate(&p, err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err, "mtu: 70000 is out of range 576..1500");
	p = *profile_default();
	p.snd_wnd = 15;
	assert_int_equal(profile_validate(&p, err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err, "snd_wnd: 15 is out of range 16..8192");
	p = *profile_default();
	p.nodelay = 3;
	assert_int_equal(profile_validate(&p, NULL, 0), KS_ERR_INVAL);
	p = *profile_default();
	p.interval_ms = 0;
	assert_int_equal(profile_validate(&p, err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err, "interval_ms: 0 is out of range 5..1000");
	/* The handshake carries one padding mode: a key that could not reach
	 * the envelope is refused, not ignored. */
	p = *profile_default();
	p.pad_max = 64;
	assert_int_equal(profile_validate(&p, err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err, "pad_max: 64 needs pad_bucket = 0 (one padding mode: 32 is set)");
	p.pad_bucket = 0;
	assert_int_equal(profile_validate(&p, err, sizeof err), 0);
}

static void validate_ties_idle_to_keepalive(void **state)
{
	(void)state;
	struct profile p = *profile_default();
	char err[128];

	p.keepalive_ms = 15000;
	p.idle_timeout_ms = 30000;
	assert_int_equal(profile_validate(&p, err, sizeof err), 0);
	p.idle_timeout_ms = 29999;
	assert_int_equal(profile_validate(&p, err, sizeof err), KS_ERR_INVAL);
	assert_string_equal(err,
	                    "idle_timeout_ms: 29999 must be at least twice keepalive_ms (15000)");
	/* A tiny buffer truncates, never overflows. */
	char small[8];
	assert_int_equal(profile_validate(&p, small, sizeof small), KS_ERR_INVAL);
	assert_string_equal(small, "idle_ti");
}

/* Every carried field of p arrives in t as configured (nothing clamped). */
static bool carried_as_is(const struct profile *p, const struct transport_params *t)
{
	uint32_t pad = p->pad_bucket ? p->pad_bucket : p->pad_max;

	return tparams_valid(t) && t->mtu == p->mtu && t->pad_max == pad &&
	       t->interval == p->interval_ms && t->nodelay == p->nodelay &&
	       t->resend == p->resend && t->nc == p->nc && t->snd_wnd == p->snd_wnd &&
	       t->rcv_wnd == p->rcv_wnd && t->keepalive_ms == p->keepalive_ms &&
	       t->idle_timeout_ms == p->idle_timeout_ms;
}

/* Regression: every profile that validates must be one the handshake can
 * carry. The built-in `lossy` (nodelay 2) and overrides such as
 * interval_ms = 1, idle_timeout_ms above an hour or pad_bucket = 8 passed
 * profile_validate but were refused by tparams_valid, so the client could
 * not even start a handshake with them. This calls the production mapping
 * (transport_proposal), which clamps nothing a valid profile holds: every
 * carried field arrives as configured. */
static void profiles_fit_the_transport_parameters(void **state)
{
	(void)state;
	struct transport_params t;

	for (size_t i = 0; i < profile_count(); i++) {
		transport_proposal(profile_at(i), &t);
		if (!carried_as_is(profile_at(i), &t))
			fail_msg("built-in profile '%s' cannot be carried", profile_at(i)->name);
	}
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = profile_field_at(i);
		const uint32_t probe[] = { f->min, f->min + 1, 8, 15, 16, f->max };

		for (size_t j = 0; j < sizeof probe / sizeof probe[0]; j++) {
			struct profile p = *profile_default();

			if (profile_set(&p, f, probe[j]) != 0)
				continue;
			if (f == profile_field_find("keepalive_ms") &&
			    p.idle_timeout_ms / 2 < probe[j])
				p.idle_timeout_ms = 2 * probe[j];
			if (profile_validate(&p, NULL, 0) != 0)
				continue;
			transport_proposal(&p, &t);
			if (!carried_as_is(&p, &t))
				fail_msg("%s = %u validates but cannot be carried", f->key,
				         probe[j]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_builtin_validates),
		cmocka_unit_test(lookup_by_name),
		cmocka_unit_test(profiles_keep_their_promises),
		cmocka_unit_test(field_table_is_consistent),
		cmocka_unit_test(set_checks_bounds_and_leaves_profile_unchanged),
		cmocka_unit_test(set_reaches_the_named_member),
		cmocka_unit_test(validate_names_the_field),
		cmocka_unit_test(validate_ties_idle_to_keepalive),
		cmocka_unit_test(profiles_fit_the_transport_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
