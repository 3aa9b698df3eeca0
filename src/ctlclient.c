/* ctlclient.c: the client side of the control socket (see control.h). */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ctlclient.h"

/* Read what is there within the deadline; 0 at EOF, -1 on error. */
static ssize_t
read_some(int fd, char *buf, size_t len, int timeout)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int r;

	if ((r = poll(&p, 1, timeout * 1000)) <= 0) {
		if (r == 0)
			errno = ETIMEDOUT;
		return -1;
	}
	return read(fd, buf, len);
}

int
ctlclient_call(const char *path, const char *request, FILE *out,
    int timeout, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char buf[8192], status[512];
	size_t slen = 0;
	ssize_t n;
	int fd, in_body = 0, ok = 0, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		snprintf(err, errlen, "sesrelayd is not running (%s: %s)", path,
		    strerror(saved));
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s\n", request);
	/* A busy daemon answers and closes before reading the request:
	 * its answer is still there to read after EPIPE. */
	if (send(fd, buf, strlen(buf), MSG_NOSIGNAL) != (ssize_t)strlen(buf) &&
	    errno != EPIPE && errno != ECONNRESET)
		goto ioerr;
	while ((n = read_some(fd, buf, sizeof(buf), timeout)) > 0) {
		size_t off = 0;

		if (!in_body) {
			while (off < (size_t)n && buf[off] != '\n' &&
			    slen < sizeof(status) - 1)
				status[slen++] = buf[off++];
			if (off == (size_t)n)
				continue;	/* the status line goes on */
			status[slen] = '\0';
			off++;
			in_body = 1;
			if (strcmp(status, "OK") == 0)
				ok = 1;
			else if (strncmp(status, "ERR ", 4) == 0) {
				snprintf(err, errlen, "%s", status + 4);
				close(fd);
				return 1;
			} else {
				errno = EPROTO;
				snprintf(err, errlen, "unexpected answer from "
				    "sesrelayd");
				close(fd);
				return -1;
			}
		}
		fwrite(buf + off, 1, (size_t)n - off, out);
	}
	if (n < 0)
		goto ioerr;
	close(fd);
	if (!ok) {
		errno = EPROTO;
		snprintf(err, errlen, "sesrelayd closed the connection without "
		    "an answer");
		return -1;
	}
	return 0;
ioerr:
	saved = errno;
	snprintf(err, errlen, "talking to sesrelayd (%s): %s", path,
	    strerror(saved));
	close(fd);
	errno = saved;
	return -1;
}

int
ctlclient_exit_code(const char *err)
{
	if (strncmp(err, "permission", 10) == 0)
		return EX_NOPERM;
	if (strncmp(err, "usage", 5) == 0)
		return EX_USAGE;
	if (strncmp(err, "no message", 10) == 0)
		return EX_NOINPUT;
	if (strncmp(err, "busy", 4) == 0)
		return EX_TEMPFAIL;
	return EX_SOFTWARE;
}
