/*
 * check_sendmail_args.c: the sendmail command line as real programs
 * write it (cron, PHP, mutt, git send-email, ...), every field checked.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail_args.h"

#define MAXARGS	16

static const struct {
	const char		*who;
	const char		*argv[MAXARGS];	/* NULL-terminated */
	enum sendmail_mode	 mode;
	int			 extract, ignore_dots, verbose;
	const char		*sender, *fullname, *config;
	const char		*rcpts[4];	/* NULL-terminated */
} ok_cases[] = {
	{ "cron", { "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	  "root", NULL }, SENDMAIL_MODE_SEND, 0, 1, 0, NULL, "CronDaemon", NULL,
	  { "root", NULL } },
	{ "php", { "/usr/sbin/sendmail", "-t", "-i", NULL }, SENDMAIL_MODE_SEND,
	  1, 1, 0, NULL, NULL, NULL, { NULL } },
	{ "php -f", { "sendmail", "-t", "-i", "-f", "bounce@x", NULL },
	  SENDMAIL_MODE_SEND, 1, 1, 0, "bounce@x", NULL, NULL, { NULL } },
	{ "--", { "sendmail", "-oi", "-f", "a@b", "--", "rcpt@x", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, "a@b", NULL, NULL, { "rcpt@x", NULL } },
	{ "mutt", { "/usr/sbin/sendmail", "-oem", "-oi", "--", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-fa@b", { "sendmail", "-fa@b", "x@y", "z@w", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, "a@b", NULL, NULL,
	  { "x@y", "z@w", NULL } },
	{ "-r", { "sendmail", "-r", "r@b", "x@y", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, "r@b", NULL, NULL, { "x@y", NULL } },
	{ "-F name", { "sendmail", "-F", "Full Name", "-t", NULL },
	  SENDMAIL_MODE_SEND, 1, 0, 0, NULL, "Full Name", NULL, { NULL } },
	{ "-C", { "sendmail", "-C", "/tmp/x.conf", "-v", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 1, NULL, NULL, "/tmp/x.conf",
	  { "a@b", NULL } },
	{ "-C attached", { "sendmail", "-C/tmp/y.conf", "-t", NULL },
	  SENDMAIL_MODE_SEND, 1, 0, 0, NULL, NULL, "/tmp/y.conf", { NULL } },
	{ "git", { "sendmail", "-i", "a@b", "c@d", NULL }, SENDMAIL_MODE_SEND,
	  0, 1, 0, NULL, NULL, NULL, { "a@b", "c@d", NULL } },
	{ "compat", { "sendmail", "-odi", "-odb", "-oep", "-oee", "-om",
	  "-N", "never", "-R", "hdrs", "-bm", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "operand stops options", { "sendmail", "a@b", "-t", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL,
	  { "a@b", "-t", NULL } },
	{ "mailq", { "mailq", NULL }, SENDMAIL_MODE_MAILQ, 0, 0, 0, NULL, NULL,
	  NULL, { NULL } },
	{ "/usr/bin/mailq", { "/usr/bin/mailq", "-v", NULL },
	  SENDMAIL_MODE_MAILQ, 0, 0, 1, NULL, NULL, NULL, { NULL } },
	{ "newaliases", { "/usr/bin/newaliases", NULL },
	  SENDMAIL_MODE_NEWALIASES, 0, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "-bp", { "sendmail", "-bp", NULL }, SENDMAIL_MODE_MAILQ, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "-bi", { "sendmail", "-bi", NULL }, SENDMAIL_MODE_NEWALIASES, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "--version", { "sendmail", "--version", NULL }, SENDMAIL_MODE_VERSION,
	  0, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "-f \"\"", { "sendmail", "-f", "", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, "", NULL, NULL, { "a@b", NULL } },
};

static int
argc_of(const char *const *argv)
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

START_TEST(test_ok)
{
	struct sendmail_args a;
	int argc = argc_of(ok_cases[_i].argv);
	size_t n = 0;
	const char *who = ok_cases[_i].who;

	ck_assert_msg(sendmail_args_parse(argc,
	    (char *const *)ok_cases[_i].argv, &a) == 0, "%s: %s", who, a.error);
	ck_assert_msg(a.mode == ok_cases[_i].mode, "%s: mode %d", who, a.mode);
	ck_assert_msg(a.extract == ok_cases[_i].extract, "%s: extract", who);
	ck_assert_msg(a.ignore_dots == ok_cases[_i].ignore_dots,
	    "%s: ignore_dots", who);
	ck_assert_msg(a.verbose == ok_cases[_i].verbose, "%s: verbose", who);
	ck_assert_pstr_eq(a.sender, ok_cases[_i].sender);
	ck_assert_pstr_eq(a.fullname, ok_cases[_i].fullname);
	ck_assert_pstr_eq(a.config, ok_cases[_i].config);
	while (ok_cases[_i].rcpts[n] != NULL)
		n++;
	ck_assert_msg(a.nrcpt == n, "%s: %zu recipients, want %zu", who,
	    a.nrcpt, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(a.rcpts[i], ok_cases[_i].rcpts[i]);
	/* The recipients are argv's own strings, not copies. */
	if (n > 0)
		ck_assert_ptr_eq(a.rcpts + n, ok_cases[_i].argv + argc);
	ck_assert_str_eq(a.error, "");
}
END_TEST

static const struct {
	const char	*argv[MAXARGS];
	const char	*error;		/* the message must contain this */
} bad_cases[] = {
	{ { "sendmail", "-Z", "a@b", NULL }, "-Z" },
	{ { "sendmail", "-t", "-Zfoo", NULL }, "-Zfoo" },
	{ { "sendmail", "-bs", NULL }, "-bs" },
	{ { "sendmail", "-f", NULL }, "-f" },
	{ { "sendmail", "-t", "-F", NULL }, "-F" },
	{ { "sendmail", "-C", NULL }, "-C" },
	{ { "sendmail", "-i", NULL }, "no recipients" },
	{ { "sendmail", NULL }, "no recipients" },
	{ { "sendmail", "-f", "a@b", "--", NULL }, "no recipients" },
	{ { "sendmail", "-bm", NULL }, "no recipients" },
};

START_TEST(test_bad)
{
	struct sendmail_args a;
	const char *const *argv = bad_cases[_i].argv;

	ck_assert_int_eq(sendmail_args_parse(argc_of(argv), (char *const *)argv,
	    &a), -1);
	ck_assert_msg(strstr(a.error, bad_cases[_i].error) != NULL,
	    "case %d: \"%s\" does not name \"%s\"", _i, a.error,
	    bad_cases[_i].error);
}
END_TEST

START_TEST(test_unknown_names_option)
{
	static const char *const argv[] = { "sendmail", "-Z", "a@b", NULL };
	struct sendmail_args a;

	ck_assert_int_eq(sendmail_args_parse(3, (char *const *)argv, &a), -1);
	ck_assert_str_eq(a.error, "unknown option -Z");
}
END_TEST

/*
 * Regression (fixed): sendmail_args.c:84,123-124 (sendmail_args_parse): with argc == 0
 * (execve with an empty argv, which Linux still allows) the option loop
 * starts at i = 1, so nrcpt = (size_t)(0 - 1) = SIZE_MAX and rcpts =
 * argv + 1, past argv's NULL into the environment; the check "no
 * recipients" passes and sesrelay-sendmail then reads envp (and beyond)
 * as recipients.  Fix: start at i = argc > 0 ? 1 : 0 (or clamp i to
 * argc before computing nrcpt).
 */
START_TEST(test_no_argv)
{
	static const char *const argv[] = { NULL };
	struct sendmail_args a;

	/* argc 0: the default name, sendmail, and so no recipients. */
	ck_assert_int_eq(sendmail_args_parse(0, (char *const *)argv, &a), -1);
	ck_assert_ptr_nonnull(strstr(a.error, "no recipients"));
}
END_TEST

static Suite *
sendmail_args_suite(void)
{
	Suite *s = suite_create("sendmail_args");
	TCase *tc = tcase_create("parse");


	tcase_add_loop_test(tc, test_ok, 0,
	    sizeof(ok_cases) / sizeof(ok_cases[0]));
	tcase_add_loop_test(tc, test_bad, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_unknown_names_option);
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_test(tc, test_no_argv);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sendmail_args_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
