/* fuzz_socks5.c - every SOCKS5 parser and the server state machine on the
 * same input. Checks, beyond "no crash":
 *   - what parses re-encodes to exactly the bytes consumed;
 *   - a stream parser says "need more" on the prefix one byte shorter;
 *   - a parsed address formats within SOCKS5_ADDR_TEXT_MAX;
 *   - the state machine gives the same outcome fed whole and fed in chunks
 *     whose sizes come from the input itself.
 * Public headers only; any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks5.h"
#include "lib/socks5_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_encoded(const uint8_t *data, ssize_t n, const uint8_t *enc, ssize_t w)
{
	check(w == n && memcmp(enc, data, (size_t)n) == 0);
}

static void check_addr(const struct socks5_addr *a)
{
	char text[SOCKS5_ADDR_TEXT_MAX];
	ssize_t n = socks5_addr_format(a, text, sizeof text);

	check(n > 0 && (size_t)n < sizeof text && text[n] == '\0' && strlen(text) == (size_t)n);
}

static void check_prefix_again(ssize_t (*parse)(const uint8_t *, size_t, void *,
                                                enum socks5_fault *),
                               const uint8_t *data, ssize_t n, void *out)
{
	enum socks5_fault f;

	check(parse(data, (size_t)n - 1, out, &f) == KS_ERR_AGAIN && f == SOCKS5_FAULT_NONE);
}

static ssize_t greeting(const uint8_t *in, size_t len, void *out, enum socks5_fault *f)
{
	return socks5_parse_greeting(in, len, out, f);
}

static ssize_t auth(const uint8_t *in, size_t len, void *out, enum socks5_fault *f)
{
	return socks5_parse_auth_request(in, len, out, f);
}

static ssize_t request(const uint8_t *in, size_t len, void *out, enum socks5_fault *f)
{
	return socks5_parse_request(in, len, out, f);
}

static ssize_t reply(const uint8_t *in, size_t len, void *out, enum socks5_fault *f)
{
	return socks5_parse_reply(in, len, out, f);
}

static void fuzz_server_messages(const uint8_t *data, size_t size)
{
	uint8_t enc[SOCKS5_AUTH_REQUEST_MAX];
	struct socks5_greeting g;
	struct socks5_auth a;
	struct socks5_request q;
	struct socks5_udp_header h;
	enum socks5_fault f;
	ssize_t n;
	uint8_t rep;

	if ((n = socks5_parse_greeting(data, size, &g, NULL)) > 0) {
		check_encoded(data, n, enc,
		              socks5_encode_greeting(enc, sizeof enc, g.methods, g.nmethods));
		check_prefix_again(greeting, data, n, &g);
	}
	if ((n = socks5_parse_auth_request(data, size, &a, NULL)) > 0) {
		check_encoded(data, n, enc,
		              socks5_encode_auth_request(enc, sizeof enc, a.user, a.user_len,
		                                         a.pass, a.pass_len));
		check_prefix_again(auth, data, n, &a);
	}
	if ((n = socks5_parse_request(data, size, &q, &f)) > 0) {
		check(q.raw == data && q.raw_len == (size_t)n);
		check_encoded(data, n, enc, socks5_encode_request(enc, sizeof enc, q.cmd, &q.dst));
		check_prefix_again(request, data, n, &q);
		check_addr(&q.dst);
	} else if (n != KS_ERR_AGAIN) {
		check(f != SOCKS5_FAULT_NONE);
		(void)socks5_fault_reply(f, &rep);
	}
	if ((n = socks5_parse_udp_header(data, size, &h, NULL)) > 0) {
		check(h.data == data + n && h.data_len == size - (size_t)n);
		check_encoded(data, n, enc,
		              socks5_encode_udp_header(enc, sizeof enc, h.frag, &h.dst));
		check_addr(&h.dst);
	}
}

static void fuzz_client_messages(const uint8_t *data, size_t size)
{
	uint8_t enc[SOCKS5_REPLY_MAX];
	struct socks5_reply p;
	uint8_t v;
	ssize_t n;

	if ((n = socks5_parse_method_reply(data, size, &v, NULL)) > 0)
		check_encoded(data, n, enc, socks5_encode_method_reply(enc, sizeof enc, v));
	if ((n = socks5_parse_auth_reply(data, size, &v, NULL)) > 0)
		check_encoded(data, n, enc, socks5_encode_auth_reply(enc, sizeof enc, v));
	if ((n = socks5_parse_reply(data, size, &p, NULL)) > 0) {
		check_encoded(data, n, enc, socks5_encode_reply(enc, sizeof enc, p.rep, &p.bnd));
		check_prefix_again(reply, data, n, &p);
		check_addr(&p.bnd);
	}
}

/* What a run of the state machine produced, for comparing two runs. */
struct run {
	int rc;
	enum socks5_fault fault;
	uint8_t out[4 * SOCKS5_SERVER_OUT_MAX];
	size_t out_len;
	uint8_t raw[SOCKS5_REQUEST_MAX];
	size_t raw_len;
	size_t left;
};

static const struct socks5_cred creds[] = {
	{ (const uint8_t *)"user", 4, (const uint8_t *)"pass", 4 },
};
static const struct socks5_cred_table table = { creds, 1 };

/* serve feeds data through a caller-style buffer in chunks of 1..16 bytes
 * (sizes taken from the data), or whole when chunked is false. */
static void serve(const struct socks5_server_config *cfg, const uint8_t *data, size_t size,
                  bool chunked, uint8_t *buf, struct run *u)
{
	struct socks5_server s;
	struct socks5_step st;
	size_t have = 0, pos = 0;

	memset(u, 0, sizeof *u);
	u->rc = KS_ERR_AGAIN;
	check(socks5_server_init(&s, cfg) == 0);
	for (size_t i = 0; u->rc == KS_ERR_AGAIN && pos < size; i++) {
		size_t chunk = chunked ? 1 + (size_t)(data[i % size] % 16) : size;
		if (chunk > size - pos)
			chunk = size - pos;
		memcpy(buf + have, data + pos, chunk);
		have += chunk;
		pos += chunk;
		u->rc = socks5_server_feed(&s, buf, have, &st);
		check(st.consumed <= have && st.out_len <= sizeof st.out);
		check(u->out_len + st.out_len <= sizeof u->out);
		memcpy(u->out + u->out_len, st.out, st.out_len);
		u->out_len += st.out_len;
		u->fault = st.fault;
		if (u->rc == 0) {
			memcpy(u->raw, st.request.raw, st.request.raw_len);
			u->raw_len = st.request.raw_len;
		}
		memmove(buf, buf + st.consumed, have - st.consumed);
		have -= st.consumed;
		check(have <= SOCKS5_MESSAGE_MAX || !chunked || u->rc != KS_ERR_AGAIN);
	}
	u->left = have + (size - pos);
}

static void fuzz_server(const uint8_t *data, size_t size)
{
	const struct socks5_server_config cfgs[2] = {
		{ SOCKS5_METHOD_NONE, NULL, NULL },
		{ SOCKS5_METHOD_USERPASS, socks5_cred_table_verify, (void *)&table },
	};
	struct run whole, split;
	uint8_t *buf;

	if (size == 0)
		return;
	buf = malloc(size);
	check(buf != NULL);
	for (int i = 0; i < 2; i++) {
		serve(&cfgs[i], data, size, false, buf, &whole);
		serve(&cfgs[i], data, size, true, buf, &split);
		check(whole.rc == split.rc && whole.fault == split.fault);
		check(whole.out_len == split.out_len &&
		      memcmp(whole.out, split.out, whole.out_len) == 0);
		check(whole.raw_len == split.raw_len &&
		      memcmp(whole.raw, split.raw, whole.raw_len) == 0);
		check(whole.left == split.left);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_server_messages(data, size);
	fuzz_client_messages(data, size);
	fuzz_server(data, size);
	return 0;
}
