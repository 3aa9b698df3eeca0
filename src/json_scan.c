/*
 * json_scan.c: a JSON checker (RFC 8259, nesting at most 32 deep) that
 * notes where the first member of a given name has its value.  Enough
 * for the flat answers of IMDS and the SES API; no tree is built.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

#define JSON_DEPTH	32

struct scan {
	const char	*p, *end;
	const char	*key;		/* the member wanted */
	const char	*found;		/* where its value starts, or NULL */
	int		 depth;
};

static int scan_value(struct scan *);

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && strchr(" \t\r\n", *s->p) != NULL && *s->p)
		s->p++;
}

/* A string at s->p (the quote); its decoded form into out when out is
 * not NULL.  0, or -1. */
static int
scan_string(struct scan *s, char *out, size_t outlen)
{
	size_t n = 0;

	if (s->p >= s->end || *s->p++ != '"')
		return -1;
	while (s->p < s->end && *s->p != '"') {
		unsigned char c = (unsigned char)*s->p++;

		if (c < 0x20)
			return -1;
		if (c == '\\') {
			const char *esc = "\"\\/bfnrtu", *dec = "\"\\/\b\f\n\r\t";
			const char *e;

			if (s->p >= s->end || *s->p == '\0' ||
			    (e = strchr(esc, *s->p++)) == NULL)
				return -1;
			if (*e == 'u') {
				char hex[5];
				long v;

				if (s->end - s->p < 4)
					return -1;
				memcpy(hex, s->p, 4);
				hex[4] = '\0';
				if (strspn(hex, "0123456789abcdefABCDEF") != 4)
					return -1;
				v = strtol(hex, NULL, 16);
				s->p += 4;
				c = v < 0x80 ? (unsigned char)v : '?';
				if (v >= 0x80 && out != NULL)
					return -1;
			} else
				c = (unsigned char)dec[e - esc];
		}
		if (out != NULL) {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)c;
		}
	}
	if (s->p >= s->end)
		return -1;
	s->p++;
	if (out != NULL)
		out[n] = '\0';
	return 0;
}

static int
scan_number(struct scan *s)
{
	const char *start = s->p;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	while (s->p < s->end && strchr("0123456789.eE+-", *s->p) && *s->p)
		s->p++;
	return s->p > start && (start[0] != '-' || s->p > start + 1) ? 0 : -1;
}

static int
scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* An object's members or an array's elements, after its opening byte. */
static int
scan_container(struct scan *s, char close)
{
	char name[128];

	if (++s->depth > JSON_DEPTH)
		return -1;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if (close == '}') {
			const char *at = s->p;
			int named = scan_string(s, name, sizeof(name)) == 0;

			if (!named && (s->p = at, scan_string(s, NULL, 0)) == -1)
				return -1;
			skip_ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				return -1;
			skip_ws(s);
			if (named && s->found == NULL && strcmp(name, s->key) == 0)
				s->found = s->p;
		}
		if (scan_value(s) == -1)
			return -1;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p >= s->end || *s->p++ != close)
			return -1;
		s->depth--;
		return 0;
	}
}

static int
scan_value(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
	case '[':
		return scan_container(s, *s->p++ == '{' ? '}' : ']');
	case '"':
		return scan_string(s, NULL, 0);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		return scan_number(s);
	}
}

/* Check the text; where the member's value starts, or NULL. */
static const char *
scan_find(const char *js, size_t len, const char *key, const char **end)
{
	struct scan s = { js, js + len, key, NULL, 0 };

	if (scan_value(&s) == -1)
		return NULL;
	skip_ws(&s);
	if (s.p != s.end)
		return NULL;
	*end = s.end;
	return s.found;
}

int
json_scan_string(const char *js, size_t len, const char *key, char *out,
    size_t outlen)
{
	const char *end, *v = scan_find(js, len, key, &end);
	struct scan s = { v, end, key, NULL, 0 };

	if (v == NULL || *v != '"')
		return -1;
	return scan_string(&s, out, outlen);
}

int
json_scan_number(const char *js, size_t len, const char *key, double *out)
{
	const char *end, *v = scan_find(js, len, key, &end);
	char buf[64];
	size_t n;

	if (v == NULL || (*v != '-' && (*v < '0' || *v > '9')))
		return -1;
	for (n = 0; v + n < end && v[n] != '\0' &&
	    strchr("0123456789.eE+-", v[n]) != NULL; n++)
		if (n + 1 >= sizeof(buf))
			return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

int
json_scan_bool(const char *js, size_t len, const char *key, int *out)
{
	const char *end, *v = scan_find(js, len, key, &end);

	if (v == NULL || (*v != 't' && *v != 'f'))
		return -1;
	*out = *v == 't';
	return 0;
}
