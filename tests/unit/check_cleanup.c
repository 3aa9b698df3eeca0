/*
 * check_cleanup.c: envelope and header rewriting (src/cleanup.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

static struct cleanup *c;

static void
setup(void)
{
	static char *const local[] = { "corp.internal" };
	struct cleanup_config cf = {
		.enable = 1, .hostname = "web1.example.com",
		.sender = "noreply@example.com", .admin = "ops@example.com",
		.local_domains = local, .nlocal_domains = 1,
		.aliases = "", .sender_map = "",
	};
	char err[256];

	c = cleanup_new(&cf, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
}

static void
teardown(void)
{
	cleanup_free(c);
}

static const struct {
	const char	*addr;
	int		 local;
} local_cases[] = {
	{ "root", 1 }, { "root@localhost", 1 }, { "ROOT@LOCALHOST", 1 },
	{ "www-data@web1.example.com", 1 }, { "a@corp.internal", 1 },
	{ "a@localhost.localdomain", 1 }, { "a@example.com", 0 },
	{ "a@web1.example.com.evil", 0 }, { "", 0 },
};

START_TEST(test_is_local)
{
	ck_assert_int_eq(cleanup_is_local(c, local_cases[_i].addr),
	    local_cases[_i].local);
}
END_TEST

START_TEST(test_sender)
{
	ck_assert_str_eq(cleanup_sender(c, "root"), "noreply@example.com");
	ck_assert_str_eq(cleanup_sender(c, "cron@localhost"),
	    "noreply@example.com");
	ck_assert_str_eq(cleanup_sender(c, "app@example.org"),
	    "app@example.org");
	ck_assert_str_eq(cleanup_sender(c, ""), "");	/* null stays null */
}
END_TEST

START_TEST(test_recipient_admin)
{
	struct addrlist out = { NULL, 0 };

	ck_assert_uint_eq(cleanup_recipient(c, "root", &out), 1);
	ck_assert_uint_eq(cleanup_recipient(c, "x@example.net", &out), 1);
	ck_assert_str_eq(out.v[0], "ops@example.com");
	ck_assert_str_eq(out.v[1], "x@example.net");
	addrlist_free(&out);
}
END_TEST

START_TEST(test_map_parse)
{
	struct addrlist n = { NULL, 0 }, v = { NULL, 0 };
	char err[256] = "";

	ck_assert_int_eq(cleanup_parse_map("# c\n\nRoot: a@x.org # why\n"
	    "team: b@x.org,\n  c@x.org\n", "f", &n, &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(n.n, 2);
	ck_assert_str_eq(n.v[0], "root");	/* names are case-blind */
	ck_assert_ptr_nonnull(strstr(v.v[1], "c@x.org"));
	addrlist_free(&n);
	addrlist_free(&v);
	ck_assert_int_eq(cleanup_parse_map("a: b@x.org\nno colon here\n", "f",
	    &n, &v, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "f:2: expected \"name: address, ...\"");
	addrlist_free(&n);
	addrlist_free(&v);
	ck_assert_int_eq(cleanup_parse_map("p: |/bin/sh\n", "f", &n, &v, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "f:1: p: only addresses"));
	addrlist_free(&n);
	addrlist_free(&v);
	ck_assert_int_eq(cleanup_parse_map("i: :include:/x\n", "f", &n, &v,
	    err, sizeof(err)), -1);
	addrlist_free(&n);
	addrlist_free(&v);
}
END_TEST

/* Run cleanup_header on a header given with LF line ends. */
static char *
rewrite(const char *lf, const char *sender)
{
	char hdr[2048], *out;
	size_t n = 0, outlen;

	for (const char *p = lf; *p; p++) {
		if (*p == '\n')
			hdr[n++] = '\r';
		hdr[n++] = *p;
	}
	ck_assert_int_eq(cleanup_header(c, hdr, n, sender, 1795000000, &out,
	    &outlen), 0);
	ck_assert_uint_eq(strlen(out), outlen);
	return out;
}

START_TEST(test_header_adds_missing)
{
	char *out = rewrite("Subject: x\nTo: a@example.net\n", "app@example.org");

	ck_assert_ptr_nonnull(strstr(out, "Subject: x\r\nTo: a@example.net\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nDate: "));
	ck_assert_ptr_nonnull(strstr(out, "\r\nMessage-ID: <1795000000."));
	ck_assert_ptr_nonnull(strstr(out, "@web1.example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nFrom: app@example.org\r\n"));
	ck_assert_ptr_null(strstr(out, "undisclosed"));
	free(out);
}
END_TEST

START_TEST(test_header_complete_is_untouched)
{
	const char *h = "From: A <a@example.org>\r\nTo: b@example.net\r\n"
	    "Date: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <m@x>\r\n"
	    "Subject: folded\r\n  line\r\n";
	char *out;
	size_t outlen;

	cleanup_header(c, h, strlen(h), "a@example.org", 0, &out, &outlen);
	ck_assert_str_eq(out, h);
	free(out);
}
END_TEST

START_TEST(test_header_bcc_only_gets_to)
{
	char *out = rewrite("From: a@example.org\nDate: x\nMessage-ID: <y>\n",
	    "a@example.org");

	ck_assert_ptr_nonnull(strstr(out, "To: undisclosed-recipients:;\r\n"));
	free(out);
}
END_TEST

START_TEST(test_header_from_rewritten)
{
	char *out = rewrite("From: \"Cron Daemon\" <root@localhost>\nTo: root\n"
	    "Cc: x@example.net, www-data\nDate: x\nMessage-ID: <y>\n", "root");

	ck_assert_ptr_nonnull(strstr(out,
	    "From: \"Cron Daemon\" <noreply@example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "To: ops@example.com\r\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "Cc: x@example.net, ops@example.com\r\n"));
	free(out);
	out = rewrite("From: root (Cron Daemon)\nTo: a@b.example\n", "root");
	ck_assert_ptr_nonnull(strstr(out,
	    "From: Cron Daemon <noreply@example.com>\r\n"));
	free(out);
	/* Not local: left alone. */
	out = rewrite("From: Someone <s@example.org>\nTo: a@b.example\n", "x");
	ck_assert_ptr_nonnull(strstr(out, "From: Someone <s@example.org>\r\n"));
	free(out);
}
END_TEST

/* Found by fuzzing: a last line without CRLF swallowed the new fields. */
START_TEST(test_header_unterminated_last_line)
{
	char *out;
	size_t outlen;

	cleanup_header(c, "Subject: x", 10, "a@example.org", 0, &out, &outlen);
	ck_assert_ptr_nonnull(strstr(out, "Subject: x\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nDate: "));
	free(out);
}
END_TEST

/* A local To: with nowhere to go (no alias, no admin) is kept, not lost. */
START_TEST(test_header_local_to_without_admin_kept)
{
	struct cleanup_config cf = { .enable = 1, .hostname = "h.example",
	    .sender = "", .admin = "", .aliases = "", .sender_map = "" };
	struct cleanup *c2;
	const char *h = "To: root\r\nDate: x\r\nMessage-ID: <y>\r\n";
	char err[256], *out;
	size_t outlen;

	c2 = cleanup_new(&cf, err, sizeof(err));
	ck_assert_ptr_nonnull(c2);
	cleanup_header(c2, h, strlen(h), "a@example.org", 0, &out, &outlen);
	ck_assert_ptr_nonnull(strstr(out, "To: root\r\n"));
	ck_assert_ptr_null(strstr(out, "undisclosed"));
	free(out);
	cleanup_free(c2);
}
END_TEST

/* Issue 10.4: which senders SES could never take, with and without
 * rewrite.sender (one rule for SMTP MAIL, sendmail and pickup). */
static const struct {
	const char	*sender;
	int		 refused_without;	/* no rewrite.sender */
} refused_cases[] = {
	{ "root", 1 }, { "cron@localhost", 1 }, { "a@localhost.localdomain", 1 },
	{ "www-data@web1", 1 }, { "a@corp.internal", 0 },
	{ "a@web1.example.com", 0 }, { "app@example.org", 0 }, { "", 0 },
	{ "a@[127.0.0.1]", 1 }, { "a@x.localhost", 1 }, { "mapped", 0 },
};

START_TEST(test_sender_is_refused)
{
	struct cleanup_config cf = { .enable = 1, .hostname = "web1",
	    .sender = "", .admin = "", .aliases = "", .sender_map = "" };
	char map[] = "/tmp/check_cleanup.XXXXXX", err[256];
	struct cleanup *bare;
	FILE *fp;
	int fd = mkstemp(map);

	ck_assert_int_ne(fd, -1);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	fputs("mapped: app@example.org\n", fp);
	fclose(fp);
	cf.sender_map = map;
	bare = cleanup_new(&cf, err, sizeof(err));
	unlink(map);
	ck_assert_msg(bare != NULL, "%s", err);
	ck_assert_int_eq(cleanup_sender_is_refused(bare,
	    refused_cases[_i].sender), refused_cases[_i].refused_without);
	/* With rewrite.sender, every local sender is rewritten: none is
	 * refused but a non-local one SES could never verify. */
	ck_assert_int_eq(cleanup_sender_is_refused(c, refused_cases[_i].sender),
	    strcmp(refused_cases[_i].sender, "www-data@web1") == 0 ||
	    strcmp(refused_cases[_i].sender, "a@[127.0.0.1]") == 0 ||
	    strcmp(refused_cases[_i].sender, "a@x.localhost") == 0);
	cleanup_free(bare);
}
END_TEST

static Suite *
cleanup_suite(void)
{
	Suite *s = suite_create("cleanup");
	TCase *tc = tcase_create("rewrite");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_is_local, 0,
	    sizeof(local_cases) / sizeof(local_cases[0]));
	tcase_add_test(tc, test_sender);
	tcase_add_test(tc, test_recipient_admin);
	tcase_add_test(tc, test_map_parse);
	tcase_add_test(tc, test_header_adds_missing);
	tcase_add_test(tc, test_header_complete_is_untouched);
	tcase_add_test(tc, test_header_bcc_only_gets_to);
	tcase_add_test(tc, test_header_from_rewritten);
	tcase_add_test(tc, test_header_unterminated_last_line);
	tcase_add_test(tc, test_header_local_to_without_admin_kept);
	tcase_add_loop_test(tc, test_sender_is_refused, 0,
	    sizeof(refused_cases) / sizeof(refused_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cleanup_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
