/*
 * check_dsn.c: bounces.  Every message built here is parsed back the
 * way a receiving MUA or MTA would: the top-level header, the boundary,
 * the parts and the delivery-status blocks, with the wire rules (CRLF,
 * 998, 7-bit, no NUL) checked on every one of them.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "fixture.h"

#define SES_NOT_VERIFIED "554 Message rejected: Email address is not " \
	"verified. The following identities failed the check in region " \
	"US-EAST-1: sender@example.com"
#define NOW		((time_t)1700000000)	/* Tue, 14 Nov 2023 22:13:20 */
#define NOW_DATE	"Tue, 14 Nov 2023 22:13:20 +0000"
#define ARRIVED		(NOW - 3600)
#define ARRIVED_DATE	"Tue, 14 Nov 2023 21:13:20 +0000"

static const char orig_header[] =
    "Received: from app1 (localhost [127.0.0.1])\r\n"
    "\tby relay.example.com (sesrelay) id 3f9a0c1e2b7d4455\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Subject: Quarterly report\r\n"
    "Message-ID: <abc@app1.example.com>\r\n"
    "\r\n";

static const struct dsn_rcpt one_rcpt[] = {
	{ "bob@example.org", "5.0.0", SES_NOT_VERIFIED },
};

/* A bounce, built and taken apart. */
struct bounce {
	char	*msg;
	size_t	 len;
	char	*header;	/* the top-level header, CRLF lines */
	char	 boundary[128];
	int	 nparts;
	char	*phdr[8];	/* each part's header */
	char	*pbody[8];	/* and its content */
};

static void
info_init(struct dsn_info *info, const struct dsn_rcpt *rcpts, size_t n)
{
	memset(info, 0, sizeof(*info));
	info->reporting_mta = "relay.example.com";
	info->from = "mailer-daemon@example.com";
	info->to = "alice@example.com";
	info->queue_id = "3f9a0c1e2b7d4455";
	info->arrived = ARRIVED;
	info->now = NOW;
	info->rcpts = rcpts;
	info->nrcpt = n;
	info->orig_header = orig_header;
	info->orig_header_len = sizeof(orig_header) - 1;
}

/* The wire rules: CRLF only, lines of at most 998, 7-bit, no NUL. */
static void
assert_wire(const char *m, size_t len)
{
	size_t i, col = 0;

	ck_assert_uint_ge(len, 2);
	ck_assert_uint_eq(strlen(m), len);	/* no NUL, terminated */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];

		ck_assert_msg(c < 0x80, "8-bit byte 0x%02x at %zu", c, i);
		if (c == '\r') {
			ck_assert_msg(i + 1 < len && m[i + 1] == '\n',
			    "bare CR at %zu", i);
			continue;
		}
		if (c == '\n') {
			ck_assert_msg(i > 0 && m[i - 1] == '\r',
			    "bare LF at %zu", i);
			col = 0;
			continue;
		}
		col++;
		ck_assert_msg(col <= 998, "line over 998 at %zu", i);
	}
	ck_assert_msg(m[len - 2] == '\r' && m[len - 1] == '\n',
	    "no final CRLF");
}

/* A copy of the n bytes at s. */
static char *
xdup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * The unfolded value of field name in a header block and, in *count,
 * how many times the field occurs; NULL when it does not.
 */
static char *
field(const char *block, const char *name, int *count)
{
	size_t nlen = strlen(name), vlen = 0;
	const char *l, *e;
	char *v = NULL;
	int n = 0, in = 0;

	for (l = block; *l != '\0'; l = e + 2) {
		e = strstr(l, "\r\n");
		ck_assert_ptr_nonnull(e);
		if (in && (*l == ' ' || *l == '\t')) {
			/* Unfolding removes the CRLF only (RFC 5322). */
			v = realloc(v, vlen + (size_t)(e - l) + 1);
			memcpy(v + vlen, l, (size_t)(e - l));
			vlen += (size_t)(e - l);
			v[vlen] = '\0';
			continue;
		}
		in = 0;
		if (strncmp(l, name, nlen) == 0 && l[nlen] == ':') {
			if (n++ == 0) {
				const char *s = l + nlen + 1;

				s += *s == ' ';
				v = xdup(s, (size_t)(e - s));
				vlen = strlen(v);
				in = 1;
			}
		}
	}
	if (count != NULL)
		*count = n;
	return v;
}

/* Assert the field occurs once with this value. */
static void
assert_field(const char *block, const char *name, const char *want)
{
	int n;
	char *v = field(block, name, &n);

	ck_assert_msg(n == 1, "%s: %d times in\n%s", name, n, block);
	ck_assert_str_eq(v, want);
	free(v);
}

/* Build, check the wire rules, and cut into header and parts. */
static void
bounce_parse(struct bounce *b, const struct dsn_info *info)
{
	char delim[140], *v, *q;
	const char *p, *end;

	memset(b, 0, sizeof(*b));
	ck_assert_int_eq(dsn_build(info, &b->msg, &b->len), 0);
	assert_wire(b->msg, b->len);
	end = strstr(b->msg, "\r\n\r\n");
	ck_assert_ptr_nonnull(end);
	b->header = xdup(b->msg, (size_t)(end - b->msg) + 2);

	v = field(b->header, "Content-Type", NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(strstr(v, "multipart/report;"));
	ck_assert_ptr_nonnull(strstr(v, "report-type=delivery-status;"));
	p = strstr(v, "boundary=\"");
	ck_assert_ptr_nonnull(p);
	p += 10;
	q = strchr(p, '"');
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_gt(q - p, 0);
	ck_assert_uint_le(q - p, 70);	/* RFC 2046 */
	memcpy(b->boundary, p, (size_t)(q - p));
	free(v);

	/* Parts: after "\r\n--B\r\n" up to the next "\r\n--B". */
	snprintf(delim, sizeof(delim), "\r\n--%s", b->boundary);
	p = strstr(end + 2, delim);
	ck_assert_ptr_nonnull(p);
	for (;;) {
		p += strlen(delim);
		if (strcmp(p, "--\r\n") == 0)
			break;		/* the close delimiter ends it all */
		ck_assert_msg(p[0] == '\r' && p[1] == '\n',
		    "text after a delimiter");
		p += 2;
		q = strstr(p, delim);
		ck_assert_msg(q != NULL, "no close delimiter");
		end = strstr(p, "\r\n\r\n");
		ck_assert_msg(end != NULL && end < q, "part without header");
		ck_assert_int_lt(b->nparts, 8);
		b->phdr[b->nparts] = xdup(p, (size_t)(end - p) + 2);
		b->pbody[b->nparts] = xdup(end + 4, (size_t)(q - end - 4));
		b->nparts++;
		p = q;
	}
}

static void
bounce_free(struct bounce *b)
{
	for (int i = 0; i < b->nparts; i++) {
		free(b->phdr[i]);
		free(b->pbody[i]);
	}
	free(b->header);
	free(b->msg);
}

/* Block n (0: the per-message fields) of the delivery-status part. */
static char *
ds_block(const struct bounce *b, int n)
{
	const char *p = b->pbody[1], *e;

	ck_assert_int_ge(b->nparts, 2);
	for (;;) {
		e = strstr(p, "\r\n\r\n");
		if (n-- == 0)
			return e != NULL ? xdup(p, (size_t)(e - p) + 2) :
			    (*p != '\0' ? xdup(p, strlen(p)) : NULL);
		if (e == NULL)
			return NULL;
		p = e + 4;
	}
}

/* Text with every CRLF and run of spaces made one space. */
static char *
squash(const char *s)
{
	char *t = xdup(s, strlen(s)), *o = t;

	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n' || *s == ' ') {
			if (o > t && o[-1] != ' ')
				*o++ = ' ';
			continue;
		}
		*o++ = *s;
	}
	*o = '\0';
	return t;
}

/* The longest line in s. */
static size_t
longest_line(const char *s)
{
	size_t max = 0, n;
	const char *e;

	for (; *s != '\0'; s = e + 2) {
		e = strstr(s, "\r\n");
		ck_assert_ptr_nonnull(e);
		n = (size_t)(e - s);
		if (n > max)
			max = n;
	}
	return max;
}

START_TEST(test_headers_once)
{
	struct dsn_info info;
	struct bounce b;
	int n;

	info_init(&info, one_rcpt, 1);
	bounce_parse(&b, &info);
	assert_field(b.header, "From",
	    "Mail Delivery System <mailer-daemon@example.com>");
	assert_field(b.header, "To", "<alice@example.com>");
	assert_field(b.header, "Subject",
	    "Undelivered Mail Returned to Sender");
	assert_field(b.header, "Date", NOW_DATE);
	assert_field(b.header, "Message-ID",
	    "<3f9a0c1e2b7d4455.1700000000.dsn@relay.example.com>");
	assert_field(b.header, "Auto-Submitted", "auto-replied");
	assert_field(b.header, "MIME-Version", "1.0");
	free(field(b.header, "Content-Type", &n));
	ck_assert_int_eq(n, 1);
	/* The message starts with the header, not a blank line. */
	ck_assert_int_eq(strncmp(b.msg, "From: ", 6), 0);
	bounce_free(&b);
}
END_TEST

START_TEST(test_date_in_utc)
{
	struct dsn_info info;
	struct bounce b;

	info_init(&info, one_rcpt, 1);
	info.now = 0;
	info.arrived = 951782400;	/* a leap day */
	bounce_parse(&b, &info);
	assert_field(b.header, "Date", "Thu, 1 Jan 1970 00:00:00 +0000");
	{
		char *blk = ds_block(&b, 0);

		assert_field(blk, "Arrival-Date",
		    "Tue, 29 Feb 2000 00:00:00 +0000");
		free(blk);
	}
	bounce_free(&b);
}
END_TEST

START_TEST(test_three_parts)
{
	struct dsn_info info;
	struct bounce b;

	info_init(&info, one_rcpt, 1);
	bounce_parse(&b, &info);
	ck_assert_int_eq(b.nparts, 3);
	assert_field(b.phdr[0], "Content-Type", "text/plain; charset=us-ascii");
	assert_field(b.phdr[1], "Content-Type", "message/delivery-status");
	assert_field(b.phdr[2], "Content-Type", "text/rfc822-headers");
	/* The boundary occurs in no part; a delimiter starts a line. */
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(strstr(b.pbody[i], b.boundary));
	/* The original header, without its empty line. */
	ck_assert_str_eq(b.pbody[2], "Received: from app1 (localhost "
	    "[127.0.0.1])\r\n\tby relay.example.com (sesrelay) id "
	    "3f9a0c1e2b7d4455\r\nFrom: Alice <alice@example.com>\r\n"
	    "To: bob@example.org\r\nSubject: Quarterly report\r\n"
	    "Message-ID: <abc@app1.example.com>\r\n");
	bounce_free(&b);
}
END_TEST

START_TEST(test_delivery_status_fields)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "bob@example.org", "5.0.0", SES_NOT_VERIFIED },
		{ "carol@example.net", "5.3.4",
		    "552 5.3.4 Message is too long." },
		{ "dave@example.net", "5.1.1", NULL },
	};
	struct dsn_info info;
	struct bounce b;
	char *blk;
	int n;

	info_init(&info, rcpts, 3);
	bounce_parse(&b, &info);
	blk = ds_block(&b, 0);
	assert_field(blk, "Reporting-MTA", "dns; relay.example.com");
	assert_field(blk, "X-Sesrelay-Queue-ID", "3f9a0c1e2b7d4455");
	assert_field(blk, "Arrival-Date", ARRIVED_DATE);
	free(blk);

	for (int i = 0; i < 3; i++) {
		char want[512];

		blk = ds_block(&b, i + 1);
		ck_assert_ptr_nonnull(blk);
		snprintf(want, sizeof(want), "rfc822; %s", rcpts[i].addr);
		assert_field(blk, "Final-Recipient", want);
		assert_field(blk, "Action", "failed");
		assert_field(blk, "Status", rcpts[i].status);
		assert_field(blk, "Last-Attempt-Date", NOW_DATE);
		if (rcpts[i].diagnostic != NULL) {
			snprintf(want, sizeof(want), "smtp; %s",
			    rcpts[i].diagnostic);
			assert_field(blk, "Diagnostic-Code", want);
		} else {
			free(field(blk, "Diagnostic-Code", &n));
			ck_assert_int_eq(n, 0);
		}
		/* Not known, so not invented. */
		free(field(blk, "Remote-MTA", &n));
		ck_assert_int_eq(n, 0);
		free(blk);
	}
	ck_assert_ptr_null(ds_block(&b, 4));
	bounce_free(&b);
}
END_TEST

START_TEST(test_notification_text)
{
	struct dsn_info info;
	struct bounce b;
	char *text;

	info_init(&info, one_rcpt, 1);
	bounce_parse(&b, &info);
	ck_assert_uint_le(longest_line(b.pbody[0]), 76);
	/* A date is not split over lines. */
	ck_assert_ptr_nonnull(strstr(b.pbody[0], ARRIVED_DATE));
	text = squash(b.pbody[0]);
	ck_assert_msg(strstr(text, "This is the mail relay at "
	    "relay.example.com.") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "Your message (queue id 3f9a0c1e2b7d4455, "
	    "received " ARRIVED_DATE ") could not be delivered to the "
	    "recipients below.") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "<bob@example.org>: Amazon SES replied: "
	    SES_NOT_VERIFIED) != NULL, "%s", text);
	ck_assert_ptr_null(strstr(text, "expired"));
	ck_assert_ptr_null(strstr(text, "longer than the limit"));
	free(text);
	bounce_free(&b);
}
END_TEST

START_TEST(test_no_reply_text)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "bob@example.org", "5.3.4", NULL },
	};
	struct dsn_info info;
	struct bounce b;
	char *text;

	info_init(&info, rcpts, 1);
	bounce_parse(&b, &info);
	text = squash(b.pbody[0]);
	ck_assert_msg(strstr(text, "<bob@example.org>: The delivery failed "
	    "(status 5.3.4).") != NULL, "%s", text);
	ck_assert_ptr_null(strstr(text, "Amazon SES replied"));
	free(text);
	bounce_free(&b);
}
END_TEST

START_TEST(test_expired)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "bob@example.org", "4.4.7",
		    "451 4.4.2 Timeout waiting for data from client." },
		{ "carol@example.net", "4.4.7", NULL },
	};
	struct dsn_info info;
	struct bounce b;
	char *text, *subject, *blk;

	info_init(&info, rcpts, 2);
	info.expired = 1;
	info.arrived = NOW - 5 * 86400 - 120;
	bounce_parse(&b, &info);
	subject = field(b.header, "Subject", NULL);
	ck_assert_str_eq(subject, "Undelivered Mail Returned to Sender "
	    "(delivery time expired)");
	free(subject);

	text = squash(b.pbody[0]);
	ck_assert_msg(strstr(text, "<bob@example.org>: The message stayed in "
	    "the queue longer than the limit (5 days) without being "
	    "delivered. The last reply from Amazon SES was: 451 4.4.2 "
	    "Timeout waiting for data from client.") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "<carol@example.net>: The message stayed "
	    "in the queue longer than the limit (5 days) without being "
	    "delivered.") != NULL, "%s", text);
	free(text);

	for (int i = 1; i <= 2; i++) {
		blk = ds_block(&b, i);
		ck_assert_ptr_nonnull(blk);
		assert_field(blk, "Action", "failed");
		assert_field(blk, "Status", "4.4.7");
		free(blk);
	}
	bounce_free(&b);
}
END_TEST

/* The queue time in words, whatever the limit is. */
static const struct {
	time_t		 waited;
	const char	*words;
} waited_cases[] = {
	{ 86400, "(1 day)" },
	{ 3 * 86400 + 7000, "(3 days)" },
	{ 3 * 3600 + 59, "(3 hours)" },
	{ 3600, "(1 hour)" },
	{ 90, "(1 minute)" },
	{ 30, "(0 minutes)" },
	{ -500, "(0 minutes)" },	/* a clock stepped back */
};

START_TEST(test_expired_duration)
{
	struct dsn_info info;
	struct bounce b;
	char *text;

	info_init(&info, one_rcpt, 1);
	info.expired = 1;
	info.arrived = NOW - waited_cases[_i].waited;
	bounce_parse(&b, &info);
	text = squash(b.pbody[0]);
	ck_assert_msg(strstr(text, waited_cases[_i].words) != NULL,
	    "%s not in %s", waited_cases[_i].words, text);
	free(text);
	bounce_free(&b);
}
END_TEST

START_TEST(test_orig_header_sanitized)
{
	static const char h[] =
	    "Subject: caf\xc3\xa9\r\n"
	    "X-Nul: a\0b\r\n"
	    "X-Bare-LF: yes\n"
	    "X-Bare-CR: a\rb\r\n"
	    "X-Ctl: \x01\x7f\tend\r\n"
	    "\r\n"
	    "body text, not header\r\n";
	struct dsn_info info;
	struct bounce b;

	info_init(&info, one_rcpt, 1);
	info.orig_header = h;
	info.orig_header_len = sizeof(h) - 1;
	bounce_parse(&b, &info);
	ck_assert_int_eq(b.nparts, 3);
	ck_assert_str_eq(b.pbody[2],
	    "Subject: caf??\r\n"
	    "X-Nul: a?b\r\n"
	    "X-Bare-LF: yes\r\n"
	    "X-Bare-CR: a?b\r\n"
	    "X-Ctl: ??\tend\r\n");
	bounce_free(&b);
}
END_TEST

START_TEST(test_orig_header_without_final_crlf)
{
	static const char h[] = "Subject: x\r\nTo: y";
	struct dsn_info info;
	struct bounce b;

	info_init(&info, one_rcpt, 1);
	info.orig_header = h;
	info.orig_header_len = sizeof(h) - 1;
	bounce_parse(&b, &info);
	ck_assert_str_eq(b.pbody[2], "Subject: x\r\nTo: y\r\n");
	bounce_free(&b);
}
END_TEST

/*
 * 655 lines of 100 bytes, then one that fills 64 KiB exactly (_i == 0:
 * 34 characters and CRLF) or passes it by one byte (_i == 1), then more.
 */
START_TEST(test_orig_header_capped)
{
	struct dsn_info info;
	struct bounce b;
	size_t n = 655, i, len, last = 34 + (size_t)_i;
	char *h = malloc(n * 100 + 2000), *p;

	ck_assert_ptr_nonnull(h);
	for (i = 0, p = h; i < n; i++, p += 100)
		snprintf(p, 101, "X-Line-%06u: %83s\r\n",
		    (unsigned)(i % 1000000), "v");
	snprintf(p, 1000, "X-Last: %*s\r\nX-After: 1\r\n", (int)last - 8,
	    "v");
	info_init(&info, one_rcpt, 1);
	info.orig_header = h;
	info.orig_header_len = strlen(h);
	bounce_parse(&b, &info);
	len = strlen(b.pbody[2]);
	ck_assert_uint_le(len, 64 * 1024);
	/* Whole lines of the original, in order, up to the cap. */
	ck_assert_int_eq(strncmp(b.pbody[2], h, len), 0);
	if (_i == 0) {
		ck_assert_uint_eq(len, 64 * 1024);
		ck_assert_int_eq(strncmp(b.pbody[2] + len - last - 2,
		    "X-Last: ", 8), 0);
	} else {
		ck_assert_uint_eq(len, n * 100);
		ck_assert_int_eq(strncmp(b.pbody[2] + len - 100,
		    "X-Line-000654:", 14), 0);
	}
	ck_assert_ptr_null(strstr(b.pbody[2], "X-After"));
	free(h);
	bounce_free(&b);
}
END_TEST

/*
 * The cap counts a long line as folded: 634 lines of 100 bytes leave
 * 2136; a line of 2128 characters takes 2128 + 2 fold spaces + 3 CRLF
 * = 2136 and fits (_i == 0), one of 2129 does not (_i == 1).
 */
START_TEST(test_orig_header_cap_folded)
{
	struct dsn_info info;
	struct bounce b;
	size_t n = 634, i, len, long_len = 2128 + (size_t)_i;
	char *h = malloc(n * 100 + long_len + 16), *p;

	ck_assert_ptr_nonnull(h);
	for (i = 0, p = h; i < n; i++, p += 100)
		snprintf(p, 101, "X-Line-%06u: %83s\r\n",
		    (unsigned)(i % 1000000), "v");
	memcpy(p, "X-Long: ", 8);
	memset(p + 8, 'a', long_len - 8);
	memcpy(p + long_len, "\r\n", 3);
	info_init(&info, one_rcpt, 1);
	info.orig_header = h;
	info.orig_header_len = strlen(h);
	bounce_parse(&b, &info);
	len = strlen(b.pbody[2]);
	ck_assert_uint_eq(len, _i == 0 ? 64 * 1024 : n * 100);
	ck_assert_uint_eq(strstr(b.pbody[2], "X-Long: ") != NULL, _i == 0);
	free(h);
	bounce_free(&b);
}
END_TEST

START_TEST(test_orig_header_long_line)
{
	struct dsn_info info;
	struct bounce b;
	size_t n = 3000;
	char *h = malloc(n + 32), *v;

	ck_assert_ptr_nonnull(h);
	memcpy(h, "X-Long: ", 8);
	memset(h + 8, 'a', n);
	memcpy(h + 8 + n, "\r\nTo: y\r\n", 10);
	info_init(&info, one_rcpt, 1);
	info.orig_header = h;
	info.orig_header_len = strlen(h);
	bounce_parse(&b, &info);
	/* Folded at 998 with a space: unfolded, it is the original. */
	ck_assert_uint_eq(longest_line(b.pbody[2]), 998);
	v = field(b.pbody[2], "X-Long", NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(strlen(v), n + 3);	/* three folds */
	ck_assert_uint_eq(strspn(v, "a "), n + 3);
	free(v);
	v = field(b.pbody[2], "To", NULL);
	ck_assert_str_eq(v, "y");
	free(v);
	free(h);
	bounce_free(&b);
}
END_TEST

START_TEST(test_no_orig_header)
{
	static const char only_blank[] = "\r\n";
	struct dsn_info info;
	struct bounce b;

	info_init(&info, one_rcpt, 1);
	info.orig_header = NULL;
	info.orig_header_len = 0;
	bounce_parse(&b, &info);
	ck_assert_int_eq(b.nparts, 2);
	ck_assert_ptr_null(strstr(b.msg, "text/rfc822-headers"));
	bounce_free(&b);

	info.orig_header = only_blank;
	info.orig_header_len = 2;
	bounce_parse(&b, &info);
	ck_assert_int_eq(b.nparts, 2);
	bounce_free(&b);
}
END_TEST

/* "word0001 word0002 ..." : n words of 8 characters. */
static char *
words(size_t n)
{
	char *s = malloc(n * 9 + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		snprintf(s + i * 9, 10, "word%04u ", (unsigned)(i % 10000));
	s[n * 9 - 1] = '\0';
	return s;
}

START_TEST(test_long_diagnostic_folded)
{
	struct dsn_rcpt r = { "bob@example.org", "5.0.0", NULL };
	struct dsn_info info;
	struct bounce b;
	char *diag, *want, *v, *blk, *text;

	diag = words(400);	/* 3599 characters */
	memcpy(diag, "554 ", 4);
	r.diagnostic = diag;
	info_init(&info, &r, 1);
	bounce_parse(&b, &info);

	/* Every line of both parts within 76 columns... */
	ck_assert_uint_le(longest_line(b.pbody[0]), 76);
	ck_assert_uint_le(longest_line(b.pbody[1]), 76);
	/* ...and the field unfolds to the reply exactly. */
	blk = ds_block(&b, 1);
	v = field(blk, "Diagnostic-Code", NULL);
	want = malloc(strlen(diag) + 7);
	ck_assert_ptr_nonnull(want);
	strcpy(want, "smtp; ");
	strcat(want, diag);
	ck_assert_str_eq(v, want);
	/* The human part has every word, in order. */
	text = squash(b.pbody[0]);
	ck_assert_ptr_nonnull(strstr(text, diag));
	free(text);
	free(v);
	free(want);
	free(blk);
	free(diag);
	bounce_free(&b);
}
END_TEST

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

START_TEST(test_long_word_diagnostic)
{
	struct dsn_rcpt r = { "bob@example.org", "5.0.0", NULL };
	struct dsn_info info;
	struct bounce b;
	size_t n = 2500;
	char *diag = malloc(n + 1), *blk, *v;

	ck_assert_ptr_nonnull(diag);
	memcpy(diag, "554 ", 4);
	memset(diag + 4, 'x', n - 4);
	diag[n] = '\0';
	r.diagnostic = diag;
	info_init(&info, &r, 1);
	bounce_parse(&b, &info);	/* asserts no line over 998 */
	ck_assert_uint_gt(longest_line(b.pbody[1]), 76);
	/* The word is cut only where it must be: nothing is lost. */
	blk = ds_block(&b, 1);
	v = field(blk, "Diagnostic-Code", NULL);
	ck_assert_int_eq(strncmp(v, "smtp; 554 x", 11), 0);
	ck_assert_uint_eq(strspn(v + 10, "x "), strlen(v + 10));
	ck_assert_uint_eq(count_char(v, 'x'), n - 4);
	free(v);
	free(blk);
	free(diag);
	bounce_free(&b);
}
END_TEST

START_TEST(test_diagnostic_sanitized)
{
	struct dsn_rcpt r = { "bob@example.org", "5.0.0",
	    "554 Message\nrejected:\r\n  bad \x01\x1b\xff\xc3\xa9 bytes\t " };
	struct dsn_info info;
	struct bounce b;
	char *blk, *text;

	info_init(&info, &r, 1);
	bounce_parse(&b, &info);
	blk = ds_block(&b, 1);
	assert_field(blk, "Diagnostic-Code",
	    "smtp; 554 Message rejected: bad ????? bytes");
	free(blk);
	text = squash(b.pbody[0]);
	ck_assert_ptr_nonnull(strstr(text,
	    "Amazon SES replied: 554 Message rejected: bad ????? bytes"));
	free(text);
	bounce_free(&b);
}
END_TEST

START_TEST(test_header_injection)
{
	struct dsn_rcpt r = { "bob@example.org\r\nX-Evil: 1", "5.0.0",
	    SES_NOT_VERIFIED };
	struct dsn_info info;
	struct bounce b;
	char *blk;
	int n;

	info_init(&info, &r, 1);
	info.to = "alice@example.com>\r\nBcc: <mallory@example.net";
	bounce_parse(&b, &info);
	free(field(b.header, "Bcc", &n));
	ck_assert_int_eq(n, 0);
	assert_field(b.header, "To",
	    "<alice@example.com>??Bcc: <mallory@example.net>");
	blk = ds_block(&b, 1);
	free(field(blk, "X-Evil", &n));
	ck_assert_int_eq(n, 0);
	assert_field(blk, "Final-Recipient",
	    "rfc822; bob@example.org??X-Evil: 1");
	free(blk);
	bounce_free(&b);
}
END_TEST

START_TEST(test_boundary_avoids_content)
{
	struct dsn_info info;
	struct bounce b1, b2;
	char h[512];

	info_init(&info, one_rcpt, 1);
	bounce_parse(&b1, &info);
	/* The same bounce again, its boundary now in the original header. */
	snprintf(h, sizeof(h), "Subject: x\r\nX-Trap: --%s\r\n"
	    "X-Trap2: --%s--\r\n", b1.boundary, b1.boundary);
	info.orig_header = h;
	info.orig_header_len = strlen(h);
	bounce_parse(&b2, &info);
	ck_assert_str_ne(b1.boundary, b2.boundary);
	ck_assert_int_eq(b2.nparts, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(strstr(b2.pbody[i], b2.boundary));
	ck_assert_str_eq(b2.pbody[2], h);
	bounce_free(&b1);
	bounce_free(&b2);
}
END_TEST

START_TEST(test_bad_status_defaults)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "a@example.org", NULL, NULL },
		{ "b@example.org", "", NULL },
		{ "c@example.org", "2.0.0", NULL },
		{ "d@example.org", "5.1.1\r\nX-Evil: 1", NULL },
		{ "e@example.org", "5.1234.1", NULL },
		{ "f@example.org", "4.4.7", NULL },
	};
	static const char *const want[] = { "5.0.0", "5.0.0", "5.0.0",
	    "5.0.0", "5.0.0", "4.4.7" };
	struct dsn_info info;
	struct bounce b;

	info_init(&info, rcpts, 6);
	bounce_parse(&b, &info);
	for (int i = 0; i < 6; i++) {
		char *blk = ds_block(&b, i + 1);

		ck_assert_ptr_nonnull(blk);
		assert_field(blk, "Status", want[i]);
		free(blk);
	}
	bounce_free(&b);
}
END_TEST

START_TEST(test_no_queue_id)
{
	struct dsn_info info;
	struct bounce b;
	char *blk;

	info_init(&info, one_rcpt, 1);
	info.queue_id = NULL;
	bounce_parse(&b, &info);
	assert_field(b.header, "Message-ID",
	    "<unknown.1700000000.dsn@relay.example.com>");
	blk = ds_block(&b, 0);
	assert_field(blk, "X-Sesrelay-Queue-ID", "unknown");
	free(blk);
	bounce_free(&b);
}
END_TEST

/* Each case breaks one thing in a good info. */
static void
break_info(struct dsn_info *info, struct dsn_rcpt *r, int which)
{
	switch (which) {
	case 0: info->nrcpt = 0; break;
	case 1: info->rcpts = NULL; break;
	case 2: info->from = NULL; break;
	case 3: info->from = ""; break;
	case 4: info->to = NULL; break;
	case 5: info->to = ""; break;
	case 6: info->reporting_mta = NULL; break;
	case 7: info->reporting_mta = ""; break;
	case 8: r->addr = NULL; break;
	case 9: r->addr = ""; break;
	}
}

START_TEST(test_invalid)
{
	struct dsn_rcpt r = one_rcpt[0];
	struct dsn_info info;
	char sentinel, *out = &sentinel;
	size_t outlen = 12345;

	/* The good info builds... */
	info_init(&info, &r, 1);
	ck_assert_int_eq(dsn_build(&info, &out, &outlen), 0);
	free(out);
	/* ...and with one thing broken it does not, leaving out alone. */
	out = &sentinel;
	outlen = 12345;
	break_info(&info, &r, _i);
	ck_assert_int_eq(dsn_build(&info, &out, &outlen), -1);
	ck_assert_ptr_eq(out, &sentinel);
	ck_assert_uint_eq(outlen, 12345);
}
END_TEST

START_TEST(test_invalid_null)
{
	struct dsn_info info;
	char sentinel, *out = &sentinel;
	size_t outlen = 7;

	ck_assert_int_eq(dsn_build(NULL, &out, &outlen), -1);
	ck_assert_ptr_eq(out, &sentinel);
	ck_assert_uint_eq(outlen, 7);
	info_init(&info, one_rcpt, 1);
	ck_assert_int_eq(dsn_build(&info, NULL, &outlen), -1);
	ck_assert_int_eq(dsn_build(&info, &out, NULL), -1);
	ck_assert_ptr_eq(out, &sentinel);
}
END_TEST

static const struct {
	const char	*reply;
	const char	*status;
} reply_cases[] = {
	{ SES_NOT_VERIFIED, "5.0.0" },
	{ "552 5.3.4 Message is too long.", "5.3.4" },
	{ "451 4.4.2 Timeout waiting for data from client.", "4.4.2" },
	{ "554 5.123.456 x", "5.123.456" },
	{ "554 5.7.1", "5.7.1" },
	{ "421-4.4.2 first line of many", "4.4.2" },
	{ "451 Temporary failure", "4.0.0" },
	{ "421", "4.0.0" },
	{ "554", "5.0.0" },
	/* The class must agree with the reply's. */
	{ "554 4.4.2 mismatched", "5.0.0" },
	{ "451 5.1.1 mismatched", "4.0.0" },
	/* Not an enhanced code. */
	{ "554 5.7.1x", "5.0.0" },
	{ "554 5.1234.1 x", "5.0.0" },
	{ "554 5.1.1234 x", "5.0.0" },
	{ "554 5..1 x", "5.0.0" },
	{ "451 4.4 x", "4.0.0" },
	{ "554 2.0.0 x", "5.0.0" },
	/* Not a failure reply, or not a reply. */
	{ "250 2.0.0 Ok", "5.0.0" },
	{ "354 go ahead", "5.0.0" },
	{ "", "5.0.0" },
	{ "garbage", "5.0.0" },
	{ "55", "5.0.0" },
	{ "5541 5.1.1 x", "5.0.0" },
	{ "45x 4.4.2 x", "5.0.0" },
	{ NULL, "5.0.0" },
};

START_TEST(test_status_for_reply)
{
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	dsn_status_for_reply(reply_cases[_i].reply, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, reply_cases[_i].status) == 0,
	    "\"%s\": got \"%s\", want \"%s\"", reply_cases[_i].reply ?
	    reply_cases[_i].reply : "(null)", buf, reply_cases[_i].status);
}
END_TEST

START_TEST(test_status_for_reply_small_buffer)
{
	char buf[8];

	memset(buf, 'Z', sizeof(buf));
	dsn_status_for_reply("554 5.123.456 x", buf, 5);
	ck_assert_str_eq(buf, "5.12");
	ck_assert_int_eq(buf[5], 'Z');
	memset(buf, 'Z', sizeof(buf));
	dsn_status_for_reply(NULL, buf, 1);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'Z');
	memset(buf, 'Z', sizeof(buf));
	dsn_status_for_reply("451 x", buf, 0);
	ck_assert_int_eq(buf[0], 'Z');
	dsn_status_for_reply("451 x", NULL, 16);	/* no crash */
}
END_TEST

static Suite *
dsn_suite(void)
{
	Suite *s = suite_create("dsn");
	TCase *tc;

	tc = tcase_create("build");
	tcase_add_test(tc, test_headers_once);
	tcase_add_test(tc, test_date_in_utc);
	tcase_add_test(tc, test_three_parts);
	tcase_add_test(tc, test_delivery_status_fields);
	tcase_add_test(tc, test_notification_text);
	tcase_add_test(tc, test_no_reply_text);
	tcase_add_test(tc, test_expired);
	tcase_add_loop_test(tc, test_expired_duration, 0,
	    sizeof(waited_cases) / sizeof(waited_cases[0]));
	tcase_add_test(tc, test_bad_status_defaults);
	tcase_add_test(tc, test_no_queue_id);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_test(tc, test_orig_header_sanitized);
	tcase_add_test(tc, test_orig_header_without_final_crlf);
	tcase_add_loop_test(tc, test_orig_header_capped, 0, 2);
	tcase_add_loop_test(tc, test_orig_header_cap_folded, 0, 2);
	tcase_add_test(tc, test_orig_header_long_line);
	tcase_add_test(tc, test_no_orig_header);
	tcase_add_test(tc, test_long_diagnostic_folded);
	tcase_add_test(tc, test_long_word_diagnostic);
	tcase_add_test(tc, test_diagnostic_sanitized);
	tcase_add_test(tc, test_header_injection);
	tcase_add_test(tc, test_boundary_avoids_content);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_add_loop_test(tc, test_invalid, 0, 10);
	tcase_add_test(tc, test_invalid_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("status");
	tcase_add_loop_test(tc, test_status_for_reply, 0,
	    sizeof(reply_cases) / sizeof(reply_cases[0]));
	tcase_add_test(tc, test_status_for_reply_small_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(dsn_suite());
}
