/* test_io_resolver.c - c-ares on libev against a fake DNS server.
 *
 * Network rule: no query ever leaves loopback. Every resolver here either
 * uses lookups "files" (hosts file only) or names the fake server below,
 * a UDP socket on 127.0.0.1 served by the same loop, as its only server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/rd.h"
#include "base/wr.h"
#include "io/addr.h"
#include "io/log.h"
#include "io/resolver.h"

enum { GUARD_MS = 3000, DNS_MAX = 512 };

enum fake_mode { FAKE_NXDOMAIN, FAKE_ANSWER, FAKE_SILENT };

/* The fake DNS server: answers A with 192.0.2.1 and AAAA with 2001:db8::1,
 * or NXDOMAIN, or keeps quiet (and remembers the last query). */
struct fake {
	int fd;
	ev_io io;
	enum fake_mode mode;
	int queries;
	uint8_t last[DNS_MAX];
	size_t last_len;
	struct sockaddr_storage last_from;
	char port[8];
	char servers[32];
};

struct fix {
	struct ev_loop *loop;
	ev_timer guard;
	bool expired;
	struct fake dns;
	struct resolver *r;
};

struct got {
	int calls;
	bool done;
	enum resolver_status status;
	size_t n;
	struct sockaddr_storage addrs[RESOLVER_ADDRS_MAX];
};

static void on_done(const struct resolver_result *res, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->done = true;
	g->status = res->status;
	g->n = res->n;
	assert_true(res->n <= RESOLVER_ADDRS_MAX);
	memcpy(g->addrs, res->addrs, res->n * sizeof res->addrs[0]);
}

/* fake_reply builds the answer to query q for the current mode. */
static size_t fake_reply(const uint8_t *q, size_t qlen, enum fake_mode mode, uint8_t *out)
{
	struct rd r = rd_init(q, qlen);
	struct wr w = wr_init(out, DNS_MAX);
	uint16_t id = 0, flags = 0, qd = 0, skip = 0, qtype = 0;
	const uint8_t *qstart, *qname;
	uint8_t lab;
	bool a, aaaa;

	assert_true(rd_u16be(&r, &id) && rd_u16be(&r, &flags) && rd_u16be(&r, &qd));
	assert_true(rd_u16be(&r, &skip) && rd_u16be(&r, &skip) && rd_u16be(&r, &skip));
	assert_int_equal(qd, 1);
	qstart = r.p;
	do {
		assert_true(rd_u8(&r, &lab));
		assert_true(lab < 64 && rd_view(&r, &qname, lab));
	} while (lab != 0);
	assert_true(rd_u16be(&r, &qtype) && rd_skip(&r, 2));
	a = qtype == 1 && mode == FAKE_ANSWER;
	aaaa = qtype == 28 && mode == FAKE_ANSWER;

	assert_true(wr_u16be(&w, id));
	assert_true(wr_u16be(&w, mode == FAKE_NXDOMAIN ? 0x8183 : 0x8180));
	assert_true(wr_u16be(&w, 1) && wr_u16be(&w, (a || aaaa) ? 1 : 0));
	assert_true(wr_u16be(&w, 0) && wr_u16be(&w, 0));
	assert_true(wr_bytes(&w, qstart, (size_t)(r.p - qstart)));
	if (a || aaaa) {
		static const uint8_t v4[4] = { 192, 0, 2, 1 };
		static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
		assert_true(wr_u16be(&w, 0xC00C) && wr_u16be(&w, qtype) && wr_u16be(&w, 1));
		assert_true(wr_u32be(&w, 60) && wr_u16be(&w, a ? 4 : 16));
		assert_true(wr_bytes(&w, a ? v4 : v6, a ? 4 : 16));
	}
	return wr_len(&w);
}

static void fake_send(struct fake *f, const uint8_t *q, size_t qlen,
                      const struct sockaddr_storage *to, enum fake_mode mode)
{
	uint8_t out[DNS_MAX];
	size_t n = fake_reply(q, qlen, mode, out);
	assert_int_equal(sendto(f->fd, out, n, 0, (const struct sockaddr *)to, addr_len(to)),
	                 (ssize_t)n);
}

static void fake_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *f = w->data;
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	uint8_t q[DNS_MAX];
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recvfrom(f->fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
	if (n <= 0)
		return;
	/* The network rule, checked: only loopback ever talks to us. */
	assert_int_equal(from.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&from)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	f->queries++;
	memcpy(f->last, q, (size_t)n);
	f->last_len = (size_t)n;
	f->last_from = from;
	if (f->mode != FAKE_SILENT)
		fake_send(f, q, (size_t)n, &from, f->mode);
}

static void fake_start(struct ev_loop *loop, struct fake *f)
{
	struct sockaddr_storage a, bound;
	socklen_t len = sizeof bound;

	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &a, NULL, 0), 0);
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, addr_len(&a)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&bound, &len), 0);
	snprintf(f->servers, sizeof f->servers, "127.0.0.1:%u", (unsigned)addr_port(&bound));
	ev_io_init(&f->io, fake_on_read, f->fd, EV_READ);
	f->io.data = f;
	ev_io_start(loop, &f->io);
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;
	(void)revents;
	f->expired = true;
	ev_break(loop, EVBREAK_ALL);
}

static void run_until(struct fix *f, const bool *flag)
{
	f->expired = false;
	ev_timer_set(&f->guard, GUARD_MS / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!*flag && !f->expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &f->guard);
	if (!*flag)
		fail_msg("guard timer expired");
}

/* run_for runs the loop for ms of loop time. */
static void run_for(struct fix *f, unsigned ms)
{
	f->expired = false;
	ev_timer_set(&f->guard, ms / 1000.0, 0.);
	ev_timer_start(f->loop, &f->guard);
	while (!f->expired)
		ev_run(f->loop, EVRUN_ONCE);
}

static int setup(void **state)
{
	static struct fix f;

	memset(&f, 0, sizeof f);
	f.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f.loop);
	ev_timer_init(&f.guard, on_guard, 0., 0.);
	f.guard.data = &f;
	fake_start(f.loop, &f.dns);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	resolver_free(f->r);
	ev_io_stop(f->loop, &f->dns.io);
	close(f->dns.fd);
	ev_loop_destroy(f->loop);
	return 0;
}

static void make(struct fix *f, const char *lookups, uint32_t timeout_ms)
{
	struct resolver_opts o = { f->dns.servers, lookups, timeout_ms, 0 };
	char err[256] = "";

	f->r = resolver_new(f->loop, &o, err, sizeof err);
	if (!f->r)
		fail_msg("resolver_new: %s", err);
}

static void expect_addr(const struct sockaddr_storage *a, const char *text)
{
	char buf[ADDR_TEXT_MAX];
	assert_string_equal(addr_format(a, buf), text);
}

static void numeric_needs_no_query(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 }, g6 = { 0 }, gx = { 0 };
	struct resolver_cb cb = { on_done, &g }, cb6 = { on_done, &g6 }, cbx = { on_done, &gx };

	make(f, "fb", 1000);
	assert_int_equal(resolver_resolve(f->r, "192.0.2.7", 80, RESOLVER_ANY, &cb, NULL), 0);
	assert_int_equal(resolver_resolve(f->r, "2001:db8::5", 443, RESOLVER_ANY, &cb6, NULL), 0);
	assert_int_equal(resolver_resolve(f->r, "::1", 1, RESOLVER_IPV4_ONLY, &cbx, NULL), 0);
	assert_int_equal(g.calls + g6.calls + gx.calls, 0); /* not from inside the call */
	run_until(f, &gx.done);
	run_until(f, &g.done);
	run_until(f, &g6.done);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_int_equal(g.n, 1);
	expect_addr(&g.addrs[0], "192.0.2.7:80");
	assert_int_equal(g6.n, 1);
	expect_addr(&g6.addrs[0], "[2001:db8::5]:443");
	assert_int_equal(gx.status, RESOLVER_NOTFOUND);
	assert_int_equal(gx.n, 0);
	assert_int_equal(f->dns.queries, 0);
	assert_int_equal(resolver_pending(f->r), 0);
}

static void hosts_file_localhost(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 }, nx = { 0 };
	struct resolver_cb cb = { on_done, &g }, cbn = { on_done, &nx };

	make(f, "files", 1000);
	assert_int_equal(resolver_resolve(f->r, "localhost", 1080, RESOLVER_IPV4_ONLY, &cb, NULL),
	                 0);
	assert_int_equal(g.calls, 0);
	run_until(f, &g.done);
	assert_int_equal(g.status, RESOLVER_OK);
	assert_true(g.n >= 1);
	expect_addr(&g.addrs[0], "127.0.0.1:1080");

	/* Not in the hosts file, and DNS is not asked at all. */
	assert_int_equal(
	        resolver_resolve(f->r, "no-such-host.invalid", 80, RESOLVER_ANY, &cbn, NULL), 0);
	run_until(f, &nx.done);
	assert_int_equal(nx.status, RESOLVER_NOTFOUND);
	assert_int_equal(f->dns.queries, 0);
	assert_int_equal(resolver_pending(f->r), 0);
}

/* "fb": a name in the hosts file never reaches DNS. */
static void files_before_dns(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 };
	struct resolver_cb cb = { on_done, &g };

	f->dns.mode = FAKE_ANSWER;
	make(f, "fb", 1000);
	assert_int_equal(resolver_resolve(f->r, "localhost", 80, RESOLVER_IPV4_ONLY, &cb, NULL), 0);
	run_until(f, &g.done);
	assert_int_equal(g.status, RESOLVER_OK);
	expect_addr(&g.addrs[0], "127.0.0.1:80");
	assert_int_equal(f->dns.queries, 0);
}

static void nxdomain_is_not_found(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 };
	struct resolver_cb cb = { on_done, &g };

	f->dns.mode = FAKE_NXDOMAIN;
	make(f, "fb", 2000);
	assert_int_equal(resolver_resolve(f->r, "nx.example", 80, RESOLVER_ANY, &cb, NULL), 0);
	run_until(f, &g.done);
	assert_int_equal(g.status, RESOLVER_NOTFOUND);
	assert_int_equal(g.n, 0);
	assert_true(f->dns.queries >= 1);
	assert_int_equal(resolver_status_errno(g.status), EHOSTUNREACH);
}

static void dns_answers_in_family_order(void **state)
{
	struct fix *f = *state;
	struct got g4 = { 0 }, g6 = { 0 }, only6 = { 0 };
	struct resolver_cb c4 = { on_done, &g4 }, c6 = { on_done, &g6 }, co = { on_done, &only6 };

	f->dns.mode = FAKE_ANSWER;
	make(f, "fb", 2000);
	assert_int_equal(resolver_resolve(f->r, "www.example", 80, RESOLVER_PREFER_IPV4, &c4, NULL),
	                 0);
	assert_int_equal(resolver_resolve(f->r, "www.example", 81, RESOLVER_PREFER_IPV6, &c6, NULL),
	                 0);
	assert_int_equal(resolver_resolve(f->r, "www.example", 82, RESOLVER_IPV6_ONLY, &co, NULL),
	                 0);
	run_until(f, &g4.done);
	run_until(f, &g6.done);
	run_until(f, &only6.done);
	assert_int_equal(g4.status, RESOLVER_OK);
	assert_int_equal(g4.n, 2);
	expect_addr(&g4.addrs[0], "192.0.2.1:80");
	expect_addr(&g4.addrs[1], "[2001:db8::1]:80");
	assert_int_equal(g6.n, 2);
	expect_addr(&g6.addrs[0], "[2001:db8::1]:81");
	expect_addr(&g6.addrs[1], "192.0.2.1:81");
	assert_int_equal(only6.n, 1);
	expect_addr(&only6.addrs[0], "[2001:db8::1]:82");
	assert_int_equal(resolver_pending(f->r), 0);
}

static void silent_server_times_out(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 };
	struct resolver_cb cb = { on_done, &g };

	f->dns.mode = FAKE_SILENT;
	make(f, "fb", 200);
	ev_now_update(f->loop);
	ev_tstamp t0 = ev_now(f->loop);
	assert_int_equal(resolver_resolve(f->r, "slow.example", 80, RESOLVER_ANY, &cb, NULL), 0);
	run_until(f, &g.done);
	assert_int_equal(g.status, RESOLVER_TIMEOUT);
	assert_true(ev_now(f->loop) - t0 >= 0.19);
	assert_true(ev_now(f->loop) - t0 < 1.0);
	assert_int_equal(g.calls, 1);
	assert_true(f->dns.queries >= 1);
	assert_int_equal(resolver_status_errno(g.status), EHOSTUNREACH);
	/* c-ares may still hold the query; freeing the resolver frees it. */
}

static void cancel_before_completion_never_calls_back(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 }, num = { 0 };
	struct resolver_cb cb = { on_done, &g }, cbn = { on_done, &num };
	struct resolver_query *q = NULL, *qn = NULL;
	bool asked = false;

	f->dns.mode = FAKE_SILENT;
	make(f, "fb", 2000);
	assert_int_equal(resolver_resolve(f->r, "late.example", 80, RESOLVER_IPV4_ONLY, &cb, &q),
	                 0);
	assert_non_null(q);
	for (int i = 0; i < 100 && !asked; i++) {
		ev_run(f->loop, EVRUN_ONCE);
		asked = f->dns.queries > 0;
	}
	assert_true(asked);
	resolver_cancel(q);
	assert_int_equal(resolver_pending(f->r), 1); /* c-ares still has it */

	/* The answer comes after the cancel: c-ares completes, we stay quiet. */
	fake_send(&f->dns, f->dns.last, f->dns.last_len, &f->dns.last_from, FAKE_ANSWER);
	for (int i = 0; i < 100 && resolver_pending(f->r) > 0; i++)
		ev_run(f->loop, EVRUN_ONCE);
	assert_int_equal(resolver_pending(f->r), 0);

	/* A numeric answer waiting to be delivered is cancelled too. */
	assert_int_equal(resolver_resolve(f->r, "10.0.0.1", 1, RESOLVER_ANY, &cbn, &qn), 0);
	resolver_cancel(qn);
	resolver_cancel(NULL);
	assert_int_equal(resolver_pending(f->r), 0);
	run_for(f, 100);
	assert_int_equal(g.calls, 0);
	assert_int_equal(num.calls, 0);
}

/* resolver_free with lookups in flight: no callback, nothing leaks. */
static void free_with_lookups_in_flight(void **state)
{
	struct fix *f = *state;
	struct got g = { 0 }, n = { 0 };
	struct resolver_cb cb = { on_done, &g }, cbn = { on_done, &n };

	f->dns.mode = FAKE_SILENT;
	make(f, "fb", 2000);
	assert_int_equal(resolver_resolve(f->r, "a.example", 80, RESOLVER_ANY, &cb, NULL), 0);
	assert_int_equal(resolver_resolve(f->r, "127.0.0.2", 80, RESOLVER_ANY, &cbn, NULL), 0);
	ev_run(f->loop, EVRUN_NOWAIT);
	resolver_free(f->r);
	f->r = NULL;
	run_for(f, 50);
	assert_int_equal(g.calls, 0);
}

static void bad_options_and_arguments(void **state)
{
	struct fix *f = *state;
	struct resolver_opts o = { "1.2.3", "fb", 0, 0 };
	struct got g = { 0 };
	struct resolver_cb cb = { on_done, &g };
	char err[256] = "", name[RESOLVER_NAME_MAX + 2];

	assert_null(resolver_new(f->loop, &o, err, sizeof err));
	assert_non_null(strstr(err, "resolver servers: "));
	assert_non_null(strstr(err, "1.2.3"));
	o.servers = f->dns.servers;
	o.lookups = "dns";
	assert_null(resolver_new(f->loop, &o, err, sizeof err));
	assert_string_equal(err, "resolver lookups 'dns': want files, fb or b");
	o.lookups = "fb";
	o.timeout_ms = RESOLVER_TIMEOUT_MAX_MS + 1;
	assert_null(resolver_new(f->loop, &o, NULL, 0));
	o.timeout_ms = 0;
	o.servers = "127.0.0.1:0";
	assert_null(resolver_new(f->loop, &o, err, sizeof err));
	o.servers = "127.0.0.1,[::1]:5353 127.0.0.2:53";
	struct resolver *r = resolver_new(f->loop, &o, err, sizeof err);
	if (!r)
		fail_msg("%s", err);
	resolver_free(r);
	resolver_free(NULL);

	o.servers = f->dns.servers;
	o.max_pending = 1;
	f->r = resolver_new(f->loop, &o, err, sizeof err);
	assert_non_null(f->r);
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	assert_int_equal(resolver_resolve(f->r, "", 80, RESOLVER_ANY, &cb, NULL), KS_ERR_INVAL);
	assert_int_equal(resolver_resolve(f->r, name, 80, RESOLVER_ANY, &cb, NULL), KS_ERR_INVAL);
	assert_int_equal(resolver_resolve(f->r, "x", 80, (enum resolver_family)9, &cb, NULL),
	                 KS_ERR_INVAL);
	assert_int_equal(resolver_resolve(f->r, "127.0.0.1", 80, RESOLVER_ANY, &cb, NULL), 0);
	assert_int_equal(resolver_resolve(f->r, "127.0.0.1", 80, RESOLVER_ANY, &cb, NULL),
	                 KS_ERR_LIMIT);
	run_until(f, &g.done);
	assert_int_equal(resolver_pending(f->r), 0);
}

static void status_names_and_errnos(void **state)
{
	(void)state;
	assert_string_equal(resolver_status_name(RESOLVER_OK), "ok");
	assert_string_equal(resolver_status_name(RESOLVER_TIMEOUT), "timed out");
	assert_int_equal(resolver_status_errno(RESOLVER_OK), 0);
	assert_int_equal(resolver_status_errno(RESOLVER_FAILED), EHOSTUNREACH);
	assert_int_equal(resolver_status_errno(RESOLVER_NOMEM), ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(numeric_needs_no_query, setup, teardown),
		cmocka_unit_test_setup_teardown(hosts_file_localhost, setup, teardown),
		cmocka_unit_test_setup_teardown(files_before_dns, setup, teardown),
		cmocka_unit_test_setup_teardown(nxdomain_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(dns_answers_in_family_order, setup, teardown),
		cmocka_unit_test_setup_teardown(silent_server_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_before_completion_never_calls_back, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(free_with_lookups_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_options_and_arguments, setup, teardown),
		cmocka_unit_test(status_names_and_errnos),
	};
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
