/* fuzz_kcp_input.c - arbitrary datagrams into kcp_input of an engine that
 * has data in flight and data received.
 *
 * Input: byte 0 picks the mode and flags, then datagrams as [len u16le]
 * [len bytes]. Checked after every datagram: the engine's invariants
 * (kcp_check); a rejected datagram leaves every observable thing exactly as
 * it was (validate-then-apply); every datagram the engine outputs parses as
 * well-formed segments of our conv within the MTU. In message mode the
 * engine offers what arrives above a hole early (K14); some offers are
 * taken, some left for the ordered path.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/rd.h"
#include "core/kcp.h"

enum { CONV = 1, MTU = 200 };

static int check_output(const uint8_t *dgram, size_t len, void *user)
{
	struct rd r = rd_init(dgram, len);

	(void)user;
	if (len == 0 || len > MTU)
		abort();
	while (rd_left(&r)) {
		uint32_t conv, ts, sn, una, n;
		uint16_t wnd;
		uint8_t cmd, frg;
		if (!rd_u32le(&r, &conv) || !rd_u8(&r, &cmd) || !rd_u8(&r, &frg) ||
		    !rd_u16le(&r, &wnd) || !rd_u32le(&r, &ts) || !rd_u32le(&r, &sn) ||
		    !rd_u32le(&r, &una) || !rd_u32le(&r, &n) || !rd_skip(&r, n))
			abort();
		if (conv != CONV || cmd < KCP_CMD_PUSH || cmd > KCP_CMD_WINS ||
		    n > MTU - KCP_HEADER_LEN || (cmd != KCP_CMD_PUSH && n != 0))
			abort();
	}
	return 0;
}

/* snapshot is everything observable from outside, minus the drop counters. */
struct snapshot {
	uint64_t v[40];
};

static void snap(const struct kcp *k, uint64_t now, struct snapshot *s)
{
	struct kcp_stats st;
	size_t i = 0;

	kcp_stats(k, &st);
	s->v[i++] = st.seg_sent;
	s->v[i++] = st.seg_retx_timeout;
	s->v[i++] = st.seg_retx_fast;
	s->v[i++] = st.seg_retx_spurious;
	s->v[i++] = st.seg_recv;
	s->v[i++] = st.seg_dup;
	s->v[i++] = st.ack_sent;
	s->v[i++] = st.ack_recv;
	s->v[i++] = st.probe_sent;
	s->v[i++] = st.tell_sent;
	s->v[i++] = st.dgram_out;
	s->v[i++] = st.dgram_in;
	s->v[i++] = st.bytes_out;
	s->v[i++] = st.bytes_in;
	s->v[i++] = st.data_bytes_sent;
	s->v[i++] = st.data_bytes_retx;
	s->v[i++] = st.output_errors;
	s->v[i++] = st.srtt;
	s->v[i++] = st.rttvar;
	s->v[i++] = st.rto;
	s->v[i++] = st.cwnd;
	s->v[i++] = st.ssthresh;
	s->v[i++] = st.rmt_wnd;
	s->v[i++] = st.rcv_free;
	s->v[i++] = st.resend;
	s->v[i++] = st.inflight;
	s->v[i++] = st.waitsnd;
	s->v[i++] = (uint64_t)kcp_peek_size(k);
	s->v[i++] = kcp_next_deadline(k, now);
	s->v[i++] = kcp_send_room(k);
	s->v[i++] = kcp_is_dead(k);
	while (i < sizeof s->v / sizeof s->v[0])
		s->v[i++] = 0;
}

static struct kcp *setup(uint8_t flags, uint64_t now)
{
	struct kcp_config c;
	struct kcp *k = NULL;
	static const uint8_t msg[500] = { 0 };

	kcp_config_default(&c);
	c.mtu = MTU;
	c.stream = flags & 1;
	c.ack_immediate = flags & 2;
	c.flush_on_send = flags & 4;
	c.nc = flags & 8;
	c.nodelay = (flags >> 4) % 3;
	c.resend = (flags >> 6);
	c.dup_thin = flags & 0x40; /* K11: shares the byte's last free bit with resend */
	c.early = !c.stream;       /* K14: message mode offers what is above a hole */
	c.snd_wnd = 16;
	if (kcp_new(&k, CONV, &c, now, check_output, NULL) != 0)
		abort();
	for (int i = 0; i < 5; i++)
		if (kcp_send(k, msg, 20 + 100 * (size_t)i, now) < 0)
			abort();
	kcp_flush(k, now);
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[1 << 16];
	struct rd r = rd_init(data, size);
	uint64_t now = 1000;
	uint8_t flags = 0;
	uint16_t len;
	const uint8_t *d;
	size_t n;
	uint32_t sn;
	struct kcp *k;

	rd_u8(&r, &flags);
	k = setup(flags, now);
	while (rd_u16le(&r, &len)) {
		struct snapshot before, after;
		int rc;

		n = len < rd_left(&r) ? len : rd_left(&r);
		rd_view(&r, &d, n);
		now += 7;
		snap(k, now, &before);
		rc = kcp_input(k, d, n, now);
		if (rc == KS_ERR_PROTO) {
			snap(k, now, &after);
			if (memcmp(&before, &after, sizeof before) != 0)
				abort();
		} else if (rc != 0 && rc != KS_ERR_DEAD) {
			abort();
		}
		if (!kcp_check(k))
			abort();
		kcp_update(k, now);
		for (int i = 0; kcp_early_peek(k, &sn, &d, &n) == 0; i++) {
			if (n > MTU - KCP_HEADER_LEN || (n && !d))
				abort();
			kcp_early_done(k, (sn ^ (uint32_t)i) & 1); /* take some, leave some */
			if (!kcp_check(k))
				abort();
		}
		while (kcp_recv(k, out, sizeof out) >= 0)
			;
		if (!kcp_check(k))
			abort();
		if (kcp_next_deadline(k, now) <= now)
			abort(); /* kcp_update did what was due */
	}
	kcp_free(k);
	return 0;
}
