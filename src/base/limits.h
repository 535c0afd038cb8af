/* limits.h - every bound in kcpsocks, by name.
 *
 * Each module keeps its bounds in its own section here so that a reader
 * sees, in one file, how much memory and how many objects the program can
 * ever hold. Values that users may need to change are also config keys
 * (docs/CONFIG.md); the value here is then the default or the hard cap.
 * Each bound is written once: where two modules share a bound, the later
 * name is defined from the earlier one (or both use one name), so the two
 * cannot drift apart. An engine's own capability (KCP_WND_MAX,
 * KCP_MTU_MAX, KCP_DEAD_LINK_MAX) is a different bound from what a tunnel
 * configures (TPARAMS_*, PROFILE_*), and is at least as wide.
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
	KCP_SEED_MAX = 1000,        /* ms: kcp_seed_rtt's sample and RTO at most (K4) */
	KCP_RTO_MIN_NORMAL = 100,   /* ms, nodelay 0 */
	KCP_RTO_MIN_NODELAY = 30,   /* ms, nodelay 1 and 2 */
	KCP_RTO_MAX = 60000,        /* ms */
	KCP_DEAD_LINK_DEFAULT = 20, /* transmissions of one segment */
	KCP_DEAD_LINK_MAX = 1000,   /* transmissions */
	KCP_FASTACK_LIMIT = 5,      /* no fast retransmit after this many sends */
	KCP_PROBE_INIT = 7000,      /* ms, first window probe after a zero window */
	KCP_PROBE_MAX = 120000,     /* ms, probe backoff cap */
	KCP_RTT_WINDOWS = 8,        /* K4: a segment not passed by an echo is late, */
	KCP_RTT_WINDOW_MIN = 1000,  /* not lost, within the largest RTT sample of the
	                               last one or two windows of this many srtts
	                               (at least this many ms) */
	KCP_RTT_TOP_MARGIN = 8,     /* ...plus 1/this of it */
	KCP_LATE_FLIGHT = 16,       /* K4: segments in flight, max, for that rule */
	KCP_CWND_INIT = 4,          /* segments (RFC 3390; = KCP_THIN_FLIGHT) */
	KCP_SSTHRESH_MIN = 2,       /* segments */
	KCP_ACK_REPEAT = 2,         /* extra copies of an out-of-order ACK */
	KCP_ACK_REPEAT_SLOTS = 128, /* recent out-of-order arrivals remembered */
	KCP_BACKLOG_CONGESTED = 3,  /* segments queued: a loss is congestion */
	KCP_LOSS_HEAVY_MIN = 8,     /* K7: segments lost, at least, for these */
	KCP_LOSS_HEAVY_PCT = 25,    /* or this share of a flight lost at once */
	KCP_LOSS_QUEUE_PCT = 15,    /* or this share, the RTT peak showing a queue */
	KCP_LOSS_BURST_RUNS = 3,    /* K7: a heavy loss in at most this many runs
	                               of consecutive sn, no RTT rise: a burst */
	KCP_LOSS_BURST_MAX = 64,    /* ...of at most this many segments */
	KCP_RELOST_FRACTION = 16,   /* K7: resends lost again, at least cwnd / this,
	                              for a further cut */
	KCP_QUEUE_KEEP_PCT = 70,    /* of the flight, kept after such an overflow */
	KCP_QUEUE_FRACTION = 4,     /* ...and queueing delay >= min RTT / this */
	KCP_QUEUE_HOLD = 2,         /* queueing delay >= min RTT / this: no growth */
	KCP_RTT_FLOOR_MIN = 10,     /* K7: the recent RTT floor's windows, ms, min */
	KCP_QUEUE_LOSS_MIN = 10,    /* K7: ms of queue, at least, for a loss to cut */
	KCP_PACE_ONE = 1024,        /* pacing tokens per segment (fixed point) */
	KCP_PACE_GAIN = 5,          /* pace at send limit / srtt x this / 4 ... */
	KCP_PACE_GAIN_SS = 8,       /* ... and x this / 4 in slow start */
	KCP_PACE_BURST_MS = 2,      /* tokens held, at most, in ms of the pace */
	KCP_PACE_BURST_MIN = 16,    /* ... and at least this many segments */
	KCP_REORDER_MAX = 32,       /* learned reordering added to resend, max */
	KCP_SEQ_SLACK = 65536,      /* sn this far outside the windows is malformed */
	KCP_BUNDLE_FLIGHT = 16,     /* K13: segments in flight, max, to bundle copies */
	KCP_BUNDLE_COPIES = 2,      /* K13: copies of one transmission, max */
	KCP_THIN_FLIGHT = 4,        /* K11: segments in flight, max, to send twice */
	KCP_RETX_COPIES = 3,        /* K15: copies of one timeout retransmission, max */
	KCP_QUIET_MIN = 2,          /* K12: ms without an ACK, at least, before a path is silent */
	KCP_STALL_LATE = 5,         /* K4: called this many ms after the deadline: a stall */
	KCP_STALL_GRACE = 5,        /* ...RTO expiries then wait this many ms for the ACKs */
	KCP_IDLE_BUFS = 0,          /* segment buffers an idle engine keeps (more: freed); 0:
	                             * keepalives held ~5 KiB a session (issue 19) */
	KCP_RING_INITIAL = 8, /* ring slots at first (power of two); they grow to the window */
};

/* --- envelope, replay, handshake --- */

/* Sliding anti-replay window (RFC 6479): a ring of 64-bit words; one word is
 * kept as slack so that a forward jump clears whole words, which leaves
 * REPLAY_WINDOW usable positions behind the newest counter. */
enum {
	REPLAY_BITMAP_WORDS = 64,
	REPLAY_BITMAP_BITS = REPLAY_BITMAP_WORDS * 64,
	REPLAY_WINDOW = REPLAY_BITMAP_BITS - 64, /* 4032 >= 2048 */
};

/* Destinations reached lately (dstseen.h, the client's fast_open_known):
 * a direct-mapped table of hashes, each entry good for DSTSEEN_TTL_MS
 * after the server last connected to it. */
enum {
	DSTSEEN_SLOTS = 256,     /* power of two; 16 bytes each */
	DSTSEEN_TTL_MS = 600000, /* 10 minutes */
	DSTSEEN_KEY_LEN = 16,    /* SipHash key */
};

/* Envelope: 8-byte session id + 6-byte counter (both masked) in front, a
 * 2-byte padding length and the 16-byte AEAD tag inside the ciphertext. */
enum {
	ENVELOPE_SID_LEN = 8,
	ENVELOPE_CTR_LEN = 6,
	ENVELOPE_HDR_LEN = ENVELOPE_SID_LEN + ENVELOPE_CTR_LEN,
	ENVELOPE_PADLEN_LEN = 2,
	ENVELOPE_TAG_LEN = 16,
	ENVELOPE_OVERHEAD = ENVELOPE_HDR_LEN + ENVELOPE_PADLEN_LEN + ENVELOPE_TAG_LEN, /* 32 */
	ENVELOPE_SAMPLE_LEN = 16,
	ENVELOPE_MIN_LEN = ENVELOPE_OVERHEAD, /* an empty payload, no padding */
	ENVELOPE_MAX_DATAGRAM = 1500,         /* largest datagram sealed or opened */
	ENVELOPE_PEER_SILENT_MS = 5000,       /* unacked data and no reply: rehandshake */
};
/* Counters are 48 bits on the wire: the sealer stops before the last value,
 * so a key/nonce pair is never used twice (KS_ERR_LIMIT: rehandshake). */
#define ENVELOPE_CTR_LIMIT ((1ULL << 48) - 1)
/* Soft limits: past either, envelope_status() says a rekey is due. */
#define ENVELOPE_REKEY_AFTER_PACKETS (1ULL << 40)
#define ENVELOPE_REKEY_AFTER_MS      (24ULL * 3600 * 1000)
/* Failed AEAD verifications tolerated per session key (the ChaCha20-Poly1305
 * integrity limit of RFC 9001 section 6.6); past it the session refuses. */
#define ENVELOPE_FORGERY_LIMIT (1ULL << 36)

/* Keys and users. */
enum {
	KEYS_LEN = 32,
	KEYS_TEXT_LEN = 43, /* base64url, no padding, of 32 bytes */
	KEYS_NAME_MAX = 32, /* user names: 1..32 bytes of [A-Za-z0-9._-] */
};

/* Handshake. */
enum {
	HANDSHAKE_CLOCK_SKEW_MS = 120000, /* init timestamps at most 120 s old */
	HANDSHAKE_FUTURE_MS = 5000,       /* ... and at most 5 s ahead of the server */
	HANDSHAKE_REPLAY_CACHE = 4096,    /* remembered accepted init ephemerals */
	HANDSHAKE_REFUSED_CACHE = 8192,   /* remembered refused inits (mac1) */
	HANDSHAKE_PAD_MAX = 256,          /* random padding on handshake messages */
	HANDSHAKE_MAX_USERS = 4096,       /* users one server may list ([user] sections) */
	/* X25519 budgets of the server (token buckets): in total, and per
	 * source host (IPv4 address or IPv6 /64; handshake.h). */
	HANDSHAKE_DH_RATE = 2000, /* per second */
	HANDSHAKE_DH_BURST = 1000,
	HANDSHAKE_SRC_DH_RATE = 50, /* per second and source host */
	HANDSHAKE_SRC_DH_BURST = 100,
	HANDSHAKE_SRC_SLOTS = 4096, /* source buckets, hashed */
	/* ... and a reserve for hosts that hardly used their own bucket lately
	 * (new clients), taken only when the total is spent. */
	HANDSHAKE_DH_RESERVE_RATE = 200,
	HANDSHAKE_DH_RESERVE_BURST = 20,
};

/* Transport parameters: the one range of each transport setting. The
 * handshake refuses a decoded value outside it (tparams_valid), the server
 * clamps further (tparams_clamp), and the profile keys that set these fields
 * (profile.c) are checked against the same names, so every profile that
 * validates can be carried as it is. */
enum {
	TPARAMS_MTU_MIN = 576,                   /* the IPv4 minimum reassembly size */
	TPARAMS_MTU_MAX = ENVELOPE_MAX_DATAGRAM, /* an Ethernet payload; larger only fragments */
	TPARAMS_PAD_MAX = 256,    /* random pad bytes, or the bucket size, per datagram */
	TPARAMS_BUCKET_MIN = 16,  /* smallest bucket of TPARAMS_PAD_BUCKET */
	TPARAMS_INTERVAL_MIN = 5, /* ms, KCP flush interval */
	TPARAMS_INTERVAL_MAX = 1000,
	TPARAMS_RESEND_MAX = 32, /* KCP fast-resend threshold; 0 turns it off */
	TPARAMS_NODELAY_MAX = 2, /* KCP nodelay 0, 1 or 2 (kcp.h) */
	TPARAMS_WND_MIN = 16,    /* KCP windows, segments */
	TPARAMS_WND_MAX = 8192,  /* (the engine itself takes up to KCP_WND_MAX) */
	TPARAMS_KEEPALIVE_MIN_MS = 1000,
	TPARAMS_KEEPALIVE_MAX_MS = 300000,
	TPARAMS_IDLE_MIN_MS = 5000,
	TPARAMS_IDLE_MAX_MS = 3600000,
};

/* Server session table. */
enum {
	SESSIONS_MAX = 65536,      /* slot index lives in the low 16 bits of a sid */
	SESSIONS_PER_USER_MAX = 8, /* more sessions of one user evict its idlest */
	SESSIONS_ADDR_MAX = 28,    /* an opaque peer address: sockaddr_in6 fits */
};

/* --- mux --- */
/* Wire bounds are protocol constants (docs/PROTOCOL.md (mux)); the defaults
 * and caps of the per-session knobs are struct mux_config's. */
enum {
	MUX_FRAME_PAYLOAD_MAX = 16384, /* largest payload the decoder accepts */
	MUX_REQUEST_MAX = 512,         /* SOCKS5 request bytes in one OPEN */
	MUX_REPLY_MAX = 512,           /* SOCKS5 reply bytes in one REPLY */
	MUX_WINDOW_MIN = 4096,         /* smallest per-stream receive window */
	MUX_WINDOW_DEFAULT = 4194304,  /* per-stream receive window (4 MiB, profile default) */
	MUX_WINDOW_MAX = 16777216,     /* largest window or credit a peer may hold */
	MUX_SNDBUF_MIN = 4096,         /* smallest per-stream send buffer */
	MUX_SNDBUF_DEFAULT = 65536,    /* per-stream send buffer in the mux */
	MUX_SNDBUF_MAX = 16777216,     /* largest per-stream send buffer */
	MUX_STREAMS_DEFAULT = 256,     /* concurrent streams per session (profile default) */
	MUX_STREAMS_MAX = 4096,        /* cap on the configurable stream count */
	MUX_QUANTUM_MIN = 512,         /* smallest scheduler quantum */
	MUX_QUANTUM_DEFAULT = 4096,    /* bytes a stream may send per round */
	MUX_TAB_INITIAL = 8,           /* stream table entries at first; doubles with use */
	MUX_REFUSE_MAX = 64,           /* refusals (RST limit) waiting to be sent */
	MUX_SPLIT_MIN = 256,           /* smallest DATA cut made only to fit room */
	MUX_WRITABLE_MIN = 4096,       /* room that makes a blocked stream writable */
	MUX_RING_INITIAL = 4096,       /* first allocation of a stream buffer */
	MUX_RING_AGAIN_MAX = 262144,
	DAEMON_MMAP_THRESHOLD = 131072,
	/* allocations this large get their own mapping (io/daemon.c) */ /* most a drained buffer
	                                                                    comes back at */
	MUX_EARLY_DATA_MAX = 65536, /* DATA a client may send before REPLY (step 4.4) */
	MUX_OOO_MAX = 16,           /* byte ranges a stream holds above a gap (step 10) */
	/* Session receive budget (step 4.5): the windows a session end's live
	 * streams announced, summed, stay below budget + streams x floor. */
	MUX_WINDOW_FLOOR = 65536,      /* a stream's window while the budget is short ... */
	MUX_FLOOR_SHARE = 128,         /* ... or 1/this of the budget, if more, */
	MUX_WINDOW_FLOOR_MAX = 262144, /* ... but at most this */
	MUX_BUDGET_SHARE = 4,          /* a new stream takes 1/this of the budget left */
	MUX_BUDGET_MIN = 65536,        /* smallest session receive budget */
	MUX_BUDGET_DEFAULT = 33554432, /* 32 MiB (profile default) */
	MUX_BUDGET_MAX = 1073741824,   /* 1 GiB */
};

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
	/* UDP GSO (UDP_SEGMENT): datagrams and bytes one sendmmsg message may
	 * carry. The kernel takes at most 64 segments and an IP packet's
	 * 65535 bytes less the headers; we stay under both. */
	UDP_GSO_SEGMENTS_MAX = 64,
	UDP_GSO_BYTES_MAX = 65000,
	/* Datagrams one sendmmsg call covers when GSO groups them (the iovec
	 * array of one call lives on the stack). */
	UDP_SEND_SLOTS_MAX = 1024,
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
	TCP_IO_ROUNDS = 4,           /* recv (send) calls per wakeup of one connection */
	TCP_IOV_MAX = 4,             /* spans one tcp_conn_writev takes */
	TCP_BUF_MIN = 512,           /* smallest buffer one may ask for */
	TCP_BUF_MAX = 4 << 20,       /* largest buffer one may ask for */
	TCP_CONNECT_ADDRS_MAX = 16,  /* addresses one connect tries in order */
	TCP_CONNECT_TIMEOUT_DEFAULT_MS = 10000,
	TCP_CONNECT_TIMEOUT_MAX_MS = 120000, /* also the connect_timeout_ms key's */
	TCP_CONNECT_ATTEMPT_MIN_MS = 250,    /* smallest share of the budget per address */

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

	METRICS_REQUEST_MAX = 2048,       /* request line + headers; more is refused (431) */
	METRICS_GROW_INITIAL = 64 * 1024, /* first allocation of an unbounded /metrics body */
	METRICS_BODY_MAX = 16 << 20,
	METRICS_SESSION_SERIES_MAX = 64, /* users with session series in /metrics */
	METRICS_CLIENTS_MAX = 16,        /* scrapes served at once */
	METRICS_TIMEOUT_MS = 5000,       /* whole exchange of one client */
	METRICS_TIMEOUT_MAX_MS = 600000,
	METRICS_HEAD_MAX = 256, /* status line and headers of a response */

	METRICS_HEALTH_REASON_MAX = 200, /* /healthz: bytes of the 503 reason line */

	DAEMON_DRAIN_DEFAULT_MS = 10000, /* graceful stop budget after SIGTERM/SIGINT */
	DAEMON_DRAIN_MAX_MS = 600000,
	DAEMON_PWBUF_MAX = 1 << 20, /* getpwnam_r buffer growth cap */
};

/* --- session --- */
/* One peer's stack (docs/PROTOCOL.md (session)). Handshake attempts: inits at
 * +0, +RTO, +3 RTO, ... (doubling up to the cap) until the attempt times
 * out; then a backoff between attempts, doubling from MIN to MAX with up to
 * a quarter of random jitter. */
enum {
	SESSION_HS_RTO_MS = 1000,         /* first init retransmission */
	SESSION_HS_RTO_MAX_MS = 4000,     /* retransmission interval cap */
	SESSION_HS_TIMEOUT_MS = 10000,    /* one attempt, default */
	SESSION_HS_TIMEOUT_MIN_MS = 1000, /* smallest configurable attempt */
	SESSION_RETRY_MIN_MS = 1000,      /* first backoff after a failed attempt */
	SESSION_RETRY_MAX_MS = 30000,     /* backoff cap */
	SESSION_SILENT_MS_DEFAULT = 3000, /* restart detection: server silent with data out */
	SESSION_SILENT_MS_MIN = 200,      /* smallest configurable silent_ms */
	SESSION_SWITCH_GRACE_MS = 200,    /* extra wait for a silent session's answer */
	SESSION_PUMP_CHUNK = 16384,       /* bytes moved mux <-> KCP per step */
	SESSION_KCP_QUEUE = 64,           /* KCP segments queued below the mux, max */
};

/* The feed (core/feed.h): what the session lets KCP hold, by the delivery
 * rate, so bulk data leaves only a short queue on the path (issue 19). */
enum {
	FEED_QUEUE_MS = 2,       /* queue allowed beyond the base RTT, ms */
	FEED_WINDOW_MS = 1000,   /* the rate is the largest sample this recent ... */
	FEED_WINDOW_RTTS = 10,   /* ... or of this many srtt, whichever is longer */
	FEED_SAMPLE_MIN_MS = 4,  /* a rate sample spans at least this, and an srtt */
	FEED_CAP_MIN = 65536,    /* the cap never binds below this many bytes */
	FEED_STARTUP_ROUNDS = 3, /* samples without growth that end startup */
	FEED_STARTUP_GAIN = 3,   /* base RTTs of the rate KCP may hold in startup */
	FEED_ENGAGE_Q = 3,       /* a queue of this x FEED_QUEUE_MS engages the cap */
	FEED_GIVEUP_MS = 1000,   /* a queue that does not drain for this long is not ours */
};

/* Liveness (docs/PROTOCOL.md (session) L6-L7): a session with data sent and
 * unanswered, and nothing authenticated for dead_path_ms, is down. */
enum {
	SESSION_DEAD_PATH_MS_DEFAULT = 10000, /* `mobile` profile: 20000 */
	SESSION_DEAD_PATH_MS_MIN = 1000,      /* smallest configurable dead_path_ms */
	SESSION_DEAD_PATH_MS_MAX = 600000,
	SESSION_STALL_MIN_MS = 1000,   /* L7: first stall probe of open streams */
	SESSION_STALL_SILENT_MS = 100, /* L7: the probes' pace once one went unanswered */
	SESSION_LAST_CALL_MS = 1000,   /* L6: a probe init this long before the end */
};

/* --- daemons --- */

/* Config and profiles (src/core/config.c, src/core/profile.c). A profile
 * key that sets a transport parameter or a mux setting is checked against
 * that setting's range (TPARAMS_*, MUX_*); the PROFILE_* pairs are the
 * ranges of the keys that exist only in a profile. docs/CONFIG.md prints
 * them all. */
enum {
	PROFILE_MIN_RTO_MIN = 10,   /* ms */
	PROFILE_MIN_RTO_MAX = 5000, /* ms (the engine takes up to KCP_RTO_MAX) */
	PROFILE_DEAD_LINK_MIN = 5,  /* retransmissions of one segment */
	PROFILE_DEAD_LINK_MAX =
	        100,           /* before the link is declared dead (engine: KCP_DEAD_LINK_MAX) */
	PROFILE_NAME_MAX = 31, /* characters of a profile name */

	CONFIG_TEXT_MAX = 1048576,             /* bytes of one config file */
	CONFIG_LINE_MAX = 197,                 /* characters per line (libinih's 200 less \r\n\0) */
	CONFIG_ERR_MAX = 256,                  /* a message buffer that holds any config error */
	CONFIG_FILE_NAME_MAX = 127,            /* of the config file, as quoted in messages */
	CONFIG_NAME_MAX = 32,                  /* user names, run_as, socks_user */
	CONFIG_HOST_MAX = 253,                 /* a DNS name */
	CONFIG_PATH_MAX = 255,                 /* private_key_file */
	CONFIG_PASSWORD_MAX = SOCKS5_CRED_MAX, /* RFC 1929 */
	CONFIG_DNS_TEXT_MAX = 191,             /* resolver_servers (a config line holds no more) */
	CONFIG_KEY_LEN = KEYS_LEN,             /* psk, X25519 public and private keys */
	CONFIG_KEY_B64_LEN = KEYS_TEXT_LEN,    /* base64url without padding of 32 bytes */
	CONFIG_CONNSTR_MAX = 512,              /* a kcpsocks:// string, NUL included */
	CONFIG_USERS_MAX = HANDSHAKE_MAX_USERS, /* [user NAME] sections */
	CONFIG_RULES_MAX = 256,                 /* entries of allow, and of deny */
	CONFIG_SELF_MAX = 256,                  /* own interface addresses a `self` rule knows */
	CONFIG_MAX_FDS_MAX = 1048576,
	/* UDP ASSOCIATE (docs/PROTOCOL.md (UDP) U7) */
	UDP_ASSOCIATIONS_MAX = 1024,    /* per session */
	UDP_RATE_MAX = 1000000,         /* datagrams per second per association */
	UDP_QUEUE_BYTES_MIN = 2048,     /* one largest datagram fits */
	UDP_QUEUE_BYTES_MAX = 16777216, /* per association */
	UDP_IDLE_MS_MIN = 1000,
	UDP_IDLE_MS_MAX = 86400000,
	UDP_SERVER_LOOKUPS_MAX = 8,        /* name lookups in flight per association */
	UDP_ASSOC_RCVBUF = 1 << 20,        /* receive buffer asked for each association socket */
	CONFIG_CONNECT_TIMEOUT_MIN = 1000, /* ms */
	CONFIG_CONNECT_TIMEOUT_MAX = TCP_CONNECT_TIMEOUT_MAX_MS, /* ms */
};
/* --- daemons: kcpsocks-local, kcpsocks-server (src/local, src/server,
 * io/relay, io/peer, io/loop) --- */
enum {
	LOCAL_NEGOTIATE_TIMEOUT_MS = 10000, /* SOCKS5 greeting..request from a client */
	LOCAL_SESSION_WAIT_MS = 5000,       /* a SOCKS5 request waits this long for a session */
	RELAY_BUCKETS = 256,                /* stream-id hash buckets per session */
	EXITD_TRIM_SESSIONS = 256,          /* sessions ended since the last malloc_trim */
	DAEMON_EVENT_ROUNDS = 8,            /* event/pump rounds per loop iteration */
	LOOP_PEERS_MAX = 4,                 /* UDP sockets one loop watches (io/loop) */
	KEYFILE_MAX = 256,                  /* bytes of a private key file */
};

/* --- netsim / impair --- */
enum {
	NETSIM_MAX_DATAGRAM = 65535,             /* largest datagram a link carries */
	NETSIM_MAX_LOSS_BLOCK = 1 << 20,         /* cap on loss_block */
	NETSIM_MAX_DELAY_MS = 600000,            /* cap on delay_ms, jitter_ms, reorder_ms each */
	NETSIM_DEFAULT_QUEUE_BYTES = 128 * 1024, /* rate limiter queue when 0 is given */
	NETSIM_MAX_QUEUE_BYTES = 1 << 30,        /* cap on queue_bytes */
	NETSIM_DEFAULT_LIMIT_BYTES = 64 * 1024 * 1024, /* bytes a link may hold by default */
	NETSIM_MAX_LIMIT_BYTES = 1 << 30,              /* cap on limit_bytes */
	NETSIM_DEFAULT_LIMIT_DATAGRAMS = 1 << 16,      /* datagrams a link may hold by default */
	NETSIM_MAX_LIMIT_DATAGRAMS = 1 << 22,          /* cap on limit_datagrams */
	IMPAIR_BATCH = UDP_BATCH_MAX,                  /* datagrams per recvmmsg/sendmmsg call */
	IMPAIR_READ_BUDGET = 16,                       /* recvmmsg calls per socket per wakeup */
	IMPAIR_TX_AREA = 4 * 1024 * 1024, /* bytes of datagrams queued for one sendmmsg */
};
#define NETSIM_MAX_RATE 1000000000000ULL /* bytes/s cap (1 TB/s), keeps the arithmetic exact */

#endif
