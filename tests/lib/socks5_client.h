/* socks5_client.h - what a SOCKS5 client writes (RFC 1928 S1 and S4,
 * RFC 1929 S3), for the tests that play the client against the server side
 * of core/socks5. The daemons never send these, so they live with the tests.
 *
 * Same contract as the encoders of core/socks5.h: each writes one message
 * to out and returns its length, KS_ERR_FULL if cap is too small, or
 * KS_ERR_INVAL for an argument the wire cannot carry. Encoding what a
 * parser returned gives back exactly the bytes it consumed.
 */
#ifndef KCPSOCKS_SOCKS5_CLIENT_H
#define KCPSOCKS_SOCKS5_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "core/socks5.h"

/* S1: VER NMETHODS METHODS; n must be 1..SOCKS5_METHODS_MAX. */
KS_MUST_CHECK ssize_t socks5_encode_greeting(uint8_t *out, size_t cap, const uint8_t *methods,
                                             size_t n);
/* RFC 1929 request; user_len and pass_len must be 1..SOCKS5_CRED_MAX. out
 * then holds the password: wipe it after sending. */
KS_MUST_CHECK ssize_t socks5_encode_auth_request(uint8_t *out, size_t cap, const uint8_t *user,
                                                 size_t user_len, const uint8_t *pass,
                                                 size_t pass_len);
/* S4: cmd must be a SOCKS5_CMD_*; dst a valid address. */
KS_MUST_CHECK ssize_t socks5_encode_request(uint8_t *out, size_t cap, uint8_t cmd,
                                            const struct socks5_addr *dst);

#endif
