/* client_int.h - inside kcpsocks-local: struct client, shared by client.c
 * (the listener, SOCKS5, the session and its streams) and failover.c (the
 * server list, lookups, failover and the return to the first server). Not
 * a public contract: client.h is.
 */
#ifndef KCPSOCKS_CLIENT_INT_H
#define KCPSOCKS_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/list.h"
#include "base/rng.h"
#include "core/config.h"
#include "core/dstseen.h"
#include "core/handshake.h"
#include "core/session.h"
#include "core/socks5.h"
#include "core/udpassoc.h"
#include "io/cipher.h"
#include "io/peer.h"
#include "io/relay.h"

struct ev_loop;
struct loop;
struct lconn;
struct resolver;
struct resolver_query;
struct tcp_listener;
struct metrics_server;

struct client {
	struct ev_loop *loop;     /* borrowed */
	const struct config *cfg; /* borrowed */
	struct rng_source rng;
	uint32_t cipher_offer;        /* optional features offered (io/cipher.h) */
	struct cipher_counts ciphers; /* sessions established, by AEAD */
	/* Random per process: the server replaces only this process's own
	 * older session with a new one (docs/PROTOCOL.md, secure 6.3). */
	uint8_t instance[HANDSHAKE_INSTANCE_LEN];
	struct loop *ioloop;  /* owned: the rounds, the timer, deferred frees */
	struct peer *peer;    /* owned */
	struct session *sess; /* owned */
	/* Servers (docs/OPERATIONS.md "Several servers"): cfg->servers.e[cur]
	 * is the one the socket points at, looked up again with c-ares at
	 * every new handshake. */
	struct resolver *res;      /* owned */
	struct resolver_query *rq; /* the lookup in flight, or NULL */
	size_t cur;
	int peer_fam; /* of the socket */
	bool have_addr, returning;
	struct sockaddr_storage addr; /* cur's address, when have_addr */
	uint64_t fallback_since;      /* established on a server other than the first */
	/* On a fallback: a handshake with the first server, on a socket and
	 * session of its own, proves it answers before the client goes back. */
	struct peer *probe_peer; /* owned, may be NULL */
	struct session *probe;   /* owned, may be NULL */
	struct resolver_query *probe_q;
	uint64_t probe_at;         /* the next probe */
	bool probe_done, probe_ok; /* the probe ended (answered); free it */
	bool first_ok;             /* the first server answered a probe */
	uint64_t failovers, lookups_failed;
	struct relay_host host;         /* the session's streams */
	uint64_t sid;                   /* of the session host belongs to */
	struct tcp_listener *listener;  /* owned */
	struct metrics_server *metrics; /* owned, may be NULL */
	struct socks5_cred cred;
	struct socks5_cred_table creds;
	struct socks5_server_config s5cfg;
	struct list conns;                   /* live struct lconn */
	struct lconn *wait_head, *wait_tail; /* LC_WAIT, FIFO */
	size_t nconns;
	uint64_t next_id;
	bool draining;
	void (*on_empty)(void *arg);
	void *on_empty_arg;
	/* counters for /metrics */
	uint64_t accepted, socks_failed, streams_opened, replies[SOCKS5_REP_LAST + 1];
	uint64_t established, hs_failed, lost;
	uint64_t relay_up, relay_down; /* of sessions already gone */
	uint64_t replayed;
	/* outages: from a session loss or a failed first handshake to the
	 * next ESTABLISHED */
	bool in_outage, refused_logged;
	uint64_t outage_since, outages, outage_ms, wait_failed;
	uint64_t refused_seen; /* peer rx.refused at the last look */
	enum session_lost_reason last_lost;
	bool ever_lost;
	uint64_t fast_opened, fast_failed[SOCKS5_REP_LAST + 1]; /* fast open */
	struct dstseen seen;          /* destinations reached lately (fast_open_known) */
	bool silent_hinted;           /* the likely causes of a silent server were logged */
	struct udpassoc_counters udp; /* UDP ASSOCIATE (docs/PROTOCOL.md (UDP) U5) */
};

/* For failover.c: the datagrams of the session's socket, and a session to
 * cl's current server (client.c). */
void client_on_datagram(const struct udp_dgram *d, uint64_t now, void *arg);
int client_new_session(struct client *cl, struct session **out, session_output_fn output,
                       session_slot_fn slot, char *err, size_t errlen);

#endif
