/*
 * submit.c: a minimal blocking SMTP client for the local Unix socket.
 *
 * The message text is converted as it streams: bare LF becomes CRLF and
 * a leading dot is doubled, so any input reaches the daemon intact.
 * Without -i, a line holding a single "." ends the input, as sendmail
 * has always done.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "submit.h"

static int
send_all(struct submit *s, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(s->reply, sizeof(s->reply), "write to "
			    "sesrelayd: %s", strerror(errno));
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static int
send_cmd(struct submit *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		snprintf(s->reply, sizeof(s->reply), "command too long");
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	return send_all(s, line, n + 2);
}

/* Read one reply (multi-line allowed); the code, or -1. */
static int
read_reply(struct submit *s)
{
	char buf[1024];
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(s->fd, buf + len, 1, 0);

		if (n <= 0) {
			snprintf(s->reply, sizeof(s->reply), "%s",
			    n == 0 ? "sesrelayd closed the connection" :
			    strerror(errno));
			s->code = 0;
			return -1;
		}
		if (buf[len] != '\n') {
			if (len < sizeof(buf) - 2)
				len++;
			continue;
		}
		buf[len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		if (len < 3) {
			snprintf(s->reply, sizeof(s->reply), "bad reply");
			return -1;
		}
		if (len > 3 && buf[3] == '-') {
			len = 0;
			continue;
		}
		snprintf(s->reply, sizeof(s->reply), "%s", buf);
		s->code = atoi(buf);
		return s->code;
	}
}

int
submit_open(struct submit *s, const char *path, int timeout)
{
	struct sockaddr_un sun;
	struct timeval tv = { timeout, 0 };

	memset(s, 0, sizeof(*s));
	s->at_bol = 1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;
		close(s->fd);
		s->fd = -1;
		errno = e;
		return -1;
	}
	if (read_reply(s) != 220 || send_cmd(s, "EHLO localhost") == -1 ||
	    read_reply(s) != 250)
		return -1;
	return 0;
}

int
submit_envelope(struct submit *s, const char *sender, char *const *rcpts,
    size_t nrcpt, const char **refused)
{
	*refused = NULL;
	if (send_cmd(s, "MAIL FROM:<%s> BODY=8BITMIME", sender) == -1 ||
	    read_reply(s) != 250) {
		*refused = sender;
		return -1;
	}
	for (size_t i = 0; i < nrcpt; i++)
		if (send_cmd(s, "RCPT TO:<%s>", rcpts[i]) == -1 ||
		    read_reply(s) != 250) {
			*refused = rcpts[i];
			return -1;
		}
	return 0;
}

int
submit_data(struct submit *s)
{
	if (send_cmd(s, "DATA") == -1 || read_reply(s) != 354)
		return -1;
	return 0;
}

int
submit_text(struct submit *s, const char *buf, size_t len)
{
	char out[8192];
	size_t o = 0;

	for (size_t i = 0; i < len && !s->ended; i++) {
		char c = buf[i];

		if (o + 4 > sizeof(out)) {
			if (send_all(s, out, o) == -1)
				return -1;
			o = 0;
		}
		if (s->at_bol && c == '.') {
			/* A lone "." ends the input unless -i. */
			size_t rest = len - i;
			if (!s->ignore_dots && (rest == 1 || buf[i + 1] == '\n' ||
			    (buf[i + 1] == '\r' && (rest == 2 ||
			    buf[i + 2] == '\n')))) {
				s->ended = 1;
				break;
			}
			out[o++] = '.';
		}
		if (c == '\n') {
			if (!s->prev_cr)
				out[o++] = '\r';
			out[o++] = '\n';
			s->at_bol = 1;
			s->prev_cr = 0;
			continue;
		}
		out[o++] = c;
		s->at_bol = 0;
		s->prev_cr = c == '\r';
	}
	return send_all(s, out, o);
}

int
submit_stream(struct submit *s, FILE *fp)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	/* Line by line, so the lone-dot check sees whole lines. */
	while (!s->ended && (n = getline(&line, &cap, fp)) > 0)
		if ((rc = submit_text(s, line, (size_t)n)) == -1)
			break;
	if (rc == 0 && ferror(fp)) {
		snprintf(s->reply, sizeof(s->reply), "reading the message: %s",
		    strerror(errno));
		rc = -1;
	}
	free(line);
	return rc;
}

int
submit_finish(struct submit *s)
{
	const char *q;

	if (!s->at_bol && send_all(s, "\r\n", 2) == -1)
		return -1;
	if (send_all(s, ".\r\n", 3) == -1 || read_reply(s) != 250)
		return -1;
	if ((q = strstr(s->reply, "queued as ")) != NULL)
		snprintf(s->queue_id, sizeof(s->queue_id), "%s", q + 10);
	return 0;
}

void
submit_close(struct submit *s)
{
	if (s->fd != -1) {
		if (send_cmd(s, "QUIT") == 0)
			read_reply(s);
		close(s->fd);
		s->fd = -1;
	}
}

int
submit_exit_code(int code, int at_rcpt)
{
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code == 552)
		return EX_DATAERR;
	if (at_rcpt && (code == 550 || code == 553))
		return EX_NOUSER;
	if (code >= 500)
		return EX_UNAVAILABLE;
	return EX_TEMPFAIL;	/* no reply at all: the daemon went away */
}
