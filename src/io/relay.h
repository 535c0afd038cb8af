/* relay.h - one mux stream <-> one TCP connection, with backpressure both
 * ways, plus the per-session set of streams found by stream id.
 *
 * A struct relay_host stands for one session's mux as the daemons see it:
 * the current mux (borrowed from the session; NULL once the session is
 * lost), a "needs a pump" flag the daemon checks before the loop sleeps,
 * and a table of the session's streams by id. Each stream is a struct
 * relay that the daemon embeds in its own per-connection object, because
 * that object is also the argument of the tcp_conn callbacks.
 *
 * A relay moves bytes once both ends exist (the SOCKS5 reply was
 * exchanged):
 *   TCP -> mux: tcp_conn_peek, mux_stream_write, tcp_conn_consume. When the
 *               stream has no credit the bytes stay in the tcp_conn read
 *               buffer, which stops reading once full (backpressure to the
 *               TCP sender); MUX_EV_WRITABLE resumes.
 *   mux -> TCP: mux_stream_peek, tcp_conn_writev, mux_stream_consume:
 *               the bytes go from the stream's receive ring straight to
 *               the kernel (what it does not take is copied into the
 *               tcp_conn write buffer as far as it has room); TCP_CONN_SENT
 *               resumes. Unread bytes hold back the stream's credit, which
 *               stops the peer.
 * Half-close is carried both ways: a TCP EOF becomes mux_stream_shutdown
 * after the buffered bytes, the stream's end becomes tcp_conn_shutdown.
 * The relay is done when both directions are closed, or at once on a TCP
 * error (the stream is reset) or a stream reset. A relay that ends before
 * the stream's end (its FIN) was read closes its TCP socket with a reset
 * (SO_LINGER 0), never a FIN: a stream reset, a lost session and a
 * stopping daemon all look to the application like ECONNRESET, so a
 * truncated transfer never looks complete. When done it leaves the host's table, closes its
 * tcp_conn and calls ops->done exactly once, as the last thing it does; the owner frees the
 * embedding object later, outside the callback (two-step teardown).
 *
 * Nothing here calls session_pump: mux calls only mark the host dirty, and
 * the daemon pumps once per loop iteration. Single-threaded, libev loop.
 */
#ifndef KCPSOCKS_RELAY_H
#define KCPSOCKS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

struct mux;
struct mux_event;
struct tcp_conn;
struct tcp_conn_event;
struct relay;

/* mux_of returns the session's current mux, or NULL once the session this
 * host belongs to has ended, even before the daemon has taken its LOST
 * event (the core frees the mux at once), and never the mux of a newer
 * session. */
typedef struct mux *(*relay_mux_fn)(void *ctx);

struct relay_host {
	relay_mux_fn mux_of;
	void *mux_ctx; /* borrowed, passed to mux_of */
	bool gone;     /* relay_host_lost ran */
	bool dirty;    /* a mux call happened: session_pump before sleeping */
	/* Optional (server): while dirty, the host is on *dirty_list, so the
	 * daemon pumps the dirty hosts, not every host (relay_host_mark). */
	struct relay_host **dirty_list;
	struct relay_host *next_dirty, **pprev_dirty;
	size_t count;                  /* relays in the table */
	bool walking;                  /* relay_host_lost is walking the buckets */
	struct relay **bucket;         /* owned: RELAY_BUCKETS chains while count > 0, else NULL */
	uint64_t bytes_up, bytes_down; /* TCP->mux and mux->TCP, all streams */
};

struct relay_ops {
	/* done: the relay finished and is out of the host's table; its
	 * tcp_conn is closed. Called once, last; free the owner later. */
	void (*done)(struct relay *r, void *arg);
	void *arg;
};

enum relay_phase {
	RELAY_PENDING = 0, /* in the table, the owner still sets up the stream */
	RELAY_RUNNING,     /* moving bytes */
	RELAY_DONE,        /* finished; out of the table */
};

/* The fields are the module's; the owner reads only id, phase and the
 * byte counts (for its access log line). */
struct relay {
	struct relay_host *host; /* borrowed */
	struct relay *next;      /* hash chain */
	uint32_t id;             /* mux stream id */
	enum relay_phase phase;
	struct tcp_conn *conn; /* owned while RUNNING */
	struct relay_ops ops;
	bool up_done;                  /* TCP EOF passed on as mux_stream_shutdown */
	bool down_end;                 /* the stream's end was read; tcp_conn_shutdown asked */
	bool down_done;                /* our FIN left (TCP_CONN_SHUTDOWN) */
	uint64_t bytes_up, bytes_down; /* this stream's TCP->mux and mux->TCP */
};

/* relay_host_init readies an empty host for one session. */
void relay_host_init(struct relay_host *h, relay_mux_fn mux_of, void *ctx);

/* relay_host_mark marks h dirty (a mux call happened) and, if it has a
 * dirty_list, puts it on that list once. relay_host_unmark takes it off
 * (before the host is freed); relay_host_take_dirty pops one dirty host of
 * a list and clears its mark, NULL when none is left. */
void relay_host_mark(struct relay_host *h);
void relay_host_unmark(struct relay_host *h);
struct relay_host *relay_host_take_dirty(struct relay_host **list);

/* relay_host_mux returns the session's mux, or NULL when it is gone. */
struct mux *relay_host_mux(const struct relay_host *h);

/* relay_add puts r (owned by the caller, zeroed or reused) into h as a
 * PENDING stream id. Returns 0, or KS_ERR_STATE if id is already there. */
KS_MUST_CHECK int relay_add(struct relay_host *h, struct relay *r, uint32_t id,
                            const struct relay_ops *ops);

/* relay_find returns the relay of stream id in h, or NULL. */
struct relay *relay_find(const struct relay_host *h, uint32_t id);

/* relay_remove takes a PENDING relay out of the table without calling
 * done (the owner failed the stream itself). */
void relay_remove(struct relay *r);

/* relay_start: the stream is open both ways; from now on r moves bytes
 * between the stream and c (ownership of c passes to r). The owner's
 * tcp_conn callback must hand every later event to relay_on_tcp_event.
 * Bytes already in c's read buffer are sent at once; reading starts. May
 * finish r at once (done is then called from inside). */
void relay_start(struct relay *r, struct tcp_conn *c);

/* relay_on_mux_event handles a stream event (READABLE, FIN, WRITABLE,
 * RESET) of a RUNNING relay. May call done. */
void relay_on_mux_event(struct relay *r, const struct mux_event *ev);

/* relay_on_tcp_event handles an event of the relay's tcp_conn. May call
 * done. */
void relay_on_tcp_event(struct relay *r, const struct tcp_conn_event *ev);

/* relay_abort ends r now: the stream is reset (if the mux is still there
 * and reset is true), the tcp_conn closed, done called. */
void relay_abort(struct relay *r, bool reset);

/* relay_reset ends r now like relay_abort(r, true), but the TCP side is
 * aborted with a reset (tcp_conn_abort): its peer sees ECONNRESET, not an
 * orderly end. May be called on a RUNNING relay only; calls done. */
void relay_reset(struct relay *r);

/* relay_host_lost: the session is gone (its mux freed). Every RUNNING
 * relay is aborted without touching the mux; PENDING ones are handed to
 * pending_lost (the owner answers its client), which must take them out
 * with relay_remove or finish them. The host is then empty and gone. */
void relay_host_lost(struct relay_host *h, void (*pending_lost)(struct relay *r, void *arg),
                     void *arg);

/* relay_host_drain_orphan reads and drops whatever an event of a stream
 * that has no relay (a refused stream the peer still writes to) carries,
 * so the mux can free it. */
void relay_host_drain_orphan(struct relay_host *h, const struct mux_event *ev);

#endif
