/* test_heap.c - the binary heap against a naive model: random pushes, pops,
 * removals and key changes (seeded), position tracking, and order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/heap.h"
#include "base/rng.h"

enum { CAP = 512, IDS = 1024 };

/* An element names an item; the key lives in the item (as in kcp.c and
 * server.c), and the item remembers where its element is. */
struct item {
	uint64_t key;
	size_t pos; /* index in the heap while in it */
	bool in;
};

struct world {
	struct item items[IDS];
	uint32_t elems[CAP];
	struct heap h;
	size_t moves;
};

static bool key_before(const void *x, const void *y, void *ctx)
{
	const struct world *w = ctx;
	uint32_t a, b;

	memcpy(&a, x, sizeof a);
	memcpy(&b, y, sizeof b);
	/* the id breaks ties, so the pop order is fully defined */
	return w->items[a].key < w->items[b].key || (w->items[a].key == w->items[b].key && a < b);
}

static void track(void *elem, size_t i, void *ctx)
{
	struct world *w = ctx;
	uint32_t id;

	memcpy(&id, elem, sizeof id);
	w->items[id].pos = i;
	w->moves++;
}

static const struct heap_ops ops = { sizeof(uint32_t), key_before, track };

/* model_min: the id the heap must pop next, by a linear scan. */
static int64_t model_min(const struct world *w)
{
	int64_t best = -1;

	for (uint32_t id = 0; id < IDS; id++) {
		if (!w->items[id].in)
			continue;
		if (best < 0 || w->items[id].key < w->items[best].key)
			best = id; /* ascending ids: the first of equal keys wins */
	}
	return best;
}

static void check(struct world *w)
{
	size_t n = 0;

	assert_true(heap_ordered(&w->h, &ops, w));
	for (uint32_t id = 0; id < IDS; id++) {
		if (!w->items[id].in)
			continue;
		n++;
		assert_true(w->items[id].pos < w->h.n);
		assert_int_equal(w->elems[w->items[id].pos], id);
	}
	assert_int_equal(n, w->h.n);
	if (n)
		assert_int_equal(*(uint32_t *)heap_top(&w->h, &ops), model_min(w));
	else
		assert_null(heap_top(&w->h, &ops));
}

static uint32_t random_member(struct world *w, struct prng *g)
{
	return w->elems[prng_below(g, (uint32_t)w->h.n)];
}

static void matches_a_naive_model(void **state)
{
	(void)state;
	static struct world w;
	struct prng g;

	for (uint64_t seed = 1; seed <= 20; seed++) {
		memset(&w, 0, sizeof w);
		w.h.a = w.elems;
		prng_seed(&g, seed);
		for (int step = 0; step < 4000; step++) {
			uint32_t op = prng_below(&g, 10), id, out = UINT32_MAX;
			if (w.h.n < CAP && (op < 4 || w.h.n == 0)) {
				do
					id = prng_below(&g, IDS);
				while (w.items[id].in);
				/* few distinct keys: ties are common */
				w.items[id] =
				        (struct item){ .key = prng_below(&g, 64), .in = true };
				heap_push(&w.h, &ops, &w, &id);
			} else if (op < 6) {
				id = (uint32_t)model_min(&w);
				heap_remove(&w.h, &ops, &w, 0, &out);
				assert_int_equal(out, id);
				w.items[id].in = false;
			} else if (op < 8) {
				id = random_member(&w, &g);
				heap_remove(&w.h, &ops, &w, w.items[id].pos, &out);
				assert_int_equal(out, id);
				w.items[id].in = false;
			} else {
				id = random_member(&w, &g);
				w.items[id].key = prng_below(&g, 64);
				heap_fix(&w.h, &ops, &w, w.items[id].pos);
			}
			check(&w);
		}
		assert_true(w.moves > 0);
	}
}

/* Pops come out in order; a heap of one and an empty heap behave. */
static void drains_in_order(void **state)
{
	(void)state;
	static struct world w;
	uint64_t last = 0;
	uint32_t id, out;

	memset(&w, 0, sizeof w);
	w.h.a = w.elems;
	for (id = 0; id < CAP; id++) {
		w.items[id] = (struct item){ .key = (id * 7919u) % 1000u, .in = true };
		heap_push(&w.h, &ops, &w, &id);
	}
	while (w.h.n) {
		heap_remove(&w.h, &ops, &w, 0, &out);
		w.items[out].in = false;
		assert_true(w.items[out].key >= last);
		last = w.items[out].key;
	}
	id = 3;
	w.items[id] = (struct item){ .key = 5, .in = true };
	heap_push(&w.h, &ops, &w, &id);
	assert_int_equal(w.items[id].pos, 0);
	heap_fix(&w.h, &ops, &w, 0);
	heap_remove(&w.h, &ops, &w, 0, NULL);
	assert_int_equal(w.h.n, 0);
	assert_null(heap_top(&w.h, &ops));
	assert_true(heap_ordered(&w.h, &ops, &w));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_a_naive_model),
		cmocka_unit_test(drains_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
