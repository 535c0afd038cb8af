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
	KCP_SEQ_SLACK = 65536,      /* sn this far outside the windows is malformed */
};

/* --- envelope, replay, handshake --- */

/* --- mux --- */

/* --- socks5 --- */

/* RFC 1928/1929 length fields are one byte, so every handshake message has a
 * fixed upper size; the parsers never ask for more than one message. */
enum {
	SOCKS5_METHODS_MAX = 255, /* NMETHODS */
	SOCKS5_CRED_MAX = 255,    /* RFC 1929 ULEN and PLEN */
	SOCKS5_DOMAIN_MAX = 255,  /* ATYP 3 length byte */
	/* VER NMETHODS METHODS */
	SOCKS5_GREETING_MAX = 2 + SOCKS5_METHODS_MAX,
	/* VER ULEN UNAME PLEN PASSWD */
	SOCKS5_AUTH_REQUEST_MAX = 3 + 2 * SOCKS5_CRED_MAX,
	/* VER CMD|REP RSV ATYP ADDR PORT, with the longest address (a domain) */
	SOCKS5_REQUEST_MAX = 4 + 1 + SOCKS5_DOMAIN_MAX + 2,
	SOCKS5_REPLY_MAX = SOCKS5_REQUEST_MAX,
	/* RSV(2) FRAG ATYP ADDR PORT in front of a UDP datagram's data */
	SOCKS5_UDP_HEADER_MAX = 4 + 1 + SOCKS5_DOMAIN_MAX + 2,
	/* The largest message a SOCKS5 peer must buffer to make progress: an
	 * input buffer this big always holds one whole handshake message. */
	SOCKS5_MESSAGE_MAX = SOCKS5_AUTH_REQUEST_MAX,
	/* socks5_addr_format: every domain byte may become "\xHH", plus
	 * ":65535" and the NUL. */
	SOCKS5_ADDR_TEXT_MAX = 4 * SOCKS5_DOMAIN_MAX + 6 + 1,
	/* socks5_server_feed output: method selection, auth reply and a
	 * failure reply (IPv4 zero address) in one step. */
	SOCKS5_SERVER_OUT_MAX = 2 + 2 + 10,
};

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

/* --- io: tcp, resolver, metrics, daemon --- */
enum {
	TCP_BACKLOG_DEFAULT = 511, /* listen(2) backlog */
	TCP_ACCEPT_BATCH = 32,     /* accept4 calls per listener wakeup */
	TCP_CONNS_DEFAULT = 1024,  /* accepted connections alive at once */
	TCP_CONNS_MAX = 1 << 20,   /* hard cap on that limit */
	TCP_ACCEPT_PAUSE_MS = 500, /* accept watcher rest after EMFILE/ENFILE */
	TCP_ACCEPT_PAUSE_MAX_MS = 60000,
	TCP_BUF_DEFAULT = 32 * 1024, /* read and write buffer of one connection */
	TCP_BUF_MIN = 512,           /* smallest buffer one may ask for */
	TCP_BUF_MAX = 4 << 20,       /* largest buffer one may ask for */
	TCP_CONNECT_ADDRS_MAX = 16,  /* addresses one connect tries in order */
	TCP_CONNECT_TIMEOUT_DEFAULT_MS = 10000,
	TCP_CONNECT_TIMEOUT_MAX_MS = 300000,
	TCP_CONNECT_ATTEMPT_MIN_MS = 250, /* smallest share of the budget per address */

	RESOLVER_ADDRS_MAX = 16,         /* addresses reported per lookup */
	RESOLVER_SERVERS_MAX = 8,        /* DNS servers in the option */
	RESOLVER_SOCKETS_MAX = 32,       /* c-ares sockets watched at once */
	RESOLVER_PENDING_DEFAULT = 1024, /* lookups in flight, including timed-out ones */
	RESOLVER_PENDING_MAX = 65536,
	RESOLVER_TIMEOUT_DEFAULT_MS = 5000, /* per lookup */
	RESOLVER_TIMEOUT_MAX_MS = 60000,
	RESOLVER_NAME_MAX = 255,       /* a DNS name in text (SOCKS5 caps it too) */
	RESOLVER_ARES_TRIES = 2,       /* c-ares tries per server within one lookup */
	RESOLVER_ARES_TRY_MIN_MS = 50, /* shortest first c-ares try */

	METRICS_REQUEST_MAX = 2048,        /* request line + headers; more is refused (431) */
	METRICS_BODY_DEFAULT = 256 * 1024, /* /metrics output bound */
	METRICS_BODY_MAX = 16 << 20,
	METRICS_CLIENTS_MAX = 16,  /* scrapes served at once */
	METRICS_TIMEOUT_MS = 5000, /* whole exchange of one client */
	METRICS_TIMEOUT_MAX_MS = 600000,
	METRICS_HEAD_MAX = 256, /* status line and headers of a response */

	DAEMON_DRAIN_DEFAULT_MS = 10000, /* graceful stop budget after SIGTERM/SIGINT */
	DAEMON_DRAIN_MAX_MS = 600000,
	DAEMON_PWBUF_MAX = 1 << 20, /* getpwnam_r buffer growth cap */
};

/* --- daemons --- */

#endif
