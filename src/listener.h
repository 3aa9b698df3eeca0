/*
 * listener.h: listening sockets, bound by one rule for SMTP and control,
 * and the peer of a connection on a Unix one.
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

/* Who is on the other end of a Unix socket connection, from the kernel. */
#define LISTENER_PEER_GROUPS	64	/* a peer's groups looked at */
struct listener_peer {
	uid_t	uid;
	gid_t	groups[LISTENER_PEER_GROUPS];	/* its gid first */
	int	ngroups;
};

/*
 * Read the peer of fd: uid and gid (SO_PEERCRED), and its supplementary
 * groups (SO_PEERGROUPS; only the gid where the kernel cannot say).
 * 0, or -1 with errno.
 */
int	listener_peer(int fd, struct listener_peer *out);

#endif
