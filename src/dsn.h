/*
 * dsn.h: RFC 3464 delivery status notifications (bounces), pure.
 *
 * A bounce is a multipart/report (report-type=delivery-status) with a
 * human-readable part quoting SES's reply, the machine-readable
 * message/delivery-status part, and the original header as
 * text/rfc822-headers.  SES refuses MAIL FROM:<>, so a bounce is sent
 * from a configured verified address; the caller marks it so that a
 * bounce is never bounced.
 */
#ifndef SESRELAY_DSN_H
#define SESRELAY_DSN_H

#include <stddef.h>
#include <time.h>

struct dsn_rcpt {
	const char	*addr;		/* the failed recipient */
	const char	*status;	/* RFC 3463 code, e.g. "5.0.0" */
	const char	*diagnostic;	/* SES's reply, e.g. "554 Message
					 * rejected: ..."; NULL: none */
};

struct dsn_info {
	const char		*reporting_mta;	/* our host name */
	const char		*from;		/* From: of the bounce */
	const char		*to;		/* the original envelope sender */
	const char		*queue_id;
	time_t			 arrived;	/* of the original message */
	time_t			 now;		/* Date: of the bounce */
	int			 expired;	/* 1: retry.max_queue_time passed */
	const struct dsn_rcpt	*rcpts;
	size_t			 nrcpt;
	const char		*orig_header;	/* the original header, CRLF */
	size_t			 orig_header_len;
};

/*
 * Build the bounce as a complete message (CRLF line ends, no line over
 * 998 characters, 7-bit, no NUL).  *out is malloc'ed and NUL-terminated
 * (*outlen does not count the NUL); returns 0, or -1 with *out and
 * *outlen untouched when the info is unusable (no recipients, a
 * recipient without an address, from, to or reporting_mta NULL or
 * empty) or memory ran out.  A status that is not an RFC 3463 code of
 * class 4 or 5 is reported as "5.0.0"; an empty diagnostic counts as
 * none; with no original header the third part is left out.
 */
int dsn_build(const struct dsn_info *, char **out, size_t *outlen);

/* A status code for a reply: its enhanced code if any, else "5.0.0" or
 * "4.0.0" by class, into buf (at least 16 bytes). */
void dsn_status_for_reply(const char *reply, char *buf, size_t len);

#endif
