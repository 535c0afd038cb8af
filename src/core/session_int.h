/* session_int.h - inside struct session: what session.c (the stack both
 * roles share) and dial.c (the client's own behaviour) both see. Not a
 * public contract: only session.c, dial.c and the tests that include
 * session.c read it.
 *
 * One struct session is the same object in both roles: it owns its
 * envelope, KCP engine and mux, and seals its own output. A role differs
 * only in its struct session_ops (hooks called at fixed points of the
 * shared code) and, for a client, the struct dial it hangs off s->dial
 * (handshake retries and backoff, restart probing, keepalive and the
 * liveness clocks: dial.c). Shared code never asks which role it runs.
 */
#ifndef KCPSOCKS_SESSION_INT_H
#define KCPSOCKS_SESSION_INT_H

#include "core/envelope.h"
#include "core/feed.h"
#include "core/handshake.h"
#include "core/session.h"

/* Restart detection (L3): silent server -> a new handshake goes out while
 * the old session stays -> the answer is held while the old session gets a
 * last chance to speak -> the new session replaces it. */
enum probe {
	PROBE_NONE,
	PROBE_HANDSHAKE, /* inits out, waiting for a response */
	PROBE_CONFIRM,   /* response held until switch_at */
};

/* The client's own part (dial.c): what a handshake needs, kept for the
 * next one, and the liveness clocks of an established session. */
struct dial {
	struct session_scratch scratch; /* the client's own */
	uint8_t spub[KEYS_LEN];
	bool has_instance; /* every init carries instance (secure 6.3) */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
	uint8_t hdr[KEYS_LEN]; /* the server's session-id mask key */
	struct keys_user user; /* secret: wiped on free */
	struct transport_params proposal;
	struct handshake_client hs;
	uint32_t silent_ms, hs_timeout_ms, dead_path_ms;
	uint64_t hs_start, hs_next, retry_at;
	uint32_t hs_rto, retry_delay;

	uint64_t last_ka;
	uint64_t last_stall;             /* the last stall probe (L7) */
	uint32_t stall_gap;              /* ms from max(last_rx, last_stall) to the next */
	uint64_t stall_rx;               /* rx_stream at the last probe */
	uint64_t outstanding_since;      /* KS_NEVER: nothing unacknowledged */
	uint64_t inflight_since;         /* L6: KS_NEVER: nothing sent unacknowledged */
	enum probe probe;                /* restart detection phase (L3) */
	uint64_t switch_at;              /* PROBE_CONFIRM: adopt `pending` at this time */
	uint64_t last_init_at;           /* when the last handshake init went out */
	uint64_t hs_rtt;                 /* C3: last_init_at to its response (E1) */
	uint64_t hint_at;                /* the last probe an ICMP hint started */
	bool hinted;                     /* hint_at is set */
	struct handshake_result pending; /* PROBE_CONFIRM: the new session (secret) */
};

/* A role's behaviour. A NULL hook does nothing (deadline: adds none). */
struct session_ops {
	enum session_role role;
	enum mux_role mux_role;
	bool server_side; /* transport_kcp's server argument */
	/* The session was just established (KCP and mux exist). */
	void (*established)(struct session *s, uint64_t now);
	/* The session ended: KCP and mux are gone, the envelope wiped. Sets
	 * the state the session goes to. */
	void (*lost)(struct session *s, enum session_lost_reason reason);
	/* The role's deadline, given the shared one (KS_NEVER when not
	 * established). */
	uint64_t (*deadline)(const struct session *s, uint64_t now, uint64_t shared);
	/* Timer work of an established session after KCP's update, before
	 * the pump; may end the session. */
	void (*liveness)(struct session *s, uint64_t now, uint64_t now_unix_ms);
	/* Timer work in every state, after the established work. */
	void (*timer)(struct session *s, uint64_t now, uint64_t now_unix_ms);
	/* After input and pumps: envelope limits (L4). */
	void (*rekey)(struct session *s, uint64_t now);
	/* End of every entry point while established. */
	void (*track)(struct session *s, uint64_t now);
	/* The role's invariants (session_check). */
	bool (*check)(const struct session *s);
	/* Free what the role added (s->dial). */
	void (*release)(struct session *s);
};

struct session {
	const struct session_ops *ops;
	struct dial *dial; /* client: owned; server: NULL */
	enum session_state state;
	const struct rng_source *rng; /* borrowed */
	session_output_fn output;
	void *output_user;               /* borrowed */
	session_slot_fn slot;            /* may be NULL */
	struct mux_config mux_cfg;       /* copied */
	struct transport_local local;    /* this end's KCP policy, copied */
	struct session_scratch *scratch; /* the client's own (in its dial), or the server's */
	size_t own_bytes;                /* heap the role holds besides this struct */
	uint64_t now;                    /* of the current entry point */
	uint64_t deadline;

	/* The keys of the session (both roles own theirs; a server's table
	 * borrows it to open datagrams, sessions_attach). */
	struct envelope env;
	const struct sessions_addr *peer; /* server: the table's proven path for
	                                     the session (a view); client: NULL */

	/* server: re-filed in its server after a pump */
	session_changed_fn changed;
	void *changed_ctx; /* borrowed */

	/* either role: UDP datagram frames (UDP U3) */
	session_datagram_fn datagram;
	void *datagram_user; /* borrowed */

	/* established */
	uint64_t sid;
	uint32_t conv;
	struct transport_params params;
	struct kcp *kcp;  /* owned */
	struct mux *mux;  /* owned */
	struct feed feed; /* E5: what KCP may hold (issue 19) */
	uint32_t mss;     /* KCP payload bytes per segment */
	uint64_t last_rx, last_tx;
	uint64_t rx_stream; /* bytes KCP delivered */
	bool flush_owed;    /* E6: KCP holds ACKs or data for this batch */

	/* undelivered session-level events */
	bool ev_established, ev_failed, ev_lost;
	enum session_lost_reason lost_reason;

	struct session_stats st; /* counters; gauges filled by session_stats */
};

/* Saturating a + b for deadlines. */
static inline uint64_t session_after(uint64_t a, uint64_t b)
{
	return a > KS_NEVER - b ? KS_NEVER : a + b;
}

/* The shared stack, for dial.c (session.c). */
void session_emit(struct session *s, const uint8_t *d, size_t len);
int session_seal_out(struct session *s, const uint8_t *payload, size_t len);
int session_establish(struct session *s, uint64_t sid, uint32_t conv,
                      const struct transport_params *p, uint64_t now);
void session_teardown(struct session *s, enum session_lost_reason reason);
void session_lose(struct session *s, enum session_lost_reason reason);
void session_finish(struct session *s, uint64_t now);
void session_do_pump(struct session *s, uint64_t now);
int session_input(struct session *s, const uint8_t *p, size_t len, uint64_t now);
int session_mux_config_set(struct mux_config *dst, const struct mux_config *src);

#endif
