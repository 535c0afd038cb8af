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

/* Sliding anti-replay window (RFC 6479): a ring of 64-bit words; one word is
 * kept as slack so that a forward jump clears whole words, which leaves
 * REPLAY_WINDOW usable positions behind the newest counter. */
enum {
	REPLAY_BITMAP_WORDS = 64,
	REPLAY_BITMAP_BITS = REPLAY_BITMAP_WORDS * 64,
	REPLAY_WINDOW = REPLAY_BITMAP_BITS - 64, /* 4032 >= 2048 */
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
	HANDSHAKE_CLOCK_SKEW_MS = 120000, /* init timestamps within +-120 s */
	HANDSHAKE_REPLAY_CACHE = 4096,    /* remembered init ephemerals */
	HANDSHAKE_PAD_MAX = 256,          /* random padding on handshake messages */
	HANDSHAKE_MAX_USERS = 65536,      /* users one server may list */
};

/* Transport parameters: the hard validity range of each field (a decoded
 * value outside it is a protocol error; the server clamps further). */
enum {
	TPARAMS_MTU_MIN = 576,
	TPARAMS_MTU_MAX = ENVELOPE_MAX_DATAGRAM,
	TPARAMS_PAD_MAX = 1024,
	TPARAMS_INTERVAL_MIN = 5,
	TPARAMS_INTERVAL_MAX = 1000,
	TPARAMS_RESEND_MAX = 255,
	TPARAMS_WND_MIN = 16,
	TPARAMS_WND_MAX = 32768,
	TPARAMS_KEEPALIVE_MIN_MS = 1000,
	TPARAMS_KEEPALIVE_MAX_MS = 600000,
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

/* --- socks5 --- */

/* --- daemons --- */

#endif
