/*
 * fuzz_smtp_command.c: the inbound SMTP command parsers (smtp_parse.c).
 *
 * The input is a client's side of a dialogue.  It is cut into lines the
 * way smtp_server.c does (at LF, one trailing CR dropped, lines with a
 * NUL or empty ones refused before parsing), and each line goes through
 * every parser the server may apply to it: the verb split, the MAIL and
 * RCPT paths, the MAIL parameters, and the address check; and through
 * smtp_vocab's decision in every state a command is read in.
 *
 * Invariants: the verb and argument point into the line; a path the
 * parser accepts is shorter than SMTP_ADDR_MAX, printable 7-bit ASCII
 * with no space, passes smtp_address_is_valid(), and a recipient has a
 * domain; the parameters pointer stays inside the argument.  Every
 * reply smtp_vocab writes is one line of "NNN text" under 512 bytes, and
 * it hands only the verbs with a handler on to the server.
 */
#include "config.h"

#include <string.h>

#include "fuzz_util.h"
#include "smtp_parse.h"
#include "smtp_vocab.h"

/* p lies within the string s, its NUL included. */
static int
points_into(const char *p, const char *s)
{
	return p >= s && p <= s + strlen(s);
}

/* The checks on a path smtp_parse_path() accepted. */
static void
check_path(const char *arg, const char *addr, const char *params,
    int allow_null)
{
	size_t n = strnlen(addr, SMTP_ADDR_MAX);

	FUZZ_CHECK(n < SMTP_ADDR_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)addr[i] >= 0x21 &&
		    (unsigned char)addr[i] < 0x7f);
	FUZZ_CHECK(points_into(params, arg));
	FUZZ_CHECK(*params != ' ');
	if (n == 0) {
		FUZZ_CHECK(allow_null);
		return;
	}
	FUZZ_CHECK(smtp_address_is_valid(addr, 0));
	if (!allow_null) {
		FUZZ_CHECK(strchr(addr, '@') != NULL);
		FUZZ_CHECK(smtp_address_is_valid(addr, 1));
	}
}

/* MAIL FROM parameters, as the server parses them after the path. */
static void
check_params(const char *params)
{
	struct smtp_mail_params mp;
	const char *bad = NULL;

	if (smtp_parse_mail_params(params, &mp, &bad) == 0) {
		FUZZ_CHECK(mp.size >= -1);
		FUZZ_CHECK(mp.body_8bit == 0 || mp.body_8bit == 1);
	} else {
		FUZZ_CHECK(bad != NULL && points_into(bad, params));
		FUZZ_CHECK(*bad != '\0');
	}
}

/* An address that passes the check is printable, short, and whole. */
static void
check_address(const char *s)
{
	int loose = smtp_address_is_valid(s, 0);
	int strict = smtp_address_is_valid(s, 1);

	FUZZ_CHECK(loose == 0 || loose == 1);
	FUZZ_CHECK(!strict || loose);
	if (!loose)
		return;
	FUZZ_CHECK(strlen(s) >= 1 && strlen(s) <= 254);
	for (const char *p = s; *p; p++)
		FUZZ_CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
	if (strict)
		FUZZ_CHECK(strchr(s, '@') != NULL);
}

/* A reply line: three digits, a space, text, no line end, short. */
static void
check_reply(const char *r)
{
	size_t n = strlen(r);

	FUZZ_CHECK(n > 4 && n < SMTP_REPLY_MAX);
	FUZZ_CHECK(r[0] >= '2' && r[0] <= '5' && r[3] == ' ');
	FUZZ_CHECK(strpbrk(r, "\r\n") == NULL);
}

/* What the servers decide for this line, in each state they read in. */
static void
check_vocab(const char *line)
{
	struct smtp_command cmd;
	struct smtp_mail_params mp;
	char reply[SMTP_REPLY_MAX], addr[SMTP_ADDR_MAX];

	if (smtp_vocab_line_refusal(line, strlen(line)) != NULL) {
		FUZZ_CHECK(strchr(line, '\r') != NULL);
		return;		/* refused before any verb, as the servers do */
	}
	for (int st = SMTP_STATE_INIT; st <= SMTP_STATE_RCPT; st++) {
		if (smtp_vocab_decide(line, st, "a pipe", &cmd, reply) == 0) {
			check_reply(reply);
			continue;
		}
		FUZZ_CHECK(cmd.verb == SMTP_VERB_EHLO ||
		    cmd.verb == SMTP_VERB_HELO || cmd.verb == SMTP_VERB_MAIL ||
		    cmd.verb == SMTP_VERB_RCPT || cmd.verb == SMTP_VERB_DATA ||
		    cmd.verb == SMTP_VERB_RSET || cmd.verb == SMTP_VERB_QUIT);
		if (cmd.verb == SMTP_VERB_MAIL && !smtp_vocab_mail(cmd.arg,
		    1000, addr, &mp, reply))
			check_reply(reply);
	}
}

static void
one_line(const char *line)
{
	struct smtp_command cmd;
	char addr[SMTP_ADDR_MAX];
	const char *params;

	smtp_parse_command(line, &cmd);
	FUZZ_CHECK(cmd.verb_text == line);
	FUZZ_CHECK(cmd.verb_len == strcspn(line, " "));
	FUZZ_CHECK(points_into(cmd.arg, line));
	FUZZ_CHECK(cmd.arg >= line + cmd.verb_len);
	if (cmd.verb != SMTP_VERB_UNKNOWN)
		FUZZ_CHECK(cmd.verb_len >= 4 && cmd.verb_len <= 8);

	params = NULL;
	if (smtp_parse_path(cmd.arg, "FROM:", 1, addr, &params) ==
	    SMTP_PATH_OK) {
		check_path(cmd.arg, addr, params, 1);
		check_params(params);
	}
	params = NULL;
	if (smtp_parse_path(cmd.arg, "TO:", 0, addr, &params) == SMTP_PATH_OK)
		check_path(cmd.arg, addr, params, 0);
	/* The parameters parser on its own, as if after any path. */
	check_params(cmd.arg);
	check_address(line);
	check_address(cmd.arg);
	check_vocab(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t len = (nl ? nl : end) - p;
		char *line;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0 && memchr(p, '\0', len) == NULL) {
			line = fuzz_strndup(p, len);
			one_line(line);
			free(line);
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}
