/*
 * smtp_vocab.h: what the inbound SMTP servers say, written once.
 *
 * The daemon's server (smtp_server.c) and `sesrelay-sendmail -bs`
 * (SMTP on a pipe) keep their own I/O and the handlers that really
 * differ (spooling, or queueing through the daemon or the maildrop);
 * which verb is taken in which state, and the text of every reply, are
 * here.  Pure: no I/O, no allocation.
 */
#ifndef SESRELAY_SMTP_VOCAB_H
#define SESRELAY_SMTP_VOCAB_H

#include <stddef.h>

#include "smtp_parse.h"

/*
 * The states of a session, in this order (comparisons rely on it).  Each
 * server changes its state in one function only, its *_enter_state.
 */
enum smtp_state {
	SMTP_STATE_INIT,	/* greeted, no HELO/EHLO yet */
	SMTP_STATE_HELO,	/* between transactions */
	SMTP_STATE_MAIL,	/* MAIL given */
	SMTP_STATE_RCPT,	/* at least one RCPT */
	SMTP_STATE_DATA,	/* receiving the message */
	SMTP_STATE_COMMIT,	/* message complete, being queued */
	SMTP_STATE_CLOSING,	/* last reply given, close when it is out */
	SMTP_STATE_LINGER,	/* last reply sent, reading until the client
				 * closes */
};

/* "init", "helo", ...: for logs. */
const char *smtp_state_name(enum smtp_state);

/*
 * The replies: code, enhanced status code (RFC 3463), text.  printf
 * formats where they take arguments (named in the comment), so that
 * every use is checked by the compiler; a reply line is at most 512
 * bytes (RFC 5321 4.5.3.1.5), CRLF added by the server.
 */
#define SMTP_R_GREETING		"220 %s ESMTP sesrelay"		/* host */
#define SMTP_R_ACCESS_DENIED	"554 5.7.1 %s: access denied"	/* client */
#define SMTP_R_TOO_MANY_CLIENTS	"421 4.7.0 %s Error: too many " \
				"connections, try again later"	/* host */
#define SMTP_R_TOO_MANY_COMMANDS "421 4.7.0 %s Error: too many " \
				"commands, closing"		/* host */
#define SMTP_R_SHUTDOWN		"421 4.3.2 %s Service shutting down, " \
				"closing"			/* host */
#define SMTP_R_TIMEOUT		"421 4.4.2 %s Error: timeout exceeded" \
								/* host */
#define SMTP_R_LINE_TOO_LONG	"500 5.5.2 Error: line too long " \
				"(limit %zu)"			/* bytes */
#define SMTP_R_OK		"250 2.0.0 Ok"
#define SMTP_R_MAIL_OK		"250 2.1.0 Ok"
#define SMTP_R_QUEUED		"250 2.0.0 Ok: queued as %s"	/* queue id */
#define SMTP_R_BYE		"221 2.0.0 Bye"
#define SMTP_R_DATA_GO		"354 3.0.0 End data with <CR><LF>.<CR><LF>"
#define SMTP_R_TOO_BIG		"552 5.3.4 Error: message size exceeds " \
				"the limit of %lld bytes"	/* limit */
#define SMTP_R_NO_STORAGE	"452 4.3.1 Error: insufficient system " \
				"storage, try again later"
#define SMTP_R_QUEUE_CREATE	"451 4.3.0 Error: cannot create a queue " \
				"file, try again later"
#define SMTP_R_QUEUE_WRITE	"451 4.3.0 Error: queue file write " \
				"error, try again later"
#define SMTP_R_SENDER_REFUSED	"550 5.7.1 <%s>: %s"	/* address, why */
#define SMTP_R_HEADER_TOO_BIG	"552 5.6.0 Error: message header " \
				"exceeds %lld bytes"		/* limit */
#define SMTP_R_HEADER_LINE	"554 5.6.0 Error: a header line exceeds " \
				"%lld characters, with no white space to " \
				"fold it at (RFC 5322 2.1.1)"	/* limit */
#define SMTP_R_8BIT		"554 5.6.0 Error: 8-bit data in the " \
				"message but BODY=8BITMIME was not given " \
				"(RFC 6152)"
#define SMTP_R_NUL_DATA		"554 5.6.0 Error: message contains NUL " \
				"characters (not allowed by RFC 5322)"
#define SMTP_R_BARE_LF		"521 5.5.2 %s Error: bare <LF> received; " \
				"lines must end with CRLF (RFC 5321 2.3.8)" \
								/* host */

/* Room for any reply written into a buffer here (a line, CRLF apart). */
#define SMTP_REPLY_MAX		512
/* ... and for the whole answer to EHLO, its lines joined by CRLF. */
#define SMTP_EHLO_MAX		(SMTP_REPLY_MAX + 128)

/*
 * A command line read (without its line end, len bytes): NULL when it
 * may be a command, or the refusal of a line with a NUL or a bare CR in
 * it (RFC 5321 2.3.8: CR only in CRLF; echoed, it would break the reply).
 */
const char *smtp_vocab_line_refusal(const char *line, size_t len);

/*
 * A command line that passed smtp_vocab_line_refusal: is its verb taken
 * in state st?  Returns 1 when the server is to run its handler for
 * cmd->verb (the verb is the handler index); 0 when reply holds the
 * whole answer: a refusal (empty line, unknown verb, a verb out of its
 * states or with a missing or extra argument), or the fixed answer of a
 * verb that needs no handler (NOOP, VRFY, HELP).  where ("a local
 * listener", "a pipe") completes the refusal of the verbs not offered
 * (STARTTLS, AUTH).
 */
int smtp_vocab_decide(const char *line, enum smtp_state st,
    const char *where, struct smtp_command *cmd,
    char reply[SMTP_REPLY_MAX]);

/* The answer to EHLO (extended) or HELO: its lines joined by CRLF. */
void smtp_vocab_ehlo(int extended, const char *host, long long max_size,
    char reply[SMTP_EHLO_MAX]);

/*
 * A path smtp_parse_path did not take (r is not SMTP_PATH_OK): the
 * reply into reply, the code returned.  usage: what a syntax error
 * quotes ("MAIL FROM:<address>").
 */
int smtp_vocab_path_refusal(enum smtp_path_result r, const char *usage,
    char reply[SMTP_REPLY_MAX]);

/*
 * The argument of MAIL ("FROM:<addr> params"): 1 with addr and *p set
 * when it is taken; 0 with the refusal in reply (the path, a parameter
 * not taken, a declared SIZE over max_size).
 */
int smtp_vocab_mail(const char *arg, long long max_size,
    char addr[SMTP_ADDR_MAX], struct smtp_mail_params *p,
    char reply[SMTP_REPLY_MAX]);

/* 555 for a parameter not taken, quoted back cut short; returns 555. */
int smtp_vocab_bad_param(const char *param, char reply[SMTP_REPLY_MAX]);

#endif
