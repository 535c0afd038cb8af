/* tcp.h - non-blocking TCP for the event loop: listener, connect, connection.
 *
 * Three objects, all on one libev loop (borrowed, must outlive them):
 *   struct tcp_listener  accepts in bounded batches under a connection limit
 *   struct tcp_connect   one outbound connect over a list of addresses
 *   struct tcp_conn      an open socket with bounded read and write buffers
 *
 * Rule for every callback in this module: it is only ever called from a
 * libev callback, never from inside a tcp_* call. So a caller may call any
 * tcp_* function, including the close/free of the object at hand, from its
 * callback, and no tcp_* call re-enters the caller.
 *
 * Backpressure: a tcp_conn reads only while the caller wants data
 * (tcp_conn_read_start) AND its read buffer has room; the caller drains it
 * with tcp_conn_peek/tcp_conn_consume. tcp_conn_write copies at most the
 * free space of the write buffer; TCP_CONN_SENT events say how many bytes
 * left for the kernel, which is when the caller may take more (return
 * stream credit). Nothing here grows a buffer. A buffer is allocated
 * (at its full size) when bytes arrive or are written and freed when it
 * drains, so an idle connection holds no buffer.
 */
#ifndef KCPSOCKS_TCP_H
#define KCPSOCKS_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/err.h"
#include "base/limits.h"

struct ev_loop;

/* ---- listener ---- */

struct tcp_listener_opts {
	int backlog;       /* listen(2) backlog; 0 means TCP_BACKLOG_DEFAULT */
	size_t max_conns;  /* accepted and not yet released; 0 means TCP_CONNS_DEFAULT */
	uint32_t pause_ms; /* rest after EMFILE/ENFILE; 0 means TCP_ACCEPT_PAUSE_MS */
};

/* on_accept gets a new connected socket: non-blocking, close-on-exec, owned
 * by the callee from now on (close it or hand it to tcp_conn_new), and
 * counted against max_conns until the callee calls tcp_listener_release
 * once for it (also when it refuses it at once). peer is a view valid
 * during the call. */
struct tcp_listener_cb {
	void (*on_accept)(int fd, const struct sockaddr_storage *peer, void *arg);
	void *arg;
};

struct tcp_listener;

/* tcp_listener_new opens a socket of addr's family with SO_REUSEADDR (and
 * IPV6_V6ONLY for IPv6), binds, listens and starts accepting. opts may be
 * NULL for the defaults. Returns the listener, or NULL with a message in
 * err (may be NULL): "listen 127.0.0.1:1080: Address already in use";
 * "listen ...: invalid options" for a bad opts or family. */
struct tcp_listener *tcp_listener_new(struct ev_loop *loop, const struct sockaddr_storage *addr,
                                      const struct tcp_listener_opts *opts,
                                      const struct tcp_listener_cb *cb, char *err, size_t errlen);

/* tcp_listener_free stops accepting and closes the socket; NULL is a no-op.
 * May be called from inside this listener's on_accept (the memory goes
 * when the accept loop returns). Accepted fds are unaffected. */
void tcp_listener_free(struct tcp_listener *l);

/* tcp_listener_pause stops accepting until tcp_listener_resume (the graceful
 * stop uses it); connections already queued by the kernel wait. */
void tcp_listener_pause(struct tcp_listener *l);
void tcp_listener_resume(struct tcp_listener *l);

/* tcp_listener_release gives back one connection slot taken by on_accept.
 * Accepting restarts when it was stopped by the limit. */
void tcp_listener_release(struct tcp_listener *l);

/* tcp_listener_addr fills *out with the bound address (the kernel's port for
 * port 0). Returns 0 or KS_ERR_IO (errno set). */
KS_MUST_CHECK int tcp_listener_addr(const struct tcp_listener *l, struct sockaddr_storage *out);

struct tcp_listener_stats {
	uint64_t accepted;  /* sockets handed to on_accept */
	uint64_t active;    /* accepted and not yet released */
	uint64_t limited;   /* times accepting stopped at max_conns */
	uint64_t fd_pauses; /* times accepting rested after EMFILE/ENFILE/ENOBUFS/ENOMEM */
	uint64_t errors;    /* other accept failures (ECONNABORTED ...) */
};
const struct tcp_listener_stats *tcp_listener_stats(const struct tcp_listener *l);

/* ---- outbound connect ---- */

/* The outcome of a tcp_connect. On success err is 0 and fd (owned by the
 * callee from now on) is connected, non-blocking, close-on-exec; local is
 * the address it is bound to (for the SOCKS5 BND.ADDR) and remote the one
 * that answered. On failure fd is -1, err an errno (ECONNREFUSED,
 * ENETUNREACH, EHOSTUNREACH, ETIMEDOUT, ... the last address's), local and
 * remote NULL. The views are valid during the call. */
struct tcp_connect_result {
	int fd;
	int err;
	const struct sockaddr_storage *local;
	const struct sockaddr_storage *remote;
};

struct tcp_connect_cb {
	void (*on_done)(const struct tcp_connect_result *res, void *arg);
	void *arg;
};

struct tcp_connect;

/* tcp_connect_start tries addrs[0..n) in order (n <= TCP_CONNECT_ADDRS_MAX;
 * copied) within timeout_ms in all (0 means
 * TCP_CONNECT_TIMEOUT_DEFAULT_MS, at most TCP_CONNECT_TIMEOUT_MAX_MS):
 * each attempt gets an equal share of what is left, at least
 * TCP_CONNECT_ATTEMPT_MIN_MS, so one silent address cannot eat the whole
 * budget. on_done is called exactly once, later, from the loop (also when
 * every address fails at once), unless tcp_connect_cancel comes first.
 * The handle is invalid once on_done returns.
 * Returns the handle, or NULL (n is 0 or too big, bad timeout, no memory). */
struct tcp_connect *tcp_connect_start(struct ev_loop *loop, const struct sockaddr_storage *addrs,
                                      size_t n, uint32_t timeout_ms,
                                      const struct tcp_connect_cb *cb);

/* tcp_connect_cancel stops the attempt, closes its socket and frees the
 * handle; on_done will not be called. NULL and a call from inside on_done
 * are no-ops. */
void tcp_connect_cancel(struct tcp_connect *c);

/* ---- connection ---- */

enum tcp_conn_event_type {
	TCP_CONN_DATA = 1, /* bytes arrived: n = bytes now in the read buffer */
	TCP_CONN_EOF,      /* the peer shut down its side: no more DATA; reading stopped.
	                    * Bytes may still be buffered: hand them on (peek/consume)
	                    * before acting on the EOF */
	TCP_CONN_SENT,     /* n bytes left the write buffer for the kernel */
	TCP_CONN_SHUTDOWN, /* write buffer drained after tcp_conn_shutdown; our FIN is sent */
	TCP_CONN_ERROR,    /* err is the errno (ECONNRESET, EPIPE, ...); the connection is
	                    * dead: watchers stopped, only tcp_conn_close remains to do */
};

struct tcp_conn_event {
	enum tcp_conn_event_type type;
	int err;  /* TCP_CONN_ERROR only */
	size_t n; /* TCP_CONN_DATA and TCP_CONN_SENT */
};

struct tcp_conn;

struct tcp_conn_cb {
	/* Called from the loop only. The callee may call anything on c,
	 * tcp_conn_close included; c stays valid (closed) until the loop frees
	 * it after the callback returns. */
	void (*on_event)(struct tcp_conn *c, const struct tcp_conn_event *ev, void *arg);
	void *arg;
};

struct tcp_conn_opts {
	size_t rbuf; /* read buffer bytes; 0 means TCP_BUF_DEFAULT */
	size_t wbuf; /* write buffer bytes; 0 means TCP_BUF_DEFAULT */
};

/* tcp_conn_new takes ownership of a connected socket fd (made non-blocking
 * here, TCP_NODELAY set); its buffers come with the data. Reading is stopped
 * until tcp_conn_read_start. opts may be NULL. Returns the connection, or
 * NULL with fd left open for the caller (bad opts, no memory). */
struct tcp_conn *tcp_conn_new(struct ev_loop *loop, int fd, const struct tcp_conn_opts *opts,
                              const struct tcp_conn_cb *cb);

/* tcp_conn_close, step one of two: stops the watchers, closes the socket
 * (an unsent write buffer is lost; a pending tcp_conn_shutdown did not
 * happen) and starts an ev_check watcher that frees c (step two) in a
 * later phase of the loop, after every callback on the stack has returned.
 * No callback comes after it; accessors stay usable until the free. The
 * loop must run once more for the free: at exit, after ev_break, one
 * ev_run(loop, EVRUN_NOWAIT) reaps closed connections. NULL and a second
 * call are no-ops. */
void tcp_conn_close(struct tcp_conn *c);

/* tcp_conn_abort closes like tcp_conn_close, but abortively: SO_LINGER
 * {1, 0} first, so the kernel drops unsent data and sends RST, and the
 * peer sees a connection reset (ECONNRESET) rather than an orderly end.
 * NULL and a call after close are no-ops. */
void tcp_conn_abort(struct tcp_conn *c);

/* tcp_conn_read_start/stop say whether the caller wants data. The read
 * watcher runs while wanted, the read buffer has room, and no EOF or error
 * came. Data already buffered gives no new DATA event on start. */
void tcp_conn_read_start(struct tcp_conn *c);
void tcp_conn_read_stop(struct tcp_conn *c);

/* tcp_conn_peek returns the number of buffered bytes and sets *data to them
 * (a view valid until the next consume, close or return to the loop). */
size_t tcp_conn_peek(const struct tcp_conn *c, const uint8_t **data);

/* tcp_conn_consume drops the first n (<= buffered) bytes; reading resumes if
 * it stopped because the buffer was full. */
void tcp_conn_consume(struct tcp_conn *c, size_t n);

/* tcp_conn_consume_wipe is tcp_conn_consume after overwriting the dropped
 * bytes with zeros where they lie in the read buffer (a secret such as an
 * RFC 1929 password must not outlive its check there). n may exceed what is
 * buffered: everything is then wiped and dropped. */
void tcp_conn_consume_wipe(struct tcp_conn *c, size_t n);

/* tcp_conn_write copies up to the write buffer's free space and returns the
 * bytes taken (0 <= r <= len); the loop sends them when the socket is
 * writable. Returns KS_ERR_FULL when len > 0 and nothing fitted,
 * KS_ERR_CLOSED after tcp_conn_shutdown, an error or close, KS_ERR_NOMEM
 * when the write buffer could not be allocated. */
KS_MUST_CHECK ssize_t tcp_conn_write(struct tcp_conn *c, const void *data, size_t len);

/* tcp_conn_writev is tcp_conn_write from cnt (<= TCP_IOV_MAX) spans, in
 * order, with one copy fewer where it can: while nothing is buffered, the
 * kernel takes what it will straight from the spans (one sendmsg, no copy
 * and no TCP_CONN_SENT for those bytes); the rest is copied into the write
 * buffer up to its free space. Returns the bytes taken from the front of
 * the spans (0 when they are empty), KS_ERR_FULL when nothing was taken
 * (a TCP_CONN_SENT, or TCP_CONN_ERROR, follows), KS_ERR_CLOSED,
 * KS_ERR_NOMEM, KS_ERR_INVAL for cnt > TCP_IOV_MAX. A send error is
 * reported as a TCP_CONN_ERROR from the loop, never from inside the call. */
KS_MUST_CHECK ssize_t tcp_conn_writev(struct tcp_conn *c, const struct iovec *iov, size_t cnt);

/* tcp_conn_write_space returns the free bytes of the write buffer (0 once
 * shut down, failed or closed). */
size_t tcp_conn_write_space(const struct tcp_conn *c);

/* tcp_conn_write_pending returns the bytes not yet given to the kernel. */
size_t tcp_conn_write_pending(const struct tcp_conn *c);

/* tcp_conn_shutdown half-closes: once the write buffer has drained the loop
 * calls shutdown(SHUT_WR) and reports TCP_CONN_SHUTDOWN (or TCP_CONN_ERROR).
 * Reading goes on. Returns 0, or KS_ERR_CLOSED after an error or close. A
 * second call returns 0 and does nothing. */
KS_MUST_CHECK int tcp_conn_shutdown(struct tcp_conn *c);

/* Accessors. tcp_conn_id is a process-unique number for log lines (the
 * debug log says "tcp#ID open fd N" and "tcp#ID freed"). */
uint64_t tcp_conn_id(const struct tcp_conn *c);
int tcp_conn_fd(const struct tcp_conn *c); /* -1 after close */
bool tcp_conn_eof(const struct tcp_conn *c);
bool tcp_conn_is_reading(const struct tcp_conn *c); /* the read watcher is active */

struct tcp_conn_stats {
	uint64_t bytes_in;  /* read from the socket */
	uint64_t bytes_out; /* written to the socket */
};
const struct tcp_conn_stats *tcp_conn_stats(const struct tcp_conn *c);

#endif
