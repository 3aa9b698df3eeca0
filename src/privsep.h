/*
 * privsep.h: sesrelayd never handles input as root.
 *
 * Under systemd the listening sockets come from sesrelayd.socket
 * (LISTEN_FDS) and the daemon starts unprivileged.  Started as root, it
 * binds its listeners first, gives the spool and its run directories to
 * the configured user, and becomes that user for good, before it reads
 * any input.
 */
#ifndef SESRELAY_PRIVSEP_H
#define SESRELAY_PRIVSEP_H

#include <stddef.h>

struct conf;

#define PRIVSEP_MAXFD	16

/* Listening sockets bound before the daemon proper starts. */
struct listen_fds {
	struct listen_fd {
		int	 fd;
		int	 is_unix;
		char	 label[128];	/* "127.0.0.1:25", a socket path */
	}	 v[PRIVSEP_MAXFD];
	size_t	 n;
	int	 activated;	/* from systemd: keep them, never unlink */
};

/* Take the sockets systemd passed, if any (sets activated). */
void privsep_take_activated(struct listen_fds *);
/*
 * Started as root with conf->user set: bind the configured listeners
 * (unless systemd passed them), give the spool and run directories to
 * the user, and become it for good.  Exits, with the reason logged, when
 * that user does not exist (67) or a listener cannot be bound.
 */
void privsep_drop(const struct conf *, struct listen_fds *);
/* Make the directory of a socket path, searchable by every local user. */
void privsep_socket_dir(const char *path);

#endif
