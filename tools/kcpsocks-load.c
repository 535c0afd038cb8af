/* kcpsocks-load.c - many real client sessions from one process: the load
 * generator of issue 19 (docs/bench/concurrency.md, sessions).
 *
 * It opens --sessions N client sessions (the session core, real handshakes:
 * what kcpsocks-local runs, one per session) to one server, each on its own
 * UDP socket, and on each session --streams M streams to --target (a SOCKS5
 * CONNECT the server carries out). Idle streams are opened and left open;
 * with --fetch PATH each stream sends one HTTP/1.0 GET and reads the answer
 * to its end. Then it holds the sessions open (keepalives only) for --hold
 * seconds, closes them (an authenticated close each) and prints one line
 * of key=value pairs:
 *   sessions established hs_failed lost hs_secs hs_per_s streams_ok
 *   streams_failed fetched fetch_bytes fetch_p50_ms fetch_p99_ms
 *   self_cpu_s and, with --server-pid, server_rss_kb_{before,up,held,after}
 *   and server_cpu_s_{hs,hold} (from /proc); with --aes, aes_sessions (those
 *   that agreed AES-256-GCM).
 *
 * The server budgets X25519 per source host (HANDSHAKE_SRC_DH_RATE per
 * second, burst HANDSHAKE_SRC_DH_BURST; src/base/limits.h), so the sockets
 * are bound round robin to 127.0.0.1 .. 127.0.0.<--sources> (default 250):
 * the per-host budget does not limit the generator, the total one does.
 *
 * Loopback only: the server must be in 127.0.0.0/8. One libev loop; each
 * session has an ev_io and an ev_timer on its deadline.
 * Exit: 0 when every session came up (and, active, every fetch ended), 1
 * otherwise, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "core/keys.h"
#include "core/profile.h"
#include "core/session.h"
#include "core/transport.h"
#include "io/cipher.h"
#include "io/clock.h"
#include "io/sysrng.h"

enum {
	EXIT_USAGE = 2,
	SOURCES_MAX = 250,
	USERS_MAX = 4096,
	REQ_MAX = 64,
	DGRAM_MAX = 2048,
	FETCH_SAMPLES_MAX = 1 << 20,
};

struct luser {
	struct keys_user u;
};

struct opts {
	const char *server, *key, *user, *psk, *users, *target, *fetch, *profile;
	uint32_t sessions, streams, inflight, sources, rate;
	double hold, timeout;
	int server_pid;
	bool aes; /* offer AES-256-GCM where the CPU runs it (cipher = auto) */
};

struct gen;

struct lstream {
	uint32_t id;
	bool up, done;
	uint64_t t0;
};

struct lsess {
	struct gen *g;
	struct session *s;
	int fd;
	ev_io io;
	ev_timer tm;
	bool up, ever_up;
	struct lstream *st;
	uint32_t nst;
};

struct gen {
	struct opts o;
	struct ev_loop *loop;
	struct rng_source rng;
	struct sockaddr_in srv, tgt;
	uint8_t spub[KEYS_LEN];
	struct luser *users;
	uint32_t nusers;
	struct profile prof;
	struct lsess *ls;
	uint32_t started, established, handshaking, hs_failed, lost;
	uint32_t aes_sessions; /* established with AES-256-GCM (--aes) */
	uint32_t streams_ok, streams_failed, fetched;
	uint64_t fetch_bytes, t_start, t_up;
	uint32_t *fetch_ms;
	uint32_t nfetch_ms;
	uint8_t req[REQ_MAX];
	size_t req_len;
	char get[256];
	size_t get_len;
	ev_timer starter, phase;
	ev_signal sig[2];
	int stage; /* 0 starting, 1 holding, 2 done */
	uint8_t buf[DGRAM_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: kcpsocks-load --server 127.0.0.1:PORT --key SERVER_PUBKEY\n"
	        "                     (--user NAME --psk PSK | --users FILE) [options]\n"
	        "  --sessions N       client sessions to open (default 100)\n"
	        "  --streams M        streams per session (default 0)\n"
	        "  --target HOST:PORT what each stream CONNECTs to (IPv4; needed with --streams)\n"
	        "  --fetch PATH       active: each stream GETs http://TARGET/PATH once, reads to\n"
	        "                     the end (default: idle streams)\n"
	        "  --hold SECONDS     keep the sessions open this long once up (default 0)\n"
	        "  --timeout SECONDS  give up on sessions not up by then (default 60)\n"
	        "  --inflight K       handshakes outstanding at once (default 64)\n"
	        "  --rate R           new sessions per second at most (default 0: no cap)\n"
	        "  --sources S        bind sessions round robin to 127.0.0.1..127.0.0.S\n"
	        "                     (default 250, max 250). The server allows each source\n"
	        "                     host %d handshakes/s (burst %d) and %d/s in total\n"
	        "                     (src/base/limits.h): many sources keep the per-host\n"
	        "                     budget from limiting the generator.\n"
	        "  --profile NAME     transport profile to propose (default: the default)\n"
	        "  --server-pid PID   sample the server's RSS and CPU from /proc/PID\n"
	        "  --aes              offer AES-256-GCM where this CPU runs it, as the\n"
	        "                     daemons' cipher = auto does (default: ChaCha20 only)\n"
	        "  --users FILE       lines 'NAME PSK'; sessions use them round robin (the\n"
	        "                     server's sessions_per_user must allow N / users)\n"
	        "Prints one line of key=value pairs. Loopback (127.0.0.0/8) servers only.\n",
	        HANDSHAKE_SRC_DH_RATE, HANDSHAKE_SRC_DH_BURST, HANDSHAKE_DH_RATE);
}

static int parse_ep(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long port;

	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535)
		return -1;
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static uint64_t now_ms(void) { return clock_mono_ms(); }

/* proc_sample reads VmRSS (KiB) and utime+stime (s) of pid. */
static void proc_sample(int pid, long *rss_kb, double *cpu_s)
{
	char path[64], line[512];
	FILE *f;

	*rss_kb = -1;
	*cpu_s = -1;
	if (pid <= 0)
		return;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r"))) {
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "VmRSS:", 6) == 0)
				*rss_kb = strtol(line + 6, NULL, 10);
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if ((f = fopen(path, "r"))) {
		if (fgets(line, sizeof line, f)) {
			char *p = strrchr(line, ')');
			unsigned long ut = 0, st = 0;
			/* after ") ": state, then fields 4.. ; utime is field 14 */
			if (p &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			           &ut, &st) == 2)
				*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		}
		fclose(f);
	}
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int on_output(const uint8_t *d, size_t len, const struct sessions_addr *to, void *user)
{
	struct lsess *l = user;

	(void)to;
	return send(l->fd, d, len, 0) == (ssize_t)len ? 0 : KS_ERR_AGAIN;
}

static void rearm(struct lsess *l)
{
	uint64_t dl = session_next_deadline(l->s), now = now_ms();
	double after;

	ev_timer_stop(l->g->loop, &l->tm);
	if (dl == KS_NEVER)
		return;
	after = dl > now ? (double)(dl - now) / 1000.0 : 0.0;
	ev_timer_set(&l->tm, after, 0.0);
	ev_timer_start(l->g->loop, &l->tm);
}

static void stream_read(struct lsess *l, struct lstream *st)
{
	struct gen *g = l->g;
	struct mux *m = session_mux(l->s);
	ssize_t n;

	while (m && (n = mux_stream_read(m, st->id, g->buf, sizeof g->buf)) > 0)
		g->fetch_bytes += (uint64_t)n;
	if (m && n == 0 && !st->done) {
		st->done = true;
		g->fetched++;
		if (g->nfetch_ms < FETCH_SAMPLES_MAX)
			g->fetch_ms[g->nfetch_ms++] = (uint32_t)(now_ms() - st->t0);
	}
}

static struct lstream *find_stream(struct lsess *l, uint32_t id)
{
	for (uint32_t i = 0; i < l->nst; i++)
		if (l->st[i].id == id)
			return &l->st[i];
	return NULL;
}

static void open_streams(struct lsess *l)
{
	struct gen *g = l->g;
	struct mux *m = session_mux(l->s);

	for (uint32_t i = 0; m && i < g->o.streams; i++) {
		struct lstream *st = &l->st[l->nst];
		if (mux_open_stream(m, g->req, g->req_len, &st->id) != 0) {
			g->streams_failed++;
			continue;
		}
		st->up = st->done = false;
		st->t0 = now_ms();
		l->nst++;
		if (g->o.fetch && (mux_stream_write(m, st->id, g->get, g->get_len) <= 0 ||
		                   mux_stream_shutdown(m, st->id) != 0))
			g->streams_failed++;
	}
}

static void drain(struct lsess *l)
{
	struct gen *g = l->g;
	struct session_event ev;
	struct lstream *st;

	while (session_next_event(l->s, &ev) == 0) {
		switch (ev.type) {
		case SESSION_EV_ESTABLISHED:
			l->up = true;
			if (!l->ever_up) {
				l->ever_up = true;
				g->established++;
				g->handshaking--;
				if (tparams_aes_gcm(session_params(l->s)->features))
					g->aes_sessions++;
				if (g->established == g->o.sessions)
					g->t_up = now_ms();
			}
			l->nst = 0;
			open_streams(l);
			break;
		case SESSION_EV_HANDSHAKE_FAILED: g->hs_failed++; break;
		case SESSION_EV_LOST:
			l->up = false;
			if (g->stage < 2)
				g->lost++;
			l->nst = 0;
			break;
		case SESSION_EV_STREAM:
			st = find_stream(l, ev.stream.id);
			if (!st)
				break;
			if (ev.stream.type == MUX_EV_REPLY) {
				bool ok = ev.stream.len >= 2 && ev.stream.data[1] == 0;
				st->up = ok;
				if (ok)
					g->streams_ok++;
				else
					g->streams_failed++;
			} else if (ev.stream.type == MUX_EV_READABLE ||
			           ev.stream.type == MUX_EV_FIN) {
				stream_read(l, st);
			} else if (ev.stream.type == MUX_EV_RESET) {
				if (!st->up)
					g->streams_failed++;
				st->done = true;
			}
			break;
		}
	}
	session_pump(l->s, now_ms());
	session_flush(l->s, now_ms());
	rearm(l);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsess *l = w->data;
	struct gen *g = l->g;
	ssize_t n;

	(void)loop;
	(void)revents;
	while ((n = recv(l->fd, g->buf, sizeof g->buf, 0)) > 0)
		(void)session_on_datagram(l->s, g->buf, (size_t)n, now_ms(), clock_wall_ms());
	drain(l);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsess *l = w->data;

	(void)loop;
	(void)revents;
	session_on_timer(l->s, now_ms(), clock_wall_ms());
	drain(l);
}

static int start_one(struct gen *g)
{
	struct lsess *l = &g->ls[g->started];
	struct session_client_config sc = { 0 };
	struct mux_config mc;
	struct sockaddr_in src = { 0 };
	uint32_t i = g->started;

	l->g = g;
	l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -1;
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000001u + i % g->o.sources);
	if (bind(l->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
	    connect(l->fd, (struct sockaddr *)&g->srv, sizeof g->srv) != 0)
		return -1;
	transport_proposal(&g->prof, &sc.proposal);
	if (g->o.aes)
		sc.proposal.features |= cipher_features(CONFIG_CIPHER_AUTO, cipher_aes_available());
	transport_local_of(&g->prof, &sc.local);
	transport_mux(&g->prof, 0, &mc);
	sc.server_pub = g->spub;
	sc.user = &g->users[i % g->nusers].u;
	sc.mux = &mc;
	sc.dead_path_ms = g->prof.dead_path_ms;
	sc.rng = &g->rng;
	sc.output = on_output;
	sc.output_user = l;
	if (session_client_new(&l->s, &sc, now_ms()) != 0)
		return -1;
	if (g->o.streams && !(l->st = calloc(g->o.streams, sizeof *l->st)))
		return -1;
	ev_io_init(&l->io, on_io, l->fd, EV_READ);
	l->io.data = l;
	ev_io_start(g->loop, &l->io);
	ev_init(&l->tm, on_timer);
	l->tm.data = l;
	g->started++;
	g->handshaking++;
	session_on_timer(l->s, now_ms(), clock_wall_ms());
	drain(l);
	return 0;
}

static void on_starter(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gen *g = w->data;
	uint64_t now = now_ms();
	uint64_t allowed = g->o.sessions;

	(void)loop;
	(void)revents;
	if (g->o.rate)
		allowed = (now - g->t_start) * g->o.rate / 1000 + 1;
	while (g->started < g->o.sessions && g->started < allowed &&
	       g->handshaking < g->o.inflight) {
		if (start_one(g) != 0) {
			fprintf(stderr, "kcpsocks-load: session %u: %s\n", g->started,
			        strerror(errno));
			g->o.sessions = g->started;
			break;
		}
	}
	if (g->started >= g->o.sessions)
		ev_timer_stop(g->loop, &g->starter);
}

static void finish(struct gen *g)
{
	g->stage = 2;
	ev_timer_stop(g->loop, &g->starter);
	ev_timer_stop(g->loop, &g->phase);
	ev_break(g->loop, EVBREAK_ALL);
}

static bool fetches_done(const struct gen *g)
{
	return !g->o.fetch || g->fetched + g->streams_failed >= g->o.sessions * g->o.streams;
}

static void on_phase(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gen *g = w->data;
	uint64_t now = now_ms();

	(void)loop;
	(void)revents;
	if (g->stage == 0) {
		bool up = g->established >= g->o.sessions && fetches_done(g);
		if (!up && now - g->t_start < (uint64_t)(g->o.timeout * 1000))
			return;
		if (!g->t_up)
			g->t_up = now;
		g->stage = 1;
		g->t_start = now; /* hold from here */
	}
	/* Stage 0 waited for the fetches, up to --timeout: now only the hold. */
	if (now - g->t_start >= (uint64_t)(g->o.hold * 1000))
		finish(g);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	finish(w->data);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int load_users(struct gen *g)
{
	static struct luser one;
	uint8_t psk[KEYS_LEN];

	if (g->o.users) {
		FILE *f = fopen(g->o.users, "r");
		char name[64], pk[128];
		if (!f)
			return -1;
		g->users = calloc(USERS_MAX, sizeof *g->users);
		while (g->users && g->nusers < USERS_MAX &&
		       fscanf(f, "%63s %127s", name, pk) == 2) {
			if (keys_decode(psk, pk, strlen(pk)) != 0 ||
			    keys_user_set(&g->users[g->nusers].u, name, psk) != 0) {
				fclose(f);
				return -1;
			}
			g->nusers++;
		}
		fclose(f);
		return g->nusers ? 0 : -1;
	}
	if (!g->o.user || !g->o.psk || keys_decode(psk, g->o.psk, strlen(g->o.psk)) != 0 ||
	    keys_user_set(&one.u, g->o.user, psk) != 0)
		return -1;
	g->users = &one;
	g->nusers = 1;
	return 0;
}

static int setup(struct gen *g)
{
	const struct profile *p = g->o.profile ? profile_find(g->o.profile) : profile_default();
	struct rlimit rl;

	if (!p || parse_ep(g->o.server, &g->srv) != 0 ||
	    (ntohl(g->srv.sin_addr.s_addr) >> 24) != 127 || !g->o.key ||
	    keys_decode(g->spub, g->o.key, strlen(g->o.key)) != 0 || load_users(g) != 0)
		return -1;
	g->prof = *p;
	if (g->o.streams) {
		uint32_t a;
		if (!g->o.target || parse_ep(g->o.target, &g->tgt) != 0)
			return -1;
		a = ntohl(g->tgt.sin_addr.s_addr);
		g->req[0] = 5;
		g->req[1] = 1;
		g->req[2] = 0;
		g->req[3] = 1;
		memcpy(g->req + 4, &g->tgt.sin_addr, 4);
		memcpy(g->req + 8, &g->tgt.sin_port, 2);
		g->req_len = 10;
		if (g->o.fetch)
			g->get_len =
			        (size_t)snprintf(g->get, sizeof g->get,
			                         "GET /%s HTTP/1.0\r\nHost: %u.%u.%u.%u\r\n\r\n",
			                         g->o.fetch[0] == '/' ? g->o.fetch + 1 : g->o.fetch,
			                         a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g->o.sessions + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	g->ls = calloc(g->o.sessions, sizeof *g->ls);
	g->fetch_ms = calloc(FETCH_SAMPLES_MAX, sizeof *g->fetch_ms);
	return g->ls && g->fetch_ms ? 0 : -1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "server", 1, 0, 's' },  { "key", 1, 0, 'k' },
		{ "user", 1, 0, 'u' },    { "psk", 1, 0, 'p' },
		{ "users", 1, 0, 'U' },   { "sessions", 1, 0, 'n' },
		{ "streams", 1, 0, 'm' }, { "target", 1, 0, 't' },
		{ "fetch", 1, 0, 'f' },   { "hold", 1, 0, 'H' },
		{ "timeout", 1, 0, 'T' }, { "inflight", 1, 0, 'i' },
		{ "rate", 1, 0, 'r' },    { "sources", 1, 0, 'S' },
		{ "profile", 1, 0, 'P' }, { "server-pid", 1, 0, 'x' },
		{ "aes", 0, 0, 'a' },     { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){
		.sessions = 100, .inflight = 64, .sources = SOURCES_MAX, .timeout = 60
	};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->server = optarg; break;
		case 'k': o->key = optarg; break;
		case 'u': o->user = optarg; break;
		case 'p': o->psk = optarg; break;
		case 'U': o->users = optarg; break;
		case 'n': o->sessions = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm': o->streams = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't': o->target = optarg; break;
		case 'f': o->fetch = optarg; break;
		case 'H': o->hold = strtod(optarg, NULL); break;
		case 'T': o->timeout = strtod(optarg, NULL); break;
		case 'i': o->inflight = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'r': o->rate = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'S': o->sources = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'P': o->profile = optarg; break;
		case 'x': o->server_pid = atoi(optarg); break;
		case 'a': o->aes = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || !o->server || o->sessions == 0 || o->inflight == 0 ||
	    o->sources == 0 || o->sources > SOURCES_MAX || o->hold < 0 || o->timeout <= 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct gen g;
	long rss[4];
	double cpu[4], hs_s, self0;
	uint32_t p50 = 0, p99 = 0;
	uint64_t t0;

	if (parse_opts(argc, argv, &g.o) != 0 || setup(&g) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (sysrng_init() != 0) {
		fprintf(stderr, "kcpsocks-load: no system randomness\n");
		return 1;
	}
	g.rng = sysrng_source();
	g.loop = ev_default_loop(0);
	proc_sample(g.o.server_pid, &rss[0], &cpu[0]);
	self0 = self_cpu();
	t0 = g.t_start = now_ms();
	ev_timer_init(&g.starter, on_starter, 0.0, 0.001);
	g.starter.data = &g;
	ev_timer_start(g.loop, &g.starter);
	ev_timer_init(&g.phase, on_phase, 0.05, 0.05);
	g.phase.data = &g;
	ev_timer_start(g.loop, &g.phase);
	ev_signal_init(&g.sig[0], on_signal, SIGINT);
	ev_signal_init(&g.sig[1], on_signal, SIGTERM);
	for (int i = 0; i < 2; i++) {
		g.sig[i].data = &g;
		ev_signal_start(g.loop, &g.sig[i]);
	}
	/* Up: run until every session is up (or the timeout), then hold. */
	while (g.stage == 0 && ev_run(g.loop, EVRUN_ONCE))
		;
	proc_sample(g.o.server_pid, &rss[1], &cpu[1]);
	hs_s = (double)((g.t_up ? g.t_up : now_ms()) - t0) / 1000.0;
	if (g.stage == 1)
		ev_run(g.loop, 0);
	proc_sample(g.o.server_pid, &rss[2], &cpu[2]);
	for (uint32_t i = 0; i < g.started; i++) {
		struct lsess *l = &g.ls[i];
		session_close(l->s, now_ms());
		ev_io_stop(g.loop, &l->io);
		ev_timer_stop(g.loop, &l->tm);
		session_free(l->s);
		close(l->fd);
		free(l->st);
	}
	/* Give the server a moment to take the closes in. */
	usleep(500 * 1000);
	proc_sample(g.o.server_pid, &rss[3], &cpu[3]);
	if (g.nfetch_ms) {
		qsort(g.fetch_ms, g.nfetch_ms, sizeof *g.fetch_ms, cmp_u32);
		p50 = g.fetch_ms[(g.nfetch_ms - 1) / 2];
		p99 = g.fetch_ms[(g.nfetch_ms - 1) * 99 / 100];
	}
	printf("sessions=%u established=%u hs_failed=%u lost=%u hs_secs=%.3f hs_per_s=%.1f "
	       "streams_ok=%u streams_failed=%u fetched=%u fetch_bytes=%llu fetch_p50_ms=%u "
	       "fetch_p99_ms=%u self_cpu_s=%.2f",
	       g.o.sessions, g.established, g.hs_failed, g.lost, hs_s,
	       hs_s > 0 ? g.established / hs_s : 0.0, g.streams_ok, g.streams_failed, g.fetched,
	       (unsigned long long)g.fetch_bytes, p50, p99, self_cpu() - self0);
	if (g.o.server_pid > 0)
		printf(" server_rss_kb_before=%ld server_rss_kb_up=%ld server_rss_kb_held=%ld "
		       "server_rss_kb_after=%ld server_cpu_s_hs=%.2f server_cpu_s_hold=%.2f",
		       rss[0], rss[1], rss[2], rss[3], cpu[1] - cpu[0], cpu[2] - cpu[1]);
	if (g.o.aes)
		printf(" aes_sessions=%u", g.aes_sessions);
	printf("\n");
	return g.established == g.o.sessions && fetches_done(&g) ? 0 : 1;
}
