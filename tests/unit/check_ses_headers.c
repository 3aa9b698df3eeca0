/*
 * check_ses_headers.c: X-SES-CONFIGURATION-SET and X-SES-MESSAGE-TAGS
 * from the defaults and the per-sender map; a message's own win.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ses_headers.h"
#include "fixture.h"

static char *const tags[] = { "app=cron", "env=prod" };

static const char *const map =
    "# per sender\n"
    "billing@example.com: billing-events kind=invoice\n"
    "  @example.org:   marketing\n"
    "quiet@example.com: -\n"
    "\n"
    "tagsonly@example.com: kind=alert team=ops\n";

static struct ses_headers *
load(void)
{
	char err[256] = "";
	struct ses_headers *h = ses_headers_parse("default-set", tags, 2, map,
	    "map", err, sizeof(err));

	ck_assert_msg(h != NULL, "%s", err);
	return h;
}

static const char hdr[] = "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n";

START_TEST(test_defaults)
{
	struct ses_headers *h = load();
	char out[512];
	size_t n = ses_headers_for(h, "someone@example.net", hdr,
	    sizeof(hdr) - 1, out, sizeof(out));

	ck_assert_str_eq(out, "X-SES-CONFIGURATION-SET: default-set\r\n"
	    "X-SES-MESSAGE-TAGS: app=cron, env=prod\r\n");
	ck_assert_uint_eq(n, strlen(out));
	ses_headers_free(h);
}
END_TEST

START_TEST(test_per_sender_and_domain)
{
	struct ses_headers *h = load();
	char out[512];

	ses_headers_for(h, "Billing@Example.com", hdr, sizeof(hdr) - 1, out,
	    sizeof(out));
	ck_assert_str_eq(out, "X-SES-CONFIGURATION-SET: billing-events\r\n"
	    "X-SES-MESSAGE-TAGS: kind=invoice\r\n");
	ses_headers_for(h, "news@example.org", hdr, sizeof(hdr) - 1, out,
	    sizeof(out));
	ck_assert_str_eq(out, "X-SES-CONFIGURATION-SET: marketing\r\n"
	    "X-SES-MESSAGE-TAGS: app=cron, env=prod\r\n");
	/* "-": no set for this sender, the default tags stay. */
	ses_headers_for(h, "quiet@example.com", hdr, sizeof(hdr) - 1, out,
	    sizeof(out));
	ck_assert_str_eq(out, "X-SES-MESSAGE-TAGS: app=cron, env=prod\r\n");
	ses_headers_for(h, "tagsonly@example.com", hdr, sizeof(hdr) - 1, out,
	    sizeof(out));
	ck_assert_str_eq(out, "X-SES-CONFIGURATION-SET: default-set\r\n"
	    "X-SES-MESSAGE-TAGS: kind=alert, team=ops\r\n");
	ses_headers_free(h);
}
END_TEST

START_TEST(test_message_keeps_its_own)
{
	struct ses_headers *h = load();
	static const char own[] = "From: a@b\r\nx-ses-configuration-set: "
	    "mine\r\nSubject: y\r\n\r\nX-SES-MESSAGE-TAGS: in the body\r\n";
	char out[512];

	ses_headers_for(h, "a@b", own, sizeof(own) - 1, out, sizeof(out));
	/* The body's line is not a header field. */
	ck_assert_str_eq(out, "X-SES-MESSAGE-TAGS: app=cron, env=prod\r\n");
	ses_headers_free(h);
}
END_TEST

/* The API transport's request fields: the same choices, no headers. */
START_TEST(test_fields)
{
	struct ses_headers *h = load();
	static const char own[] = "From: a@b\r\nx-ses-configuration-set: "
	    "mine\r\n\r\n";
	const char *set, *tg;

	ses_headers_fields(h, "someone@example.net", hdr, sizeof(hdr) - 1,
	    &set, &tg);
	ck_assert_str_eq(set, "default-set");
	ck_assert_str_eq(tg, "app=cron, env=prod");
	ses_headers_fields(h, "Billing@Example.com", hdr, sizeof(hdr) - 1,
	    &set, &tg);
	ck_assert_str_eq(set, "billing-events");
	ck_assert_str_eq(tg, "kind=invoice");
	ses_headers_fields(h, "quiet@example.com", hdr, sizeof(hdr) - 1,
	    &set, &tg);
	ck_assert_str_eq(set, "");
	ses_headers_fields(h, "x@y", own, sizeof(own) - 1, &set, &tg);
	ck_assert_str_eq(set, "");
	ck_assert_str_eq(tg, "app=cron, env=prod");
	ses_headers_free(h);
}
END_TEST

START_TEST(test_nothing_configured)
{
	char err[64], out[64];
	struct ses_headers *h = ses_headers_parse("", NULL, 0, "", "", err,
	    sizeof(err));

	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(ses_headers_for(h, "a@b", hdr, sizeof(hdr) - 1,
	    out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	/* Too small a buffer: nothing rather than half a line. */
	ses_headers_free(h);
	h = load();
	ck_assert_uint_eq(ses_headers_for(h, "a@b", hdr, sizeof(hdr) - 1,
	    out, 20), 0);
	ck_assert_str_eq(out, "");
	ses_headers_free(h);
}
END_TEST

static const struct {
	const char	*text;
	const char	*err;
} bad_maps[] = {
	{ "no colon here\n", "map:1: expected" },
	{ "ok@example.com: set\nuser: set\n", "map:2: \"user\": expected an "
	  "address or @domain" },
	{ "a@b: bad.set\n", "map:1: \"bad.set\": not a configuration set" },
	{ "a@b: set tag=\n", "map:1: \"tag=\": a tag is name=value" },
	{ "a@b: tag=v set\n", "map:1: \"set\": the configuration set comes "
	  "first" },
	{ "a@: set\n", "map:1: \"a@\": expected an address" },
};

START_TEST(test_bad_map)
{
	char err[256] = "";

	ck_assert_ptr_null(ses_headers_parse("", NULL, 0, bad_maps[_i].text,
	    "map", err, sizeof(err)));
	ck_assert_msg(strstr(err, bad_maps[_i].err) != NULL, "got \"%s\"",
	    err);
}
END_TEST

START_TEST(test_validators)
{
	char longset[80];

	ck_assert(ses_headers_valid_set("my-set_1"));
	ck_assert(!ses_headers_valid_set(""));
	ck_assert(!ses_headers_valid_set("has space"));
	memset(longset, 'a', 65);
	longset[65] = '\0';
	ck_assert(!ses_headers_valid_set(longset));
	longset[64] = '\0';
	ck_assert(ses_headers_valid_set(longset));
	ck_assert(ses_headers_valid_tag("a=b"));
	ck_assert(!ses_headers_valid_tag("a="));
	ck_assert(!ses_headers_valid_tag("=b"));
	ck_assert(!ses_headers_valid_tag("a=b=c"));
	ck_assert(!ses_headers_valid_tag("a b=c"));
	ck_assert(!ses_headers_valid_tag("ab"));
}
END_TEST

static Suite *
ses_headers_suite(void)
{
	Suite *s = suite_create("ses_headers");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_per_sender_and_domain);
	tcase_add_test(tc, test_message_keeps_its_own);
	tcase_add_test(tc, test_nothing_configured);
	tcase_add_test(tc, test_fields);
	tcase_add_loop_test(tc, test_bad_map, 0,
	    sizeof(bad_maps) / sizeof(bad_maps[0]));
	tcase_add_test(tc, test_validators);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(ses_headers_suite());
}
