/*
 * log_quote.c: the quoting of a log field's value (the rule is in
 * log.h).  Apart from log.c so that a program that brings its own log
 * functions (the fuzzers' quiet log) still links the real quoting.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define LOG_Q_SLOTS 8
#define LOG_Q_SIZE 1024

/* A byte that may stand in a bare value. */
static int
is_bare(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
}

static int
needs_quotes(const char *v)
{
	if (*v == '\0')
		return 1;
	for (; *v != '\0'; v++)
		if (!is_bare((unsigned char)*v))
			return 1;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), else 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing above U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* How the byte(s) at s are written inside quotes; returns bytes taken. */
static size_t
escape_one(const unsigned char *s, char out[8])
{
	size_t n;

	switch (*s) {
	case '"': strcpy(out, "\\\""); return 1;
	case '\\': strcpy(out, "\\\\"); return 1;
	case '\n': strcpy(out, "\\n"); return 1;
	case '\r': strcpy(out, "\\r"); return 1;
	case '\t': strcpy(out, "\\t"); return 1;
	}
	if (*s >= 0x20 && *s < 0x7f) {
		out[0] = (char)*s;
		out[1] = '\0';
		return 1;
	}
	if (*s >= 0x80 && (n = utf8_len(s)) > 0) {
		memcpy(out, s, n);
		out[n] = '\0';
		return n;
	}
	snprintf(out, 8, "\\x%02x", *s);
	return 1;
}

char *
log_quote(char *dst, size_t size, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t len = strlen(v), at = 0, n, k;
	char out[8];

	if (len < size && !needs_quotes(v))
		return memcpy(dst, v, len + 1);
	dst[at++] = '"';
	while (*s != '\0') {
		n = escape_one(s, out);
		k = strlen(out);
		/* Room left for this, and for '..."' and the NUL after it. */
		if (at + k + 5 > size) {
			memcpy(dst + at, "...", 3);
			at += 3;
			break;
		}
		memcpy(dst + at, out, k);
		at += k;
		s += n;
	}
	dst[at++] = '"';
	dst[at] = '\0';
	return dst;
}

const char *
log_q(const char *v)
{
	static _Thread_local char ring[LOG_Q_SLOTS][LOG_Q_SIZE];
	static _Thread_local unsigned next;
	char *slot = ring[next++ % LOG_Q_SLOTS];

	return log_quote(slot, LOG_Q_SIZE, v != NULL ? v : "-");
}

const char *
log_qa(const char *addr)
{
	char tmp[LOG_Q_SIZE];

	snprintf(tmp, sizeof(tmp), "<%s>", addr != NULL ? addr : "");
	return log_q(tmp);
}
