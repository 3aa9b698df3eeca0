/*
 * ses_reply.c: what an SES reply means, as one table.
 *
 * A reply is looked up by the step it answered, its code and, only where
 * SES gives one code several meanings, the start of its text.  The first
 * matching row wins.  Rows that name SES's own texts, or that speak about
 * the account (530, 535), come first and hold at any step: they are about
 * the pool, not about what was in flight.  The rows by step follow, and
 * whatever is left (a success where none makes sense, a code outside
 * 200..599) is a protocol error.
 *
 * The texts are SES's (ses-facts.md §4) as a prefix of the reply text
 * after any enhanced status code ("4.4.2 "), compared without regard to
 * case.  SES has sent the same reply with and without a trailing period,
 * so no pattern ends in punctuation and a prefix match tolerates it.
 *
 * Every class returned is a static object: callers may keep the pointer
 * and compare it, and the names are stable metric labels ([a-z_]).
 */
#include "config.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "ses_reply.h"

/*
 * The classes.  counts_attempt is 0 wherever SES said nothing about the
 * message itself (throttles, connections, credentials, the session
 * ending) or when nothing of it was sent yet.
 */
static const struct ses_class cls_ok = {	/* reaches nothing */
	SES_ACT_OK, SES_SCOPE_RECIPIENT, "ok", 0, 0, 0 };
static const struct ses_class cls_rate = {
	SES_ACT_RATE, SES_SCOPE_POOL, "rate_throttle", 0, 0, 0 };
static const struct ses_class cls_quota = {
	SES_ACT_QUOTA, SES_SCOPE_POOL, "daily_quota", 0, 0, 0 };
static const struct ses_class cls_conn_limit = {
	SES_ACT_CONN_LIMIT, SES_SCOPE_POOL, "too_many_connections", 0, 1, 0 };
static const struct ses_class cls_session_over = {
	SES_ACT_SESSION_OVER, SES_SCOPE_SESSION, "session_over", 0, 1, 0 };
static const struct ses_class cls_auth = {
	SES_ACT_AUTH, SES_SCOPE_POOL, "auth", 0, 1, 0 };
static const struct ses_class cls_temp_rcpt = {
	SES_ACT_TEMPFAIL, SES_SCOPE_RECIPIENT, "temporary", 1, 0, 0 };
static const struct ses_class cls_temp_message = {
	SES_ACT_TEMPFAIL, SES_SCOPE_MESSAGE, "temporary", 1, 0, 0 };
static const struct ses_class cls_temp_session = {
	SES_ACT_TEMPFAIL, SES_SCOPE_SESSION, "temporary", 0, 1, 0 };
static const struct ses_class cls_perm_rcpt = {
	SES_ACT_PERMFAIL, SES_SCOPE_RECIPIENT, "permanent", 1, 0, 0 };
static const struct ses_class cls_perm_message = {
	SES_ACT_PERMFAIL, SES_SCOPE_MESSAGE, "permanent", 1, 0, 0 };
static const struct ses_class cls_proto_session = {
	SES_ACT_PROTOCOL, SES_SCOPE_SESSION, "protocol", 0, 1, 0 };
static const struct ses_class cls_proto_message = {
	SES_ACT_PROTOCOL, SES_SCOPE_MESSAGE, "protocol", 1, 1, 0 };
static const struct ses_class cls_net_session = {
	SES_ACT_NETWORK, SES_SCOPE_SESSION, "network", 0, 1, 0 };
static const struct ses_class cls_net_message = {
	SES_ACT_NETWORK, SES_SCOPE_MESSAGE, "network", 0, 1, 0 };
static const struct ses_class cls_net_unknown = {
	SES_ACT_NETWORK, SES_SCOPE_MESSAGE, "network", 1, 1, 0 };

/* The API's: same actions (and names), with what else they ask. */
static const struct ses_class cls_api_paused = {
	SES_ACT_QUOTA, SES_SCOPE_POOL, "daily_quota", 0, 0,
	SES_F_ACCOUNT_PAUSED };
static const struct ses_class cls_api_expired = {
	SES_ACT_AUTH, SES_SCOPE_POOL, "auth", 0, 1, SES_F_REFRESH_CREDS };

#define STEP(s)		(1u << SES_STEP_##s)
#define ANY_STEP	(~0u)
/* Before authentication: no message has been offered yet. */
#define SETUP		(STEP(CONNECT) | STEP(BANNER) | STEP(EHLO) | \
			    STEP(STARTTLS))
/* A transaction, but for RCPT, whose replies reach one recipient. */
#define TXN		(STEP(MAIL) | STEP(DATA) | STEP(BODY) | STEP(DOT))
/* Between transactions: nothing is in flight. */
#define BETWEEN		(STEP(IDLE) | STEP(RSET) | STEP(QUIT))

static const struct rule {
	unsigned		 steps;		/* STEP() mask */
	int			 lo, hi;	/* code range */
	const char		*text;		/* prefix, or NULL */
	const struct ses_class	*class;
} rules[] = {
	/* The expected replies: RFC 5321 lets a client go by the first
	 * digit, so any 2xx (3xx for DATA, also 334 for AUTH) will do. */
	{ STEP(BANNER) | STEP(EHLO) | STEP(STARTTLS) | STEP(MAIL) |
	  STEP(RCPT) | STEP(DOT) | STEP(RSET) | STEP(QUIT), 200, 299, NULL,
	  &cls_ok },
	{ STEP(AUTH), 200, 399, NULL, &cls_ok },
	{ STEP(DATA), 300, 399, NULL, &cls_ok },

	/* SES's own texts, at any step. */
	{ ANY_STEP, 421, 421, "Too many concurrent SMTP connections",
	  &cls_conn_limit },
	{ ANY_STEP, 421, 421, NULL, &cls_session_over },
	{ ANY_STEP, 451, 451, "Timeout waiting for data from client",
	  &cls_session_over },
	{ ANY_STEP, 454, 454,
	  "Throttling failure: Maximum sending rate exceeded", &cls_rate },
	{ ANY_STEP, 454, 454,
	  "Throttling failure: Maximum SigV2 SMTP sending rate exceeded",
	  &cls_rate },
	{ ANY_STEP, 454, 454,
	  "Throttling failure: Daily message quota exceeded", &cls_quota },
	{ ANY_STEP, 454, 454, "Temporary authentication failure", &cls_auth },
	{ ANY_STEP, 530, 530, NULL, &cls_auth },
	{ ANY_STEP, 535, 535, NULL, &cls_auth },

	/* Any refusal of AUTH, even a temporary one, stops the pool. */
	{ STEP(AUTH), 400, 599, NULL, &cls_auth },

	/*
	 * Before authentication no message was offered, so nothing is
	 * deferred or bounces: the session fails and the pool reconnects
	 * later.
	 */
	{ SETUP, 400, 499, NULL, &cls_temp_session },
	{ SETUP, 500, 599, NULL, &cls_proto_session },

	/* The transaction: SES refuses a recipient or the message. */
	{ STEP(RCPT), 400, 499, NULL, &cls_temp_rcpt },
	{ STEP(RCPT), 500, 599, NULL, &cls_perm_rcpt },
	{ TXN, 400, 499, NULL, &cls_temp_message },
	{ TXN, 500, 599, NULL, &cls_perm_message },

	/* Unsolicited, or a refused RSET or QUIT: end this session. */
	{ BETWEEN, 400, 599, NULL, &cls_session_over },

	/* Whatever is left breaks the dialogue. */
	{ SETUP | STEP(AUTH) | BETWEEN, INT_MIN, INT_MAX, NULL,
	  &cls_proto_session },
	{ STEP(RCPT) | TXN, INT_MIN, INT_MAX, NULL, &cls_proto_message },
};

static const char *const step_names[] = {
	[SES_STEP_CONNECT] = "connect",
	[SES_STEP_BANNER] = "banner",
	[SES_STEP_EHLO] = "ehlo",
	[SES_STEP_STARTTLS] = "starttls",
	[SES_STEP_AUTH] = "auth",
	[SES_STEP_MAIL] = "mail",
	[SES_STEP_RCPT] = "rcpt",
	[SES_STEP_DATA] = "data",
	[SES_STEP_BODY] = "body",
	[SES_STEP_DOT] = "dot",
	[SES_STEP_IDLE] = "idle",
	[SES_STEP_RSET] = "rset",
	[SES_STEP_QUIT] = "quit",
};

#define NSTEPS	(sizeof(step_names) / sizeof(step_names[0]))

/* The STEP() bit of a step; 0 for a value outside the enum. */
static unsigned
step_bit(enum ses_step step)
{
	if ((unsigned)step >= NSTEPS)
		return 0;
	return 1u << step;
}

/* The words of a reply text: after blanks and an enhanced status code. */
static const char *
reply_words(const char *text)
{
	const char *p;
	size_t n;
	int part;

	text += strspn(text, " \t");
	for (p = text, part = 0; part < 3; part++) {
		n = strspn(p, "0123456789");
		if (n == 0 || n > 3)
			return text;
		p += n;
		if (part < 2 && *p++ != '.')
			return text;
	}
	if (*p != ' ' && *p != '\t' && *p != '\0')
		return text;
	return p + strspn(p, " \t");
}

/* Does the reply match a row? */
static int
rule_matches(const struct rule *r, unsigned bit, int code,
    const char *words)
{
	if ((r->steps & bit) == 0 || code < r->lo || code > r->hi)
		return 0;
	return r->text == NULL ||
	    strncasecmp(words, r->text, strlen(r->text)) == 0;
}

const struct ses_class *
ses_classify(enum ses_step step, int code, const char *text)
{
	unsigned bit = step_bit(step);
	const char *words = reply_words(text != NULL ? text : "");

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rule_matches(&rules[i], bit, code, words))
			return rules[i].class;
	/* Only a step outside the enum gets here. */
	return &cls_proto_session;
}

/*
 * A lost connection is SES's load balancer rotating instances far more
 * often than anything about the message, so it costs no attempt: the
 * message is sent again on a new connection at once (the scheduler
 * defers a message given back SCHEDULER_MAX_REQUEUES times in a row).
 * After the dot SES may have taken it: sending it again is a copy, so it
 * waits for the retry schedule like a temporary failure (and the
 * scheduler counts and bounds such copies).
 */
const struct ses_class *
ses_classify_network(enum ses_step step)
{
	if (step == SES_STEP_DOT)
		return &cls_net_unknown;
	if ((step_bit(step) & (STEP(RCPT) | TXN)) != 0)
		return &cls_net_message;
	return &cls_net_session;
}

/*
 * The SES v2 API's answers (ses-facts.md §10), first match wins: the
 * daily quota by its text whatever the type (SES's API type for it is
 * not documented: the v1 API says "Throttling"), then by type, then by
 * status.  A 5xx is SES failing, not the message: the session ends and
 * the message is sent again at once (the scheduler bounds how often in
 * a row).  An unknown 4xx is kept and retried, never bounced on a guess.
 */
static const struct api_rule {
	int			 lo, hi;	/* HTTP status range */
	const char		*type;		/* x-amzn-ErrorType, or NULL */
	const char		*text;		/* message prefix, or NULL */
	const struct ses_class	*class;
} api_rules[] = {
	{ 200, 299, NULL, NULL, &cls_ok },
	{ 400, 499, NULL, "Daily message quota exceeded", &cls_quota },
	{ 400, 499, "TooManyRequestsException", NULL, &cls_rate },
	{ 400, 499, "Throttling", NULL, &cls_rate },
	{ 429, 429, NULL, NULL, &cls_rate },
	{ 400, 499, "SendingPausedException", NULL, &cls_api_paused },
	{ 400, 499, "AccountSuspendedException", NULL, &cls_api_paused },
	{ 400, 499, "ExpiredTokenException", NULL, &cls_api_expired },
	{ 400, 499, "ExpiredToken", NULL, &cls_api_expired },
	{ 400, 499, "UnrecognizedClientException", NULL, &cls_auth },
	{ 400, 499, "InvalidClientTokenId", NULL, &cls_auth },
	{ 400, 499, "SignatureDoesNotMatch", NULL, &cls_auth },
	{ 400, 499, "InvalidSignatureException", NULL, &cls_auth },
	{ 400, 499, "IncompleteSignatureException", NULL, &cls_auth },
	{ 400, 499, "AccessDeniedException", NULL, &cls_auth },
	{ 401, 401, NULL, NULL, &cls_auth },
	{ 403, 403, NULL, NULL, &cls_auth },
	{ 400, 499, "MessageRejected", NULL, &cls_perm_message },
	{ 400, 499, "MailFromDomainNotVerifiedException", NULL,
	  &cls_perm_message },
	{ 400, 499, "BadRequestException", NULL, &cls_perm_message },
	{ 413, 413, NULL, NULL, &cls_perm_message },
	{ 400, 499, NULL, NULL, &cls_temp_message },
	{ 500, 599, NULL, NULL, &cls_session_over },
	{ INT_MIN, INT_MAX, NULL, NULL, &cls_proto_message },
};

/* Is type (up to a ':') the name want? */
static int
api_type_is(const char *type, const char *want)
{
	size_t n = strlen(want);

	return strncmp(type, want, n) == 0 &&
	    (type[n] == '\0' || type[n] == ':');
}

const struct ses_class *
ses_classify_api(int status, const char *type, const char *message)
{
	const struct api_rule *r;

	if (type == NULL)
		type = "";
	if (message == NULL)
		message = "";
	for (size_t i = 0; i < sizeof(api_rules) / sizeof(api_rules[0]); i++) {
		r = &api_rules[i];
		if (status < r->lo || status > r->hi)
			continue;
		if (r->type != NULL && !api_type_is(type, r->type))
			continue;
		if (r->text != NULL &&
		    strncasecmp(message, r->text, strlen(r->text)) != 0)
			continue;
		return r->class;
	}
	return &cls_proto_message;	/* not reached: the last row */
}

const char *
ses_action_name(int action)
{
	/* Every class of an action has the action's name. */
	static const struct ses_class *const by_action[] = {
		[SES_ACT_OK] = &cls_ok,
		[SES_ACT_RATE] = &cls_rate,
		[SES_ACT_QUOTA] = &cls_quota,
		[SES_ACT_CONN_LIMIT] = &cls_conn_limit,
		[SES_ACT_SESSION_OVER] = &cls_session_over,
		[SES_ACT_TEMPFAIL] = &cls_temp_message,
		[SES_ACT_AUTH] = &cls_auth,
		[SES_ACT_PERMFAIL] = &cls_perm_message,
		[SES_ACT_NETWORK] = &cls_net_message,
		[SES_ACT_PROTOCOL] = &cls_proto_message,
	};

	if (action < 0 || (size_t)action >= sizeof(by_action) /
	    sizeof(by_action[0]))
		return "unknown";
	return by_action[action]->name;
}

const char *
ses_step_name(enum ses_step step)
{
	if ((unsigned)step >= NSTEPS)
		return "unknown";
	return step_names[step];
}
