/* test_io_udp.c - UDP open errors, the receive batch and the bounded send
 * queue, on loopback and on AF_UNIX datagram socket pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/addr.h"
#include "io/log.h"
#include "io/udp.h"

enum { WAIT_MS = 2000 }; /* bound on waiting for loopback delivery */

static int open_loopback(struct sockaddr_storage *bound)
{
	struct sockaddr_storage any;
	struct udp_granted g = { -1, -1 };
	char err[ADDR_ERR_MAX] = "";
	int fd;

	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, NULL, 0), 0);
	fd = udp_open(&any, NULL, &g, err, sizeof err);
	if (fd < 0)
		fail_msg("udp_open: %s", err);
	assert_true(g.rcvbuf > 0 && g.sndbuf > 0);
	assert_int_equal(udp_local_addr(fd, bound), 0);
	assert_int_not_equal(addr_port(bound), 0);
	return fd;
}

static void wait_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
}

static void bind_conflict_names_the_address_and_the_error(void **state)
{
	(void)state;
	struct sockaddr_storage bound, bad;
	char want[128], err[ADDR_ERR_MAX] = "";
	char text[ADDR_TEXT_MAX];
	int fd = open_loopback(&bound);

	assert_int_equal(udp_open(&bound, NULL, NULL, err, sizeof err), KS_ERR_IO);
	snprintf(want, sizeof want, "bind %s: %s", addr_format(&bound, text), strerror(EADDRINUSE));
	assert_string_equal(err, want);

	struct udp_opts o = udp_opts_default();
	o.rcvbuf = UDP_SOCKBUF_MAX + 1;
	assert_int_equal(udp_open(&bound, &o, NULL, err, sizeof err), KS_ERR_INVAL);
	memset(&bad, 0, sizeof bad);
	bad.ss_family = AF_UNIX;
	assert_int_equal(udp_open(&bad, NULL, NULL, err, sizeof err), KS_ERR_INVAL);
	close(fd);
}

static void rx_hands_out_a_batch_and_drops_truncated(void **state)
{
	(void)state;
	struct sockaddr_storage a_addr, b_addr;
	int a = open_loopback(&a_addr), b = open_loopback(&b_addr);
	struct udp_rx *rx = udp_rx_new();
	struct udp_tx *tx = udp_tx_new(a, 8);
	static uint8_t big[UDP_DATAGRAM_MAX + 1];

	assert_non_null(rx);
	assert_non_null(tx);
	assert_int_equal(udp_rx_read(rx, b), 0); /* nothing yet: no block */
	assert_int_equal(udp_tx_queue(tx, "one", 3, &b_addr), 0);
	assert_int_equal(
	        sendto(a, big, sizeof big, 0, (struct sockaddr *)&b_addr, addr_len(&b_addr)),
	        (ssize_t)sizeof big);
	assert_int_equal(udp_tx_queue(tx, "three", 5, &b_addr), 0);
	assert_int_equal(udp_tx_pending(tx), 2);
	assert_int_equal(udp_tx_flush(tx), 0);
	assert_int_equal(udp_tx_pending(tx), 0);

	ssize_t got = 0;
	for (int tries = 0; tries < 10 && got < 2; tries++) {
		wait_readable(b);
		ssize_t n = udp_rx_read(rx, b);
		assert_true(n >= 0);
		for (ssize_t i = 0; i < n; i++) {
			const struct udp_dgram *d = udp_rx_get(rx, (size_t)i);
			assert_true(addr_equal(d->from, &a_addr));
			if (got + i == 0)
				assert_memory_equal(d->data, "one", d->len);
			else
				assert_memory_equal(d->data, "three", d->len);
		}
		got += n;
	}
	assert_int_equal(got, 2);
	assert_int_equal(udp_rx_stats(rx)->datagrams, 2);
	assert_int_equal(udp_rx_stats(rx)->bytes, 8);
	assert_int_equal(udp_rx_stats(rx)->truncated, 1);
	assert_int_equal(udp_tx_stats(tx)->sent, 2);
	assert_int_equal(udp_tx_stats(tx)->bytes, 8);
	assert_int_equal(udp_rx_read(rx, -1), KS_ERR_IO);
	udp_tx_free(tx);
	udp_rx_free(rx);
	close(a);
	close(b);
}

static void rx_takes_at_most_one_batch_per_call(void **state)
{
	(void)state;
	struct sockaddr_storage a_addr, b_addr;
	int a = open_loopback(&a_addr), b = open_loopback(&b_addr);
	struct udp_rx *rx = udp_rx_new();
	struct udp_tx *tx = udp_tx_new(a, 3 * UDP_BATCH_MAX);
	size_t total = UDP_BATCH_MAX + UDP_BATCH_MAX / 2;

	for (uint32_t i = 0; i < total; i++)
		assert_int_equal(udp_tx_queue(tx, &i, sizeof i, &b_addr), 0);
	assert_int_equal(udp_tx_flush(tx), 0);
	/* sendmmsg takes UDP_BATCH_MAX messages per call; with GSO one
	 * message carries up to UDP_GSO_SEGMENTS_MAX equal datagrams. */
	if (udp_tx_stats(tx)->gso_messages)
		assert_int_equal(udp_tx_stats(tx)->calls, 1);
	else
		assert_int_equal(udp_tx_stats(tx)->calls, 2);
	assert_int_equal(udp_tx_stats(tx)->sent, total);

	size_t got = 0;
	uint32_t expect = 0;
	for (int tries = 0; tries < 20 && got < total; tries++) {
		wait_readable(b);
		ssize_t n = udp_rx_read(rx, b);
		assert_true(n >= 0 && n <= UDP_BATCH_MAX);
		for (ssize_t i = 0; i < n; i++) {
			uint32_t v;
			const struct udp_dgram *d = udp_rx_get(rx, (size_t)i);
			assert_int_equal(d->len, sizeof v);
			memcpy(&v, d->data, sizeof v);
			assert_int_equal(v, expect++);
		}
		got += (size_t)n;
	}
	assert_int_equal(got, total);
	udp_tx_free(tx);
	udp_rx_free(rx);
	close(a);
	close(b);
}

/* recv_expect reads one datagram from fd (waiting for it) and checks it
 * is len bytes of byte value tag. */
static void recv_expect(int fd, size_t len, uint8_t tag)
{
	uint8_t in[UDP_DATAGRAM_MAX + 1];
	ssize_t n;

	wait_readable(fd);
	n = recv(fd, in, sizeof in, 0);
	assert_int_equal(n, len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(in[i], tag);
}

/* GSO groups only runs to one address whose datagrams have the first's
 * length, a shorter one ending the run; whatever the grouping, every
 * datagram arrives as itself, in order. */
static void tx_groups_runs_and_datagrams_arrive_whole(void **state)
{
	(void)state;
	struct sockaddr_storage a_addr, b_addr, c_addr;
	int a = open_loopback(&a_addr), b = open_loopback(&b_addr), c = open_loopback(&c_addr);
	struct udp_tx *tx = udp_tx_new(a, 4 * UDP_GSO_SEGMENTS_MAX);
	static const struct {
		uint16_t len;
		char to;
	} plan[] = {
		{ 1200, 'b' }, { 1200, 'b' }, { 1200, 'b' }, { 700, 'b' }, /* a run, short last */
		{ 1200, 'b' }, { 1300, 'b' },                              /* longer: a new run */
		{ 1300, 'c' }, { 1300, 'c' },                              /* another address */
		{ 1300, 'b' }, { 9, 'b' },    { 9, 'b' },
	};
	enum { N = sizeof plan / sizeof plan[0] };
	uint8_t buf[UDP_DATAGRAM_MAX];

	assert_non_null(tx);
	for (size_t i = 0; i < N; i++) {
		memset(buf, (int)i + 1, plan[i].len);
		assert_int_equal(
		        udp_tx_queue(tx, buf, plan[i].len, plan[i].to == 'b' ? &b_addr : &c_addr),
		        0);
	}
	/* More equal datagrams than one GSO message holds. */
	for (size_t i = 0; i < UDP_GSO_SEGMENTS_MAX + 3; i++) {
		memset(buf, 0xee, 1000);
		assert_int_equal(udp_tx_queue(tx, buf, 1000, &b_addr), 0);
	}
	assert_int_equal(udp_tx_flush(tx), 0);
	assert_int_equal(udp_tx_stats(tx)->sent, N + UDP_GSO_SEGMENTS_MAX + 3);
	/* Runs of several: 4 at 1200 (700 last), 2 to c, 1300 + 9, and the
	 * 67 equal ones as 64 + 3. The rest go alone. */
	if (udp_tx_stats(tx)->gso_messages)
		assert_int_equal(udp_tx_stats(tx)->gso_messages, 5);
	for (size_t i = 0; i < N; i++)
		recv_expect(plan[i].to == 'b' ? b : c, plan[i].len, (uint8_t)(i + 1));
	for (size_t i = 0; i < UDP_GSO_SEGMENTS_MAX + 3; i++)
		recv_expect(b, 1000, 0xee);
	assert_int_equal(recv(b, buf, sizeof buf, MSG_DONTWAIT), -1);
	assert_int_equal(recv(c, buf, sizeof buf, MSG_DONTWAIT), -1);
	udp_tx_free(tx);
	close(a);
	close(b);
	close(c);
}

/* A path that refuses GSO (here: UDP checksums off, which GSO needs)
 * turns it off for good and every datagram still arrives, in order. */
static void tx_falls_back_when_gso_is_refused(void **state)
{
	(void)state;
	struct sockaddr_storage a_addr, b_addr;
	int a = open_loopback(&a_addr), b = open_loopback(&b_addr), one = 1;
	struct udp_tx *tx;
	uint8_t buf[UDP_DATAGRAM_MAX];
	enum { N = 10, LEN = 1000 };

	assert_int_equal(setsockopt(a, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
	tx = udp_tx_new(a, 2 * N);
	assert_non_null(tx);
	log_set_level(LOG_LEVEL_ERROR); /* the fallback's info line */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			memset(buf, i + 1, LEN);
			assert_int_equal(udp_tx_queue(tx, buf, LEN, &b_addr), 0);
		}
		assert_int_equal(udp_tx_flush(tx), 0);
		for (int i = 0; i < N; i++)
			recv_expect(b, LEN, (uint8_t)(i + 1));
	}
	assert_int_equal(udp_tx_stats(tx)->sent, 2 * N);
	assert_int_equal(udp_tx_stats(tx)->gso_messages, 0);
	assert_int_equal(udp_tx_stats(tx)->errors, 0);
	assert_int_equal(recv(b, buf, sizeof buf, MSG_DONTWAIT), -1);
	udp_tx_free(tx);
	close(a);
	close(b);
}

/* fill_until_blocked queues numbered datagrams of len bytes on a socket
 * whose peer never reads, flushing after each, until the kernel says
 * EAGAIN. Returns the next number. */
static uint32_t fill_until_blocked(struct udp_tx *tx, size_t len)
{
	uint8_t buf[256] = { 0 };
	uint32_t seq = 0;

	for (int i = 0; i < 100000; i++) {
		memcpy(buf, &seq, sizeof seq);
		assert_int_equal(udp_tx_queue(tx, buf, len, NULL), 0);
		seq++;
		if (udp_tx_flush(tx) == KS_ERR_AGAIN)
			return seq;
	}
	fail_msg("the socket never blocked");
	return 0;
}

static void tx_queue_is_bounded_keeps_order_and_counts_drops(void **state)
{
	(void)state;
	int sv[2];
	enum { CAP = 8, LEN = 200 };

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	struct udp_tx *tx = udp_tx_new(sv[0], CAP);
	assert_non_null(tx);
	assert_int_equal(udp_tx_capacity(tx), CAP);

	uint32_t seq = fill_until_blocked(tx, LEN);
	assert_int_equal(udp_tx_pending(tx), 1);
	/* Blocked: the queue fills to its capacity and no further. */
	uint8_t buf[LEN] = { 0 };
	uint32_t queued_up_to = seq;
	for (int i = 0; i < 3 * CAP; i++) {
		memcpy(buf, &seq, sizeof seq);
		int r = udp_tx_queue(tx, buf, LEN, NULL);
		seq++;
		if (r == 0)
			queued_up_to = seq;
		else
			assert_int_equal(r, KS_ERR_FULL);
	}
	assert_int_equal(udp_tx_pending(tx), CAP);
	assert_int_equal(udp_tx_stats(tx)->full_drops, 3 * CAP - (CAP - 1));
	assert_null(udp_tx_slot(tx));
	assert_int_equal(udp_tx_flush(tx), KS_ERR_AGAIN);
	assert_true(udp_tx_stats(tx)->blocked >= 2);

	/* Drain the peer, flushing as room appears: the numbers arrive in
	 * order, without gaps, up to the last one queued. */
	uint32_t expect = 0;
	for (int i = 0; i < 100000 && expect < queued_up_to; i++) {
		uint8_t in[LEN];
		ssize_t n = recv(sv[1], in, sizeof in, 0);
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_int_equal(udp_tx_flush(tx), 0);
			continue;
		}
		uint32_t v;
		assert_int_equal(n, LEN);
		memcpy(&v, in, sizeof v);
		assert_int_equal(v, expect++);
		(void)udp_tx_flush(tx);
	}
	assert_int_equal(expect, queued_up_to);
	assert_int_equal(udp_tx_pending(tx), 0);
	assert_int_equal(udp_tx_stats(tx)->sent, queued_up_to);
	udp_tx_free(tx);
	close(sv[0]);
	close(sv[1]);
}

static void tx_refuses_bad_sizes_and_drops_failed_sends(void **state)
{
	(void)state;
	int sv[2];
	uint8_t buf[UDP_DATAGRAM_MAX + 1] = { 0 };

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	struct udp_tx *tx = udp_tx_new(sv[0], 4);
	assert_int_equal(udp_tx_queue(tx, buf, 0, NULL), KS_ERR_TOOBIG);
	assert_int_equal(udp_tx_queue(tx, buf, sizeof buf, NULL), KS_ERR_TOOBIG);
	assert_int_equal(udp_tx_queue(tx, buf, UDP_DATAGRAM_MAX, NULL), 0);

	/* In place: write into the slot, then commit. */
	uint8_t *slot = udp_tx_slot(tx);
	assert_non_null(slot);
	memcpy(slot, "inplace", 7);
	assert_int_equal(udp_tx_commit(tx, 7, NULL), 0);
	assert_int_equal(udp_tx_pending(tx), 2);

	/* The peer goes away: sends fail, are dropped, counted and logged
	 * (rate-limited), and the queue empties instead of sticking. */
	close(sv[1]);
	log_set_level(LOG_LEVEL_ERROR); /* keep the test output clean */
	assert_int_equal(udp_tx_flush(tx), 0);
	assert_int_equal(udp_tx_pending(tx), 0);
	assert_int_equal(udp_tx_stats(tx)->errors, 2);
	assert_int_equal(udp_tx_stats(tx)->sent, 0);
	udp_tx_free(tx);
	close(sv[0]);

	assert_null(udp_tx_new(sv[0], UDP_TX_QUEUE_MAX + 1));
	tx = udp_tx_new(sv[0], 0);
	assert_int_equal(udp_tx_capacity(tx), UDP_TX_QUEUE_DEFAULT);
	udp_tx_free(tx);
	udp_tx_free(NULL);
	udp_rx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bind_conflict_names_the_address_and_the_error),
		cmocka_unit_test(rx_hands_out_a_batch_and_drops_truncated),
		cmocka_unit_test(rx_takes_at_most_one_batch_per_call),
		cmocka_unit_test(tx_groups_runs_and_datagrams_arrive_whole),
		cmocka_unit_test(tx_falls_back_when_gso_is_refused),
		cmocka_unit_test(tx_queue_is_bounded_keeps_order_and_counts_drops),
		cmocka_unit_test(tx_refuses_bad_sizes_and_drops_failed_sends),
	};
	return cmocka_run_group_tests_name("io_udp", tests, NULL, NULL);
}
