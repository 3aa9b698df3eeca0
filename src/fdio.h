/*
 * fdio.h: small helpers for plain file descriptors.
 */
#ifndef SESRELAY_FDIO_H
#define SESRELAY_FDIO_H

#include <stddef.h>

/*
 * Write all len bytes of buf to fd, again after a short write or EINTR.
 * 0, or -1 with errno (what is written by then stays written).
 */
int	fdio_write_all(int fd, const void *buf, size_t len);

#endif
