/*
 * listener.c: bind listening sockets, TCP and Unix, for the SMTP server
 * and the control socket alike, so the two follow one rule: numeric
 * addresses only, close-on-exec and non-blocking, and a Unix socket's
 * path replaced only when what is there is a socket nobody listens on;
 * and who connected to a Unix socket, read from the kernel in one place.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "listener.h"
#include "netaddr.h"

#define BACKLOG	128

int
listener_bind_tcp(const char *hostport, char *err, size_t errlen)
{
	struct addrinfo *res;
	char host[INET6_ADDRSTRLEN + 1];
	int p, fd, on = 1;

	if (conf_parse_hostport(hostport, host, sizeof(host), &p) == -1) {
		snprintf(err, errlen, "%s: bad address", hostport);
		return -1;
	}
	if (netaddr_lookup(host, p, AF_UNSPEC, AI_NUMERICHOST | AI_PASSIVE,
	    &res) != 0) {
		snprintf(err, errlen, "%s: bad address", hostport);
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto syserr;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, BACKLOG) == -1)
		goto syserr;
	freeaddrinfo(res);
	return fd;
syserr:
	snprintf(err, errlen, "%s: %s", hostport, strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

/*
 * Does a process listen on the socket sun names?  (Non-blocking: a
 * listener with a full backlog answers EAGAIN, never a wait.)  Only
 * ECONNREFUSED says nobody does: a socket that cannot be probed (EACCES:
 * another user's, after we dropped root) counts as in use, never removed.
 * -1 when no socket could be made to probe it (errno set).
 */
static int
socket_is_live(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0), live;

	if (fd == -1)
		return -1;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
	    (errno != ECONNREFUSED && errno != ENOENT);
	close(fd);
	return live;
}

/*
 * Make room at sun's path: nothing there, or a stale socket (removed).
 * 0, or -1 with err.
 */
static int
clear_path(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(sun->sun_path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: exists and is not a socket",
		    sun->sun_path);
		return -1;
	}
	switch (socket_is_live(sun)) {
	case 0:
		break;
	case 1:
		snprintf(err, errlen, "%s: in use: another process listens "
		    "on it (another sesrelayd?)", sun->sun_path);
		return -1;
	default:
		snprintf(err, errlen, "%s: %s", sun->sun_path,
		    strerror(errno));
		return -1;
	}
	(void)unlink(sun->sun_path);
	return 0;
}

int
listener_bind_unix(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (clear_path(&sun, err, errlen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, mode) == -1 || listen(fd, BACKLOG) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

int
listener_peer(int fd, struct listener_peer *out)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred), glen;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1)
		return -1;
	out->uid = cred.uid;
	out->groups[0] = cred.gid;
	out->ngroups = 1;
	glen = sizeof(out->groups) - sizeof(out->groups[0]);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out->groups + 1,
	    &glen) == 0)
		out->ngroups += (int)(glen / sizeof(out->groups[0]));
	return 0;
}
