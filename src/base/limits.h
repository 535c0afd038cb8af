/* limits.h - every bound in kcpsocks, by name.
 *
 * Each module keeps its bounds in its own section here so that a reader
 * sees, in one file, how much memory and how many objects the program can
 * ever hold. Values that users may need to change are also config keys
 * (docs/CONFIG.md); the value here is then the default or the hard cap.
 */
#ifndef KCPSOCKS_LIMITS_H
#define KCPSOCKS_LIMITS_H

/* --- kcp --- */

/* --- envelope, replay, handshake --- */

/* --- mux --- */
/* Wire bounds are protocol constants (docs/protocol/mux.md); the defaults
 * and caps of the per-session knobs are struct mux_config's. */
enum {
	MUX_FRAME_PAYLOAD_MAX = 16384, /* largest payload the decoder accepts */
	MUX_REQUEST_MAX = 512,         /* SOCKS5 request bytes in one OPEN */
	MUX_REPLY_MAX = 512,           /* SOCKS5 reply bytes in one REPLY */
	MUX_WINDOW_MIN = 4096,         /* smallest per-stream receive window */
	MUX_WINDOW_DEFAULT = 262144,   /* per-stream receive window (256 KiB) */
	MUX_WINDOW_MAX = 16777216,     /* largest window or credit a peer may hold */
	MUX_SNDBUF_MIN = 4096,         /* smallest per-stream send buffer */
	MUX_SNDBUF_DEFAULT = 65536,    /* per-stream send buffer in the mux */
	MUX_SNDBUF_MAX = 16777216,     /* largest per-stream send buffer */
	MUX_STREAMS_DEFAULT = 256,     /* concurrent streams per session */
	MUX_STREAMS_MAX = 65536,       /* cap on the configurable stream count */
	MUX_QUANTUM_MIN = 512,         /* smallest scheduler quantum */
	MUX_QUANTUM_DEFAULT = 4096,    /* bytes a stream may send per round */
	MUX_REFUSE_MAX = 64,           /* refusals (RST limit) waiting to be sent */
	MUX_SPLIT_MIN = 256,           /* smallest DATA cut made only to fit room */
	MUX_WRITABLE_MIN = 4096,       /* room that makes a blocked stream writable */
	MUX_RING_INITIAL = 4096,       /* first allocation of a stream buffer */
};

/* --- socks5 --- */

/* --- daemons --- */

#endif
