/* tparams.c - encode, decode, validate and clamp transport parameters. */
#include "core/tparams.h"

#include "base/minmax.h"
#include "base/rd.h"
#include "base/wr.h"

static bool in(uint32_t v, uint32_t lo, uint32_t hi) { return v >= lo && v <= hi; }

bool tparams_valid(const struct transport_params *p)
{
	return in(p->mtu, TPARAMS_MTU_MIN, TPARAMS_MTU_MAX) && p->pad_mode < TPARAMS_PAD_MODES &&
	       p->pad_max <= TPARAMS_PAD_MAX &&
	       (p->pad_mode != TPARAMS_PAD_BUCKET || p->pad_max >= TPARAMS_BUCKET_MIN) &&
	       in(p->interval, TPARAMS_INTERVAL_MIN, TPARAMS_INTERVAL_MAX) &&
	       p->nodelay <= TPARAMS_NODELAY_MAX && p->nc <= 1 &&
	       in(p->snd_wnd, TPARAMS_WND_MIN, TPARAMS_WND_MAX) &&
	       in(p->rcv_wnd, TPARAMS_WND_MIN, TPARAMS_WND_MAX) &&
	       in(p->keepalive_ms, TPARAMS_KEEPALIVE_MIN_MS, TPARAMS_KEEPALIVE_MAX_MS) &&
	       in(p->idle_timeout_ms, TPARAMS_IDLE_MIN_MS, TPARAMS_IDLE_MAX_MS);
}

ssize_t tparams_encode(const struct transport_params *p, uint8_t *out, size_t cap)
{
	struct wr w = wr_init(out, cap);

	if (!tparams_valid(p))
		return KS_ERR_INVAL;
	if (cap < TPARAMS_WIRE_LEN)
		return KS_ERR_FULL;
	/* Room was checked once above; every write below fits. */
	wr_u8(&w, TPARAMS_VERSION);
	wr_u16le(&w, p->mtu);
	wr_u8(&w, p->pad_mode);
	wr_u16le(&w, p->pad_max);
	wr_u16le(&w, p->interval);
	wr_u8(&w, p->nodelay);
	wr_u8(&w, p->resend);
	wr_u8(&w, p->nc);
	wr_u16le(&w, p->snd_wnd);
	wr_u16le(&w, p->rcv_wnd);
	wr_u32le(&w, p->keepalive_ms);
	wr_u32le(&w, p->idle_timeout_ms);
	wr_u8(&w, p->profile);
	wr_u32le(&w, 0); /* reserved, must be zero */
	return (ssize_t)wr_len(&w);
}

ssize_t tparams_decode(struct transport_params *p, const uint8_t *in_, size_t len)
{
	struct rd r = rd_init(in_, len);
	struct transport_params t = { 0 };
	uint8_t ver = 0;
	uint32_t res = 0;

	if (len < TPARAMS_WIRE_LEN)
		return KS_ERR_PROTO;
	rd_u8(&r, &ver);
	if (ver != TPARAMS_VERSION)
		return KS_ERR_UNSUPPORTED;
	rd_u16le(&r, &t.mtu);
	rd_u8(&r, &t.pad_mode);
	rd_u16le(&r, &t.pad_max);
	rd_u16le(&r, &t.interval);
	rd_u8(&r, &t.nodelay);
	rd_u8(&r, &t.resend);
	rd_u8(&r, &t.nc);
	rd_u16le(&r, &t.snd_wnd);
	rd_u16le(&r, &t.rcv_wnd);
	rd_u32le(&r, &t.keepalive_ms);
	rd_u32le(&r, &t.idle_timeout_ms);
	rd_u8(&r, &t.profile);
	rd_u32le(&r, &res);
	if (res || !tparams_valid(&t))
		return KS_ERR_PROTO;
	*p = t;
	return TPARAMS_WIRE_LEN;
}

void tparams_clamp(struct transport_params *out, const struct transport_params *pr,
                   const struct transport_params *min, const struct transport_params *max,
                   const struct transport_params *def)
{
	struct transport_params t;

	t.mtu = (uint16_t)clamp_u32(pr->mtu, min->mtu, max->mtu);
	if (pr->pad_mode > max->pad_mode ||
	    (pr->pad_mode == TPARAMS_PAD_NONE && min->pad_mode != TPARAMS_PAD_NONE)) {
		t.pad_mode = def->pad_mode;
		t.pad_max = def->pad_max;
	} else {
		t.pad_mode = pr->pad_mode;
		t.pad_max = (uint16_t)clamp_u32(pr->pad_max, min->pad_max, max->pad_max);
	}
	if (t.pad_mode == TPARAMS_PAD_BUCKET && t.pad_max < TPARAMS_BUCKET_MIN)
		t.pad_max = TPARAMS_BUCKET_MIN;
	t.interval = (uint16_t)clamp_u32(pr->interval, min->interval, max->interval);
	t.nodelay = (uint8_t)clamp_u32(pr->nodelay, min->nodelay, max->nodelay);
	t.resend = (uint8_t)clamp_u32(pr->resend, min->resend, max->resend);
	t.nc = (uint8_t)clamp_u32(pr->nc, min->nc, max->nc);
	t.snd_wnd = (uint16_t)clamp_u32(pr->snd_wnd, min->snd_wnd, max->snd_wnd);
	t.rcv_wnd = (uint16_t)clamp_u32(pr->rcv_wnd, min->rcv_wnd, max->rcv_wnd);
	t.keepalive_ms = clamp_u32(pr->keepalive_ms, min->keepalive_ms, max->keepalive_ms);
	t.idle_timeout_ms =
	        clamp_u32(pr->idle_timeout_ms, min->idle_timeout_ms, max->idle_timeout_ms);
	t.profile = pr->profile;
	t.wire = 0;
	t.features = 0;
	*out = t;
}

bool tparams_equal(const struct transport_params *a, const struct transport_params *b)
{
	return a->mtu == b->mtu && a->pad_mode == b->pad_mode && a->pad_max == b->pad_max &&
	       a->interval == b->interval && a->nodelay == b->nodelay && a->resend == b->resend &&
	       a->nc == b->nc && a->snd_wnd == b->snd_wnd && a->rcv_wnd == b->rcv_wnd &&
	       a->keepalive_ms == b->keepalive_ms && a->idle_timeout_ms == b->idle_timeout_ms &&
	       a->profile == b->profile;
}

bool tparams_aes_gcm(uint32_t features)
{
	const uint32_t both = TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_REKEY;

	return (features & both) == both;
}

const char *tparams_cipher_name(uint32_t features)
{
	return tparams_aes_gcm(features) ? "aes-256-gcm" : "chacha20-poly1305";
}
