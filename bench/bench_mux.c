/* bench_mux.c - the mux's own cost and fairness, without KCP or a link.
 *
 * A client and a server mux joined by a plain byte pipe; the server writes
 * into n streams as fast as credit allows, the client reads everything.
 * Each call to mux_produce gets 1400 bytes of room (about one KCP
 * segment), as under a busy transport. Prints, per stream count:
 *   MB/s of payload through produce + input + read (CPU cost of the mux),
 *   Jain's fairness index of the bytes each stream got over a window of
 *   output, and the largest number of bytes of other streams emitted
 *   between a small message being written and its first DATA frame.
 * Deterministic; the times are wall clock (CLOCK_MONOTONIC) and vary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mux.h"

enum { ROOM = 1400, MAXS = 256 };

static const uint8_t req[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
static const uint8_t rep[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

static uint8_t pipebuf[1 << 16], junk[1 << 16];

static void die(const char *what, long rc)
{
	fprintf(stderr, "bench_mux: %s: %ld\n", what, rc);
	exit(1);
}

static void move(struct mux *from, struct mux *to)
{
	ssize_t n;

	while ((n = mux_produce(from, pipebuf, sizeof pipebuf, 0)) > 0)
		if (mux_input(to, pipebuf, (size_t)n, 0) != 0)
			die("input", 0);
}

static void setup(struct mux **c, struct mux **s, uint32_t *ids, int n)
{
	struct mux_event ev;

	if (mux_new(c, MUX_CLIENT, NULL) != 0 || mux_new(s, MUX_SERVER, NULL) != 0)
		die("mux_new", 0);
	for (int i = 0; i < n; i++)
		if (mux_open_stream(*c, req, sizeof req, &ids[i]) != 0)
			die("open", i);
	move(*c, *s);
	while (mux_next_event(*s, &ev) == 0)
		if (ev.type == MUX_EV_OPEN && mux_stream_reply(*s, ev.id, rep, sizeof rep) != 0)
			die("reply", ev.id);
	move(*s, *c);
	while (mux_next_event(*c, &ev) == 0)
		;
}

/* fill tops every stream of s up; returns bytes accepted. */
static uint64_t fill(struct mux *s, const uint32_t *ids, int n)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++) {
		ssize_t k;
		while ((k = mux_stream_write(s, ids[i], junk, sizeof junk)) > 0)
			total += (uint64_t)k;
	}
	return total;
}

static uint64_t drain(struct mux *c, const uint32_t *ids, int n, uint64_t *per)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++) {
		ssize_t k;
		while ((k = mux_stream_read(c, ids[i], junk, sizeof junk)) > 0) {
			total += (uint64_t)k;
			per[i] += (uint64_t)k;
		}
	}
	return total;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* step produces one ROOM-sized chunk from s into c. */
static ssize_t step(struct mux *s, struct mux *c)
{
	ssize_t n = mux_produce(s, pipebuf, ROOM, 0);

	if (n < 0 || mux_input(c, pipebuf, (size_t)n, 0) != 0)
		die("step", (long)n);
	return n;
}

static void run(int n)
{
	static uint64_t per[MAXS + 1];
	uint32_t ids[MAXS + 1];
	struct mux *c, *s;
	uint64_t moved = 0, ahead = 0, worst = 0;
	double t0, dt, sum = 0, sq = 0;

	memset(per, 0, sizeof per);
	setup(&c, &s, ids, n + 1); /* ids[n] is the small message's stream */
	t0 = now_s();
	while (moved < (256u << 20)) {
		fill(s, ids, n);
		for (int i = 0; i < 64; i++)
			step(s, c);
		moved += drain(c, ids, n, per);
		move(c, s); /* WINDOW frames back */
	}
	dt = now_s() - t0;
	/* Fairness over the last stretch: equal shares give 1.0. */
	memset(per, 0, sizeof per);
	for (int r = 0; r < 200; r++) {
		fill(s, ids, n);
		for (int i = 0; i < 16; i++)
			step(s, c);
		drain(c, ids, n, per);
		move(c, s);
	}
	for (int i = 0; i < n; i++) {
		sum += (double)per[i];
		sq += (double)per[i] * (double)per[i];
	}
	/* A small message on its own stream while all n are busy. */
	for (int r = 0; r < 20; r++) {
		uint64_t got = 0;

		fill(s, ids, n);
		if (mux_stream_write(s, ids[n], "ping", 4) != 4)
			die("small write", r);
		ahead = 0;
		while (got == 0) {
			ssize_t k = step(s, c);
			drain(c, ids + n, 1, &got);
			ahead += got ? 0 : (uint64_t)k;
			drain(c, ids, n, per);
			move(c, s);
		}
		worst = ahead > worst ? ahead : worst;
	}
	printf("%4d streams: %7.1f MB/s through the mux, Jain fairness %.4f, "
	       "at most %llu bytes ahead of a small message\n",
	       n, (double)moved / dt / 1e6, sum * sum / ((double)n * sq),
	       (unsigned long long)worst);
	mux_free(c);
	mux_free(s);
}

int main(void)
{
	static const int counts[] = { 1, 2, 16, 100, 255 };

	printf("bench_mux: produce room %d bytes, default config (quantum 4096, window 256 KiB)\n",
	       ROOM);
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
		run(counts[i]);
	return 0;
}
