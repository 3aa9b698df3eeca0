/*
 * submit.c: a minimal blocking SMTP client for the daemon's Unix socket.
 *
 * The message text is converted as it streams: bare LF becomes CRLF
 * (the daemon refuses bare LF with 521) and a leading dot is doubled, so
 * any input, with or without a final line end, 8-bit or not, reaches the
 * daemon intact.  Where the input ends (a lone "." without -i) is the
 * caller's business.  Whether the daemon answered at all is kept apart
 * from what it answered: sesrelay-sendmail uses the maildrop only when
 * it did not answer.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "submit.h"

#define CHUNK	65536

static void
set_timeout(struct submit *s, int seconds)
{
	struct timeval tv = { seconds, 0 };

	s->waiting = seconds;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * No answer: mark the connection lost and say why.  what: the socket's
 * path for connect(), NULL when talking; err 0: the connection closed.
 */
static int
lost(struct submit *s, const char *what, int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS)
		snprintf(s->reply, sizeof(s->reply), "no answer from sesrelayd "
		    "within %d seconds", s->waiting);
	else if (err == 0)
		snprintf(s->reply, sizeof(s->reply), "sesrelayd closed the "
		    "connection");
	else
		snprintf(s->reply, sizeof(s->reply), "%s: %s", what ? what :
		    "talking to sesrelayd", strerror(err));
	s->code = 0;
	s->lost = 1;
	return -1;
}

static int
send_all(struct submit *s, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return lost(s, NULL, errno);
		}
		buf += n;
		len -= (size_t)n;
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
		s->code = 0;
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	return send_all(s, line, (size_t)n + 2);
}

/* Read one reply (the last line of a multi-line one); the code, or -1. */
static int
read_reply(struct submit *s)
{
	char buf[1024];
	size_t len = 0;

	for (;;) {
		char *nl = memchr(s->in, '\n', s->inlen);
		size_t take;

		if (nl == NULL) {
			ssize_t n;

			if (s->inlen == sizeof(s->in))
				s->inlen = 0;	/* an absurd line: drop it */
			n = recv(s->fd, s->in + s->inlen,
			    sizeof(s->in) - s->inlen, 0);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				return lost(s, NULL, n == 0 ? 0 : errno);
			s->inlen += (size_t)n;
			continue;
		}
		/* One line out of the buffer (cut to fit buf). */
		take = (size_t)(nl - s->in);
		len = take < sizeof(buf) - 1 ? take : sizeof(buf) - 1;
		memcpy(buf, s->in, len);
		memmove(s->in, nl + 1, s->inlen - take - 1);
		s->inlen -= take + 1;
		buf[len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		if (len > 3 && buf[3] == '-') {
			len = 0;
			continue;
		}
		snprintf(s->reply, sizeof(s->reply), "%s", buf);
		if (len < 3 || buf[0] < '2' || buf[0] > '5' ||
		    buf[1] < '0' || buf[1] > '9' || buf[2] < '0' ||
		    buf[2] > '9') {
			s->code = 0;
			return -1;
		}
		s->code = atoi(buf);
		return s->code;
	}
}

int
submit_open(struct submit *s, const char *path, int greeting, int timeout)
{
	struct sockaddr_un sun;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	dot_encoder_init(&s->enc);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return lost(s, path, ENAMETOOLONG);
	strcpy(sun.sun_path, path);
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return lost(s, path, errno);
	/* On a Unix socket the send timeout bounds connect() too. */
	set_timeout(s, greeting);
	if (connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(s->fd);
		s->fd = -1;
		return lost(s, path, e);
	}
	if (read_reply(s) != 220 || send_cmd(s, "EHLO localhost") == -1 ||
	    read_reply(s) != 250)
		return -1;
	set_timeout(s, timeout);
	return 0;
}

int
submit_mail(struct submit *s, const char *sender)
{
	if (send_cmd(s, "MAIL FROM:<%s> BODY=8BITMIME", sender) == -1 ||
	    read_reply(s) != 250)
		return -1;
	return 0;
}

int
submit_rcpt(struct submit *s, const char *rcpt)
{
	if (send_cmd(s, "RCPT TO:<%s>", rcpt) == -1)
		return -1;
	switch (read_reply(s)) {
	case 250:
	case 251:
		return 0;
	default:
		return -1;
	}
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
	char out[2 * 4096];

	s->in_text = 1;
	while (len > 0) {
		size_t n = len < 4096 ? len : 4096;

		if (send_all(s, out, dot_encode(&s->enc, buf, n, out)) == -1)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

int
submit_stream(struct submit *s, FILE *fp)
{
	char *buf = malloc(CHUNK);
	size_t n;
	int rc = 0;

	if (buf == NULL)
		abort();
	while (rc == 0 && (n = fread(buf, 1, CHUNK, fp)) > 0)
		rc = submit_text(s, buf, n);
	if (rc == 0 && ferror(fp)) {
		snprintf(s->reply, sizeof(s->reply), "reading the message: %s",
		    strerror(errno));
		s->code = 0;
		rc = -1;
	}
	free(buf);
	return rc;
}

int
submit_finish(struct submit *s)
{
	const char *q;

	char end[5];

	s->in_text = 1;
	if (send_all(s, end, dot_encode_finish(&s->enc, end)) == -1 ||
	    read_reply(s) != 250)
		return -1;
	if ((q = strstr(s->reply, "queued as ")) != NULL)
		snprintf(s->queue_id, sizeof(s->queue_id), "%.*s",
		    (int)strcspn(q + 10, " "), q + 10);
	return 0;
}

int
submit_rset(struct submit *s)
{
	if (send_cmd(s, "RSET") == -1 || read_reply(s) != 250)
		return -1;
	return 0;
}

void
submit_close(struct submit *s)
{
	if (s->fd == -1)
		return;
	if (!s->lost && send_cmd(s, "QUIT") == 0)
		read_reply(s);
	close(s->fd);
	s->fd = -1;
}

int
submit_exit_code(int code, const char *reply, int at_rcpt)
{
	int cls = 0, detail = 0;

	if (code < 500 || code > 599)
		return EX_TEMPFAIL;	/* 4xx, or no reply at all */
	/* "550 5.1.1 ...": the enhanced status code's class and detail. */
	if (reply != NULL && strlen(reply) > 8 && reply[4] == '5' &&
	    reply[5] == '.')
		sscanf(reply + 6, "%d.%d", &cls, &detail);
	if (at_rcpt && (cls == 1 || code == 550 || code == 553))
		return EX_NOUSER;
	if (code == 552 || cls == 6 || (cls == 3 && detail == 4))
		return EX_DATAERR;
	if (cls == 7)
		return EX_NOPERM;
	return EX_UNAVAILABLE;
}
