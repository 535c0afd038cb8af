/* fdio.h - small file-descriptor helpers for the event loop.
 *
 * Setting O_NONBLOCK changes the open file description, which a terminal
 * or pipe may share with other processes: programs that make stdin or
 * stdout non-blocking remember the old flags and put them back at exit
 * (fdio_set_nonblock returns them for fdio_restore_flags).
 */
#ifndef KCPSOCKS_FDIO_H
#define KCPSOCKS_FDIO_H

#include "base/err.h"

/* fdio_set_nonblock sets O_NONBLOCK on fd and stores the previous file
 * status flags in *old_flags (may be NULL). Returns 0 or KS_ERR_IO (errno
 * set). */
KS_MUST_CHECK int fdio_set_nonblock(int fd, int *old_flags);

/* fdio_restore_flags puts back flags saved by fdio_set_nonblock; errors
 * are ignored (it runs on the way out). */
void fdio_restore_flags(int fd, int flags);

#endif
