/* client.h - kcpsocks-local: the SOCKS5 listener and the one session to
 * the server, on one libev loop.
 *
 * Each accepted connection negotiates SOCKS5 (socks5_server_feed: no auth
 * or RFC 1929), then its CONNECT request becomes a mux stream whose OPEN
 * carries the request bytes verbatim. The server's SOCKS5 reply is passed
 * to the application as it came; on success the connection becomes a
 * relay (io/relay.h). BIND and UDP ASSOCIATE get REP 07 here. A request
 * that finds no session asks for one (session_on_demand) and waits up to
 * LOCAL_SESSION_WAIT_MS, then fails (REP 01). When the session is lost
 * every stream fails (REP 01 before the reply, a reset connection after
 * it). /healthz is 503 with the reason while no session is up.
 */
#ifndef KCPSOCKS_CLIENT_H
#define KCPSOCKS_CLIENT_H

#include <stdint.h>

#include "base/err.h"
#include "core/config.h"

struct ev_loop;
struct client;

/* client_new binds the SOCKS5 listener, the UDP socket and the metrics
 * endpoint (if configured) and starts the session. cfg is borrowed and
 * must outlive the client. Returns NULL with the reason in err. */
struct client *client_new(struct ev_loop *loop, const struct config *cfg, char *err, size_t errlen);

/* client_drain closes the SOCKS5 listener and the metrics endpoint at
 * once (a new instance can bind both) and lets open connections finish.
 * on_empty is called once the last one closes (may be at once). */
void client_drain(struct client *c, void (*on_empty)(void *arg), void *arg);

/* client_free resets every connection still open (the application sees
 * a reset, not an end), sends the server a close for the session
 * (docs/PROTOCOL.md (session) L8) and closes every socket. NULL is a
 * no-op. */
void client_free(struct client *c);

#endif
