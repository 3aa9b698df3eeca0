/*
 * upstream_reply.c: collecting and reading SMTP replies.
 *
 * Tolerant of what SES has been seen to send: a trailing period, an
 * enhanced status code or none, "250 Ok" with or without a message id.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_reply.h"

#include <openssl/evp.h>

void
upstream_reply_init(struct upstream_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* Length of an enhanced status code "d.ddd.ddd" at p, or 0. */
static size_t
enhanced_len(const char *p, size_t len)
{
	size_t i = 0, part;

	for (part = 0; part < 3; part++) {
		size_t start = i;
		while (i < len && isdigit((unsigned char)p[i]) && i - start < 3)
			i++;
		if (i == start)
			return 0;
		if (part < 2) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && p[i] != ' ')
		return 0;
	return i;
}

int
upstream_reply_feed(struct upstream_reply *r, const char *line, size_t len)
{
	int code;
	const char *text;
	size_t tlen, el;

	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		return UPSTREAM_REPLY_BAD;
	r->total += len + 2;
	if (r->total > UPSTREAM_REPLY_MAX_BYTES ||
	    r->lines >= UPSTREAM_REPLY_MAX_LINES)
		return UPSTREAM_REPLY_TOO_LONG;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599 || (r->lines > 0 && code != r->code))
		return UPSTREAM_REPLY_BAD;
	r->code = code;
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (r->lines == 0 && (el = enhanced_len(text, tlen)) > 0 &&
	    el < sizeof(r->enhanced)) {
		memcpy(r->enhanced, text, el);
		r->enhanced[el] = '\0';
	}
	if (r->lines > 0 && r->len + 1 < sizeof(r->text))
		r->text[r->len++] = '\n';
	if (tlen > sizeof(r->text) - 1 - r->len)
		tlen = sizeof(r->text) - 1 - r->len;
	memcpy(r->text + r->len, text, tlen);
	r->len += tlen;
	r->text[r->len] = '\0';
	r->lines++;
	return len > 3 && line[3] == '-' ? UPSTREAM_REPLY_MORE :
	    UPSTREAM_REPLY_DONE;
}

int
upstream_reply_ses_id(const struct upstream_reply *r, char *out,
    size_t outlen)
{
	const char *p = r->text;
	size_t n;

	if (r->code != 250)
		return -1;
	if (r->enhanced[0] != '\0')
		p += strlen(r->enhanced) + 1;
	if (strncasecmp(p, "Ok ", 3) != 0)
		return -1;
	p += 3;
	n = strcspn(p, " \n");
	if (n == 0 || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-')
			return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int
upstream_reply_has_keyword(const struct upstream_reply *r, const char *kw,
    const char **params)
{
	size_t kl = strlen(kw);
	const char *p = r->text;

	/* The first line is the server's name, not a keyword. */
	if ((p = strchr(p, '\n')) == NULL)
		return 0;
	for (p++; *p; ) {
		size_t n = strcspn(p, "\n");
		if (n >= kl && strncasecmp(p, kw, kl) == 0 &&
		    (n == kl || p[kl] == ' ')) {
			if (params)
				*params = n == kl ? p + n : p + kl + 1;
			return 1;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return 0;
}

void
upstream_reply_summary(const struct upstream_reply *r, char *out,
    size_t outlen)
{
	size_t n = strcspn(r->text, "\n");

	snprintf(out, outlen, "%d %.*s", r->code, (int)n, r->text);
}

char *
upstream_auth_plain(const char *user, const char *password)
{
	size_t ul = strlen(user), pl = strlen(password), n = ul + pl + 2;
	unsigned char *raw = malloc(n);
	char *cmd = malloc(sizeof("AUTH PLAIN ") + 4 * ((n + 2) / 3) + 1);

	if (raw == NULL || cmd == NULL)
		abort();
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	memcpy(cmd, "AUTH PLAIN ", 11);
	EVP_EncodeBlock((unsigned char *)cmd + 11, raw, (int)n);
	explicit_bzero(raw, n);
	free(raw);
	return cmd;
}
