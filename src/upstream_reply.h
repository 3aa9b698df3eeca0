/*
 * upstream_reply.h: pure parser for replies from the upstream (SES).
 *
 * Lines are fed one at a time (without CRLF); a multi-line reply
 * ("250-...", "250 ...") is complete at its last line.
 */
#ifndef SESRELAY_UPSTREAM_REPLY_H
#define SESRELAY_UPSTREAM_REPLY_H

#include <stddef.h>

#define UPSTREAM_REPLY_TEXT	2048
/*
 * The most a reply may be, all lines together (SES's longest, an EHLO
 * reply, is under 200 bytes): more is a misbehaving upstream, refused
 * rather than read for ever.
 */
#define UPSTREAM_REPLY_MAX_BYTES	16384
#define UPSTREAM_REPLY_MAX_LINES	100

struct upstream_reply {
	int	code;			/* 0 until the first line */
	char	enhanced[16];		/* "4.4.2" if the first line has one */
	char	text[UPSTREAM_REPLY_TEXT];	/* lines joined by '\n' */
	size_t	len;
	int	lines;
	size_t	total;			/* bytes fed, all lines */
};

enum {
	UPSTREAM_REPLY_MORE = 0,	/* need another line */
	UPSTREAM_REPLY_DONE = 1,	/* complete */
	UPSTREAM_REPLY_BAD = -1,	/* not an SMTP reply */
	UPSTREAM_REPLY_TOO_LONG = -2,	/* over the limits above */
};

void upstream_reply_init(struct upstream_reply *);
int upstream_reply_feed(struct upstream_reply *, const char *line,
    size_t len);

/* The message id in SES's "250 Ok <id>"; 0 and out set, or -1. */
int upstream_reply_ses_id(const struct upstream_reply *, char *out,
    size_t outlen);

/* 1 when a line of an EHLO reply is the keyword kw (case-insensitive). */
int upstream_reply_has_keyword(const struct upstream_reply *,
    const char *kw, const char **params);

/*
 * The command "AUTH PLAIN <base64 of NUL user NUL password>" (RFC 4616),
 * malloc'd; the caller wipes it (explicit_bzero) and frees it.
 */
char *upstream_auth_plain(const char *user, const char *password);

/* The first line of the reply as "CODE text", for logs and bounces. */
void upstream_reply_summary(const struct upstream_reply *, char *out,
    size_t outlen);

#endif
