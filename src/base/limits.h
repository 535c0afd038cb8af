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

/* --- socks5 --- */

/* --- daemons --- */

/* --- netsim / impair --- */
enum {
	NETSIM_MAX_DATAGRAM = 65535,             /* largest datagram a link carries */
	NETSIM_MAX_DELAY_MS = 600000,            /* cap on delay_ms, jitter_ms, reorder_ms each */
	NETSIM_DEFAULT_QUEUE_BYTES = 128 * 1024, /* rate limiter queue when 0 is given */
	NETSIM_MAX_QUEUE_BYTES = 1 << 30,        /* cap on queue_bytes */
	NETSIM_DEFAULT_LIMIT_BYTES = 64 * 1024 * 1024, /* bytes a link may hold by default */
	NETSIM_MAX_LIMIT_BYTES = 1 << 30,              /* cap on limit_bytes */
	NETSIM_DEFAULT_LIMIT_DATAGRAMS = 1 << 16,      /* datagrams a link may hold by default */
	NETSIM_MAX_LIMIT_DATAGRAMS = 1 << 22,          /* cap on limit_datagrams */
	IMPAIR_BATCH = 64,                             /* datagrams per recvmmsg/sendmmsg call */
	IMPAIR_READ_BUDGET = 16,                       /* recvmmsg calls per socket per wakeup */
	IMPAIR_TX_AREA = 4 * 1024 * 1024, /* bytes of datagrams queued for one sendmmsg */
	IMPAIR_GSO_SEGS = 64,             /* datagrams per UDP GSO message (kernel max) */
	IMPAIR_GSO_BYTES = 65000,         /* bytes per UDP GSO message (< 64 KiB) */
};
#define NETSIM_MAX_RATE 1000000000000ULL /* bytes/s cap (1 TB/s), keeps the arithmetic exact */

#endif
