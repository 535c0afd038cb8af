/* socks5_client.c - what a SOCKS5 client writes (socks5_client.h). */
#include "socks5_client.h"

#include "base/wr.h"

static ssize_t written(const struct wr *w, bool ok)
{
	return ok ? (ssize_t)wr_len(w) : KS_ERR_FULL;
}

ssize_t socks5_encode_greeting(uint8_t *out, size_t cap, const uint8_t *methods, size_t n)
{
	struct wr w = wr_init(out, cap);

	if (n == 0 || n > SOCKS5_METHODS_MAX)
		return KS_ERR_INVAL;
	return written(&w, wr_u8(&w, SOCKS5_VERSION) && wr_u8(&w, (uint8_t)n) &&
	                           wr_bytes(&w, methods, n));
}

ssize_t socks5_encode_auth_request(uint8_t *out, size_t cap, const uint8_t *user, size_t user_len,
                                   const uint8_t *pass, size_t pass_len)
{
	struct wr w = wr_init(out, cap);

	if (user_len == 0 || user_len > SOCKS5_CRED_MAX || pass_len == 0 ||
	    pass_len > SOCKS5_CRED_MAX)
		return KS_ERR_INVAL;
	return written(&w, wr_u8(&w, SOCKS5_AUTH_VERSION) && wr_u8(&w, (uint8_t)user_len) &&
	                           wr_bytes(&w, user, user_len) && wr_u8(&w, (uint8_t)pass_len) &&
	                           wr_bytes(&w, pass, pass_len));
}

/* A request has the shape of a reply (RFC 1928 sections 4 and 6: VER, a
 * code, RSV, the address), so the server side's encoder writes it; only
 * the code's range differs. */
ssize_t socks5_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct socks5_addr *dst)
{
	if (cmd < SOCKS5_CMD_CONNECT || cmd > SOCKS5_CMD_UDP_ASSOCIATE || !dst)
		return KS_ERR_INVAL;
	return socks5_encode_reply(out, cap, cmd, dst);
}
