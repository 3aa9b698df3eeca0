/*
 * fuzz_upstream_reply.c: the upstream (SES) reply parser
 * (upstream_reply.c).
 *
 * The input is what the upstream sent: it is cut at LF and a trailing CR
 * is dropped, as evbuffer_readln(EVBUFFER_EOL_CRLF) does in
 * transport_smtp.c, and each line is fed in a buffer of exactly its
 * length.  On every complete reply the readers run: the SES message id,
 * the EHLO keywords, the one-line summary, with output buffers of
 * exactly the size passed.  After a complete or a bad reply the parser
 * starts over, as the session does for the next command.
 *
 * Invariants: the code is 200-599, the text is NUL-terminated within
 * its array at len, the enhanced code is short; an id found is non-empty,
 * fits its buffer and is letters, digits and '-'; keyword parameters
 * point into the text; a summary starts with the code.
 */
#include "config.h"

#include <ctype.h>

#include "fuzz_util.h"
#include "upstream_reply.h"

/* An EHLO keyword, checked with and without its parameters wanted. */
static void
check_keyword(const struct upstream_reply *r, const char *kw)
{
	const char *params = NULL;
	int has = upstream_reply_has_keyword(r, kw, &params);

	FUZZ_CHECK(has == 0 || has == 1);
	FUZZ_CHECK(upstream_reply_has_keyword(r, kw, NULL) == has);
	if (has) {
		FUZZ_CHECK(params >= r->text && params <= r->text + r->len);
		FUZZ_CHECK(r->lines > 1);
	}
}

/* The SES id, with an output buffer of exactly outlen bytes. */
static void
check_ses_id(const struct upstream_reply *r, size_t outlen)
{
	char *out = fuzz_alloc(outlen);

	if (upstream_reply_ses_id(r, out, outlen) == 0) {
		size_t n = strnlen(out, outlen);

		FUZZ_CHECK(r->code == 250);
		FUZZ_CHECK(n > 0 && n < outlen);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(isalnum((unsigned char)out[i]) ||
			    out[i] == '-');
	}
	free(out);
}

/* The summary, with an output buffer of exactly outlen bytes. */
static void
check_summary(const struct upstream_reply *r, size_t outlen)
{
	char *out = fuzz_alloc(outlen), code[8];
	size_t n;

	upstream_reply_summary(r, out, outlen);
	FUZZ_CHECK(strnlen(out, outlen) < outlen);
	n = (size_t)snprintf(code, sizeof(code), "%d ", r->code);
	if (n > outlen - 1)
		n = outlen - 1;
	FUZZ_CHECK(strncmp(out, code, n) == 0);
	free(out);
}

static void
check_reply(const struct upstream_reply *r)
{
	FUZZ_CHECK(r->code >= 200 && r->code <= 599);
	FUZZ_CHECK(r->lines > 0);
	FUZZ_CHECK(r->len < sizeof(r->text) && r->text[r->len] == '\0');
	FUZZ_CHECK(strnlen(r->enhanced, sizeof(r->enhanced)) <
	    sizeof(r->enhanced));
	check_ses_id(r, 1);
	check_ses_id(r, 8);
	check_ses_id(r, 128);
	check_keyword(r, "STARTTLS");
	check_keyword(r, "AUTH");
	check_keyword(r, "SIZE");
	check_keyword(r, "8BITMIME");
	check_keyword(r, "");
	check_summary(r, 1);
	check_summary(r, 5);
	check_summary(r, 512);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct upstream_reply *r = malloc(sizeof(*r));

	if (r == NULL)
		abort();
	upstream_reply_init(r);
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t len = (nl ? nl : end) - p;
		char *line;
		int rc;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		line = fuzz_copy(p, len);
		rc = upstream_reply_feed(r, line, len);
		free(line);
		FUZZ_CHECK(rc == UPSTREAM_REPLY_MORE ||
		    rc == UPSTREAM_REPLY_DONE || rc == UPSTREAM_REPLY_BAD);
		if (rc == UPSTREAM_REPLY_DONE)
			check_reply(r);
		else if (rc == UPSTREAM_REPLY_MORE)
			FUZZ_CHECK(r->len < sizeof(r->text));
		if (rc != UPSTREAM_REPLY_MORE)
			upstream_reply_init(r);
		p = nl ? nl + 1 : end;
	}
	free(r);
	return 0;
}
