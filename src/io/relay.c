/* relay.c - mux stream <-> tcp_conn glue (see relay.h). */
#include "io/relay.h"

#include <stdlib.h>
#include <string.h>

#include "core/mux.h"
#include "io/log.h"
#include "io/tcp.h"

static size_t slot_of(uint32_t id) { return id % RELAY_BUCKETS; }

void relay_host_init(struct relay_host *h, relay_mux_fn mux_of, void *ctx)
{
	memset(h, 0, sizeof *h);
	h->mux_of = mux_of;
	h->mux_ctx = ctx;
}

void relay_host_mark(struct relay_host *h)
{
	if (h->dirty)
		return;
	h->dirty = true;
	if (!h->dirty_list)
		return;
	h->next_dirty = *h->dirty_list;
	if (h->next_dirty)
		h->next_dirty->pprev_dirty = &h->next_dirty;
	h->pprev_dirty = h->dirty_list;
	*h->dirty_list = h;
}

void relay_host_unmark(struct relay_host *h)
{
	h->dirty = false;
	if (!h->pprev_dirty)
		return;
	*h->pprev_dirty = h->next_dirty;
	if (h->next_dirty)
		h->next_dirty->pprev_dirty = h->pprev_dirty;
	h->next_dirty = NULL;
	h->pprev_dirty = NULL;
}

struct relay_host *relay_host_take_dirty(struct relay_host **list)
{
	struct relay_host *h = *list;

	if (h)
		relay_host_unmark(h);
	return h;
}

struct mux *relay_host_mux(const struct relay_host *h)
{
	return h->gone || !h->mux_of ? NULL : h->mux_of(h->mux_ctx);
}

int relay_add(struct relay_host *h, struct relay *r, uint32_t id, const struct relay_ops *ops)
{
	size_t s = slot_of(id);

	if (relay_find(h, id))
		return KS_ERR_STATE;
	/* The buckets exist while the host holds a relay: an idle session
	 * costs no table (issue 19). */
	if (!h->bucket && !(h->bucket = calloc(RELAY_BUCKETS, sizeof *h->bucket)))
		return KS_ERR_NOMEM;
	memset(r, 0, sizeof *r);
	r->host = h;
	r->id = id;
	r->ops = *ops;
	r->phase = RELAY_PENDING;
	r->next = h->bucket[s];
	h->bucket[s] = r;
	h->count++;
	return 0;
}

struct relay *relay_find(const struct relay_host *h, uint32_t id)
{
	struct relay *r = h->bucket ? h->bucket[slot_of(id)] : NULL;

	while (r && r->id != id)
		r = r->next;
	return r;
}

static void unlink_relay(struct relay *r)
{
	struct relay_host *h = r->host;
	struct relay **pp;

	r->next = NULL;
	if (!h->bucket)
		return;
	pp = &h->bucket[slot_of(r->id)];
	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = r->next;
		h->count--;
	}
	if (h->count == 0 && !h->walking) {
		free(h->bucket);
		h->bucket = NULL;
	}
}

void relay_remove(struct relay *r)
{
	if (r->phase == RELAY_PENDING)
		unlink_relay(r);
	r->phase = RELAY_DONE;
}

/* finish_how: unreachable (table, socket: closed, or reset if abort),
 * then tell the owner. Last call. A relay whose stream did not end (its
 * FIN was never read: the stream was reset, the session was lost, the
 * daemon stops) always resets its TCP side: an orderly close would tell
 * the application that the far end finished, and a truncated body would
 * look complete. */
static void finish_how(struct relay *r, bool abort)
{
	if (r->phase == RELAY_DONE)
		return;
	unlink_relay(r);
	r->phase = RELAY_DONE;
	if (abort || !r->down_end)
		tcp_conn_abort(r->conn);
	else
		tcp_conn_close(r->conn);
	r->conn = NULL;
	r->ops.done(r, r->ops.arg);
}

static void finish(struct relay *r) { finish_how(r, false); }

void relay_abort(struct relay *r, bool reset)
{
	struct mux *m = relay_host_mux(r->host);

	if (r->phase == RELAY_DONE)
		return;
	if (reset && m) {
		(void)mux_stream_reset(m, r->id, MUX_RST_CANCEL);
		relay_host_mark(r->host);
	}
	finish(r);
}

void relay_reset(struct relay *r)
{
	struct mux *m = relay_host_mux(r->host);

	if (r->phase != RELAY_RUNNING)
		return;
	if (m) {
		(void)mux_stream_reset(m, r->id, MUX_RST_CANCEL);
		relay_host_mark(r->host);
	}
	finish_how(r, true);
}

static void check_done(struct relay *r)
{
	if (r->up_done && r->down_done)
		finish(r);
}

/* TCP -> mux: as much as the stream's credit and send buffer take. */
static void push_up(struct relay *r)
{
	struct mux *m = relay_host_mux(r->host);
	const uint8_t *data;
	size_t n;

	if (!m) {
		relay_abort(r, false); /* the session ended; its LOST is on the way */
		return;
	}
	while ((n = tcp_conn_peek(r->conn, &data)) > 0) {
		ssize_t w = mux_stream_write(m, r->id, data, n);

		if (w == KS_ERR_FULL)
			return; /* MUX_EV_WRITABLE resumes; the full buffer stops reading */
		if (w < 0) {
			relay_abort(r, true);
			return;
		}
		tcp_conn_consume(r->conn, (size_t)w);
		r->host->bytes_up += (uint64_t)w;
		r->bytes_up += (uint64_t)w;
		relay_host_mark(r->host);
	}
	if (tcp_conn_eof(r->conn) && !r->up_done) {
		if (mux_stream_shutdown(m, r->id) != 0) {
			relay_abort(r, true);
			return;
		}
		r->up_done = true;
		relay_host_mark(r->host);
		check_done(r);
	}
}

/* mux -> TCP, from the stream's receive ring itself (issue 13): the
 * kernel takes what it can straight from the ring's spans, the write
 * buffer the rest as far as it has room; what was taken is consumed,
 * which returns credit exactly as a read of the same size would. */
static void push_down(struct relay *r)
{
	struct mux *m = relay_host_mux(r->host);
	struct iovec v[2];

	if (!m) {
		relay_abort(r, false);
		return;
	}
	while (!r->down_end) {
		ssize_t n = mux_stream_peek(m, r->id, v), w;

		if (n == KS_ERR_AGAIN)
			return;
		if (n < 0) {
			relay_abort(r, false);
			return;
		}
		if (n == 0) {
			if (tcp_conn_write_space(r->conn) == 0)
				return; /* as before: the end after the bytes ahead of it */
			if (mux_stream_consume(m, r->id, 0) != 0) { /* the end is read */
				relay_abort(r, false);
				return;
			}
			relay_host_mark(r->host);
			r->down_end = true;
			if (tcp_conn_shutdown(r->conn) != 0)
				relay_abort(r, false);
			return;
		}
		w = tcp_conn_writev(r->conn, v, v[1].iov_len ? 2 : 1);
		if (w == KS_ERR_FULL)
			return; /* TCP_CONN_SENT (or ERROR) resumes */
		if (w < 0 || mux_stream_consume(m, r->id, (size_t)w) != 0) {
			relay_abort(r, true);
			return;
		}
		relay_host_mark(r->host); /* credit goes back to the peer */
		r->host->bytes_down += (uint64_t)w;
		r->bytes_down += (uint64_t)w;
		if (w < n)
			return; /* the write buffer is full */
	}
}

void relay_start(struct relay *r, struct tcp_conn *c)
{
	r->conn = c;
	r->phase = RELAY_RUNNING;
	tcp_conn_read_start(c);
	push_up(r);
	if (r->phase == RELAY_RUNNING)
		push_down(r);
}

void relay_on_mux_event(struct relay *r, const struct mux_event *ev)
{
	if (r->phase != RELAY_RUNNING)
		return;
	switch (ev->type) {
	case MUX_EV_READABLE:
	case MUX_EV_FIN: push_down(r); break;
	case MUX_EV_WRITABLE: push_up(r); break;
	case MUX_EV_RESET: finish(r); break;
	case MUX_EV_OPEN:
	case MUX_EV_REPLY:
	case MUX_EV_PONG: break;
	}
}

void relay_on_tcp_event(struct relay *r, const struct tcp_conn_event *ev)
{
	if (r->phase != RELAY_RUNNING)
		return;
	switch (ev->type) {
	case TCP_CONN_DATA:
	case TCP_CONN_EOF: push_up(r); break;
	case TCP_CONN_SENT: push_down(r); break;
	case TCP_CONN_SHUTDOWN:
		r->down_done = true;
		check_done(r);
		break;
	case TCP_CONN_ERROR:
		log_debug("stream %u: tcp#%llu: %s", r->id,
		          (unsigned long long)tcp_conn_id(r->conn), strerror(ev->err));
		relay_abort(r, true);
		break;
	}
}

void relay_host_lost(struct relay_host *h, void (*pending_lost)(struct relay *r, void *arg),
                     void *arg)
{
	h->gone = true;
	h->walking = true; /* the buckets stay until the walk ends */
	for (size_t i = 0; h->bucket && i < RELAY_BUCKETS; i++) {
		struct relay *r;

		/* Each call takes r out of the chain, so restart at the head. */
		while ((r = h->bucket[i]) != NULL) {
			if (r->phase == RELAY_PENDING) {
				pending_lost(r, arg);
				if (h->bucket[i] == r) /* the owner kept it: drop it here */
					relay_remove(r);
			} else {
				finish(r);
			}
		}
	}
	h->walking = false;
	if (h->count == 0) {
		free(h->bucket);
		h->bucket = NULL;
	}
}

void relay_host_drain_orphan(struct relay_host *h, const struct mux_event *ev)
{
	struct mux *m = relay_host_mux(h);
	struct iovec v[2];
	ssize_t n;

	if (!m || (ev->type != MUX_EV_READABLE && ev->type != MUX_EV_FIN))
		return;
	/* Dropped where they lie (consuming returns the credit), up to and
	 * including the end, which frees the stream. */
	while ((n = mux_stream_peek(m, ev->id, v)) >= 0) {
		if (mux_stream_consume(m, ev->id, (size_t)n) != 0 || n == 0)
			return;
		relay_host_mark(h);
	}
}
