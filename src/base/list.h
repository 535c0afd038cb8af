/* list.h - one intrusive doubly linked list: O(1) push and remove, no
 * allocation, for sets of objects that leave from anywhere (live
 * connections, lookups in flight, sessions owing a flush).
 *
 * The object embeds a struct list_node; the owner holds a struct list.
 * Both are valid when zeroed (an empty list; a node on no list), so a
 * calloc'd object needs no init. The list is NULL-terminated, not
 * circular: iterate with list_first / list_next, which give the object
 * (or NULL at the end). A node is on at most one list at a time; it may
 * be removed while iterating when the next one was taken first.
 *
 *   struct conn { ...; struct list_node link; };
 *   struct list conns = { 0 };
 *   list_push(&conns, &c->link);
 *   for (c = list_first(&conns, struct conn, link); c; c = n) {
 *           n = list_next(c, struct conn, link);
 *           ...
 *   }
 *   list_remove(&conns, &c->link);
 */
#ifndef KCPSOCKS_LIST_H
#define KCPSOCKS_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

struct list {
	struct list_node *first;
};

/* The object around node n whose node is off bytes into it; NULL for NULL. */
static inline void *list_obj(struct list_node *n, size_t off)
{
	return n ? (void *)((char *)n - off) : NULL;
}

#define list_first(l, type, member)  ((type *)list_obj((l)->first, offsetof(type, member)))
#define list_next(obj, type, member) ((type *)list_obj((obj)->member.next, offsetof(type, member)))

static inline bool list_empty(const struct list *l) { return l->first == NULL; }

/* list_linked: is n on l? O(1): only the first node has no prev. */
static inline bool list_linked(const struct list *l, const struct list_node *n)
{
	return n->prev != NULL || l->first == n;
}

/* list_push puts n (on no list) first on l. */
static inline void list_push(struct list *l, struct list_node *n)
{
	n->prev = NULL;
	n->next = l->first;
	if (l->first)
		l->first->prev = n;
	l->first = n;
}

/* list_remove takes n off l (it must be on l) and leaves it on no list. */
static inline void list_remove(struct list *l, struct list_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

#endif
