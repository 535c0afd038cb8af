/* exitd.h - kcpsocks-server: one UDP port, the session table (core
 * server.h), and per stream a SOCKS5 request carried out: resolve
 * (c-ares), destination policy, connect with a timeout, the SOCKS5 reply
 * that says what happened, then a relay (io/relay.h) until both halves
 * close. One libev loop; nothing blocks.
 *
 * Replies: succeeded (00, bound address); not allowed (02) when the policy
 * refuses every address; network / host unreachable (03 / 04); name not
 * found or lookup failed (04); refused (05); connect timed out (06); BIND
 * and UDP ASSOCIATE (07); bad address type (08); anything else (01).
 */
#ifndef KCPSOCKS_EXITD_H
#define KCPSOCKS_EXITD_H

#include <stddef.h>

#include "core/config.h"
#include "core/keys.h"

struct ev_loop;
struct exitd;

/* exitd_new binds the UDP port and the metrics endpoint and makes the
 * resolver. cfg and key are borrowed and outlive the daemon. Returns NULL
 * with the reason in err. */
struct exitd *exitd_new(struct ev_loop *loop, const struct config *cfg,
                        const struct keys_server *key, char *err, size_t errlen);

/* exitd_drain stops taking new streams (OPEN is answered 01) and calls
 * on_empty once no stream is left (maybe at once). */
void exitd_drain(struct exitd *x, void (*on_empty)(void *arg), void *arg);

/* exitd_free closes everything. NULL is a no-op. */
void exitd_free(struct exitd *x);

#endif
