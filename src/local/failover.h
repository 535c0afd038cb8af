/* failover.h - kcpsocks-local's servers: which one of the configured list
 * the UDP socket points at, its name looked up again (c-ares) before
 * every handshake, failover to the next one, and on a fallback the return
 * to the first server: every server_return_ms a probe handshake on a
 * socket and session of its own; once the first server answered and no
 * stream is open, the fallback's session is closed and the client
 * handshakes with the first again (docs/OPERATIONS.md "Several servers").
 *
 * Part of the local daemon (client.c holds struct client, client_int.h);
 * every function takes the client and runs on its loop.
 */
#ifndef KCPSOCKS_FAILOVER_H
#define KCPSOCKS_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct client;

/* failover_target is the server the socket points at now. */
const struct config_endpoint *failover_target(const struct client *cl);

/* failover_new_peer replaces the client's UDP socket with one of family
 * fam, unconnected until the server's address is known. Returns 0, or
 * KS_ERR_IO / KS_ERR_FULL with the reason in err. */
int failover_new_peer(struct client *cl, int fam, char *err, size_t errlen);

/* failover_resolve looks the current server up again; the socket follows
 * the answer and a waiting handshake goes out at once. */
void failover_resolve(struct client *cl);

/* failover_go_to moves to server i of the list (the same one: looks it up
 * again); failover_next to the next one (after the last: the first). why
 * is for the log line. */
void failover_go_to(struct client *cl, size_t i, const char *why);
void failover_next(struct client *cl, const char *why);

/* The return to the first server, from the loop's turn: maybe_return
 * starts, collects and acts on the probe; probe_round takes the probe
 * session's events (true when it did work); the deadlines say when
 * each must run next (KS_NEVER: not scheduled); free_probe drops the
 * probe (at teardown). */
void failover_maybe_return(struct client *cl, uint64_t now);
bool failover_probe_round(struct client *cl, uint64_t now);
uint64_t failover_probe_deadline(const struct client *cl);
uint64_t failover_return_deadline(const struct client *cl);
void failover_free_probe(struct client *cl);

#endif
