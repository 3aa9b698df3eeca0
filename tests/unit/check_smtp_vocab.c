/*
 * check_smtp_vocab.c: the inbound SMTP vocabulary shared by the daemon
 * and sesrelay-sendmail -bs, row by row: which verb runs in which state,
 * and what every other command is told.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "smtp_vocab.h"
#include "fixture.h"

#define RUN	NULL	/* the handler runs */

static const struct {
	const char	*line;
	enum smtp_state	 st;
	const char	*reply;		/* RUN: none */
} rows[] = {
	{ "EHLO client", SMTP_STATE_INIT, RUN },
	{ "ehlo client", SMTP_STATE_RCPT, RUN },
	{ "HELO client", SMTP_STATE_MAIL, RUN },
	{ "EHLO", SMTP_STATE_INIT, "501 5.5.4 Syntax: EHLO hostname" },
	{ "HELO", SMTP_STATE_HELO, "501 5.5.4 Syntax: HELO hostname" },
	{ "MAIL FROM:<a@b>", SMTP_STATE_INIT, RUN },
	{ "MAIL FROM:<a@b>", SMTP_STATE_HELO, RUN },
	{ "MAIL FROM:<a@b>", SMTP_STATE_MAIL,
	  "503 5.5.1 Error: nested MAIL command" },
	{ "MAIL FROM:<a@b>", SMTP_STATE_RCPT,
	  "503 5.5.1 Error: nested MAIL command" },
	{ "RCPT TO:<a@b>", SMTP_STATE_HELO,
	  "503 5.5.1 Error: need MAIL command" },
	{ "RCPT TO:<a@b>", SMTP_STATE_MAIL, RUN },
	{ "RCPT TO:<a@b>", SMTP_STATE_RCPT, RUN },
	{ "DATA", SMTP_STATE_RCPT, RUN },
	{ "DATA", SMTP_STATE_MAIL, "554 5.5.1 Error: no valid recipients" },
	{ "DATA", SMTP_STATE_INIT, "503 5.5.1 Error: need RCPT command" },
	{ "DATA x", SMTP_STATE_INIT, "501 5.5.4 Syntax: DATA" },
	{ "DATA x", SMTP_STATE_RCPT, "501 5.5.4 Syntax: DATA" },
	{ "RSET", SMTP_STATE_RCPT, RUN },
	{ "QUIT", SMTP_STATE_INIT, RUN },
	{ "NOOP", SMTP_STATE_MAIL, "250 2.0.0 Ok" },
	{ "VRFY root", SMTP_STATE_INIT,
	  "252 2.5.2 Cannot VRFY user, but will accept message" },
	{ "HELP", SMTP_STATE_HELO, "214 2.0.0 Commands: EHLO HELO MAIL RCPT "
	  "DATA RSET NOOP QUIT VRFY HELP" },
	{ "STARTTLS", SMTP_STATE_HELO,
	  "502 5.5.1 Error: STARTTLS not offered on somewhere" },
	{ "auth PLAIN xyz", SMTP_STATE_INIT,
	  "502 5.5.1 Error: auth not offered on somewhere" },
	{ "", SMTP_STATE_HELO, "500 5.5.2 Error: empty command" },
	{ "ETRN x", SMTP_STATE_HELO, "500 5.5.2 Error: command not "
	  "recognized" },
};

START_TEST(test_row)
{
	struct smtp_command cmd;
	char reply[SMTP_REPLY_MAX];
	int run = smtp_vocab_decide(rows[_i].line, rows[_i].st, "somewhere",
	    &cmd, reply);

	if (rows[_i].reply == RUN)
		ck_assert_int_eq(run, 1);
	else {
		ck_assert_int_eq(run, 0);
		ck_assert_str_eq(reply, rows[_i].reply);
	}
}
END_TEST

START_TEST(test_line)
{
	ck_assert_ptr_null(smtp_vocab_line_refusal("NOOP", 4));
	ck_assert_str_eq(smtp_vocab_line_refusal("NO\0OP", 5),
	    "500 5.5.2 Error: NUL character in command");
	ck_assert_str_eq(smtp_vocab_line_refusal("NOOP\r", 5),
	    "500 5.5.2 Error: bare <CR> in command");
}
END_TEST

START_TEST(test_ehlo)
{
	char reply[SMTP_EHLO_MAX];

	smtp_vocab_ehlo(0, "relay.test", 100, reply);
	ck_assert_str_eq(reply, "250 relay.test");
	smtp_vocab_ehlo(1, "relay.test", 100, reply);
	ck_assert_str_eq(reply, "250-relay.test\r\n250-PIPELINING\r\n"
	    "250-SIZE 100\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250 HELP");
}
END_TEST

START_TEST(test_paths_and_params)
{
	char reply[SMTP_REPLY_MAX], param[200];

	ck_assert_int_eq(smtp_vocab_path_refusal(SMTP_PATH_SYNTAX,
	    "MAIL FROM:<address>", reply), 501);
	ck_assert_str_eq(reply, "501 5.5.4 Syntax: MAIL FROM:<address>");
	ck_assert_int_eq(smtp_vocab_path_refusal(SMTP_PATH_NON_ASCII, "x",
	    reply), 553);
	ck_assert_str_eq(reply, "553 5.6.7 Error: non-ASCII local part; "
	    "Amazon SES accepts 7-bit addresses only (a domain may be "
	    "internationalised)");
	ck_assert_int_eq(smtp_vocab_bad_param("X=1 Y=2", reply), 555);
	ck_assert_str_eq(reply, "555 5.5.4 Error: unsupported parameter "
	    "\"X=1\"");
	memset(param, 'A', sizeof(param) - 1);
	param[sizeof(param) - 1] = '\0';
	smtp_vocab_bad_param(param, reply);
	ck_assert_uint_eq(strlen(reply), strlen("555 5.5.4 Error: "
	    "unsupported parameter \"\"") + 64 + 3);
}
END_TEST

START_TEST(test_mail)
{
	char addr[SMTP_ADDR_MAX], reply[SMTP_REPLY_MAX];
	struct smtp_mail_params p;

	ck_assert_int_eq(smtp_vocab_mail("FROM:<a@b> SIZE=10 BODY=8BITMIME",
	    10, addr, &p, reply), 1);
	ck_assert_str_eq(addr, "a@b");
	ck_assert_int_eq(p.size, 10);
	ck_assert_int_eq(p.body_8bit, 1);
	ck_assert_int_eq(smtp_vocab_mail("FROM:<a@b> SIZE=11", 10, addr, &p,
	    reply), 0);
	ck_assert_str_eq(reply, "552 5.3.4 Error: message size exceeds the "
	    "limit of 10 bytes");
	ck_assert_int_eq(smtp_vocab_mail("FROM:<a@b> X=1", 10, addr, &p,
	    reply), 0);
	ck_assert_str_eq(reply, "555 5.5.4 Error: unsupported parameter "
	    "\"X=1\"");
	ck_assert_int_eq(smtp_vocab_mail("FROM:<a@b", 10, addr, &p, reply), 0);
	ck_assert_str_eq(reply, "501 5.5.4 Syntax: MAIL FROM:<address>");
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(smtp_state_name(SMTP_STATE_INIT), "init");
	ck_assert_str_eq(smtp_state_name(SMTP_STATE_LINGER), "linger");
}
END_TEST

static Suite *
smtp_vocab_suite(void)
{
	Suite *s = suite_create("smtp_vocab");
	TCase *tc = tcase_create("rows");

	tcase_add_loop_test(tc, test_row, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_line);
	tcase_add_test(tc, test_ehlo);
	tcase_add_test(tc, test_paths_and_params);
	tcase_add_test(tc, test_mail);
	tcase_add_test(tc, test_state_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(smtp_vocab_suite());
}
