/* hsflood.c - speak the kcpsocks handshake at a server, as an attacker or
 * a prober would: for the adversarial suite (tests/adversarial) and the
 * handshake bench.
 *
 * It sends datagrams of one kind at a chosen rate for a bounded time and
 * counts what comes back:
 *   valid     a real init of --user/--psk (timestamp now + --ts-offset)
 *   wrongpsk  the same with one PSK bit flipped
 *   unknown   init-shaped, right mac1 and a fresh timestamp, random
 *             ephemeral and ciphertext: costs the server its X25519 and
 *             names no user; costs us no public-key work
 *   badmac    the same with a wrong mac1
 *   garbage   random bytes, random length
 *   data      a data datagram: random non-zero session id, random body
 *   replay    the bytes of --replay FILE, again and again
 * Each valid init has a fresh ephemeral; only the last one's response can
 * be opened, so "accepted" counts at most what --count 1 proves.
 *
 * Traffic goes to 127.0.0.0/8 or ::1 only; anything else is refused.
 * Output: one line of key=value pairs on stdout (see main).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/handshake.h"
#include "core/keys.h"
#include "core/transport.h"
#include "io/clock.h"
#include "io/sysrng.h"

enum {
	SOURCES_MAX = 250,
	BATCH = 64,
	EXIT_USAGE = 2,
};

enum kind { K_VALID, K_WRONGPSK, K_UNKNOWN, K_BADMAC, K_GARBAGE, K_DATA, K_REPLAY };

static const char *const kind_names[] = { "valid",   "wrongpsk", "unknown", "badmac",
	                                  "garbage", "data",     "replay" };

struct opts {
	enum kind kind;
	const char *server, *key, *user, *psk, *save, *replay;
	int64_t ts_offset;
	uint64_t count, rate;
	double duration;
	uint32_t wait_ms, idle_ms, sources;
	int wire_min, wire_max;
};

struct st {
	uint64_t sent, bytes_out, replies, bytes_in, accepted, refused;
	size_t init_len, resp_len;
	struct transport_params params;
	struct handshake_refusal refusal;
};

struct flood {
	struct opts o;
	struct st st;
	struct sockaddr_storage to;
	socklen_t tolen;
	int fd[SOURCES_MAX];
	uint32_t nfd;
	struct rng_source rng;  /* keys and inits: the system's */
	struct prng fast_g;     /* bulk bytes of junk datagrams: xoshiro, seeded */
	struct rng_source fast; /* from the system's (the server cannot tell) */
	struct keys_public pub;
	struct handshake_client cli, cli0; /* cli0: as configured, for the next init */
	uint8_t replay[ENVELOPE_MAX_DATAGRAM];
	size_t replay_len;
	uint8_t last[ENVELOPE_MAX_DATAGRAM];
	size_t last_len;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hsflood --server HOST:PORT --key SERVERPUB [options]\n"
	           "  --kind K         valid|wrongpsk|unknown|badmac|garbage|data|replay (valid)\n"
	           "  --user NAME --psk KEY   the user (valid, wrongpsk)\n"
	           "  --ts-offset MS   init timestamp = now + MS (may be negative)\n"
	           "  --count N        datagrams to send (default 1; 0 with --duration: no cap)\n"
	           "  --rate R         per second (0: as fast as possible)\n"
	           "  --duration S     stop sending after S seconds\n"
	           "  --wait MS        listen for replies this long after the last send (1000)\n"
	           "  --save FILE      write the last datagram sent\n"
	           "  --replay FILE    the datagram of kind replay\n"
	           "  --wire MIN:MAX   wire versions a valid init advertises\n"
	           "  --idle MS        idle_timeout_ms a valid init asks for\n"
	           "  --sources N      send from 127.0.0.2 .. 127.0.0.N+1 (IPv4 loopback)\n"
	           "Prints: sent bytes_out replies bytes_in accepted refused rate, and for an\n"
	           "opened response init_len resp_len wire features idle_ms.\n");
}

static int parse_kind(const char *s, enum kind *k)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*k = (enum kind)i;
			return 0;
		}
	return -1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "kind", 1, 0, 'k' },  { "server", 1, 0, 's' }, { "key", 1, 0, 'K' },
		{ "user", 1, 0, 'u' },  { "psk", 1, 0, 'p' },    { "ts-offset", 1, 0, 't' },
		{ "count", 1, 0, 'n' }, { "rate", 1, 0, 'r' },   { "duration", 1, 0, 'd' },
		{ "wait", 1, 0, 'w' },  { "save", 1, 0, 'S' },   { "replay", 1, 0, 'R' },
		{ "wire", 1, 0, 'W' },  { "idle", 1, 0, 'i' },   { "sources", 1, 0, 'N' },
		{ "help", 0, 0, 'h' },  { 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .count = 1, .wait_ms = 1000 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (parse_kind(optarg, &o->kind) != 0)
				return -1;
			break;
		case 's': o->server = optarg; break;
		case 'K': o->key = optarg; break;
		case 'u': o->user = optarg; break;
		case 'p': o->psk = optarg; break;
		case 't': o->ts_offset = strtoll(optarg, NULL, 10); break;
		case 'n': o->count = strtoull(optarg, NULL, 10); break;
		case 'r': o->rate = strtoull(optarg, NULL, 10); break;
		case 'd': o->duration = strtod(optarg, NULL); break;
		case 'w': o->wait_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'S': o->save = optarg; break;
		case 'R': o->replay = optarg; break;
		case 'W':
			if (sscanf(optarg, "%d:%d", &o->wire_min, &o->wire_max) != 2 ||
			    o->wire_min < 1 || o->wire_max > 255 || o->wire_min > o->wire_max)
				return -1;
			break;
		case 'i': o->idle_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'N': o->sources = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o->server || !o->key || optind != argc || o->sources > SOURCES_MAX)
		return -1;
	if ((o->kind == K_VALID || o->kind == K_WRONGPSK) && (!o->user || !o->psk))
		return -1;
	if (o->kind == K_REPLAY && !o->replay)
		return -1;
	return 0;
}

/* HOST:PORT or [V6]:PORT, numeric, loopback only. */
static int parse_server(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;
	long port;

	if (!colon || (hl = (size_t)(colon - s)) == 0 || hl >= sizeof host)
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		host[hl - 1] = 0;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return -1;
		*len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
		    (ntohl(a->sin_addr.s_addr) >> 24) != 127)
			return -1;
		*len = sizeof *a;
	}
	return 0;
}

static int open_sockets(struct flood *f)
{
	uint32_t n = f->o.sources ? f->o.sources : 1;

	if (f->o.sources && f->to.ss_family != AF_INET)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		int fd = socket(f->to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int sz = 4 << 20;

		if (fd < 0)
			return -1;
		f->fd[f->nfd++] = fd;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
		if (f->o.sources) {
			struct sockaddr_in a = { .sin_family = AF_INET };

			a.sin_addr.s_addr = htonl(0x7f000002u + i);
			if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
				return -1;
		}
	}
	return 0;
}

/* --- building datagrams ---------------------------------------------------- */

/* An init-shaped datagram that names no user: the server's cheap checks
 * pass (session id 0, mac1, timestamp) and its X25519 runs. */
static size_t build_unknown(struct flood *f, uint8_t *out, bool good_mac)
{
	uint8_t et[KEYS_LEN + 8], pad;
	uint64_t ts = (uint64_t)((int64_t)clock_wall_ms() + f->o.ts_offset);
	size_t len;
	uint32_t ic;

	rng_fill(&f->fast, &pad, 1);
	len = HANDSHAKE_INIT_OWN_MIN + pad;
	rng_fill(&f->fast, out, len);
	rng_fill(&f->fast, et, KEYS_LEN);
	for (int i = 0; i < 8; i++)
		et[KEYS_LEN + i] = (uint8_t)(ts >> (8 * i));
	memcpy(&ic, out + ENVELOPE_SID_LEN, 4);
	ic = le32toh(ic);
	crypto_stream_chacha20_ietf_xor_ic(out + HANDSHAKE_EPH_OFF, et, sizeof et,
	                                   out + ENVELOPE_SID_LEN + 4, ic, f->pub.obf);
	memset(out, 0, ENVELOPE_SID_LEN);
	envelope_mask_sid(f->pub.hdr, out, len - HANDSHAKE_MAC_LEN);
	if (good_mac)
		crypto_generichash(out + len - HANDSHAKE_MAC_LEN, HANDSHAKE_MAC_LEN, out,
		                   len - HANDSHAKE_MAC_LEN, f->pub.mac1, KEYS_LEN);
	return len;
}

static size_t build(struct flood *f, uint8_t *out)
{
	uint64_t now = (uint64_t)((int64_t)clock_wall_ms() + f->o.ts_offset);
	uint16_t r;
	ssize_t n;

	switch (f->o.kind) {
	case K_VALID:
	case K_WRONGPSK:
		n = handshake_client_write_init(&f->cli, &f->rng, now, out, ENVELOPE_MAX_DATAGRAM);
		return n > 0 ? (size_t)n : 0;
	case K_UNKNOWN: return build_unknown(f, out, true);
	case K_BADMAC: return build_unknown(f, out, false);
	case K_GARBAGE:
		rng_fill(&f->fast, &r, sizeof r);
		r = (uint16_t)(1 + r % 1400);
		rng_fill(&f->fast, out, r);
		return r;
	case K_DATA:
		rng_fill(&f->fast, &r, sizeof r);
		r = (uint16_t)(ENVELOPE_SID_LEN + 40 + r % 1300);
		rng_fill(&f->fast, out, r);
		if (out[0] == 0)
			out[0] = 1; /* not session id 0 (after unmasking, most likely) */
		envelope_mask_sid(f->pub.hdr, out, r);
		return r;
	case K_REPLAY: memcpy(out, f->replay, f->replay_len); return f->replay_len;
	}
	return 0;
}

/* --- sending and receiving ---------------------------------------------------- */

static void on_reply(struct flood *f, const uint8_t *d, size_t len)
{
	struct handshake_result res;
	int rc;

	f->st.replies++;
	f->st.bytes_in += len;
	if (f->o.kind != K_VALID || f->cli.state != HANDSHAKE_CLIENT_SENT)
		return;
	rc = handshake_client_read_response(&f->cli, d, len, &res);
	if (rc == 0)
		f->cli = f->cli0; /* DONE: the next init starts afresh */
	if (rc == 0) {
		f->st.accepted++;
		f->st.params = res.params;
		f->st.resp_len = len;
		f->st.init_len = f->last_len;
	} else if (rc == KS_ERR_UNSUPPORTED) {
		f->st.refused++;
		f->st.refusal = f->cli.refusal;
		f->st.resp_len = len;
		f->st.init_len = f->last_len;
	}
	sodium_memzero(&res, sizeof res);
}

static void drain(struct flood *f)
{
	uint8_t buf[ENVELOPE_MAX_DATAGRAM + 1];

	for (uint32_t i = 0; i < f->nfd; i++) {
		ssize_t n;

		while ((n = recv(f->fd[i], buf, sizeof buf, 0)) >= 0)
			on_reply(f, buf, (size_t)n);
	}
}

static void send_batch(struct flood *f, uint64_t n)
{
	static uint8_t bufs[BATCH][ENVELOPE_MAX_DATAGRAM];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int fd = f->fd[(f->st.sent / BATCH) % f->nfd];
	int k, sent;

	if (n > BATCH)
		n = BATCH;
	for (k = 0; k < (int)n; k++) {
		size_t len = build(f, bufs[k]);

		if (len == 0) {
			fprintf(stderr, "hsflood: could not build a datagram\n");
			exit(1);
		}
		iov[k] = (struct iovec){ bufs[k], len };
		m[k] = (struct mmsghdr){ 0 };
		m[k].msg_hdr.msg_iov = &iov[k];
		m[k].msg_hdr.msg_iovlen = 1;
		m[k].msg_hdr.msg_name = &f->to;
		m[k].msg_hdr.msg_namelen = f->tolen;
	}
	sent = sendmmsg(fd, m, (unsigned)n, 0);
	for (int i = 0; i < sent; i++) {
		f->st.sent++;
		f->st.bytes_out += iov[i].iov_len;
	}
	if (sent > 0) {
		memcpy(f->last, bufs[sent - 1], iov[sent - 1].iov_len);
		f->last_len = iov[sent - 1].iov_len;
	}
}

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void pause_us(long us)
{
	struct timespec t = { 0, us * 1000 };

	nanosleep(&t, NULL);
}

static void run(struct flood *f)
{
	double t0 = mono_s(), now, end;
	uint64_t cap = f->o.count ? f->o.count : UINT64_MAX;

	for (;;) {
		uint64_t due;

		now = mono_s() - t0;
		if (f->st.sent >= cap || (f->o.duration > 0 && now >= f->o.duration))
			break;
		due = f->o.rate ? (uint64_t)(now * (double)f->o.rate) + 1 : f->st.sent + BATCH;
		if (due > cap)
			due = cap;
		if (due > f->st.sent)
			send_batch(f, due - f->st.sent);
		else
			pause_us(200);
		drain(f);
	}
	f->o.duration = mono_s() - t0; /* what it took */
	end = mono_s() + f->o.wait_ms / 1000.0;
	while (mono_s() < end) {
		drain(f);
		pause_us(1000);
	}
	drain(f);
}

static int setup(struct flood *f)
{
	uint8_t spub[KEYS_LEN];
	struct keys_user u;
	struct transport_params tp;
	FILE *in;

	if (keys_decode(spub, f->o.key, strlen(f->o.key)) != 0)
		return fprintf(stderr, "hsflood: --key: not a key\n"), -1;
	keys_derive_public(&f->pub, spub);
	if (f->o.kind == K_VALID || f->o.kind == K_WRONGPSK) {
		uint8_t psk[KEYS_LEN];

		if (keys_decode(psk, f->o.psk, strlen(f->o.psk)) != 0 ||
		    keys_user_set(&u, f->o.user, psk) != 0)
			return fprintf(stderr, "hsflood: bad --user or --psk\n"), -1;
		if (f->o.kind == K_WRONGPSK)
			u.psk[0] ^= 1;
		tparams_default(&tp);
		if (f->o.idle_ms)
			tp.idle_timeout_ms = f->o.idle_ms;
		if (handshake_client_init(&f->cli, spub, &u, &tp) != 0)
			return fprintf(stderr, "hsflood: bad proposal\n"), -1;
		if (f->o.wire_min) {
			f->cli.wire_min = (uint8_t)f->o.wire_min;
			f->cli.wire_max = (uint8_t)f->o.wire_max;
		}
		f->cli0 = f->cli;
		sodium_memzero(psk, sizeof psk);
		sodium_memzero(&u, sizeof u);
	}
	if (f->o.kind == K_REPLAY) {
		in = fopen(f->o.replay, "rb");
		if (!in)
			return fprintf(stderr, "hsflood: %s: %s\n", f->o.replay, strerror(errno)),
			       -1;
		f->replay_len = fread(f->replay, 1, sizeof f->replay, in);
		fclose(in);
		if (f->replay_len == 0)
			return fprintf(stderr, "hsflood: %s: empty\n", f->o.replay), -1;
	}
	return 0;
}

static void report(const struct flood *f)
{
	const struct st *s = &f->st;

	printf("kind=%s sent=%llu bytes_out=%llu replies=%llu bytes_in=%llu accepted=%llu "
	       "refused=%llu seconds=%.2f rate=%.0f",
	       kind_names[f->o.kind], (unsigned long long)s->sent, (unsigned long long)s->bytes_out,
	       (unsigned long long)s->replies, (unsigned long long)s->bytes_in,
	       (unsigned long long)s->accepted, (unsigned long long)s->refused, f->o.duration,
	       f->o.duration > 0 ? (double)s->sent / f->o.duration : 0.0);
	if (s->accepted)
		printf(" init_len=%zu resp_len=%zu wire=%u features=%u idle_ms=%u", s->init_len,
		       s->resp_len, (unsigned)s->params.wire, (unsigned)s->params.features,
		       (unsigned)s->params.idle_timeout_ms);
	if (s->refused)
		printf(" init_len=%zu resp_len=%zu server_wire=%u..%u", s->init_len, s->resp_len,
		       (unsigned)s->refusal.server_min, (unsigned)s->refusal.server_max);
	printf("\n");
}

int main(int argc, char **argv)
{
	static struct flood f;
	int rc = 1;

	if (parse_opts(argc, argv, &f.o) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (sysrng_init() != 0)
		return 1;
	f.rng = sysrng_source();
	{
		uint64_t seed;

		rng_fill(&f.rng, &seed, sizeof seed);
		prng_seed(&f.fast_g, seed);
		f.fast = prng_source(&f.fast_g);
	}
	if (parse_server(f.o.server, &f.to, &f.tolen) != 0) {
		fprintf(stderr, "hsflood: --server: a numeric loopback HOST:PORT only\n");
		return EXIT_USAGE;
	}
	if (setup(&f) != 0)
		return 1;
	if (open_sockets(&f) != 0) {
		fprintf(stderr, "hsflood: sockets: %s\n", strerror(errno));
		goto out;
	}
	run(&f);
	report(&f);
	if (f.o.save && f.last_len) {
		FILE *o = fopen(f.o.save, "wb");

		if (!o || fwrite(f.last, 1, f.last_len, o) != f.last_len || fclose(o) != 0) {
			fprintf(stderr, "hsflood: %s: %s\n", f.o.save, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	for (uint32_t i = 0; i < f.nfd; i++)
		close(f.fd[i]);
	handshake_client_wipe(&f.cli);
	handshake_client_wipe(&f.cli0);
	return rc;
}
