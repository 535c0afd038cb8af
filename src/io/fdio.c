/* fdio.c - file-descriptor flags. */
#include "io/fdio.h"

#include <fcntl.h>
#include <stddef.h>

int fdio_set_nonblock(int fd, int *old_flags)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return KS_ERR_IO;
	if (old_flags)
		*old_flags = fl;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return KS_ERR_IO;
	return 0;
}

void fdio_restore_flags(int fd, int flags) { (void)fcntl(fd, F_SETFL, flags); }
