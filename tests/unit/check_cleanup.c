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
#include "fixture.h"

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

/*
 * The mail name (/etc/mailname, issue 14): a sender without a domain is
 * qualified with it, so "www-data" can send once the host has one;
 * addresses at it are local; rewrite.sender still comes first.
 */
START_TEST(test_sender_mailname)
{
	struct cleanup_config cf = { .enable = 1, .hostname = "web1",
	    .mailname = "mail.example.org", .sender = "", .admin = "",
	    .aliases = "", .sender_map = "" };
	char err[256], *out;
	size_t outlen;
	struct cleanup *m = cleanup_new(&cf, err, sizeof(err));

	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_str_eq(cleanup_sender(m, "www-data"),
	    "www-data@mail.example.org");
	ck_assert_int_eq(cleanup_sender_is_refused(m, "www-data"), 0);
	ck_assert_str_eq(cleanup_sender(m, "cron@localhost"), "cron@localhost");
	ck_assert_int_eq(cleanup_sender_is_refused(m, "cron@localhost"), 1);
	ck_assert_str_eq(cleanup_sender(m, "app@example.com"),
	    "app@example.com");
	ck_assert_int_eq(cleanup_is_local(m, "ops@mail.example.org"), 1);
	ck_assert_int_eq(cleanup_header(m, "From: Cron Daemon <root>\r\n", 26,
	    "root", 0, &out, &outlen), 0);
	ck_assert_msg(strstr(out, "From: Cron Daemon <root@mail.example.org>\r\n")
	    != NULL, "%s", out);
	free(out);
	cleanup_free(m);
	cf.sender = "noreply@example.com";
	m = cleanup_new(&cf, err, sizeof(err));
	ck_assert_str_eq(cleanup_sender(m, "www-data"), "noreply@example.com");
	cleanup_free(m);
	cf.sender = "";
	cf.mailname = "";
	m = cleanup_new(&cf, err, sizeof(err));
	ck_assert_str_eq(cleanup_sender(m, "www-data"), "www-data");
	ck_assert_int_eq(cleanup_sender_is_refused(m, "www-data"), 1);
	cleanup_free(m);
}
END_TEST

/* ---- folding (issue 10.16) ---- */

/* The header with every CRLF before white space removed (RFC 5322 unfold). */
static char *
unfold(const char *h)
{
	char *u = strdup(h), *o = u;

	ck_assert_ptr_nonnull(u);
	for (const char *p = h; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
			p++;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return u;
}

/* The longest line of h, and how many lines it has. */
static size_t
longest(const char *h, size_t *nlines)
{
	size_t max = 0, n = 0;

	for (const char *p = h; *p; ) {
		size_t l = strcspn(p, "\r");

		if (l > max)
			max = l;
		n++;
		p += l;
		p += strncmp(p, "\r\n", 2) == 0 ? 2 : strlen(p);
	}
	*nlines = n;
	return max;
}

/* Fold hdr (complete: Date, Message-ID, From, To given) and return it. */
static char *
fold(struct cleanup *cl, const char *hdr)
{
	char *out;
	size_t outlen;

	ck_assert_int_eq(cleanup_header(cl, hdr, strlen(hdr), "a@example.org",
	    0, &out, &outlen), 0);
	return out;
}

#define FIXED	"Date: x\r\nMessage-ID: <y>\r\nFrom: a@example.org\r\n" \
	"Bcc: t@example.net\r\nTo: t@example.net\r\n"

START_TEST(test_fold_120_recipients)
{
	char hdr[8192] = "To: ", *out, *u;
	size_t n = 4, lines;

	for (int i = 0; i < 120; i++)
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "%suser%03d@"
		    "example.com", i ? ", " : "", i);
	ck_assert_uint_gt(n, 998);
	snprintf(hdr + n, sizeof(hdr) - n, "\r\n" FIXED);
	out = fold(c, hdr);
	ck_assert_uint_le(longest(out, &lines), 78);
	ck_assert_uint_gt(lines, 3 + 120 * 21 / 78);
	u = unfold(out);
	ck_assert_str_eq(u, hdr);	/* the same field, only folded */
	free(u);
	/* Folded after the commas, between addresses. */
	for (const char *p = strstr(out, "\r\n "); p != NULL;
	    p = strstr(p + 1, "\r\n "))
		ck_assert_int_eq(p[-1], ',');
	ck_assert_ptr_nonnull(strstr(out, "user119@example.com\r\nDate: x"));
	ck_assert_ptr_nonnull(strstr(out, "\r\n" FIXED));
	cleanup_header(c, out, strlen(out), "a@example.org", 0, &u, &n);
	ck_assert_str_eq(u, out);	/* folded once: left alone after */
	free(u);
	free(out);
}
END_TEST

START_TEST(test_fold_quoted_commas_and_words)
{
	char hdr[8192] = "Cc: ", *out, *u;
	size_t n = 4, lines;

	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "%s\"Doe, J%02d\" "
		    "<j%02d@example.com>", i ? ", " : "", i, i);
	n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "\r\nSubject:");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, " word%d", i);
	snprintf(hdr + n, sizeof(hdr) - n, "   \r\n" FIXED);
	out = fold(c, hdr);
	ck_assert_uint_le(longest(out, &lines), 78);
	u = unfold(out);
	ck_assert_str_eq(u, hdr);
	free(u);
	/* Never inside the quotes when there is a comma between addresses,
	 * never a line of white space only (the trailing spaces stay). */
	for (const char *p = strstr(out, "\r\n "); p != NULL;
	    p = strstr(p + 1, "\r\n ")) {
		ck_assert_int_ne(p[-1], ' ');
		ck_assert_int_ne(p[3], '\r');
		if (p < strstr(out, "Subject:"))
			ck_assert_int_eq(p[-1], ',');
		ck_assert_int_ne(p[3], 'J');
	}
	ck_assert_ptr_nonnull(strstr(out, "word199   \r\nDate:"));
	free(out);
}
END_TEST

/*
 * A quoted-pair is never cut: no fold between a backslash and the space
 * it quotes.  An escaped backslash before a quote ends the quoted string,
 * so the commas after it are between addresses again.
 */
START_TEST(test_fold_quoted_pairs)
{
	char hdr[8192] = "To: \"Doe, J\\\\\" <j@example.com>", *out, *u;
	size_t n = strlen(hdr), lines;

	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, ", \"Last,\\ "
		    "First %02d\" <u%02d@example.com>", i, i);
	ck_assert_uint_gt(n, 998);
	snprintf(hdr + n, sizeof(hdr) - n, "\r\n" FIXED);
	out = fold(c, hdr);
	ck_assert_uint_le(longest(out, &lines), 78);
	u = unfold(out);
	ck_assert_str_eq(u, hdr);
	free(u);
	for (const char *p = strstr(out, "\r\n "); p != NULL;
	    p = strstr(p + 1, "\r\n ")) {
		ck_assert_int_ne(p[-1], '\\');
		if (p < strstr(out, "Date:"))
			ck_assert_int_eq(p[-1], ',');
	}
	free(out);
}
END_TEST

START_TEST(test_fold_only_long_fields)
{
	char hdr[4096], line[1200], *out;
	size_t lines;

	/* 998 characters with spaces: legal, copied byte for byte. */
	memset(line, 'a', sizeof(line));
	for (int i = 10; i < 990; i += 10)
		line[i] = ' ';
	line[998 - 9] = '\0';
	snprintf(hdr, sizeof(hdr), "Subject: %s\r\nX-Two: b c\r\n" FIXED,
	    line);
	out = fold(c, hdr);
	ck_assert_str_eq(out, hdr);
	ck_assert_int_eq(cleanup_header_is_too_long(c, out, strlen(out)), 0);
	free(out);
	/* One more character: folded, to lines of at most 78. */
	line[998 - 9] = 'a';
	line[998 - 8] = '\0';
	snprintf(hdr, sizeof(hdr), "Subject: %s\r\n" FIXED, line);
	out = fold(c, hdr);
	ck_assert_uint_le(longest(out, &lines), 78);
	ck_assert_int_eq(cleanup_header_is_too_long(c, out, strlen(out)), 0);
	free(out);
}
END_TEST

START_TEST(test_fold_impossible_refused)
{
	char hdr[4096], word[1100], *out, *u;
	size_t lines;

	/* No white space after the name: it cannot be folded. */
	memset(word, 'x', sizeof(word));
	word[999] = '\0';
	snprintf(hdr, sizeof(hdr), "X-Long: %s\r\n" FIXED, word);
	out = fold(c, hdr);
	ck_assert_str_eq(out, hdr);
	ck_assert_int_eq(cleanup_header_is_too_long(c, out, strlen(out)), 1);
	free(out);
	/* A 900-character word then words: folded at the first space after
	 * it (a line under 998, though over 78), the rest at 78. */
	word[900] = '\0';
	snprintf(hdr, sizeof(hdr), "X-Long: %s and then some more words to "
	    "make it long enough for another fold or two after the long one "
	    "so there is more to do\r\n" FIXED, word);
	out = fold(c, hdr);
	ck_assert_uint_eq(longest(out, &lines), 8 + 900);
	ck_assert_int_eq(cleanup_header_is_too_long(c, out, strlen(out)), 0);
	u = unfold(out);
	ck_assert_str_eq(u, hdr);
	free(u);
	free(out);
}
END_TEST

/* smtp.max_header_line_length below 998: folded past it. */
START_TEST(test_fold_configured_limit)
{
	struct cleanup_config cf = { .enable = 0, .hostname = "h.example",
	    .sender = "", .admin = "", .aliases = "", .sender_map = "",
	    .max_line = 100 };
	struct cleanup *c2;
	char hdr[512], err[256], *out, *u;
	size_t lines;

	c2 = cleanup_new(&cf, err, sizeof(err));
	ck_assert_ptr_nonnull(c2);
	snprintf(hdr, sizeof(hdr), "Subject: %s%s\r\nX-Short: %s\r\n",
	    "one two three four five six seven eight nine ten eleven twelve ",
	    "thirteen fourteen fifteen sixteen", "a b c d e f g h i j k l m n "
	    "o p q r s t u v w x y z a b c d e f g h i j k l m n o p");
	ck_assert_uint_gt(strlen(hdr), 100 + 85);
	out = fold(c2, hdr);
	/* Subject folded once (at 78), X-Short (92) under 100: untouched. */
	ck_assert_uint_eq(longest(out, &lines), 92);
	ck_assert_uint_eq(lines, 3);
	ck_assert_ptr_nonnull(strstr(out, "\r\nX-Short: a b c d e f g h i j "
	    "k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o "
	    "p\r\n"));
	u = unfold(out);
	ck_assert_str_eq(u, hdr);
	free(u);
	free(out);
	cleanup_free(c2);
}
END_TEST

/*
 * cleanup_text_start: where the header ends, what is added, what is kept
 * as it is (the SMTP server's and pickup's one rule).
 */
static const struct {
	const char	*text;
	const char	*tail;	/* out ends with it */
	int		 whole;	/* out is text, untouched */
} start_cases[] = {
	/* A complete header, its empty line, a body: all untouched. */
	{ FIXED "\r\nbody\r\n", NULL, 1 },
	/* All header, no empty line (the data ended). */
	{ FIXED, NULL, 1 },
	/* No header: the fields added, then the empty line, then the text. */
	{ "body line\r\n", "\r\nTo: undisclosed-recipients:;\r\n\r\n"
	  "body line\r\n", 0 },
	/* Starting with the empty line: it is kept, not doubled. */
	{ "\r\nbody\r\n", "\r\nTo: undisclosed-recipients:;\r\n\r\n"
	  "body\r\n", 0 },
	/* A field after a body line is body: the empty line goes first. */
	{ "body\r\nSubject: x\r\n\r\nmore\r\n", ";\r\n\r\nbody\r\n"
	  "Subject: x\r\n\r\nmore\r\n", 0 },
	/* The header ends at the first empty line only. */
	{ FIXED "\r\nX-Not: a field\r\n\r\nbody\r\n", NULL, 1 },
	/* Nothing at all. */
	{ "", ";\r\n\r\n", 0 },
};

START_TEST(test_text_start)
{
	const char *text = start_cases[_i].text, *tail = start_cases[_i].tail;
	size_t len = strlen(text), outlen;
	char *out;

	ck_assert_int_eq(cleanup_text_start(c, text, len, "app@example.org",
	    1795000000, &out, &outlen), 0);
	ck_assert_uint_eq(strlen(out), outlen);
	if (start_cases[_i].whole)
		ck_assert_str_eq(out, text);
	else {
		ck_assert_uint_ge(outlen, strlen(tail));
		ck_assert_str_eq(out + outlen - strlen(tail), tail);
		ck_assert_ptr_nonnull(strstr(out, "Date: "));
	}
	free(out);
}
END_TEST

/* A header line that cannot be folded: refused, the text still given. */
START_TEST(test_text_start_too_long)
{
	char text[2048], word[1100], *out;
	size_t outlen;

	memset(word, 'x', sizeof(word));
	word[999] = '\0';
	snprintf(text, sizeof(text), "X-Long: %s\r\n" FIXED "\r\nbody\r\n",
	    word);
	ck_assert_int_eq(cleanup_text_start(c, text, strlen(text), "",
	    1795000000, &out, &outlen), 1);
	ck_assert_str_eq(out, text);
	free(out);
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
	tcase_add_test(tc, test_sender_mailname);
	tcase_add_test(tc, test_fold_120_recipients);
	tcase_add_test(tc, test_fold_quoted_commas_and_words);
	tcase_add_test(tc, test_fold_quoted_pairs);
	tcase_add_test(tc, test_fold_only_long_fields);
	tcase_add_test(tc, test_fold_impossible_refused);
	tcase_add_test(tc, test_fold_configured_limit);
	tcase_add_loop_test(tc, test_text_start, 0,
	    sizeof(start_cases) / sizeof(start_cases[0]));
	tcase_add_test(tc, test_text_start_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(cleanup_suite());
}
