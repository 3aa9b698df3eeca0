/*
 * ses_reply.h: what each SES reply (or network failure) means, as a pure
 * table.
 *
 * Classified by the code and the step it answered; the text is read
 * only where SES gives one code several meanings (the 454 throttles and
 * the temporary authentication failure, the 421s), tolerant of a
 * trailing period, an enhanced status code and case.  Every class says
 * what the relay does with it; the upstream and the scheduler only act
 * on the class, never on the code.
 */
#ifndef SESRELAY_SES_REPLY_H
#define SESRELAY_SES_REPLY_H

/* The step of the dialogue a reply answered. */
enum ses_step {
	SES_STEP_CONNECT,	/* TCP connect, DNS, TLS handshake */
	SES_STEP_BANNER,
	SES_STEP_EHLO,
	SES_STEP_STARTTLS,
	SES_STEP_AUTH,
	SES_STEP_MAIL,
	SES_STEP_RCPT,
	SES_STEP_DATA,		/* the reply to DATA (354 expected) */
	SES_STEP_BODY,		/* while the body is sent (network only) */
	SES_STEP_DOT,		/* the reply after the final dot */
	SES_STEP_IDLE,		/* unsolicited, between transactions */
	SES_STEP_RSET,
	SES_STEP_QUIT,
};

/* What the relay does. */
enum ses_action {
	SES_ACT_OK = 0,		/* success: go on */
	SES_ACT_RATE,		/* 454 max sending rate: the pool slows down,
				 * the message is retried soon, attempt not
				 * counted */
	SES_ACT_QUOTA,		/* 454 daily quota: sending pauses for all,
				 * probe later, nothing bounces */
	SES_ACT_CONN_LIMIT,	/* 421 too many connections: fewer sessions
				 * for a while; the message goes back, attempt
				 * not counted */
	SES_ACT_SESSION_OVER,	/* 421/451 ending this session: reconnect at
				 * once and resend, no deferral */
	SES_ACT_TEMPFAIL,	/* other 4xx: retry per retry.schedule */
	SES_ACT_AUTH,		/* 530, 535, 454 temporary authentication
				 * failure: loud log, the whole pool backs
				 * off, the queue is kept */
	SES_ACT_PERMFAIL,	/* 5xx: the recipient (or message) fails, a
				 * bounce is sent */
	SES_ACT_NETWORK,	/* connection lost or timed out: retry; after
				 * the dot the outcome is unknown */
	SES_ACT_PROTOCOL,	/* the upstream broke the protocol (e.g. no
				 * STARTTLS, 2xx to DATA): session fails, the
				 * message is retried per retry.schedule */
};

/* How far a class reaches. */
enum ses_scope {
	SES_SCOPE_RECIPIENT,	/* this recipient (a RCPT reply) */
	SES_SCOPE_MESSAGE,	/* this transaction's recipients */
	SES_SCOPE_SESSION,	/* this connection */
	SES_SCOPE_POOL,		/* every session */
};

struct ses_class {
	enum ses_action	 action;
	enum ses_scope	 scope;
	const char	*name;		/* short, stable: logs and metrics */
	int		 counts_attempt; /* burns a retry.schedule step */
	int		 closes;	/* the session must end after it */
	unsigned	 flags;		/* SES_F_*: what else the class asks */
};

/* The SES API's classes that ask more than their action. */
#define SES_F_REFRESH_CREDS	0x1	/* the token expired: fetch credentials
					 * anew and resend, no loud log */
#define SES_F_ACCOUNT_PAUSED	0x2	/* SES paused the account's sending
					 * (not the quota): pause, loud log */

/*
 * Classify a complete reply: code (200..599) and its text (first line,
 * without the code, enhanced status code allowed).  Never NULL.
 */
const struct ses_class *ses_classify(enum ses_step, int code,
    const char *text);
/*
 * Classify an SES v2 API answer: the HTTP status, the error's type
 * (x-amzn-ErrorType, anything from a ':' on ignored; NULL or "" when
 * none) and its message (NULL when none).  Never NULL.  A lost
 * connection is ses_classify_network(): SES_STEP_BODY while the request
 * is written, SES_STEP_DOT once it was (the outcome is unknown).
 */
const struct ses_class *ses_classify_api(int status, const char *type,
    const char *message);
/* Classify a network failure (EOF, reset, timeout, TLS) at a step. */
const struct ses_class *ses_classify_network(enum ses_step);
/* The name of an action's classes ("rate_throttle", ...), or "unknown". */
const char *ses_action_name(int action);
/* The name of a step, for logs ("mail", "dot", ...). */
const char *ses_step_name(enum ses_step);

#endif
