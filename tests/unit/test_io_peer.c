/* test_io_peer.c - one UDP socket on loopback, no event loop: datagrams
 * queued with peer_send leave in peer_flush (batched: fewer sendmmsg calls
 * than datagrams) and come back from peer_read in batches. Every wait is a
 * poll(2) with a bounded timeout. The urgent lane leaves first, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <string.h>

#include "io/addr.h"
#include "io/peer.h"

/* read_all reads from p until want datagrams came or 3 s of silence. */
static int read_all(struct peer *p, int want, uint8_t *last0, size_t *last_len)
{
	int got = 0;

	while (got < want) {
		struct pollfd pfd = { peer_fd(p), POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 3000) != 1)
			break;
		n = peer_read(p);
		assert_true(n >= 0);
		for (ssize_t i = 0; i < n; i++) {
			const struct udp_dgram *d = peer_dgram(p, (size_t)i);

			*last0 = d->data[0];
			*last_len = d->len;
		}
		got += (int)n;
	}
	return got;
}

static void datagrams_batch_and_arrive(void **state)
{
	struct sockaddr_storage any, baddr;
	struct peer *a, *b;
	struct peer_stats st;
	uint8_t d[100], last0 = 0;
	size_t last_len = 0;
	char err[128];

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, err, sizeof err), 0);
	a = peer_new(&any, err, sizeof err);
	b = peer_new(&any, err, sizeof err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(peer_local_addr(b, &baddr), 0);
	for (int i = 0; i < 100; i++) {
		memset(d, i, sizeof d);
		assert_int_equal(peer_send(a, d, (size_t)i + 1, &baddr), 0);
	}
	assert_int_equal(peer_pending(a), 100);
	assert_int_equal(peer_flush(a), 0);
	assert_int_equal(peer_pending(a), 0);
	assert_int_equal(read_all(b, 100, &last0, &last_len), 100);
	assert_int_equal(last_len, 100);
	assert_int_equal(last0, 99);
	peer_stats(a, &st);
	assert_int_equal(st.tx.sent, 100);
	assert_true(st.tx.calls < 100); /* sendmmsg took several per call */
	peer_stats(b, &st);
	assert_int_equal(st.rx->datagrams, 100);
	assert_true(st.rx->calls < 100);
	assert_int_equal(peer_send(a, d, 0, &baddr), KS_ERR_TOOBIG);
	/* Written in place in a lent slot: committed, not copied. */
	{
		size_t cap = 0;
		uint8_t *slot = peer_slot(a, &cap);

		assert_non_null(slot);
		assert_int_equal(cap, UDP_DATAGRAM_MAX);
		memset(slot, 0xab, 50);
		assert_int_equal(peer_send(a, slot, 50, &baddr), 0);
		assert_int_equal(peer_pending(a), 1);
		assert_int_equal(peer_flush(a), 0);
		assert_int_equal(read_all(b, 1, &last0, &last_len), 1);
		assert_int_equal(last_len, 50);
		assert_int_equal(last0, 0xab);
	}
	assert_int_equal(peer_flush(NULL), 0);
	peer_free(a);
	peer_free(b);
	peer_free(NULL);
}

/* read_order reads want datagrams (3 s of silence ends it) and keeps the
 * first two bytes of each: lane tag and index. */
static int read_order(struct peer *p, int want, uint8_t (*seen)[2])
{
	int got = 0;

	while (got < want) {
		struct pollfd pfd = { peer_fd(p), POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 3000) != 1)
			break;
		n = peer_read(p);
		assert_true(n >= 0);
		for (ssize_t i = 0; i < n && got < want; i++, got++) {
			const struct udp_dgram *d = peer_dgram(p, (size_t)i);

			assert_true(d->len >= 2);
			seen[got][0] = d->data[0];
			seen[got][1] = d->data[1];
		}
	}
	return got;
}

/* The urgent lane leaves ahead of bulk datagrams queued before it, in its
 * own order, at most PEER_URGENT_MAX per flush; the rest of an urgent
 * burst queues behind the bulk lane, and nothing is lost. */
static void urgent_lane_goes_first_bounded(void **state)
{
	enum { BULK = 40, URGENT = PEER_URGENT_MAX + 4, ALL = BULK + URGENT + 1 };
	struct sockaddr_storage any, baddr;
	struct peer *a, *b;
	struct peer_stats st;
	uint8_t d[100], seen[ALL][2];
	char err[128];
	int k = 0;

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, err, sizeof err), 0);
	a = peer_new(&any, err, sizeof err);
	b = peer_new(&any, err, sizeof err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(peer_local_addr(b, &baddr), 0);
	memset(d, 0, sizeof d);
	for (int i = 0; i < BULK; i++) {
		d[0] = 'B';
		d[1] = (uint8_t)i;
		assert_int_equal(peer_send(a, d, sizeof d, &baddr), 0);
	}
	peer_lane(a, PEER_LANE_URGENT);
	for (int i = 0; i < URGENT; i++) {
		size_t cap = 0;
		uint8_t *slot = peer_slot(a, &cap);

		/* Every other one sealed in place, the others copied. */
		assert_non_null(slot);
		if (i % 2 == 0) {
			slot[0] = 'U';
			slot[1] = (uint8_t)i;
			assert_int_equal(peer_send(a, slot, 60, &baddr), 0);
		} else {
			d[0] = 'U';
			d[1] = (uint8_t)i;
			assert_int_equal(peer_send(a, d, 60, &baddr), 0);
		}
	}
	peer_lane(a, PEER_LANE_BULK);
	d[0] = 'B';
	d[1] = BULK;
	assert_int_equal(peer_send(a, d, sizeof d, &baddr), 0);
	assert_int_equal(peer_pending(a), ALL);
	assert_int_equal(peer_flush(a), 0);
	assert_int_equal(peer_pending(a), 0);
	assert_int_equal(read_order(b, ALL, seen), ALL);
	for (int i = 0; i < PEER_URGENT_MAX; i++, k++) {
		assert_int_equal(seen[k][0], 'U');
		assert_int_equal(seen[k][1], i);
	}
	for (int i = 0; i < BULK; i++, k++) {
		assert_int_equal(seen[k][0], 'B');
		assert_int_equal(seen[k][1], i);
	}
	for (int i = PEER_URGENT_MAX; i < URGENT; i++, k++) {
		assert_int_equal(seen[k][0], 'U');
		assert_int_equal(seen[k][1], i);
	}
	assert_int_equal(seen[k][0], 'B');
	assert_int_equal(seen[k][1], BULK);
	peer_stats(a, &st);
	assert_int_equal(st.tx.sent, ALL);
	assert_int_equal(st.tx.queued, ALL);
	assert_int_equal(st.urgent_sent, PEER_URGENT_MAX);
	peer_free(a);
	peer_free(b);
}

static void bind_error_names_the_address(void **state)
{
	struct sockaddr_storage any, bound;
	struct peer *a, *b;
	char err[128];

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:0", NULL, &any, err, sizeof err), 0);
	a = peer_new(&any, err, sizeof err);
	assert_non_null(a);
	assert_int_equal(peer_local_addr(a, &bound), 0);
	b = peer_new(&bound, err, sizeof err);
	assert_null(b);
	assert_non_null(strstr(err, "127.0.0.1:"));
	peer_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(datagrams_batch_and_arrive),
		cmocka_unit_test(urgent_lane_goes_first_bounded),
		cmocka_unit_test(bind_error_names_the_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
