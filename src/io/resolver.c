/* resolver.c - c-ares on libev: socket watchers, one timeout timer, and
 * per-lookup handles that outlive their user when cancelled or timed out. */
#include "io/resolver.h"
#include "base/errbuf.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "io/addr.h"
#include "io/log.h"

/* A lookup. Its memory belongs to two parties: the user (until on_done ran
 * or resolver_cancel) and c-ares (until its callback ran). It is freed when
 * both are done, so a cancelled or timed-out lookup lingers until c-ares
 * lets go of it; it still counts against max_pending. */
struct resolver_query {
	struct resolver *r;    /* borrowed */
	uint64_t id;           /* for debug lines: "dns#ID" */
	struct list_node link; /* on r->queries */
	ev_timer timer;        /* the lookup deadline, or 0 s to deliver a result */
	struct resolver_cb cb;
	uint16_t port;
	enum resolver_family family;
	bool user_done; /* on_done ran, or cancelled */
	bool ares_done; /* c-ares called back (or was never asked) */
	bool ready;     /* status and addrs hold the result */
	enum resolver_status status;
	size_t n;
	struct sockaddr_storage addrs[RESOLVER_ADDRS_MAX];
};

struct resolver_sock {
	ev_io io;
	bool used;
};

struct resolver {
	struct ev_loop *loop; /* borrowed */
	ares_channel channel; /* owned */
	ev_timer timer;       /* c-ares's own retransmit/timeouts */
	uint32_t timeout_ms;
	size_t max_pending, pending;
	bool destroying;
	bool files_only;     /* lookups "files": DNS is never asked */
	struct list queries; /* owned: every live lookup */
	struct resolver_sock socks[RESOLVER_SOCKETS_MAX];
};

/* ---- c-ares <-> libev ---- */

static void rearm(struct resolver *r)
{
	struct timeval buf, *tv = ares_timeout(r->channel, NULL, &buf);

	ev_timer_stop(r->loop, &r->timer);
	if (!tv)
		return;
	ev_timer_set(&r->timer, (double)tv->tv_sec + tv->tv_usec / 1e6, 0.);
	ev_timer_start(r->loop, &r->timer);
}

static void on_sock_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct resolver *r = w->data;
	ares_socket_t fd = w->fd;

	(void)loop;
	ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
	                (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	rearm(r);
}

static void on_ares_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolver *r = w->data;

	(void)loop;
	(void)revents;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(r);
}

static struct resolver_sock *sock_find(struct resolver *r, int fd, bool alloc)
{
	struct resolver_sock *free_slot = NULL;

	for (size_t i = 0; i < RESOLVER_SOCKETS_MAX; i++) {
		struct resolver_sock *s = &r->socks[i];
		if (s->used && s->io.fd == fd)
			return s;
		if (!s->used && !free_slot)
			free_slot = s;
	}
	return alloc ? free_slot : NULL;
}

/* on_sock_state is c-ares telling which sockets to watch for what. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_sock *s = sock_find(r, fd, readable || writable);

	if (!s) {
		if (readable || writable)
			/* c-ares still sees the timeout and gives up on it. */
			log_limited(LOG_LEVEL_WARN, "resolver: more than %d DNS sockets",
			            RESOLVER_SOCKETS_MAX);
		return;
	}
	if (s->used)
		ev_io_stop(r->loop, &s->io);
	s->used = readable || writable;
	if (!s->used)
		return;
	ev_io_set(&s->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(r->loop, &s->io);
}

/* ---- lookups ---- */

static void query_free(struct resolver_query *q)
{
	struct resolver *r = q->r;

	ev_timer_stop(r->loop, &q->timer);
	list_remove(&r->queries, &q->link);
	r->pending--;
	log_debug("dns#%llu freed", (unsigned long long)q->id);
	free(q);
}

static bool family_wanted(enum resolver_family f, int af)
{
	if (f == RESOLVER_IPV4_ONLY)
		return af == AF_INET;
	if (f == RESOLVER_IPV6_ONLY)
		return af == AF_INET6;
	return af == AF_INET || af == AF_INET6;
}

/* add_addr appends one address unless unwanted, a duplicate, or no room. */
static void add_addr(struct resolver_query *q, const struct sockaddr *sa, size_t len)
{
	struct sockaddr_storage ss;

	if (q->n >= RESOLVER_ADDRS_MAX || len > sizeof ss ||
	    !family_wanted(q->family, sa->sa_family))
		return;
	memset(&ss, 0, sizeof ss);
	memcpy(&ss, sa, len);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(q->port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(q->port);
	for (size_t i = 0; i < q->n; i++)
		if (addr_equal(&q->addrs[i], &ss))
			return;
	q->addrs[q->n++] = ss;
}

/* order_family moves the preferred family to the front, keeping order. */
static void order_family(struct resolver_query *q)
{
	struct sockaddr_storage tmp[RESOLVER_ADDRS_MAX];
	size_t k = 0;
	int first;

	if (q->family == RESOLVER_PREFER_IPV4)
		first = AF_INET;
	else if (q->family == RESOLVER_PREFER_IPV6)
		first = AF_INET6;
	else
		return;
	for (size_t i = 0; i < q->n; i++)
		if (q->addrs[i].ss_family == first)
			tmp[k++] = q->addrs[i];
	for (size_t i = 0; i < q->n; i++)
		if (q->addrs[i].ss_family != first)
			tmp[k++] = q->addrs[i];
	memcpy(q->addrs, tmp, q->n * sizeof tmp[0]);
}

static enum resolver_status map_ares(const struct resolver *r, int status)
{
	/* c-ares ends a lookup that never reached DNS with the status it
	 * starts from, ECONNREFUSED: with "files" only that means "not in the
	 * hosts file". */
	if (r->files_only && status == ARES_ECONNREFUSED)
		return RESOLVER_NOTFOUND;
	switch (status) {
	case ARES_SUCCESS: return RESOLVER_OK;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
	case ARES_EBADNAME: return RESOLVER_NOTFOUND;
	case ARES_ETIMEOUT: return RESOLVER_TIMEOUT;
	case ARES_ENOMEM: return RESOLVER_NOMEM;
	}
	return RESOLVER_FAILED;
}

/* ready delivers from the loop: the timer fires at once. */
static void ready(struct resolver_query *q, enum resolver_status st)
{
	q->status = st;
	if (st == RESOLVER_OK && q->n == 0)
		q->status = RESOLVER_NOTFOUND; /* only addresses of another family */
	if (q->status != RESOLVER_OK)
		q->n = 0;
	q->ready = true;
	ev_timer_stop(q->r->loop, &q->timer);
	ev_timer_set(&q->timer, 0., 0.);
	ev_timer_start(q->r->loop, &q->timer);
}

static void on_ares_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct resolver_query *q = arg;

	(void)timeouts;
	q->ares_done = true;
	if (q->r->destroying) {
		ares_freeaddrinfo(res);
		return; /* resolver_free frees every query */
	}
	if (q->user_done) {
		ares_freeaddrinfo(res);
		query_free(q);
		return;
	}
	if (status == ARES_SUCCESS && res)
		for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
			add_addr(q, n->ai_addr, n->ai_addrlen);
	ares_freeaddrinfo(res);
	order_family(q);
	ready(q, map_ares(q->r, status));
}

static void on_query_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolver_query *q = w->data;
	struct resolver_result res;

	(void)loop;
	(void)revents;
	if (!q->ready) {
		q->status = RESOLVER_TIMEOUT;
		q->n = 0;
	}
	res = (struct resolver_result){ q->status, q->n, q->addrs };
	log_debug("dns#%llu %s, %zu addresses", (unsigned long long)q->id,
	          resolver_status_name(q->status), q->n);
	q->user_done = true;
	q->cb.on_done(&res, q->cb.arg);
	if (q->ares_done)
		query_free(q);
}

/* numeric answers a literal address itself; false if name is not one. */
static bool numeric(struct resolver_query *q, const char *name)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET, name, &a4.sin_addr) == 1)
		add_addr(q, (struct sockaddr *)&a4, sizeof a4);
	else if (inet_pton(AF_INET6, name, &a6.sin6_addr) == 1)
		add_addr(q, (struct sockaddr *)&a6, sizeof a6);
	else
		return false;
	q->ares_done = true;
	ready(q, RESOLVER_OK);
	return true;
}

static int hints_family(enum resolver_family f)
{
	if (f == RESOLVER_IPV4_ONLY)
		return AF_INET;
	if (f == RESOLVER_IPV6_ONLY)
		return AF_INET6;
	return AF_UNSPEC;
}

static uint64_t next_id = 1;

/* printable copies name for a log line, with bytes outside printable ASCII
 * (a remote client chose them) shown as '?'. */
static const char *printable(const char *name, char out[static RESOLVER_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] && i < RESOLVER_NAME_MAX; i++)
		out[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
	out[i] = '\0';
	return out;
}

static struct resolver_query *query_new(struct resolver *r, uint16_t port,
                                        enum resolver_family family, const struct resolver_cb *cb)
{
	struct resolver_query *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	q->r = r;
	q->id = next_id++;
	q->cb = *cb;
	q->port = port;
	q->family = family;
	ev_timer_init(&q->timer, on_query_timer, r->timeout_ms / 1000.0, 0.);
	q->timer.data = q;
	list_push(&r->queries, &q->link);
	r->pending++;
	return q;
}

int resolver_resolve(struct resolver *r, const char *name, uint16_t port,
                     enum resolver_family family, const struct resolver_cb *cb,
                     struct resolver_query **out)
{
	struct ares_addrinfo_hints hints;
	struct resolver_query *q;
	size_t len = name ? strnlen(name, RESOLVER_NAME_MAX + 1) : 0;

	if (len == 0 || len > RESOLVER_NAME_MAX || (unsigned)family > RESOLVER_PREFER_IPV6 || !cb ||
	    !cb->on_done)
		return KS_ERR_INVAL;
	if (r->pending >= r->max_pending)
		return KS_ERR_LIMIT;
	q = query_new(r, port, family, cb);
	if (!q)
		return KS_ERR_NOMEM;
	if (out)
		*out = q;
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char shown[RESOLVER_NAME_MAX + 1];
		log_debug("dns#%llu lookup '%s' port %u", (unsigned long long)q->id,
		          printable(name, shown), (unsigned)port);
	}
	if (numeric(q, name))
		return 0;
	ev_timer_start(r->loop, &q->timer);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = hints_family(family);
	hints.ai_socktype = SOCK_STREAM;
	/* Our own family order replaces RFC 6724 sorting, which would open
	 * a UDP socket per address to find source addresses. */
	hints.ai_flags = ARES_AI_NOSORT;
	/* c-ares may call on_ares_done right here (hosts file, bad name):
	 * that only stores the result; on_done still comes from the loop. */
	ares_getaddrinfo(r->channel, name, NULL, &hints, on_ares_done, q);
	rearm(r);
	return 0;
}

void resolver_cancel(struct resolver_query *q)
{
	if (!q || q->user_done)
		return;
	q->user_done = true;
	ev_timer_stop(q->r->loop, &q->timer);
	if (q->ares_done)
		query_free(q);
}

size_t resolver_pending(const struct resolver *r) { return r->pending; }

/* ---- setup ---- */

static int lookups_letters(const char *text, const char **out)
{
	static const struct {
		const char *name, *letters;
	} table[] = { { "f", "f" }, { "files", "f" }, { "fb", "fb" }, { "b", "b" } };

	if (!text) {
		*out = "fb";
		return 0;
	}
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(text, table[i].name) == 0) {
			*out = table[i].letters;
			return 0;
		}
	}
	return KS_ERR_INVAL;
}

/* parse_server turns one "IP[:PORT]" into a c-ares server node. */
static int parse_server(const char *text, struct ares_addr_port_node *node, char *err,
                        size_t errlen)
{
	struct sockaddr_storage ss;
	char why[ADDR_ERR_MAX];

	if (addr_parse(text, NULL, &ss, NULL, 0) < 0 &&
	    addr_parse_host_port(text, "53", &ss, why, sizeof why) < 0) {
		errbuf_set(err, errlen, "resolver servers: %s", why);
		return KS_ERR_INVAL;
	}
	memset(node, 0, sizeof *node);
	node->family = ss.ss_family;
	if (ss.ss_family == AF_INET)
		node->addr.addr4 = ((struct sockaddr_in *)&ss)->sin_addr;
	else
		memcpy(&node->addr.addr6, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	node->udp_port = node->tcp_port = addr_port(&ss);
	if (node->udp_port == 0) {
		errbuf_set(err, errlen, "resolver servers: '%s': port 0", text);
		return KS_ERR_INVAL;
	}
	return 0;
}

/* set_servers applies the servers option; "" and NULL keep the system's. */
static int set_servers(struct resolver *r, const char *list, char *err, size_t errlen)
{
	struct ares_addr_port_node nodes[RESOLVER_SERVERS_MAX];
	char copy[RESOLVER_SERVERS_MAX * ADDR_TEXT_MAX], *save = NULL, *tok;
	size_t n = 0;

	if (!list || !*list)
		return 0;
	if (strlen(list) >= sizeof copy) {
		errbuf_set(err, errlen, "resolver servers: list too long");
		return KS_ERR_INVAL;
	}
	strcpy(copy, list);
	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (n == RESOLVER_SERVERS_MAX) {
			errbuf_set(err, errlen, "resolver servers: more than %d",
			           RESOLVER_SERVERS_MAX);
			return KS_ERR_INVAL;
		}
		if (parse_server(tok, &nodes[n], err, errlen) < 0)
			return KS_ERR_INVAL;
		if (n > 0)
			nodes[n - 1].next = &nodes[n];
		n++;
	}
	if (n == 0) {
		errbuf_set(err, errlen, "resolver servers: '%s': no address", list);
		return KS_ERR_INVAL;
	}
	if (ares_set_servers_ports(r->channel, nodes) != ARES_SUCCESS) {
		errbuf_set(err, errlen, "resolver servers: %s", "c-ares refused the list");
		return KS_ERR_INVAL;
	}
	return 0;
}

static int channel_init(struct resolver *r, const struct resolver_opts *o, const char *lookups,
                        char *err, size_t errlen)
{
	struct ares_options ao;
	char lk[4]; /* "fb", "f", "b" */
	int mask = ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
	           ARES_OPT_TRIES | ARES_OPT_DOMAINS;
	int st;

	memset(&ao, 0, sizeof ao);
	ao.flags = ARES_FLAG_NOSEARCH;
	/* c-ares takes a char * and copies it: give it our own copy, not a
	 * cast of a const. */
	snprintf(lk, sizeof lk, "%s", lookups);
	ao.lookups = lk;
	ao.sock_state_cb = on_sock_state;
	ao.sock_state_cb_data = r;
	/* c-ares retries within our deadline: two tries of half each (it
	 * doubles the second), our timer reports the timeout first. */
	ao.timeout = (int)(r->timeout_ms / 2 > RESOLVER_ARES_TRY_MIN_MS ? r->timeout_ms / 2
	                                                                : RESOLVER_ARES_TRY_MIN_MS);
	ao.tries = RESOLVER_ARES_TRIES;
	ao.ndomains = 0;
	if (o->servers && *o->servers) {
		/* Explicit servers: none from resolv.conf, not even briefly. */
		mask |= ARES_OPT_SERVERS;
		ao.nservers = 0;
	}
	st = ares_init_options(&r->channel, &ao, mask);
	if (st != ARES_SUCCESS) {
		errbuf_set(err, errlen, "resolver: c-ares init: %s", ares_strerror(st));
		return KS_ERR_INVAL;
	}
	return 0;
}

struct resolver *resolver_new(struct ev_loop *loop, const struct resolver_opts *opts, char *err,
                              size_t errlen)
{
	struct resolver_opts o = opts ? *opts : (struct resolver_opts){ 0 };
	const char *lookups;
	struct resolver *r;

	if (lookups_letters(o.lookups, &lookups) < 0) {
		errbuf_set(err, errlen, "resolver lookups '%s': want files, fb or b", o.lookups);
		return NULL;
	}
	if (o.timeout_ms > RESOLVER_TIMEOUT_MAX_MS || o.max_pending > RESOLVER_PENDING_MAX) {
		errbuf_set(err, errlen, "resolver: %s", "timeout or max_pending out of range");
		return NULL;
	}
	r = calloc(1, sizeof *r);
	if (!r) {
		errbuf_set(err, errlen, "resolver: %s", strerror(ENOMEM));
		return NULL;
	}
	r->loop = loop;
	r->files_only = strchr(lookups, 'b') == NULL;
	r->timeout_ms = o.timeout_ms ? o.timeout_ms : RESOLVER_TIMEOUT_DEFAULT_MS;
	r->max_pending = o.max_pending ? o.max_pending : RESOLVER_PENDING_DEFAULT;
	ev_timer_init(&r->timer, on_ares_timer, 0., 0.);
	r->timer.data = r;
	for (size_t i = 0; i < RESOLVER_SOCKETS_MAX; i++) {
		ev_init(&r->socks[i].io, on_sock_io);
		r->socks[i].io.data = r;
	}
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		errbuf_set(err, errlen, "resolver: %s", "c-ares library init failed");
		free(r);
		return NULL;
	}
	if (channel_init(r, &o, lookups, err, errlen) < 0) {
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	if (set_servers(r, o.servers, err, errlen) < 0) {
		ares_destroy(r->channel);
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	return r;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	r->destroying = true;
	/* Calls on_ares_done with ARES_EDESTRUCTION for every lookup in
	 * flight; those only mark themselves done. */
	ares_destroy(r->channel);
	while (!list_empty(&r->queries))
		query_free(list_first(&r->queries, struct resolver_query, link));
	for (size_t i = 0; i < RESOLVER_SOCKETS_MAX; i++)
		ev_io_stop(r->loop, &r->socks[i].io);
	ev_timer_stop(r->loop, &r->timer);
	ares_library_cleanup();
	free(r);
}

const char *resolver_status_name(enum resolver_status s)
{
	switch (s) {
	case RESOLVER_OK: return "ok";
	case RESOLVER_NOTFOUND: return "not found";
	case RESOLVER_TIMEOUT: return "timed out";
	case RESOLVER_FAILED: return "failed";
	case RESOLVER_NOMEM: return "out of memory";
	}
	return "?";
}

int resolver_status_errno(enum resolver_status s)
{
	switch (s) {
	case RESOLVER_OK: return 0;
	case RESOLVER_NOMEM: return ENOMEM;
	case RESOLVER_NOTFOUND:
	case RESOLVER_TIMEOUT:
	case RESOLVER_FAILED: return EHOSTUNREACH;
	}
	return EHOSTUNREACH;
}
