/*
 * submit.h: hand a message to sesrelayd over its Unix socket (SMTP).
 *
 * Used by sesrelay-sendmail.  Blocking I/O: it is a short-lived program.
 * Every call returns 0, or -1 with s->reply saying why and s->code the
 * daemon's reply code, or 0 when there was no reply at all (s->lost).
 */
#ifndef SESRELAY_SUBMIT_H
#define SESRELAY_SUBMIT_H

#include <stddef.h>
#include <stdio.h>

#include "dotstuff.h"

struct submit {
	int	 fd;
	int	 waiting;	/* the timeout now */
	struct dot_encoder enc;	/* the text's line ends and dots */
	int	 lost;		/* no answer: cannot connect, closed, silent */
	int	 in_text;	/* message text has been sent */
	char	 reply[1100];	/* the last reply, or what went wrong */
	int	 code;
	char	 queue_id[64];
	char	 in[4096];	/* replies read ahead, not yet used */
	size_t	 inlen;
};

/*
 * Connect and greet (EHLO).  greeting: seconds to wait for the
 * connection, the greeting and the EHLO reply; timeout: for every reply
 * after that.  -1 with s->lost set when the daemon did not answer.
 */
int submit_open(struct submit *, const char *socket_path, int greeting,
    int timeout);
/* MAIL FROM:<sender> BODY=8BITMIME. */
int submit_mail(struct submit *, const char *sender);
int submit_rcpt(struct submit *, const char *rcpt);
/* Start DATA (354). */
int submit_data(struct submit *);
/* Send message text as read: LF or CRLF lines, made CRLF, dot-stuffed. */
int submit_text(struct submit *, const char *buf, size_t len);
/* Send the rest of fp as message text. */
int submit_stream(struct submit *, FILE *fp);
/* End the message and read the verdict; 0 when queued (250). */
int submit_finish(struct submit *);
/* RSET, when a transaction is given up. */
int submit_rset(struct submit *);
void submit_close(struct submit *);

/*
 * The sysexits code for a refusal: reply code and text (its enhanced
 * status code, when there is one, says more), at_rcpt when it answered
 * RCPT.  No reply at all (code 0) is EX_TEMPFAIL.
 */
int submit_exit_code(int code, const char *reply, int at_rcpt);

#endif
