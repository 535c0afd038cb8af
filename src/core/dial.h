/* dial.h - the client end of a session: it dials its server. A client
 * session is a struct session (session.h) made here: it runs the
 * handshake itself (init, retransmit with backoff, timeout), then builds
 * the KCP engine and the mux from the agreed parameters, keeps the path
 * alive with PINGs, notices a dead or restarted server, and handshakes
 * again on its own (with backoff) after a loss (docs/PROTOCOL.md
 * (session) C1-C5, L2-L7). Everything else (pump, flush, events, close,
 * accessors) is session.h's, the same for both roles.
 *
 * Calling pattern: session.h's, with session_on_datagram for each
 * datagram from the server. Sans-I/O like session.h.
 */
#ifndef KCPSOCKS_DIAL_H
#define KCPSOCKS_DIAL_H

#include "core/session.h"

struct session_client_config {
	const uint8_t *server_pub;        /* KEYS_LEN bytes, copied */
	const struct keys_user *user;     /* name and PSK, copied */
	struct transport_params proposal; /* from the profile; must be valid */
	const struct mux_config *mux;     /* NULL: defaults; copied */
	const struct rng_source *rng;     /* borrowed, outlives the session */
	session_output_fn output;         /* required */
	void *output_user;                /* borrowed, passed to output and slot */
	session_slot_fn slot;             /* NULL: seal into the scratch, output copies */
	uint32_t silent_ms;               /* restart detection, 0: SESSION_SILENT_MS_DEFAULT */
	uint32_t hs_timeout_ms;           /* one handshake attempt, 0: SESSION_HS_TIMEOUT_MS */
	uint32_t dead_path_ms;            /* L6, 0: SESSION_DEAD_PATH_MS_DEFAULT */
	struct transport_local local;     /* this end's KCP policy (transport.h);
	                                     zero: engine defaults */
	const uint8_t *instance;          /* HANDSHAKE_INSTANCE_LEN bytes, copied: this client
	                                     process's id in every init (secure 6.3); NULL: none */
	session_datagram_fn datagram;     /* NULL: datagram frames are dropped */
	void *datagram_user;              /* borrowed, passed to datagram */
};

/* session_client_new makes a client session at now. It sends nothing yet:
 * its deadline is now, and the first session_on_timer sends the init.
 * Returns 0 with *out set (release with session_free), KS_ERR_INVAL (bad
 * config: proposal not valid, bad user, missing output), KS_ERR_NOMEM. */
KS_MUST_CHECK int session_client_new(struct session **out, const struct session_client_config *cfg,
                                     uint64_t now);

/* session_on_datagram (client) handles one datagram received from the
 * server: a handshake response while handshaking, else an envelope that
 * is opened, fed to KCP, and whose stream bytes go to the mux; its ACK
 * waits for the batch's flush (session_pump / session_flush). Returns 0
 * when it authenticated; otherwise nothing changed but a counter, nothing
 * is sent, and the code says why: KS_ERR_AUTH, KS_ERR_PROTO, KS_ERR_REPLAY,
 * KS_ERR_LIMIT (envelope_open / handshake_client_read_response), KS_ERR_STATE
 * (server role: use server_on_datagram). now_unix_ms is wall-clock ms. */
int session_on_datagram(struct session *s, const uint8_t *d, size_t len, uint64_t now,
                        uint64_t now_unix_ms);

/* session_on_unreachable (client): the network said the server's address
 * refused a datagram (ICMP port unreachable, ECONNREFUSED). Such a notice
 * is not authenticated (anyone on the path can forge one), so it kills
 * nothing: an established session starts its restart probe (L3) now
 * instead of after silent_ms, which brings a restarted server back
 * sooner; at most one such probe per silent_ms. Dead-path detection (L6)
 * still needs dead_path_ms of silence. */
void session_on_unreachable(struct session *s, uint64_t now);

/* session_on_demand (client): a stream is wanted. A client backing off
 * after failed attempts starts the next attempt now (C4); one handshaking
 * sends its next init now when the last one is at least SESSION_HS_RTO_MS
 * old. So a server that came back is found when an application asks, not
 * at the end of a backoff of up to SESSION_RETRY_MAX_MS. No-op when
 * established. */
void session_on_demand(struct session *s, uint64_t now);

/* session_handshake_now (client): the server's address changed (a lookup
 * answered, a failover re-pointed the socket), so the init in flight went
 * to the old address. A client handshaking or backing off starts a fresh
 * attempt (new timeout, first retransmission interval) and outputs its
 * init within this call, not at the next retransmission (up to
 * SESSION_HS_RTO_MAX_MS later). Call it once per address change. No-op
 * when established. */
void session_handshake_now(struct session *s, uint64_t now, uint64_t now_unix_ms);

#endif
