/* tparams.h - the transport parameters agreed in the handshake.
 *
 * The client proposes a struct transport_params in its init; the server
 * answers with what it accepts: tparams_clamp() moves every numeric field
 * into the server's [min, max] range and replaces a padding mode the server
 * does not allow with its own (PROTOCOL.md (secure layer) 5). Both sides then use the
 * answer. The encoding is versioned (first byte TPARAMS_VERSION), fixed
 * length, little-endian, written with wr.h and read with rd.h.
 */
#ifndef KCPSOCKS_TPARAMS_H
#define KCPSOCKS_TPARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/limits.h"

/* How the envelope pads each datagram (inside the ciphertext). */
enum tparams_pad_mode {
	TPARAMS_PAD_NONE = 0,   /* no padding */
	TPARAMS_PAD_RANDOM = 1, /* uniform random 0..pad_max bytes */
	TPARAMS_PAD_BUCKET = 2, /* round the datagram up to a multiple of pad_max */
	TPARAMS_PAD_MODES = 3,
};

enum {
	TPARAMS_VERSION = 1,
	TPARAMS_WIRE_LEN = 28, /* the encoding of version 1 */
};

struct transport_params {
	uint16_t mtu;             /* largest datagram on the wire, envelope included */
	uint8_t pad_mode;         /* enum tparams_pad_mode */
	uint16_t pad_max;         /* RANDOM: most pad bytes; BUCKET: bucket size */
	uint16_t interval;        /* KCP flush interval, ms */
	uint8_t nodelay;          /* KCP nodelay, 0..TPARAMS_NODELAY_MAX (kcp.h) */
	uint8_t resend;           /* KCP fast resend threshold, 0 = off */
	uint8_t nc;               /* 1 = KCP congestion control off */
	uint16_t snd_wnd;         /* KCP send window, segments */
	uint16_t rcv_wnd;         /* KCP receive window, segments */
	uint32_t keepalive_ms;    /* keepalive interval */
	uint32_t idle_timeout_ms; /* session closes after this long without input */
	uint8_t profile;          /* profile id, opaque here, echoed by the server */
	/* Agreed in the handshake's version extension (handshake.h), not in
	 * this fixed encoding: encode, decode and tparams_equal ignore them,
	 * tparams_clamp and decode set them to 0. */
	uint8_t wire;      /* wire version the session speaks; 1: a legacy peer */
	uint32_t features; /* TPARAMS_FEAT_* both sides support */
};

/* Feature bits of the handshake's version extension (docs/PROTOCOL.md
 * (secure layer) 4.6). A session uses a feature only when it is in the
 * agreed set, the intersection of what both sides advertise. */
enum tparams_feature {
	TPARAMS_FEAT_FAST_OPEN = 1u << 0,       /* OPEN with early data before REPLY (mux 4.4) */
	TPARAMS_FEAT_CLEAN_CLOSE = 1u << 1,     /* reserved: session close frame */
	TPARAMS_FEAT_DATAGRAM = 1u << 2,        /* UDP datagram frames (UDP U1) */
	TPARAMS_FEAT_INSTANCE_ID = 1u << 3,     /* client instance id: replace own session */
	TPARAMS_FEAT_REKEY = 1u << 4,           /* in-band rekeying (secure layer 8.1) */
	TPARAMS_FEAT_STREAM_DELIVERY = 1u << 5, /* per-stream delivery (mux step 10) */
	TPARAMS_FEAT_AES_GCM = 1u << 6,         /* envelope AEAD AES-256-GCM (secure layer 2.7) */
	/* What this build speaks on every machine. */
	TPARAMS_FEATURES = TPARAMS_FEAT_FAST_OPEN | TPARAMS_FEAT_DATAGRAM |
	                   TPARAMS_FEAT_INSTANCE_ID | TPARAMS_FEAT_REKEY,
	/* What this build speaks only where the machine can or the config
	 * asks: advertised when the caller opts in (the I/O layer knows the
	 * CPU and the config: cipher, stream_delivery, on by default in
	 * the config), never by the handshake itself (handshake.h). */
	TPARAMS_FEATURES_OPTIONAL = TPARAMS_FEAT_AES_GCM | TPARAMS_FEAT_STREAM_DELIVERY,
};

/* tparams_aes_gcm says whether a session that agreed features seals its
 * datagrams with AES-256-GCM: TPARAMS_FEAT_AES_GCM and TPARAMS_FEAT_REKEY
 * both agreed (in-band rekeying keeps each key's data far below GCM's
 * limits, secure layer 2.7); otherwise ChaCha20-Poly1305. */
bool tparams_aes_gcm(uint32_t features);

/* tparams_cipher_name names that AEAD: "aes-256-gcm" or
 * "chacha20-poly1305" (log lines, metrics). */
const char *tparams_cipher_name(uint32_t features);

/* tparams_valid says whether every field is inside the hard range of
 * limits.h (TPARAMS_*), nc is 0/1 and pad_mode is known. */
bool tparams_valid(const struct transport_params *p);

/* tparams_encode writes TPARAMS_WIRE_LEN bytes. Returns the byte count, or
 * KS_ERR_FULL if cap is too small, KS_ERR_INVAL if p is not valid. */
KS_MUST_CHECK ssize_t tparams_encode(const struct transport_params *p, uint8_t *out, size_t cap);

/* tparams_decode reads exactly TPARAMS_WIRE_LEN bytes at in. Returns the
 * byte count, KS_ERR_PROTO for a short input or out-of-range field, or
 * KS_ERR_UNSUPPORTED for another version. p is written only on success. */
KS_MUST_CHECK ssize_t tparams_decode(struct transport_params *p, const uint8_t *in, size_t len);

/* tparams_clamp computes the server's answer to a proposal: each numeric
 * field clamped into [min, max], nodelay and nc included (a server with
 * max.nodelay 0 forces 0); a pad_mode that is NONE while min.pad_mode
 * is not, or above max.pad_mode, becomes def's; profile echoed. min, max
 * and def must be valid and min <= def <= max field by field. */
void tparams_clamp(struct transport_params *out, const struct transport_params *proposal,
                   const struct transport_params *min, const struct transport_params *max,
                   const struct transport_params *def);

/* tparams_equal compares field by field (never the struct's padding). */
bool tparams_equal(const struct transport_params *a, const struct transport_params *b);

#endif
