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
enum {
	KCP_MTU_DEFAULT = 1400,     /* bytes per datagram */
	KCP_MTU_MIN = 50,           /* header + 26 bytes of data */
	KCP_MTU_MAX = 9216,         /* segment buffers are mtu - 24 bytes each */
	KCP_SND_WND_DEFAULT = 32,   /* segments */
	KCP_RCV_WND_DEFAULT = 128,  /* segments */
	KCP_RCV_WND_MIN = 128,      /* >= KCP_MAX_FRAGMENTS: a whole message fits */
	KCP_WND_MAX = 32768,        /* either window; the wire field is 16 bits */
	KCP_MAX_FRAGMENTS = 128,    /* segments per message (message mode) */
	KCP_INTERVAL_DEFAULT = 100, /* ms */
	KCP_INTERVAL_MIN = 1,       /* ms */
	KCP_INTERVAL_MAX = 5000,    /* ms */
	KCP_RTO_INIT = 200,         /* ms, before the first RTT sample */
	KCP_RTO_MIN_NORMAL = 100,   /* ms, nodelay 0 */
	KCP_RTO_MIN_NODELAY = 30,   /* ms, nodelay 1 and 2 */
	KCP_RTO_MAX = 60000,        /* ms */
	KCP_DEAD_LINK_DEFAULT = 20, /* transmissions of one segment */
	KCP_DEAD_LINK_MAX = 1000,   /* transmissions */
	KCP_FASTACK_LIMIT = 5,      /* no fast retransmit after this many sends */
	KCP_PROBE_INIT = 7000,      /* ms, first window probe after a zero window */
	KCP_PROBE_MAX = 120000,     /* ms, probe backoff cap */
	KCP_CWND_INIT = 2,          /* segments */
	KCP_SSTHRESH_MIN = 2,       /* segments */
	KCP_REORDER_MAX = 32,       /* learned reordering added to resend, max */
	KCP_SEQ_SLACK = 65536,      /* sn this far outside the windows is malformed */
};

/* --- envelope, replay, handshake --- */

/* --- mux --- */

/* --- socks5 --- */

/* --- io --- */
enum {
	UDP_DATAGRAM_MAX = 2048,       /* largest datagram sent or received; longer ones
	                                * arriving are dropped and counted as truncated */
	UDP_BATCH_MAX = 64,            /* datagrams per recvmmsg wakeup and per sendmmsg call */
	UDP_TX_QUEUE_DEFAULT = 1024,   /* datagrams a send queue holds unless told otherwise */
	UDP_TX_QUEUE_MAX = 16384,      /* hard cap on a send queue's capacity */
	UDP_SOCKBUF_DEFAULT = 4 << 20, /* SO_RCVBUF/SO_SNDBUF requested by default */
	UDP_SOCKBUF_MAX = 64 << 20,    /* largest socket buffer one may request */
};

/* --- tools/kcpcat --- */
enum {
	KCPCAT_CHUNK = 64 * 1024,    /* bytes read from stdin at once (one message) */
	KCPCAT_OUT_MAX = 512 * 1024, /* stdout buffer; holds the largest message */
	KCPCAT_LINGER_MIN_MS = 200,  /* quiet time before exit, to re-ack a lost end */
	KCPCAT_LINGER_MAX_MS = 3000,
	KCPCAT_IDLE_MAX_S = 86400, /* largest -w */
};

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
};
#define NETSIM_MAX_RATE 1000000000000ULL /* bytes/s cap (1 TB/s), keeps the arithmetic exact */

#endif
