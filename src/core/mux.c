/* mux.c - stream multiplexing over one KCP byte stream.
 *
 * Steps refer to docs/PROTOCOL.md (mux). The streams live in an array sorted
 * by id (ids only grow, so insertion appends); three intrusive lists thread
 * through them: streams with control frames due, streams with DATA to send
 * (the round-robin ring) and streams with undelivered events. Events are
 * flags on the stream, not a queue, so no peer behaviour can grow them.
 */
#include "core/mux.h"

#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "base/minmax.h"
#include "base/rd.h"
#include "base/wr.h"

struct link {
	struct link *prev, *next; /* NULL while not on a list */
};

/* A byte ring that grows by doubling up to a cap and never shrinks while
 * it holds bytes: no allocation per frame in steady state. Emptied, it is
 * given back, and the next bytes allocate it again at the size its last
 * fill needed (hint), at most MUX_RING_AGAIN_MAX, so a flow whose reader
 * drains every burst does not regrow, and recopy, from MUX_RING_INITIAL
 * each time (issue 13), and a stream that once held megabytes does not
 * take them again for a trickle. */
struct ring {
	uint8_t *buf; /* owned */
	size_t cap, head, len;
	size_t peak; /* most bytes held since buf was allocated */
	size_t hint; /* the last buffer's peak */
};

/* Control frames a stream has due (step 5.1). */
enum ctl_flag {
	CTL_OPEN = 1,
	CTL_REPLY = 2,
	CTL_WINDOW = 4,
	CTL_FIN = 8,
};

/* Undelivered events of a stream. */
enum ev_flag {
	EVF_OPEN = 1,
	EVF_REPLY = 2,
	EVF_READABLE = 4,
	EVF_FIN = 8,
	EVF_WRITABLE = 16,
	EVF_RESET = 32,
};

/* A byte range [start, end) of a stream received above a gap (step 10). */
struct ival {
	uint64_t start, end;
};

struct stream {
	uint32_t id;
	uint8_t ctl;        /* CTL_* due */
	uint8_t ev;         /* EVF_* undelivered */
	uint8_t reason;     /* RST reason received */
	bool replied;       /* server: REPLY queued; client: REPLY received */
	bool hello_sent;    /* our OPEN or REPLY is in the output */
	bool fin_req;       /* we shut down: FIN after the buffered data */
	bool fin_sent;      /* our FIN is in the output */
	bool fin_rcvd;      /* the peer's FIN arrived */
	bool eof_seen;      /* the application read the end (read returned 0) */
	bool want_write;    /* a write was refused: WRITABLE when room opens */
	bool dead;          /* the peer reset it; kept only to deliver EVF_RESET */
	uint8_t *hello;     /* owned: request (client until OPEN sent; server) */
	size_t hello_len;   /* ... or the reply (client: received; server: until sent) */
	struct ring tx, rx; /* owned: bytes to send; bytes received, not read */
	uint64_t tx_off;    /* DATA bytes sent */
	uint64_t tx_limit;  /* the peer's grant, as an absolute offset */
	uint64_t rx_off;    /* DATA bytes received */
	uint64_t rx_read;   /* DATA bytes read by the application */
	uint64_t rx_limit;  /* our grant as sent, as an absolute offset */
	struct ival *ooo;   /* owned: MUX_OOO_MAX ranges above rx_off, sorted,
	                     * apart; NULL while none (step 10) */
	uint8_t nooo;
	bool fin_at_rcvd; /* FIN_AT arrived: the stream ends at fin_at */
	uint64_t fin_at;
	uint32_t win;      /* our receive window, chosen when announced (4.5);
	                    * 0 on a server stream not yet replied */
	uint32_t deficit;  /* round-robin budget left this turn */
	struct link ctl_l; /* on mux.ctl while ctl != 0 */
	struct link act_l; /* on mux.fresh or mux.act while it has DATA and credit */
	struct link ev_l;  /* on mux.evq while ev != 0 */
};

struct rst_entry {
	uint32_t id;
	uint8_t reason;
	bool refusal; /* counts against MUX_REFUSE_MAX, not max_streams */
};

struct mux {
	enum mux_role role;
	struct mux_config cfg;
	int err; /* sticky session error, 0 while healthy */
	bool sd; /* per-stream delivery: DATA_AT, early input (step 10) */
	size_t mem;
	uint64_t committed; /* rx_max of every stream held, summed (step 4.5) */

	struct stream **tab; /* owned array of owned streams, sorted by id;
	                      * grows with use (tab_reserve), NULL at first */
	size_t ntab, tab_cap;
	uint32_t next_id;     /* client: next id to open */
	uint32_t peer_max_id; /* server: highest id the client opened */

	struct rst_entry *rstq; /* owned ring of RSTs to send: rst_cap entries
	                         * from the first RST on (rst_reserve), NULL before */
	size_t rst_head, rst_len, rst_cap;
	size_t n_rst_local, n_rst_refuse;

	bool ping_due, ping_out, pong_due, pong_ev;
	uint64_t ping_val, ping_at, pong_val, rtt;

	struct link ctl;   /* streams with control frames due */
	struct link fresh; /* streams that just got DATA to send: served first */
	struct link act;   /* the round-robin ring of the other sending streams */
	struct link evq;   /* streams with undelivered events */

	size_t asm_len;   /* bytes of a partial frame in asm_buf */
	uint8_t *asm_buf; /* owned: MUX_ASM_LEN bytes while a frame is split, else NULL */
};

/* A frame split across inputs is put together in a buffer allocated for
 * it and freed when it is whole: an idle mux holds none (issue 19). */
#define MUX_ASM_LEN (MUX_HDR_LEN + MUX_FRAME_PAYLOAD_MAX)

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* --- lists ----------------------------------------------------------------- */

static void list_init(struct link *h) { h->prev = h->next = h; }
static bool list_empty(const struct link *h) { return h->next == h; }
static bool linked(const struct link *l) { return l->next != NULL; }

static void list_add_tail(struct link *h, struct link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void list_del(struct link *l)
{
	if (!linked(l))
		return;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

/* --- rings ----------------------------------------------------------------- */

/* ring_peek sets v to the ring's bytes in order: the span from head to
 * the end of the buffer, then the wrapped part (empty when none). */
static void ring_peek(const struct ring *r, struct iovec v[2])
{
	size_t first = min_size(r->len, r->cap - r->head);

	v[0] = (struct iovec){ .iov_base = r->buf ? r->buf + r->head : NULL, .iov_len = first };
	v[1] = (struct iovec){ .iov_base = r->buf, .iov_len = r->len - first };
}

/* ring_grow makes the ring hold want bytes from its head without passing
 * max, keeping the first keep of them (keep >= len: bytes placed above a
 * gap, step 10). */
static int ring_grow(struct mux *m, struct ring *r, size_t keep, size_t want, size_t max)
{
	size_t cap = r->cap ? r->cap : MUX_RING_INITIAL;
	uint8_t *nb;

	if (want <= r->cap)
		return 0;
	if (want > max)
		return KS_ERR_FULL;
	while (cap < (r->cap ? want : max_size(want, r->hint)))
		cap *= 2;
	cap = min_size(cap, max);
	nb = malloc(cap);
	if (!nb)
		return KS_ERR_NOMEM;
	if (keep > 0) { /* the kept bytes move as one or two spans */
		size_t first = min_size(keep, r->cap - r->head);

		memcpy(nb, r->buf + r->head, first);
		memcpy(nb + first, r->buf, keep - first);
	}
	free(r->buf);
	m->mem = m->mem - r->cap + cap;
	r->buf = nb;
	r->cap = cap;
	r->head = 0;
	return 0;
}

/* ring_reserve makes room for n more bytes without passing max. */
static int ring_reserve(struct mux *m, struct ring *r, size_t n, size_t max)
{
	return ring_grow(m, r, r->len, r->len + n, max);
}

/* ring_put_at writes n bytes pos bytes after the head; len is unchanged. */
static void ring_put_at(struct ring *r, size_t pos, const uint8_t *p, size_t n)
{
	size_t at = (r->head + pos) % r->cap, first = min_size(n, r->cap - at);

	memcpy(r->buf + at, p, first);
	memcpy(r->buf, p + first, n - first);
}

static void ring_put(struct ring *r, const uint8_t *p, size_t n)
{
	size_t tail = (r->head + r->len) % r->cap, first = min_size(n, r->cap - tail);

	memcpy(r->buf + tail, p, first);
	memcpy(r->buf, p + first, n - first);
	r->len += n;
	r->peak = max_size(r->peak, r->len);
}

static void ring_get(struct ring *r, uint8_t *out, size_t n)
{
	size_t first = min_size(n, r->cap - r->head);

	memcpy(out, r->buf + r->head, first);
	memcpy(out + first, r->buf, n - first);
	r->head = (r->head + n) % r->cap;
	r->len -= n;
}

static void ring_release(struct mux *m, struct ring *r);

/* ring_take is ring_get, and a ring it empties gives its memory back: an
 * idle stream holds no buffer, whatever its last burst needed (issue 19);
 * the next bytes allocate again from MUX_RING_INITIAL. */
static void ring_take(struct mux *m, struct ring *r, uint8_t *out, size_t n)
{
	ring_get(r, out, n);
	if (r->len == 0)
		ring_release(m, r);
}

/* ring_skip is ring_get without the copy: the first n bytes are gone. The
 * caller decides whether an empty ring goes (a receive ring may still hold
 * bytes above a gap, step 10). */
static void ring_skip(struct ring *r, size_t n)
{
	r->head = (r->head + n) % r->cap;
	r->len -= n;
}

static void ring_release(struct mux *m, struct ring *r)
{
	m->mem -= r->cap;
	free(r->buf);
	*r = (struct ring){ .hint = min_size(r->peak, MUX_RING_AGAIN_MAX) };
}

/* --- frames (step 1) ------------------------------------------------------- */

struct frame_rule {
	uint16_t min, max;
	bool session; /* stream id 0 required; otherwise forbidden */
};

static const struct frame_rule rules[] = {
	[MUX_OPEN] = { MUX_WINDOW_FIELD_LEN + 1, MUX_WINDOW_FIELD_LEN + MUX_REQUEST_MAX, false },
	[MUX_REPLY] = { MUX_WINDOW_FIELD_LEN + 1, MUX_WINDOW_FIELD_LEN + MUX_REPLY_MAX, false },
	[MUX_DATA] = { 1, MUX_FRAME_PAYLOAD_MAX, false },
	[MUX_FIN] = { 0, 0, false },
	[MUX_RST] = { 1, 1, false },
	[MUX_WINDOW] = { 4, 4, false },
	[MUX_PING] = { 8, 8, true },
	[MUX_PONG] = { 8, 8, true },
	[MUX_DATA_AT] = { MUX_OFFSET_LEN + 1, MUX_FRAME_PAYLOAD_MAX, false },
	[MUX_FIN_AT] = { MUX_OFFSET_LEN, MUX_OFFSET_LEN, false },
};

int mux_frame_encode(struct wr *w, const struct mux_frame *f)
{
	if (wr_room(w) < (size_t)MUX_HDR_LEN + f->len)
		return KS_ERR_FULL;
	wr_u8(w, f->type);
	wr_u8(w, f->flags);
	wr_u16be(w, f->len);
	wr_u32be(w, f->id);
	wr_bytes(w, f->payload, f->len);
	return 0;
}

/* hdr_check applies the per-type rules of step 1.2 to a parsed header. */
static int hdr_check(const struct mux_frame *f)
{
	const struct frame_rule *r;

	if (f->type < MUX_OPEN || f->type > MUX_FIN_AT || f->flags != 0)
		return KS_ERR_PROTO;
	r = &rules[f->type];
	if (f->len < r->min || f->len > r->max)
		return KS_ERR_PROTO;
	if (r->session != (f->id == 0))
		return KS_ERR_PROTO;
	return 0;
}

ssize_t mux_frame_decode(const uint8_t *buf, size_t len, struct mux_frame *f)
{
	struct rd r = rd_init(buf, len);
	struct mux_frame t = { 0 };
	int rc;

	if (!rd_u8(&r, &t.type) || !rd_u8(&r, &t.flags) || !rd_u16be(&r, &t.len) ||
	    !rd_u32be(&r, &t.id))
		return KS_ERR_AGAIN;
	rc = hdr_check(&t);
	if (rc < 0)
		return rc;
	if (!rd_view(&r, &t.payload, t.len))
		return KS_ERR_AGAIN;
	*f = t;
	return (ssize_t)(MUX_HDR_LEN + t.len);
}

/* --- receive limits ------------------------------------------------------ */

/* first_limit is the send limit, as an absolute offset, that a REPLY
 * announcing window gives (step 4.4.3): never below the early allowance,
 * so the early bytes already sent can never exceed it. */
static uint64_t first_limit(uint32_t window)
{
	return window > MUX_EARLY_DATA_MAX ? window : MUX_EARLY_DATA_MAX;
}

/* rx_max bounds a stream's receive buffer: its window, and on the server
 * at least the early allowance (step 4.4.2), also before the REPLY (win 0).
 * It is what the stream holds of the session's budget (step 4.5). */
static size_t rx_max(const struct mux *m, const struct stream *s)
{
	return m->role == MUX_SERVER ? (size_t)first_limit(s->win) : s->win;
}

/* A stream at the floor holds no more than a server stream before its
 * REPLY, so the bound of step 4.5 covers both. */
_Static_assert(MUX_WINDOW_FLOOR >= MUX_EARLY_DATA_MAX, "the floor covers early data");

/* --- configuration and lifetime -------------------------------------------- */

void mux_config_default(struct mux_config *c)
{
	*c = (struct mux_config){ .window = MUX_WINDOW_DEFAULT,
		                  .send_buffer = MUX_SNDBUF_DEFAULT,
		                  .max_streams = MUX_STREAMS_DEFAULT,
		                  .quantum = MUX_QUANTUM_DEFAULT,
		                  .budget = MUX_BUDGET_DEFAULT };
}

int mux_config_check(const struct mux_config *c)
{
	bool ok = c->window >= MUX_WINDOW_MIN && c->window <= MUX_WINDOW_MAX &&
	          c->send_buffer >= MUX_SNDBUF_MIN && c->send_buffer <= MUX_SNDBUF_MAX &&
	          c->max_streams >= 1 && c->max_streams <= MUX_STREAMS_MAX &&
	          c->quantum >= MUX_QUANTUM_MIN && c->quantum <= MUX_FRAME_PAYLOAD_MAX &&
	          c->budget >= MUX_BUDGET_MIN && c->budget <= MUX_BUDGET_MAX;

	return ok ? 0 : KS_ERR_INVAL;
}

int mux_new(struct mux **out, enum mux_role role, const struct mux_config *cfg)
{
	struct mux_config c;
	struct mux *m;

	if (cfg)
		c = *cfg;
	else
		mux_config_default(&c);
	if (mux_config_check(&c) != 0 || (role != MUX_CLIENT && role != MUX_SERVER))
		return KS_ERR_INVAL;
	m = calloc(1, sizeof *m);
	if (!m)
		return KS_ERR_NOMEM;
	/* The stream table and the RST ring are allocated when first needed:
	 * an idle session holds neither (issue 19). */
	m->rst_cap = (size_t)c.max_streams + MUX_REFUSE_MAX;
	m->role = role;
	m->cfg = c;
	m->next_id = 1;
	m->mem = sizeof *m;
	list_init(&m->ctl);
	list_init(&m->fresh);
	list_init(&m->act);
	list_init(&m->evq);
	*out = m;
	return 0;
}

static void ooo_release(struct mux *m, struct stream *s)
{
	if (!s->ooo)
		return;
	free(s->ooo);
	s->ooo = NULL;
	s->nooo = 0;
	m->mem -= MUX_OOO_MAX * sizeof(struct ival);
}

static void stream_destroy(struct mux *m, struct stream *s)
{
	ring_release(m, &s->tx);
	ring_release(m, &s->rx);
	ooo_release(m, s);
	m->committed -= rx_max(m, s); /* step 4.5: the budget comes back */
	m->mem -= s->hello_len + sizeof *s;
	free(s->hello);
	free(s);
}

void mux_free(struct mux *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ntab; i++)
		stream_destroy(m, m->tab[i]);
	free(m->tab);
	free(m->rstq);
	free(m->asm_buf);
	free(m);
}

/* --- the stream table ------------------------------------------------------ */

/* tab_pos is the index of the first stream with an id >= id. */
static size_t tab_pos(const struct mux *m, uint32_t id)
{
	size_t lo = 0, hi = m->ntab;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->tab[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct stream *tab_get(const struct mux *m, uint32_t id)
{
	size_t i = tab_pos(m, id);
	return i < m->ntab && m->tab[i]->id == id ? m->tab[i] : NULL;
}

/* tab_reserve makes room in the table for one more stream (doubling, at
 * most max_streams entries). */
static int tab_reserve(struct mux *m)
{
	size_t cap = m->tab_cap ? 2 * m->tab_cap : MUX_TAB_INITIAL;
	struct stream **t;

	if (m->ntab < m->tab_cap)
		return 0;
	if (cap > m->cfg.max_streams)
		cap = m->cfg.max_streams;
	if (cap <= m->ntab || !(t = realloc(m->tab, cap * sizeof *t)))
		return KS_ERR_NOMEM;
	m->mem += (cap - m->tab_cap) * sizeof *t;
	m->tab = t;
	m->tab_cap = cap;
	return 0;
}

/* rst_reserve allocates the RST ring, whole, for a first RST waiting to be
 * sent; it is freed once they are all sent (emit_session). */
static int rst_reserve(struct mux *m)
{
	if (m->rstq)
		return 0;
	if (!(m->rstq = calloc(m->rst_cap, sizeof *m->rstq)))
		return KS_ERR_NOMEM;
	m->mem += m->rst_cap * sizeof *m->rstq;
	return 0;
}

static void tab_insert(struct mux *m, struct stream *s)
{
	size_t i = tab_pos(m, s->id);

	memmove(&m->tab[i + 1], &m->tab[i], (m->ntab - i) * sizeof *m->tab);
	m->tab[i] = s;
	m->ntab++;
}

/* stream_free makes s unreachable (table and lists) and frees it. */
static void stream_free(struct mux *m, struct stream *s)
{
	size_t i = tab_pos(m, s->id);

	memmove(&m->tab[i], &m->tab[i + 1], (m->ntab - i - 1) * sizeof *m->tab);
	m->ntab--;
	if (m->ntab == 0) { /* the last one: an idle mux holds no table */
		free(m->tab);
		m->tab = NULL;
		m->mem -= m->tab_cap * sizeof *m->tab;
		m->tab_cap = 0;
	}
	list_del(&s->ctl_l);
	list_del(&s->act_l);
	list_del(&s->ev_l);
	stream_destroy(m, s);
}

static struct stream *stream_alloc(struct mux *m, uint32_t id, const uint8_t *hello, size_t n)
{
	struct stream *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->hello = malloc(n);
	if (!s->hello) {
		free(s);
		return NULL;
	}
	memcpy(s->hello, hello, n);
	s->hello_len = n;
	s->id = id;
	m->mem += sizeof *s + n;
	return s;
}

/* slots_used counts what max_streams bounds: streams held plus local RSTs
 * not yet sent (a reset stream's slot is free only once its RST is out). */
static size_t slots_used(const struct mux *m) { return m->ntab + m->n_rst_local; }

/* --- stream state helpers -------------------------------------------------- */

static void ctl_set(struct mux *m, struct stream *s, uint8_t flag)
{
	s->ctl |= flag;
	if (!linked(&s->ctl_l))
		list_add_tail(&m->ctl, &s->ctl_l);
}

static void event_raise(struct mux *m, struct stream *s, uint8_t flag)
{
	s->ev |= flag;
	if (!linked(&s->ev_l))
		list_add_tail(&m->evq, &s->ev_l);
}

static uint64_t credit(const struct stream *s) { return s->tx_limit - s->tx_off; }

/* win_floor is the smallest window a stream gets however short the budget
 * (step 4.5.1): budget / MUX_FLOOR_SHARE, between MUX_WINDOW_FLOOR and
 * MUX_WINDOW_FLOOR_MAX. A stream at 64 KiB moves at most 64 KiB per round
 * trip and waits a round for credit behind every hole, so on a 20 ms path
 * the last of 32 streams opened together fell behind the first ones
 * (Jain's index 0.76 at 1% loss; issue 20, branch conc); a large budget
 * can afford more for each, a small one (mobile, low-memory) keeps 64 KiB. */
static uint64_t win_floor(const struct mux *m)
{
	uint64_t f = m->cfg.budget / MUX_FLOOR_SHARE;

	f = f < MUX_WINDOW_FLOOR ? MUX_WINDOW_FLOOR : f;
	return f < MUX_WINDOW_FLOOR_MAX ? f : MUX_WINDOW_FLOOR_MAX;
}

/* pick_window chooses the window a stream announces (step 4.5): a share of
 * the budget left by the other streams, never below the floor nor above
 * the configured window. `others` is what they hold. */
static uint32_t pick_window(const struct mux *m, uint64_t others)
{
	uint64_t left = others < m->cfg.budget ? m->cfg.budget - others : 0;
	uint64_t share = left / MUX_BUDGET_SHARE;

	if (share < win_floor(m))
		share = win_floor(m);
	return share < m->cfg.window ? (uint32_t)share : m->cfg.window;
}

/* win_set changes s's window and the session's committed sum with it. */
static void win_set(struct mux *m, struct stream *s, uint32_t win)
{
	m->committed -= rx_max(m, s);
	s->win = win;
	m->committed += rx_max(m, s);
}

/* tx_room is what mux_stream_write may accept: the send buffer and the
 * peer's credit both bound the bytes held (step 4.2). */
static size_t tx_room(const struct mux *m, const struct stream *s)
{
	uint64_t cap = credit(s) < m->cfg.send_buffer ? credit(s) : m->cfg.send_buffer;
	return cap > s->tx.len ? (size_t)(cap - s->tx.len) : 0;
}

static void act_update(struct mux *m, struct stream *s)
{
	bool want = s->tx.len > 0 && credit(s) > 0;

	if (want && !linked(&s->act_l)) {
		s->deficit = 0; /* step 5.3: a stream that was idle starts fresh */
		list_add_tail(&m->fresh, &s->act_l);
	} else if (!want) {
		list_del(&s->act_l);
	}
}

/* writable_check raises WRITABLE once enough room opened after a refusal. */
static void writable_check(struct mux *m, struct stream *s)
{
	size_t room = tx_room(m, s);

	if (s->want_write && !s->fin_req &&
	    (room >= MUX_WRITABLE_MIN || (room > 0 && s->tx.len == 0))) {
		s->want_write = false;
		event_raise(m, s, EVF_WRITABLE);
	}
}

/* fin_check queues the FIN once shut down and the send buffer is empty. */
static void fin_check(struct mux *m, struct stream *s)
{
	if (s->fin_req && !s->fin_sent && s->tx.len == 0)
		ctl_set(m, s, CTL_FIN);
}

/* rebalance moves a stream's window towards the fair share of the budget,
 * budget / streams held (never below the floor nor above the configured
 * window), as its application reads (step 4.5.3). The windows chosen at
 * announce time shrink geometrically (4.5.1): with 32 bulk streams the
 * first few held 4 MiB and the rest 64 KiB, and the rest ran at 64 KiB
 * per RTT (issue 19: Jain's index 0.88). A window above the share shrinks,
 * but never below what is already granted and unread, so the buffer bound
 * always covers what the peer may send; one below grows by what the budget
 * has left, so the streams together still never hold more than the budget.
 * Local only: the peer just sees smaller or larger WINDOW increments. */
static void rebalance(struct mux *m, struct stream *s)
{
	uint64_t share = m->cfg.budget / (m->ntab ? m->ntab : 1), out, want;

	if (!s->hello_sent || s->fin_rcvd || m->role != MUX_CLIENT)
		return;
	share = share < win_floor(m) ? win_floor(m) : share;
	share = share < m->cfg.window ? share : m->cfg.window;
	out = s->rx_limit > s->rx_read ? s->rx_limit - s->rx_read : 0;
	if (s->win > share) {
		want = out > share ? out : share;
		if (want < s->win)
			win_set(m, s, (uint32_t)want);
	} else if (s->win < share && m->committed < m->cfg.budget) {
		want = s->win + (m->cfg.budget - m->committed);
		win_set(m, s, (uint32_t)(want < share ? want : share));
	}
}

/* grant_check queues a WINDOW once the application has read half a window
 * beyond what we last granted (step 4.3), never before our OPEN or REPLY
 * (step 4.4.4). The first grant may exceed read + window (step 4.4.3), so
 * the difference is taken only when positive. */
static void grant_check(struct mux *m, struct stream *s)
{
	uint64_t want = s->rx_read + s->win;

	if (!s->fin_rcvd && s->hello_sent && want > s->rx_limit && want - s->rx_limit >= s->win / 2)
		ctl_set(m, s, CTL_WINDOW);
}

/* done_check frees a stream closed in both directions and fully read
 * (step 6). */
static void done_check(struct mux *m, struct stream *s)
{
	if (s->fin_sent && s->fin_rcvd && s->eof_seen && s->rx.len == 0 && s->ctl == 0)
		stream_free(m, s);
}

/* --- input (steps 2 and 3) ------------------------------------------------- */

/* known_id says whether id was ever opened in this session, so that a frame
 * for a freed stream can be told from one for a stream that never was. */
static bool known_id(const struct mux *m, uint32_t id)
{
	return m->role == MUX_CLIENT ? id < m->next_id : id <= m->peer_max_id;
}

static int rst_push(struct mux *m, uint32_t id, uint8_t reason, bool refusal)
{
	if (refusal && m->n_rst_refuse >= MUX_REFUSE_MAX)
		return KS_ERR_PROTO;
	if (rst_reserve(m) != 0)
		return KS_ERR_NOMEM;
	m->rstq[(m->rst_head + m->rst_len) % m->rst_cap] =
	        (struct rst_entry){ .id = id, .reason = reason, .refusal = refusal };
	m->rst_len++;
	if (refusal)
		m->n_rst_refuse++;
	else
		m->n_rst_local++;
	return 0;
}

/* on_open: step 3.1, server side. */
static int on_open(struct mux *m, const struct mux_frame *f)
{
	struct rd r = rd_init(f->payload, f->len);
	struct stream *s;
	uint32_t window = 0;

	if (m->role != MUX_SERVER || f->id <= m->peer_max_id)
		return KS_ERR_PROTO;
	rd_u32be(&r, &window);
	if (window > MUX_WINDOW_MAX)
		return KS_ERR_PROTO;
	m->peer_max_id = f->id;
	if (slots_used(m) >= m->cfg.max_streams)
		return rst_push(m, f->id, MUX_RST_LIMIT, true);
	s = tab_reserve(m) == 0 ? stream_alloc(m, f->id, r.p, rd_left(&r)) : NULL;
	if (!s)
		return rst_push(m, f->id, MUX_RST_RESOURCE, true);
	s->tx_limit = window;
	s->rx_limit = MUX_EARLY_DATA_MAX; /* step 4.4.2: early DATA may follow */
	m->committed += rx_max(m, s);     /* win 0: the allowance (step 4.5) */
	tab_insert(m, s);
	event_raise(m, s, EVF_OPEN);
	return 0;
}

/* on_reply: step 3.2, client side. */
static int on_reply(struct mux *m, struct stream *s, const struct mux_frame *f)
{
	struct rd r = rd_init(f->payload, f->len);
	uint32_t window = 0;
	uint8_t *rep;

	if (m->role != MUX_CLIENT || s->replied || (s->ctl & CTL_OPEN))
		return KS_ERR_PROTO;
	rd_u32be(&r, &window);
	if (window > MUX_WINDOW_MAX)
		return KS_ERR_PROTO;
	rep = malloc(rd_left(&r));
	if (!rep)
		return KS_ERR_NOMEM;
	memcpy(rep, r.p, rd_left(&r));
	m->mem += rd_left(&r);
	s->hello = rep; /* the request was freed when OPEN went out */
	s->hello_len = rd_left(&r);
	s->replied = true;
	s->tx_limit = first_limit(window); /* step 4.4.3: >= tx_off, no wrap */
	act_update(m, s);
	event_raise(m, s, EVF_REPLY);
	writable_check(m, s);
	return 0;
}

/* on_data: step 3.3; DATA beyond our grant is a protocol error. */
static int on_data(struct mux *m, struct stream *s, const struct mux_frame *f)
{
	int rc;

	if (s->fin_rcvd || f->len > s->rx_limit - s->rx_off)
		return KS_ERR_PROTO;
	rc = ring_reserve(m, &s->rx, f->len, rx_max(m, s));
	if (rc < 0)
		return rc == KS_ERR_FULL ? KS_ERR_PROTO : rc;
	ring_put(&s->rx, f->payload, f->len);
	s->rx_off += f->len;
	event_raise(m, s, EVF_READABLE);
	return 0;
}

/* --- per-stream delivery (step 10) ---------------------------------------- */

/* ooo_add records [off, end) above rx_off, merged with a neighbour it
 * touches; the caller checked that it overlaps none. */
static int ooo_add(struct mux *m, struct stream *s, uint64_t off, uint64_t end)
{
	uint8_t i = 0;

	if (!s->ooo) {
		if (!(s->ooo = malloc(MUX_OOO_MAX * sizeof *s->ooo)))
			return KS_ERR_NOMEM;
		m->mem += MUX_OOO_MAX * sizeof *s->ooo;
	}
	while (i < s->nooo && s->ooo[i].end < off)
		i++;
	if (i < s->nooo && s->ooo[i].end == off) {
		s->ooo[i].end = end;
		if (i + 1 < s->nooo && s->ooo[i + 1].start == end) {
			s->ooo[i].end = s->ooo[i + 1].end;
			s->nooo--;
			memmove(&s->ooo[i + 1], &s->ooo[i + 2], (s->nooo - i - 1) * sizeof *s->ooo);
		}
		return 0;
	}
	if (i < s->nooo && s->ooo[i].start == end) {
		s->ooo[i].start = off;
		return 0;
	}
	if (s->nooo == MUX_OOO_MAX)
		return KS_ERR_PROTO; /* mux_input_early made sure of room */
	memmove(&s->ooo[i + 1], &s->ooo[i], (s->nooo - i) * sizeof *s->ooo);
	s->ooo[i] = (struct ival){ off, end };
	s->nooo++;
	return 0;
}

/* ooo_advance moves rx_off over the ranges that now continue it. */
static void ooo_advance(struct mux *m, struct stream *s)
{
	while (s->nooo && s->ooo[0].start == s->rx_off) {
		s->rx_off = s->ooo[0].end;
		s->nooo--;
		memmove(&s->ooo[0], &s->ooo[1], s->nooo * sizeof *s->ooo);
	}
	if (!s->nooo)
		ooo_release(m, s);
}

/* data_at_check: step 10.2. Bytes inside our grant, never received before;
 * in order (mux_input) they continue the stream exactly. */
static int data_at_check(const struct stream *s, uint64_t off, size_t n, bool early)
{
	if (s->fin_rcvd || off < s->rx_off || off > s->rx_limit || n > s->rx_limit - off)
		return KS_ERR_PROTO;
	if (s->fin_at_rcvd && off + n > s->fin_at)
		return KS_ERR_PROTO;
	if (!early && off != s->rx_off)
		return KS_ERR_PROTO;
	for (uint8_t i = 0; i < s->nooo; i++)
		if (off < s->ooo[i].end && s->ooo[i].start < off + n)
			return KS_ERR_PROTO;
	return 0;
}

static int on_fin(struct mux *m, struct stream *s);

/* on_data_at: step 10.2; the bytes go into the receive ring at their
 * offset, which the grant bounds as it bounds DATA. */
static int on_data_at(struct mux *m, struct stream *s, const struct mux_frame *f, bool early)
{
	struct rd r = rd_init(f->payload, f->len);
	uint64_t off = 0, hi;
	size_t n;
	int rc;

	rd_u64be(&r, &off);
	n = rd_left(&r);
	rc = data_at_check(s, off, n, early);
	if (rc < 0)
		return rc;
	hi = s->nooo ? s->ooo[s->nooo - 1].end : s->rx_off;
	rc = ring_grow(m, &s->rx, (size_t)(hi - s->rx_read),
	               (size_t)((off + n > hi ? off + n : hi) - s->rx_read), rx_max(m, s));
	if (rc < 0)
		return rc == KS_ERR_FULL ? KS_ERR_PROTO : rc;
	ring_put_at(&s->rx, (size_t)(off - s->rx_read), r.p, n);
	if (off != s->rx_off)
		return ooo_add(m, s, off, off + n);
	s->rx_off += n;
	ooo_advance(m, s);
	s->rx.len = (size_t)(s->rx_off - s->rx_read);
	event_raise(m, s, EVF_READABLE);
	if (s->fin_at_rcvd && s->rx_off == s->fin_at)
		return on_fin(m, s);
	return 0;
}

/* on_fin_at: step 10.2, the end of the stream at its final offset; the
 * FIN takes effect once every byte before it is here. */
static int on_fin_at(struct mux *m, struct stream *s, const struct mux_frame *f)
{
	struct rd r = rd_init(f->payload, f->len);
	uint64_t end = 0, hi = s->nooo ? s->ooo[s->nooo - 1].end : s->rx_off;

	rd_u64be(&r, &end);
	if (s->fin_rcvd || s->fin_at_rcvd || end < hi || end > s->rx_limit)
		return KS_ERR_PROTO;
	s->fin_at_rcvd = true;
	s->fin_at = end;
	return s->rx_off == end ? on_fin(m, s) : 0;
}

static int on_fin(struct mux *m, struct stream *s)
{
	/* Step 8: FIN is ordered, so every byte before it has arrived. */
	if (s->fin_rcvd || s->nooo)
		return KS_ERR_PROTO;
	s->fin_rcvd = true;
	s->ctl &= (uint8_t)~CTL_WINDOW; /* no more DATA will come */
	event_raise(m, s, EVF_FIN);
	return 0;
}

/* on_rst: step 3.5; everything goes at once, the event stays. */
static void on_rst(struct mux *m, struct stream *s, const struct mux_frame *f)
{
	struct rd r = rd_init(f->payload, f->len);

	rd_u8(&r, &s->reason);
	ring_release(m, &s->tx);
	ring_release(m, &s->rx);
	ooo_release(m, s);
	list_del(&s->ctl_l);
	list_del(&s->act_l);
	s->ctl = 0;
	s->dead = true;
	s->ev = 0;
	event_raise(m, s, EVF_RESET);
}

static int on_window(struct mux *m, struct stream *s, const struct mux_frame *f)
{
	struct rd r = rd_init(f->payload, f->len);
	uint32_t inc = 0;

	rd_u32be(&r, &inc);
	if (inc == 0 || credit(s) + inc > MUX_WINDOW_MAX)
		return KS_ERR_PROTO;
	s->tx_limit += inc;
	act_update(m, s);
	writable_check(m, s);
	return 0;
}

static void on_pong(struct mux *m, const struct mux_frame *f, uint64_t now)
{
	struct rd r = rd_init(f->payload, f->len);
	uint64_t v = 0;

	rd_u64be(&r, &v);
	if (!m->ping_out || v != m->ping_val)
		return; /* stale or unsolicited: ignored */
	m->ping_out = false;
	m->rtt = now >= m->ping_at ? now - m->ping_at : 0;
	m->pong_ev = true;
}

static int on_session_frame(struct mux *m, const struct mux_frame *f, uint64_t now)
{
	struct rd r = rd_init(f->payload, f->len);

	if (f->type == MUX_PING) {
		rd_u64be(&r, &m->pong_val); /* only the latest PING is answered */
		m->pong_due = true;
	} else {
		on_pong(m, f, now);
	}
	return 0;
}

/* dispatch: step 3. The header rules already hold (hdr_check). */
static int dispatch(struct mux *m, const struct mux_frame *f, uint64_t now)
{
	struct stream *s;

	if (f->id == 0)
		return on_session_frame(m, f, now);
	if (f->type == MUX_OPEN)
		return on_open(m, f);
	if (!known_id(m, f->id))
		return KS_ERR_PROTO;
	s = tab_get(m, f->id);
	if (!s || s->dead)
		return 0; /* step 3.6: closed or reset stream, dropped */
	/* Step 3.2: on the client, a stream's first frame is REPLY or RST. */
	if (m->role == MUX_CLIENT && !s->replied && f->type != MUX_REPLY && f->type != MUX_RST)
		return KS_ERR_PROTO;
	switch (f->type) {
	case MUX_REPLY: return on_reply(m, s, f);
	case MUX_DATA: return m->sd ? KS_ERR_PROTO : on_data(m, s, f);
	case MUX_DATA_AT: return m->sd ? on_data_at(m, s, f, false) : KS_ERR_PROTO;
	case MUX_FIN: return m->sd ? KS_ERR_PROTO : on_fin(m, s);
	case MUX_FIN_AT: return m->sd ? on_fin_at(m, s, f) : KS_ERR_PROTO;
	case MUX_RST: on_rst(m, s, f); return 0;
	case MUX_WINDOW: return on_window(m, s, f);
	}
	return KS_ERR_PROTO;
}

/* assemble takes bytes of a frame split across inputs into asm_buf, and
 * dispatches it when whole. Header rules are checked as soon as the header
 * is complete, exactly as mux_frame_decode would on the whole frame. */
static int assemble(struct mux *m, const uint8_t **data, size_t *len, uint64_t now)
{
	struct mux_frame f;
	size_t need = MUX_HDR_LEN, take;
	ssize_t n;
	int rc;

	if (!m->asm_buf) {
		if (!(m->asm_buf = malloc(MUX_ASM_LEN)))
			return KS_ERR_NOMEM;
		m->mem += MUX_ASM_LEN;
	}
	if (m->asm_len >= MUX_HDR_LEN)
		need += (size_t)m->asm_buf[2] << 8 | m->asm_buf[3];
	take = min_size(need - m->asm_len, *len);
	memcpy(m->asm_buf + m->asm_len, *data, take);
	m->asm_len += take;
	*data += take;
	*len -= take;
	n = mux_frame_decode(m->asm_buf, m->asm_len, &f);
	if (n == KS_ERR_AGAIN)
		return 0;
	if (n < 0)
		return (int)n;
	m->asm_len = 0; /* we never take more than one frame's bytes */
	rc = dispatch(m, &f, now);
	/* f's views point into asm_buf: free it only after dispatch. */
	free(m->asm_buf);
	m->asm_buf = NULL;
	m->mem -= MUX_ASM_LEN;
	return rc;
}

int mux_input(struct mux *m, const uint8_t *data, size_t len, uint64_t now)
{
	struct mux_frame f;
	ssize_t n;
	int rc = 0;

	while (!m->err && len > 0) {
		if (m->asm_len == 0) {
			n = mux_frame_decode(data, len, &f);
			if (n > 0) {
				rc = dispatch(m, &f, now);
				data += n;
				len -= (size_t)n;
			} else if (n == KS_ERR_PROTO) {
				rc = (int)n;
			} else {
				rc = assemble(m, &data, &len, now);
			}
		} else {
			rc = assemble(m, &data, &len, now);
		}
		if (rc < 0)
			m->err = rc;
	}
	return m->err;
}

void mux_stream_delivery(struct mux *m) { m->sd = true; }

/* early_ok: step 10.3, a frame that may be applied before the frames sent
 * ahead of it: DATA_AT, FIN_AT or WINDOW of a stream that is here and past
 * its REPLY (client; `replied` says the message's earlier frames had it),
 * with room for the ranges nframes more DATA_AT add; or (client) the REPLY
 * of a stream whose OPEN went out. */
static bool early_ok(const struct mux *m, const struct mux_frame *f, size_t nframes, bool replied)
{
	const struct stream *s;

	if (f->type != MUX_DATA_AT && f->type != MUX_FIN_AT && f->type != MUX_WINDOW &&
	    f->type != MUX_REPLY)
		return false;
	if (!known_id(m, f->id) || !(s = tab_get(m, f->id)) || s->dead)
		return false;
	if (f->type == MUX_REPLY)
		return m->role == MUX_CLIENT && !s->replied && !replied && !(s->ctl & CTL_OPEN);
	if (m->role == MUX_CLIENT && !s->replied && !replied)
		return false;
	return f->type != MUX_DATA_AT || s->nooo + nframes <= MUX_OOO_MAX;
}

/* early_replied says whether a REPLY for id is among the n frames at data. */
static bool early_replied(const uint8_t *data, size_t n, uint32_t id)
{
	struct mux_frame f;
	ssize_t k;

	for (size_t off = 0; off < n; off += (size_t)k)
		if ((k = mux_frame_decode(data + off, n - off, &f)) > 0 && f.type == MUX_REPLY &&
		    f.id == id)
			return true;
	return false;
}

int mux_input_early(struct mux *m, const uint8_t *data, size_t len, uint64_t now)
{
	struct mux_frame f;
	size_t off, nframes = 0;
	ssize_t n;
	int rc = 0;

	(void)now;
	if (m->err || !m->sd || m->asm_len || len == 0)
		return m->err;
	/* Whole frames only, every one of them takeable, or none is taken. */
	for (off = 0; off < len; off += (size_t)n, nframes++)
		if ((n = mux_frame_decode(data + off, len - off, &f)) < 0)
			return 0;
	for (off = 0; off < len; off += (size_t)n) {
		n = mux_frame_decode(data + off, len - off, &f);
		if (!early_ok(m, &f, nframes, early_replied(data, off, f.id)))
			return 0;
	}
	for (off = 0; off < len && rc == 0; off += (size_t)n) {
		struct stream *s;

		n = mux_frame_decode(data + off, len - off, &f);
		s = tab_get(m, f.id);
		if (f.type == MUX_DATA_AT)
			rc = on_data_at(m, s, &f, true);
		else if (f.type == MUX_FIN_AT)
			rc = on_fin_at(m, s, &f);
		else if (f.type == MUX_REPLY)
			rc = on_reply(m, s, &f);
		else
			rc = on_window(m, s, &f);
	}
	if (rc < 0)
		return m->err = rc;
	return 1;
}

/* --- output (step 5) ------------------------------------------------------- */

/* put_hdr writes a header whose payload the caller writes next. */
static void put_hdr(struct wr *w, uint8_t type, uint32_t id, size_t n)
{
	wr_u8(w, type);
	wr_u8(w, 0);
	wr_u16be(w, (uint16_t)n);
	wr_u32be(w, id);
}

static bool put_frame(struct wr *w, uint8_t type, uint32_t id, const uint8_t *p, size_t n)
{
	struct mux_frame f = { .type = type, .id = id, .len = (uint16_t)n, .payload = p };
	return mux_frame_encode(w, &f) == 0;
}

static bool put_u64(struct wr *w, uint8_t type, uint64_t v)
{
	uint8_t b[8];
	struct wr bw = wr_init(b, sizeof b);

	wr_u64be(&bw, v);
	return put_frame(w, type, 0, b, sizeof b);
}

/* put_hello writes OPEN or REPLY: our window, then the SOCKS5 bytes. */
static bool put_hello(struct wr *w, uint8_t type, const struct stream *s)
{
	uint8_t b[MUX_WINDOW_FIELD_LEN + MUX_REQUEST_MAX];
	struct wr bw = wr_init(b, sizeof b);

	wr_u32be(&bw, s->win);
	wr_bytes(&bw, s->hello, s->hello_len);
	return put_frame(w, type, s->id, b, wr_len(&bw));
}

/* Step 5.1: session control frames, PONG, PING, then RSTs in order. */
static bool emit_session(struct mux *m, struct wr *w, uint64_t now)
{
	if (m->pong_due) {
		if (!put_u64(w, MUX_PONG, m->pong_val))
			return false;
		m->pong_due = false;
	}
	if (m->ping_due) {
		if (!put_u64(w, MUX_PING, m->ping_val))
			return false;
		m->ping_due = false;
		m->ping_out = true;
		m->ping_at = now;
	}
	while (m->rst_len > 0) {
		struct rst_entry *e = &m->rstq[m->rst_head];
		if (!put_frame(w, MUX_RST, e->id, &e->reason, 1))
			return false;
		if (e->refusal)
			m->n_rst_refuse--;
		else
			m->n_rst_local--;
		m->rst_head = (m->rst_head + 1) % m->rst_cap;
		m->rst_len--;
	}
	if (m->rstq) { /* all sent: the ring goes until the next RST */
		free(m->rstq);
		m->rstq = NULL;
		m->rst_head = 0;
		m->mem -= m->rst_cap * sizeof *m->rstq;
	}
	return true;
}

/* emit_hello sends a due OPEN or REPLY, then drops the bytes it carried
 * and opens our receive window: the peer may send once it has the frame.
 * A server's first grant counts from offset 0 and covers the early bytes
 * (step 4.4.3); if its application read them already, a WINDOW may be due
 * at once and follows in this pass (step 4.4.4). */
static bool emit_hello(struct mux *m, struct stream *s, struct wr *w)
{
	uint8_t flag = m->role == MUX_CLIENT ? CTL_OPEN : CTL_REPLY;

	if (!(s->ctl & flag))
		return true;
	if (!put_hello(w, flag == CTL_OPEN ? MUX_OPEN : MUX_REPLY, s))
		return false;
	s->ctl &= (uint8_t)~flag;
	m->mem -= s->hello_len;
	free(s->hello);
	s->hello = NULL;
	s->hello_len = 0;
	s->hello_sent = true;
	s->rx_limit = rx_max(m, s);
	grant_check(m, s);
	return true;
}

/* emit_stream_ctl writes s's due control frames; false if one did not fit. */
static bool emit_stream_ctl(struct mux *m, struct stream *s, struct wr *w)
{
	if (!emit_hello(m, s, w))
		return false;
	if (s->ctl & CTL_WINDOW) {
		uint8_t b[4];
		struct wr bw = wr_init(b, sizeof b);
		uint64_t inc = s->rx_read + s->win - s->rx_limit;

		wr_u32be(&bw, (uint32_t)inc);
		if (!put_frame(w, MUX_WINDOW, s->id, b, sizeof b))
			return false;
		s->ctl &= (uint8_t)~CTL_WINDOW;
		s->rx_limit += inc;
	}
	if (s->ctl & CTL_FIN) {
		uint8_t b[MUX_OFFSET_LEN];
		struct wr bw = wr_init(b, sizeof b);

		wr_u64be(&bw, s->tx_off); /* step 10.2: FIN_AT, the final offset */
		if (!put_frame(w, m->sd ? MUX_FIN_AT : MUX_FIN, s->id, b, m->sd ? sizeof b : 0))
			return false;
		s->ctl &= (uint8_t)~CTL_FIN;
		s->fin_sent = true;
	}
	return true;
}

/* Step 5.1: stream control frames in the order they became due. */
static bool emit_ctl(struct mux *m, struct wr *w)
{
	while (!list_empty(&m->ctl)) {
		struct stream *s = CONTAINER(m->ctl.next, struct stream, ctl_l);
		if (!emit_stream_ctl(m, s, w))
			return false;
		list_del(&s->ctl_l);
		done_check(m, s);
	}
	return true;
}

/* emit_data_one sends one DATA frame from the head of the sending streams
 * (step 5.2), the fresh list first (step 5.3). Returns false when nothing
 * more fits. */
static bool emit_data_one(struct mux *m, struct wr *w)
{
	struct link *head = list_empty(&m->fresh) ? m->act.next : m->fresh.next;
	struct stream *s = CONTAINER(head, struct stream, act_l);
	size_t want, n, hdr = MUX_HDR_LEN + (m->sd ? MUX_OFFSET_LEN : 0);

	if (s->deficit == 0)
		s->deficit = m->cfg.quantum;

	want = min_size(min_size(s->tx.len, (size_t)credit(s)), s->deficit);
	want = min_size(want, MUX_FRAME_PAYLOAD_MAX + MUX_HDR_LEN - hdr);
	if (wr_room(w) <= hdr)
		return false;
	n = min_size(want, wr_room(w) - hdr);
	if (n < want && n < MUX_SPLIT_MIN)
		return false;
	/* the payload is copied from the ring */
	if (m->sd) {
		put_hdr(w, MUX_DATA_AT, s->id, MUX_OFFSET_LEN + n);
		wr_u64be(w, s->tx_off);
	} else {
		put_hdr(w, MUX_DATA, s->id, n);
	}
	ring_take(m, &s->tx, w->p, n);
	w->p += n;
	s->tx_off += n;
	s->deficit -= (uint32_t)n;
	if (s->tx.len == 0 || credit(s) == 0) {
		list_del(&s->act_l);
	} else if (s->deficit == 0) {
		list_del(&s->act_l);
		list_add_tail(&m->act, &s->act_l);
	}
	writable_check(m, s);
	fin_check(m, s);
	return true;
}

ssize_t mux_produce(struct mux *m, uint8_t *out, size_t room, uint64_t now)
{
	struct wr w = wr_init(out, room);

	if (m->err)
		return m->err;
	/* Control frames first; DATA only when all of them are out, so that
	 * OPEN/REPLY precede their DATA and a FIN follows it. A FIN made due
	 * by the last DATA of a stream goes out in the next pass. */
	for (int pass = 0; pass < 2; pass++) {
		if (!emit_session(m, &w, now) || !emit_ctl(m, &w))
			break;
		while ((!list_empty(&m->fresh) || !list_empty(&m->act)) && emit_data_one(m, &w))
			;
	}
	return (ssize_t)wr_len(&w);
}

bool mux_want_produce(const struct mux *m)
{
	return !m->err && (m->pong_due || m->ping_due || m->rst_len > 0 || !list_empty(&m->ctl) ||
	                   !list_empty(&m->fresh) || !list_empty(&m->act));
}

/* --- the application side (step 4) ----------------------------------------- */

static struct stream *live(const struct mux *m, uint32_t id)
{
	struct stream *s = tab_get(m, id);
	return s && !s->dead ? s : NULL;
}

int mux_open_stream(struct mux *m, const uint8_t *req, size_t len, uint32_t *id)
{
	struct stream *s;

	if (m->err)
		return m->err;
	if (m->role != MUX_CLIENT)
		return KS_ERR_STATE;
	if (len == 0 || len > MUX_REQUEST_MAX)
		return KS_ERR_INVAL;
	if (slots_used(m) >= m->cfg.max_streams || m->next_id == UINT32_MAX)
		return KS_ERR_LIMIT;
	s = tab_reserve(m) == 0 ? stream_alloc(m, m->next_id, req, len) : NULL;
	if (!s)
		return KS_ERR_NOMEM;
	m->next_id++;
	s->tx_limit = MUX_EARLY_DATA_MAX;            /* step 4.4.1: early DATA after OPEN */
	win_set(m, s, pick_window(m, m->committed)); /* step 4.5 */
	tab_insert(m, s);
	ctl_set(m, s, CTL_OPEN);
	*id = s->id;
	return 0;
}

int mux_stream_reply(struct mux *m, uint32_t id, const uint8_t *rep, size_t len)
{
	struct stream *s = live(m, id);
	uint8_t *copy;

	if (!s)
		return KS_ERR_CLOSED;
	if (m->role != MUX_SERVER || s->replied)
		return KS_ERR_STATE;
	if (len == 0 || len > MUX_REPLY_MAX)
		return KS_ERR_INVAL;
	copy = malloc(len);
	if (!copy)
		return KS_ERR_NOMEM;
	memcpy(copy, rep, len);
	m->mem = m->mem - s->hello_len + len; /* the request view ends here */
	free(s->hello);
	s->hello = copy;
	s->hello_len = len;
	s->replied = true;
	win_set(m, s, pick_window(m, m->committed - rx_max(m, s))); /* step 4.5 */
	ctl_set(m, s, CTL_REPLY);
	act_update(m, s);
	return 0;
}

ssize_t mux_stream_write(struct mux *m, uint32_t id, const void *buf, size_t len)
{
	struct stream *s = live(m, id);
	size_t n;
	int rc;

	if (!s)
		return KS_ERR_CLOSED;
	if (s->fin_req || (m->role == MUX_SERVER && !s->replied))
		return KS_ERR_STATE;
	if (len == 0)
		return KS_ERR_INVAL;
	n = min_size(len, tx_room(m, s));
	if (n == 0) {
		s->want_write = true;
		return KS_ERR_FULL;
	}
	rc = ring_reserve(m, &s->tx, n, m->cfg.send_buffer);
	if (rc < 0)
		return rc;
	ring_put(&s->tx, buf, n);
	if (n < len)
		s->want_write = true;
	act_update(m, s);
	return (ssize_t)n;
}

/* rx_end is a read that finds nothing buffered: 0 and the end seen once
 * the peer's FIN came (the stream may be freed here), else KS_ERR_AGAIN. */
static ssize_t rx_end(struct mux *m, struct stream *s)
{
	if (!s->fin_rcvd)
		return KS_ERR_AGAIN;
	s->eof_seen = true;
	done_check(m, s);
	return 0;
}

/* rx_taken accounts n bytes the application took (read or consumed): the
 * window moves and credit goes back (steps 4.3, 4.5.3). */
static void rx_taken(struct mux *m, struct stream *s, size_t n)
{
	if (s->rx.len == 0 && !s->nooo)
		ring_release(m, &s->rx); /* bytes above a gap stay (step 10) */
	s->rx_read += n;
	rebalance(m, s);
	grant_check(m, s);
}

ssize_t mux_stream_read(struct mux *m, uint32_t id, void *buf, size_t cap)
{
	struct stream *s = live(m, id);
	size_t n;

	if (!s)
		return KS_ERR_CLOSED;
	if (cap == 0)
		return KS_ERR_INVAL;
	if (s->rx.len == 0)
		return rx_end(m, s);
	n = min_size(cap, s->rx.len);
	ring_get(&s->rx, buf, n);
	rx_taken(m, s, n);
	return (ssize_t)n;
}

ssize_t mux_stream_peek(const struct mux *m, uint32_t id, struct iovec iov[2])
{
	const struct stream *s = live(m, id);

	if (!s)
		return KS_ERR_CLOSED;
	if (s->rx.len == 0)
		return s->fin_rcvd ? 0 : KS_ERR_AGAIN;
	ring_peek(&s->rx, iov);
	return (ssize_t)s->rx.len;
}

int mux_stream_consume(struct mux *m, uint32_t id, size_t n)
{
	struct stream *s = live(m, id);

	if (!s)
		return KS_ERR_CLOSED;
	if (n > s->rx.len || (n == 0 && (s->rx.len > 0 || !s->fin_rcvd)))
		return KS_ERR_INVAL;
	if (n == 0)
		return (int)rx_end(m, s);
	ring_skip(&s->rx, n);
	rx_taken(m, s, n);
	return 0;
}

int mux_stream_shutdown(struct mux *m, uint32_t id)
{
	struct stream *s = live(m, id);

	if (!s)
		return KS_ERR_CLOSED;
	if (s->fin_req || (m->role == MUX_SERVER && !s->replied))
		return KS_ERR_STATE;
	s->fin_req = true;
	s->want_write = false;
	fin_check(m, s);
	return 0;
}

int mux_stream_reset(struct mux *m, uint32_t id, uint8_t reason)
{
	struct stream *s = tab_get(m, id);
	bool peer_knows;

	if (!s)
		return KS_ERR_CLOSED;
	/* The peer knows the stream unless our OPEN never left, and needs no
	 * RST for a stream it reset itself. */
	peer_knows = !s->dead && !(s->ctl & CTL_OPEN);
	stream_free(m, s);
	/* The freed slot holds the RST; without memory for the ring the
	 * session cannot keep its promise to the peer: a session error. */
	if (peer_knows && rst_push(m, id, reason, false) != 0 && !m->err)
		m->err = KS_ERR_NOMEM;
	return 0;
}

size_t mux_stream_room(const struct mux *m, uint32_t id)
{
	const struct stream *s = live(m, id);

	if (!s || s->fin_req || (m->role == MUX_SERVER && !s->replied))
		return 0;
	return tx_room(m, s);
}

int mux_ping(struct mux *m)
{
	if (m->err)
		return m->err;
	/* A PING that went out and is still unanswered is superseded: its
	 * PONG may wait behind data for a path the peer no longer has (a NAT
	 * moved us), and only a new datagram from us tells the peer where we
	 * are now. Its late PONG is stale (on_pong). */
	if (m->ping_due)
		return KS_ERR_AGAIN;
	m->ping_out = false;
	m->ping_val++;
	m->ping_due = true;
	return 0;
}

/* --- events ---------------------------------------------------------------- */

static const struct {
	uint8_t flag;
	enum mux_event_type type;
} ev_order[] = {
	{ EVF_RESET, MUX_EV_RESET }, { EVF_OPEN, MUX_EV_OPEN },
	{ EVF_REPLY, MUX_EV_REPLY }, { EVF_READABLE, MUX_EV_READABLE },
	{ EVF_FIN, MUX_EV_FIN },     { EVF_WRITABLE, MUX_EV_WRITABLE },
};

int mux_next_event(struct mux *m, struct mux_event *ev)
{
	struct stream *s;
	size_t i = 0;

	if (m->pong_ev) {
		m->pong_ev = false;
		*ev = (struct mux_event){ .type = MUX_EV_PONG, .rtt_ms = m->rtt };
		return 0;
	}
	if (list_empty(&m->evq))
		return KS_ERR_AGAIN;
	s = CONTAINER(m->evq.next, struct stream, ev_l);
	while (!(s->ev & ev_order[i].flag))
		i++;
	s->ev &= (uint8_t)~ev_order[i].flag;
	*ev = (struct mux_event){ .type = ev_order[i].type, .id = s->id, .reason = s->reason };
	if (ev->type == MUX_EV_OPEN || ev->type == MUX_EV_REPLY) {
		ev->data = s->hello;
		ev->len = s->hello_len;
	}
	if (s->ev == 0)
		list_del(&s->ev_l);
	if (ev->type == MUX_EV_RESET)
		stream_free(m, s); /* the application has been told; the id ends */
	return 0;
}

size_t mux_mem_bytes(const struct mux *m) { return m->mem; }

size_t mux_stream_count(const struct mux *m) { return m->ntab; }
