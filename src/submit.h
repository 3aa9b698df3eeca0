/*
 * submit.h: hand a message to sesrelayd over its Unix socket (SMTP).
 *
 * Used by sesrelay-sendmail.  Blocking I/O: it is a short-lived program.
 */
#ifndef SESRELAY_SUBMIT_H
#define SESRELAY_SUBMIT_H

#include <stddef.h>
#include <stdio.h>

struct submit {
	int	 fd;
	int	 ignore_dots;	/* a lone "." line is data */
	int	 at_bol;
	int	 prev_cr;	/* the last byte sent was CR */
	int	 ended;		/* saw the lone "." (without -i) */
	char	 reply[1100];	/* the last reply, for messages */
	int	 code;
	char	 queue_id[64];
};

/* Connect and greet; 0, or -1 with errno (connect) or s->reply set. */
int submit_open(struct submit *, const char *socket_path, int timeout);
/* The envelope; 0, or -1 with s->reply/s->code the refusal. */
int submit_envelope(struct submit *, const char *sender,
    char *const *rcpts, size_t nrcpt, const char **refused);
/* Start DATA; 0 or -1. */
int submit_data(struct submit *);
/* Send message text: LF or CRLF lines, made CRLF and dot-stuffed. */
int submit_text(struct submit *, const char *buf, size_t len);
/* Copy the rest of fp as message text (stops at "." without -i). */
int submit_stream(struct submit *, FILE *fp);
/* End the message and read the verdict; 0 when queued (250). */
int submit_finish(struct submit *);
void submit_close(struct submit *);

/* The sysexits code for an SMTP reply code. */
int submit_exit_code(int code, int at_rcpt);

#endif
