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

#endif
