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

/* What a reload did. */
struct exitd_reload_stats {
	size_t added, removed; /* users (a changed psk counts as both) */
	size_t closed;         /* sessions of removed users closed */
};

/* exitd_reload swaps in ncfg's users and destination policy (SIGHUP): the
 * sessions of users that remain with the same psk go on untouched; those
 * of removed users (or of a changed psk) get a close and end. ncfg is
 * borrowed from now on (the previous reload's config is no longer used);
 * nothing else of it is read. Returns 0, or an error with the reason in
 * err: then the users and policy stay as they were (a removed user's
 * sessions may have been closed already). */
int exitd_reload(struct exitd *x, const struct config *ncfg, struct exitd_reload_stats *st,
                 char *err, size_t errlen);

/* exitd_free closes everything. NULL is a no-op. */
void exitd_free(struct exitd *x);

#endif
