/* resolver.h - asynchronous name lookups: c-ares driven by the libev loop.
 *
 * One struct resolver per process (per loop). A lookup never blocks: the
 * hosts file is read by c-ares inside the call (a local file), DNS goes
 * over non-blocking sockets that the loop watches, and c-ares timeouts run
 * on one ev_timer. Numeric addresses ("192.0.2.7", "2001:db8::1") are
 * answered without asking anyone.
 *
 * Every lookup has its own deadline (opts.timeout_ms) and can be cancelled;
 * after resolver_cancel its callback never runs, so a stream that closes
 * first simply cancels. The callback always comes from the loop, never from
 * inside resolver_resolve.
 *
 * Search domains are off (ARES_FLAG_NOSEARCH): names come from remote
 * clients and are looked up as given, never completed with this host's
 * domain.
 *
 * Outcomes and what the daemon answers (docs: resolver_status_errno, then
 * socks5_rep_from_errno):
 *   RESOLVER_OK        addresses found                       -> connect
 *   RESOLVER_NOTFOUND  NXDOMAIN, no address of that family   -> EHOSTUNREACH, REP 04
 *   RESOLVER_TIMEOUT   no answer within the deadline         -> EHOSTUNREACH, REP 04
 *   RESOLVER_FAILED    SERVFAIL, REFUSED, bad answers ...    -> EHOSTUNREACH, REP 04
 *   RESOLVER_NOMEM     out of memory                         -> ENOMEM, REP 01
 * A DNS timeout is reported as "host unreachable", not REP 06 ("TTL
 * expired"): the host was never reached, its name was not even known;
 * REP 06 stays the answer for a connect that timed out.
 */
#ifndef KCPSOCKS_RESOLVER_H
#define KCPSOCKS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/limits.h"

struct ev_loop;

enum resolver_family {
	RESOLVER_ANY = 0,     /* both, in the order they came */
	RESOLVER_IPV4_ONLY,   /* A records only */
	RESOLVER_IPV6_ONLY,   /* AAAA records only */
	RESOLVER_PREFER_IPV4, /* both, IPv4 addresses first */
	RESOLVER_PREFER_IPV6, /* both, IPv6 addresses first */
};

enum resolver_status {
	RESOLVER_OK = 0,
	RESOLVER_NOTFOUND,
	RESOLVER_TIMEOUT,
	RESOLVER_FAILED,
	RESOLVER_NOMEM,
};

struct resolver_opts {
	/* DNS servers as "IP[:PORT]" separated by commas or spaces, e.g.
	 * "127.0.0.1:5353,[::1]:53" (port 53 when absent, IPv6 with a port in
	 * brackets), at most RESOLVER_SERVERS_MAX. NULL or "" means the
	 * system's resolv.conf. Tests must always name a loopback server. */
	const char *servers;
	/* Where names are looked up: "files" or "f" (the hosts file only),
	 * "fb" (hosts file, then DNS), "b" (DNS only). NULL means "fb". */
	const char *lookups;
	uint32_t timeout_ms; /* per lookup; 0 means RESOLVER_TIMEOUT_DEFAULT_MS */
	size_t max_pending;  /* 0 means RESOLVER_PENDING_DEFAULT */
};

struct resolver_result {
	enum resolver_status status;
	size_t n; /* addresses (<= RESOLVER_ADDRS_MAX), 0 unless RESOLVER_OK */
	/* view valid during the callback: AF_INET/AF_INET6 with the port set,
	 * no duplicates, in the family order asked for */
	const struct sockaddr_storage *addrs;
};

struct resolver_cb {
	void (*on_done)(const struct resolver_result *res, void *arg);
	void *arg;
};

struct resolver;
struct resolver_query;

/* resolver_new makes a c-ares channel on loop (borrowed). opts may be NULL
 * for the defaults. Returns NULL with a message in err (may be NULL) on a
 * bad option ("resolver servers '1.2.3': bad address ..."), or a c-ares
 * failure. */
struct resolver *resolver_new(struct ev_loop *loop, const struct resolver_opts *opts, char *err,
                              size_t errlen);

/* resolver_free cancels every lookup (no callback runs) and frees all. NULL
 * is a no-op. Not from inside a resolver callback. */
void resolver_free(struct resolver *r);

/* resolver_resolve starts looking up name (a NUL-terminated host name or
 * numeric address, at most RESOLVER_NAME_MAX bytes) and gives the
 * addresses with port set. on_done is called exactly once, from the loop,
 * unless resolver_cancel comes first. *out (may be NULL) gets the handle,
 * valid until on_done returns or resolver_cancel.
 * Returns 0, KS_ERR_INVAL (empty or too long name, bad family, no cb),
 * KS_ERR_LIMIT (max_pending lookups in flight) or KS_ERR_NOMEM. */
KS_MUST_CHECK int resolver_resolve(struct resolver *r, const char *name, uint16_t port,
                                   enum resolver_family family, const struct resolver_cb *cb,
                                   struct resolver_query **out);

/* resolver_cancel makes sure on_done is never called for q. NULL, and a
 * call from inside q's own on_done, are no-ops. */
void resolver_cancel(struct resolver_query *q);

/* resolver_pending counts lookups still holding memory: waiting for their
 * callback, or cancelled/timed out while c-ares still works on them. */
size_t resolver_pending(const struct resolver *r);

/* resolver_status_name: "ok", "not found", "timed out", "failed",
 * "out of memory". */
const char *resolver_status_name(enum resolver_status s);

/* resolver_status_errno maps an outcome to the errno the daemons turn into
 * a SOCKS5 reply (table above): 0, EHOSTUNREACH or ENOMEM. */
int resolver_status_errno(enum resolver_status s);

#endif
