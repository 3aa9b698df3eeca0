/*
 * check_ses_reply.c: every reply SES is known to send (ses-facts.md §3,
 * §4.1, §4.2), with the wire variants seen, at the step SES sends it;
 * then the dialogue's own rules, the network failures by step and a
 * sweep over every step and code for the invariants.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ses_reply.h"
#include "fixture.h"

/* What a class must be: action, scope, counts_attempt, closes. */
#define OK		SES_ACT_OK, SES_SCOPE_RECIPIENT, 0, 0
#define RATE		SES_ACT_RATE, SES_SCOPE_POOL, 0, 0
#define QUOTA		SES_ACT_QUOTA, SES_SCOPE_POOL, 0, 0
#define CONNS		SES_ACT_CONN_LIMIT, SES_SCOPE_POOL, 0, 1
#define OVER		SES_ACT_SESSION_OVER, SES_SCOPE_SESSION, 0, 1
#define AUTH		SES_ACT_AUTH, SES_SCOPE_POOL, 0, 1
#define TEMP_RCPT	SES_ACT_TEMPFAIL, SES_SCOPE_RECIPIENT, 1, 0
#define TEMP_MSG	SES_ACT_TEMPFAIL, SES_SCOPE_MESSAGE, 1, 0
#define TEMP_SESS	SES_ACT_TEMPFAIL, SES_SCOPE_SESSION, 0, 1
#define PERM_RCPT	SES_ACT_PERMFAIL, SES_SCOPE_RECIPIENT, 1, 0
#define PERM_MSG	SES_ACT_PERMFAIL, SES_SCOPE_MESSAGE, 1, 0
#define PROTO_SESS	SES_ACT_PROTOCOL, SES_SCOPE_SESSION, 0, 1
#define PROTO_MSG	SES_ACT_PROTOCOL, SES_SCOPE_MESSAGE, 1, 1

struct reply_case {
	enum ses_step	 step;
	int		 code;
	const char	*text;
	enum ses_action	 action;
	enum ses_scope	 scope;
	int		 counts_attempt;
	int		 closes;
};

/* The name each action must carry: metric labels, so never renamed. */
static const char *
name_of(enum ses_action a)
{
	switch (a) {
	case SES_ACT_OK:		return "ok";
	case SES_ACT_RATE:		return "rate_throttle";
	case SES_ACT_QUOTA:		return "daily_quota";
	case SES_ACT_CONN_LIMIT:	return "too_many_connections";
	case SES_ACT_SESSION_OVER:	return "session_over";
	case SES_ACT_TEMPFAIL:		return "temporary";
	case SES_ACT_AUTH:		return "auth";
	case SES_ACT_PERMFAIL:		return "permanent";
	case SES_ACT_NETWORK:		return "network";
	case SES_ACT_PROTOCOL:		return "protocol";
	}
	return "?";
}

/* Classify one case and compare every field. */
static void
check_case(const struct reply_case *c)
{
	const struct ses_class *k = ses_classify(c->step, c->code, c->text);

	ck_assert_msg(k != NULL, "%s %d \"%s\": NULL",
	    ses_step_name(c->step), c->code, c->text ? c->text : "(null)");
	ck_assert_msg(k->action == c->action && k->scope == c->scope &&
	    k->counts_attempt == c->counts_attempt && k->closes == c->closes,
	    "%s %d \"%s\": got action %d scope %d counts %d closes %d, "
	    "want %d %d %d %d", ses_step_name(c->step), c->code,
	    c->text ? c->text : "(null)", k->action, k->scope,
	    k->counts_attempt, k->closes, c->action, c->scope,
	    c->counts_attempt, c->closes);
	ck_assert_str_eq(k->name, name_of(c->action));
}

/*
 * The AWS table (§4.1), each row as published and as seen on the wire,
 * at the step SES sends it: the throttles, 552 and the content 554s after
 * the final dot (§4.3), the idle timeout while the session sits idle.
 */
static const struct reply_case aws_table[] = {
	{ SES_STEP_AUTH, 235, "Authentication successful", OK },
	{ SES_STEP_AUTH, 235, "Authentication successful.", OK },
	{ SES_STEP_DOT, 250, "Ok MessageID", OK },
	{ SES_STEP_DOT, 250,
	  "Ok 01000170d10e6a6c-71c65177-ce88-4135-9258-48c0e8bf916d-000000",
	  OK },
	{ SES_STEP_BANNER, 421, "Too many concurrent SMTP connections", CONNS },
	{ SES_STEP_BANNER, 421, "Too many concurrent SMTP connections.",
	  CONNS },
	{ SES_STEP_BANNER, 421, "4.7.0 too many concurrent smtp connections",
	  CONNS },
	{ SES_STEP_EHLO, 421, "Too many concurrent SMTP connections", CONNS },
	{ SES_STEP_MAIL, 421, "Too many concurrent SMTP connections", CONNS },
	{ SES_STEP_IDLE, 421, "Too many concurrent SMTP connections", CONNS },
	{ SES_STEP_DOT, 451, "Temporary service failure", TEMP_MSG },
	{ SES_STEP_MAIL, 451, "Temporary service failure", TEMP_MSG },
	{ SES_STEP_RCPT, 451, "Temporary service failure", TEMP_RCPT },
	{ SES_STEP_DATA, 451, "Temporary service failure", TEMP_MSG },
	{ SES_STEP_IDLE, 451, "Timeout waiting for data from client", OVER },
	{ SES_STEP_IDLE, 451, "4.4.2 Timeout waiting for data from client.",
	  OVER },
	{ SES_STEP_IDLE, 451, "4.4.2 TIMEOUT WAITING FOR DATA FROM CLIENT",
	  OVER },
	{ SES_STEP_IDLE, 421, "Timeout waiting for data from client.", OVER },
	/* The same timeout when the relay was too slow mid-transaction. */
	{ SES_STEP_DOT, 451, "4.4.2 Timeout waiting for data from client.",
	  OVER },
	{ SES_STEP_RCPT, 451, "Timeout waiting for data from client", OVER },
	{ SES_STEP_MAIL, 421, "Timeout waiting for data from client.", OVER },
	{ SES_STEP_DOT, 454, "Throttling failure: Daily message quota exceeded",
	  QUOTA },
	{ SES_STEP_DOT, 454,
	  "Throttling failure: Daily message quota exceeded.", QUOTA },
	{ SES_STEP_DOT, 454,
	  "throttling failure: daily message quota exceeded. ", QUOTA },
	{ SES_STEP_DOT, 454,
	  "Throttling failure: Maximum sending rate exceeded", RATE },
	{ SES_STEP_DOT, 454,
	  "Throttling failure: Maximum sending rate exceeded.", RATE },
	{ SES_STEP_DOT, 454,
	  "4.7.0 THROTTLING FAILURE: MAXIMUM SENDING RATE EXCEEDED.  ", RATE },
	{ SES_STEP_AUTH, 454, "Temporary authentication failure", AUTH },
	{ SES_STEP_AUTH, 454, "Temporary authentication failure.", AUTH },
	{ SES_STEP_MAIL, 454, "temporary authentication failure", AUTH },
	{ SES_STEP_DOT, 454, "Temporary service failure", TEMP_MSG },
	{ SES_STEP_RCPT, 454, "Temporary service failure", TEMP_RCPT },
	{ SES_STEP_MAIL, 530, "Authentication required", AUTH },
	{ SES_STEP_EHLO, 530, "Authentication required", AUTH },
	{ SES_STEP_AUTH, 535, "Authentication Credentials Invalid", AUTH },
	{ SES_STEP_AUTH, 535, "5.7.8 Authentication credentials invalid",
	  AUTH },
	{ SES_STEP_AUTH, 535, "Account not subscribed to SES", AUTH },
	{ SES_STEP_MAIL, 535, "Account not subscribed to SES", AUTH },
	{ SES_STEP_DOT, 552, "Message is too long.", PERM_MSG },
	{ SES_STEP_DOT, 552, "5.3.4 Message is too long.", PERM_MSG },
	{ SES_STEP_MAIL, 553, "<a@b..c> Invalid email address", PERM_MSG },
	{ SES_STEP_RCPT, 553, "<a@b..c> address unknown", PERM_RCPT },
	{ SES_STEP_DOT, 554, "Access denied: User UserARN is not authorized "
	  "to perform ses:SendRawEmail on resource IdentityARN", PERM_MSG },
	{ SES_STEP_DOT, 554, "Access denied: User arn:aws:iam::123456789012:"
	  "user/ses-smtp-user.20260101-120000 is not authorized to perform "
	  "ses:SendRawEmail on resource arn:aws:ses:us-east-1:123456789012:"
	  "identity/example.com", PERM_MSG },
	{ SES_STEP_DOT, 554, "Message rejected: Email address is not "
	  "verified. The following identities failed the check in region "
	  "region: identity0, identity1, identity2", PERM_MSG },
	{ SES_STEP_DOT, 554, "Message rejected: Email address is not "
	  "verified. The following identities failed the check in region "
	  "US-EAST-1: prueba@gmail.com", PERM_MSG },
	{ SES_STEP_DOT, 554, "Message rejected: Email address is not "
	  "verified. The following identities failed the check in region "
	  "CA-CENTRAL-1: a@example.com, b@example.com...", PERM_MSG },
};

/* Replies outside the table but seen from SES (§4.2, §1.1). */
static const struct reply_case ses_seen[] = {
	{ SES_STEP_MAIL, 501, "Invalid MAIL FROM address provided", PERM_MSG },
	/* SES's answer to MAIL FROM:<>. */
	{ SES_STEP_MAIL, 501, "Invalid MAIL FROM address provided.",
	  PERM_MSG },
	{ SES_STEP_RCPT, 501, "Invalid RCPT TO address provided", PERM_RCPT },
	{ SES_STEP_DOT, 554, "Transaction failed: Recipient count exceeds 50.",
	  PERM_MSG },
	{ SES_STEP_DOT, 554,
	  "Transaction failed: Duplicate header 'Content-Type'.", PERM_MSG },
	{ SES_STEP_DOT, 554, "Transaction failed: Missing final '@domain'",
	  PERM_MSG },
	{ SES_STEP_DOT, 554, "Transaction failed: Expected disposition, got =",
	  PERM_MSG },
	{ SES_STEP_DOT, 554,
	  "Transaction failed: Domain contains illegal character", PERM_MSG },
	{ SES_STEP_DOT, 554, "Message rejected: Address blacklisted",
	  PERM_MSG },
	{ SES_STEP_DOT, 454,
	  "Throttling failure: Maximum SigV2 SMTP sending rate exceeded",
	  RATE },
	{ SES_STEP_DOT, 454,
	  "Throttling failure: Maximum SigV2 SMTP sending rate exceeded.",
	  RATE },
	{ SES_STEP_DOT, 554, "Account is paused", PERM_MSG },
	{ SES_STEP_DOT, 554, "There are no recipients specified", PERM_MSG },
	{ SES_STEP_DOT, 554, "Mail FROM domain is not verified", PERM_MSG },
	{ SES_STEP_DOT, 554, "Configuration set does not exist", PERM_MSG },
	{ SES_STEP_MAIL, 503, "Bad sequence of commands", PERM_MSG },
	/* A freshly created key, refused for a minute or two. */
	{ SES_STEP_AUTH, 535, "Authentication Credentials Invalid", AUTH },
};

/* The dialogue as SES speaks it (§3.1, §3.3): every step's success. */
static const struct reply_case dialogue[] = {
	{ SES_STEP_BANNER, 220, "email-smtp.amazonaws.com ESMTP "
	  "SimpleEmailService-d-VCSHDP1YZ A1b2C3d4E5f6G7h8I9j0", OK },
	{ SES_STEP_EHLO, 250, "email-smtp.amazonaws.com\n8BITMIME\n"
	  "STARTTLS\nAUTH PLAIN LOGIN\nOk", OK },
	{ SES_STEP_STARTTLS, 220, "Ready to start TLS", OK },
	{ SES_STEP_AUTH, 334, "VXNlcm5hbWU6", OK },
	{ SES_STEP_AUTH, 334, "UGFzc3dvcmQ6", OK },
	{ SES_STEP_MAIL, 250, "Ok", OK },
	{ SES_STEP_RCPT, 250, "Ok", OK },
	{ SES_STEP_RCPT, 251, "User not local; will forward", OK },
	{ SES_STEP_DATA, 354, "End data with <CR><LF>.<CR><LF>", OK },
	{ SES_STEP_DOT, 250, "2.0.0 Ok 0107018b0c0c0c0c-x-000000", OK },
	{ SES_STEP_RSET, 250, "Ok", OK },
	{ SES_STEP_QUIT, 221, "Bye", OK },
	{ SES_STEP_QUIT, 221, "2.0.0 Bye", OK },
};

/* A success where none makes sense: the dialogue is broken. */
static const struct reply_case unexpected[] = {
	{ SES_STEP_DATA, 250, "Ok", PROTO_MSG },
	{ SES_STEP_DATA, 220, "x", PROTO_MSG },
	{ SES_STEP_MAIL, 354, "End data with <CR><LF>.<CR><LF>", PROTO_MSG },
	{ SES_STEP_RCPT, 354, "Go ahead", PROTO_MSG },
	{ SES_STEP_DOT, 354, "Go ahead", PROTO_MSG },
	{ SES_STEP_BODY, 250, "Ok", PROTO_MSG },
	{ SES_STEP_BANNER, 334, "VXNlcm5hbWU6", PROTO_SESS },
	{ SES_STEP_EHLO, 354, "x", PROTO_SESS },
	{ SES_STEP_STARTTLS, 334, "x", PROTO_SESS },
	{ SES_STEP_CONNECT, 220, "a reply before the connection", PROTO_SESS },
	{ SES_STEP_IDLE, 250, "Ok", PROTO_SESS },
	{ SES_STEP_IDLE, 220, "hello again", PROTO_SESS },
	{ SES_STEP_RSET, 354, "x", PROTO_SESS },
	{ SES_STEP_QUIT, 334, "x", PROTO_SESS },
	/* Not SMTP reply codes at all. */
	{ SES_STEP_DOT, 0, "Ok", PROTO_MSG },
	{ SES_STEP_DOT, 199, "x", PROTO_MSG },
	{ SES_STEP_RCPT, 600, "x", PROTO_MSG },
	{ SES_STEP_MAIL, -250, "Ok", PROTO_MSG },
	{ SES_STEP_BANNER, 199, "x", PROTO_SESS },
	{ SES_STEP_AUTH, 600, "x", PROTO_SESS },
	{ SES_STEP_AUTH, 999, "x", PROTO_SESS },
	{ SES_STEP_IDLE, 2500, "x", PROTO_SESS },
	{ SES_STEP_QUIT, 100, "x", PROTO_SESS },
};

/* The rules by step, for replies whose text says nothing. */
static const struct reply_case by_step[] = {
	/* Before authentication: nothing offered, nothing bounces. */
	{ SES_STEP_BANNER, 451, "Temporary service failure", TEMP_SESS },
	{ SES_STEP_EHLO, 454, "Temporary service failure", TEMP_SESS },
	{ SES_STEP_STARTTLS, 454, "TLS not available", TEMP_SESS },
	{ SES_STEP_BANNER, 554, "Access denied", PROTO_SESS },
	{ SES_STEP_EHLO, 500, "Syntax error", PROTO_SESS },
	{ SES_STEP_STARTTLS, 501, "Syntax error", PROTO_SESS },
	{ SES_STEP_BANNER, 421, "Service not available", OVER },
	/* Any refusal of AUTH stops the pool; a 421 only ends a session. */
	{ SES_STEP_AUTH, 504, "Unrecognized authentication type", AUTH },
	{ SES_STEP_AUTH, 501, "Cannot decode", AUTH },
	{ SES_STEP_AUTH, 451, "Temporary service failure", AUTH },
	{ SES_STEP_AUTH, 454, "Temporary service failure", AUTH },
	{ SES_STEP_AUTH, 421, "Service not available", OVER },
	{ SES_STEP_AUTH, 451, "4.4.2 Timeout waiting for data from client.",
	  OVER },
	/* Any other 421 ends the session: reconnect and resend. */
	{ SES_STEP_MAIL, 421, "Maximum messages per session exceeded", OVER },
	{ SES_STEP_RCPT, 421, "Service not available", OVER },
	{ SES_STEP_DATA, 421, "x", OVER },
	{ SES_STEP_DOT, 421, "4.4.2 Maximum messages per session", OVER },
	{ SES_STEP_RSET, 421, "x", OVER },
	/* Unsolicited while idle, or a refused RSET or QUIT. */
	{ SES_STEP_IDLE, 451, "Temporary service failure", OVER },
	{ SES_STEP_IDLE, 454, "Temporary service failure", OVER },
	{ SES_STEP_IDLE, 554, "Transaction failed", OVER },
	{ SES_STEP_RSET, 451, "x", OVER },
	{ SES_STEP_RSET, 502, "Not implemented", OVER },
	{ SES_STEP_QUIT, 500, "x", OVER },
	/* Pool-wide texts hold while idle too. */
	{ SES_STEP_IDLE, 454,
	  "Throttling failure: Daily message quota exceeded", QUOTA },
	{ SES_STEP_IDLE, 535, "Authentication Credentials Invalid", AUTH },
	/* Other 4xx and 5xx in the transaction, by the code alone. */
	{ SES_STEP_MAIL, 452, "Insufficient storage", TEMP_MSG },
	{ SES_STEP_RCPT, 452, "Too many recipients", TEMP_RCPT },
	{ SES_STEP_RCPT, 550, "Mailbox unavailable", PERM_RCPT },
	{ SES_STEP_RCPT, 554, "Message rejected: Address blacklisted",
	  PERM_RCPT },
	{ SES_STEP_DATA, 554, "Transaction failed", PERM_MSG },
	{ SES_STEP_DATA, 452, "x", TEMP_MSG },
	{ SES_STEP_BODY, 552, "Message is too long.", PERM_MSG },
	{ SES_STEP_DOT, 550, "x", PERM_MSG },
	{ SES_STEP_DOT, 599, "x", PERM_MSG },
	{ SES_STEP_DOT, 400, "x", TEMP_MSG },
	{ SES_STEP_DOT, 499, "x", TEMP_MSG },
};

/*
 * The text is read only as SES writes it: from its start (after an
 * enhanced status code), in full, at the code SES uses.
 */
static const struct reply_case text_rules[] = {
	{ SES_STEP_DOT, 454, "Throttling failure", TEMP_MSG },
	{ SES_STEP_DOT, 454, "Throttling failure: Maximum sending", TEMP_MSG },
	{ SES_STEP_DOT, 454, "Error: Throttling failure: Maximum sending "
	  "rate exceeded", TEMP_MSG },
	{ SES_STEP_DOT, 454, "  Throttling failure: Maximum sending rate "
	  "exceeded", RATE },
	{ SES_STEP_DOT, 454, "4.7.0  Throttling failure: Maximum sending rate "
	  "exceeded", RATE },
	{ SES_STEP_DOT, 454, "4.7.0\tThrottling failure: Daily message quota "
	  "exceeded", QUOTA },
	/* Not an enhanced status code: the text is read as it is. */
	{ SES_STEP_DOT, 454, "4.7 Throttling failure: Maximum sending rate "
	  "exceeded", TEMP_MSG },
	{ SES_STEP_DOT, 454, "4.7.0x Throttling failure: Maximum sending rate "
	  "exceeded", TEMP_MSG },
	{ SES_STEP_DOT, 454, "4.7.1000 Throttling failure: Maximum sending "
	  "rate exceeded", TEMP_MSG },
	/* The right text with the wrong code is just that code. */
	{ SES_STEP_DOT, 451, "Throttling failure: Maximum sending rate "
	  "exceeded", TEMP_MSG },
	{ SES_STEP_DOT, 554, "Throttling failure: Daily message quota "
	  "exceeded", PERM_MSG },
	{ SES_STEP_DOT, 450, "Timeout waiting for data from client", TEMP_MSG },
	{ SES_STEP_DOT, 451, "Too many concurrent SMTP connections", TEMP_MSG },
	{ SES_STEP_MAIL, 451, "Temporary authentication failure", TEMP_MSG },
	/* The enhanced code alone, or nothing. */
	{ SES_STEP_DOT, 454, "4.7.0", TEMP_MSG },
	{ SES_STEP_DOT, 454, "", TEMP_MSG },
	{ SES_STEP_BANNER, 421, "", OVER },
};

START_TEST(test_aws_table)
{
	check_case(&aws_table[_i]);
}
END_TEST

START_TEST(test_ses_seen)
{
	check_case(&ses_seen[_i]);
}
END_TEST

START_TEST(test_dialogue)
{
	check_case(&dialogue[_i]);
}
END_TEST

START_TEST(test_unexpected)
{
	check_case(&unexpected[_i]);
}
END_TEST

START_TEST(test_by_step)
{
	check_case(&by_step[_i]);
}
END_TEST

START_TEST(test_text_rules)
{
	check_case(&text_rules[_i]);
}
END_TEST

/* No text: the code and the step alone decide. */
static const struct reply_case null_text[] = {
	{ SES_STEP_AUTH, 235, NULL, OK },
	{ SES_STEP_DATA, 354, NULL, OK },
	{ SES_STEP_DATA, 250, NULL, PROTO_MSG },
	{ SES_STEP_BANNER, 421, NULL, OVER },
	{ SES_STEP_IDLE, 451, NULL, OVER },
	{ SES_STEP_DOT, 451, NULL, TEMP_MSG },
	{ SES_STEP_DOT, 454, NULL, TEMP_MSG },
	{ SES_STEP_RCPT, 454, NULL, TEMP_RCPT },
	{ SES_STEP_AUTH, 454, NULL, AUTH },
	{ SES_STEP_MAIL, 535, NULL, AUTH },
	{ SES_STEP_DOT, 554, NULL, PERM_MSG },
	{ SES_STEP_EHLO, 554, NULL, PROTO_SESS },
	{ SES_STEP_DOT, 700, NULL, PROTO_MSG },
};

START_TEST(test_null_text)
{
	check_case(&null_text[_i]);
}
END_TEST

/*
 * A lost connection, by step: never an attempt (SES's ELB rotates), but
 * after the dot, where SES may have the message: the retry schedule.
 */
static const struct {
	enum ses_step	 step;
	enum ses_scope	 scope;
	int		 counts_attempt;
} network[] = {
	{ SES_STEP_CONNECT, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_BANNER, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_EHLO, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_STARTTLS, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_AUTH, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_MAIL, SES_SCOPE_MESSAGE, 0 },
	{ SES_STEP_RCPT, SES_SCOPE_MESSAGE, 0 },
	{ SES_STEP_DATA, SES_SCOPE_MESSAGE, 0 },
	{ SES_STEP_BODY, SES_SCOPE_MESSAGE, 0 },
	{ SES_STEP_DOT, SES_SCOPE_MESSAGE, 1 },
	{ SES_STEP_IDLE, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_RSET, SES_SCOPE_SESSION, 0 },
	{ SES_STEP_QUIT, SES_SCOPE_SESSION, 0 },
};

START_TEST(test_network)
{
	const struct ses_class *k = ses_classify_network(network[_i].step);

	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->action, SES_ACT_NETWORK);
	ck_assert_int_eq(k->scope, network[_i].scope);
	ck_assert_int_eq(k->counts_attempt, network[_i].counts_attempt);
	ck_assert_int_eq(k->closes, 1);
	ck_assert_str_eq(k->name, "network");
}
END_TEST

START_TEST(test_network_every_step_listed)
{
	ck_assert_uint_eq(sizeof(network) / sizeof(network[0]),
	    SES_STEP_QUIT + 1);
	for (size_t i = 0; i < sizeof(network) / sizeof(network[0]); i++)
		ck_assert_int_eq(network[i].step, (int)i);
}
END_TEST

static const char *const step_names[] = { "connect", "banner", "ehlo",
	"starttls", "auth", "mail", "rcpt", "data", "body", "dot", "idle",
	"rset", "quit" };

START_TEST(test_step_names)
{
	ck_assert_uint_eq(sizeof(step_names) / sizeof(step_names[0]),
	    SES_STEP_QUIT + 1);
	for (int s = SES_STEP_CONNECT; s <= SES_STEP_QUIT; s++)
		ck_assert_str_eq(ses_step_name((enum ses_step)s),
		    step_names[s]);
	ck_assert_str_eq(ses_step_name((enum ses_step)(SES_STEP_QUIT + 1)),
	    "unknown");
	ck_assert_str_eq(ses_step_name((enum ses_step)-1), "unknown");
}
END_TEST

/* A step outside the enum still gets a class, and no success. */
START_TEST(test_unknown_step)
{
	static const int codes[] = { 220, 250, 354, 421, 454, 535, 554 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const struct ses_class *k;

		k = ses_classify((enum ses_step)(SES_STEP_QUIT + 1), codes[i],
		    "Throttling failure: Maximum sending rate exceeded");
		ck_assert_ptr_nonnull(k);
		ck_assert_int_ne(k->action, SES_ACT_OK);
		k = ses_classify((enum ses_step)-1, codes[i], NULL);
		ck_assert_ptr_nonnull(k);
		ck_assert_int_ne(k->action, SES_ACT_OK);
	}
	ck_assert_int_eq(ses_classify_network((enum ses_step)99)->scope,
	    SES_SCOPE_SESSION);
}
END_TEST

/* A metric label: non-empty, [a-z_] only. */
static int
is_label(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s);
}

/*
 * Every step and code, with and without text: a class, a label name, the
 * name matching the action, success only where the step expects it, and
 * the rules that hold for every class.
 */
START_TEST(test_sweep)
{
	static const char *const texts[] = { NULL, "", "x",
	    "Throttling failure: Maximum sending rate exceeded",
	    "4.4.2 Timeout waiting for data from client." };
	enum ses_step step = (enum ses_step)_i;

	for (int code = -1; code <= 1000; code++) {
		for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
			const struct ses_class *k;
			int ok;

			k = ses_classify(step, code, texts[t]);
			ck_assert_ptr_nonnull(k);
			ck_assert_msg(is_label(k->name), "name \"%s\"",
			    k->name);
			ck_assert_str_eq(k->name, name_of(k->action));
			switch (step) {
			case SES_STEP_AUTH:
				ok = code >= 200 && code <= 399;
				break;
			case SES_STEP_DATA:
				ok = code >= 300 && code <= 399;
				break;
			case SES_STEP_CONNECT:
			case SES_STEP_BODY:
			case SES_STEP_IDLE:
				ok = 0;
				break;
			default:
				ok = code >= 200 && code <= 299;
			}
			ck_assert_msg((k->action == SES_ACT_OK) == ok,
			    "%s %d: action %d", ses_step_name(step), code,
			    k->action);
			if (code < 200 || code > 599)
				ck_assert_int_eq(k->action, SES_ACT_PROTOCOL);
			/* Nothing of a message at stake, nothing counted. */
			if (k->scope == SES_SCOPE_SESSION ||
			    k->scope == SES_SCOPE_POOL)
				ck_assert_int_eq(k->counts_attempt, 0);
			/* A session-wide failure always ends the session. */
			if (k->scope == SES_SCOPE_SESSION)
				ck_assert_int_eq(k->closes, 1);
			ck_assert_int_eq(k->action == SES_ACT_NETWORK, 0);
		}
	}
}
END_TEST

/*
 * The SES v2 API's answers (ses-facts.md §10), on the same classes:
 * status, x-amzn-ErrorType (with and without the ":<namespace>" suffix
 * AWS appends), message, then the class and its flags.
 */
struct api_case {
	int		 status;
	const char	*type;
	const char	*message;
	enum ses_action	 action;
	enum ses_scope	 scope;
	int		 counts_attempt;
	int		 closes;
	unsigned	 flags;
};

#define ANY_NS ":http://internal.amazon.com/coral/com.amazonaws.sesv2/"
static const struct api_case api_cases[] = {
	{ 200, NULL, NULL, OK, 0 },
	{ 200, "", "", OK, 0 },
	{ 429, "TooManyRequestsException", "Maximum sending rate exceeded.",
	  RATE, 0 },
	{ 429, "TooManyRequestsException" ANY_NS, "Maximum sending rate "
	  "exceeded.", RATE, 0 },
	{ 429, NULL, NULL, RATE, 0 },
	{ 400, "Throttling", "Maximum sending rate exceeded.", RATE, 0 },
	/* The daily quota, by its text, whatever the type says. */
	{ 400, "LimitExceededException", "Daily message quota exceeded.",
	  QUOTA, 0 },
	{ 429, "TooManyRequestsException", "Daily message quota exceeded",
	  QUOTA, 0 },
	{ 400, "Throttling", "daily message quota exceeded.", QUOTA, 0 },
	{ 400, "MessageRejected", "Email address is not verified.", PERM_MSG,
	  0 },
	{ 400, "MessageRejected" ANY_NS, "x", PERM_MSG, 0 },
	{ 400, "MailFromDomainNotVerifiedException", "x", PERM_MSG, 0 },
	{ 400, "BadRequestException", "x", PERM_MSG, 0 },
	{ 413, NULL, NULL, PERM_MSG, 0 },
	{ 400, "SendingPausedException", "Sending is paused.", QUOTA,
	  SES_F_ACCOUNT_PAUSED },
	{ 400, "AccountSuspendedException", "x", QUOTA,
	  SES_F_ACCOUNT_PAUSED },
	{ 403, "ExpiredTokenException", "The security token included in "
	  "the request is expired", AUTH, SES_F_REFRESH_CREDS },
	{ 400, "ExpiredToken", "x", AUTH, SES_F_REFRESH_CREDS },
	{ 403, "SignatureDoesNotMatch", "x", AUTH, 0 },
	{ 403, "UnrecognizedClientException", "x", AUTH, 0 },
	{ 403, "InvalidSignatureException", "Signature expired", AUTH, 0 },
	{ 400, "IncompleteSignatureException", "x", AUTH, 0 },
	{ 403, "AccessDeniedException", "x", AUTH, 0 },
	{ 403, NULL, NULL, AUTH, 0 },
	{ 401, NULL, NULL, AUTH, 0 },
	/* A name only a prefix of a known one is not that one. */
	{ 400, "MessageRejectedSomething", "x", TEMP_MSG, 0 },
	{ 404, "NotFoundException", "x", TEMP_MSG, 0 },
	{ 400, "LimitExceededException", "Too many things", TEMP_MSG, 0 },
	{ 400, NULL, NULL, TEMP_MSG, 0 },
	{ 500, "InternalFailure", "x", OVER, 0 },
	{ 503, "ServiceUnavailable", NULL, OVER, 0 },
	{ 502, NULL, NULL, OVER, 0 },
	{ 100, NULL, NULL, PROTO_MSG, 0 },
	{ 302, NULL, NULL, PROTO_MSG, 0 },
	{ 0, NULL, NULL, PROTO_MSG, 0 },
	{ 999, "MessageRejected", NULL, PROTO_MSG, 0 },
};

START_TEST(test_api)
{
	const struct api_case *c = &api_cases[_i];
	const struct ses_class *k = ses_classify_api(c->status, c->type,
	    c->message);

	ck_assert_msg(k->action == c->action && k->scope == c->scope &&
	    k->counts_attempt == c->counts_attempt && k->closes == c->closes &&
	    k->flags == c->flags, "%d %s \"%s\": got action %d scope %d "
	    "counts %d closes %d flags %u", c->status,
	    c->type ? c->type : "(null)", c->message ? c->message : "(null)",
	    k->action, k->scope, k->counts_attempt, k->closes, k->flags);
	ck_assert_str_eq(k->name, name_of(c->action));
}
END_TEST

/* The SMTP table's classes ask nothing more. */
START_TEST(test_smtp_no_flags)
{
	for (int code = 200; code < 600; code++)
		ck_assert_uint_eq(ses_classify((enum ses_step)_i, code, "")->flags,
		    0);
}
END_TEST

static Suite *
ses_reply_suite(void)
{
	Suite *s = suite_create("ses_reply");
	TCase *tc;

#define LOOP(tc, test, cases) \
	tcase_add_loop_test((tc), (test), 0, sizeof(cases) / sizeof(cases[0]))
	tc = tcase_create("ses");
	LOOP(tc, test_aws_table, aws_table);
	LOOP(tc, test_ses_seen, ses_seen);
	LOOP(tc, test_dialogue, dialogue);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	LOOP(tc, test_unexpected, unexpected);
	LOOP(tc, test_by_step, by_step);
	LOOP(tc, test_text_rules, text_rules);
	LOOP(tc, test_null_text, null_text);
	tcase_add_test(tc, test_unknown_step);
	tcase_add_loop_test(tc, test_sweep, SES_STEP_CONNECT,
	    SES_STEP_QUIT + 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	LOOP(tc, test_api, api_cases);
	tcase_add_loop_test(tc, test_smtp_no_flags, SES_STEP_CONNECT,
	    SES_STEP_QUIT + 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("network");
	LOOP(tc, test_network, network);
	tcase_add_test(tc, test_network_every_step_listed);
	tcase_add_test(tc, test_step_names);
	suite_add_tcase(s, tc);
#undef LOOP
	return s;
}

int
main(void)
{
	return fixture_run(ses_reply_suite());
}
