/* racer.c - the racing man-on-the-side of issue 14 attack 4, as a relay.
 *
 *   client --> [listen] --> [path socket] ------------> server   (the real path)
 *                      \--> [attacker socket] --copy--> server   (sent first)
 *   client <-- [listen] <-- [path socket] <------------ server
 *                           [attacker socket] <-------- server   (counted, dropped)
 *
 * Every datagram from the client is forwarded on the path socket; while
 * racing, a copy of it goes to the server from the attacker socket first,
 * so the copy arrives ahead of the original. What the server sends to the
 * attacker's address is counted and never forwarded: this attacker can see
 * and inject, not relay. SIGUSR1 steps the mode: off -> sparse (a copy of
 * one datagram in SPARSE_EVERY, as in issue 14's 22-datagram attack) ->
 * race (a copy of every datagram) -> race and drop every original -> off. SIGTERM/SIGINT write the
 * counters to
 * --stats-file (and stderr) and exit 0. The counters are also written at
 * every mode step.
 *
 * One libev loop, non-blocking sockets, one buffer. Only for tests on
 * loopback.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "io/addr.h"

enum mode { MODE_OFF, MODE_SPARSE, MODE_RACE, MODE_RACE_DROP, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "off", "sparse", "race", "race+drop" };
enum { SPARSE_EVERY = 64 };

struct racer {
	struct ev_loop *loop;
	int lfd, pfd, afd; /* listen, path, attacker */
	ev_io lio, pio, aio;
	ev_signal sig[3];
	struct sockaddr_storage upstream, client;
	bool have_client;
	enum mode mode;
	const char *stats;
	/* counters */
	uint64_t up_dgrams, down_dgrams, raced, dropped;
	uint64_t att_sent_bytes, att_sent_dgrams, att_recv_bytes, att_recv_dgrams;
	uint8_t buf[65536];
};

static int udp_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd;
}

static void write_stats(const struct racer *r, FILE *f)
{
	fprintf(f,
	        "mode=%s up_dgrams=%llu down_dgrams=%llu raced=%llu dropped=%llu "
	        "attacker_sent_bytes=%llu attacker_sent_dgrams=%llu attacker_recv_bytes=%llu "
	        "attacker_recv_dgrams=%llu\n",
	        mode_names[r->mode], (unsigned long long)r->up_dgrams,
	        (unsigned long long)r->down_dgrams, (unsigned long long)r->raced,
	        (unsigned long long)r->dropped, (unsigned long long)r->att_sent_bytes,
	        (unsigned long long)r->att_sent_dgrams, (unsigned long long)r->att_recv_bytes,
	        (unsigned long long)r->att_recv_dgrams);
}

static void save_stats(const struct racer *r)
{
	FILE *f;

	if (!r->stats)
		return;
	f = fopen(r->stats, "w");
	if (!f) {
		fprintf(stderr, "racer: %s: %s\n", r->stats, strerror(errno));
		return;
	}
	write_stats(r, f);
	fclose(f);
}

static void send_to(int fd, const uint8_t *d, size_t n, const struct sockaddr_storage *to)
{
	/* Best effort, like a network: a full buffer drops the datagram. */
	(void)sendto(fd, d, n, 0, (const struct sockaddr *)to, addr_len(to));
}

static void on_listen(struct ev_loop *loop, ev_io *w, int revents)
{
	struct racer *r = w->data;
	socklen_t sl;
	ssize_t n;

	(void)loop;
	(void)revents;
	for (int i = 0; i < 256; i++) {
		sl = sizeof r->client;
		n = recvfrom(r->lfd, r->buf, sizeof r->buf, 0, (struct sockaddr *)&r->client, &sl);
		if (n < 0)
			return;
		r->have_client = true;
		r->up_dgrams++;
		if (r->mode == MODE_RACE || r->mode == MODE_RACE_DROP ||
		    (r->mode == MODE_SPARSE && r->up_dgrams % SPARSE_EVERY == 0)) {
			/* The copy first, from the attacker's own address. */
			send_to(r->afd, r->buf, (size_t)n, &r->upstream);
			r->raced++;
			r->att_sent_dgrams++;
			r->att_sent_bytes += (uint64_t)n;
		}
		if (r->mode == MODE_RACE_DROP)
			r->dropped++;
		else
			send_to(r->pfd, r->buf, (size_t)n, &r->upstream);
	}
}

static void on_path(struct ev_loop *loop, ev_io *w, int revents)
{
	struct racer *r = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	for (int i = 0; i < 256; i++) {
		n = recv(r->pfd, r->buf, sizeof r->buf, 0);
		if (n < 0)
			return;
		r->down_dgrams++;
		if (r->have_client)
			send_to(r->lfd, r->buf, (size_t)n, &r->client);
	}
}

static void on_attacker(struct ev_loop *loop, ev_io *w, int revents)
{
	struct racer *r = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	for (int i = 0; i < 256; i++) {
		n = recv(r->afd, r->buf, sizeof r->buf, 0);
		if (n < 0)
			return;
		r->att_recv_dgrams++;
		r->att_recv_bytes += (uint64_t)n;
	}
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct racer *r = w->data;

	(void)revents;
	if (w->signum == SIGUSR1) {
		r->mode = (enum mode)((r->mode + 1) % MODE_COUNT);
		fprintf(stderr, "racer: mode %s\n", mode_names[r->mode]);
		save_stats(r);
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

static int open_sockets(struct racer *r, const struct sockaddr_storage *listen)
{
	struct sockaddr_storage bound;
	socklen_t sl = sizeof bound;
	char as[ADDR_TEXT_MAX];

	r->lfd = udp_socket(listen->ss_family);
	r->pfd = udp_socket(r->upstream.ss_family);
	r->afd = udp_socket(r->upstream.ss_family);
	if (r->lfd < 0 || r->pfd < 0 || r->afd < 0 ||
	    bind(r->lfd, (const struct sockaddr *)listen, addr_len(listen)) < 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&bound, &sl) < 0) {
		fprintf(stderr, "racer: bind %s: %s\n", addr_format(listen, as), strerror(errno));
		return KS_ERR_IO;
	}
	fprintf(stderr, "racer: listening on %s\n", addr_format(&bound, as));
	return 0;
}

static void start(struct racer *r)
{
	static const int signals[3] = { SIGTERM, SIGINT, SIGUSR1 };

	ev_io_init(&r->lio, on_listen, r->lfd, EV_READ);
	ev_io_init(&r->pio, on_path, r->pfd, EV_READ);
	ev_io_init(&r->aio, on_attacker, r->afd, EV_READ);
	r->lio.data = r->pio.data = r->aio.data = r;
	ev_io_start(r->loop, &r->lio);
	ev_io_start(r->loop, &r->pio);
	ev_io_start(r->loop, &r->aio);
	for (int i = 0; i < 3; i++) {
		ev_signal_init(&r->sig[i], on_signal, signals[i]);
		r->sig[i].data = r;
		ev_signal_start(r->loop, &r->sig[i]);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: racer --listen ADDR:PORT --upstream ADDR:PORT [--stats-file PATH] "
	           "\n"
	           "  a relay that races copies of the client's datagrams to the server from\n"
	           "  an address of its own; SIGUSR1: off -> sparse -> race -> race+drop originals "
	           "-> off\n");
}

int main(int argc, char **argv)
{
	static struct racer r = { .lfd = -1, .pfd = -1, .afd = -1 };
	struct sockaddr_storage listen;
	char err[ADDR_ERR_MAX];
	bool have_listen = false, have_up = false;

	for (int i = 1; i < argc; i++) {
		bool last = i + 1 >= argc;

		if (strcmp(argv[i], "--listen") == 0 && !last) {
			have_listen = addr_parse(argv[++i], NULL, &listen, err, sizeof err) == 0;
		} else if (strcmp(argv[i], "--upstream") == 0 && !last) {
			have_up = addr_parse(argv[++i], NULL, &r.upstream, err, sizeof err) == 0;
		} else if (strcmp(argv[i], "--stats-file") == 0 && !last) {
			r.stats = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!have_listen || !have_up) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	r.loop = ev_default_loop(0);
	if (open_sockets(&r, &listen) != 0)
		return 1;
	start(&r);
	ev_run(r.loop, 0);
	write_stats(&r, stderr);
	save_stats(&r);
	close(r.lfd);
	close(r.pfd);
	close(r.afd);
	return 0;
}
