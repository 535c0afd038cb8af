/* server.h - the server's sessions: the session table (sessions.h) plus
 * one struct session per established session, one deadline for all of
 * them, and one event queue (docs/PROTOCOL.md (session), section 5).
 *
 * Every datagram the server receives goes to server_on_datagram: the table
 * authenticates it (or answers a handshake) and the session it belongs to
 * takes the payload. Datagrams go out through the output callback with
 * the peer's current address (it moves only by the table's roaming rule).
 * A session ends when it has been idle for its idle timeout, when its KCP
 * link dies, when its peer breaks the protocol, when a newer session of
 * the same user supersedes it (the table's per-user cap, or
 * one_session_per_user), or by server_close; its streams are reset and a
 * SESSION_EV_LOST is delivered for it.
 *
 * The deadline is the earliest of all sessions' deadlines, kept in a binary
 * heap: O(log n) per touched session, O(1) to read. Idle sessions add no
 * wakeups before their next real deadline. Sans-I/O like session.h; not
 * thread-safe. The output callback must not call back into the server.
 */
#ifndef KCPSOCKS_SERVER_H
#define KCPSOCKS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"
#include "core/mux.h"
#include "core/session.h"
#include "core/sessions.h"

struct server_config {
	struct sessions_config table; /* copied; its key and users stay borrowed */
	const struct mux_config *mux; /* NULL: defaults; copied */
	struct transport_local local; /* this server's own KCP policy for every
	                                 session (transport_local_of of its
	                                 profile); zero: engine defaults */
	const struct rng_source *rng; /* borrowed, outlives the server */
	session_output_fn output;     /* required */
	void *output_user;            /* borrowed */
	session_slot_fn slot;         /* optional, for every session (session.h) */
	session_datagram_fn datagram; /* UDP datagram frames of every session; NULL: dropped */
	void *datagram_user;          /* borrowed */
	/* true: a user's new session closes every older session of that user
	 * (a restarted client frees its old streams at once). false: only the
	 * table's cap of SESSIONS_PER_USER_MAX supersedes, and a restarted
	 * client's old session ends by idle expiry. Use true only when each
	 * user runs one client. The older sessions close when the new one
	 * carries its first payload, so a handshake a client sent only to
	 * probe during an outage does not end the session it still uses. */
	bool one_session_per_user;
};

struct server_event {
	uint64_t sid;
	struct session *session; /* borrowed; NULL for SESSION_EV_LOST */
	void *owner;             /* the daemon's pointer (server_set_owner), LOST included */
	struct session_event ev;
};

struct server_stats {
	struct sessions_counters table; /* the table's counters */
	uint64_t dropped;               /* datagrams refused, any reason */
	uint64_t created;               /* sessions established */
	uint64_t lost[SESSION_LOST_REASONS];
	size_t live; /* sessions established now */
};

struct server;

/* server_new makes a server. Returns 0 with *out set (release with
 * server_free), KS_ERR_INVAL (bad configuration), KS_ERR_NOMEM. */
KS_MUST_CHECK int server_new(struct server **out, const struct server_config *cfg);

/* server_free frees every session (no events, no output) and the table,
 * wiping keys. NULL is a no-op. */
void server_free(struct server *srv);

/* server_on_datagram handles one datagram d from address from at now (ms,
 * monotonic) and unix time now_unix_ms. A handshake init that
 * authenticates makes a new session (SESSION_EV_ESTABLISHED) and sends its
 * response; a datagram of a session is given to it. Returns 0, or the
 * table's refusal code (sessions_on_datagram: nothing was sent), or
 * KS_ERR_UNSUPPORTED (an authenticated init was refused with a reply, see
 * server_table()->hs.last_refusal), or KS_ERR_NOMEM (a new session could not be made; the handshake
 * is dropped unanswered and the client retries). */
int server_on_datagram(struct server *srv, const struct sessions_addr *from, const uint8_t *d,
                       size_t len, uint64_t now, uint64_t now_unix_ms);

/* server_on_timer runs every session whose deadline is at or before now.
 * A session that took datagrams owes their ACKs (docs/PROTOCOL.md, session E6) and is due
 * at once until a session_pump or session_flush sends them: a daemon ends
 * its batch with server_flush below, in the same loop iteration. */
void server_on_timer(struct server *srv, uint64_t now);

/* server_flush ends a batch: every session that took a payload since the
 * last server_flush (kept on a list, O(those sessions)) sends what it
 * owes now (session_flush: the ACKs, and what they let out); no other
 * session runs. Call it before the loop sleeps, after the pumps; then arm
 * the timer at server_next_deadline (sessions whose KCP timers are due
 * run in server_on_timer). */
void server_flush(struct server *srv, uint64_t now);

/* server_next_deadline: when server_on_timer must run next (KS_NEVER:
 * no session has anything scheduled). O(1). */
uint64_t server_next_deadline(const struct server *srv);

/* server_next_event takes the next event of any session: ESTABLISHED for a
 * new session, its stream events (MUX_EV_OPEN carries the SOCKS5 request),
 * LOST when it ended. Events of one session come in order. Returns 0 with
 * *ev set, or KS_ERR_AGAIN. A session's struct stays valid until the
 * server_next_event call after the one that delivered its LOST. */
KS_MUST_CHECK int server_next_event(struct server *srv, struct server_event *ev);

/* server_session returns the established session sid (borrowed), or
 * NULL. Use session_mux and session_pump on it; session_pump re-files its
 * deadline here. */
struct session *server_session(struct server *srv, uint64_t sid);

/* server_set_owner hangs the daemon's object on session sid: every later
 * event of it carries it (server_event.owner), so the daemon needs no
 * table of its own. Returns 0 or KS_ERR_CLOSED. */
int server_set_owner(struct server *srv, uint64_t sid, void *owner);

/* server_owner returns what server_set_owner hung on live session sid, or
 * NULL (no such session, or none set): the table's one lookup. */
void *server_owner(const struct server *srv, uint64_t sid);

/* server_close ends session sid now (SESSION_LOST_CLOSED; streams reset,
 * no datagram sent). Returns 0 or KS_ERR_CLOSED. */
int server_close(struct server *srv, uint64_t sid);

/* server_stats fills *st. server_mem_bytes sums every session's
 * session_mem_bytes plus the server's own arrays (not the table). O(n). */
void server_stats(const struct server *srv, struct server_stats *st);
size_t server_mem_bytes(const struct server *srv);

/* server_check verifies the collection's invariants (heap order and
 * positions, slots against the table, closed sessions only on the event
 * queue, every session's session_check). O(n); for tests and fuzzing. */
bool server_check(const struct server *srv);

/* server_table gives read access to the session table (addresses, users). */
const struct sessions *server_table(const struct server *srv);

/* server_set_users swaps in users on a reload (sessions_set_users): close
 * the sessions of removed users first (server_close). */
KS_MUST_CHECK int server_set_users(struct server *srv, const struct keys_user *users,
                                   size_t n_users, const uint32_t *map, uint64_t now_unix_ms);

#endif
