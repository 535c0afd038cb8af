/* heap.h - a binary min-heap over an array the caller owns.
 *
 * The caller keeps the elements (any type of at most HEAP_ELEM_MAX bytes)
 * in an array it allocates and grows; struct heap is a view of that array
 * and its count. The order and, optionally, position tracking come from a
 * struct heap_ops, best a `static const` one: every function here is
 * static inline and takes the ops as an argument, so with constant ops the
 * compiler calls the comparison directly (no indirect call per step).
 *
 * Position tracking: if ops->moved is set, it is told each element's new
 * index every time the heap places one, so the caller can keep an index in
 * the element's owner and later remove or re-file that element
 * (heap_remove, heap_fix) in O(log n).
 *
 * Pure: no allocation, no I/O. Every function is O(log n), heap_ordered
 * O(n).
 */
#ifndef KCPSOCKS_HEAP_H
#define KCPSOCKS_HEAP_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum { HEAP_ELEM_MAX = 32 }; /* bytes of one element */

struct heap_ops {
	size_t size; /* bytes per element, 1..HEAP_ELEM_MAX */
	/* before: must x leave the heap before y? A strict order; equal keys
	 * pop in no particular order (add a tie-breaker for determinism). */
	bool (*before)(const void *x, const void *y, void *ctx);
	/* moved: NULL, or told that elem (in the array) now sits at index i. */
	void (*moved)(void *elem, size_t i, void *ctx);
};

struct heap {
	void *a;  /* borrowed: the caller's array; room for every push */
	size_t n; /* elements in the heap: a[0..n) */
};

static inline void *heap_at(const struct heap *h, const struct heap_ops *o, size_t i)
{
	return (char *)h->a + i * o->size;
}

/* heap_place copies e into index i and reports the move. */
static inline void heap_place(struct heap *h, const struct heap_ops *o, void *ctx, size_t i,
                              const void *e)
{
	void *dst = heap_at(h, o, i);

	memcpy(dst, e, o->size);
	if (o->moved)
		o->moved(dst, i, ctx);
}

/* heap_sift_up moves the element at i towards the root; returns its index. */
static inline size_t heap_sift_up(struct heap *h, const struct heap_ops *o, void *ctx, size_t i)
{
	alignas(max_align_t) unsigned char e[HEAP_ELEM_MAX];

	memcpy(e, heap_at(h, o, i), o->size);
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!o->before(e, heap_at(h, o, p), ctx))
			break;
		heap_place(h, o, ctx, i, heap_at(h, o, p));
		i = p;
	}
	heap_place(h, o, ctx, i, e);
	return i;
}

/* heap_sift_down moves the element at i towards the leaves. */
static inline void heap_sift_down(struct heap *h, const struct heap_ops *o, void *ctx, size_t i)
{
	alignas(max_align_t) unsigned char e[HEAP_ELEM_MAX];

	memcpy(e, heap_at(h, o, i), o->size);
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && o->before(heap_at(h, o, c + 1), heap_at(h, o, c), ctx))
			c++;
		if (!o->before(heap_at(h, o, c), e, ctx))
			break;
		heap_place(h, o, ctx, i, heap_at(h, o, c));
		i = c;
	}
	heap_place(h, o, ctx, i, e);
}

/* heap_top returns the first element (a view into the array, valid until
 * the next change), or NULL when the heap is empty. */
static inline void *heap_top(const struct heap *h, const struct heap_ops *o)
{
	return h->n ? heap_at(h, o, 0) : NULL;
}

/* heap_push adds a copy of e. The array must have room for n + 1. */
static inline void heap_push(struct heap *h, const struct heap_ops *o, void *ctx, const void *e)
{
	heap_place(h, o, ctx, h->n++, e);
	heap_sift_up(h, o, ctx, h->n - 1);
}

/* heap_remove takes out the element at index i (i < n), copying it into
 * out unless out is NULL. heap_remove(h, o, ctx, 0, out) pops the top. */
static inline void heap_remove(struct heap *h, const struct heap_ops *o, void *ctx, size_t i,
                               void *out)
{
	if (out)
		memcpy(out, heap_at(h, o, i), o->size);
	if (i == --h->n)
		return;
	heap_place(h, o, ctx, i, heap_at(h, o, h->n));
	heap_sift_down(h, o, ctx, heap_sift_up(h, o, ctx, i));
}

/* heap_fix restores the order after the key of the element at i changed. */
static inline void heap_fix(struct heap *h, const struct heap_ops *o, void *ctx, size_t i)
{
	heap_sift_down(h, o, ctx, heap_sift_up(h, o, ctx, i));
}

/* heap_ordered checks the invariant (no element before its parent), for
 * tests and debug checks. */
static inline bool heap_ordered(const struct heap *h, const struct heap_ops *o, void *ctx)
{
	for (size_t i = 1; i < h->n; i++)
		if (o->before(heap_at(h, o, i), heap_at(h, o, (i - 1) / 2), ctx))
			return false;
	return true;
}

#endif
