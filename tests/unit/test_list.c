/* test_list.c - the intrusive list against a model: seeded random pushes
 * and removals from anywhere, removal while iterating, and the links of
 * every node checked after each step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/list.h"
#include "base/rng.h"

enum { N = 64, STEPS = 20000 };

struct item {
	int id;
	struct list_node link; /* not first in the struct: list_obj must subtract */
	bool in;               /* the model: on the list */
};

/* The list holds exactly the items the model says, each once, with
 * consistent links in both directions. */
static void check(const struct list *l, struct item *items)
{
	size_t want = 0, got = 0;
	const struct list_node *prev = NULL;

	for (int i = 0; i < N; i++) {
		want += items[i].in;
		assert_int_equal(list_linked(l, &items[i].link), items[i].in);
	}
	for (struct item *it = list_first(l, struct item, link); it;
	     it = list_next(it, struct item, link)) {
		assert_true(it->in);
		assert_ptr_equal(it->link.prev, prev);
		prev = &it->link;
		assert_true(++got <= want);
	}
	assert_int_equal(got, want);
	assert_int_equal(list_empty(l), want == 0);
}

static void empty_and_zeroed(void **state)
{
	(void)state;
	struct list l = { 0 };
	struct item a = { .id = 1 };

	assert_true(list_empty(&l));
	assert_null(list_first(&l, struct item, link));
	assert_false(list_linked(&l, &a.link));
	list_push(&l, &a.link);
	assert_ptr_equal(list_first(&l, struct item, link), &a);
	assert_null(list_next(&a, struct item, link));
	assert_true(list_linked(&l, &a.link));
	list_remove(&l, &a.link);
	assert_true(list_empty(&l));
	assert_false(list_linked(&l, &a.link));
	assert_null(a.link.prev);
	assert_null(a.link.next);
}

static void order_is_last_pushed_first(void **state)
{
	(void)state;
	struct list l = { 0 };
	struct item it[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
	int want[] = { 2, 1, 0 }, k = 0;

	for (int i = 0; i < 3; i++)
		list_push(&l, &it[i].link);
	for (struct item *p = list_first(&l, struct item, link); p;
	     p = list_next(p, struct item, link))
		assert_int_equal(p->id, want[k++]);
	assert_int_equal(k, 3);
	/* The middle, the last and the first leave. */
	list_remove(&l, &it[1].link);
	assert_ptr_equal(it[2].link.next, &it[0].link);
	assert_ptr_equal(it[0].link.prev, &it[2].link);
	list_remove(&l, &it[0].link);
	assert_null(it[2].link.next);
	list_remove(&l, &it[2].link);
	assert_true(list_empty(&l));
}

static void random_against_model(void **state)
{
	(void)state;
	struct item items[N];
	struct list l = { 0 };
	struct prng g;

	memset(items, 0, sizeof items);
	for (int i = 0; i < N; i++)
		items[i].id = i;
	prng_seed(&g, 7);
	for (int step = 0; step < STEPS; step++) {
		struct item *it = &items[prng_below(&g, N)];

		if (it->in)
			list_remove(&l, &it->link);
		else
			list_push(&l, &it->link);
		it->in = !it->in;
		if (step % 97 == 0)
			check(&l, items);
	}
	check(&l, items);
	/* Remove every other item while walking (the next taken first). */
	for (struct item *it = list_first(&l, struct item, link), *n; it; it = n) {
		n = list_next(it, struct item, link);
		if (it->id % 2) {
			list_remove(&l, &it->link);
			it->in = false;
		}
	}
	check(&l, items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_and_zeroed),
		cmocka_unit_test(order_is_last_pushed_first),
		cmocka_unit_test(random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
