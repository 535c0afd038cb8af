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

/* --- io --- */
enum {
	UDP_DATAGRAM_MAX = 2048,	    /* largest datagram sent or received; longer ones
					     * arriving are dropped and counted as truncated */
	UDP_BATCH_MAX = 64,		    /* datagrams per recvmmsg wakeup and per sendmmsg call */
	UDP_TX_QUEUE_DEFAULT = 1024,	    /* datagrams a send queue holds unless told otherwise */
	UDP_TX_QUEUE_MAX = 16384,	    /* hard cap on a send queue's capacity */
	UDP_SOCKBUF_DEFAULT = 4 << 20,	    /* SO_RCVBUF/SO_SNDBUF requested by default */
	UDP_SOCKBUF_MAX = 64 << 20,	    /* largest socket buffer one may request */
};

/* --- daemons --- */

#endif
