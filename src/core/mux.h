/* mux.h - stream multiplexing over one KCP byte stream (sans-I/O).
 *
 * One struct mux per session end. The client opens streams (one per SOCKS5
 * connection) with the client's SOCKS5 request; the server answers each with
 * its SOCKS5 reply; then both sides exchange DATA with per-stream credit
 * windows, half-close with FIN, abort with RST. The wire format, the credit
 * rules, the scheduler and the state diagram are in docs/PROTOCOL.md (mux);
 * "step N" comments in mux.c refer to its numbered steps.
 *
 * Bytes in:  mux_input() with whatever the KCP byte stream delivered, split
 *            anywhere; the result does not depend on the split.
 * Bytes out: mux_produce() writes whole frames into at most `room` bytes
 *            (the caller passes what KCP will take now), so nothing piles up
 *            below the mux; control frames first, then DATA: streams that
 *            just became active first (one quantum), the busy ones in
 *            deficit round robin.
 * Events:    mux_next_event() polls what happened (new stream, reply,
 *            readable, writable, FIN, RST, PONG). The mux makes no callbacks,
 *            so every function may be called at any time, also while the
 *            caller is handling an event.
 *
 * Early data: a client stream may carry up to MUX_EARLY_DATA_MAX bytes of
 * DATA (and a FIN) right behind its OPEN, before the REPLY; the server
 * buffers them on the stream (docs/PROTOCOL.md (mux) step 4.4).
 *
 * Memory is accounted (mux_mem_bytes) and bounded by the configuration:
 * per stream at most its receive window (on a server at least
 * MUX_EARLY_DATA_MAX) plus its send buffer, at most
 * max_streams streams, plus a fixed part. A stream's window is chosen when
 * it is announced, from the session's budget (step 4.5):
 * min(window, max(floor, (budget - committed) / MUX_BUDGET_SHARE))
 * where committed is what the other live streams hold and the floor is
 * budget / MUX_FLOOR_SHARE between MUX_WINDOW_FLOOR and
 * MUX_WINDOW_FLOOR_MAX; it comes back when a stream is freed. As a
 * client's application reads, the window moves towards the fair share
 * min(window, max(floor, budget / streams held)), never below the credit
 * already granted and never growing past the budget left (step 4.5.3). So
 * all receive buffers together hold at most min(max_streams x max(window,
 * floor), budget + max_streams x floor): with the default profile 32 MiB +
 * 256 x 256 KiB = 96 MiB instead of 256 x 8 MiB = 2 GiB. mux_input() never needs to refuse
 * bytes: everything a well-behaved peer may send fits these bounds, and
 * anything else is a protocol error.
 *
 * Errors from mux_input() and mux_produce() are fatal to the session: they
 * are sticky and every later call returns the same code; the caller tears
 * the session down. Stream-level trouble never becomes a session error
 * unless the peer broke the protocol.
 */
#ifndef KCPSOCKS_MUX_H
#define KCPSOCKS_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/err.h"

struct wr;

/* --- frames (step 1) ------------------------------------------------------ */

enum {
	MUX_HDR_LEN = 8, /* type u8, flags u8, length u16be, stream id u32be */
	MUX_WINDOW_FIELD_LEN = 4,
};

enum mux_frame_type {
	MUX_OPEN = 1,    /* client -> server: u32be window, SOCKS5 request */
	MUX_REPLY = 2,   /* server -> client: u32be window, SOCKS5 reply */
	MUX_DATA = 3,    /* stream bytes, 1..MUX_FRAME_PAYLOAD_MAX */
	MUX_FIN = 4,     /* no more DATA in this direction; empty */
	MUX_RST = 5,     /* abort the stream; u8 reason */
	MUX_WINDOW = 6,  /* u32be credit increment, > 0 */
	MUX_PING = 7,    /* stream id 0; u64be opaque value */
	MUX_PONG = 8,    /* stream id 0; echoes a PING's value */
	MUX_DATA_AT = 9, /* per-stream delivery (step 10): u64be stream offset,
	                  * then 1.. stream bytes; replaces DATA */
	MUX_FIN_AT = 10, /* per-stream delivery: u64be final offset; replaces FIN */
};

enum { MUX_OFFSET_LEN = 8 }; /* the offset field of DATA_AT */

/* RST reasons. Other values are passed through to the application. */
enum mux_rst_reason {
	MUX_RST_CANCEL = 0,   /* the application aborted the stream */
	MUX_RST_LIMIT = 1,    /* OPEN refused: too many streams */
	MUX_RST_RESOURCE = 2, /* OPEN refused: out of memory */
	MUX_RST_CONNECT = 3,  /* the server could not reach the destination */
};

/* A decoded frame. payload is a view into the decoded buffer, valid as long
 * as that buffer. */
struct mux_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t id;
	uint16_t len;
	const uint8_t *payload; /* view into the decoded buffer */
};

/* mux_frame_encode appends f (header, then f->len bytes from f->payload) to
 * w. It does not check the per-type rules, so tests can build bad frames.
 * Returns 0, or KS_ERR_FULL if it does not fit (w is then unchanged). */
KS_MUST_CHECK int mux_frame_encode(struct wr *w, const struct mux_frame *f);

/* mux_frame_decode reads one frame from the start of buf and checks the
 * header against the per-type rules (type known, flags zero, stream id 0
 * exactly for PING and PONG, length exact or within the type's range).
 * Returns the frame's size (> 0) with *f filled, KS_ERR_AGAIN if buf holds
 * only part of a valid frame, KS_ERR_PROTO if the header breaks a rule. */
KS_MUST_CHECK ssize_t mux_frame_decode(const uint8_t *buf, size_t len, struct mux_frame *f);

/* --- a session end -------------------------------------------------------- */

enum mux_role { MUX_CLIENT, MUX_SERVER };

/* Per-session knobs; bounds and defaults in base/limits.h ("mux"). */
struct mux_config {
	uint32_t window;      /* receive window per stream, announced in OPEN/REPLY */
	uint32_t send_buffer; /* bytes a stream may hold in the mux before sending */
	uint32_t max_streams; /* concurrent streams (including resets not yet sent) */
	uint32_t quantum;     /* scheduler quantum and largest DATA frame emitted */
	uint32_t budget;      /* receive windows all streams may hold together (4.5) */
};

/* mux_config_default fills c with the defaults from limits.h (the same
 * names the built-in profile `default` uses: transport.h). */
void mux_config_default(struct mux_config *c);

/* mux_config_check returns 0 if every field of c is inside its bounds
 * (limits.h MUX_*), else KS_ERR_INVAL. mux_new accepts exactly these. */
KS_MUST_CHECK int mux_config_check(const struct mux_config *c);

struct mux;

/* mux_new creates a session end. cfg NULL means the defaults; it is copied.
 * Returns 0 with *out set (owned by the caller, release with mux_free),
 * KS_ERR_INVAL for a value outside its bounds, KS_ERR_NOMEM. */
KS_MUST_CHECK int mux_new(struct mux **out, enum mux_role role, const struct mux_config *cfg);

/* mux_free releases m and every stream. NULL is a no-op. */
void mux_free(struct mux *m);

/* mux_input feeds bytes of the incoming byte stream; all of them are
 * consumed (a partial frame is kept inside). `now` is in milliseconds.
 * Returns 0, or a sticky session error: KS_ERR_PROTO (the peer broke the
 * protocol: see docs/PROTOCOL.md (mux) section 7), KS_ERR_NOMEM. Frames for a
 * stream that is already closed are dropped silently. */
KS_MUST_CHECK int mux_input(struct mux *m, const uint8_t *data, size_t len, uint64_t now);

/* mux_produce writes whole frames into out, at most room bytes: control
 * frames first, then DATA (newly active streams, then deficit round robin).
 * `now` timestamps a PING sent. Returns the number of bytes written (0 if
 * nothing is due or nothing fits), or the sticky error. */
KS_MUST_CHECK ssize_t mux_produce(struct mux *m, uint8_t *out, size_t room, uint64_t now);

/* mux_want_produce says whether mux_produce has anything to write. */
bool mux_want_produce(const struct mux *m);

/* --- per-stream delivery (step 10) ------------------------------------------ */

/* mux_stream_delivery switches m to per-stream delivery, when both peers
 * agreed to it (TPARAMS_FEAT_STREAM_DELIVERY), before any input or output:
 * DATA_AT replaces DATA both ways, and mux_input_early is accepted. The
 * caller then hands mux_input whole frames in the order they were sent
 * (one KCP message at a time) and mux_produce at most one message's room. */
void mux_stream_delivery(struct mux *m);

/* mux_input_early offers the frames of one message that arrived before an
 * earlier one (a KCP message above a hole; borrowed for the call). If every
 * frame in it is DATA_AT, FIN_AT or WINDOW of a stream this end already has
 * in a state to take it, or (client) the REPLY of a stream it opened, all
 * are applied at once, each DATA_AT at its offset, and 1 is returned: the caller must not feed this
 * message to mux_input again. Otherwise nothing changes and 0 is returned: the message goes through
 * mux_input in order, as it would without per-stream delivery. Returns the sticky session error for
 * a frame that breaks the protocol (offsets outside the grant, overlapping bytes). Not switched on:
 * 0. */
KS_MUST_CHECK int mux_input_early(struct mux *m, const uint8_t *data, size_t len, uint64_t now);

/* --- streams -------------------------------------------------------------- */

/* mux_open_stream (client) opens a stream whose OPEN frame carries the
 * SOCKS5 request req (copied; 1..MUX_REQUEST_MAX bytes). Sets *id. Returns
 * 0, KS_ERR_STATE on a server, KS_ERR_INVAL for a bad length, KS_ERR_LIMIT
 * when max_streams are open or every id is used, KS_ERR_NOMEM, or the
 * session error. On failure nothing changes and no id is used. */
KS_MUST_CHECK int mux_open_stream(struct mux *m, const uint8_t *req, size_t len, uint32_t *id);

/* mux_stream_reply (server) queues the REPLY carrying the SOCKS5 reply rep
 * (copied; 1..MUX_REPLY_MAX bytes), once per stream. Returns 0,
 * KS_ERR_STATE (client, or already replied), KS_ERR_INVAL, KS_ERR_CLOSED
 * (no such stream), KS_ERR_NOMEM. */
KS_MUST_CHECK int mux_stream_reply(struct mux *m, uint32_t id, const uint8_t *rep, size_t len);

/* mux_stream_write copies up to len bytes into the stream's send buffer,
 * as many as both the buffer and the peer's credit allow. A client stream
 * has MUX_EARLY_DATA_MAX bytes of credit from mux_open_stream on, before
 * the REPLY (early data, step 4.4); the REPLY's window replaces it, counted
 * from the stream's first byte. Returns the count
 * accepted (> 0), KS_ERR_FULL when none fit (a WRITABLE event follows when
 * room opens: stop reading the TCP socket until then), KS_ERR_STATE (after
 * mux_stream_shutdown, or a server stream not yet replied), KS_ERR_CLOSED,
 * KS_ERR_NOMEM (nothing accepted), KS_ERR_INVAL for len 0. */
KS_MUST_CHECK ssize_t mux_stream_write(struct mux *m, uint32_t id, const void *buf, size_t len);

/* mux_stream_read moves up to cap received bytes into buf and returns the
 * count (> 0); 0 at the end of the stream (the peer's FIN, all read);
 * KS_ERR_AGAIN when nothing is buffered yet; KS_ERR_CLOSED (no such stream,
 * or reset); KS_ERR_INVAL for cap 0. Reading returns credit to the peer. */
KS_MUST_CHECK ssize_t mux_stream_read(struct mux *m, uint32_t id, void *buf, size_t cap);

/* mux_stream_peek is mux_stream_read without the copy: it sets iov[0] and
 * iov[1] to the received bytes not yet read, in order (the receive ring's
 * one or two contiguous spans; iov[1] has length 0 when the bytes do not
 * wrap), and returns their total (> 0). The views are valid until the next
 * call into m that is not a peek or an accessor. Nothing is taken: credit
 * moves only with mux_stream_consume. Returns 0 at the end of the stream
 * (the peer's FIN, all read: call mux_stream_consume(m, id, 0) to take the
 * end), KS_ERR_AGAIN when nothing is buffered yet, KS_ERR_CLOSED (no such
 * stream, or reset). */
KS_MUST_CHECK ssize_t mux_stream_peek(const struct mux *m, uint32_t id, struct iovec iov[2]);

/* mux_stream_consume takes the first n peeked bytes as mux_stream_read
 * would have (the same credit goes back to the peer for the same sizes);
 * n == 0 after a peek returned 0 takes the end, like a read returning 0
 * (the stream may be freed: the id is then invalid). Returns 0,
 * KS_ERR_INVAL (n more than is buffered, or 0 before the end),
 * KS_ERR_CLOSED. */
KS_MUST_CHECK int mux_stream_consume(struct mux *m, uint32_t id, size_t n);

/* mux_stream_shutdown half-closes the sending direction: FIN follows the
 * buffered data. Returns 0, KS_ERR_STATE (already shut down, or a server
 * stream not yet replied), KS_ERR_CLOSED. */
KS_MUST_CHECK int mux_stream_shutdown(struct mux *m, uint32_t id);

/* mux_stream_reset aborts the stream at once: its buffers are freed, the id
 * is invalid on return, and an RST with reason is sent if the peer knows
 * the stream. Returns 0 or KS_ERR_CLOSED. */
int mux_stream_reset(struct mux *m, uint32_t id, uint8_t reason);

/* mux_stream_room returns how many bytes mux_stream_write would accept now
 * (0 for an unknown stream). */
size_t mux_stream_room(const struct mux *m, uint32_t id);

/* --- liveness ------------------------------------------------------------- */

/* mux_ping queues a PING; its PONG produces a MUX_EV_PONG with the RTT
 * between the mux_produce that sent it and the mux_input that got the
 * answer. A PING already sent and still unanswered is superseded (its PONG
 * will be ignored as stale). Returns 0, or KS_ERR_AGAIN while a PING is
 * queued but not yet produced. */
KS_MUST_CHECK int mux_ping(struct mux *m);

/* --- events --------------------------------------------------------------- */

enum mux_event_type {
	MUX_EV_OPEN,     /* server: a new stream; data/len = SOCKS5 request */
	MUX_EV_REPLY,    /* client: the server's reply; data/len = SOCKS5 reply */
	MUX_EV_READABLE, /* bytes (or the end) can be read; edge-triggered:
	                  * read until KS_ERR_AGAIN or 0 */
	MUX_EV_FIN,      /* the peer will send nothing more; read until 0:
	                  * the stream is freed only once the end was read */
	MUX_EV_WRITABLE, /* after KS_ERR_FULL: room opened; write again */
	MUX_EV_RESET,    /* the peer aborted (reason); the id is invalid now */
	MUX_EV_PONG,     /* id 0; rtt_ms is the measured round trip */
};

struct mux_event {
	enum mux_event_type type;
	uint32_t id;
	uint8_t reason;
	uint64_t rtt_ms;
	const uint8_t *data; /* view owned by the stream: OPEN's until
	                      * mux_stream_reply, REPLY's until the stream
	                      * is freed */
	size_t len;
};

/* mux_next_event takes the next event. Events of one stream come in the
 * order OPEN/REPLY, READABLE, FIN, and WRITABLE whenever room opens; a
 * RESET replaces the stream's undelivered events. Returns 0 with *ev set,
 * or KS_ERR_AGAIN when there is none. */
KS_MUST_CHECK int mux_next_event(struct mux *m, struct mux_event *ev);

/* --- accounting ----------------------------------------------------------- */

/* mux_mem_bytes is every byte m holds on the heap, streams included. */
size_t mux_mem_bytes(const struct mux *m);

/* mux_stream_count is the number of streams m holds (not yet freed). */
size_t mux_stream_count(const struct mux *m);

#endif
