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

/* --- daemons --- */

/* Config and profiles (src/core/config.c, src/core/profile.c). The PROFILE_*
 * pairs are the ranges every transport key is checked against, after the
 * profile's overrides are applied; docs/CONFIG.md prints them. */
enum {
	PROFILE_MTU_MIN = 576,                /* the IPv4 minimum reassembly size */
	PROFILE_MTU_MAX = 1500,               /* an Ethernet payload; larger only fragments */
	PROFILE_PAD_BUCKET_MAX = 256,         /* round datagrams up to a multiple of this */
	PROFILE_PAD_MAX_MAX = 256,            /* random extra padding per datagram */
	PROFILE_KEEPALIVE_MIN = 1000,         /* ms */
	PROFILE_KEEPALIVE_MAX = 300000,       /* ms */
	PROFILE_IDLE_MIN = 5000,              /* ms */
	PROFILE_IDLE_MAX = 86400000,          /* ms, one day */
	PROFILE_NODELAY_MAX = 2,              /* KCP nodelay: 0, 1 or 2 */
	PROFILE_INTERVAL_MIN = 1,             /* ms, KCP flush interval */
	PROFILE_INTERVAL_MAX = 1000,          /* ms */
	PROFILE_RESEND_MAX = 32,              /* KCP fast-resend threshold; 0 turns it off */
	PROFILE_WND_MIN = 16,                 /* KCP window, segments */
	PROFILE_WND_MAX = 8192,               /* segments */
	PROFILE_MIN_RTO_MIN = 10,             /* ms */
	PROFILE_MIN_RTO_MAX = 5000,           /* ms */
	PROFILE_DEAD_LINK_MIN = 5,            /* retransmissions of one segment */
	PROFILE_DEAD_LINK_MAX = 100,          /* before the link is declared dead */
	PROFILE_STREAM_WINDOW_MIN = 4096,     /* bytes of mux credit per stream */
	PROFILE_STREAM_WINDOW_MAX = 16777216, /* 16 MiB */
	PROFILE_STREAMS_MIN = 1,              /* mux streams per session */
	PROFILE_STREAMS_MAX = 4096,
	PROFILE_NAME_MAX = 31, /* characters of a profile name */

	CONFIG_TEXT_MAX = 1048576,  /* bytes of one config file */
	CONFIG_LINE_MAX = 197,      /* characters per line (libinih's 200 less \r\n\0) */
	CONFIG_ERR_MAX = 256,       /* a message buffer that holds any config error */
	CONFIG_FILE_NAME_MAX = 127, /* of the config file, as quoted in messages */
	CONFIG_NAME_MAX = 32,       /* user names, run_as, socks_user */
	CONFIG_HOST_MAX = 253,      /* a DNS name */
	CONFIG_PATH_MAX = 255,      /* private_key_file */
	CONFIG_PASSWORD_MAX = 255,  /* RFC 1929 */
	CONFIG_KEY_LEN = 32,        /* psk, X25519 public and private keys */
	CONFIG_KEY_B64_LEN = 43,    /* base64url without padding of 32 bytes */
	CONFIG_CONNSTR_MAX = 512,   /* a kcpsocks:// string, NUL included */
	CONFIG_USERS_MAX = 4096,    /* [user NAME] sections */
	CONFIG_RULES_MAX = 256,     /* entries of allow, and of deny */
	CONFIG_MAX_FDS_MAX = 1048576,
	CONFIG_SESSIONS_MAX = 65536,
	CONFIG_CONNECT_TIMEOUT_MIN = 1000,   /* ms */
	CONFIG_CONNECT_TIMEOUT_MAX = 120000, /* ms */
};
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
