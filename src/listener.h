/*
 * listener.h: listening sockets, bound by one rule for SMTP and control.
 */
#ifndef SESRELAY_LISTENER_H
#define SESRELAY_LISTENER_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A non-blocking listening TCP socket on "host:port" or "[v6]:port"
 * (numeric; IPv6 only on an IPv6 address).  The fd, or -1 with err.
 */
int	listener_bind_tcp(const char *hostport, char *err, size_t errlen);

/*
 * A non-blocking listening Unix socket at path, mode `mode`.  What is at
 * path already is replaced only when it is a stale socket (nobody
 * listens on it); another kind of file, or a socket in use (another
 * daemon), is refused.  The fd, or -1 with err.
 */
int	listener_bind_unix(const char *path, mode_t mode, char *err,
	    size_t errlen);

#endif
