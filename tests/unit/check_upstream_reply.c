/*
 * check_upstream_reply.c: reading SES's replies, with the wire text SES
 * has been seen to send (ses-facts.md §3).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_reply.h"
#include "fixture.h"

/* Feed lines; returns the result of the last one. */
static int
feed_lines(struct upstream_reply *r, const char *const *lines, size_t n)
{
	int rc = UPSTREAM_REPLY_BAD;

	upstream_reply_init(r);
	for (size_t i = 0; i < n; i++) {
		rc = upstream_reply_feed(r, lines[i], strlen(lines[i]));
		if (i + 1 < n)
			ck_assert_msg(rc == UPSTREAM_REPLY_MORE,
			    "line %zu \"%s\": %d", i, lines[i], rc);
	}
	return rc;
}

static int
feed1(struct upstream_reply *r, const char *line)
{
	return feed_lines(r, &line, 1);
}

/* The exact us-east-1 EHLO reply after TLS (ses-facts.md §3.2). */
static const char *const ses_ehlo[] = {
	"250-email-smtp.amazonaws.com",
	"250-8BITMIME",
	"250-STARTTLS",
	"250-AUTH PLAIN LOGIN",
	"250 Ok",
};

START_TEST(test_single_line)
{
	struct upstream_reply r;

	ck_assert_int_eq(feed1(&r, "250 Ok"), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(r.code, 250);
	ck_assert_str_eq(r.text, "Ok");
	ck_assert_uint_eq(r.len, 2);
	ck_assert_int_eq(r.lines, 1);
	ck_assert_str_eq(r.enhanced, "");
}
END_TEST

START_TEST(test_ses_ehlo)
{
	struct upstream_reply r;
	const char *params = NULL;
	char sum[128];

	ck_assert_int_eq(feed_lines(&r, ses_ehlo, 5), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(r.code, 250);
	ck_assert_int_eq(r.lines, 5);
	ck_assert_str_eq(r.text, "email-smtp.amazonaws.com\n8BITMIME\n"
	    "STARTTLS\nAUTH PLAIN LOGIN\nOk");
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "STARTTLS", &params),
	    1);
	/* No parameters: params is at the end of that line. */
	ck_assert(*params == '\n' || *params == '\0');
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "starttls", NULL), 1);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "AUTH", &params), 1);
	ck_assert_int_eq(strncmp(params, "PLAIN LOGIN\n", 12), 0);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "8BITMIME", NULL), 1);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "SIZE", NULL), 0);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "PIPELINING", NULL), 0);
	/* Prefixes of a keyword, or the host line, are not keywords. */
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "AUT", NULL), 0);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "8BIT", NULL), 0);
	ck_assert_int_eq(upstream_reply_has_keyword(&r,
	    "email-smtp.amazonaws.com", NULL), 0);
	upstream_reply_summary(&r, sum, sizeof(sum));
	ck_assert_str_eq(sum, "250 email-smtp.amazonaws.com");
}
END_TEST

START_TEST(test_old_ehlo_with_size)
{
	static const char *const old[] = { "250-email-smtp.amazonaws.com",
	    "250-8BITMIME", "250-SIZE 10485760", "250-STARTTLS",
	    "250-AUTH PLAIN LOGIN", "250 Ok" };
	struct upstream_reply r;
	const char *params;

	ck_assert_int_eq(feed_lines(&r, old, 6), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "SIZE", &params), 1);
	ck_assert_int_eq(strtol(params, NULL, 10), 10485760);
}
END_TEST

START_TEST(test_single_line_has_no_keywords)
{
	struct upstream_reply r;

	ck_assert_int_eq(feed1(&r, "250 STARTTLS"), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(upstream_reply_has_keyword(&r, "STARTTLS", NULL), 0);
}
END_TEST

/* Lines that are not SMTP replies, alone or after a first line. */
static const struct {
	const char	*first;		/* NULL: the bad line comes first */
	const char	*bad;
} bad_cases[] = {
	{ NULL, "2x0 Ok" },
	{ NULL, "x50 Ok" },
	{ NULL, "25" },
	{ NULL, "" },
	{ NULL, "250Ok" },
	{ NULL, "250_Ok" },
	{ NULL, "600 Too high" },
	{ NULL, "199 Too low" },
	{ NULL, "099 x" },
	{ "250-first", "251 other code" },
	{ "250-first", "550-other code" },
	{ "421-first", "4x1 junk" },
};

START_TEST(test_bad)
{
	struct upstream_reply r;
	const char *b = bad_cases[_i].bad;

	upstream_reply_init(&r);
	if (bad_cases[_i].first != NULL)
		ck_assert_int_eq(upstream_reply_feed(&r, bad_cases[_i].first,
		    strlen(bad_cases[_i].first)), UPSTREAM_REPLY_MORE);
	ck_assert_msg(upstream_reply_feed(&r, b, strlen(b)) ==
	    UPSTREAM_REPLY_BAD, "\"%s\" taken for a reply", b);
}
END_TEST

START_TEST(test_code_only)
{
	struct upstream_reply r;

	ck_assert_int_eq(feed1(&r, "354"), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(r.code, 354);
	ck_assert_str_eq(r.text, "");
	ck_assert_int_eq(feed1(&r, "221 Bye"), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(r.code, 221);
	ck_assert_int_eq(feed1(&r, "599 x"), UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(feed1(&r, "200 x"), UPSTREAM_REPLY_DONE);
}
END_TEST

/* A reply that never ends is refused at the line limit. */
START_TEST(test_endless_continuation)
{
	struct upstream_reply r;
	int rc = UPSTREAM_REPLY_MORE;
	int n = 0;

	upstream_reply_init(&r);
	while (rc == UPSTREAM_REPLY_MORE && n < 100000)
		rc = upstream_reply_feed(&r, "250-x", 5), n++;
	ck_assert_int_eq(rc, UPSTREAM_REPLY_TOO_LONG);
	ck_assert_int_eq(n, UPSTREAM_REPLY_MAX_LINES + 1);
}
END_TEST

/* ... and a few long lines at the byte limit, whatever the count. */
START_TEST(test_reply_too_many_bytes)
{
	struct upstream_reply r;
	char line[4001];
	int rc = UPSTREAM_REPLY_MORE;
	int n = 0;

	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "250-", 4);
	line[sizeof(line) - 1] = '\0';
	upstream_reply_init(&r);
	while (rc == UPSTREAM_REPLY_MORE && n < 100)
		rc = upstream_reply_feed(&r, line, strlen(line)), n++;
	ck_assert_int_eq(rc, UPSTREAM_REPLY_TOO_LONG);
	ck_assert_int_le(n * 4002, UPSTREAM_REPLY_MAX_BYTES + 4002);
	/* The largest reply allowed still completes. */
	upstream_reply_init(&r);
	for (n = 0; n < UPSTREAM_REPLY_MAX_LINES - 1; n++)
		ck_assert_int_eq(upstream_reply_feed(&r, "250-x", 5),
		    UPSTREAM_REPLY_MORE);
	ck_assert_int_eq(upstream_reply_feed(&r, "250 x", 5),
	    UPSTREAM_REPLY_DONE);
}
END_TEST

static const struct {
	const char	*line;
	const char	*enhanced;
} enhanced_cases[] = {
	{ "451 4.4.2 Timeout waiting for data from client.", "4.4.2" },
	{ "554 5.7.1 Email address is not verified.", "5.7.1" },
	{ "535 5.7.8 Authentication credentials invalid", "5.7.8" },
	{ "250 2.0.0 Ok", "2.0.0" },
	{ "421 4.4.2 ", "4.4.2" },
	{ "421 4.4.2", "4.4.2" },
	{ "550 5.123.456 x", "5.123.456" },
	{ "250 Ok", "" },
	{ "250 Ok 0100018c-x", "" },
	{ "235 Authentication successful.", "" },
	{ "451 4.4 x", "" },
	{ "451 4.4.2x", "" },
	{ "451 4..2 x", "" },
	{ "451 4.4.2222 x", "" },
	{ "451 .4.4 x", "" },
};

START_TEST(test_enhanced)
{
	struct upstream_reply r;

	ck_assert_int_eq(feed1(&r, enhanced_cases[_i].line),
	    UPSTREAM_REPLY_DONE);
	ck_assert_str_eq(r.enhanced, enhanced_cases[_i].enhanced);
}
END_TEST

START_TEST(test_enhanced_from_first_line_only)
{
	static const char *const lines[] = { "550-Rejected", "550 5.1.1 x" };
	struct upstream_reply r;

	ck_assert_int_eq(feed_lines(&r, lines, 2), UPSTREAM_REPLY_DONE);
	ck_assert_str_eq(r.enhanced, "");
}
END_TEST

static const struct {
	const char	*line;
	int		 rc;
	const char	*id;
} ses_id_cases[] = {
	{ "250 Ok 0100018c2c2c2c2c-71c65177-ce88-4135-9258-48c0e8bf916d-000000",
	  0, "0100018c2c2c2c2c-71c65177-ce88-4135-9258-48c0e8bf916d-000000" },
	{ "250 Ok 01010160d7de98d8-21e57d9a-JZho-416c-bbe1-8ebaAexample-000000",
	  0, "01010160d7de98d8-21e57d9a-JZho-416c-bbe1-8ebaAexample-000000" },
	{ "250 OK 0000013802d175af-x-000000 trailing words", 0,
	  "0000013802d175af-x-000000" },
	{ "250 2.0.0 Ok 0107-abc", 0, "0107-abc" },
	{ "250 Ok", -1, NULL },
	{ "250 Ok ", -1, NULL },
	{ "250 Okay 0100-x", -1, NULL },
	{ "250 Ok 0100_x", -1, NULL },
	{ "554 Transaction failed: Message rejected", -1, NULL },
	{ "554 Ok 0100-x", -1, NULL },
	{ "451 Ok 0100-x", -1, NULL },
};

START_TEST(test_ses_id)
{
	struct upstream_reply r;
	char id[128] = "untouched";
	int rc;

	ck_assert_int_eq(feed1(&r, ses_id_cases[_i].line), UPSTREAM_REPLY_DONE);
	rc = upstream_reply_ses_id(&r, id, sizeof(id));
	ck_assert_msg(rc == ses_id_cases[_i].rc, "\"%s\": rc %d",
	    ses_id_cases[_i].line, rc);
	if (rc == 0)
		ck_assert_str_eq(id, ses_id_cases[_i].id);
}
END_TEST

START_TEST(test_ses_id_too_long_for_buffer)
{
	struct upstream_reply r;
	char id[16];

	feed1(&r, "250 Ok 0100018c2c2c2c2c-71c65177-000000");
	ck_assert_int_eq(upstream_reply_ses_id(&r, id, sizeof(id)), -1);
}
END_TEST

START_TEST(test_summary)
{
	static const char *const lines[] = { "554-Transaction failed:",
	    "554 Message rejected" };
	struct upstream_reply r;
	char sum[64], small[8];

	feed_lines(&r, lines, 2);
	upstream_reply_summary(&r, sum, sizeof(sum));
	ck_assert_str_eq(sum, "554 Transaction failed:");
	upstream_reply_summary(&r, small, sizeof(small));
	ck_assert_str_eq(small, "554 Tra");
	feed1(&r, "421 4.4.2 Timeout");
	upstream_reply_summary(&r, sum, sizeof(sum));
	ck_assert_str_eq(sum, "421 4.4.2 Timeout");
}
END_TEST

START_TEST(test_overlong_truncated)
{
	static char line[3 * UPSTREAM_REPLY_TEXT];
	struct upstream_reply r;
	int i;

	/* One huge line. */
	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "554 ", 4);
	ck_assert_int_eq(feed1(&r, line), UPSTREAM_REPLY_DONE);
	ck_assert_uint_eq(r.len, UPSTREAM_REPLY_TEXT - 1);
	ck_assert_uint_eq(strlen(r.text), UPSTREAM_REPLY_TEXT - 1);

	/* Many long lines: the text stops growing, lines still count. */
	upstream_reply_init(&r);
	memcpy(line, "250-", 4);
	line[1000] = '\0';
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(upstream_reply_feed(&r, line, 1000),
		    UPSTREAM_REPLY_MORE);
	line[3] = ' ';
	ck_assert_int_eq(upstream_reply_feed(&r, line, 1000),
	    UPSTREAM_REPLY_DONE);
	ck_assert_int_eq(r.lines, 11);
	ck_assert_uint_le(r.len, UPSTREAM_REPLY_TEXT - 1);
	ck_assert_uint_eq(strlen(r.text), r.len);
	ck_assert_int_eq(r.code, 250);
}
END_TEST

static Suite *
upstream_reply_suite(void)
{
	Suite *s = suite_create("upstream_reply");
	TCase *tc;

	tc = tcase_create("feed");
	tcase_add_test(tc, test_single_line);
	tcase_add_test(tc, test_ses_ehlo);
	tcase_add_test(tc, test_old_ehlo_with_size);
	tcase_add_test(tc, test_single_line_has_no_keywords);
	tcase_add_loop_test(tc, test_bad, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_code_only);
	tcase_add_test(tc, test_endless_continuation);
	tcase_add_test(tc, test_reply_too_many_bytes);
	tcase_add_test(tc, test_overlong_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_loop_test(tc, test_enhanced, 0,
	    sizeof(enhanced_cases) / sizeof(enhanced_cases[0]));
	tcase_add_test(tc, test_enhanced_from_first_line_only);
	tcase_add_loop_test(tc, test_ses_id, 0,
	    sizeof(ses_id_cases) / sizeof(ses_id_cases[0]));
	tcase_add_test(tc, test_ses_id_too_long_for_buffer);
	tcase_add_test(tc, test_summary);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(upstream_reply_suite());
}
