/*
 * check_rcpt_rule.c: the recipient rule every way into the spool applies
 * (SMTP RCPT, sesrelay-sendmail's maildrop, pickup), row by row: the
 * reply for each kind of address, the limit, aliases and duplicates.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "rcpt_rule.h"
#include "fixture.h"

static const struct {
	const char	*arg;
	int		 code;
	const char	*reply;		/* its start */
	const char	*added;		/* NULL: none */
} rows[] = {
	{ "TO:<a@example.com>", 250, "250 2.1.5 ", "a@example.com" },
	{ "TO: <a@example.com>", 250, "250 ", "a@example.com" },
	{ "TO:a@example.com", 250, "250 ", "a@example.com" },
	{ "TO:<a@b\xc3\xa9.example>", 250, "250 ", "a@xn--b-bga.example" },
	{ "TO:<j\xc3\xb6rg@example.com>", 553, "553 5.6.7 ", NULL },
	{ "TO:<a@-bad\xc3\xa9.example>", 553, "553 5.1.2 ", NULL },
	{ "TO:<>", 501, "501 5.5.4 ", NULL },
	{ "TO:<a@example.com", 501, "501 5.5.4 ", NULL },
	{ "FROM:<a@example.com>", 501, "501 5.5.4 ", NULL },
	{ "TO:<a@example.com> NOTIFY=NEVER", 555, "555 5.5.4 ", NULL },
};

START_TEST(test_row)
{
	const struct rcpt_rule rule = { NULL, 100 };
	char reply[RCPT_RULE_REPLY_MAX], **rcpts = NULL;
	size_t n = 0;
	int code = rcpt_rule_apply(&rule, rows[_i].arg, &rcpts, &n, reply);

	ck_assert_int_eq(code, rows[_i].code);
	ck_assert_msg(strncmp(reply, rows[_i].reply, strlen(rows[_i].reply))
	    == 0, "%s: %s", rows[_i].arg, reply);
	ck_assert_uint_eq(n, rows[_i].added != NULL);
	if (rows[_i].added != NULL)
		ck_assert_str_eq(rcpts[0], rows[_i].added);
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
}
END_TEST

/* Longer than RFC 5321's 256: refused, whatever the path. */
START_TEST(test_too_long)
{
	const struct rcpt_rule rule = { NULL, 100 };
	char reply[RCPT_RULE_REPLY_MAX], addr[5100], **rcpts = NULL;
	size_t n = 0;

	memset(addr, 'a', 5000);
	strcpy(addr + 5000, "@example.com");
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, addr, &rcpts, &n,
	    reply), 501);
	ck_assert_str_eq(reply, "501 5.1.3 Error: address too long");
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* The limit counts what was taken; the one past it gets 452. */
START_TEST(test_limit_and_duplicates)
{
	const struct rcpt_rule rule = { NULL, 2 };
	char reply[RCPT_RULE_REPLY_MAX], **rcpts = NULL;
	size_t n = 0;

	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "a@x.example", &rcpts,
	    &n, reply), 250);
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "A@x.example", &rcpts,
	    &n, reply), 250);
	ck_assert_uint_eq(n, 1);	/* the same address: once */
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "b@x.example", &rcpts,
	    &n, reply), 250);
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "c@x.example", &rcpts,
	    &n, reply), 452);
	ck_assert_str_eq(reply, "452 4.5.3 Error: too many recipients");
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
}
END_TEST

/* Local recipients: through rewrite.admin, or refused without it. */
START_TEST(test_local)
{
	struct cleanup_config cc = { .enable = 1, .hostname = "host.example",
	    .sender = "", .admin = "", .aliases = "", .sender_map = "" };
	char reply[RCPT_RULE_REPLY_MAX], err[256], **rcpts = NULL;
	struct cleanup *c = cleanup_new(&cc, err, sizeof(err));
	struct rcpt_rule rule = { c, 10 };
	size_t n = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "root", &rcpts, &n,
	    reply), 550);
	ck_assert_msg(strncmp(reply, "550 5.1.1 <root>: ", 18) == 0, "%s",
	    reply);
	cleanup_free(c);
	cc.admin = "ops@example.com";
	c = cleanup_new(&cc, err, sizeof(err));
	rule.cleanup = c;
	ck_assert_int_eq(rcpt_rule_apply_addr(&rule, "root@localhost",
	    &rcpts, &n, reply), 250);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(rcpts[0], "ops@example.com");
	free(rcpts[0]);
	free(rcpts);
	cleanup_free(c);
}
END_TEST

static Suite *
rcpt_rule_suite(void)
{
	Suite *s = suite_create("rcpt_rule");
	TCase *tc = tcase_create("rows");

	tcase_add_loop_test(tc, test_row, 0, sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_limit_and_duplicates);
	tcase_add_test(tc, test_local);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(rcpt_rule_suite());
}
