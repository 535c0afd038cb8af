/* session.h - one peer's stack: envelope -> handshake -> KCP -> mux, with one
 * deadline (docs/PROTOCOL.md (session); "step N" comments in session.c refer
 * to its numbered steps).
 *
 * A struct session is either end of one KCP session, the same object in
 * both roles: it owns its envelope (keys), KCP engine and mux, and seals
 * its own output.
 *   - client role (kcpsocks-local, one per server): made by
 *     session_client_new (dial.h), which adds the client's own behaviour:
 *     the handshake with retries and backoff, keepalive, restart probing
 *     and dead-path detection.
 *   - server role: made by struct server (server.h) when the session table
 *     accepts a handshake; the session takes its keys from the table, and
 *     the table borrows them back to open the session's datagrams (one
 *     lookup per datagram, by session id).
 *
 * Sans-I/O: bytes and `now` (uint64_t ms, monotonic, never decreasing) in;
 * sealed datagrams out through the output callback; events out through
 * session_next_event; session_next_deadline says when session_on_timer
 * must run next. An idle session has no deadline before its next keepalive
 * (client) or idle expiry. Nothing here reads a clock or a random source of
 * its own: randomness comes from the injected rng_source.
 *
 * Calling pattern (the daemon, one loop iteration):
 *   session_on_datagram(...) for each datagram received (a batch), or
 *   session_on_timer(...) when now >= session_next_deadline();
 *   drain session_next_event() (stream events included);
 *   write to / read from streams through session_mux(), then session_pump();
 *   before sleeping: session_flush() (the batch's ACKs, if no pump sent
 *   them), then re-arm the timer from session_next_deadline().
 *
 * Batching (docs/PROTOCOL.md (session) E6): received datagrams are
 * acknowledged once per batch, not one by one. session_on_datagram leaves
 * the ACKs in KCP; the next session_pump or session_flush sends them
 * together with whatever data is ready, in as few datagrams as fit. Until
 * then session_next_deadline() is `now`, so a daemon that only follows the
 * deadline still sends them before it sleeps (one loop turn later).
 *
 * Re-entrancy: the output callback must not call any session_*, server_*,
 * kcp_* or mux_* function of this session; every other function may be
 * called at any time, also while handling an event.
 */
#ifndef KCPSOCKS_SESSION_H
#define KCPSOCKS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/deadline.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/rng.h"
#include "core/kcp.h"
#include "core/keys.h"
#include "core/mux.h"
#include "core/sessions.h"
#include "core/tparams.h"
#include "core/transport.h"

enum session_role { SESSION_CLIENT, SESSION_SERVER };

enum session_state {
	SESSION_HANDSHAKING, /* client: an init is out, waiting for the response */
	SESSION_BACKOFF,     /* client: the last attempt timed out; next one later */
	SESSION_ESTABLISHED, /* keys agreed; KCP and mux exist */
	SESSION_CLOSED,      /* server: ended; only its LOST event is left */
};

/* Why a session ended (SESSION_EV_LOST). */
enum session_lost_reason {
	SESSION_LOST_IDLE,        /* nothing authenticated for idle_timeout_ms */
	SESSION_LOST_SILENT,      /* client: the server went silent with data
	                             outstanding and answered a new handshake
	                             while the old session stayed silent (it
	                             restarted); the new session follows at once */
	SESSION_LOST_DEAD,        /* KCP dead link: a segment sent dead_link times */
	SESSION_LOST_PROTO,       /* the peer broke the KCP stream or mux protocol */
	SESSION_LOST_NOMEM,       /* an allocation failed */
	SESSION_LOST_REKEY,       /* client: envelope limits reached, new handshake */
	SESSION_LOST_SUPERSEDED,  /* server: a newer session of the user replaced it */
	SESSION_LOST_CLOSED,      /* server: closed by server_close */
	SESSION_LOST_NO_ANSWER,   /* client: dead path (L6): something unanswered
	                             and nothing authenticated for dead_path_ms */
	SESSION_LOST_PEER_CLOSED, /* the peer sent an authenticated close (L8) */
	SESSION_LOST_REASONS
};

enum session_event_type {
	SESSION_EV_ESTABLISHED,      /* client: handshake done, session_mux() is a
	                                fresh mux; server: a new session */
	SESSION_EV_HANDSHAKE_FAILED, /* client: an attempt got no valid response
	                                within the handshake timeout; the next
	                                attempt follows with backoff */
	SESSION_EV_LOST,             /* the session ended (reason). Every stream
	                                of it is reset: their ids are invalid,
	                                treat each as a MUX_EV_RESET. The client
	                                handshakes again by itself. */
	SESSION_EV_STREAM,           /* .stream holds a mux event */
};

struct session_event {
	enum session_event_type type;
	enum session_lost_reason reason; /* LOST */
	struct mux_event stream;         /* STREAM: as from mux_next_event */
};

/* output gets each sealed datagram to send (a view valid during the call).
 * to: NULL for a client (send to its server), the peer's current address
 * for a server session (a view valid during the call). Return 0, or a
 * negative code when the datagram was dropped (counted; KCP retransmits).
 * Must not call back into the session. */
typedef int (*session_output_fn)(const uint8_t *d, size_t len, const struct sessions_addr *to,
                                 void *user);

/* slot (optional) lends the buffer the next KCP datagram is sealed into,
 * so the seal lands where the datagram leaves from (a UDP send slot) and
 * is not copied again: *cap is set to its size. The next output call
 * hands that same pointer back as d; a seal that fails leaves it unused.
 * NULL (or a buffer smaller than ENVELOPE_MAX_DATAGRAM): the seal goes to
 * the session's scratch and output copies it. Must not call back into the
 * session. */
typedef uint8_t *(*session_slot_fn)(size_t *cap, void *user);

/* datagram gets the body of each UDP datagram frame the peer sent
 * (docs/PROTOCOL.md (UDP) U3): the session's id, the association id and
 * the SOCKS5 UDP header with its data, unchecked (a view valid during
 * the call). Only with TPARAMS_FEAT_DATAGRAM agreed; without a callback
 * frames are dropped and counted. Must not call back into the session
 * except session_send_datagram of another session. */
typedef void (*session_datagram_fn)(uint64_t sid, uint32_t id, const uint8_t *p, size_t len,
                                    void *user);

struct session_stats {
	struct kcp_stats kcp; /* the current KCP engine (zero before the first) */
	uint64_t dgram_in;    /* datagrams that authenticated */
	uint64_t dgram_out;   /* datagrams handed to output */
	uint64_t bytes_in, bytes_out;
	uint64_t dropped;      /* datagrams that did not open, or a bad response */
	uint64_t output_drops; /* output returned < 0, or sealing failed */
	uint64_t hs_inits;     /* client: handshake inits sent */
	uint64_t hs_ok;        /* client: handshakes completed */
	uint64_t hs_failed;    /* client: attempts that timed out */
	uint64_t keepalives;   /* PINGs sent for keepalive */
	uint64_t rekeys;       /* key epochs of the current envelope, either side's (8.1) */
	uint64_t stall_probes; /* client: PINGs sent because open streams heard nothing (L7) */
	uint64_t closes_sent;  /* close datagrams sent (L8) */
	uint64_t udp_in;       /* UDP datagram frames received and handed up (U3) */
	uint64_t udp_out;      /* UDP datagram frames sent (U2) */
	uint64_t udp_dropped;  /* frames received but malformed, not agreed or unhandled */
	uint64_t lost[SESSION_LOST_REASONS];
	uint64_t rtt_ms;  /* last PING round trip, 0 before the first */
	size_t streams;   /* streams the mux holds now */
	size_t mem_bytes; /* session_mem_bytes */
};

struct session;

/* session_free releases the session, its KCP engine, mux and streams, and
 * wipes its keys. No event or output is produced. NULL is a no-op. */
void session_free(struct session *s);

/* session_on_timer does what is due at now: handshake (re)transmission
 * and timeout, KCP retransmissions and flushes, keepalive PING, idle
 * expiry, restart detection (a probing handshake while the old session
 * stays; docs/PROTOCOL.md (session) L3). A lost session raises
 * SESSION_EV_LOST and a client handshakes again. Calling it early is
 * harmless. */
void session_on_timer(struct session *s, uint64_t now, uint64_t now_unix_ms);

/* session_close (either role) ends an established session on purpose: one
 * close datagram (L8: authenticated, replay-protected, never answered) is
 * output, then the session is torn down like a loss (SESSION_LOST_CLOSED;
 * a server session goes to CLOSED, a client to BACKOFF with no retry
 * scheduled before session_on_demand). No-op when not established. */
void session_close(struct session *s, uint64_t now);

/* session_send_datagram (either role) sends one UDP datagram frame
 * (docs/PROTOCOL.md (UDP) U2) for association id at once, in an envelope
 * of its own, beside KCP: never retransmitted, never queued behind stream
 * data. p holds the SOCKS5 UDP header and data (n bytes, checked by the
 * caller). Returns 0 when it went to output, KS_ERR_STATE (not
 * established), KS_ERR_UNSUPPORTED (TPARAMS_FEAT_DATAGRAM not agreed),
 * KS_ERR_TOOBIG (n above udpassoc_max_frame of the session's mtu), or the
 * sealer's or output's error (counted in output_drops). */
KS_MUST_CHECK int session_send_datagram(struct session *s, uint32_t id, const uint8_t *p, size_t n,
                                        uint64_t now);

/* session_next_deadline returns when session_on_timer must run next, as of
 * the last call into the session (KS_NEVER: not before the next
 * datagram). Recomputed by every entry point; O(1). */
uint64_t session_next_deadline(const struct session *s);

/* session_pump moves mux output into KCP (as much as KCP takes now) and
 * flushes it, with the ACKs still owed for datagrams received since the
 * last flush. Call it after writing to, reading from, shutting down or
 * resetting streams through session_mux(). A fatal mux or KCP error ends
 * the session (SESSION_EV_LOST). */
void session_pump(struct session *s, uint64_t now);

/* session_flush ends a batch: it outputs what KCP holds for the datagrams
 * received since the last pump or flush (ACKs, window updates, data their
 * ACKs let out), in as few datagrams as fit. Nothing when nothing is owed.
 * Call it before the loop sleeps, after the pumps; calling it more often
 * only splits datagrams. Works for both roles (a server session is
 * re-filed in its server like after session_pump). */
void session_flush(struct session *s, uint64_t now);

/* session_mux returns the session's mux, or NULL while not established.
 * Borrowed: a loss frees it inside session_on_datagram, session_on_timer,
 * session_pump or server_* calls, so fetch it again after any of them
 * instead of keeping the pointer (it is NULL or a new mux then). Use it
 * for mux_open_stream, mux_stream_* and mux_ping, never for mux_input,
 * mux_produce or mux_next_event (the session does those). */
struct mux *session_mux(struct session *s);

/* session_envelope returns the session's envelope while established (its
 * epoch and rekey counters; tests lower its rekey thresholds), else NULL.
 * Either role owns its envelope. */
struct envelope *session_envelope(struct session *s);

/* session_next_event takes the next event: first ended/established
 * notices, then stream events of the current mux (MUX_EV_PONG is consumed
 * here for the RTT). A LOST is delivered before the ESTABLISHED of the
 * next session; a LOST clears an undelivered ESTABLISHED of the session it
 * ends. Returns 0 with *ev set, or KS_ERR_AGAIN when there is none. */
KS_MUST_CHECK int session_next_event(struct session *s, struct session_event *ev);

/* session_lost_label names a reason as a metric label value (lower case,
 * no spaces: "dead_link"); session_lost_text says it in words for a log
 * line, as seen from role ("closed by the server" on a client). Both are
 * static strings; a reason out of range gives "unknown". */
const char *session_lost_label(enum session_lost_reason r);
const char *session_lost_text(enum session_lost_reason r, enum session_role role);

/* Accessors. session_params returns the agreed parameters (NULL while not
 * established). session_sid returns the session id (0 while not
 * established). */
enum session_role session_role(const struct session *s);
enum session_state session_state(const struct session *s);
const struct transport_params *session_params(const struct session *s);
uint64_t session_sid(const struct session *s);

/* session_stats fills *st; session_mem_bytes is every byte the session
 * holds on the heap (struct, KCP, mux), borrowed scratch excluded. */
void session_stats(const struct session *s, struct session_stats *st);
size_t session_mem_bytes(const struct session *s);

/* session_check verifies the session's invariants (state against the
 * objects it holds, KCP's own kcp_check, the cached deadline); for tests
 * and fuzzing. Returns true when they hold. */
bool session_check(const struct session *s);

/* --- for struct server (server.c) ---------------------------------------- */

/* Scratch buffers one session uses inside a call. A client owns its own;
 * server sessions share their server's (one call at a time). */
struct session_scratch {
	uint8_t seal[ENVELOPE_MAX_DATAGRAM]; /* sealed output datagram */
	uint8_t open[ENVELOPE_MAX_DATAGRAM]; /* opened input payload */
	uint8_t pump[SESSION_PUMP_CHUNK];    /* mux <-> KCP bytes */
};

/* Called at the end of session_pump on a server session so its server
 * can re-file its deadline and poll its events. */
typedef void (*session_changed_fn)(struct session *s, void *ctx);

struct session_server_config {
	struct sessions *table;          /* borrowed: gives the keys and the address */
	uint64_t sid;                    /* a live session of table, just made (NEW) */
	void *owner;                     /* hung on the table slot (sessions_attach) */
	const struct mux_config *mux;    /* NULL: defaults; copied */
	struct transport_local local;    /* the server's own KCP policy (its
	                                    profile, never the client's); zero:
	                                    engine defaults */
	const struct rng_source *rng;    /* borrowed */
	struct session_scratch *scratch; /* borrowed */
	session_output_fn output;
	void *output_user;
	session_slot_fn slot; /* NULL: seal into the scratch, output copies */
	session_changed_fn changed;
	void *changed_ctx;
	session_datagram_fn datagram; /* NULL: datagram frames are dropped */
	void *datagram_user;
};

/* session_server_new makes the server end of table session sid (agreed
 * parameters and conv from sessions_get), established at now, with an
 * undelivered SESSION_EV_ESTABLISHED. It takes the session's envelope
 * from the table (sessions_attach: the keys live in the session from
 * then on, the table borrows them to open datagrams) and sends to the
 * slot's peer address. Returns 0, KS_ERR_CLOSED (no such sid),
 * KS_ERR_STATE (sid's envelope is not the one staged), KS_ERR_INVAL,
 * KS_ERR_NOMEM. */
KS_MUST_CHECK int session_server_new(struct session **out, const struct session_server_config *cfg,
                                     uint64_t now);

/* session_on_payload (server) takes the opened payload of one datagram of
 * this session (the table authenticated it) at now: into KCP, stream
 * bytes into the mux, mux output into KCP; the flush is owed (E6). Returns 0, or KCP's KS_ERR_PROTO
 * (the payload was dropped, counted). */
int session_on_payload(struct session *s, const uint8_t *p, size_t len, uint64_t now);

/* session_on_peer_moved (server): the table proved the peer at a new
 * address (secure 6.2). What KCP has in flight went to the old one: it is
 * resent now, without the old path's backoff (kcp_path_changed). */
void session_on_peer_moved(struct session *s, uint64_t now);

/* session_seed_rtt gives an established session's KCP the handshake's
 * round trip rtt (ms) as its first RTT estimate (kcp_seed_rtt, E1): the
 * client's init to response (exact), or (server) the response to the
 * first datagram that confirms it (bound: the client may send nothing
 * for a while). Before anything is sent; no-op when not established. */
void session_seed_rtt(struct session *s, uint64_t rtt, bool bound);

/* session_end ends an established session for reason, like a loss: its
 * KCP engine, mux and streams are freed, its keys wiped, a
 * SESSION_EV_LOST is queued, and the role goes on (a server session
 * becomes CLOSED). No-op when not established. */
void session_end(struct session *s, enum session_lost_reason reason);

/* session_last_lost returns the reason the session last ended (meaningful
 * once it has ended at least once). */
enum session_lost_reason session_last_lost(const struct session *s);

/* The client's own entry points (handshake, restart probing, backoff). */
#include "core/dial.h"

#endif
