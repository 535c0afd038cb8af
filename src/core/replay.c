/* replay.c - RFC 6479 sliding window over a ring of 64-bit words. */
#include "core/replay.h"

#include <string.h>

enum { WORD_MASK = REPLAY_BITMAP_WORDS - 1 };

void replay_init(struct replay *r) { memset(r, 0, sizeof *r); }

static uint64_t word_of(uint64_t ctr) { return ctr >> 6; }
static uint64_t bit_of(uint64_t ctr) { return 1ULL << (ctr & 63); }

int replay_check(const struct replay *r, uint64_t ctr)
{
	if (ctr >= r->next)
		return 0;
	/* Older than the newest: inside the window, and not yet seen. */
	if (r->next - 1 - ctr >= REPLAY_WINDOW)
		return KS_ERR_REPLAY;
	if (r->bits[word_of(ctr) & WORD_MASK] & bit_of(ctr))
		return KS_ERR_REPLAY;
	return 0;
}

bool replay_update(struct replay *r, uint64_t ctr)
{
	bool newest = ctr >= r->next;

	if (newest) {
		/* Clear the words between the old newest and the new one: at
		 * most the whole ring, whatever the size of the jump. */
		uint64_t from = r->next ? word_of(r->next - 1) : 0;
		uint64_t to = word_of(ctr);
		uint64_t n = to - from;

		if (r->next == 0)
			memset(r->bits, 0, sizeof r->bits);
		else if (n >= REPLAY_BITMAP_WORDS)
			memset(r->bits, 0, sizeof r->bits);
		else
			for (uint64_t w = from + 1; w <= to; w++)
				r->bits[w & WORD_MASK] = 0;
		r->next = ctr + 1;
	}
	r->bits[word_of(ctr) & WORD_MASK] |= bit_of(ctr);
	return newest;
}
