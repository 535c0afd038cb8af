/* test_io_peer.c - one UDP socket on loopback, no event loop: datagrams
 * queued with peer_send leave in peer_flush (batched: fewer sendmmsg calls
 * than datagrams) and come back from peer_read in batches. Every wait is a
 * poll(2) with a bounded timeout. */
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
	assert_int_equal(st.tx->sent, 100);
	assert_true(st.tx->calls < 100); /* sendmmsg took several per call */
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
		cmocka_unit_test(bind_error_names_the_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
