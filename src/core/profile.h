/* profile.h - the built-in transport profiles, from one table.
 *
 * A profile is a named set of transport settings: datagram size, padding,
 * keepalive and idle timing, KCP tuning and mux limits. Users pick one by
 * name in the config file (`profile = lossy`) and may override any field
 * (`[transport] mtu = 1300`). Two tables drive everything users see:
 *
 *   - the profiles (profile_at): `default`, `fast`, `lossy`, `mobile`,
 *     `low-memory`;
 *   - the fields (profile_field_at): key, unit, range and help of each
 *     setting, used by the config parser, profile_validate, --help and
 *     docs/CONFIG.md.
 *
 * The structs are plain data; core/transport.h is the one mapping from a
 * profile onto the handshake, KCP and mux configurations (profile `default`
 * is the one default set). Pure: no allocation, no I/O.
 */
#ifndef KCPSOCKS_PROFILE_H
#define KCPSOCKS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct profile {
	const char *name;         /* static string: the built-in this came from */
	const char *summary;      /* static string: one line for --help and docs */
	uint32_t mtu;             /* bytes of UDP payload per datagram, padding included */
	uint32_t pad_bucket;      /* pad each datagram to a multiple of this; 0 = off */
	uint32_t pad_max;         /* pad_bucket 0: add 0..pad_max random bytes (never past mtu) */
	uint32_t keepalive_ms;    /* probe interval while idle */
	uint32_t idle_timeout_ms; /* session dropped after this long with no datagram */
	uint32_t dead_path_ms;    /* client: down after this long with data unanswered */
	uint32_t nodelay;         /* KCP nodelay: 0 normal, 1 fast RTO, 2 gentle backoff */
	uint32_t interval_ms;     /* KCP flush interval */
	uint32_t resend;          /* KCP fast resend after this many skips; 0 = off */
	bool nc;                  /* KCP: no congestion window (loss does not shrink it) */
	uint32_t snd_wnd;         /* KCP send window, segments */
	uint32_t rcv_wnd;         /* KCP receive window, segments */
	uint32_t min_rto_ms;      /* KCP lower bound on the retransmission timeout (local) */
	uint32_t dead_link;       /* KCP: retransmissions of one segment before dead (local) */
	uint32_t stream_window;   /* mux credit per stream, bytes */
	uint32_t session_window;  /* mux credit all streams share, bytes (local only) */
	uint32_t max_streams;     /* mux concurrent streams per session */
	bool fast_open;           /* client: SUCCEEDED at once, early data (mux 4.4) */
	bool fast_open_known;     /* client: the same, to destinations reached lately */
	bool dup_thin;            /* KCP K11: send thin flights twice (local) */
};

/* The fields, in table order; config.c stores overrides by this index. */
enum profile_field_id {
	PROFILE_F_MTU,
	PROFILE_F_PAD_BUCKET,
	PROFILE_F_PAD_MAX,
	PROFILE_F_KEEPALIVE,
	PROFILE_F_IDLE_TIMEOUT,
	PROFILE_F_NODELAY,
	PROFILE_F_INTERVAL,
	PROFILE_F_RESEND,
	PROFILE_F_NC,
	PROFILE_F_SND_WND,
	PROFILE_F_RCV_WND,
	PROFILE_F_MIN_RTO,
	PROFILE_F_DEAD_LINK,
	PROFILE_F_STREAM_WINDOW,
	PROFILE_F_SESSION_WINDOW,
	PROFILE_F_MAX_STREAMS,
	PROFILE_F_FAST_OPEN,
	PROFILE_F_DUP_THIN,
	PROFILE_F_DEAD_PATH,
	PROFILE_F_FAST_OPEN_KNOWN,
	PROFILE_F_COUNT
};

struct profile_field {
	const char *key;  /* static: the config key under [transport], e.g. "mtu" */
	const char *unit; /* static: "bytes", "ms", "segments", "" or "bool" */
	const char *help; /* static: one line */
	size_t offset;    /* of the field in struct profile */
	bool is_bool;     /* stored as bool; min 0, max 1 */
	uint32_t min, max;
};

/* profile_count is the number of built-in profiles; profile_at(i) returns
 * the i-th (0 is `default`) or NULL past the end. Pointers are to static
 * const data, valid forever. */
size_t profile_count(void);
const struct profile *profile_at(size_t i);

/* profile_find returns the built-in profile with this exact name, or NULL. */
const struct profile *profile_find(const char *name);

/* profile_default returns the `default` profile. Never NULL. */
const struct profile *profile_default(void);

/* profile_field_at returns field i (i < PROFILE_F_COUNT) or NULL;
 * profile_field_find the field with this key, or NULL. Static data. */
const struct profile_field *profile_field_at(size_t i);
const struct profile_field *profile_field_find(const char *key);

/* profile_get reads field f of p as a number (bools read 0 or 1). */
uint32_t profile_get(const struct profile *p, const struct profile_field *f);

/* profile_set stores v into field f of p. Returns 0, or KS_ERR_INVAL if v is
 * outside [f->min, f->max] (p is then unchanged). */
KS_MUST_CHECK int profile_set(struct profile *p, const struct profile_field *f, uint32_t v);

/* profile_validate checks every field against its range and the rules that
 * tie fields together (idle_timeout_ms >= 2 * keepalive_ms, so that one lost
 * probe does not end a session; pad_bucket 0 or >= TPARAMS_BUCKET_MIN, the
 * smallest bucket the handshake carries; pad_max 0 when pad_bucket is set,
 * since the handshake carries one padding mode). Returns 0, or KS_ERR_INVAL with a message in
 * err (NUL-terminated, truncated to errlen) naming the field and the value,
 * e.g. "mtu: 70000 is out of range 576..1500". err may be NULL. */
KS_MUST_CHECK int profile_validate(const struct profile *p, char *err, size_t errlen);

#endif
