/* err.c - names of the KS_ERR_* codes. */
#include "err.h"

const char *ks_strerror(int err)
{
	switch (err) {
	case KS_OK: return "success";
	case KS_ERR_AGAIN: return "try again";
	case KS_ERR_PROTO: return "protocol error";
	case KS_ERR_AUTH: return "authentication failed";
	case KS_ERR_NOMEM: return "out of memory";
	case KS_ERR_FULL: return "buffer full";
	case KS_ERR_INVAL: return "invalid argument";
	case KS_ERR_REPLAY: return "replayed";
	case KS_ERR_STALE: return "stale timestamp";
	case KS_ERR_CLOSED: return "closed";
	case KS_ERR_LIMIT: return "limit reached";
	case KS_ERR_DEAD: return "dead link";
	case KS_ERR_STATE: return "invalid state";
	case KS_ERR_TOOBIG: return "too big";
	case KS_ERR_UNSUPPORTED: return "not supported";
	case KS_ERR_IO: return "I/O error";
	}
	return "unknown error";
}
