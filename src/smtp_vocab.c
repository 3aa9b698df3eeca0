/*
 * smtp_vocab.c: the verbs the inbound SMTP servers take, in which
 * states, and the replies they give, for the daemon's server and for
 * `sesrelay-sendmail -bs` alike (smtp_vocab.h).
 *
 * The texts are Postfix's where Postfix has one, so that what clients
 * and operators already know reads the same.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "smtp_vocab.h"

#define S(st)		(1u << SMTP_STATE_##st)
/* The states in which a command is read at all. */
#define COMMANDS	(S(INIT) | S(HELO) | S(MAIL) | S(RCPT))

enum arg_rule {
	ARG_ANY,	/* the handler parses it */
	ARG_NEEDED,	/* refused without one */
	ARG_NONE,	/* refused with one */
};

/*
 * One row a verb: its argument, the states in which its handler runs
 * (none: a verb known but not offered), its whole answer when it needs
 * no handler, and what it is told in the other states (the first
 * refusal whose states hold).
 */
static const struct verb_row {
	enum smtp_verb	 verb;
	enum arg_rule	 arg;
	const char	*syntax;	/* the reply to a broken argument */
	unsigned	 states;
	const char	*answer;
	struct {
		unsigned	 states;
		const char	*reply;
	} refusal[2];
} verbs[] = {
	{ SMTP_VERB_EHLO, ARG_NEEDED, "501 5.5.4 Syntax: EHLO hostname",
	  COMMANDS, NULL, { { 0, NULL } } },
	{ SMTP_VERB_HELO, ARG_NEEDED, "501 5.5.4 Syntax: HELO hostname",
	  COMMANDS, NULL, { { 0, NULL } } },
	{ SMTP_VERB_MAIL, ARG_ANY, NULL, S(INIT) | S(HELO), NULL,
	  { { S(MAIL) | S(RCPT), "503 5.5.1 Error: nested MAIL command" } } },
	{ SMTP_VERB_RCPT, ARG_ANY, NULL, S(MAIL) | S(RCPT), NULL,
	  { { S(INIT) | S(HELO), "503 5.5.1 Error: need MAIL command" } } },
	{ SMTP_VERB_DATA, ARG_NONE, "501 5.5.4 Syntax: DATA", S(RCPT), NULL,
	  { { S(MAIL), "554 5.5.1 Error: no valid recipients" },
	    { S(INIT) | S(HELO), "503 5.5.1 Error: need RCPT command" } } },
	{ SMTP_VERB_RSET, ARG_ANY, NULL, COMMANDS, NULL, { { 0, NULL } } },
	{ SMTP_VERB_NOOP, ARG_ANY, NULL, COMMANDS, SMTP_R_OK,
	  { { 0, NULL } } },
	{ SMTP_VERB_QUIT, ARG_ANY, NULL, COMMANDS, NULL, { { 0, NULL } } },
	{ SMTP_VERB_VRFY, ARG_ANY, NULL, COMMANDS, "252 2.5.2 Cannot VRFY "
	  "user, but will accept message", { { 0, NULL } } },
	{ SMTP_VERB_HELP, ARG_ANY, NULL, COMMANDS, "214 2.0.0 Commands: EHLO "
	  "HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP", { { 0, NULL } } },
	{ SMTP_VERB_STARTTLS, ARG_ANY, NULL, 0, NULL, { { 0, NULL } } },
	{ SMTP_VERB_AUTH, ARG_ANY, NULL, 0, NULL, { { 0, NULL } } },
};

static const char *const state_names[] = {
	[SMTP_STATE_INIT] = "init",
	[SMTP_STATE_HELO] = "helo",
	[SMTP_STATE_MAIL] = "mail",
	[SMTP_STATE_RCPT] = "rcpt",
	[SMTP_STATE_DATA] = "data",
	[SMTP_STATE_COMMIT] = "commit",
	[SMTP_STATE_CLOSING] = "closing",
	[SMTP_STATE_LINGER] = "linger",
};

const char *
smtp_state_name(enum smtp_state st)
{
	if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[st];
}

const char *
smtp_vocab_line_refusal(const char *line, size_t len)
{
	if (memchr(line, '\0', len) != NULL)
		return "500 5.5.2 Error: NUL character in command";
	if (memchr(line, '\r', len) != NULL)
		return "500 5.5.2 Error: bare <CR> in command";
	return NULL;
}

static const struct verb_row *
verb_row(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return &verbs[i];
	return NULL;
}

/* What a verb out of its states is told. */
static const char *
refusal(const struct verb_row *v, enum smtp_state st)
{
	for (size_t i = 0; i < sizeof(v->refusal) / sizeof(v->refusal[0]);
	    i++)
		if (v->refusal[i].states & (1u << st))
			return v->refusal[i].reply;
	return "503 5.5.1 Error: bad sequence of commands";
}

/* Is the argument as the verb wants it? */
static int
arg_fits(const struct verb_row *v, const char *arg)
{
	return v->arg == ARG_ANY || (v->arg == ARG_NEEDED) == (*arg != '\0');
}

int
smtp_vocab_decide(const char *line, enum smtp_state st, const char *where,
    struct smtp_command *cmd, char reply[SMTP_REPLY_MAX])
{
	const struct verb_row *v;

	if (*line == '\0') {
		snprintf(reply, SMTP_REPLY_MAX, "500 5.5.2 Error: empty "
		    "command");
		return 0;
	}
	smtp_parse_command(line, cmd);
	if ((v = verb_row(cmd->verb)) == NULL)
		snprintf(reply, SMTP_REPLY_MAX, "500 5.5.2 Error: command not "
		    "recognized");
	else if (v->states == 0)
		snprintf(reply, SMTP_REPLY_MAX, "502 5.5.1 Error: %.*s not "
		    "offered on %s", (int)cmd->verb_len, cmd->verb_text, where);
	else if (!arg_fits(v, cmd->arg))
		snprintf(reply, SMTP_REPLY_MAX, "%s", v->syntax);
	else if (!(v->states & (1u << st)))
		snprintf(reply, SMTP_REPLY_MAX, "%s", refusal(v, st));
	else if (v->answer != NULL)
		snprintf(reply, SMTP_REPLY_MAX, "%s", v->answer);
	else
		return 1;
	return 0;
}

void
smtp_vocab_ehlo(int extended, const char *host, long long max_size,
    char reply[SMTP_EHLO_MAX])
{
	if (!extended) {
		snprintf(reply, SMTP_EHLO_MAX, "250 %.255s", host);
		return;
	}
	snprintf(reply, SMTP_EHLO_MAX, "250-%.255s\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE %lld\r\n"
	    "250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250 HELP", host, max_size);
}

int
smtp_vocab_path_refusal(enum smtp_path_result r, const char *usage,
    char reply[SMTP_REPLY_MAX])
{
	static const struct {
		enum smtp_path_result	 r;
		int			 code;
		const char		*text;
	} rows[] = {
		{ SMTP_PATH_TOO_LONG, 501, "5.1.3 Error: address too long" },
		{ SMTP_PATH_NON_ASCII, 553, "5.6.7 Error: non-ASCII local "
		  "part; Amazon SES accepts 7-bit addresses only (a domain "
		  "may be internationalised)" },
		{ SMTP_PATH_BAD_IDN, 553, "5.1.2 Error: the domain is not a "
		  "valid internationalised domain name" },
		{ SMTP_PATH_NO_DOMAIN, 553, "5.1.3 Error: recipient address "
		  "needs a domain" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].r == r) {
			snprintf(reply, SMTP_REPLY_MAX, "%d %s", rows[i].code,
			    rows[i].text);
			return rows[i].code;
		}
	snprintf(reply, SMTP_REPLY_MAX, "501 5.5.4 Syntax: %s", usage);
	return 501;
}

int
smtp_vocab_bad_param(const char *param, char reply[SMTP_REPLY_MAX])
{
	int n = (int)strcspn(param, " ");

	snprintf(reply, SMTP_REPLY_MAX, "555 5.5.4 Error: unsupported "
	    "parameter \"%.*s%s\"", n > 64 ? 64 : n, param, n > 64 ? "..." :
	    "");
	return 555;
}

int
smtp_vocab_mail(const char *arg, long long max_size, char addr[SMTP_ADDR_MAX],
    struct smtp_mail_params *p, char reply[SMTP_REPLY_MAX])
{
	enum smtp_path_result r;
	const char *params, *bad;

	if ((r = smtp_parse_path(arg, "FROM:", 1, addr, &params)) !=
	    SMTP_PATH_OK)
		smtp_vocab_path_refusal(r, "MAIL FROM:<address>", reply);
	else if (smtp_parse_mail_params(params, p, &bad) == -1)
		smtp_vocab_bad_param(bad, reply);
	else if (p->size > max_size)
		snprintf(reply, SMTP_REPLY_MAX, SMTP_R_TOO_BIG, max_size);
	else
		return 1;
	return 0;
}
