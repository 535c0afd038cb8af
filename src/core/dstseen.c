/* dstseen.c - the destinations a client reached lately (dstseen.h). */
#include "core/dstseen.h"

#include <sodium.h>
#include <string.h>

_Static_assert((DSTSEEN_SLOTS & (DSTSEEN_SLOTS - 1)) == 0, "DSTSEEN_SLOTS: a power of two");
_Static_assert(DSTSEEN_KEY_LEN == crypto_shorthash_KEYBYTES, "DSTSEEN_KEY_LEN: SipHash's");

void dstseen_init(struct dstseen *d, const uint8_t key[DSTSEEN_KEY_LEN])
{
	memset(d, 0, sizeof *d);
	memcpy(d->key, key, sizeof d->key);
}

static uint64_t hash_of(const struct dstseen *d, const uint8_t *dst, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, dst, len, d->key);
	for (size_t i = 0; i < sizeof h; i++)
		v = v << 8 | h[i];
	return v;
}

bool dstseen_known(const struct dstseen *d, const uint8_t *dst, size_t len, uint64_t now)
{
	uint64_t h = hash_of(d, dst, len);
	size_t i = (size_t)(h & (DSTSEEN_SLOTS - 1));

	return d->slot[i].until > now && d->slot[i].hash == h;
}

void dstseen_note(struct dstseen *d, const uint8_t *dst, size_t len, bool reached, uint64_t now)
{
	uint64_t h = hash_of(d, dst, len);
	size_t i = (size_t)(h & (DSTSEEN_SLOTS - 1));

	if (reached) {
		d->slot[i].hash = h;
		d->slot[i].until = now + DSTSEEN_TTL_MS;
	} else if (d->slot[i].hash == h) {
		d->slot[i].until = 0;
	}
}
