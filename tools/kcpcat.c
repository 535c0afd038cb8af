/* kcpcat.c - netcat over KCP on plain UDP (no envelope).
 *
 * A test and interoperability tool for the KCP engine and the io layer:
 * stdin goes to the peer, the peer's data goes to stdout. Usage, the end of
 * stream and exit statuses are in docs/kcpcat.md; the option table below
 * drives the parser and --help.
 *
 * One libev loop. Callbacks only do their own step (read stdin into KCP,
 * feed datagrams to KCP, write stdout, run a due KCP update); the
 * ev_prepare watcher, once per iteration, moves data from KCP to stdout,
 * decides whether we are done, flushes the UDP send batch with sendmmsg and
 * re-arms the one timer from the earliest deadline (KCP's, -w's, linger's).
 * Backpressure: stdin is watched only while KCP has send room; KCP is
 * drained only while the stdout buffer has room, so a slow stdout closes
 * our receive window and the peer stops.
 */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "core/kcp.h"
#include "io/addr.h"
#include "io/clock.h"
#include "io/fdio.h"
#include "io/log.h"
#include "io/udp.h"

enum {
	EXIT_USAGE = 2,
	EXIT_SIGNAL = 128,
	KCPCAT_CONV_DEFAULT = 0x6b637073, /* "kcps" */
	ERR_MAX = 256,
};

_Static_assert(KCPCAT_OUT_MAX >= KCP_MAX_FRAGMENTS * UDP_DATAGRAM_MAX,
               "the stdout buffer must hold the largest message a peer can send");

/* ------------------------------------------------------------------ */
/* options                                                            */

struct opts {
	const char *listen; /* borrowed from argv; NULL: connect */
	const char *host, *port;
	struct sockaddr_storage bind_addr; /* parsed from -l, or the wildcard */
	struct sockaddr_storage peer;      /* parsed from HOST PORT */
	uint32_t conv;
	const char *preset;
	uint32_t sndwnd, rcvwnd, mtu;
	uint32_t interval; /* 0: the preset's */
	bool raw;
	uint32_t idle_s; /* 0: never */
	bool stats;
	bool verbose;
	bool help;
};

struct optdef {
	const char *name;
	int key; /* short option, or 0 for long only */
	const char *arg;
	const char *def; /* default, applied before the command line; NULL: none */
	const char *help;
	int (*apply)(const struct optdef *d, struct opts *o, const char *arg, char *err,
	             size_t errlen);
	size_t field;      /* numeric options: offsetof the uint32_t in struct opts */
	uint32_t min, max; /* numeric options: the accepted range */
};

/* parse_u32 reads decimal, or hex after "0x", into [min, max]. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	/* strtoull would take a sign or spaces; we take digits only. */
	if (!*s || !strchr(base == 16 ? "0123456789abcdefABCDEF" : "0123456789", s[0]))
		return KS_ERR_INVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || *end || v < min || v > max)
		return KS_ERR_INVAL;
	*out = (uint32_t)v;
	return 0;
}

static int set_number(const struct optdef *d, struct opts *o, const char *arg, char *err,
                      size_t errlen)
{
	uint32_t *field = (uint32_t *)((char *)o + d->field);

	if (parse_u32(arg, d->min, d->max, field) != 0) {
		snprintf(err, errlen, "bad --%s '%s': expected a number from %u to %u", d->name,
		         arg, d->min, d->max);
		return KS_ERR_INVAL;
	}
	return 0;
}

static int set_listen(const struct optdef *d, struct opts *o, const char *arg, char *err,
                      size_t errlen)
{
	(void)d, (void)err, (void)errlen;
	o->listen = arg;
	return 0;
}

static int set_preset(const struct optdef *d, struct opts *o, const char *arg, char *err,
                      size_t errlen)
{
	struct kcp_config probe;

	(void)d;
	kcp_config_default(&probe);
	if (kcp_config_preset(&probe, arg) != 0) {
		snprintf(err, errlen, "bad --preset '%s': expected normal, fast, fast2 or fast3",
		         arg);
		return KS_ERR_INVAL;
	}
	o->preset = arg;
	return 0;
}

static int set_flag(const struct optdef *d, struct opts *o, const char *arg, char *err,
                    size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	*(bool *)((char *)o + d->field) = true;
	return 0;
}

#define NUM(f, lo, hi) set_number, offsetof(struct opts, f), (lo), (hi)
#define FLAG(f)        set_flag, offsetof(struct opts, f), 0, 0

/* The one table: parser, defaults and --help all come from here. */
static const struct optdef optdefs[] = {
	{ "listen", 'l', "[ADDR:]PORT", NULL,
	  "listen on ADDR:PORT (ADDR defaults to 127.0.0.1; 0.0.0.0 or [::] for all) "
	  "and serve the first peer that sends a valid KCP datagram",
	  set_listen },
	{ "conv", 0, "N", "0x6b637073",
	  "KCP conversation id, decimal or 0x-hex; both ends must agree",
	  NUM(conv, 0, UINT32_MAX) },
	{ "preset", 0, "NAME", "fast",
	  "normal, fast, fast2 or fast3: nodelay, interval, fast resend, congestion control",
	  set_preset },
	{ "sndwnd", 0, "N", "1024", "send window, segments", NUM(sndwnd, 1, KCP_WND_MAX) },
	{ "rcvwnd", 0, "N", "1024", "receive window, segments",
	  NUM(rcvwnd, KCP_RCV_WND_MIN, KCP_WND_MAX) },
	{ "mtu", 0, "N", "1400", "bytes per datagram; both ends must agree",
	  NUM(mtu, KCP_MTU_MIN, UDP_DATAGRAM_MAX) },
	{ "interval", 0, "MS", NULL, "KCP flush interval, overriding the preset's",
	  NUM(interval, KCP_INTERVAL_MIN, KCP_INTERVAL_MAX) },
	{ "raw", 0, NULL, NULL,
	  "plain KCP stream mode, no end marker, for other KCP implementations; "
	  "a side that sent nothing then ends on -w",
	  FLAG(raw) },
	{ "idle", 'w', "SECONDS", "0",
	  "exit after SECONDS without a valid datagram from the peer (0: never)",
	  NUM(idle_s, 0, KCPCAT_IDLE_MAX_S) },
	{ "stats", 'q', NULL, NULL, "print KCP and UDP statistics to stderr at exit", FLAG(stats) },
	{ "verbose", 'v', NULL, NULL, "log at debug level (default: warnings and errors)",
	  FLAG(verbose) },
	{ "help", 'h', NULL, NULL, "print this help and exit", FLAG(help) },
};

enum { NOPTS = sizeof optdefs / sizeof optdefs[0], LONG_ONLY_BASE = 256 };

enum { HELP_WIDTH = 79, HELP_COLUMN = 31 };

/* put_wrapped prints text from column `col` on, wrapping at spaces to
 * HELP_WIDTH with continuation lines indented to HELP_COLUMN. */
static int put_wrapped(FILE *f, int col, const char *text)
{
	while (*text) {
		size_t word = strcspn(text, " ");
		if (col > HELP_COLUMN && col + 1 + (int)word > HELP_WIDTH)
			col = fprintf(f, "\n%*s", HELP_COLUMN, "") - 1;
		else if (col > HELP_COLUMN)
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)word, text);
		text += word;
		text += strspn(text, " ");
	}
	return col;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kcpcat [options] HOST PORT\n"
	           "       kcpcat [options] -l [ADDR:]PORT\n"
	           "netcat over KCP on plain UDP: stdin to the peer, the peer's data to stdout.\n"
	           "HOST is a numeric IPv4 or IPv6 address. See docs/kcpcat.md.\n\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct optdef *d = &optdefs[i];
		char extra[64] = "";
		int col;

		if (d->key)
			col = fprintf(f, "  -%c, --%s", d->key, d->name);
		else
			col = fprintf(f, "      --%s", d->name);
		if (d->arg)
			col += fprintf(f, " %s", d->arg);
		col += fprintf(f, "%*s", col < HELP_COLUMN ? HELP_COLUMN - col : 1, "");
		col = put_wrapped(f, col, d->help);
		if (d->apply == set_number && d->max != UINT32_MAX)
			snprintf(extra, sizeof extra, "(%u..%u)", d->min, d->max);
		col = put_wrapped(f, col, extra);
		if (d->def) {
			snprintf(extra, sizeof extra, "[default %s]", d->def);
			put_wrapped(f, col, extra);
		}
		fputc('\n', f);
	}
	fprintf(f, "\nexit status: 0 transfer complete, 1 failure, 2 usage error\n");
}

static int apply_defaults(struct opts *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	for (size_t i = 0; i < NOPTS; i++)
		if (optdefs[i].def &&
		    optdefs[i].apply(&optdefs[i], o, optdefs[i].def, err, errlen) != 0)
			return KS_ERR_INVAL;
	return 0;
}

static const struct optdef *find_opt(int key)
{
	for (size_t i = 0; i < NOPTS; i++)
		if ((optdefs[i].key ? optdefs[i].key : LONG_ONLY_BASE + (int)i) == key)
			return &optdefs[i];
	return NULL;
}

static void build_getopt(struct option *longs, char *shorts)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct optdef *d = &optdefs[i];
		int key = d->key ? d->key : LONG_ONLY_BASE + (int)i;
		longs[i] = (struct option){ d->name, d->arg ? required_argument : no_argument, NULL,
			                    key };
		if (d->key) {
			*shorts++ = (char)d->key;
			if (d->arg)
				*shorts++ = ':';
		}
	}
	longs[NOPTS] = (struct option){ 0 };
	*shorts = '\0';
}

static int parse_args(int argc, char **argv, struct opts *o, char *err, size_t errlen)
{
	struct option longs[NOPTS + 1];
	char shorts[2 * NOPTS + 2] = ":";
	int c;

	if (apply_defaults(o, err, errlen) != 0)
		return KS_ERR_INVAL;
	build_getopt(longs, shorts + 1);
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct optdef *d = find_opt(c);
		if (c == '?' || c == ':' || !d) {
			snprintf(err, errlen, "%s '%s'",
			         c == ':' ? "missing value for" : "unknown option",
			         argv[optind - 1]);
			return KS_ERR_INVAL;
		}
		if (d->apply(d, o, optarg, err, errlen) != 0)
			return KS_ERR_INVAL;
	}
	if (o->help)
		return 0;
	if (o->listen ? argc - optind != 0 : argc - optind != 2) {
		snprintf(err, errlen, "%s",
		         o->listen ? "-l takes no HOST PORT" : "expected HOST PORT");
		return KS_ERR_INVAL;
	}
	if (o->listen)
		return addr_parse(o->listen, "127.0.0.1", &o->bind_addr, err, errlen);
	o->host = argv[optind];
	o->port = argv[optind + 1];
	if (addr_parse_host_port(o->host, o->port, &o->peer, err, errlen) != 0)
		return KS_ERR_INVAL;
	if (addr_port(&o->peer) == 0) {
		snprintf(err, errlen, "bad port '%s': cannot send to port 0", o->port);
		return KS_ERR_INVAL;
	}
	/* The wildcard address of the peer's family, an ephemeral port. */
	memset(&o->bind_addr, 0, sizeof o->bind_addr);
	o->bind_addr.ss_family = o->peer.ss_family;
	return 0;
}

static int build_kcp_config(const struct opts *o, struct kcp_config *cfg, char *err, size_t errlen)
{
	kcp_config_default(cfg);
	if (kcp_config_preset(cfg, o->preset) != 0)
		return KS_ERR_INVAL;
	cfg->stream = o->raw;
	cfg->snd_wnd = o->sndwnd;
	cfg->rcv_wnd = o->rcvwnd;
	cfg->mtu = o->mtu;
	if (o->interval)
		cfg->interval = o->interval;
	if (kcp_config_check(cfg) != 0) {
		snprintf(err, errlen, "the KCP settings do not fit together");
		return KS_ERR_INVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the session                                                        */

enum phase {
	PHASE_RUNNING, /* moving data */
	PHASE_LINGER,  /* both directions done; answering a lost end's resends */
	PHASE_DONE,    /* leave the loop with exit_code */
};

struct app {
	struct ev_loop *loop; /* borrowed: the default loop */
	const struct opts *o; /* borrowed from main */
	uint32_t interval;    /* the KCP flush interval in use, ms */
	struct kcp *kcp;      /* owned */
	int fd;               /* owned: the UDP socket */
	struct udp_rx *rx;    /* owned */
	struct udp_tx *tx;    /* owned */
	struct sockaddr_storage peer;
	bool have_peer;

	ev_io udp_r, udp_w, in_w, out_w;
	ev_prepare prep;
	ev_timer timer;
	ev_signal sig_int, sig_term;
	uint64_t timer_at; /* absolute ms the timer is armed for; KS_NEVER: stopped */

	enum phase phase;
	int exit_code;
	uint64_t start_ms, last_rx_ms, linger_until;

	/* stdin -> KCP: in_buf[in_off, in_len) is read but not yet accepted */
	uint8_t in_buf[KCPCAT_CHUNK];
	size_t in_off, in_len;
	bool in_eof, eof_sent;
	bool flags_saved; /* in_flags and out_flags hold what to restore */
	int in_flags;

	/* KCP -> stdout: out_buf[out_head, out_tail) is received, not written */
	uint8_t *out_buf; /* owned, KCPCAT_OUT_MAX bytes */
	size_t out_head, out_tail;
	bool peer_eof;
	int out_flags;

	uint64_t bytes_read, bytes_written;
	uint64_t foreign, refused; /* datagrams: from elsewhere, refused by KCP */
	uint64_t timer_fires;
};

static void finish(struct app *a, int code)
{
	if (a->phase == PHASE_DONE)
		return;
	a->phase = PHASE_DONE;
	a->exit_code = code;
	ev_break(a->loop, EVBREAK_ALL);
}

static void fail_errno(struct app *a, const char *what)
{
	log_error("%s: %s", what, strerror(errno));
	finish(a, EXIT_FAILURE);
}

/* The engine's output: queue for the peer; the prepare watcher flushes. */
static int on_kcp_output(const uint8_t *dgram, size_t len, void *user)
{
	struct app *a = user;

	if (!a->have_peer)
		return KS_ERR_STATE;
	return udp_tx_queue(a->tx, dgram, len, &a->peer);
}

static uint32_t linger_ms(const struct app *a)
{
	struct kcp_stats st;
	uint64_t ms;

	kcp_stats(a->kcp, &st);
	ms = 2 * (uint64_t)st.rto + a->interval;
	if (ms < KCPCAT_LINGER_MIN_MS)
		ms = KCPCAT_LINGER_MIN_MS;
	return (uint32_t)(ms > KCPCAT_LINGER_MAX_MS ? KCPCAT_LINGER_MAX_MS : ms);
}

/* ---- stdin -> KCP ---- */

static void push_input(struct app *a, uint64_t now)
{
	if (a->in_off < a->in_len) {
		ssize_t n = kcp_send(a->kcp, a->in_buf + a->in_off, a->in_len - a->in_off, now);
		if (n > 0)
			a->in_off += (size_t)n;
		else if (n != KS_ERR_FULL && n != KS_ERR_DEAD)
			log_error("kcp_send: %s", ks_strerror((int)n));
		if (a->in_off == a->in_len)
			a->in_off = a->in_len = 0;
	}
	/* The end marker is an empty message: data messages never are. */
	if (a->in_eof && a->in_len == 0 && !a->eof_sent && !a->o->raw) {
		ssize_t n = kcp_send(a->kcp, NULL, 0, now);
		if (n >= 0)
			a->eof_sent = true;
	}
}

static void on_stdin(EV_P_ ev_io *w, int revents)
{
	struct app *a = w->data;
	size_t room = kcp_send_room(a->kcp);
	ssize_t n;

	(void)loop, (void)revents;
	if (a->in_len || room == 0)
		return;
	/* No more than KCP takes now: in message mode a read is one message. */
	n = read(STDIN_FILENO, a->in_buf, room < sizeof a->in_buf ? room : sizeof a->in_buf);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			fail_errno(a, "read stdin");
		return;
	}
	if (n == 0) {
		a->in_eof = true;
		log_debug("stdin: end after %llu bytes", (unsigned long long)a->bytes_read);
	}
	a->bytes_read += (uint64_t)n;
	a->in_len = (size_t)n;
	push_input(a, clock_mono_ms());
}

/* ---- KCP -> stdout ---- */

static size_t out_room(struct app *a, size_t want)
{
	if (a->out_head == a->out_tail)
		a->out_head = a->out_tail = 0;
	if (KCPCAT_OUT_MAX - a->out_tail < want && a->out_head > 0) {
		memmove(a->out_buf, a->out_buf + a->out_head, a->out_tail - a->out_head);
		a->out_tail -= a->out_head;
		a->out_head = 0;
	}
	return KCPCAT_OUT_MAX - a->out_tail;
}

static void drain_kcp(struct app *a)
{
	ssize_t size;

	while ((size = kcp_peek_size(a->kcp)) >= 0) {
		size_t room = out_room(a, (size_t)size);
		if (room < (size_t)size && (!a->o->raw || room == 0))
			return; /* stdout is behind: our window closes, the peer waits */
		ssize_t n = kcp_recv(a->kcp, a->out_buf + a->out_tail, room);
		if (n < 0)
			return;
		if (n == 0 && !a->o->raw) {
			if (!a->peer_eof)
				log_debug("peer: end of stream");
			a->peer_eof = true;
		} else if (a->peer_eof) {
			log_limited(LOG_LEVEL_WARN, "peer sent data after its end marker");
		}
		a->out_tail += (size_t)n;
	}
}

static void write_output(struct app *a)
{
	while (a->out_head < a->out_tail) {
		ssize_t n =
		        write(STDOUT_FILENO, a->out_buf + a->out_head, a->out_tail - a->out_head);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fail_errno(a, "write stdout");
			return;
		}
		a->out_head += (size_t)n;
		a->bytes_written += (uint64_t)n;
	}
}

static void on_stdout(EV_P_ ev_io *w, int revents)
{
	(void)loop, (void)revents;
	write_output(w->data);
}

/* ---- UDP ---- */

static void take_datagram(struct app *a, const struct udp_dgram *d, uint64_t now)
{
	char text[ADDR_TEXT_MAX];

	if (a->have_peer && !addr_equal(d->from, &a->peer)) {
		a->foreign++;
		log_limited(LOG_LEVEL_DEBUG, "ignored a datagram from %s",
		            addr_format(d->from, text));
		return;
	}
	/* A listener tries each sender as its peer: the engine may answer
	 * (an ACK) from inside kcp_input, and that answer must reach it. */
	bool trying = !a->have_peer;
	if (trying) {
		a->peer = *d->from;
		a->have_peer = true;
	}
	int r = kcp_input(a->kcp, d->data, d->len, now);
	if (r != 0) {
		a->have_peer = !trying;
		a->refused++;
		log_limited(LOG_LEVEL_DEBUG, "datagram from %s refused: %s",
		            addr_format(d->from, text), ks_strerror(r));
		return;
	}
	if (trying)
		log_info("peer %s", addr_format(d->from, text));
	a->last_rx_ms = now;
	if (a->phase == PHASE_LINGER)
		a->linger_until = now + linger_ms(a);
}

static void on_udp_read(EV_P_ ev_io *w, int revents)
{
	struct app *a = w->data;
	ssize_t n = udp_rx_read(a->rx, a->fd);
	uint64_t now = clock_mono_ms();

	(void)loop, (void)revents;
	if (n < 0) {
		fail_errno(a, "recvmmsg");
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		take_datagram(a, udp_rx_get(a->rx, (size_t)i), now);
}

static void on_udp_write(EV_P_ ev_io *w, int revents)
{
	struct app *a = w->data;

	(void)loop, (void)revents;
	(void)udp_tx_flush(a->tx);
}

/* ---- deciding, flushing, arming ---- */

static bool output_done(const struct app *a)
{
	return a->in_eof && a->in_len == 0 && (a->o->raw || a->eof_sent) &&
	       kcp_waitsnd(a->kcp) == 0;
}

/* check_end moves the phase on; see "End of stream" in docs/kcpcat.md. */
static void check_end(struct app *a, uint64_t now)
{
	bool flushed = a->out_head == a->out_tail;

	if (kcp_is_dead(a->kcp)) {
		char text[ADDR_TEXT_MAX];
		log_error("no answer from %s: gave up after repeated retransmissions",
		          addr_format(&a->peer, text));
		finish(a, EXIT_FAILURE);
	} else if (a->o->raw) {
		/* Stream mode has no end marker: a side that sent data ends
		 * when all of it is acknowledged; the other side ends on -w. */
		if (output_done(a) && a->bytes_read > 0 && flushed)
			finish(a, EXIT_SUCCESS);
	} else if (a->phase == PHASE_RUNNING && output_done(a) && a->peer_eof && flushed) {
		a->phase = PHASE_LINGER;
		a->linger_until = now + linger_ms(a);
		log_debug("both directions done; lingering until quiet");
	} else if (a->phase == PHASE_LINGER && now >= a->linger_until) {
		finish(a, EXIT_SUCCESS);
	}
}

static void check_idle(struct app *a, uint64_t now)
{
	uint64_t idle_ms = (uint64_t)a->o->idle_s * 1000;

	if (!idle_ms || now - a->last_rx_ms < idle_ms || a->phase == PHASE_DONE)
		return;
	write_output(a);
	if (a->o->raw && a->out_head == a->out_tail && a->in_len == 0 && kcp_waitsnd(a->kcp) == 0) {
		log_info("idle for %u s: done", a->o->idle_s);
		finish(a, EXIT_SUCCESS);
	} else {
		log_error("idle for %u s before the transfer ended", a->o->idle_s);
		finish(a, EXIT_FAILURE);
	}
}

static void set_io(struct app *a, ev_io *w, bool on)
{
	if (on && !ev_is_active(w))
		ev_io_start(a->loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(a->loop, w);
}

static uint64_t next_deadline(const struct app *a, uint64_t now)
{
	uint64_t at = kcp_next_deadline(a->kcp, now);

	if (a->o->idle_s) {
		uint64_t idle_at = a->last_rx_ms + (uint64_t)a->o->idle_s * 1000;
		at = idle_at < at ? idle_at : at;
	}
	if (a->phase == PHASE_LINGER && a->linger_until < at)
		at = a->linger_until;
	return at < now ? now : at;
}

static void arm_timer(struct app *a, uint64_t now)
{
	uint64_t at = next_deadline(a, now);

	if (at == a->timer_at && (ev_is_active(&a->timer) || at == KS_NEVER))
		return;
	ev_timer_stop(a->loop, &a->timer);
	a->timer_at = at;
	if (at == KS_NEVER)
		return;
	ev_timer_set(&a->timer, (double)(at - now) / 1000.0, 0.0);
	ev_timer_start(a->loop, &a->timer);
}

static void on_timer(EV_P_ ev_timer *w, int revents)
{
	struct app *a = w->data;
	uint64_t now = clock_mono_ms();

	(void)loop, (void)revents;
	a->timer_fires++;
	a->timer_at = KS_NEVER;
	check_idle(a, now);
	kcp_update(a->kcp, now);
}

static void on_prepare(EV_P_ ev_prepare *w, int revents)
{
	struct app *a = w->data;
	uint64_t now;

	(void)revents;
	/* A fresh loop time, so the timer is not armed from a stale base. */
	ev_now_update(loop);
	now = clock_mono_ms();
	drain_kcp(a);
	write_output(a);
	push_input(a, now);
	check_end(a, now);
	if (a->phase == PHASE_DONE)
		return;
	set_io(a, &a->udp_w, udp_tx_flush(a->tx) == KS_ERR_AGAIN);
	set_io(a, &a->out_w, a->out_head < a->out_tail);
	set_io(a, &a->in_w,
	       a->have_peer && !a->in_eof && a->in_len == 0 && kcp_send_room(a->kcp) > 0);
	arm_timer(a, now);
}

static void on_signal(EV_P_ ev_signal *w, int revents)
{
	(void)loop, (void)revents;
	log_info("signal %d: stopping", w->signum);
	finish(w->data, EXIT_SIGNAL + w->signum);
}

/* ------------------------------------------------------------------ */
/* setup, statistics, main                                            */

static int open_socket(struct app *a, char *err, size_t errlen)
{
	struct sockaddr_storage bind_addr;
	struct udp_granted g;
	struct udp_opts uo = udp_opts_default();
	char text[ADDR_TEXT_MAX];

	if (!a->o->listen) {
		a->peer = a->o->peer;
		a->have_peer = true;
	}
	bind_addr = a->o->bind_addr;
	a->fd = udp_open(&bind_addr, &uo, &g, err, errlen);
	if (a->fd < 0)
		return a->fd;
	if (udp_local_addr(a->fd, &bind_addr) == 0)
		log_info("%s %s (buffers: receive %d, send %d bytes)",
		         a->o->listen ? "listening on" : "sending from",
		         addr_format(&bind_addr, text), g.rcvbuf, g.sndbuf);
	if (g.rcvbuf < uo.rcvbuf || g.sndbuf < uo.sndbuf)
		log_debug("asked for %d-byte socket buffers; raise net.core.rmem_max/wmem_max "
		          "for more",
		          uo.rcvbuf);
	return 0;
}

static int setup(struct app *a, const struct kcp_config *cfg, char *err, size_t errlen)
{
	int r;

	a->fd = -1;
	a->timer_at = KS_NEVER;
	a->start_ms = a->last_rx_ms = clock_mono_ms();
	if ((r = open_socket(a, err, errlen)) != 0)
		return r;
	a->rx = udp_rx_new();
	a->tx = udp_tx_new(a->fd, 0);
	a->out_buf = malloc(KCPCAT_OUT_MAX);
	if (!a->rx || !a->tx || !a->out_buf) {
		snprintf(err, errlen, "out of memory");
		return KS_ERR_NOMEM;
	}
	if ((r = kcp_new(&a->kcp, a->o->conv, cfg, a->start_ms, on_kcp_output, a)) != 0) {
		snprintf(err, errlen, "kcp_new: %s", ks_strerror(r));
		return r;
	}
	if (fdio_set_nonblock(STDIN_FILENO, &a->in_flags) != 0 ||
	    fdio_set_nonblock(STDOUT_FILENO, &a->out_flags) != 0) {
		snprintf(err, errlen, "stdin/stdout: %s", strerror(errno));
		return KS_ERR_IO;
	}
	a->flags_saved = true;
	return 0;
}

static void start_watchers(struct app *a)
{
	ev_io_init(&a->udp_r, on_udp_read, a->fd, EV_READ);
	ev_io_init(&a->udp_w, on_udp_write, a->fd, EV_WRITE);
	ev_io_init(&a->in_w, on_stdin, STDIN_FILENO, EV_READ);
	ev_io_init(&a->out_w, on_stdout, STDOUT_FILENO, EV_WRITE);
	ev_prepare_init(&a->prep, on_prepare);
	ev_timer_init(&a->timer, on_timer, 0.0, 0.0);
	ev_signal_init(&a->sig_int, on_signal, SIGINT);
	ev_signal_init(&a->sig_term, on_signal, SIGTERM);
	a->udp_r.data = a->udp_w.data = a->in_w.data = a->out_w.data = a;
	a->prep.data = a->timer.data = a->sig_int.data = a->sig_term.data = a;
	ev_io_start(a->loop, &a->udp_r);
	ev_prepare_start(a->loop, &a->prep);
	ev_signal_start(a->loop, &a->sig_int);
	ev_signal_start(a->loop, &a->sig_term);
}

static void stop_watchers(struct app *a)
{
	ev_io_stop(a->loop, &a->udp_r);
	ev_io_stop(a->loop, &a->udp_w);
	ev_io_stop(a->loop, &a->in_w);
	ev_io_stop(a->loop, &a->out_w);
	ev_prepare_stop(a->loop, &a->prep);
	ev_timer_stop(a->loop, &a->timer);
	ev_signal_stop(a->loop, &a->sig_int);
	ev_signal_stop(a->loop, &a->sig_term);
}

static void print_stats(const struct app *a)
{
	struct kcp_stats st;
	const struct udp_tx_stats *t = udp_tx_stats(a->tx);
	const struct udp_rx_stats *r = udp_rx_stats(a->rx);
	double secs = (double)(clock_mono_ms() - a->start_ms) / 1000.0;
	uint64_t dropped = 0;

	kcp_stats(a->kcp, &st);
	for (int i = 0; i < KCP_DROP_REASONS; i++)
		dropped += st.dropped[i];
	fprintf(stderr,
	        "kcpcat stats: seconds=%.3f stdin_bytes=%llu stdout_bytes=%llu "
	        "MiB_per_s=%.1f\n",
	        secs, (unsigned long long)a->bytes_read, (unsigned long long)a->bytes_written,
	        secs > 0 ? (double)(a->bytes_read + a->bytes_written) / 1048576.0 / secs : 0.0);
	fprintf(stderr,
	        "kcpcat stats: srtt_ms=%u rttvar_ms=%u rto_ms=%u cwnd=%u rmt_wnd=%u seg_sent=%llu "
	        "retx_timeout=%llu retx_fast=%llu seg_recv=%llu seg_dup=%llu ack_sent=%llu "
	        "ack_recv=%llu kcp_dropped=%llu output_errors=%llu\n",
	        st.srtt, st.rttvar, st.rto, st.cwnd, st.rmt_wnd, (unsigned long long)st.seg_sent,
	        (unsigned long long)st.seg_retx_timeout, (unsigned long long)st.seg_retx_fast,
	        (unsigned long long)st.seg_recv, (unsigned long long)st.seg_dup,
	        (unsigned long long)st.ack_sent, (unsigned long long)st.ack_recv,
	        (unsigned long long)dropped, (unsigned long long)st.output_errors);
	fprintf(stderr,
	        "kcpcat stats: udp_sent=%llu sendmmsg_calls=%llu blocked=%llu queue_full=%llu "
	        "send_errors=%llu udp_recv=%llu recvmmsg_calls=%llu truncated=%llu "
	        "foreign=%llu refused=%llu loop_iterations=%u timer_fires=%llu\n",
	        (unsigned long long)t->sent, (unsigned long long)t->calls,
	        (unsigned long long)t->blocked, (unsigned long long)t->full_drops,
	        (unsigned long long)t->errors, (unsigned long long)r->datagrams,
	        (unsigned long long)r->calls, (unsigned long long)r->truncated,
	        (unsigned long long)a->foreign, (unsigned long long)a->refused,
	        ev_iteration(a->loop), (unsigned long long)a->timer_fires);
}

static void teardown(struct app *a)
{
	stop_watchers(a);
	if (a->flags_saved) {
		fdio_restore_flags(STDIN_FILENO, a->in_flags);
		fdio_restore_flags(STDOUT_FILENO, a->out_flags);
	}
	kcp_free(a->kcp);
	udp_tx_free(a->tx);
	udp_rx_free(a->rx);
	free(a->out_buf);
	if (a->fd >= 0)
		close(a->fd);
}

static int run(const struct opts *o, const struct kcp_config *cfg)
{
	struct app *a = calloc(1, sizeof *a);
	char err[ERR_MAX] = "";
	int code = EXIT_FAILURE;

	if (!a) {
		log_error("out of memory");
		return EXIT_FAILURE;
	}
	a->o = o;
	a->interval = cfg->interval;
	a->loop = ev_default_loop(EVFLAG_AUTO);
	if (setup(a, cfg, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out;
	}
	start_watchers(a);
	ev_run(a->loop, 0);
	code = a->exit_code;
	if (o->stats)
		print_stats(a);
out:
	teardown(a);
	free(a);
	return code;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct kcp_config cfg;
	char err[ERR_MAX] = "";

	log_open("kcpcat", LOG_LEVEL_WARN, LOG_SINK_STDERR);
	if (parse_args(argc, argv, &o, err, sizeof err) != 0 ||
	    (!o.help && build_kcp_config(&o, &cfg, err, sizeof err) != 0)) {
		fprintf(stderr, "kcpcat: %s\n(kcpcat --help for usage)\n", err);
		return EXIT_USAGE;
	}
	if (o.help) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	if (o.verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	/* A closed stdout is reported by write's EPIPE, not by a signal. */
	signal(SIGPIPE, SIG_IGN);
	return run(&o, &cfg);
}
