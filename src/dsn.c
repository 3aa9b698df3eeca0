/*
 * dsn.c: bounces as RFC 3464 delivery status notifications, built in
 * memory from a small value struct (no I/O, no clock, no globals).
 *
 * A bounce is read by a person and parsed by the sender's mail system,
 * and it must itself be deliverable through SES, so it is conservative
 * on the wire whatever SES replied or the original header held: every
 * line ends in CRLF and holds at most 998 characters (RFC 5322 2.1.1),
 * every byte is 7-bit and none is NUL.  Outside text is made safe where
 * it enters: control characters and 8-bit bytes become '?'; in SES's
 * reply line breaks and runs of white space become one space.  Addresses
 * and names are cut at 511 characters (RFC 5321 allows 256 for a path).
 * The result is a plain message, not yet dot-stuffed for DATA.
 *
 * The message (RFC 6522 multipart/report, RFC 3464 fields):
 *
 *	From: Mail Delivery System <from>
 *	To: <to>
 *	Subject: Undelivered Mail Returned to Sender [(delivery time expired)]
 *	Date: <now>
 *	Message-ID: <queueid.now.dsn@reporting-mta>
 *	Auto-Submitted: auto-replied		(RFC 3834: no auto-replies)
 *	MIME-Version: 1.0
 *	Content-Type: multipart/report; report-type=delivery-status;
 *		boundary="..."
 *
 *	1. text/plain: who we are, which message, and per recipient SES's
 *	   reply quoted verbatim, folded at 76 columns on spaces.
 *	2. message/delivery-status: Reporting-MTA, X-Sesrelay-Queue-ID,
 *	   Arrival-Date; per recipient Final-Recipient, Action: failed,
 *	   Status, Diagnostic-Code (only with a reply; folded before a
 *	   space, so unfolding gives the reply back), Last-Attempt-Date.
 *	   No Remote-MTA: the caller does not pass it and we do not invent
 *	   one.
 *	3. text/rfc822-headers: the original header up to its empty line,
 *	   at most 64 KiB cut at a line end.  Left out when there is none
 *	   (RFC 6522 makes the third part optional).
 *
 * The boundary is made from the queue id and the time and checked
 * against the content of every part; a counter changes it until it
 * occurs in none.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"

#define DSN_LINE_MAX	998		/* RFC 5322: characters in a line */
#define DSN_WIDTH	76		/* where text and fields are folded */
#define DSN_FIELD	512		/* addresses and names; longer is cut */
#define DSN_TOKEN	32		/* queue id in the boundary */
#define DSN_HEADER_MAX	(64 * 1024)	/* of the original header */
#define DSN_GLUE	'\x1f'		/* a space prose is not folded at */

/* A growing NUL-terminated byte buffer. */
struct dsn_buf {
	char	*p;
	size_t	 len;
	size_t	 size;
	int	 failed;	/* an allocation failed: the content is void */
};

/* The values every part prints, cleaned once. */
struct dsn_ctx {
	const struct dsn_info	*info;
	char			 host[DSN_FIELD];
	char			 qid[DSN_FIELD];
	char			 date[64];	/* now */
	char			 arrival[64];
};

static const struct {
	const char	*description;
	const char	*type;
} dsn_parts[] = {
	{ "Notification", "text/plain; charset=us-ascii" },
	{ "Delivery report", "message/delivery-status" },
	{ "Undelivered Message Headers", "text/rfc822-headers" },
};

static void
buf_add(struct dsn_buf *b, const char *s, size_t n)
{
	size_t nsize;
	char *np;

	if (b->failed)
		return;
	if (n >= b->size - b->len) {
		nsize = b->size > 0 ? b->size : 4096;
		while (n >= nsize - b->len) {
			if (nsize > SIZE_MAX / 2) {
				b->failed = 1;
				return;
			}
			nsize *= 2;
		}
		if ((np = realloc(b->p, nsize)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->size = nsize;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_crlf(struct dsn_buf *b)
{
	buf_add(b, "\r\n", 2);
}

/* One formatted line plus CRLF; cut at DSN_LINE_MAX as a last defence. */
static void __attribute__((format(printf, 2, 3)))
buf_line(struct dsn_buf *b, const char *fmt, ...)
{
	char line[DSN_LINE_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	buf_add(b, line, (size_t)n < DSN_LINE_MAX ? (size_t)n : DSN_LINE_MAX);
	buf_crlf(b);
}

/* A byte as printable 7-bit text: controls and 8-bit become '?'. */
static char
safe_char(unsigned char c)
{
	return c >= 0x20 && c < 0x7f ? (char)c : '?';
}

/* A field value (an address, a host name) as printable ASCII, cut to fit. */
static void
clean_field(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < len; i++)
		dst[i] = safe_char((unsigned char)src[i]);
	dst[i] = '\0';
}

/*
 * A token for a Message-ID or a boundary: letters, digits, '-' (and '.'
 * when dot_ok) are kept, the rest become '_'; none at all is "unknown".
 */
static void
clean_token(char *dst, size_t len, const char *src, int dot_ok)
{
	size_t i;
	char c;

	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < len; i++) {
		c = src[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || (dot_ok && c == '.'))
			dst[i] = c;
		else
			dst[i] = '_';
	}
	if (i == 0 && len > 7)
		strcpy(dst, "unknown");
	else
		dst[i] = '\0';
}

/*
 * SES's reply as one line of printable ASCII: white space (including
 * the '\n' joining a multi-line reply) becomes one space, trimmed at
 * both ends; other controls and 8-bit bytes become '?'.  NULL: no
 * memory.
 */
static char *
clean_text(const char *s)
{
	char *t, *o;
	int space = 0;

	if ((t = malloc(strlen(s) + 1)) == NULL)
		return NULL;
	for (o = t; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			space = o > t;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = 0;
		*o++ = safe_char((unsigned char)*s);
	}
	*o = '\0';
	return t;
}

/* An RFC 5322 date in UTC; English names whatever the locale. */
static void
fmt_date(char *buf, size_t len, time_t t)
{
	static const char days[][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(buf, len, "%s, %d %s %lld %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    (long long)tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* How long a message waited, in words: "5 days", "3 hours", "1 minute". */
static void
fmt_duration(char *buf, size_t len, time_t secs)
{
	long long v;
	const char *unit;

	if (secs < 0)
		secs = 0;
	if (secs >= 86400) {
		v = (long long)secs / 86400;
		unit = "day";
	} else if (secs >= 3600) {
		v = (long long)secs / 3600;
		unit = "hour";
	} else {
		v = (long long)secs / 60;
		unit = "minute";
	}
	snprintf(buf, len, "%lld %s%s", v, unit, v == 1 ? "" : "s");
}

/*
 * Where to end a line of the n characters left at s, given avail
 * columns: the last space within them, else the first space after (a
 * long word is not broken), else the end; never past hard.
 */
static size_t
fold_point(const char *s, size_t n, size_t avail, size_t hard)
{
	size_t k;

	for (k = avail; k > 0; k--)
		if (s[k] == ' ')
			return k;
	for (k = avail + 1; k < n && k < hard; k++)
		if (s[k] == ' ')
			return k;
	return n < hard ? n : hard;
}

/* One folded line: prefix, n characters of text with glue made spaces. */
static void
put_piece(struct dsn_buf *b, const char *prefix, const char *text, size_t n)
{
	size_t i;

	buf_add(b, prefix, strlen(prefix));
	for (i = 0; i < n; i++)
		buf_add(b, text[i] == DSN_GLUE ? " " : text + i, 1);
	buf_crlf(b);
}

/*
 * Write text (cleaned: single spaces, no controls) folded at DSN_WIDTH
 * columns, the first line after prefix, the others after cont.  As a
 * header field (keep_space) a line is broken before a space, which
 * starts the next line, so unfolding gives the text back exactly; as
 * prose the space is dropped.  A word too long for one line is cut
 * at DSN_LINE_MAX; in a field the next line then starts with a space.
 * DSN_GLUE (which cleaned text never holds) is a space not to fold at.
 */
static void
put_folded(struct dsn_buf *b, const char *prefix, const char *cont,
    const char *text, int keep_space)
{
	const char *pfx = prefix;
	size_t n = strlen(text), plen, avail, k;

	for (;;) {
		plen = strlen(pfx);
		avail = plen + 20 < DSN_WIDTH ? DSN_WIDTH - plen : 20;
		if (n <= avail) {
			put_piece(b, pfx, text, n);
			return;
		}
		k = fold_point(text, n, avail, DSN_LINE_MAX - plen);
		put_piece(b, pfx, text, k);
		pfx = cont;
		if (text[k] == ' ' && !keep_space)
			k++;
		else if (text[k] != ' ' && keep_space)
			pfx = " ";
		text += k;
		n -= k;
		if (n == 0)
			return;
	}
}

/*
 * Length of an RFC 3463 code "c.sss.ddd" (class 4 or 5, then 1-3 digits
 * twice) at the start of s; 0 when there is none.  What follows is the
 * caller's to check.
 */
static size_t
enhanced_len(const char *s)
{
	size_t i = 2, n;
	int part;

	if ((s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	for (part = 0; part < 2; part++) {
		for (n = 0; n < 3 && s[i] >= '0' && s[i] <= '9'; n++)
			i++;
		if (n == 0)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	return i;
}

/* The caller's status if it is a failure code, else "5.0.0". */
static const char *
status_or_default(const char *status)
{
	if (status != NULL && enhanced_len(status) > 0 &&
	    status[enhanced_len(status)] == '\0')
		return status;
	return "5.0.0";
}

/* Part 1, one recipient: its address, then why, in SES's words if any. */
static int
put_rcpt_text(struct dsn_buf *b, const struct dsn_ctx *c,
    const struct dsn_rcpt *r, const char *waited)
{
	char text[DSN_FIELD + 128], *diag = NULL;
	int expired = c->info->expired;

	if (r->diagnostic != NULL && (diag = clean_text(r->diagnostic)) == NULL)
		return -1;
	buf_crlf(b);
	clean_field(text, DSN_FIELD, r->addr);
	buf_line(b, "<%s>:", text);
	if (expired) {
		snprintf(text, sizeof(text), "The message stayed in the queue "
		    "longer than the limit (%s) without being delivered.",
		    waited);
		put_folded(b, "    ", "    ", text, 0);
	}
	if (diag != NULL && *diag != '\0') {
		buf_line(b, "    %s", expired ?
		    "The last reply from Amazon SES was:" :
		    "Amazon SES replied:");
		put_folded(b, "    ", "    ", diag, 0);
	} else if (!expired)
		buf_line(b, "    The delivery failed (status %s).",
		    status_or_default(r->status));
	free(diag);
	return 0;
}

/* Part 1: what happened, for a person. */
static void
put_notification(struct dsn_buf *b, const struct dsn_ctx *c)
{
	const struct dsn_info *info = c->info;
	char text[3 * DSN_FIELD], waited[64], arrival[sizeof(c->arrival)];
	char *p;
	size_t i;

	snprintf(text, sizeof(text), "This is the mail relay at %s.", c->host);
	put_folded(b, "", "", text, 0);
	buf_crlf(b);
	/* The date is not to be split over lines. */
	memcpy(arrival, c->arrival, sizeof(arrival));
	for (p = arrival; (p = strchr(p, ' ')) != NULL; p++)
		*p = DSN_GLUE;
	snprintf(text, sizeof(text), "Your message (queue id %s, received %s) "
	    "could not be delivered to the recipients below.", c->qid,
	    arrival);
	put_folded(b, "", "", text, 0);
	fmt_duration(waited, sizeof(waited), info->now - info->arrived);
	for (i = 0; i < info->nrcpt; i++)
		if (put_rcpt_text(b, c, &info->rcpts[i], waited) == -1) {
			b->failed = 1;
			return;
		}
}

/* Part 2: the same for a program (RFC 3464 section 2). */
static void
put_report(struct dsn_buf *b, const struct dsn_ctx *c)
{
	const struct dsn_info *info = c->info;
	char addr[DSN_FIELD], *diag;
	size_t i;

	buf_line(b, "Reporting-MTA: dns; %s", c->host);
	buf_line(b, "X-Sesrelay-Queue-ID: %s", c->qid);
	buf_line(b, "Arrival-Date: %s", c->arrival);
	for (i = 0; i < info->nrcpt; i++) {
		const struct dsn_rcpt *r = &info->rcpts[i];

		buf_crlf(b);
		clean_field(addr, sizeof(addr), r->addr);
		buf_line(b, "Final-Recipient: rfc822; %s", addr);
		buf_line(b, "Action: failed");
		buf_line(b, "Status: %s", status_or_default(r->status));
		if (r->diagnostic != NULL) {
			if ((diag = clean_text(r->diagnostic)) == NULL) {
				b->failed = 1;
				return;
			}
			if (*diag != '\0')
				put_folded(b, "Diagnostic-Code: smtp; ", "",
				    diag, 1);
			free(diag);
		}
		/* The bounce is built right after the last attempt. */
		buf_line(b, "Last-Attempt-Date: %s", c->date);
	}
}

/* Bytes one original header line of n characters takes once folded. */
static size_t
header_line_size(size_t n)
{
	size_t chunks = 1;

	if (n > DSN_LINE_MAX)
		chunks += (n - DSN_LINE_MAX + DSN_LINE_MAX - 2) /
		    (DSN_LINE_MAX - 1);
	return n + (chunks - 1) + 2 * chunks;
}

/* One original header line, 7-bit, folded with a space past 998. */
static void
put_header_line(struct dsn_buf *b, const char *s, size_t n)
{
	char line[DSN_LINE_MAX];
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (o == sizeof(line)) {
			buf_add(b, line, o);
			buf_crlf(b);
			line[0] = ' ';
			o = 1;
		}
		line[o++] = s[i] == '\t' ? '\t' :
		    safe_char((unsigned char)s[i]);
	}
	buf_add(b, line, o);
	buf_crlf(b);
}

/*
 * Part 3: the original header up to its first empty line.  A bare LF
 * ends a line too; a bare CR, NUL, other controls but TAB and 8-bit
 * bytes become '?', so the bounce stays 7-bit and deliverable.  At most
 * DSN_HEADER_MAX bytes, cut before the line that would pass it.
 */
static void
put_orig_header(struct dsn_buf *b, const char *h, size_t len)
{
	const char *nl;
	size_t i = 0, end, n;

	while (h != NULL && i < len) {
		nl = memchr(h + i, '\n', len - i);
		end = nl != NULL ? (size_t)(nl - h) : len;
		n = end - i;
		if (n > 0 && h[i + n - 1] == '\r')
			n--;
		if (n == 0 || b->len + header_line_size(n) > DSN_HEADER_MAX)
			break;
		put_header_line(b, h + i, n);
		i = end + 1;
	}
}

/* 1 when the boundary occurs in none of the parts. */
static int
boundary_is_free(const char *boundary, const struct dsn_buf *parts,
    size_t nparts)
{
	size_t i, blen = strlen(boundary);

	for (i = 0; i < nparts; i++)
		if (parts[i].len > 0 &&
		    memmem(parts[i].p, parts[i].len, boundary, blen) != NULL)
			return 0;
	return 1;
}

/*
 * "=_dsnN.<queue id>.<now>", at most 69 characters ("=_" never occurs
 * in quoted-printable).  The counter comes first so that one place in
 * the content matches at most one candidate: the loop ends after at
 * most as many tries as the content has bytes.
 */
static void
make_boundary(char *buf, size_t len, const struct dsn_ctx *c,
    const struct dsn_buf *parts, size_t nparts)
{
	char qid[DSN_TOKEN + 1];
	unsigned int n = 0;

	clean_token(qid, sizeof(qid), c->info->queue_id, 0);
	do
		snprintf(buf, len, "=_dsn%u.%s.%lld", n++, qid,
		    (long long)c->info->now);
	while (!boundary_is_free(buf, parts, nparts));
}

/* The top-level header and the MIME preamble. */
static void
put_header(struct dsn_buf *b, const struct dsn_ctx *c, const char *boundary)
{
	const struct dsn_info *info = c->info;
	char from[DSN_FIELD], to[DSN_FIELD], qid[65], host[256];

	clean_field(from, sizeof(from), info->from);
	clean_field(to, sizeof(to), info->to);
	clean_token(qid, sizeof(qid), info->queue_id, 0);
	clean_token(host, sizeof(host), info->reporting_mta, 1);
	buf_line(b, "From: Mail Delivery System <%s>", from);
	buf_line(b, "To: <%s>", to);
	buf_line(b, "Subject: Undelivered Mail Returned to Sender%s",
	    info->expired ? " (delivery time expired)" : "");
	buf_line(b, "Date: %s", c->date);
	buf_line(b, "Message-ID: <%s.%lld.dsn@%s>", qid, (long long)info->now,
	    host);
	buf_line(b, "Auto-Submitted: auto-replied");
	buf_line(b, "MIME-Version: 1.0");
	buf_line(b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;");
	buf_line(b, "\tboundary=\"%s\"", boundary);
	buf_crlf(b);
	buf_line(b, "This is a MIME-encapsulated message.");
	buf_crlf(b);
}

/* The parts, each after its delimiter and header, then the close. */
static void
put_parts(struct dsn_buf *msg, const char *boundary,
    const struct dsn_buf *parts, size_t nparts)
{
	size_t i;

	for (i = 0; i < nparts; i++) {
		buf_line(msg, "--%s", boundary);
		buf_line(msg, "Content-Description: %s",
		    dsn_parts[i].description);
		buf_line(msg, "Content-Type: %s", dsn_parts[i].type);
		buf_crlf(msg);
		buf_add(msg, parts[i].p, parts[i].len);
		/* An empty line: the CRLF before a delimiter is the
		 * delimiter's (RFC 2046), so the last line keeps its own. */
		buf_crlf(msg);
	}
	buf_line(msg, "--%s--", boundary);
}

/* 1 when the info names a sender, a reporter and failed recipients. */
static int
dsn_info_is_usable(const struct dsn_info *info)
{
	size_t i;

	if (info == NULL || info->rcpts == NULL || info->nrcpt == 0 ||
	    info->from == NULL || *info->from == '\0' || info->to == NULL ||
	    *info->to == '\0' || info->reporting_mta == NULL ||
	    *info->reporting_mta == '\0')
		return 0;
	for (i = 0; i < info->nrcpt; i++)
		if (info->rcpts[i].addr == NULL || *info->rcpts[i].addr == '\0')
			return 0;
	return 1;
}

int
dsn_build(const struct dsn_info *info, char **out, size_t *outlen)
{
	struct dsn_ctx c;
	struct dsn_buf parts[3], msg;
	char boundary[80];
	size_t i, nparts;
	int failed;

	if (out == NULL || outlen == NULL || !dsn_info_is_usable(info))
		return -1;
	memset(&c, 0, sizeof(c));
	c.info = info;
	clean_field(c.host, sizeof(c.host), info->reporting_mta);
	clean_field(c.qid, sizeof(c.qid), info->queue_id);
	if (c.qid[0] == '\0')
		strcpy(c.qid, "unknown");
	fmt_date(c.date, sizeof(c.date), info->now);
	fmt_date(c.arrival, sizeof(c.arrival), info->arrived);

	memset(parts, 0, sizeof(parts));
	memset(&msg, 0, sizeof(msg));
	put_notification(&parts[0], &c);
	put_report(&parts[1], &c);
	put_orig_header(&parts[2], info->orig_header, info->orig_header_len);
	nparts = parts[2].len > 0 ? 3 : 2;

	make_boundary(boundary, sizeof(boundary), &c, parts, nparts);
	put_header(&msg, &c, boundary);
	put_parts(&msg, boundary, parts, nparts);

	failed = msg.failed;
	for (i = 0; i < 3; i++) {
		failed |= parts[i].failed;
		free(parts[i].p);
	}
	if (failed) {
		free(msg.p);
		return -1;
	}
	*out = msg.p;
	*outlen = msg.len;
	return 0;
}

/*
 * The status of a failed reply: RFC 3463 says the enhanced code, when
 * there is one, follows the reply code; it counts only when its class
 * agrees with the reply's.  A reply that is not 4xx or 5xx (or none)
 * gives "5.0.0": a bounce reports a failure.
 */
void
dsn_status_for_reply(const char *reply, char *buf, size_t len)
{
	const char *status = "5.0.0", *t;
	char code[16];
	size_t n;

	if (reply != NULL && (reply[0] == '4' || reply[0] == '5') &&
	    reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' &&
	    reply[2] <= '9' && (reply[3] == '\0' || reply[3] == ' ' ||
	    reply[3] == '-')) {
		status = reply[0] == '4' ? "4.0.0" : "5.0.0";
		t = reply + 3;
		if (*t == '-')
			t++;
		while (*t == ' ')
			t++;
		n = enhanced_len(t);
		if (n > 0 && t[0] == reply[0] &&
		    (t[n] == '\0' || t[n] == ' ')) {
			memcpy(code, t, n);
			code[n] = '\0';
			status = code;
		}
	}
	if (buf == NULL || len == 0)
		return;
	n = strlen(status);
	if (n >= len)
		n = len - 1;
	memcpy(buf, status, n);
	buf[n] = '\0';
}
