/* replay.h - the sliding anti-replay window of one receive direction.
 *
 * RFC 6479 style: a ring of REPLAY_BITMAP_WORDS 64-bit words indexed by
 * counter bits, so moving the window forward clears whole words and costs
 * O(words moved), never a shift of the whole bitmap. A counter is accepted
 * once, and only if it is newer than the newest seen minus REPLAY_WINDOW.
 * The check and the update are separate so a caller can authenticate a
 * datagram between them (check, verify AEAD, then update): a datagram that
 * fails authentication never touches the window.
 */
#ifndef KCPSOCKS_REPLAY_H
#define KCPSOCKS_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

struct replay {
	uint64_t next; /* newest accepted counter + 1; 0 while nothing was accepted */
	uint64_t bits[REPLAY_BITMAP_WORDS];
};

/* replay_init empties the window. */
void replay_init(struct replay *r);

/* replay_check says whether ctr would be accepted, without changing r.
 * Returns 0, or KS_ERR_REPLAY when ctr was seen or is older than the
 * window. */
KS_MUST_CHECK int replay_check(const struct replay *r, uint64_t ctr);

/* replay_update records ctr, which replay_check must have accepted just
 * before (with no other update in between). Returns true when ctr is the
 * newest counter accepted so far (the window moved forward). */
bool replay_update(struct replay *r, uint64_t ctr);

#endif
