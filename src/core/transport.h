/* transport.h - what a profile becomes in each engine: the one mapping
 * from a struct profile (profile.h) to the handshake's transport
 * parameters, the server's accepted ranges, the KCP engine configuration
 * and the mux configuration. Both daemons, the tools and the tests call
 * these functions; nothing else maps a profile.
 *
 * There is one default set: the built-in profile `default`
 * (profile_default()). tparams_default() is transport_proposal() of it;
 * mux_config_default() and the profile table take their mux values from the
 * same limits.h names (MUX_WINDOW_DEFAULT, MUX_BUDGET_DEFAULT,
 * MUX_STREAMS_DEFAULT). kcp_config_default() is the engine's own baseline
 * (the reference KCP's values, for kcpcat and the engine's tests): a
 * tunnel's engine never relies on it, transport_kcp() sets every field the
 * profile has.
 *
 * A profile's fields fall into three groups (docs/CONFIG.md, docs/PROTOCOL.md
 * E1):
 *   - carried by the handshake and agreed (the server clamps the client's
 *     proposal into its ranges; both ends then use the answer): mtu,
 *     padding, interval_ms, nodelay, resend, nc, snd_wnd, rcv_wnd,
 *     keepalive_ms, idle_timeout_ms;
 *   - local to each end, never on the wire (struct transport_local):
 *     min_rto_ms, dead_link, dup_thin. Each end applies its own profile:
 *     the client its configured one, the server its configured one, never
 *     the profile the client proposed;
 *   - local mux limits: stream_window, session_window, max_streams (each
 *     end its own), and fast_open and dead_path_ms (the client daemon alone
 *     reads them; dead_path_ms goes into its session's configuration).
 *
 * Pure: no allocation, no I/O.
 */
#ifndef KCPSOCKS_TRANSPORT_H
#define KCPSOCKS_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/kcp.h"
#include "core/mux.h"
#include "core/profile.h"
#include "core/tparams.h"

/* What one end decides alone for its KCP engine (not carried by the
 * handshake). Zero in a field means the engine's default: min_rto by
 * nodelay (KCP_RTO_MIN_NORMAL / KCP_RTO_MIN_NODELAY), dead_link
 * KCP_DEAD_LINK_DEFAULT, no thin-flight copies. */
struct transport_local {
	uint32_t min_rto_ms; /* KCP lower bound on the RTO; 0: by nodelay */
	uint32_t dead_link;  /* transmissions of one segment before dead; 0: default */
	bool dup_thin;       /* K11: send thin flights twice (this end's sends) */
};

/* transport_profile_id returns the index of the built-in profile named
 * name (profile_at), or 0 (`default`) when there is none or name is NULL.
 * The id travels in the handshake for logs and the server's accepted-list
 * check; it selects no behaviour. */
uint8_t transport_profile_id(const char *name);

/* transport_proposal maps p onto the transport parameters a client
 * proposes (and a server uses as its default answer). Every field is
 * carried as it is (nodelay 2 stays 2); values outside the wire's hard
 * range (limits.h TPARAMS_*) are clamped into it, so out is always valid
 * (tparams_valid). Padding: the bucket when pad_bucket is set, else random
 * 0..pad_max, else none (the wire carries one mode, so pad_max counts only
 * while pad_bucket is 0). */
void transport_proposal(const struct profile *p, struct transport_params *out);

/* tparams_default fills p with the proposal of the built-in profile
 * `default`: the one default set of transport parameters (valid). */
void tparams_default(struct transport_params *p);

/* transport_local_of takes p's local KCP policy (min_rto_ms, dead_link,
 * dup_thin). */
void transport_local_of(const struct profile *p, struct transport_local *out);

/* transport_ranges computes a server's clamp ranges and default answer
 * (tparams_clamp): def is the proposal of own (the server's profile with
 * its overrides); min and max span def and the proposal of every built-in
 * profile whose bit is set in accepted (bit i: profile_at(i)). Keepalive
 * and idle timing are the client's to pick within the wire's hard range:
 * a session costs the server one slot either way. */
void transport_ranges(const struct profile *own, uint32_t accepted, struct transport_params *min,
                      struct transport_params *max, struct transport_params *def);

/* transport_kcp fills c for one end of a tunnel session from the agreed
 * parameters (valid) and that end's local policy (NULL: engine defaults).
 * server: the windows are mirrored (the client's receive window is the
 * server's send window). Also sets what every tunnel session uses: stream
 * mode, one flush per batch (no flush_on_send, no ack_immediate), pacing,
 * and a send queue of at most SESSION_KCP_QUEUE segments below the mux. The
 * result passes kcp_config_check. */
void transport_kcp(struct kcp_config *c, const struct transport_params *agreed,
                   const struct transport_local *local, bool server);

/* transport_mux maps p onto the mux settings (stream_window, session_window,
 * max_streams; the rest from mux_config_default); max_streams is capped by
 * cap (0: no cap). The result passes mux_config_check. */
void transport_mux(const struct profile *p, uint32_t cap, struct mux_config *out);

#endif
