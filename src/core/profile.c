/* profile.c - the built-in transport profiles and the table of their fields.
 * Why each value is what it is: docs/CONFIG.md, "Profiles". */
#include "core/profile.h"

#include <stdio.h>
#include <string.h>

#include "base/errbuf.h"
#include "base/limits.h"

#define KB 1024u

static const struct profile profiles[] = {
	{
	        .name = "default",
	        .summary = "balanced: ordinary broadband and Wi-Fi, some loss, shared links",
	        .mtu = 1350,
	        .pad_bucket = 32,
	        .pad_max = 0, /* the bucket is the padding (one mode) */
	        .keepalive_ms = 25000,
	        .idle_timeout_ms = 120000,
	        .dead_path_ms = 10000,
	        .nodelay = 1,
	        .interval_ms = 20,
	        .resend = 2,
	        .nc = false,
	        .snd_wnd = 4096,
	        .rcv_wnd = 4096,
	        .min_rto_ms = 50,
	        .dead_link = 20,
	        .stream_window = 2 * MUX_WINDOW_DEFAULT, /* the one default set: mux.h */
	        .session_window = MUX_BUDGET_DEFAULT,
	        .max_streams = MUX_STREAMS_DEFAULT,
	        .fast_open = false,
	        .fast_open_known = true, /* issue 20: one round trip to known destinations */
	        .dup_thin = true,
	},
	{
	        .name = "fast",
	        .summary = "low latency on good links (wired, low loss, short RTT)",
	        .mtu = 1350,
	        .pad_bucket = 16,
	        .pad_max = 0, /* the bucket is the padding (one mode) */
	        .keepalive_ms = 25000,
	        .idle_timeout_ms = 120000,
	        .dead_path_ms = 10000,
	        .nodelay = 1,
	        .interval_ms = 10,
	        .resend = 2,
	        .nc = false,
	        .snd_wnd = 2048,
	        .rcv_wnd = 2048,
	        .min_rto_ms = 30,
	        .dead_link = 20,
	        .stream_window = 4096 * KB,
	        .session_window = 32768 * KB,
	        .max_streams = 256,
	        .fast_open = true,
	        .dup_thin = true,
	},
	{
	        .name = "lossy",
	        .summary = "links losing 5-20% of datagrams to noise, not to congestion",
	        .mtu = 1350,
	        .pad_bucket = 32,
	        .pad_max = 0, /* the bucket is the padding (one mode) */
	        .keepalive_ms = 20000,
	        .idle_timeout_ms = 120000,
	        .dead_path_ms = 10000,
	        .nodelay = 2,
	        .interval_ms = 10,
	        .resend = 1,
	        .nc = true,
	        .snd_wnd = 2048,
	        .rcv_wnd = 2048,
	        .min_rto_ms = 30,
	        .dead_link = 40,
	        .stream_window = 4096 * KB,
	        .session_window = 32768 * KB,
	        .max_streams = 256,
	        .fast_open = false,
	        .dup_thin = true,
	},
	{
	        .name = "mobile",
	        .summary = "cellular: small MTU, frequent keepalive for carrier NAT, radio loss",
	        .mtu = 1200,
	        .pad_bucket = 32,
	        .pad_max = 0, /* the bucket is the padding (one mode) */
	        .keepalive_ms = 15000,
	        .idle_timeout_ms = 120000,
	        .dead_path_ms = 20000,
	        .nodelay = 1,
	        .interval_ms = 20,
	        .resend = 2,
	        .nc = true,
	        .snd_wnd = 1024,
	        .rcv_wnd = 1024,
	        .min_rto_ms = 50,
	        .dead_link = 30,
	        .stream_window = 2048 * KB,
	        .session_window = 8192 * KB,
	        .max_streams = 128,
	        .fast_open = true,
	        .dup_thin = true,
	},
	{
	        .name = "low-memory",
	        .summary = "routers and small boxes: small windows, few streams, fewer wakeups",
	        .mtu = 1350,
	        .pad_bucket = 16,
	        .pad_max = 0, /* the bucket is the padding (one mode) */
	        .keepalive_ms = 25000,
	        .idle_timeout_ms = 120000,
	        .dead_path_ms = 10000,
	        .nodelay = 2,
	        .interval_ms = 40,
	        .resend = 2,
	        .nc = false,
	        .snd_wnd = 64,
	        .rcv_wnd = 64,
	        .min_rto_ms = 50,
	        .dead_link = 20,
	        .stream_window = 128 * KB,
	        .session_window = 1024 * KB,
	        .max_streams = 32,
	        .fast_open = false,
	        .dup_thin = true,
	},
};

#define FIELD(id, k, u, member, b, lo, hi, h)                                                      \
	[id] = { .key = k,                                                                         \
		 .unit = u,                                                                        \
		 .help = h,                                                                        \
		 .offset = offsetof(struct profile, member),                                       \
		 .is_bool = b,                                                                     \
		 .min = lo,                                                                        \
		 .max = hi }

static const struct profile_field fields[PROFILE_F_COUNT] = {
	FIELD(PROFILE_F_MTU, "mtu", "bytes", mtu, false, TPARAMS_MTU_MIN, TPARAMS_MTU_MAX,
	      "UDP payload per datagram, envelope and padding included"),
	FIELD(PROFILE_F_PAD_BUCKET, "pad_bucket", "bytes", pad_bucket, false, 0, TPARAMS_PAD_MAX,
	      "pad each datagram to a multiple of this (0: off, else >= 16; then pad_max is "
	      "unused)"),
	FIELD(PROFILE_F_PAD_MAX, "pad_max", "bytes", pad_max, false, 0, TPARAMS_PAD_MAX,
	      "with pad_bucket 0: add 0..pad_max random bytes, never past mtu"),
	FIELD(PROFILE_F_KEEPALIVE, "keepalive_ms", "ms", keepalive_ms, false,
	      TPARAMS_KEEPALIVE_MIN_MS, TPARAMS_KEEPALIVE_MAX_MS,
	      "send a probe after this long without traffic"),
	FIELD(PROFILE_F_IDLE_TIMEOUT, "idle_timeout_ms", "ms", idle_timeout_ms, false,
	      TPARAMS_IDLE_MIN_MS, TPARAMS_IDLE_MAX_MS,
	      "drop the session after this long without a datagram (>= 2 x keepalive_ms)"),
	FIELD(PROFILE_F_NODELAY, "nodelay", "", nodelay, false, 0, TPARAMS_NODELAY_MAX,
	      "KCP nodelay: 0 off, 1 on, 2 on with a slower RTO backoff"),
	FIELD(PROFILE_F_INTERVAL, "interval_ms", "ms", interval_ms, false, TPARAMS_INTERVAL_MIN,
	      TPARAMS_INTERVAL_MAX, "KCP flush interval"),
	FIELD(PROFILE_F_RESEND, "resend", "", resend, false, 0, TPARAMS_RESEND_MAX,
	      "KCP fast resend after this many later ACKs (0: off)"),
	FIELD(PROFILE_F_NC, "nc", "bool", nc, true, 0, 1,
	      "KCP without congestion window: loss does not shrink the send rate"),
	FIELD(PROFILE_F_SND_WND, "snd_wnd", "segments", snd_wnd, false, TPARAMS_WND_MIN,
	      TPARAMS_WND_MAX, "KCP send window"),
	FIELD(PROFILE_F_RCV_WND, "rcv_wnd", "segments", rcv_wnd, false, TPARAMS_WND_MIN,
	      TPARAMS_WND_MAX, "KCP receive window"),
	FIELD(PROFILE_F_MIN_RTO, "min_rto_ms", "ms", min_rto_ms, false, PROFILE_MIN_RTO_MIN,
	      PROFILE_MIN_RTO_MAX, "KCP lower bound on the retransmission timeout"),
	FIELD(PROFILE_F_DEAD_LINK, "dead_link", "", dead_link, false, PROFILE_DEAD_LINK_MIN,
	      PROFILE_DEAD_LINK_MAX, "KCP: retransmissions of one segment before the link is dead"),
	FIELD(PROFILE_F_STREAM_WINDOW, "stream_window", "bytes", stream_window, false,
	      MUX_WINDOW_MIN, MUX_WINDOW_MAX, "mux credit per stream"),
	FIELD(PROFILE_F_SESSION_WINDOW, "session_window", "bytes", session_window, false,
	      MUX_BUDGET_MIN, MUX_BUDGET_MAX,
	      "mux credit all streams of a session share; later streams get less (local)"),
	FIELD(PROFILE_F_MAX_STREAMS, "max_streams", "", max_streams, false, 1, MUX_STREAMS_MAX,
	      "mux streams open at once per session"),
	FIELD(PROFILE_F_FAST_OPEN, "fast_open", "bool", fast_open, true, 0, 1,
	      "client: answer CONNECT at once, send first bytes with the open (failure: reset)"),
	FIELD(PROFILE_F_DUP_THIN, "dup_thin", "bool", dup_thin, true, 0, 1,
	      "KCP: send small flights twice, a lost request or reply costs no timeout"),
	FIELD(PROFILE_F_DEAD_PATH, "dead_path_ms", "ms", dead_path_ms, false,
	      SESSION_DEAD_PATH_MS_MIN, SESSION_DEAD_PATH_MS_MAX,
	      "client: session down after this long unanswered; streams reset (local)"),
	FIELD(PROFILE_F_FAST_OPEN_KNOWN, "fast_open_known", "bool", fast_open_known, true, 0, 1,
	      "client: fast open to destinations reached in the last 10 min only, others wait "
	      "for the real reply"),
};

size_t profile_count(void) { return sizeof profiles / sizeof profiles[0]; }

const struct profile *profile_at(size_t i) { return i < profile_count() ? &profiles[i] : NULL; }

const struct profile *profile_default(void) { return &profiles[0]; }

const struct profile *profile_find(const char *name)
{
	for (size_t i = 0; i < profile_count(); i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

const struct profile_field *profile_field_at(size_t i)
{
	return i < PROFILE_F_COUNT ? &fields[i] : NULL;
}

const struct profile_field *profile_field_find(const char *key)
{
	for (size_t i = 0; i < PROFILE_F_COUNT; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

uint32_t profile_get(const struct profile *p, const struct profile_field *f)
{
	const char *base = (const char *)p + f->offset;
	bool b;
	uint32_t v;

	if (f->is_bool) {
		memcpy(&b, base, sizeof b);
		return b;
	}
	memcpy(&v, base, sizeof v);
	return v;
}

int profile_set(struct profile *p, const struct profile_field *f, uint32_t v)
{
	char *base = (char *)p + f->offset;
	bool b = v != 0;

	if (v < f->min || v > f->max)
		return KS_ERR_INVAL;
	if (f->is_bool)
		memcpy(base, &b, sizeof b);
	else
		memcpy(base, &v, sizeof v);
	return 0;
}

int profile_validate(const struct profile *p, char *err, size_t errlen)
{
	char dummy[1];

	if (!err) {
		err = dummy;
		errlen = sizeof dummy;
	}
	for (size_t i = 0; i < PROFILE_F_COUNT; i++) {
		const struct profile_field *f = &fields[i];
		uint32_t v = profile_get(p, f);

		if (v < f->min || v > f->max) {
			errbuf_set(err, errlen, "%s: %u is out of range %u..%u", f->key, v, f->min,
			           f->max);
			return KS_ERR_INVAL;
		}
	}
	/* The handshake carries a bucket only from TPARAMS_BUCKET_MIN up. */
	if (p->pad_bucket != 0 && p->pad_bucket < TPARAMS_BUCKET_MIN) {
		errbuf_set(err, errlen, "pad_bucket: %u must be 0 or at least %d", p->pad_bucket,
		           TPARAMS_BUCKET_MIN);
		return KS_ERR_INVAL;
	}
	/* The handshake carries one padding mode: a bucket or random bytes. */
	if (p->pad_bucket != 0 && p->pad_max != 0) {
		errbuf_set(err, errlen,
		           "pad_max: %u needs pad_bucket = 0 (one padding mode: %u is set)",
		           p->pad_max, p->pad_bucket);
		return KS_ERR_INVAL;
	}
	/* One probe may be lost; the idle window must hold at least two. */
	if (p->idle_timeout_ms / 2 < p->keepalive_ms) {
		errbuf_set(err, errlen,
		           "idle_timeout_ms: %u must be at least twice keepalive_ms (%u)",
		           p->idle_timeout_ms, p->keepalive_ms);
		return KS_ERR_INVAL;
	}
	return 0;
}
