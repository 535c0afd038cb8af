/* err.h - the one error vocabulary of kcpsocks.
 *
 * Every function that can fail returns 0 on success or a negative KS_ERR_*
 * code; functions that return a byte count use ssize_t with the same codes.
 * No bare -1/-2: a new failure mode gets a name here.
 */
#ifndef KCPSOCKS_ERR_H
#define KCPSOCKS_ERR_H

#define KS_MUST_CHECK __attribute__((warn_unused_result))

enum ks_err {
	KS_OK = 0,
	KS_ERR_AGAIN = -1,        /* need more input, or nothing to do now */
	KS_ERR_PROTO = -2,        /* malformed input from the peer */
	KS_ERR_AUTH = -3,         /* authentication failed */
	KS_ERR_NOMEM = -4,        /* allocation failed; the object is unchanged */
	KS_ERR_FULL = -5,         /* a bounded buffer or window is full */
	KS_ERR_INVAL = -6,        /* bad argument or configuration value */
	KS_ERR_REPLAY = -7,       /* seen before (anti-replay) */
	KS_ERR_STALE = -8,        /* timestamp outside the accepted window */
	KS_ERR_CLOSED = -9,       /* the object was closed */
	KS_ERR_LIMIT = -10,       /* a count limit was reached */
	KS_ERR_DEAD = -11,        /* the link is dead (too many retransmissions) */
	KS_ERR_STATE = -12,       /* not valid in the current state */
	KS_ERR_TOOBIG = -13,      /* larger than the limit allows */
	KS_ERR_UNSUPPORTED = -14, /* valid, but not something we do */
	KS_ERR_IO = -15,          /* an I/O call failed; errno has the detail */
};

/* ks_strerror returns a static, human-readable string for a KS_ERR_* code
 * (or "success" for 0, "unknown error" for anything else). */
const char *ks_strerror(int err);

#endif
