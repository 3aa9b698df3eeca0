/*
 * check_log.c: the log line's format (log.h): the quoting of a value,
 * row by row, and whole lines as log_event writes them to stderr.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"

static const struct {
	const char *in;
	const char *out;
} quote_cases[] = {
	{ "abc", "abc" },
	{ "<a@b.example>", "<a@b.example>" },
	{ "k=v", "k=v" },
	{ "", "\"\"" },
	{ "two words", "\"two words\"" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "line\nforged x=1", "\"line\\nforged x=1\"" },
	{ "cr\rtab\t", "\"cr\\rtab\\t\"" },
	{ "bell\a esc\x1b del\x7f", "\"bell\\x07 esc\\x1b del\\x7f\"" },
	{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },			/* UTF-8 kept */
	{ "\xe2\x82\xac \xf0\x9f\x93\xa7", "\"\xe2\x82\xac \xf0\x9f\x93\xa7\"" },
	{ "bad\xff", "\"bad\\xff\"" },				/* not UTF-8 */
	{ "cut\xc3", "\"cut\\xc3\"" },				/* cut short */
	{ "over\xc0\xaf", "\"over\\xc0\\xaf\"" },		/* overlong */
	{ "surr\xed\xa0\x80", "\"surr\\xed\\xa0\\x80\"" },	/* surrogate */
};

START_TEST(test_quote)
{
	char buf[256];

	ck_assert_str_eq(log_quote(buf, sizeof(buf), quote_cases[_i].in),
	    quote_cases[_i].out);
}
END_TEST

/* A value too long for the buffer is cut, quoted, and says so. */
START_TEST(test_quote_cut)
{
	char buf[16];

	ck_assert_str_eq(log_quote(buf, sizeof(buf),
	    "abcdefghijklmnopqrstuvwxyz"), "\"abcdefghij...\"");
	/* An escape is never cut in half. */
	ck_assert_str_eq(log_quote(buf, sizeof(buf), "abcdefghi\nxyz"),
	    "\"abcdefghi...\"");
	ck_assert_str_eq(log_quote(buf, sizeof(buf), "abc\ndef"),
	    "\"abc\\ndef\"");
}
END_TEST

START_TEST(test_q_and_qa)
{
	ck_assert_str_eq(log_q(NULL), "-");
	ck_assert_str_eq(log_qa("a@b"), "<a@b>");
	ck_assert_str_eq(log_qa(""), "<>");
	ck_assert_str_eq(log_qa("\"a b\"@c"), "\"<\\\"a b\\\"@c>\"");
}
END_TEST

/* Run fn with stderr into a file; the bytes written, without the stamp. */
static char *
capture(void (*fn)(void))
{
	FILE *f = tmpfile();
	static char out[4096];
	int saved = dup(STDERR_FILENO);
	size_t n;
	char *p;

	ck_assert_ptr_nonnull(f);
	dup2(fileno(f), STDERR_FILENO);
	log_init(1, 0, "check_log");
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	p = strstr(out, "check_log: ");
	ck_assert_ptr_nonnull(p);
	return p + strlen("check_log: ");
}

static void
lines_event(void)
{
	log_event(LOG_INFO, "0123456789abcdef", "smtp.accepted",
	    "from=%s nrcpt=%d", log_qa("a@b"), 2);
	log_event(LOG_DEBUG, "-", "smtp.connect", "client=%s", "x");
	errno = ENOENT;
	log_event(LOG_WARNING | LOG_ERRNO, "-", "spool.wake_failed", "op=%s",
	    "read");
}

START_TEST(test_event_lines)
{
	const char *out = capture(lines_event);

	ck_assert_ptr_nonnull(strstr(out, "0123456789abcdef smtp.accepted "
	    "from=<a@b> nrcpt=2\n"));
	ck_assert_ptr_null(strstr(out, "smtp.connect"));	/* not verbose */
	ck_assert_ptr_nonnull(strstr(out, " - spool.wake_failed op=read "
	    "error=\"No such file or directory\"\n"));
}
END_TEST

static void
lines_forged(void)
{
	/* A caller's bug: a raw value.  Still one line. */
	log_event(LOG_INFO, "-", "smtp.refused", "client=%s",
	    "x\n- smtp.accepted y=1");
}

START_TEST(test_event_never_two_lines)
{
	const char *out = capture(lines_forged);

	ck_assert_str_eq(out, "- smtp.refused client=x?- smtp.accepted y=1\n");
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("quote");

	tcase_add_loop_test(tc, test_quote, 0,
	    sizeof(quote_cases) / sizeof(quote_cases[0]));
	tcase_add_test(tc, test_quote_cut);
	tcase_add_test(tc, test_q_and_qa);
	suite_add_tcase(s, tc);
	tc = tcase_create("event");
	tcase_add_test(tc, test_event_lines);
	tcase_add_test(tc, test_event_never_two_lines);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(log_suite());
}
