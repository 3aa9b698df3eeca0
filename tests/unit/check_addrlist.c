/*
 * check_addrlist.c: RFC 5322 address lists and the sendmail -t header
 * walk (To/Cc/Bcc collected, Bcc removed from what is sent).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "fixture.h"

#define MAXA	4

static void
assert_list(const struct addrlist *l, const char *const *want,
    const char *what)
{
	size_t n = 0;

	while (n < MAXA && want[n] != NULL)
		n++;
	ck_assert_msg(l->n == n, "\"%s\": %zu addresses, want %zu%s%s", what,
	    l->n, n, l->n ? ", first " : "", l->n ? l->v[0] : "");
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(l->v[i], want[i]) == 0,
		    "\"%s\": address %zu is \"%s\", want \"%s\"", what, i,
		    l->v[i], want[i]);
}

/* ---- addrlist_parse ---- */

static const struct {
	const char	*value;
	const char	*want[MAXA + 1];
} parse_cases[] = {
	{ "a@b", { "a@b" } },
	{ "A <a@b>", { "a@b" } },
	{ "\"Doe, John\" <j@d>", { "j@d" } },
	{ "a@b (comment, with comma)", { "a@b" } },
	{ "x@y, Name <z@w>", { "x@y", "z@w" } },
	{ "undisclosed-recipients:;", { NULL } },
	{ "team: a@b, c@d;, e@f", { "a@b", "c@d", "e@f" } },
	{ "", { NULL } },
	{ "   ", { NULL } },
	{ "  a@b  ,  , c@d ", { "a@b", "c@d" } },
	{ "(only a comment)", { NULL } },
	{ "Display Name Only", { NULL } },
	{ "<a@b>,<c@d>", { "a@b", "c@d" } },
	{ "\"quoted <not@addr>, x\" <real@x>", { "real@x" } },
	{ "\"a \\\" b, c\" <x@y>", { "x@y" } },
	{ "a@b (nested (comment, x) here), c@d", { "a@b", "c@d" } },
	{ "Name <a@b> (comment, x), \"N2\" <c@d>", { "a@b", "c@d" } },
	{ "Name (c) <a@b>", { "a@b" } },
	{ "Mary Smith <mary@x.test>, jdoe@one.test, Who? <one@y.test>",
	  { "mary@x.test", "jdoe@one.test", "one@y.test" } },
	{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	  { "c@a.test", "joe@where.test", "jdoe@one.test" } },
	{ "root", { "root" } },
};

START_TEST(test_parse)
{
	struct addrlist l = { NULL, 0 };
	size_t added = addrlist_parse(parse_cases[_i].value, &l);

	ck_assert_uint_eq(added, l.n);
	assert_list(&l, parse_cases[_i].want, parse_cases[_i].value);
	addrlist_free(&l);
	ck_assert_ptr_null(l.v);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

START_TEST(test_parse_appends)
{
	static const char *const want[] = { "first@x", "a@b", "c@d", NULL };
	struct addrlist l = { NULL, 0 };

	addrlist_add(&l, "first@x");
	ck_assert_uint_eq(addrlist_parse("A <a@b>, c@d", &l), 2);
	assert_list(&l, want, "append");
	ck_assert_uint_eq(addrlist_parse("undisclosed-recipients:;", &l), 0);
	ck_assert_uint_eq(l.n, 3);
	addrlist_free(&l);
}
END_TEST

/*
 * Regression (fixed): addrlist.c:74-95 (addrlist_parse) drops a quoted string outside
 * angle brackets as if it were a display name, so the valid bare address
 * "\"john smith\"@example.org" (RFC 5322 quoted local part) comes out as
 * "@example.org" and the recipient is lost.  Fix: keep quoted text in
 * the bare buffer (with its quotes) and only treat it as a display name
 * when an angle address follows; do not apply the "phrase with spaces"
 * rule inside quotes.
 */
START_TEST(test_parse_quoted_local_part)
{
	static const char *const want[] = { "\"john smith\"@example.org",
	    NULL };
	struct addrlist l = { NULL, 0 };

	addrlist_parse("\"john smith\"@example.org", &l);
	assert_list(&l, want, "quoted local part");
	addrlist_free(&l);
}
END_TEST

/* ---- addrlist_from_header ---- */

static const struct {
	const char	*hdr;
	int		 rc;
	const char	*want[MAXA + 1];
	const char	*kept;		/* NULL: identical to hdr */
} header_cases[] = {
	{ "From: me@x\r\nTo: a@b, B <b@c>\r\nCc: c@d\r\nBcc: secret@e\r\n"
	  "Subject: hi\r\n", 0, { "a@b", "b@c", "c@d", "secret@e" },
	  "From: me@x\r\nTo: a@b, B <b@c>\r\nCc: c@d\r\nSubject: hi\r\n" },
	{ "From: me@x\nTo: a@b, B <b@c>\nCc: c@d\nBcc: secret@e\n"
	  "Subject: hi\n", 0, { "a@b", "b@c", "c@d", "secret@e" },
	  "From: me@x\nTo: a@b, B <b@c>\nCc: c@d\nSubject: hi\n" },
	{ "TO: a@b\ncc: c@d\nBCC: e@f\nbcc: g@h\n", 0,
	  { "a@b", "c@d", "e@f", "g@h" }, "TO: a@b\ncc: c@d\n" },
	{ "To: a@b,\r\n\tB <b@c>,\r\n c@d\r\nSubject: x\r\n", 0,
	  { "a@b", "b@c", "c@d" }, NULL },
	{ "Bcc: x@y,\r\n z@w\r\nSubject: s\r\n", 0, { "x@y", "z@w" },
	  "Subject: s\r\n" },
	{ "Subject: folded\r\n subject\r\nBcc: x@y\r\nX-Y: z\r\n", 0,
	  { "x@y" }, "Subject: folded\r\n subject\r\nX-Y: z\r\n" },
	{ "Resent-To: x@y\nToken: z\nCcx: q@r\nX-To: w@v\n", 0, { NULL },
	  NULL },
	{ "To: undisclosed-recipients:;\r\n", 0, { NULL }, NULL },
	{ "To: a@b", 0, { "a@b" }, NULL },
	{ "To:a@b\nCc:\n", 0, { "a@b" }, NULL },
	{ "", 0, { NULL }, NULL },
	{ "This is not a header\r\nTo: a@b\r\n", -1, { NULL }, NULL },
	{ "Hello,\nworld\n", -1, { NULL }, NULL },
	{ ": no name\n", -1, { NULL }, NULL },
	{ "To: a@b\nno colon here\n", -1, { NULL }, NULL },
};

START_TEST(test_from_header)
{
	const char *hdr = header_cases[_i].hdr;
	const char *want_kept = header_cases[_i].kept ? header_cases[_i].kept :
	    hdr;
	struct addrlist l = { NULL, 0 };
	char *kept = NULL;
	size_t keptlen = 12345;
	int rc;

	rc = addrlist_from_header(hdr, strlen(hdr), &l, &kept, &keptlen);
	ck_assert_msg(rc == header_cases[_i].rc, "case %d: rc %d", _i, rc);
	if (rc == 0) {
		assert_list(&l, header_cases[_i].want, hdr);
		ck_assert_ptr_nonnull(kept);
		ck_assert_uint_eq(keptlen, strlen(want_kept));
		ck_assert_mem_eq(kept, want_kept, keptlen);
		ck_assert_int_eq(kept[keptlen], '\0');
	}
	free(kept);
	addrlist_free(&l);
}
END_TEST

START_TEST(test_from_header_not_nul_terminated)
{
	/* The block is len bytes of a larger buffer: nothing after is read. */
	static const char buf[] = "To: a@b\r\nCc: c@d\r\nTo: never@x\r\n";
	static const char *const want[] = { "a@b", NULL };
	struct addrlist l = { NULL, 0 };
	char *kept;
	size_t keptlen;

	ck_assert_int_eq(addrlist_from_header(buf, 9, &l, &kept, &keptlen), 0);
	assert_list(&l, want, "first 9 bytes");
	ck_assert_uint_eq(keptlen, 9);
	ck_assert_str_eq(kept, "To: a@b\r\n");
	free(kept);
	addrlist_free(&l);
}
END_TEST

/*
 * Regression (fixed): addrlist.c:157-160 (addrlist_from_header) is documented to walk
 * the header "up to the blank line", but treats the blank line as a
 * field without a colon and returns -1.  sesrelay-sendmail.c read_header()
 * passes the block including that blank line, so "sendmail -t" (PHP's
 * default) refuses every message that has a body ("-t: the message does
 * not start with a header", exit 65).  Fix: when a line is "\n" or
 * "\r\n", copy it (and anything after it) to kept unchanged and stop.
 */
START_TEST(test_from_header_stops_at_blank_line)
{
	static const char *const hdrs[] = {
		"To: a@b\r\nBcc: c@d\r\nSubject: x\r\n\r\n",
		"To: a@b\nBcc: c@d\nSubject: x\n\n",
	};
	static const char *const kepts[] = {
		"To: a@b\r\nSubject: x\r\n\r\n",
		"To: a@b\nSubject: x\n\n",
	};
	static const char *const want[] = { "a@b", "c@d", NULL };

	for (size_t i = 0; i < 2; i++) {
		struct addrlist l = { NULL, 0 };
		char *kept = NULL;
		size_t keptlen = 0;

		ck_assert_msg(addrlist_from_header(hdrs[i], strlen(hdrs[i]), &l,
		    &kept, &keptlen) == 0, "a header block ending in its "
		    "blank line (%s) is refused", i ? "LF" : "CRLF");
		assert_list(&l, want, hdrs[i]);
		ck_assert_uint_eq(keptlen, strlen(kepts[i]));
		ck_assert_mem_eq(kept, kepts[i], keptlen);
		free(kept);
		addrlist_free(&l);
	}
}
END_TEST

static Suite *
addrlist_suite(void)
{
	Suite *s = suite_create("addrlist");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse, 0,
	    sizeof(parse_cases) / sizeof(parse_cases[0]));
	tcase_add_test(tc, test_parse_appends);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_loop_test(tc, test_from_header, 0,
	    sizeof(header_cases) / sizeof(header_cases[0]));
	tcase_add_test(tc, test_from_header_not_nul_terminated);
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_test(tc, test_parse_quoted_local_part);
	tcase_add_test(tc, test_from_header_stops_at_blank_line);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(addrlist_suite());
}
