/* errbuf.h - the one way a function hands a message back to its caller.
 *
 * Functions that can fail for reasons a user must read (bind, listen,
 * resolver setup, privilege drop) take `char *err, size_t errlen` and write
 * a complete, contextual message there: `listen 127.0.0.1:1080: Address
 * already in use`. The edge (a daemon main) decides where it goes.
 */
#ifndef KCPSOCKS_ERRBUF_H
#define KCPSOCKS_ERRBUF_H

#include <stddef.h>

/* errbuf_set formats into err (errlen bytes, always NUL-terminated when
 * errlen > 0); err NULL or errlen 0 makes it a no-op. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
