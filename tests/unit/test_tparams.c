/* test_tparams.c - transport parameters: encoding, strict decoding, clamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/tparams.c"
#include "core/transport.h"

static void round_trip_and_layout(void **state)
{
	(void)state;
	struct transport_params p, q;
	uint8_t b[64];
	static const uint8_t want[TPARAMS_WIRE_LEN] = {
		0x01, 0x46, 0x05, 0x01, 0x40, 0x00, 0x14, 0x00, 0x01, 0x02, 0x01, 0x00, 0x02, 0x00,
		0x02, 0x10, 0x27, 0x00, 0x00, 0xc0, 0xd4, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};

	/* Fixed values (the defaults may change; the layout may not). */
	p = (struct transport_params){ .mtu = 1350,
		                       .pad_mode = TPARAMS_PAD_RANDOM,
		                       .pad_max = 64,
		                       .interval = 20,
		                       .nodelay = 1,
		                       .resend = 2,
		                       .nc = 1,
		                       .snd_wnd = 512,
		                       .rcv_wnd = 512,
		                       .keepalive_ms = 10000,
		                       .idle_timeout_ms = 120000 };
	assert_true(tparams_valid(&p));
	assert_int_equal(tparams_encode(&p, b, sizeof b), TPARAMS_WIRE_LEN);
	assert_memory_equal(b, want, TPARAMS_WIRE_LEN);
	assert_int_equal(tparams_decode(&q, b, TPARAMS_WIRE_LEN), TPARAMS_WIRE_LEN);
	assert_true(tparams_equal(&p, &q));
	q.profile++;
	assert_false(tparams_equal(&p, &q));
	assert_int_equal(tparams_encode(&p, b, TPARAMS_WIRE_LEN - 1), KS_ERR_FULL);
}

static void decode_is_strict(void **state)
{
	(void)state;
	struct transport_params p, q;
	uint8_t b[TPARAMS_WIRE_LEN], c[TPARAMS_WIRE_LEN];

	tparams_default(&p);
	assert_int_equal(tparams_encode(&p, b, sizeof b), TPARAMS_WIRE_LEN);
	for (size_t l = 0; l < TPARAMS_WIRE_LEN; l++)
		assert_int_equal(tparams_decode(&q, b, l), KS_ERR_PROTO);
	memcpy(c, b, sizeof b);
	c[0] = 2;
	assert_int_equal(tparams_decode(&q, c, sizeof c), KS_ERR_UNSUPPORTED);
	memcpy(c, b, sizeof b);
	c[TPARAMS_WIRE_LEN - 1] = 1; /* reserved */
	assert_int_equal(tparams_decode(&q, c, sizeof c), KS_ERR_PROTO);
	memcpy(c, b, sizeof b);
	c[1] = 0x10, c[2] = 0; /* mtu 16 */
	assert_int_equal(tparams_decode(&q, c, sizeof c), KS_ERR_PROTO);
	memcpy(c, b, sizeof b);
	c[3] = TPARAMS_PAD_MODES;
	assert_int_equal(tparams_decode(&q, c, sizeof c), KS_ERR_PROTO);
	memcpy(c, b, sizeof b);
	c[8] = TPARAMS_NODELAY_MAX + 1; /* nodelay */
	assert_int_equal(tparams_decode(&q, c, sizeof c), KS_ERR_PROTO);
	c[8] = TPARAMS_NODELAY_MAX; /* KCP's nodelay 2 is carried (profile lossy) */
	assert_int_equal(tparams_decode(&q, c, sizeof c), TPARAMS_WIRE_LEN);
	assert_int_equal(q.nodelay, TPARAMS_NODELAY_MAX);
	p.pad_mode = TPARAMS_PAD_BUCKET;
	p.pad_max = 8;
	assert_false(tparams_valid(&p));
	assert_int_equal(tparams_encode(&p, b, sizeof b), KS_ERR_INVAL);
}

static void clamp_follows_the_rule(void **state)
{
	(void)state;
	struct transport_params def, min, max, pr, out;

	tparams_default(&def);
	def.pad_mode = TPARAMS_PAD_RANDOM, def.pad_max = 64; /* inside min..max below */
	min = max = def;
	min.mtu = 1000, max.mtu = 1400;
	min.nodelay = 0, max.nodelay = 0;
	min.pad_mode = TPARAMS_PAD_RANDOM, max.pad_mode = TPARAMS_PAD_RANDOM;
	min.pad_max = 16, max.pad_max = 128;
	min.snd_wnd = 64, max.snd_wnd = 256;
	pr = def;
	pr.mtu = 1500;
	pr.nodelay = 1;
	pr.pad_mode = TPARAMS_PAD_NONE;
	pr.snd_wnd = 16;
	pr.profile = 3;
	tparams_clamp(&out, &pr, &min, &max, &def);
	assert_int_equal(out.mtu, 1400);
	assert_int_equal(out.nodelay, 0);
	assert_int_equal(out.pad_mode, def.pad_mode);
	assert_int_equal(out.pad_max, def.pad_max);
	assert_int_equal(out.snd_wnd, 64);
	assert_int_equal(out.profile, 3);
	assert_true(tparams_valid(&out));
	pr.pad_mode = TPARAMS_PAD_RANDOM;
	pr.pad_max = 1000;
	tparams_clamp(&out, &pr, &min, &max, &def);
	assert_int_equal(out.pad_mode, TPARAMS_PAD_RANDOM);
	assert_int_equal(out.pad_max, 128);
	pr.pad_mode = TPARAMS_PAD_BUCKET;
	tparams_clamp(&out, &pr, &min, &max, &def);
	assert_int_equal(out.pad_mode, def.pad_mode);
}

/* One default set: the defaults are the proposal of profile `default`. */
static void default_is_the_default_profile(void **state)
{
	(void)state;
	struct transport_params d, p;

	tparams_default(&d);
	transport_proposal(profile_default(), &p);
	assert_true(tparams_valid(&d));
	assert_true(tparams_equal(&d, &p));
	assert_int_equal(d.mtu, profile_default()->mtu);
	assert_int_equal(d.keepalive_ms, profile_default()->keepalive_ms);
	assert_int_equal(d.snd_wnd, profile_default()->snd_wnd);
	assert_int_equal(d.profile, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_and_layout),
		cmocka_unit_test(decode_is_strict),
		cmocka_unit_test(clamp_follows_the_rule),
		cmocka_unit_test(default_is_the_default_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
